/*
 * kernel_bench.c — every kernel family at the engine's shapes, one JSON line
 * per case:
 *   {"kernel","shape","threads","ms_median","gflops"|"gbps","pct_of_peak",
 *    "speedup_vs_naive"}
 * The first lines are this machine's ceilings, measured in the same run:
 *   {"kernel":"fma_peak","gflops":…}   an FMA loop on every thread
 *   {"kernel":"bf16_peak","gflops":…}  a vdpbf16ps loop (AVX512-BF16 only);
 *                                      the bf16 GEMM lines' pct_of_peak
 *   {"kernel":"stream_copy","gbps":…}  a large copy on every thread
 * pct_of_peak is against fma_peak for compute-bound kernels (gflops) and
 * against stream_copy for bandwidth-bound ones (gbps). Times are medians.
 *
 * Usage: kernel_bench [--reps N] [--threads N] [--quick] [--filter SUBSTRING]
 */
#define _POSIX_C_SOURCE 200809L
#include "prorl_kernels.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static int g_reps = 7;
static int g_quick = 0;
static const char *g_filter = NULL;
static double g_peak_gflops = 0, g_stream_gbps = 0, g_bf16_peak_gflops = 0;

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef void (*bench_fn)(void *ctx);

static double median_ms(bench_fn f, void *ctx, int reps) {
    double t[64];
    if (reps > 64) reps = 64;
    f(ctx); /* warm-up */
    for (int r = 0; r < reps; r++) {
        double t0 = now_ms();
        f(ctx);
        t[r] = now_ms() - t0;
    }
    qsort(t, (size_t)reps, sizeof(double), cmp_double);
    return t[reps / 2];
}

static float *fbuf(size_t n, float amp, uint64_t seed) {
    float *x = malloc(n * sizeof(float));
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = ((float)(s >> 40) / 16777216.0f * 2.0f - 1.0f) * amp;
    }
    return x;
}
static float *fzero(size_t n) { return calloc(n, sizeof(float)); }

static int selected(const char *kernel) {
    return !g_filter || strstr(kernel, g_filter) != NULL;
}

/* Emit one line; flops > 0 → gflops (against `peak`), else bytes → gbps.
 * naive_ms ≤ 0: no naive twin measured. */
static void report_against(const char *kernel, const char *shape, double ms,
                           double flops, double bytes, double naive_ms, double peak) {
    printf("{\"kernel\":\"%s\",\"shape\":\"%s\",\"threads\":%d,\"ms_median\":%.4f", kernel, shape,
           pk_get_num_threads(), ms);
    if (flops > 0) {
        double gf = flops / (ms * 1e6);
        printf(",\"gflops\":%.1f,\"pct_of_peak\":%.1f", gf, 100.0 * gf / peak);
    } else {
        double gb = bytes / (ms * 1e6);
        printf(",\"gbps\":%.1f,\"pct_of_peak\":%.1f", gb, 100.0 * gb / g_stream_gbps);
    }
    if (naive_ms > 0) printf(",\"speedup_vs_naive\":%.1f", naive_ms / ms);
    printf("}\n");
    fflush(stdout);
}

static void report(const char *kernel, const char *shape, double ms,
                   double flops, double bytes, double naive_ms) {
    report_against(kernel, shape, ms, flops, bytes, naive_ms, g_peak_gflops);
}

/* ------------------------------------------------------------------ */
/* Ceilings                                                           */
/* ------------------------------------------------------------------ */

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static double fma_loop_avx2(long iters) {
    __m256 a[12], b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
    __m256 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}
__attribute__((target("avx512f"))) static double fma_loop_avx512(long iters) {
    __m512 a[12], b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    __m512 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s);
}
#endif

#if defined(__x86_64__)
/* 12 independent vdpbf16ps chains: 16 lanes × 2 products × 2 flops each */
__attribute__((target("avx512f,avx512bf16"))) static double bf16_loop_avx512(long iters) {
    __m512 a[12];
    const __m512bh b = (__m512bh)_mm512_set1_epi32(0x3F803F80), c = (__m512bh)_mm512_set1_epi32(0x33803380);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++) a[i] = _mm512_dpbf16_ps(a[i], b, c);
    __m512 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s);
}
#endif

/* The best of 5 runs of `loop` on every thread, in GFLOP/s (`flops` per iteration per thread). */
static double loop_gflops(double (*loop)(long), double flops) {
    const long iters = 20000000;
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double sink = 0;
        double t0 = now_ms();
        int nt = pk_get_num_threads();
#pragma omp parallel for num_threads(nt) reduction(+ : sink)
        for (int t = 0; t < nt; t++) sink += loop(iters);
        double ms = now_ms() - t0;
        double gf = flops * (double)iters * nt / (ms * 1e6);
        if (gf > best) best = gf;
        if (sink == 12345.0) printf("#");
    }
    return best;
}

