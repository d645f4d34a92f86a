// Shared by every kernel file: the host prepends this text before NVRTC compiles a file, so
// no include path is needed at run time.
//
// A batch is packed without padding: utterance b's samples are x[sample_off[b] ..
// sample_off[b+1]) and its frames are rows frame_off[b] .. frame_off[b+1] of every per-frame
// matrix. Kernels index frames globally and find the utterance by binary search, so reads
// never cross into a neighbouring utterance: the centred padding is synthesised (zeros, or
// the edge sample for the zero-crossing rate), never read from memory.

#define PROSODIA_FLT_MAX 3.402823466e+38f
#define PROSODIA_FLT_MIN 1.175494351e-38f
#define REDUCE_THREADS 256

// The utterance whose frame range holds global frame t (frame_off has n_utt + 1 entries and
// every utterance has at least one frame).
__device__ __forceinline__ unsigned int utt_of_frame(const unsigned int* __restrict__ frame_off,
                                                     unsigned int n_utt, unsigned int t) {
    unsigned int lo = 0, hi = n_utt;
    while (hi - lo > 1) {
        unsigned int mid = (lo + hi) >> 1;
        if (frame_off[mid] <= t) lo = mid; else hi = mid;
    }
    return lo;
}
