/*
 * c_energy_zcr — a Prosodia feature-extractor plugin in plain C (ABI 1.0).
 *
 * Two frame features on librosa's centred frame grid, defined exactly as in
 * server/dsp/src/framing.rs:
 *   rms: sqrt(mean(x^2)) over each frame, zero padding frame_length/2 on both sides;
 *   zcr: fraction of sample pairs in the frame whose signs differ (|x| <= 1e-10 counts as
 *        zero, zero counts as positive), edge padding (repeat the end samples).
 *
 * Configuration (TOML subset, every key optional):
 *   frame_length = 2048   hop_length = 512   sample_rate = 48000  (0: any rate)
 *
 * Build: cc -std=c11 -O2 -shared -fPIC -I plugins/api/include energy_zcr.c -o libc_energy_zcr.so
 * Compile-time knobs: -DPLUGIN_VERSION='"1.2.3"'; test-only faults (never in real plugins):
 * -DFAULT_NAN (every value NaN), -DFAULT_WIDTH (3 columns returned, 2 declared),
 * -DFAULT_ABI_MAJOR=n / -DFAULT_ABI_MINOR=n (claim another ABI version),
 * -DFAULT_NO_ENTRY (export no entry symbol), -DFAULT_LEAK (destroy forgets to free),
 * -DFAULT_BATCH_STATE (later utterances of a batch come out scaled).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prosodia_plugin.h"

#ifndef PLUGIN_VERSION
#define PLUGIN_VERSION "1.0.0"
#endif
#ifndef FAULT_ABI_MAJOR
#define FAULT_ABI_MAJOR PROSODIA_ABI_MAJOR
#endif
#ifndef FAULT_ABI_MINOR
#define FAULT_ABI_MINOR PROSODIA_ABI_MINOR
#endif
#ifdef FAULT_WIDTH
#define OUT_COLS 3
#else
#define OUT_COLS 2
#endif

/* ---- errors and bookkeeping ------------------------------------------------------------ */

static _Thread_local char last_error_buf[256];
static uint64_t live; /* handles + unreleased outputs, updated atomically */

static int32_t fail(int32_t code, const char *message) {
    snprintf(last_error_buf, sizeof last_error_buf, "%s", message);
    return code;
}

static ProsodiaStr last_error(void) {
    ProsodiaStr s = {last_error_buf, strlen(last_error_buf)};
    return s;
}

static uint64_t live_objects(void) { return __atomic_load_n(&live, __ATOMIC_SEQ_CST); }

/* ---- the extractor ----------------------------------------------------------------------- */

typedef struct Config {
    size_t frame_length;
    size_t hop_length;
    uint32_t sample_rate;
} Config;

static const ProsodiaStr column_names[2] = {PROSODIA_STR("rms"), PROSODIA_STR("zcr")};

/* Parses `key = integer` lines; blank lines and # comments are ignored. */
static int32_t parse_config(ProsodiaStr text, Config *cfg) {
    cfg->frame_length = 2048;
    cfg->hop_length = 512;
    cfg->sample_rate = 48000;
    size_t i = 0;
    while (i < text.len) {
        size_t end = i;
        while (end < text.len && text.ptr[end] != '\n') end++;
        char line[256];
        size_t n = end - i < sizeof line - 1 ? end - i : sizeof line - 1;
        memcpy(line, text.ptr + i, n);
        line[n] = '\0';
        i = end + 1;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char key[64];
        unsigned long long value;
        char rest;
        if (sscanf(line, " %63[a-z_] = %llu %c", key, &value, &rest) == 2) {
            if (strcmp(key, "frame_length") == 0) cfg->frame_length = (size_t)value;
            else if (strcmp(key, "hop_length") == 0) cfg->hop_length = (size_t)value;
            else if (strcmp(key, "sample_rate") == 0) cfg->sample_rate = (uint32_t)value;
            else {
                char msg[128];
                snprintf(msg, sizeof msg, "unknown configuration key \"%s\"", key);
                return fail(PROSODIA_ERR_INVALID_ARGUMENT, msg);
            }
        } else {
            char *p = line;
            while (*p == ' ' || *p == '\t' || *p == '\r') p++;
            if (*p != '\0') return fail(PROSODIA_ERR_INVALID_ARGUMENT, "configuration lines must be `key = integer`");
        }
    }
    if (cfg->frame_length < 2 || cfg->hop_length == 0)
        return fail(PROSODIA_ERR_INVALID_ARGUMENT, "frame_length must be >= 2 and hop_length >= 1");
    return PROSODIA_OK;
}

static int32_t create(ProsodiaStr config_toml, ProsodiaExtractor **out) {
    if (!out) return fail(PROSODIA_ERR_INVALID_ARGUMENT, "out is null");
    Config cfg;
    int32_t rc = parse_config(config_toml, &cfg);
    if (rc != PROSODIA_OK) return rc;
    Config *handle = malloc(sizeof *handle);
    if (!handle) return fail(PROSODIA_ERR_INTERNAL, "out of memory");
    *handle = cfg;
    __atomic_add_fetch(&live, 1, __ATOMIC_SEQ_CST);
    *out = (ProsodiaExtractor *)handle;
    return PROSODIA_OK;
}

static void destroy(ProsodiaExtractor *extractor) {
    if (!extractor) return;
#ifdef FAULT_LEAK
    return;
#endif
    free(extractor);
    __atomic_sub_fetch(&live, 1, __ATOMIC_SEQ_CST);
}

