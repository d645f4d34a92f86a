// Slaney mel filterbank and power_to_db(ref=1, amin, top_db) per utterance.

// One thread per (frame, band): the band's sparse triangle (first bin, length, offset into
// `weights`, built on the host from the CPU filterbank) dotted with the power row, then
// 10*log10(max(amin, v)). ref = 1 makes the reference term 0.
extern "C" __global__ void mel_db(
    const float* __restrict__ power, unsigned int n_frames, unsigned int n_bins,
    const unsigned int* __restrict__ spans, const float* __restrict__ weights,
    unsigned int n_mels, float amin, float* __restrict__ out) {
    const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)n_frames * n_mels) return;
    const size_t t = idx / n_mels;
    const unsigned int m = (unsigned int)(idx % n_mels);
    const unsigned int first = spans[3 * m], len = spans[3 * m + 1], off = spans[3 * m + 2];
    const float* row = power + t * n_bins + first;
    float acc = 0.0f;
    for (unsigned int i = 0; i < len; ++i) acc += weights[off + i] * row[i];
    out[idx] = 10.0f * log10f(fminf(fmaxf(amin, acc), PROSODIA_FLT_MAX));
}

// Largest value of each utterance's rows (one block of REDUCE_THREADS per utterance): the
// top_db floor is relative to the utterance's own maximum, never the batch's.
extern "C" __global__ void utt_max(
    const float* __restrict__ data, unsigned int cols,
    const unsigned int* __restrict__ frame_off, float* __restrict__ out_max) {
    __shared__ float red[REDUCE_THREADS];
    const unsigned int b = blockIdx.x;
    const size_t lo = (size_t)frame_off[b] * cols, hi = (size_t)frame_off[b + 1] * cols;
    float m = -PROSODIA_FLT_MAX;
    for (size_t i = lo + threadIdx.x; i < hi; i += blockDim.x) m = fmaxf(m, data[i]);
    red[threadIdx.x] = m;
    __syncthreads();
    for (unsigned int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) red[threadIdx.x] = fmaxf(red[threadIdx.x], red[threadIdx.x + s]);
        __syncthreads();
    }
    if (threadIdx.x == 0) out_max[b] = red[0];
}

// Raises every value to at least its utterance's maximum minus top_db.
extern "C" __global__ void db_floor(
    float* __restrict__ data, unsigned int n_frames, unsigned int cols,
    const unsigned int* __restrict__ frame_off, unsigned int n_utt,
    const float* __restrict__ umax, float top_db) {
    const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)n_frames * cols) return;
    const unsigned int t = (unsigned int)(idx / cols);
    const unsigned int b = utt_of_frame(frame_off, n_utt, t);
    data[idx] = fmaxf(data[idx], umax[b] - top_db);
}