/* Peak FP32 FMA throughput with every thread running an FMA loop. */
static void measure_peak(void) {
#if defined(__x86_64__)
    int wide = pk_simd_supported() == PK_SIMD_AVX512;
    g_peak_gflops = loop_gflops(wide ? fma_loop_avx512 : fma_loop_avx2, 2.0 * 12 * (wide ? 16 : 8));
#endif
    printf("{\"kernel\":\"fma_peak\",\"threads\":%d,\"gflops\":%.1f}\n", pk_get_num_threads(), g_peak_gflops);
}

/* Peak bf16 dot-product throughput (vdpbf16ps on every thread), where the
 * CPU has AVX512-BF16: the ceiling of pk_gemm_bf16. */
static void measure_bf16_peak(void) {
    if (!pk_gemm_bf16_available()) return;
#if defined(__x86_64__)
    g_bf16_peak_gflops = loop_gflops(bf16_loop_avx512, 4.0 * 12 * 16);
    printf("{\"kernel\":\"bf16_peak\",\"threads\":%d,\"gflops\":%.1f}\n", pk_get_num_threads(), g_bf16_peak_gflops);
#endif
}

static void measure_stream(void) {
    const size_t n = 32u << 20; /* 128 MiB per array */
    float *a = fbuf(n, 1, 1), *b = fzero(n);
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now_ms();
        int nt = pk_get_num_threads();
#pragma omp parallel for num_threads(nt) schedule(static)
        for (long i = 0; i < (long)n; i++) b[i] = a[i];
        double ms = now_ms() - t0;
        double gb = 2.0 * n * sizeof(float) / (ms * 1e6);
        if (gb > best) best = gb;
    }
    g_stream_gbps = best;
    printf("{\"kernel\":\"stream_copy\",\"threads\":%d,\"gbps\":%.1f}\n", pk_get_num_threads(), best);
    free(a);
    free(b);
}

/* ------------------------------------------------------------------ */
/* GEMM and linear layers                                             */
/* ------------------------------------------------------------------ */

typedef struct gemm_ctx {
    int ta, tb, M, N, K;
    float *A, *B, *C;
    int naive, bf16;
} gemm_ctx;

static void run_gemm(void *p) {
    gemm_ctx *g = p;
    int lda = g->ta ? g->M : g->K, ldb = g->tb ? g->K : g->N;
    if (g->bf16) pk_gemm_bf16(g->ta, g->tb, g->M, g->N, g->K, 1.0f, g->A, lda, g->B, ldb, 0.0f, g->C, g->N);
    else if (g->naive) pk_gemm_naive(g->ta, g->tb, g->M, g->N, g->K, 1.0f, g->A, lda, g->B, ldb, 0.0f, g->C, g->N);
    else pk_gemm(g->ta, g->tb, g->M, g->N, g->K, 1.0f, g->A, lda, g->B, ldb, 0.0f, g->C, g->N);
}

static void bench_gemm(const char *kernel, int ta, int tb, int M, int N, int K, int naive_reps) {
    if (!selected(kernel)) return;
    gemm_ctx g = {ta, tb, M, N, K, fbuf((size_t)M * K, 1, 1), fbuf((size_t)K * N, 1, 2),
                  fzero((size_t)M * N), 0, 0};
    double ms = median_ms(run_gemm, &g, g_reps);
    double naive = 0;
    if (naive_reps > 0) {
        g.naive = 1;
        naive = median_ms(run_gemm, &g, naive_reps);
    }
    char shape[96];
    snprintf(shape, sizeof shape, "%s%s %dx%dx%d", ta ? "T" : "N", tb ? "T" : "N", M, N, K);
    report(kernel, shape, ms, 2.0 * M * (double)N * K, 0, naive);
    free(g.A); free(g.B); free(g.C);
}

/* pk_gemm_bf16, against the bf16 dot-product peak (skipped without AVX512-BF16) */
static void bench_gemm_bf16(const char *kernel, int ta, int tb, int M, int N, int K) {
    if (!selected(kernel) || !pk_gemm_bf16_available()) return;
    gemm_ctx g = {ta, tb, M, N, K, fbuf((size_t)M * K, 1, 1), fbuf((size_t)K * N, 1, 2), fzero((size_t)M * N), 0, 1};
    double ms = median_ms(run_gemm, &g, g_reps);
    char shape[96];
    snprintf(shape, sizeof shape, "%s%s %dx%dx%d", ta ? "T" : "N", tb ? "T" : "N", M, N, K);
    report_against(kernel, shape, ms, 2.0 * M * (double)N * K, 0, 0, g_bf16_peak_gflops);
    free(g.A); free(g.B); free(g.C);
}

