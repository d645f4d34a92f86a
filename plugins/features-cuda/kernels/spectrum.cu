// Framing, Hann windowing and the power spectrum |X_k|^2 of every frame of a batch, one
// thread block per frame. Frame f of an utterance covers samples f*hop - n_fft/2 ..
// f*hop + n_fft/2 (librosa's center=True, pad_mode="constant"): samples outside the
// utterance are zeros. `window` is the full n_fft-point window (a periodic Hann of win_length
// points centred in zeros), computed on the host by the CPU extractor's own code.

// Radix-2 complex FFT in shared memory (2 * n_fft floats of dynamic shared memory), for
// power-of-two n_fft. tw_cos/tw_sin hold cos/sin(2*pi*m/n_fft), m < n_fft/2, computed in
// double on the host.
extern "C" __global__ void stft_power_radix2(
    const float* __restrict__ x, const unsigned int* __restrict__ sample_off,
    const unsigned int* __restrict__ frame_off, unsigned int n_utt,
    const float* __restrict__ window, const float* __restrict__ tw_cos,
    const float* __restrict__ tw_sin, unsigned int n_fft, unsigned int log2n,
    unsigned int hop, float* __restrict__ power) {
    extern __shared__ float sh[];
    float* re = sh;
    float* im = sh + n_fft;
    const unsigned int t = blockIdx.x;
    const unsigned int b = utt_of_frame(frame_off, n_utt, t);
    const unsigned int f = t - frame_off[b];
    const unsigned int start = sample_off[b];
    const long long len = (long long)(sample_off[b + 1] - start);
    const long long first = (long long)f * hop - (long long)(n_fft / 2);
    for (unsigned int i = threadIdx.x; i < n_fft; i += blockDim.x) {
        const long long s = first + i;
        const float v = (s >= 0 && s < len) ? x[start + s] * window[i] : 0.0f;
        const unsigned int r = __brev(i) >> (32 - log2n);
        re[r] = v;
        im[r] = 0.0f;
    }
    __syncthreads();
    for (unsigned int half = 1; half < n_fft; half <<= 1) {
        const unsigned int step = n_fft / (2 * half);
        for (unsigned int j = threadIdx.x; j < n_fft / 2; j += blockDim.x) {
            const unsigned int pos = j & (half - 1);
            const unsigned int i0 = ((j - pos) << 1) + pos;
            const unsigned int i1 = i0 + half;
            // Forward transform: w = exp(-2*pi*i*pos/(2*half)).
            const float wr = tw_cos[pos * step];
            const float wi = -tw_sin[pos * step];
            const float br = re[i1], bi = im[i1];
            const float tr = wr * br - wi * bi;
            const float ti = wr * bi + wi * br;
            const float ar = re[i0], ai = im[i0];
            re[i0] = ar + tr;
            im[i0] = ai + ti;
            re[i1] = ar - tr;
            im[i1] = ai - ti;
        }
        __syncthreads();
    }
    const unsigned int nb = n_fft / 2 + 1;
    for (unsigned int k = threadIdx.x; k < nb; k += blockDim.x) {
        power[(size_t)t * nb + k] = re[k] * re[k] + im[k] * im[k];
    }
}

// Direct DFT for any n_fft (n_fft floats of dynamic shared memory hold the windowed frame).
// tw_cos/tw_sin hold all n_fft twiddles, so every angle is exact to float rounding.
extern "C" __global__ void stft_power_dft(
    const float* __restrict__ x, const unsigned int* __restrict__ sample_off,
    const unsigned int* __restrict__ frame_off, unsigned int n_utt,
    const float* __restrict__ window, const float* __restrict__ tw_cos,
    const float* __restrict__ tw_sin, unsigned int n_fft, unsigned int hop,
    float* __restrict__ power) {
    extern __shared__ float frame[];
    const unsigned int t = blockIdx.x;
    const unsigned int b = utt_of_frame(frame_off, n_utt, t);
    const unsigned int f = t - frame_off[b];
    const unsigned int start = sample_off[b];
    const long long len = (long long)(sample_off[b + 1] - start);
    const long long first = (long long)f * hop - (long long)(n_fft / 2);
    for (unsigned int i = threadIdx.x; i < n_fft; i += blockDim.x) {
        const long long s = first + i;
        frame[i] = (s >= 0 && s < len) ? x[start + s] * window[i] : 0.0f;
    }
    __syncthreads();
    const unsigned int nb = n_fft / 2 + 1;
    for (unsigned int k = threadIdx.x; k < nb; k += blockDim.x) {
        float sr = 0.0f, si = 0.0f;
        unsigned int idx = 0;
        for (unsigned int n = 0; n < n_fft; ++n) {
            const float v = frame[n];
            sr += v * tw_cos[idx];
            si -= v * tw_sin[idx];
            idx += k;
            if (idx >= n_fft) idx -= n_fft;
        }
        power[(size_t)t * nb + k] = sr * sr + si * si;
    }
}
