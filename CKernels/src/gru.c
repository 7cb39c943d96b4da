/*
 * gru.c — the recurrence of a GRU layer (PyTorch's nn.GRU gate equations,
 * without biases, as RecBole's GRU4Rec uses it), forward and backpropagation
 * through time, and their naive twins.
 *
 * Time-major: row t·B + b is sequence b at step t. The input products
 * gi = x·W_ihᵀ for every step are one GEMM done by the caller; here each
 * step does its recurrent product h_{t−1}·W_hhᵀ (one GEMM over the rows still
 * running) and the gate nonlinearities (rows in parallel). Sequences are
 * sorted longest first, so the rows running at step t are a prefix
 * 0 ≤ b < counts[t]. Every sum runs in a fixed order (the GEMM's and the
 * row loops'), so results do not depend on the thread count.
 */
#include "internal.h"

#include <string.h>

/* The naive twin's σ, with libm's exp and tanh. */
static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

static int check_counts(const int *counts, int T, int B) {
    for (int t = 0; t < T; t++)
        if (counts[t] < 0 || counts[t] > B || (t > 0 && counts[t] > counts[t - 1])) return 0;
    return 1;
}

/* The gates of rows [0, n) of one step, given g = h_{t−1}·W_hhᵀ already in
 * the r|z|n columns of `gates` (the ISA's vectorised row routine); rows
 * [n, B) are zeroed. */
static void gru_step_gates(float *ht, float *gates, const float *hp, const float *x,
                           int n, int B, int H) {
    const pk_isa_ops *ops = pk_ops();
    int nt = pk_threads_for(30.0 * n * H);
    PK_PARALLEL_FOR(nt)
    for (int b = 0; b < B; b++) {
        float *g = gates + (size_t)b * 4 * H, *h = ht + (size_t)b * H;
        if (b >= n) {
            memset(g, 0, (size_t)4 * H * sizeof(float));
            memset(h, 0, (size_t)H * sizeof(float));
            continue;
        }
        ops->gru_gates_row(h, g, x + (size_t)b * 3 * H, hp + (size_t)b * H, H);
    }
}

int pk_gru_fwd(float *h, float *gates, const float *gi, const float *w_hh,
               const int *counts, int T, int B, int H) {
    if (T < 0 || B < 0 || H <= 0 || !check_counts(counts, T, B)) return 0;
    for (int t = 0; t < T; t++) {
        const float *hp = h + (size_t)t * B * H;
        float *g = gates + (size_t)t * B * 4 * H;
        int n = counts[t];
        if (n > 0) pk_gemm(0, 1, n, 3 * H, H, 1.0f, hp, H, w_hh, H, 0.0f, g, 4 * H);
        gru_step_gates(h + (size_t)(t + 1) * B * H, g, hp, gi + (size_t)t * B * 3 * H, n, B, H);
    }
    return 1;
}

/* Gate gradients of rows [0, n) of step t; the direct path z∘dh goes to
 * `dprev` (accumulated). Rows [n, B) of dgi and dgh are zeroed. */
static void gru_step_grads(float *dgi, float *dgh, float *dprev, const float *dht,
                           const float *gates, const float *hp, int n, int B, int H) {
    int nt = pk_threads_for(20.0 * n * H);
    PK_PARALLEL_FOR(nt)
    for (int b = 0; b < B; b++) {
        float *di = dgi + (size_t)b * 3 * H, *dg = dgh + (size_t)b * 3 * H;
        if (b >= n) {
            memset(di, 0, (size_t)3 * H * sizeof(float));
            memset(dg, 0, (size_t)3 * H * sizeof(float));
            continue;
        }
        const float *g = gates + (size_t)b * 4 * H, *p = hp + (size_t)b * H, *d = dht + (size_t)b * H;
        float *dp = dprev ? dprev + (size_t)b * H : NULL;
        for (int j = 0; j < H; j++) {
            float r = g[j], z = g[H + j], c = g[2 * H + j], gn = g[3 * H + j];
            float dc = d[j] * (1.0f - z) * (1.0f - c * c);
            float dz = d[j] * (p[j] - c) * z * (1.0f - z);
            float dr = dc * gn * r * (1.0f - r);
            di[j] = dr;
            di[H + j] = dz;
            di[2 * H + j] = dc;
            dg[j] = dr;
            dg[H + j] = dz;
            dg[2 * H + j] = dc * r;
            if (dp) dp[j] += d[j] * z;
        }
    }
}