typedef struct linear_ctx {
    int N, I, O, naive;
    float *x, *w, *b, *y, *dy, *dx, *dw, *db;
} linear_ctx;

static void run_linear_fwd(void *p) {
    linear_ctx *l = p;
    if (l->naive) pk_matmul_fwd_naive(l->y, l->x, l->w, NULL, l->N, l->I, l->O);
    else pk_matmul_fwd(l->y, l->x, l->w, NULL, l->N, l->I, l->O);
}
static void run_linear_bwd(void *p) {
    linear_ctx *l = p;
    if (l->naive) pk_matmul_bwd_naive(l->dx, l->dw, NULL, l->dy, l->x, l->w, l->N, l->I, l->O);
    else pk_matmul_bwd(l->dx, l->dw, NULL, l->dy, l->x, l->w, l->N, l->I, l->O);
}

static void bench_linear(const char *name, int N, int I, int O) {
    char kf[64], kb[64], shape[64];
    snprintf(kf, sizeof kf, "matmul_fwd");
    snprintf(kb, sizeof kb, "matmul_bwd");
    snprintf(shape, sizeof shape, "%s %dx%d->%d", name, N, I, O);
    if (!selected("matmul")) return;
    linear_ctx l = {N, I, O, 0, fbuf((size_t)N * I, 1, 3), fbuf((size_t)O * I, 1, 4), NULL,
                    fzero((size_t)N * O), fbuf((size_t)N * O, 1, 5), fzero((size_t)N * I),
                    fzero((size_t)O * I), NULL};
    double ms = median_ms(run_linear_fwd, &l, g_reps);
    l.naive = 1;
    double nms = g_quick ? 0 : median_ms(run_linear_fwd, &l, 1);
    l.naive = 0;
    report(kf, shape, ms, 2.0 * N * (double)I * O, 0, nms);
    ms = median_ms(run_linear_bwd, &l, g_reps);
    l.naive = 1;
    nms = g_quick ? 0 : median_ms(run_linear_bwd, &l, 1);
    report(kb, shape, ms, 4.0 * N * (double)I * O, 0, nms);
    free(l.x); free(l.w); free(l.y); free(l.dy); free(l.dx); free(l.dw);
}

/* ------------------------------------------------------------------ */
/* Attention                                                          */
/* ------------------------------------------------------------------ */

typedef struct attn_ctx {
    pk_attention_desc d;
    float *q, *k, *v, *out, *probs, *scratch, *dout, *dq, *dk, *dv, *dbias, *bias;
    int naive;
} attn_ctx;

static void run_attn_fwd(void *p) {
    attn_ctx *a = p;
    if (a->naive) pk_attention_fwd_naive(a->out, a->probs, a->scratch, a->q, a->k, a->v, &a->d);
    else pk_attention_fwd(a->out, a->probs, a->scratch, a->q, a->k, a->v, &a->d);
}
static void run_attn_fwdbwd(void *p) {
    attn_ctx *a = p;
    run_attn_fwd(p);
    if (a->naive)
        pk_attention_bwd_naive(a->dq, a->dk, a->dv, a->bias ? a->dbias : NULL, a->scratch, a->dout, a->probs, a->q, a->k, a->v, &a->d);
    else
        pk_attention_bwd(a->dq, a->dk, a->dv, a->bias ? a->dbias : NULL, a->scratch, a->dout, a->probs, a->q, a->k, a->v, &a->d);
}

typedef struct decode_ctx {
    attn_ctx a;
    float *caches[3];
    int next;
} decode_ctx;

/* Each call decodes against the next of three caches (as the three decoder
 * layers of a step do), so the caches come from memory, not the L3. */
static void run_attn_decode(void *p) {
    decode_ctx *c = p;
    attn_ctx *a = &c->a;
    const float *k = c->caches[c->next], *v = k + a->d.H * a->d.D;
    c->next = (c->next + 1) % 3;
    if (a->naive) pk_attention_decode_naive(a->out, a->q, k, v, &a->d);
    else pk_attention_decode(a->out, a->q, k, v, &a->d);
}

/* One decoding step of B rows over caches of Tk positions (capacity Tcap):
 * G consecutive rows share an entry (cross-attention: the samples of one
 * prompt) or each row has its own (self-attention, G = 1). */
