/* A model backend in C for the server's plugin tests: whatever the input, every item gets
 * probability 0.5 on class WINNER and 0.1 on each of the other five. Built with
 * -DPLUGIN_VERSION="x" -DWINNER=n, so a rebuilt library visibly answers differently;
 * -DFAULT_NAN makes every probability NaN. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prosodia_plugin.h"

#ifndef PLUGIN_NAME
#define PLUGIN_NAME "c_fixed"
#endif
#ifndef PLUGIN_VERSION
#define PLUGIN_VERSION "1.0.0"
#endif
#ifndef WINNER
#define WINNER 3
#endif
#define CLASSES 6

static _Thread_local char last_error_buf[256];
static uint64_t live;

static int32_t fail(int32_t code, const char *m) {
    snprintf(last_error_buf, sizeof last_error_buf, "%s", m);
    return code;
}
static ProsodiaStr last_error(void) {
    ProsodiaStr s = {last_error_buf, strlen(last_error_buf)};
    return s;
}
static uint64_t live_objects(void) { return __atomic_load_n(&live, __ATOMIC_SEQ_CST); }

static const int64_t in_dims[3] = {PROSODIA_DIM_DYNAMIC, PROSODIA_DIM_DYNAMIC, PROSODIA_DIM_DYNAMIC};
static const int64_t out_dims[2] = {PROSODIA_DIM_DYNAMIC, CLASSES};
static const ProsodiaTensorInfo inputs[1] = {{PROSODIA_STR("features"), PROSODIA_DTYPE_F32, 3, in_dims}};
static const ProsodiaTensorInfo outputs[1] = {{PROSODIA_STR("probabilities"), PROSODIA_DTYPE_F32, 2, out_dims}};

typedef struct Model { int unused; } Model;

static int32_t load(ProsodiaStr model_path, ProsodiaStr config_toml, ProsodiaBackend **out) {
    (void)config_toml;
    if (!out) return fail(PROSODIA_ERR_INVALID_ARGUMENT, "out is null");
    if (model_path.len == 0) return fail(PROSODIA_ERR_INVALID_ARGUMENT, "empty model path");
    Model *m = malloc(sizeof *m);
    if (!m) return fail(PROSODIA_ERR_INTERNAL, "out of memory");
    __atomic_add_fetch(&live, 1, __ATOMIC_SEQ_CST);
    *out = (ProsodiaBackend *)m;
    return PROSODIA_OK;
}

static void destroy(ProsodiaBackend *b) {
    if (!b) return;
    free(b);
    __atomic_sub_fetch(&live, 1, __ATOMIC_SEQ_CST);
}

static int32_t info(const ProsodiaBackend *b, ProsodiaBackendInfo *out) {
    if (!b || !out) return fail(PROSODIA_ERR_INVALID_ARGUMENT, "null argument");
    out->inputs = inputs;
    out->n_inputs = 1;
    out->outputs = outputs;
    out->n_outputs = 1;
    out->num_classes = CLASSES;
    return PROSODIA_OK;
}

static int32_t run(const ProsodiaBackend *b, const ProsodiaBatch *batch, float *out, size_t out_len) {
    if (!b || !batch || !out) return fail(PROSODIA_ERR_INVALID_ARGUMENT, "null argument");
    if (out_len != batch->n * CLASSES) return fail(PROSODIA_ERR_INVALID_ARGUMENT, "wrong output size");
    for (size_t i = 0; i < batch->n; i++)
        for (size_t c = 0; c < CLASSES; c++) {
#ifdef FAULT_NAN
            out[i * CLASSES + c] = NAN;
#else
            out[i * CLASSES + c] = c == WINNER ? 0.5f : 0.1f;
#endif
        }
    return PROSODIA_OK;
}

static const ProsodiaBackendVTable vtable = {sizeof(ProsodiaBackendVTable), load, destroy, info, run};
static const ProsodiaPluginDescriptor descriptor = {
    PROSODIA_ABI_MAJOR, PROSODIA_ABI_MINOR, PROSODIA_KIND_MODEL_BACKEND, 0,
    PROSODIA_STR(PLUGIN_NAME), PROSODIA_STR(PLUGIN_VERSION), last_error, live_objects, NULL, &vtable,
};

__attribute__((visibility("default"))) const ProsodiaPluginDescriptor *prosodia_plugin_v1(void) {
    return &descriptor;
}
