// Assembling the frame matrix and the per-utterance column statistics.

// Copies an n_frames x src_cols block into columns col_off.. of the n_frames x dst_cols
// output.
extern "C" __global__ void copy_columns(
    const float* __restrict__ src, unsigned int n_frames, unsigned int src_cols,
    float* __restrict__ dst, unsigned int dst_cols, unsigned int col_off) {
    const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)n_frames * src_cols) return;
    const size_t t = idx / src_cols;
    const unsigned int c = (unsigned int)(idx % src_cols);
    dst[t * dst_cols + col_off + c] = src[idx];
}

// Mean and (population) variance of every column over each utterance's own frames, in
// double, two passes like the CPU extractor: grid (n_utt, cols), REDUCE_THREADS per block.
// Writes double statistics for normalisation and float mean/std for the caller.
extern "C" __global__ void column_stats(
    const float* __restrict__ data, unsigned int cols,
    const unsigned int* __restrict__ frame_off, double* __restrict__ mean_var,
    float* __restrict__ stats) {
    __shared__ double red[REDUCE_THREADS];
    const unsigned int b = blockIdx.x, c = blockIdx.y;
    const unsigned int lo = frame_off[b], hi = frame_off[b + 1];
    const double n = (double)(hi - lo);
    double s = 0.0;
    for (unsigned int t = lo + threadIdx.x; t < hi; t += blockDim.x) s += data[(size_t)t * cols + c];
    red[threadIdx.x] = s;
    __syncthreads();
    for (unsigned int k = blockDim.x / 2; k > 0; k >>= 1) {
        if (threadIdx.x < k) red[threadIdx.x] += red[threadIdx.x + k];
        __syncthreads();
    }
    const double mean = red[0] / n;
    __syncthreads();
    double q = 0.0;
    for (unsigned int t = lo + threadIdx.x; t < hi; t += blockDim.x) {
        const double d = (double)data[(size_t)t * cols + c] - mean;
        q += d * d;
    }
    red[threadIdx.x] = q;
    __syncthreads();
    for (unsigned int k = blockDim.x / 2; k > 0; k >>= 1) {
        if (threadIdx.x < k) red[threadIdx.x] += red[threadIdx.x + k];
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        const double var = red[0] / n;
        const size_t o = (size_t)b * cols + c;
        mean_var[2 * o] = mean;
        mean_var[2 * o + 1] = var;
        stats[2 * o] = (float)mean;
        stats[2 * o + 1] = (float)sqrt(var);
    }
}

// Per-utterance column normalisation: mode 1 subtracts the mean, mode 2 also divides by the
// standard deviation (a constant column, variance <= 1e-12, is only centred).
extern "C" __global__ void normalize_columns(
    float* __restrict__ data, unsigned int n_frames, unsigned int cols,
    const unsigned int* __restrict__ frame_off, unsigned int n_utt,
    const double* __restrict__ mean_var, unsigned int mode) {
    const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)n_frames * cols) return;
    const unsigned int t = (unsigned int)(idx / cols);
    const unsigned int c = (unsigned int)(idx % cols);
    const unsigned int b = utt_of_frame(frame_off, n_utt, t);
    const size_t o = (size_t)b * cols + c;
    const double mean = mean_var[2 * o];
    const double var = mean_var[2 * o + 1];
    const double scale = (mode == 2 && var > 1e-12) ? 1.0 / sqrt(var) : 1.0;
    data[idx] = (float)(((double)data[idx] - mean) * scale);
}