static void bench_attention_decode(const char *name, int B, int G, int Tk, int Tcap, int H, int D, int with_bias) {
    if (!selected("attention_decode")) return;
    decode_ctx c;
    memset(&c, 0, sizeof c);
    attn_ctx *a = &c.a;
    int E = B / G, W = 2 * H * D;
    pk_attention_desc *d = &a->d;
    d->B = B; d->kv_group = G; d->Tq = 1; d->Tk = Tk; d->Tk_cap = Tcap; d->H = H; d->D = D;
    d->q_stride = 3 * H * D; d->kv_stride = W; d->out_stride = H * D; d->scale = 1.0f;
    a->q = fbuf((size_t)B * d->q_stride, 1, 6);
    for (int l = 0; l < 3; l++) c.caches[l] = fbuf((size_t)E * Tcap * W, 1, 7 + l);
    a->out = fzero((size_t)B * H * D);
    if (with_bias) { a->bias = fbuf((size_t)H * Tk, 1, 10); d->bias = a->bias; }
    char shape[128];
    snprintf(shape, sizeof shape, "%s B=%d G=%d Tk=%d H=%d D=%d%s", name, B, G, Tk, H, D, with_bias ? " bias" : "");
    double ms = median_ms(run_attn_decode, &c, g_reps);
    a->naive = 1;
    double nms = g_quick ? 0 : median_ms(run_attn_decode, &c, 1);
    /* bytes: every row's query and output, each entry's keys and values once */
    double bytes = 4.0 * ((double)B * 2 * H * D + (double)E * Tk * W);
    report("attention_decode", shape, ms, 0, bytes, nms);
    free(a->q); free(a->out); free(a->bias);
    for (int l = 0; l < 3; l++) free(c.caches[l]);
}

static void bench_attention(const char *name, int B, int G, int Tq, int Tk, int H, int D,
                            int causal, int with_bias, float dropout, float scale) {
    if (!selected("attention")) return;
    attn_ctx a;
    memset(&a, 0, sizeof a);
    int E = B / G, W = 3 * H * D; /* q, k, v interleaved in one row as a fused projection writes them */
    pk_attention_desc *d = &a.d;
    d->B = B; d->kv_group = G; d->Tq = Tq; d->Tk = Tk; d->Tk_cap = Tk; d->H = H; d->D = D;
    d->q_stride = W; d->kv_stride = W; d->out_stride = H * D;
    d->causal = causal; d->scale = scale; d->dropout_p = dropout; d->seed = 1; d->stream = 2;
    size_t nq = (size_t)B * Tq * W, nkv = (size_t)E * Tk * W, np = (size_t)B * H * Tq * Tk;
    a.q = fbuf(nq, 1, 6);
    a.k = fbuf(nkv, 1, 7);
    a.v = fbuf(nkv, 1, 8);
    a.out = fzero((size_t)B * Tq * H * D);
    a.probs = fzero(np);
    a.scratch = fzero(np);
    a.dout = fbuf((size_t)B * Tq * H * D, 1, 9);
    a.dq = fzero(nq); a.dk = fzero(nkv); a.dv = fzero(nkv);
    if (with_bias) {
        a.bias = fbuf((size_t)H * Tq * Tk, 1, 10);
        a.dbias = fzero((size_t)H * Tq * Tk);
        d->bias = a.bias;
    }
    /* visible (query, key) pairs: the work actually needed */
    double pairs = causal ? (double)Tq * (Tq + 1) / 2 : (double)Tq * Tk;
    double fwd = 4.0 * B * H * pairs * D, bwd = 8.0 * B * H * pairs * D;
    char shape[128];
    snprintf(shape, sizeof shape, "%s B=%d G=%d Tq=%d Tk=%d H=%d D=%d%s%s%s", name, B, G, Tq, Tk, H, D,
             causal ? " causal" : "", with_bias ? " bias" : "", dropout > 0 ? " dropout" : "");
    double ms = median_ms(run_attn_fwd, &a, g_reps);
    a.naive = 1;
    double nms = g_quick ? 0 : median_ms(run_attn_fwd, &a, 1);
    a.naive = 0;
    report("attention_fwd", shape, ms, fwd, 0, nms);
    ms = median_ms(run_attn_fwdbwd, &a, g_reps);
    a.naive = 1;
    nms = g_quick ? 0 : median_ms(run_attn_fwdbwd, &a, 1);
    report("attention_fwd_bwd", shape, ms, fwd + bwd, 0, nms);
    free(a.q); free(a.k); free(a.v); free(a.out); free(a.probs); free(a.scratch); free(a.dout);
    free(a.dq); free(a.dk); free(a.dv); free(a.bias); free(a.dbias);
}

