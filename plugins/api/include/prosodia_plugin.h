/*
 * prosodia_plugin.h — the Prosodia plugin ABI, version 1.0, for plugins written in C.
 *
 * Hand-written mirror of plugins/api/src/abi.rs; plugins/api/tests/header.rs compiles this
 * header and checks every struct size, field offset and constant against the Rust side.
 *
 * A plugin library exports one function, prosodia_plugin_v1, returning a descriptor that
 * lives as long as the library. The host refuses a library whose abi_major differs from its
 * own or whose abi_minor is newer. Every fallible function returns PROSODIA_OK (0) or an
 * error code, and stores a message that the host reads with last_error() on the same
 * thread before its next call. Functions may be called from any thread; extract/run may run
 * concurrently on one handle; destroy is called once, after every other call on the handle.
 * Within a major version new fields are only appended at the end of a table.
 */
#ifndef PROSODIA_PLUGIN_H
#define PROSODIA_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PROSODIA_ABI_MAJOR 1u
#define PROSODIA_ABI_MINOR 0u
#define PROSODIA_ENTRY_SYMBOL "prosodia_plugin_v1"

/* Status codes. */
#define PROSODIA_OK 0
#define PROSODIA_ERR_INVALID_ARGUMENT 1 /* bad configuration, null pointer, bad model file */
#define PROSODIA_ERR_INVALID_INPUT 2    /* empty batch, empty utterance, wrong rate/shape */
#define PROSODIA_ERR_UNSUPPORTED 3
#define PROSODIA_ERR_INTERNAL 4
#define PROSODIA_ERR_PANIC 5 /* reserved for Rust plugins: a caught panic */

/* ProsodiaPluginDescriptor.kind */
#define PROSODIA_KIND_FEATURE_EXTRACTOR 1u
#define PROSODIA_KIND_MODEL_BACKEND 2u

/* ProsodiaExtractorInfo.layout */
#define PROSODIA_LAYOUT_FRAMES 1u /* one row per frame */
#define PROSODIA_LAYOUT_VECTOR 2u /* one row per utterance */

/* ProsodiaTensorInfo.dtype */
#define PROSODIA_DTYPE_F32 1u
#define PROSODIA_DTYPE_I64 2u
#define PROSODIA_DTYPE_I32 3u

/* A dimension fixed only at run time. */
#define PROSODIA_DIM_DYNAMIC (-1)

/* A borrowed UTF-8 string, not NUL-terminated. {NULL, 0} is the empty string. */
typedef struct ProsodiaStr {
    const char *ptr;
    size_t len;
} ProsodiaStr;

/* A ProsodiaStr from a string literal. */
#define PROSODIA_STR(literal) {(literal), sizeof(literal) - 1}

/* A borrowed run of f32 samples. */
typedef struct ProsodiaF32Slice {
    const float *ptr;
    size_t len;
} ProsodiaF32Slice;

/* A row-major rows x cols matrix owned by the plugin. */
typedef struct ProsodiaMatrix {
    const float *data;
    size_t rows;
    size_t cols;
} ProsodiaMatrix;

/* Opaque handles. */
typedef struct ProsodiaExtractor ProsodiaExtractor;
typedef struct ProsodiaBackend ProsodiaBackend;

/* An extractor's output declaration; pointers valid until the handle is destroyed. */
typedef struct ProsodiaExtractorInfo {
    uint32_t sample_rate; /* Hz; 0 accepts any rate */
    uint32_t layout;      /* PROSODIA_LAYOUT_* */
    size_t width;         /* output columns */
    const ProsodiaStr *column_names; /* width names */
} ProsodiaExtractorInfo;

/* One extract() result: count matrices (one per utterance) owned through `owner`. */
typedef struct ProsodiaFeatureOutput {
    const ProsodiaMatrix *items;
    size_t count;
    void *owner;
} ProsodiaFeatureOutput;

typedef struct ProsodiaExtractorVTable {
    size_t struct_size; /* sizeof(ProsodiaExtractorVTable) */
    /* Creates an extractor from TOML ("" selects defaults). */
    int32_t (*create)(ProsodiaStr config_toml, ProsodiaExtractor **out);
    void (*destroy)(ProsodiaExtractor *extractor);
    int32_t (*info)(const ProsodiaExtractor *extractor, ProsodiaExtractorInfo *out);
    /* count mono utterances at sample_rate Hz. An empty batch or utterance is
     * PROSODIA_ERR_INVALID_INPUT. On success *out must later go to release_output. */
    int32_t (*extract)(const ProsodiaExtractor *extractor, const ProsodiaF32Slice *utterances, size_t count,
                       uint32_t sample_rate, ProsodiaFeatureOutput *out);
    void (*release_output)(const ProsodiaExtractor *extractor, ProsodiaFeatureOutput *out);
} ProsodiaExtractorVTable;

/* A model tensor declaration. */
typedef struct ProsodiaTensorInfo {
    ProsodiaStr name;
    uint32_t dtype; /* PROSODIA_DTYPE_* */
    uint32_t rank;
    const int64_t *dims; /* rank sizes, PROSODIA_DIM_DYNAMIC where unknown */
} ProsodiaTensorInfo;

/* A backend's declaration; pointers valid until the handle is destroyed. */
typedef struct ProsodiaBackendInfo {
    const ProsodiaTensorInfo *inputs;
    size_t n_inputs;
    const ProsodiaTensorInfo *outputs;
    size_t n_outputs;
    size_t num_classes;
} ProsodiaBackendInfo;

/* A padded [n, t, f] row-major batch and each item's valid frame count (1..=t). */
typedef struct ProsodiaBatch {
    const float *data;
    size_t n;
    size_t t;
    size_t f;
    const size_t *lengths;
} ProsodiaBatch;

typedef struct ProsodiaBackendVTable {
    size_t struct_size; /* sizeof(ProsodiaBackendVTable) */
    int32_t (*load)(ProsodiaStr model_path, ProsodiaStr config_toml, ProsodiaBackend **out);
    void (*destroy)(ProsodiaBackend *backend);
    int32_t (*info)(const ProsodiaBackend *backend, ProsodiaBackendInfo *out);
    /* Writes n * num_classes probabilities into out (out_len == n * num_classes). */
    int32_t (*run)(const ProsodiaBackend *backend, const ProsodiaBatch *batch, float *out, size_t out_len);
} ProsodiaBackendVTable;

typedef struct ProsodiaPluginDescriptor {
    uint32_t abi_major; /* PROSODIA_ABI_MAJOR; never moves */
    uint32_t abi_minor; /* PROSODIA_ABI_MINOR; never moves */
    uint32_t kind;      /* PROSODIA_KIND_* */
    uint32_t reserved;  /* 0 */
    ProsodiaStr name;
    ProsodiaStr version;
    /* This thread's last error message, valid until the next call into the plugin. */
    ProsodiaStr (*last_error)(void);
    /* Live handles plus unreleased outputs (leak checks). */
    uint64_t (*live_objects)(void);
    const ProsodiaExtractorVTable *extractor; /* kind == FEATURE_EXTRACTOR, else NULL */
    const ProsodiaBackendVTable *backend;     /* kind == MODEL_BACKEND, else NULL */
} ProsodiaPluginDescriptor;

/* The one exported entry point. */
typedef const ProsodiaPluginDescriptor *(*ProsodiaEntryFn)(void);
const ProsodiaPluginDescriptor *prosodia_plugin_v1(void);

#ifdef __cplusplus
}
#endif

#endif /* PROSODIA_PLUGIN_H */
