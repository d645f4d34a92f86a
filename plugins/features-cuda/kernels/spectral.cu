// Per-frame spectral statistics on the magnitude sqrt(power): centroid and rolloff (one block
// of REDUCE_THREADS per frame), and the onset strength (spectral flux of the log-mel).

extern "C" __global__ void centroid_rolloff(
    const float* __restrict__ power, unsigned int n_bins, double bin_hz, float roll_percent,
    float* __restrict__ centroid, float* __restrict__ rolloff) {
    __shared__ float scan[REDUCE_THREADS];
    __shared__ double wsum[REDUCE_THREADS];
    __shared__ unsigned int found;
    const unsigned int t = blockIdx.x;
    const float* row = power + (size_t)t * n_bins;
    // Each thread owns a contiguous chunk of bins, so the block scan of chunk sums gives
    // every thread the cumulative magnitude before its chunk.
    const unsigned int chunk = (n_bins + blockDim.x - 1) / blockDim.x;
    const unsigned int lo = min(threadIdx.x * chunk, n_bins);
    const unsigned int hi = min(lo + chunk, n_bins);
    float local = 0.0f;
    double weighted = 0.0;
    for (unsigned int k = lo; k < hi; ++k) {
        const float m = sqrtf(fmaxf(row[k], 0.0f));
        local += m;
        weighted += (double)k * (double)m;
    }
    scan[threadIdx.x] = local;
    wsum[threadIdx.x] = weighted;
    if (threadIdx.x == 0) found = n_bins - 1;
    __syncthreads();
    for (unsigned int off = 1; off < blockDim.x; off <<= 1) {
        const float v = threadIdx.x >= off ? scan[threadIdx.x - off] : 0.0f;
        __syncthreads();
        scan[threadIdx.x] += v;
        __syncthreads();
    }
    for (unsigned int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) wsum[threadIdx.x] += wsum[threadIdx.x + s];
        __syncthreads();
    }
    const float total = scan[blockDim.x - 1];
    const float threshold = roll_percent * total;
    float acc = threadIdx.x > 0 ? scan[threadIdx.x - 1] : 0.0f;
    for (unsigned int k = lo; k < hi; ++k) {
        acc += sqrtf(fmaxf(row[k], 0.0f));
        if (acc >= threshold) {
            atomicMin(&found, k);
            break;
        }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        const double norm = (double)total < (double)PROSODIA_FLT_MIN ? 1.0 : (double)total;
        centroid[t] = (float)(bin_hz * wsum[0] / norm);
        rolloff[t] = (float)((double)found * bin_hz);
    }
}

// librosa.onset.onset_strength's finish (lag 1, max_size 1, centred): frame f of an
// utterance holds the mean over bands of max(0, S[f-shift+1] - S[f-shift]), and 0 for the
// first `shift` frames, with shift = 1 + n_fft / (2 * hop).
extern "C" __global__ void onset_flux(
    const float* __restrict__ logmel, unsigned int n_frames, unsigned int bands,
    const unsigned int* __restrict__ frame_off, unsigned int n_utt, unsigned int shift,
    float* __restrict__ out) {
    const unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n_frames) return;
    const unsigned int b = utt_of_frame(frame_off, n_utt, t);
    const unsigned int start = frame_off[b];
    const unsigned int f = t - start;
    if (f < shift) {
        out[t] = 0.0f;
        return;
    }
    const float* prev = logmel + (size_t)(start + f - shift) * bands;
    const float* cur = prev + bands;
    float sum = 0.0f;
    for (unsigned int i = 0; i < bands; ++i) sum += fmaxf(cur[i] - prev[i], 0.0f);
    out[t] = (float)((double)sum / (double)bands);
}