/* ------------------------------------------------------------------ */
/* Cross-entropy, softmax, norms, elementwise                         */
/* ------------------------------------------------------------------ */

typedef struct rows_ctx {
    int N, C, naive;
    float *x, *y, *g, *w, *b, *m, *r, *dx, *dw, *db;
    int *t;
} rows_ctx;

static void run_xent(void *p) {
    rows_ctx *c = p;
    if (c->naive) pk_crossentropy_naive(c->m, c->y, NULL, c->x, c->t, NULL, 1.0f / c->N, c->N, c->C, -100);
    else pk_crossentropy(c->m, c->y, NULL, c->x, c->t, NULL, 1.0f / c->N, c->N, c->C, -100);
}
/* exact KL of x's softmax to g's, and its gradient into dx (the RL loss). */
static void run_kl(void *p) {
    rows_ctx *c = p;
    if (c->naive) pk_kl_categorical_naive(c->r, c->dx, c->x, c->g, NULL, NULL, 0.5f, c->N, c->C);
    else pk_kl_categorical(c->r, c->dx, c->x, c->g, NULL, NULL, 0.5f, c->N, c->C);
}
static void run_log_softmax(void *p) {
    rows_ctx *c = p;
    if (c->naive) pk_log_softmax_fwd_naive(c->y, c->x, NULL, c->N, c->C);
    else pk_log_softmax_fwd(c->y, c->x, NULL, c->N, c->C);
}
static void run_rmsnorm(void *p) {
    rows_ctx *c = p;
    if (c->naive) {
        pk_rmsnorm_fwd_naive(c->y, c->r, c->x, c->w, c->N, c->C, 1e-6f);
        pk_rmsnorm_bwd_naive(c->dx, c->dw, c->g, c->x, c->w, c->r, c->N, c->C);
    } else {
        pk_rmsnorm_fwd(c->y, c->r, c->x, c->w, c->N, c->C, 1e-6f);
        pk_rmsnorm_bwd(c->dx, c->dw, c->g, c->x, c->w, c->r, c->N, c->C);
    }
}
static void run_layernorm(void *p) {
    rows_ctx *c = p;
    if (c->naive) {
        pk_layernorm_fwd_naive(c->y, c->m, c->r, c->x, c->w, c->b, c->N, c->C, 1e-12f);
        pk_layernorm_bwd_naive(c->dx, c->dw, c->db, c->g, c->x, c->w, c->m, c->r, c->N, c->C);
    } else {
        pk_layernorm_fwd(c->y, c->m, c->r, c->x, c->w, c->b, c->N, c->C, 1e-12f);
        pk_layernorm_bwd(c->dx, c->dw, c->db, c->g, c->x, c->w, c->m, c->r, c->N, c->C);
    }
}
static void run_gelu(void *p) {
    rows_ctx *c = p;
    size_t n = (size_t)c->N * c->C;
    if (c->naive) { pk_gelu_fwd_naive(c->y, c->x, n); pk_gelu_bwd_naive(c->dx, c->g, c->x, n); }
    else { pk_gelu_fwd(c->y, c->x, n); pk_gelu_bwd(c->dx, c->g, c->x, n); }
}

static rows_ctx rows_make(int N, int C) {
    size_t n = (size_t)N * C;
    rows_ctx c = {N, C, 0, fbuf(n, 4, 11), fzero(n), fbuf(n, 1, 12), fbuf(C, 1, 13), fbuf(C, 1, 14),
                  fzero(N > C ? N : C), fzero(N), fzero(n), fzero(C), fzero(C), malloc((size_t)N * sizeof(int))};
    for (int i = 0; i < N; i++) c.t[i] = (i * 7919) % C;
    return c;
}
static void rows_free(rows_ctx *c) {
    free(c->x); free(c->y); free(c->g); free(c->w); free(c->b); free(c->m); free(c->r);
    free(c->dx); free(c->dw); free(c->db); free(c->t);
}

static void bench_rows(const char *kernel, const char *name, bench_fn f, int N, int C, double bytes_per_elem,
                       double flops_per_elem) {
    if (!selected(kernel)) return;
    rows_ctx c = rows_make(N, C);
    double ms = median_ms(f, &c, g_reps);
    c.naive = 1;
    double nms = g_quick ? 0 : median_ms(f, &c, 1);
    char shape[96];
    snprintf(shape, sizeof shape, "%s %dx%d", name, N, C);
    double n = (double)N * C;
    report(kernel, shape, ms, flops_per_elem * n, bytes_per_elem * n, nms);
    rows_free(&c);
}

