// MFCCs (orthonormal DCT-II of the log-mel rows) and their Savitzky-Golay deltas.

// One thread per (frame, coefficient); `basis` is n_mfcc x n_mels, taken on the host from the
// CPU extractor's own DCT so both use the same f32 weights.
extern "C" __global__ void dct_mfcc(
    const float* __restrict__ logmel, unsigned int n_frames, unsigned int n_mels,
    const float* __restrict__ basis, unsigned int n_mfcc, float* __restrict__ mfcc) {
    const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)n_frames * n_mfcc) return;
    const size_t t = idx / n_mfcc;
    const unsigned int k = (unsigned int)(idx % n_mfcc);
    const float* row = logmel + t * n_mels;
    const float* w = basis + (size_t)k * n_mels;
    float acc = 0.0f;
    for (unsigned int i = 0; i < n_mels; ++i) acc += w[i] * row[i];
    mfcc[idx] = acc;
}

// librosa.feature.delta(mode="interp") within each utterance: interior frames take the
// weighted window t-h..t+h, the first and last h frames repeat the nearest full window
// (the fitted polynomial's derivative of that order is constant there). The host guarantees
// every utterance has at least `width` frames, as the CPU extractor does.
extern "C" __global__ void delta(
    const float* __restrict__ data, unsigned int n_frames, unsigned int cols,
    const unsigned int* __restrict__ frame_off, unsigned int n_utt,
    const float* __restrict__ weights, unsigned int width, float* __restrict__ out) {
    const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)n_frames * cols) return;
    const unsigned int t = (unsigned int)(idx / cols);
    const unsigned int c = (unsigned int)(idx % cols);
    const unsigned int b = utt_of_frame(frame_off, n_utt, t);
    const unsigned int start = frame_off[b];
    const unsigned int count = frame_off[b + 1] - start;
    const unsigned int h = width / 2;
    unsigned int centre = t - start;
    if (centre < h) centre = h;
    if (centre > count - 1 - h) centre = count - 1 - h;
    float acc = 0.0f;
    for (unsigned int j = 0; j < width; ++j) {
        acc += weights[j] * data[(size_t)(start + centre + j - h) * cols + c];
    }
    out[idx] = acc;
}
