/*
 * softmax.c — (log-)softmax over rows with masks, forward and backward;
 * rows in parallel over the vectorised row bodies (softmax_simd.inc).
 */
#include "internal.h"

static void softmax_rows(float *out, const float *inp, const uint8_t *mask,
                         int N, int C, int log_domain) {
    const pk_isa_ops *ops = pk_ops();
    int nt = pk_threads_for(8.0 * N * C);
    PK_PARALLEL_FOR(nt)
    for (int n = 0; n < N; n++)
        ops->softmax_row(out + (size_t)n * C, inp + (size_t)n * C,
                         mask ? mask + (size_t)n * C : NULL, C, log_domain);
}

static void softmax_bwd_rows(float *dinp, const float *dout, const float *out,
                             int N, int C, int log_domain) {
    const pk_isa_ops *ops = pk_ops();
    int nt = pk_threads_for(8.0 * N * C);
    PK_PARALLEL_FOR(nt)
    for (int n = 0; n < N; n++)
        ops->softmax_bwd_row(dinp + (size_t)n * C, dout + (size_t)n * C,
                             out + (size_t)n * C, C, log_domain);
}

void pk_softmax_fwd(float *out, const float *inp, const uint8_t *mask, int N,
                    int C) {
    softmax_rows(out, inp, mask, N, C, 0);
}

void pk_log_softmax_fwd(float *out, const float *inp, const uint8_t *mask,
                        int N, int C) {
    softmax_rows(out, inp, mask, N, C, 1);
}

void pk_softmax_bwd(float *dinp, const float *dout, const float *out, int N,
                    int C) {
    softmax_bwd_rows(dinp, dout, out, N, C, 0);
}

void pk_log_softmax_bwd(float *dinp, const float *dout, const float *out,
                        int N, int C) {
    softmax_bwd_rows(dinp, dout, out, N, C, 1);
}

static void naive_rows(float *out, const float *inp, const uint8_t *mask,
                       int N, int C, int log_domain) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *y = out + (size_t)n * C;
        const uint8_t *m = mask ? mask + (size_t)n * C : NULL;
        float mx = -INFINITY;
        for (int c = 0; c < C; c++)
            if (!m || m[c]) mx = x[c] > mx ? x[c] : mx;
        if (mx == -INFINITY) {
            for (int c = 0; c < C; c++) y[c] = 0.0f;
            continue;
        }
        float sum = 0.0f;
        for (int c = 0; c < C; c++)
            if (!m || m[c]) sum += expf(x[c] - mx);
        for (int c = 0; c < C; c++) {
            int keep = !m || m[c];
            if (log_domain) y[c] = keep ? x[c] - mx - logf(sum) : -INFINITY;
            else y[c] = keep ? expf(x[c] - mx) / sum : 0.0f;
        }
    }
}

void pk_softmax_fwd_naive(float *out, const float *inp, const uint8_t *mask,
                          int N, int C) {
    naive_rows(out, inp, mask, N, C, 0);
}

void pk_log_softmax_fwd_naive(float *out, const float *inp,
                              const uint8_t *mask, int N, int C) {
    naive_rows(out, inp, mask, N, C, 1);
}