typedef struct opt_ctx {
    size_t n;
    float *p, *m, *v, *g;
    int naive, step;
} opt_ctx;

static void run_adamw(void *p) {
    opt_ctx *o = p;
    o->step++;
    if (o->naive) pk_adamw_naive(o->p, o->m, o->v, o->g, o->n, 1e-4f, 0.9f, 0.999f, 1e-8f, 0.05f, o->step);
    else pk_adamw(o->p, o->m, o->v, o->g, o->n, 1e-4f, 0.9f, 0.999f, 1e-8f, 0.05f, o->step);
}

static void bench_adamw(size_t n) {
    if (!selected("adamw")) return;
    opt_ctx o = {n, fbuf(n, 1, 15), fzero(n), fzero(n), fbuf(n, 1, 16), 0, 0};
    double ms = median_ms(run_adamw, &o, g_reps);
    o.naive = 1;
    double nms = median_ms(run_adamw, &o, 3);
    char shape[64];
    snprintf(shape, sizeof shape, "policy params n=%zu", n);
    report("adamw", shape, ms, 0, 16.0 * n + 12.0 * n, nms); /* read p,m,v,g; write p,m,v */
    free(o.p); free(o.m); free(o.v); free(o.g);
}

typedef struct emb_ctx {
    int N, C, V, naive;
    float *table, *out, *dtable;
    int *ids;
} emb_ctx;

static void run_embedding(void *p) {
    emb_ctx *e = p;
    pk_embedding_fwd(e->out, e->table, e->ids, 1.0f, e->N, e->C);
    if (e->naive) pk_embedding_bwd_naive(e->dtable, e->out, e->ids, 1.0f, e->N, e->C);
    else pk_embedding_bwd(e->dtable, e->out, e->ids, 1.0f, e->N, e->C);
}

static void bench_embedding(const char *name, int N, int V, int C) {
    if (!selected("embedding")) return;
    emb_ctx e = {N, C, V, 0, fbuf((size_t)V * C, 1, 17), fzero((size_t)N * C), fzero((size_t)V * C),
                 malloc((size_t)N * sizeof(int))};
    for (int i = 0; i < N; i++) e.ids[i] = (i * 2654435761u) % (unsigned)V;
    double ms = median_ms(run_embedding, &e, g_reps);
    e.naive = 1;
    double nms = median_ms(run_embedding, &e, 3);
    char shape[96];
    snprintf(shape, sizeof shape, "%s N=%d V=%d C=%d", name, N, V, C);
    report("embedding_fwd_bwd", shape, ms, 0, 16.0 * N * C, nms);
    free(e.table); free(e.out); free(e.dtable); free(e.ids);
}

typedef struct drop_ctx {
    size_t n;
    float *x, *y;
} drop_ctx;

static void run_dropout(void *p) {
    drop_ctx *d = p;
    pk_dropout_fwd(d->y, d->x, d->n, 0.1f, 1, 2);
    pk_dropout_bwd(d->x, d->y, d->n, 0.1f, 1, 2);
}

static void bench_dropout(size_t n) {
    if (!selected("dropout")) return;
    drop_ctx d = {n, fbuf(n, 1, 18), fzero(n)};
    double ms = median_ms(run_dropout, &d, g_reps);
    char shape[64];
    snprintf(shape, sizeof shape, "fwd+bwd n=%zu", n);
    report("dropout", shape, ms, 0, 20.0 * n, 0);
    free(d.x); free(d.y);
}

/* ------------------------------------------------------------------ */
/* Item scoring                                                       */
/* ------------------------------------------------------------------ */

typedef struct score_ctx {
    int B, V, C, naive;
    float *u, *items, *lse, *ts, *logits;
    int *t, *rank;
} score_ctx;

static void run_score_stats(void *p) {
    score_ctx *s = p;
    if (s->naive) pk_score_stats_naive(s->lse, s->ts, s->rank, s->u, s->items, s->t, s->B, s->V, s->C);
    else pk_score_stats(s->lse, s->ts, s->rank, s->u, s->items, s->t, s->B, s->V, s->C);
}
static void run_score_logits(void *p) {
    score_ctx *s = p;
    pk_score_logits(s->logits, s->u, s->items, s->B, s->V, s->C);
}

