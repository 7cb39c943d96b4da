/*
 * dropout.c — inverted dropout from a counter-based random stream: element
 * i of stream (seed, stream) is kept iff its 32 hashed bits reach the
 * threshold p·2³². No state, so the mask is the same for any thread count
 * and the backward pass regenerates it instead of storing it.
 */
#include "internal.h"

#include <string.h>

enum { DROP_CHUNK = 16384 };

int pk_dropout_keep(uint64_t seed, uint64_t stream, uint64_t index, float p) {
    return pk_random_bits(pk_stream_key(seed, stream), index) >= pk_keep_threshold(p);
}

float pk_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
    uint32_t bits = pk_random_bits(pk_stream_key(seed, stream), index);
    return (float)(bits >> 8) * (1.0f / 16777216.0f);
}

/* out = mask·inp/(1−p), or out += … (the backward) with accumulate. */
static void dropout_apply(float *out, const float *inp, size_t n, float p, uint64_t seed, uint64_t stream,
                          int accumulate) {
    const pk_isa_ops *ops = pk_ops();
    uint64_t key = pk_stream_key(seed, stream);
    uint32_t thr = pk_keep_threshold(p);
    float inv = 1.0f / (1.0f - p);
    size_t nchunks = (n + DROP_CHUNK - 1) / DROP_CHUNK;
    int nt = pk_threads_for(8.0 * n);
    PK_PARALLEL_FOR(nt)
    for (size_t ch = 0; ch < nchunks; ch++) {
        size_t lo = ch * DROP_CHUNK, hi = PK_MIN(n, lo + DROP_CHUNK);
        ops->dropout_span(out + lo, inp + lo, hi - lo, key, (uint32_t)lo, thr, inv, accumulate);
    }
}

void pk_dropout_fwd(float *out, const float *inp, size_t n, float p,
                    uint64_t seed, uint64_t stream) {
    if (p <= 0.0f) {
        if (out != inp) memmove(out, inp, n * sizeof(float));
        return;
    }
    dropout_apply(out, inp, n, p, seed, stream, 0);
}

void pk_dropout_bwd(float *dinp, const float *dout, size_t n, float p,
                    uint64_t seed, uint64_t stream) {
    if (p <= 0.0f) {
        pk_axpy(dinp, dout, 1.0f, n);
        return;
    }
    dropout_apply(dinp, dout, n, p, seed, stream, 1);
}
