/*
 * matmul.c — the linear layer (out = inp·Wᵀ + b) forward and backward on
 * top of pk_gemm, the bias column sums, and their naive twins.
 */
#include "internal.h"

void pk_matmul_fwd(float *out, const float *inp, const float *weight,
                   const float *bias, int N, int I, int O) {
    if (bias) {
        int nt = pk_threads_for((double)N * O);
        PK_PARALLEL_FOR(nt)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < O; o++) out[(size_t)n * O + o] = bias[o];
    }
    pk_gemm(0, 1, N, O, I, 1.0f, inp, I, weight, I, bias ? 1.0f : 0.0f, out, O);
}

void pk_column_sum(float *dbias, const float *x, int N, int C) {
    const pk_isa_ops *ops = pk_ops();
    int nt = pk_threads_for((double)N * C);
    int parts = PK_MIN(nt, (C + 15) / 16);
    PK_PARALLEL_FOR(parts)
    for (int part = 0; part < parts; part++) {
        int c0, c1;
        pk_column_part(C, part, parts, &c0, &c1);
        for (int n = 0; n < N; n++) ops->axpby_span(dbias + c0, dbias + c0, x + (size_t)n * C + c0, 1.0f, (size_t)(c1 - c0));
    }
}

void pk_matmul_bwd(float *dinp, float *dweight, float *dbias,
                   const float *dout, const float *inp, const float *weight,
                   int N, int I, int O) {
    if (dinp) pk_gemm(0, 0, N, I, O, 1.0f, dout, O, weight, I, 1.0f, dinp, I);
    if (dweight) pk_gemm(1, 0, O, I, N, 1.0f, dout, O, inp, I, 1.0f, dweight, I);
    if (dbias) pk_column_sum(dbias, dout, N, O);
}

void pk_matmul_fwd_naive(float *out, const float *inp, const float *weight,
                         const float *bias, int N, int I, int O) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++) {
            float s = bias ? bias[o] : 0.0f;
            for (int i = 0; i < I; i++) s += inp[(size_t)n * I + i] * weight[(size_t)o * I + i];
            out[(size_t)n * O + o] = s;
        }
}

void pk_matmul_bwd_naive(float *dinp, float *dweight, float *dbias,
                         const float *dout, const float *inp,
                         const float *weight, int N, int I, int O) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++) {
            float g = dout[(size_t)n * O + o];
            if (dbias) dbias[o] += g;
            for (int i = 0; i < I; i++) {
                if (dinp) dinp[(size_t)n * I + i] += g * weight[(size_t)o * I + i];
                if (dweight) dweight[(size_t)o * I + i] += g * inp[(size_t)n * I + i];
            }
        }
}