static void bench_scoring(int B, int V, int C) {
    score_ctx s = {B, V, C, 0, fbuf((size_t)B * C, 1, 19), fbuf((size_t)V * C, 0.3f, 20), fzero(B), fzero(B),
                   NULL, malloc((size_t)B * sizeof(int)), malloc((size_t)B * sizeof(int))};
    for (int i = 0; i < B; i++) s.t[i] = (i * 31) % V;
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%dx%d", B, V, C);
    double flops = 2.0 * B * (double)V * C;
    if (selected("score_stats")) {
        double ms = median_ms(run_score_stats, &s, g_reps);
        s.naive = 1;
        double nms = g_quick ? 0 : median_ms(run_score_stats, &s, 1);
        s.naive = 0;
        report("score_stats", shape, ms, flops, 0, nms);
    }
    if (selected("score_logits")) {
        s.logits = fzero((size_t)B * V);
        double ms = median_ms(run_score_logits, &s, g_reps);
        report("score_logits", shape, ms, flops, 0, 0);
        free(s.logits);
    }
    free(s.u); free(s.items); free(s.lse); free(s.ts); free(s.t); free(s.rank);
}

/* ------------------------------------------------------------------ */
/* GRU recurrence                                                     */
/* ------------------------------------------------------------------ */

typedef struct gru_ctx {
    int T, B, H, naive;
    int *counts;
    float *gi, *w, *h, *gates, *dh, *dh_in, *dgi, *dgh, *dw;
} gru_ctx;

static void run_gru_fwd(void *p) {
    gru_ctx *g = p;
    if (g->naive) pk_gru_fwd_naive(g->h, g->gates, g->gi, g->w, g->counts, g->T, g->B, g->H);
    else pk_gru_fwd(g->h, g->gates, g->gi, g->w, g->counts, g->T, g->B, g->H);
}
static void run_gru_bwd(void *p) {
    gru_ctx *g = p;
    memcpy(g->dh, g->dh_in, (size_t)g->T * g->B * g->H * sizeof(float));
    if (g->naive) pk_gru_bwd_naive(g->dgi, g->dgh, g->dw, g->dh, NULL, g->h, g->gates, g->w, g->counts, g->T, g->B, g->H);
    else pk_gru_bwd(g->dgi, g->dgh, g->dw, g->dh, NULL, g->h, g->gates, g->w, g->counts, g->T, g->B, g->H);
}

/* The recurrence of a GRU layer (RecBole GRU4Rec: hidden 128) over B
 * sequences of T steps, all running (`ragged` 0) or lengths spread evenly
 * over 1..T (what prefix samples look like). Flops: the recurrent GEMMs,
 * 6·H² per running row and step forward, 12·H² backward. */