int pk_gru_bwd(float *dgi, float *dgh, float *dw_hh, float *dh, float *dh0,
               const float *h, const float *gates, const float *w_hh,
               const int *counts, int T, int B, int H) {
    if (T < 0 || B < 0 || H <= 0 || !check_counts(counts, T, B)) return 0;
    if (dh0) memset(dh0, 0, (size_t)B * H * sizeof(float));
    for (int t = T - 1; t >= 0; t--) {
        int n = counts[t];
        float *dprev = t > 0 ? dh + (size_t)(t - 1) * B * H : dh0;
        float *dg = dgh + (size_t)t * B * 3 * H;
        gru_step_grads(dgi + (size_t)t * B * 3 * H, dg, dprev, dh + (size_t)t * B * H,
                       gates + (size_t)t * B * 4 * H, h + (size_t)t * B * H, n, B, H);
        if (dprev && n > 0) pk_gemm(0, 0, n, H, 3 * H, 1.0f, dg, 3 * H, w_hh, H, 1.0f, dprev, H);
    }
    /* dW_hh += Σ_t dghᵀ_t · h_{t−1}: rows of h from the initial state on */
    if (dw_hh && T > 0 && B > 0)
        pk_gemm(1, 0, 3 * H, H, T * B, 1.0f, dgh, 3 * H, h, H, 1.0f, dw_hh, H);
    return 1;
}

/* ------------------------------------------------------------------ */
/* Naive twins: plain loops, one thread                               */
/* ------------------------------------------------------------------ */

int pk_gru_fwd_naive(float *h, float *gates, const float *gi, const float *w_hh,
                     const int *counts, int T, int B, int H) {
    if (T < 0 || B < 0 || H <= 0 || !check_counts(counts, T, B)) return 0;
    for (int t = 0; t < T; t++) {
        const float *hp = h + (size_t)t * B * H;
        float *g = gates + (size_t)t * B * 4 * H;
        for (int b = 0; b < counts[t]; b++)
            for (int k = 0; k < 3 * H; k++) {
                float s = 0.0f;
                for (int j = 0; j < H; j++) s += hp[(size_t)b * H + j] * w_hh[(size_t)k * H + j];
                g[(size_t)b * 4 * H + k] = s;
            }
        for (int b = 0; b < B; b++) {
            float *gb = g + (size_t)b * 4 * H, *hb = h + (size_t)(t + 1) * B * H + (size_t)b * H;
            const float *xi = gi + ((size_t)t * B + b) * 3 * H, *p = hp + (size_t)b * H;
            for (int j = 0; j < H; j++) {
                if (b >= counts[t]) {
                    gb[j] = gb[H + j] = gb[2 * H + j] = gb[3 * H + j] = 0.0f;
                    hb[j] = 0.0f;
                    continue;
                }
                float r = sigmoidf(xi[j] + gb[j]), z = sigmoidf(xi[H + j] + gb[H + j]);
                float gn = gb[2 * H + j], c = tanhf(xi[2 * H + j] + r * gn);
                gb[j] = r;
                gb[H + j] = z;
                gb[2 * H + j] = c;
                gb[3 * H + j] = gn;
                hb[j] = (1.0f - z) * c + z * p[j];
            }
        }
    }
    return 1;
}

int pk_gru_bwd_naive(float *dgi, float *dgh, float *dw_hh, float *dh, float *dh0,
                     const float *h, const float *gates, const float *w_hh,
                     const int *counts, int T, int B, int H) {
    if (T < 0 || B < 0 || H <= 0 || !check_counts(counts, T, B)) return 0;
    if (dh0) memset(dh0, 0, (size_t)B * H * sizeof(float));
    for (int t = T - 1; t >= 0; t--) {
        float *dprev = t > 0 ? dh + (size_t)(t - 1) * B * H : dh0;
        for (int b = 0; b < B; b++) {
            size_t row = (size_t)t * B + b;
            float *di = dgi + row * 3 * H, *dg = dgh + row * 3 * H;
            const float *g = gates + row * 4 * H, *p = h + row * H, *d = dh + row * H;
            for (int j = 0; j < H; j++) {
                if (b >= counts[t]) {
                    di[j] = di[H + j] = di[2 * H + j] = 0.0f;
                    dg[j] = dg[H + j] = dg[2 * H + j] = 0.0f;
                    continue;
                }
                float r = g[j], z = g[H + j], c = g[2 * H + j], gn = g[3 * H + j];
                float dc = d[j] * (1.0f - z) * (1.0f - c * c);
                float dz = d[j] * (p[j] - c) * z * (1.0f - z);
                float dr = dc * gn * r * (1.0f - r);
                di[j] = dg[j] = dr;
                di[H + j] = dg[H + j] = dz;
                di[2 * H + j] = dc;
                dg[2 * H + j] = dc * r;
                if (dprev) dprev[(size_t)b * H + j] += d[j] * z;
            }
            if (!dprev || b >= counts[t]) continue;
            for (int j = 0; j < H; j++) {
                float s = 0.0f;
                for (int k = 0; k < 3 * H; k++) s += dg[k] * w_hh[(size_t)k * H + j];
                dprev[(size_t)b * H + j] += s;
            }
        }
    }
    if (dw_hh)
        for (int k = 0; k < 3 * H; k++)
            for (int j = 0; j < H; j++) {
                float s = 0.0f;
                for (size_t row = 0; row < (size_t)T * B; row++) s += dgh[row * 3 * H + k] * h[row * H + j];
                dw_hh[(size_t)k * H + j] += s;
            }
    return 1;
}
