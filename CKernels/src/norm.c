/*
 * norm.c — RMSNorm (T5) and LayerNorm (SASRec), forward and backward, and
 * naive twins, over the vectorised rows of norm_simd.inc. Rows are
 * independent; the weight/bias gradients are summed over rows in row
 * order, parallel over column ranges (pk_column_part).
 */
#include "internal.h"

void pk_rmsnorm_fwd(float *out, float *rstd, const float *inp,
                    const float *weight, int N, int C, float eps) {
    const pk_isa_ops *ops = pk_ops();
    int nt = pk_threads_for(4.0 * N * C);
    PK_PARALLEL_FOR(nt)
    for (int n = 0; n < N; n++)
        rstd[n] = ops->rmsnorm_fwd_row(out + (size_t)n * C, inp + (size_t)n * C, weight, C, eps);
}

/* acc[c0..c1) += Σ_n dout[n,c]·((inp[n,c] − shift_n)·scale_n), rows in
 * order, parallel over column ranges (shift: mean or none). */
static void weight_grad(float *acc, const float *dout, const float *inp,
                        const float *shift, const float *scale, int N, int C,
                        int nt) {
    const pk_isa_ops *ops = pk_ops();
    int parts = PK_MIN(nt, (C + 15) / 16);
    PK_PARALLEL_FOR(parts)
    for (int part = 0; part < parts; part++) {
        int c0, c1;
        pk_column_part(C, part, parts, &c0, &c1);
        for (int n = 0; n < N; n++)
            ops->norm_weight_grad_span(acc + c0, dout + (size_t)n * C + c0, inp + (size_t)n * C + c0,
                                       shift ? shift[n] : 0.0f, scale[n], c1 - c0);
    }
}

void pk_rmsnorm_bwd(float *dinp, float *dweight, const float *dout,
                    const float *inp, const float *weight, const float *rstd,
                    int N, int C) {
    const pk_isa_ops *ops = pk_ops();
    int nt = pk_threads_for(6.0 * N * C);
    if (dinp) {
        PK_PARALLEL_FOR(nt)
        for (int n = 0; n < N; n++)
            ops->rmsnorm_bwd_row(dinp + (size_t)n * C, dout + (size_t)n * C, inp + (size_t)n * C, weight, rstd[n], C);
    }
    if (dweight) weight_grad(dweight, dout, inp, NULL, rstd, N, C, nt);
}

void pk_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp,
                      const float *weight, const float *bias, int N, int C,
                      float eps) {
    const pk_isa_ops *ops = pk_ops();
    int nt = pk_threads_for(6.0 * N * C);
    PK_PARALLEL_FOR(nt)
    for (int n = 0; n < N; n++)
        ops->layernorm_fwd_row(out + (size_t)n * C, mean + n, rstd + n, inp + (size_t)n * C, weight, bias, C, eps);
}

void pk_layernorm_bwd(float *dinp, float *dweight, float *dbias,
                      const float *dout, const float *inp, const float *weight,
                      const float *mean, const float *rstd, int N, int C) {
    const pk_isa_ops *ops = pk_ops();
    int nt = pk_threads_for(8.0 * N * C);
    if (dinp) {
        PK_PARALLEL_FOR(nt)
        for (int n = 0; n < N; n++)
            ops->layernorm_bwd_row(dinp + (size_t)n * C, dout + (size_t)n * C, inp + (size_t)n * C, weight, mean[n],
                                   rstd[n], C);
    }
    if (dweight) weight_grad(dweight, dout, inp, mean, rstd, N, C, nt);
    if (dbias) pk_column_sum(dbias, dout, N, C);
}

void pk_rmsnorm_fwd_naive(float *out, float *rstd, const float *inp,
                          const float *weight, int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        float ss = 0.0f;
        for (int c = 0; c < C; c++) ss += inp[(size_t)n * C + c] * inp[(size_t)n * C + c];
        rstd[n] = 1.0f / sqrtf(ss / (float)C + eps);
        for (int c = 0; c < C; c++) out[(size_t)n * C + c] = weight[c] * (inp[(size_t)n * C + c] * rstd[n]);
    }
}

void pk_rmsnorm_bwd_naive(float *dinp, float *dweight, const float *dout,
                          const float *inp, const float *weight,
                          const float *rstd, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
        float r = rstd[n], dot = 0.0f;
        for (int c = 0; c < C; c++) dot += g[c] * weight[c] * x[c];
        for (int c = 0; c < C; c++) {
            if (dinp) dinp[(size_t)n * C + c] += r * g[c] * weight[c] - dot * r * r * r / (float)C * x[c];
            if (dweight) dweight[c] += g[c] * x[c] * r;
        }
    }
}

void pk_layernorm_fwd_naive(float *out, float *mean, float *rstd,
                            const float *inp, const float *weight,
                            const float *bias, int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float m = 0.0f, v = 0.0f;
        for (int c = 0; c < C; c++) m += x[c];
        m /= (float)C;
        for (int c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
        float r = 1.0f / sqrtf(v / (float)C + eps);
        for (int c = 0; c < C; c++) out[(size_t)n * C + c] = (x[c] - m) * r * weight[c] + bias[c];
        mean[n] = m;
        rstd[n] = r;
    }
}

void pk_layernorm_bwd_naive(float *dinp, float *dweight, float *dbias,
                            const float *dout, const float *inp,
                            const float *weight, const float *mean,
                            const float *rstd, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
        float m = mean[n], r = rstd[n], sg = 0.0f, sgx = 0.0f;
        for (int c = 0; c < C; c++) {
            sg += g[c] * weight[c];
            sgx += g[c] * weight[c] * (x[c] - m) * r;
        }
        for (int c = 0; c < C; c++) {
            float xh = (x[c] - m) * r;
            if (dinp) dinp[(size_t)n * C + c] += r * (g[c] * weight[c] - sg / (float)C - xh * sgx / (float)C);
            if (dweight) dweight[c] += g[c] * xh;
            if (dbias) dbias[c] += g[c];
        }
    }
}