static void bench_gru(const char *name, int T, int B, int H, int ragged) {
    if (!selected("gru")) return;
    gru_ctx g = {T, B, H, 0, malloc((size_t)T * sizeof(int)), fbuf((size_t)T * B * 3 * H, 1, 3),
                 fbuf((size_t)3 * H * H, 0.1f, 4), fzero((size_t)(T + 1) * B * H), fzero((size_t)T * B * 4 * H),
                 fzero((size_t)T * B * H), fbuf((size_t)T * B * H, 1, 5), fzero((size_t)T * B * 3 * H),
                 fzero((size_t)T * B * 3 * H), fzero((size_t)3 * H * H)};
    double rows = 0;
    for (int t = 0; t < T; t++) {
        g.counts[t] = ragged ? B - (int)((long)B * t / T) : B;
        rows += g.counts[t];
    }
    char shape[96];
    snprintf(shape, sizeof shape, "%s B=%d T=%d H=%d%s", name, B, T, H, ragged ? " ragged" : "");
    double ms = median_ms(run_gru_fwd, &g, g_reps);
    g.naive = 1;
    double nms = g_quick ? 0 : median_ms(run_gru_fwd, &g, 1);
    g.naive = 0;
    report("gru_fwd", shape, ms, 6.0 * H * H * rows, 0, nms);
    ms = median_ms(run_gru_bwd, &g, g_reps);
    g.naive = 1;
    nms = g_quick ? 0 : median_ms(run_gru_bwd, &g, 1);
    report("gru_bwd", shape, ms, 12.0 * H * H * rows, 0, nms);
    free(g.counts); free(g.gi); free(g.w); free(g.h); free(g.gates); free(g.dh); free(g.dh_in); free(g.dgi);
    free(g.dgh); free(g.dw);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) g_reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) pk_set_num_threads(atoi(argv[++i]));
        else if (strcmp(argv[i], "--quick") == 0) g_quick = 1;
        else if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc) g_filter = argv[++i];
        else {
            fprintf(stderr, "usage: kernel_bench [--reps N] [--threads N] [--quick] [--filter SUBSTRING]\n");
            return 2;
        }
    }
    if (g_quick && g_reps > 3) g_reps = 3;
    measure_peak();
    measure_bf16_peak();
    measure_stream();
    /* GEMM */
    bench_gemm("gemm", 0, 0, 2048, 2048, 2048, g_quick ? 0 : 1);
    /* the simulator's full-softmax loss, one chunk of 1024 rows over 3707 items */
    bench_gemm("gemm sasrec logits", 0, 1, 1024, 3707, 64, 0);
    bench_gemm("gemm sasrec dstates", 0, 0, 1024, 64, 3707, 0);
    bench_gemm("gemm sasrec ditems", 1, 0, 3707, 64, 1024, 0);
    /* one decoding step of 128 rollouts: the qkv projection, the ffn */
    bench_gemm("gemm decode qkv", 0, 1, 128, 768, 128, 0);
    bench_gemm("gemm decode ffn wi", 0, 1, 128, 512, 128, 0);
    bench_gemm("gemm decode ffn wo", 0, 1, 128, 128, 512, 0);
    /* the policy's largest forward products, fp32 then bf16 */
    bench_gemm("gemm policy enc ffn wi", 0, 1, 11520, 512, 128, 0);
    bench_gemm("gemm policy lm_head", 0, 1, 10496, 1027, 128, 0);
    /* the same products with bf16 operands (pct_of_peak against bf16_peak) */
    bench_gemm_bf16("gemm bf16", 0, 0, 2048, 2048, 2048);
    bench_gemm_bf16("gemm bf16 policy enc ffn wi", 0, 1, 11520, 512, 128);
    bench_gemm_bf16("gemm bf16 policy lm_head", 0, 1, 10496, 1027, 128);
    bench_gemm_bf16("gemm bf16 decode qkv", 0, 1, 128, 768, 128);
    /* policy (T5 reference config): 256 prompts, encoder 45 / decoder 41 tokens */
    bench_linear("policy enc qkv", 11520, 128, 768);
    bench_linear("policy enc o", 11520, 256, 128);
    bench_linear("policy enc ffn wi", 11520, 128, 512);
    bench_linear("policy enc ffn wo", 11520, 512, 128);
    bench_linear("policy lm_head", 10496, 128, 1027);
    /* SASRec: 256 sequences × 50 positions, width 64 */
    bench_linear("sasrec qkv", 12800, 64, 192);
    bench_linear("sasrec ffn1", 12800, 64, 256);
    bench_linear("sasrec ffn2", 12800, 256, 64);
    /* attention */
    bench_attention("policy encoder", 256, 1, 45, 45, 4, 64, 0, 1, 0.1f, 1.0f);
    bench_attention("policy decoder", 256, 1, 41, 41, 4, 64, 1, 1, 0.1f, 1.0f);
    bench_attention("policy cross", 256, 1, 41, 45, 4, 64, 0, 0, 0.1f, 1.0f);
    bench_attention("policy cross rl", 128, 16, 41, 45, 4, 64, 0, 0, 0.0f, 1.0f);
    bench_attention("sasrec", 256, 1, 50, 50, 2, 32, 1, 0, 0.5f, 0.17677669f);
    bench_attention_decode("policy self step 20", 512, 1, 20, 41, 4, 64, 1);
    bench_attention_decode("policy cross step", 512, 16, 45, 45, 4, 64, 0);
    /* cross-entropy: ~25 flops per element (exp ≈ 20 + max/sum/grad), bytes: 1 read + 1 write */
    bench_rows("crossentropy", "policy vocab", run_xent, 10496, 1027, 8, 0);
    bench_rows("crossentropy", "sasrec all-position", run_xent, 12800, 3706, 8, 0);
    bench_rows("kl_categorical", "policy vocab", run_kl, 10496, 1027, 12, 0);
    bench_rows("log_softmax", "policy vocab", run_log_softmax, 10496, 1027, 8, 0);
    bench_rows("rmsnorm", "policy fwd+bwd", run_rmsnorm, 11520, 128, 20, 0);
    bench_rows("layernorm", "sasrec fwd+bwd", run_layernorm, 12800, 64, 20, 0);
    bench_rows("gelu", "sasrec ffn fwd+bwd", run_gelu, 12800, 256, 16, 0);
    bench_adamw(1600000);
    bench_embedding("policy tokens", 11520, 1027, 128);
    bench_dropout((size_t)11520 * 512);
    /* scoring: 12800 user states × 3706 items × 64 */
    bench_scoring(12800, 3706, 64);
    /* GRU4Rec's recurrence: a training batch of 256 (full and prefix-ragged), and 2048 (RecBole's batch) */
    bench_gru("gru4rec", 50, 256, 128, 0);
    bench_gru("gru4rec prefixes", 50, 256, 128, 1);
    bench_gru("gru4rec prefixes", 50, 2048, 128, 1);
    return 0;
}