static int32_t info(const ProsodiaExtractor *extractor, ProsodiaExtractorInfo *out) {
    if (!extractor || !out) return fail(PROSODIA_ERR_INVALID_ARGUMENT, "null argument");
    const Config *cfg = (const Config *)extractor;
    out->sample_rate = cfg->sample_rate;
    out->layout = PROSODIA_LAYOUT_FRAMES;
    out->width = 2;
    out->column_names = column_names;
    return PROSODIA_OK;
}

static size_t frame_count(size_t len, size_t frame_length, size_t hop) {
    size_t padded = len + 2 * (frame_length / 2);
    return padded < frame_length ? 0 : 1 + (padded - frame_length) / hop;
}

static int negative_at(const float *y, size_t len, long i) {
    long idx = i < 0 ? 0 : (i >= (long)len ? (long)len - 1 : i);
    float v = y[idx];
    return fabsf(v) > 1e-10f && v < 0.0f;
}

/* Fills `frames` rows of [rms, zcr] for one utterance. */
static void features(const Config *cfg, const float *y, size_t len, float *out, size_t frames) {
    long pad = (long)(cfg->frame_length / 2);
    for (size_t t = 0; t < frames; t++) {
        long start = (long)(t * cfg->hop_length) - pad;
        double power = 0.0;
        for (long i = start; i < start + (long)cfg->frame_length; i++) {
            if (i >= 0 && i < (long)len) power += (double)y[i] * (double)y[i];
        }
        unsigned crossings = 0;
        for (long i = start + 1; i < start + (long)cfg->frame_length; i++) {
            if (negative_at(y, len, i) != negative_at(y, len, i - 1)) crossings++;
        }
        float *row = out + t * OUT_COLS;
        row[0] = (float)sqrt(power / (double)cfg->frame_length);
        row[1] = (float)crossings / (float)cfg->frame_length;
#ifdef FAULT_WIDTH
        row[2] = 0.0f;
#endif
#ifdef FAULT_NAN
        row[0] = row[1] = NAN;
#endif
    }
}

/* One allocation owns the output: [matrices][values of every matrix]. */
static int32_t extract(const ProsodiaExtractor *extractor, const ProsodiaF32Slice *utterances, size_t count,
                       uint32_t sample_rate, ProsodiaFeatureOutput *out) {
    if (!extractor || !out) return fail(PROSODIA_ERR_INVALID_ARGUMENT, "null argument");
    const Config *cfg = (const Config *)extractor;
    if (count == 0) return fail(PROSODIA_ERR_INVALID_INPUT, "empty batch: pass at least one utterance");
    if (!utterances) return fail(PROSODIA_ERR_INVALID_ARGUMENT, "utterances is null");
    if (sample_rate == 0 || (cfg->sample_rate != 0 && sample_rate != cfg->sample_rate)) {
        char msg[128];
        snprintf(msg, sizeof msg, "audio is at %u Hz but the extractor is configured for %u Hz", sample_rate,
                 cfg->sample_rate);
        return fail(PROSODIA_ERR_INVALID_INPUT, msg);
    }
    size_t total = 0;
    for (size_t u = 0; u < count; u++) {
        if (utterances[u].len == 0 || !utterances[u].ptr) {
            char msg[64];
            snprintf(msg, sizeof msg, "utterance %zu has no samples", u);
            return fail(PROSODIA_ERR_INVALID_INPUT, msg);
        }
        total += frame_count(utterances[u].len, cfg->frame_length, cfg->hop_length) * OUT_COLS;
    }
    size_t header = count * sizeof(ProsodiaMatrix);
    unsigned char *block = malloc(header + total * sizeof(float));
    if (!block) return fail(PROSODIA_ERR_INTERNAL, "out of memory");
    ProsodiaMatrix *items = (ProsodiaMatrix *)block;
    float *values = (float *)(block + header);
    for (size_t u = 0; u < count; u++) {
        size_t frames = frame_count(utterances[u].len, cfg->frame_length, cfg->hop_length);
        features(cfg, utterances[u].ptr, utterances[u].len, values, frames);
#ifdef FAULT_BATCH_STATE
        for (size_t k = 0; k < frames * OUT_COLS; k++) values[k] *= (float)(u + 1);
#endif
        items[u].data = values;
        items[u].rows = frames;
        items[u].cols = OUT_COLS;
        values += frames * OUT_COLS;
    }
    out->items = items;
    out->count = count;
    out->owner = block;
    __atomic_add_fetch(&live, 1, __ATOMIC_SEQ_CST);
    return PROSODIA_OK;
}

static void release_output(const ProsodiaExtractor *extractor, ProsodiaFeatureOutput *out) {
    (void)extractor;
    if (!out || !out->owner) return;
    free(out->owner);
    out->owner = NULL;
    out->items = NULL;
    out->count = 0;
    __atomic_sub_fetch(&live, 1, __ATOMIC_SEQ_CST);
}

static const ProsodiaExtractorVTable vtable = {
    sizeof(ProsodiaExtractorVTable), create, destroy, info, extract, release_output,
};

static const ProsodiaPluginDescriptor descriptor = {
    FAULT_ABI_MAJOR,
    FAULT_ABI_MINOR,
    PROSODIA_KIND_FEATURE_EXTRACTOR,
    0,
    PROSODIA_STR("c_energy_zcr"),
    PROSODIA_STR(PLUGIN_VERSION),
    last_error,
    live_objects,
    &vtable,
    NULL,
};

#ifndef FAULT_NO_ENTRY
__attribute__((visibility("default"))) const ProsodiaPluginDescriptor *prosodia_plugin_v1(void) {
    return &descriptor;
}
#else
__attribute__((visibility("default"))) const ProsodiaPluginDescriptor *not_a_prosodia_plugin(void) {
    return &descriptor;
}
#endif
