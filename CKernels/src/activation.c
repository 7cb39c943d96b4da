/*
 * activation.c — ReLU, GELU, residual add, axpy and scale (vectorised
 * bodies in activation_simd.inc). Elementwise work is split in fixed chunks.
 */
#include "internal.h"

enum { ACT_CHUNK = 16384 };

#define CHUNKED_FOR(n, cost, ...)                                          \
    do {                                                                   \
        size_t nchunks_ = ((n) + ACT_CHUNK - 1) / ACT_CHUNK;               \
        int nt_ = pk_threads_for((double)(n) * (cost));                    \
        PK_PARALLEL_FOR(nt_)                                               \
        for (size_t ch_ = 0; ch_ < nchunks_; ch_++) {                      \
            size_t lo = ch_ * ACT_CHUNK;                                   \
            size_t hi = PK_MIN((n), lo + ACT_CHUNK);                       \
            __VA_ARGS__                                                    \
        }                                                                  \
    } while (0)

void pk_relu_fwd(float *out, const float *inp, size_t n) {
    const pk_isa_ops *ops = pk_ops();
    CHUNKED_FOR(n, 1.0, { ops->relu_fwd_span(out + lo, inp + lo, hi - lo); });
}

void pk_relu_bwd(float *dinp, const float *dout, const float *out, size_t n) {
    const pk_isa_ops *ops = pk_ops();
    CHUNKED_FOR(n, 1.0, { ops->relu_bwd_span(dinp + lo, dout + lo, out + lo, hi - lo); });
}

void pk_relu_bwd_inplace(float *d, const float *out, float scale, size_t n) {
    const pk_isa_ops *ops = pk_ops();
    CHUNKED_FOR(n, 1.0, { ops->relu_bwd_inplace_span(d + lo, out + lo, scale, hi - lo); });
}

void pk_gelu_fwd(float *out, const float *inp, size_t n) {
    const pk_isa_ops *ops = pk_ops();
    CHUNKED_FOR(n, 30.0, { ops->gelu_fwd(out + lo, inp + lo, hi - lo); });
}

void pk_gelu_bwd(float *dinp, const float *dout, const float *inp, size_t n) {
    const pk_isa_ops *ops = pk_ops();
    CHUNKED_FOR(n, 40.0, { ops->gelu_bwd(dinp + lo, dout + lo, inp + lo, hi - lo); });
}

void pk_gelu_fwd_naive(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = pk_gelu_scalar(inp[i]);
}

void pk_gelu_bwd_naive(float *dinp, const float *dout, const float *inp,
                       size_t n) {
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * pk_gelu_grad_scalar(inp[i]);
}

void pk_add(float *out, const float *a, const float *b, size_t n) {
    const pk_isa_ops *ops = pk_ops();
    CHUNKED_FOR(n, 1.0, { ops->axpby_span(out + lo, a + lo, b + lo, 1.0f, hi - lo); });
}

void pk_axpy(float *y, const float *x, float alpha, size_t n) {
    const pk_isa_ops *ops = pk_ops();
    CHUNKED_FOR(n, 1.0, { ops->axpby_span(y + lo, y + lo, x + lo, alpha, hi - lo); });
}

void pk_scale(float *x, float alpha, size_t n) {
    const pk_isa_ops *ops = pk_ops();
    CHUNKED_FOR(n, 1.0, { ops->scale_span(x + lo, alpha, hi - lo); });
}
