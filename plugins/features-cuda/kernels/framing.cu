// Time-domain frame features on the STFT's centred grid (frame length n_fft): RMS with zero
// padding and the zero-crossing rate with edge padding, as librosa pads each. One block of
// REDUCE_THREADS per frame.

__device__ __forceinline__ bool is_negative(float v) {
    // |v| <= 1e-10 counts as zero, and zero counts as positive.
    return fabsf(v) > 1e-10f && v < 0.0f;
}

extern "C" __global__ void rms_zcr(
    const float* __restrict__ x, const unsigned int* __restrict__ sample_off,
    const unsigned int* __restrict__ frame_off, unsigned int n_utt,
    unsigned int frame_length, unsigned int hop, float* __restrict__ rms,
    float* __restrict__ zcr) {
    __shared__ float red_s[REDUCE_THREADS];
    __shared__ unsigned int red_c[REDUCE_THREADS];
    const unsigned int t = blockIdx.x;
    const unsigned int b = utt_of_frame(frame_off, n_utt, t);
    const unsigned int f = t - frame_off[b];
    const unsigned int start = sample_off[b];
    const long long len = (long long)(sample_off[b + 1] - start);
    const long long first = (long long)f * hop - (long long)(frame_length / 2);
    float acc = 0.0f;
    unsigned int crossings = 0;
    for (unsigned int i = threadIdx.x; i < frame_length; i += blockDim.x) {
        const long long s = first + i;
        if (s >= 0 && s < len) {
            const float v = x[start + s];
            acc += v * v;
        }
        // A crossing between padded positions i-1 and i of the frame; outside the signal the
        // edge sample repeats.
        if (i >= 1) {
            long long s0 = s - 1, s1 = s;
            s0 = s0 < 0 ? 0 : (s0 >= len ? len - 1 : s0);
            s1 = s1 < 0 ? 0 : (s1 >= len ? len - 1 : s1);
            if (is_negative(x[start + s0]) != is_negative(x[start + s1])) ++crossings;
        }
    }
    red_s[threadIdx.x] = acc;
    red_c[threadIdx.x] = crossings;
    __syncthreads();
    for (unsigned int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            red_s[threadIdx.x] += red_s[threadIdx.x + s];
            red_c[threadIdx.x] += red_c[threadIdx.x + s];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        rms[t] = sqrtf(fmaxf(red_s[0], 0.0f) / (float)frame_length);
        zcr[t] = (float)red_c[0] / (float)frame_length;
    }
}
