/*
 * kernel_tests.c — numerics tests of the C kernels, without Swift.
 *
 * For every kernel family, at every SIMD level this CPU supports:
 *   1. fast kernel vs an independent double-precision reference (and the
 *      `_naive` twin vs the same reference), on odd and real shapes;
 *   2. backward kernels vs central finite differences of the double
 *      reference of  L = Σ w ∘ forward(x)  on sampled coordinates;
 *   3. edge cases: T = 1, fully masked rows, length 0, large logits;
 *   4. bit-identical results for 1, 2 and 3 threads.
 * Tolerances are in units of FLT_EPSILON times a scale fixed by the problem
 * (Σ|terms| of a dot product, the norm of a gradient), never by the element
 * checked. Every input is drawn from a seeded generator. A failure prints
 * the check, the index, expected, observed, error and tolerance, and the
 * program exits non-zero.
 *
 * Usage: kernel_tests [--quick]
 */
#include "prorl_kernels.h"

#include <float.h>
#include <pthread.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Harness                                                            */
/* ------------------------------------------------------------------ */

static int g_checks, g_failures;
static char g_context[256];

#define CONTEXT(...) snprintf(g_context, sizeof g_context, __VA_ARGS__)

static void fail(const char *what, size_t i, double want, double got,
                 double tol) {
    g_failures++;
    if (g_failures <= 30)
        fprintf(stderr,
                "FAIL [%s] %s: index %zu expected %.9g observed %.9g error %.3g tolerance %.3g\n",
                g_context, what, i, want, got, fabs(want - got), tol);
}

static void expect_true(int cond, const char *what) {
    g_checks++;
    if (!cond) {
        g_failures++;
        fprintf(stderr, "FAIL [%s] %s\n", g_context, what);
    }
}

/* |got − want| ≤ tol_eps · FLT_EPSILON · scale[i] (or the global scale). */
static void expect_close(const char *what, const float *got, const double *want,
                         const double *scale, double global_scale, size_t n,
                         double tol_eps) {
    for (size_t i = 0; i < n; i++) {
        g_checks++;
        double s = scale ? scale[i] : global_scale;
        double tol = tol_eps * FLT_EPSILON * s + 1e-30;
        double err = fabs((double)got[i] - want[i]);
        if (!(err <= tol)) { /* also catches NaN */
            fail(what, i, want[i], got[i], tol);
            return;
        }
    }
}

static void expect_bitwise(const char *what, const float *a, const float *b,
                           size_t n) {
    g_checks++;
    if (memcmp(a, b, n * sizeof(float)) != 0) {
        for (size_t i = 0; i < n; i++)
            if (memcmp(a + i, b + i, sizeof(float)) != 0) {
                fail(what, i, a[i], b[i], 0.0);
                return;
            }
    }
}

/* splitmix64 */
static uint64_t g_rng = 0x5EEDull;
static uint64_t rnd_u64(void) {
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rnd_unit(void) { return (double)(rnd_u64() >> 11) * (1.0 / 9007199254740992.0); }
static float rnd_sym(float a) { return (float)((2.0 * rnd_unit() - 1.0) * a); }
static int rnd_int(int n) { return (int)(rnd_u64() % (uint64_t)n); }

static float *fvec(size_t n, float amp) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = rnd_sym(amp);
    return x;
}
static float *fzeros(size_t n) { return calloc(n ? n : 1, sizeof(float)); }
static float *fcopy(const float *x, size_t n) {
    float *y = malloc((n ? n : 1) * sizeof(float));
    memcpy(y, x, n * sizeof(float));
    return y;
}
static double *dzeros(size_t n) { return calloc(n ? n : 1, sizeof(double)); }
static double *dfrom(const float *x, size_t n) {
    double *y = malloc((n ? n : 1) * sizeof(double));
    for (size_t i = 0; i < n; i++) y[i] = x[i];
    return y;
}
static double max_abs(const double *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

static const int k_threads[3] = {1, 2, 3};
static int g_quick = 0;

/* Central finite differences of a double objective on sampled coordinates
 * of x, against the float gradient `grad`. Error allowed: rel · scale, with
 * scale = max(max|fd|, floor); `floor` is the size of the terms a gradient
 * entry is made of (so an entry that cancels to ~0 is judged against them). */
typedef double (*objective)(void *ctx);
static void fd_check_floor(const char *what, double *x, size_t n,
                           const float *grad, objective f, void *ctx,
                           int samples, double rel, double floor) {
    if (n == 0) return;
    double *fd = dzeros((size_t)samples);
    size_t *idx = malloc((size_t)samples * sizeof(size_t));
    double scale = floor;
    for (int s = 0; s < samples; s++) {
        size_t i = (size_t)rnd_int((int)n);
        idx[s] = i;
        double h = 1e-4 * fmax(1.0, fabs(x[i]));
        double x0 = x[i];
        x[i] = x0 + h;
        double fp = f(ctx);
        x[i] = x0 - h;
        double fm = f(ctx);
        x[i] = x0;
        fd[s] = (fp - fm) / (2 * h);
        scale = fmax(scale, fabs(fd[s]));
    }
    for (int s = 0; s < samples; s++) {
        g_checks++;
        double tol = rel * scale;
        double err = fabs(fd[s] - grad[idx[s]]);
        if (!(err <= tol)) {
            fail(what, idx[s], fd[s], grad[idx[s]], tol);
            break;
        }
    }
    free(fd);
    free(idx);
}

static void fd_check(const char *what, double *x, size_t n, const float *grad,
                     objective f, void *ctx, int samples, double rel) {
    fd_check_floor(what, x, n, grad, f, ctx, samples, rel, 1e-12);
}

/* ------------------------------------------------------------------ */
/* GEMM and the linear layer                                          */
/* ------------------------------------------------------------------ */

static void gemm_ref(int ta, int tb, int M, int N, int K, double alpha,
                     const float *A, int lda, const float *B, int ldb,
                     double beta, const float *C0, int ldc, double *out,
                     double *scale) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0, sa = 0;
            for (int p = 0; p < K; p++) {
                double a = ta ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                double b = tb ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                s += a * b;
                sa += fabs(a * b);
            }
            double c = beta == 0 ? 0 : beta * C0[(size_t)i * ldc + j];
            out[(size_t)i * N + j] = alpha * s + c;
            scale[(size_t)i * N + j] = fabs(alpha) * sa + fabs(c) + 1e-30;
        }
}

static void test_gemm_case(int ta, int tb, int M, int N, int K, float alpha,
                           float beta) {
    CONTEXT("gemm ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g simd=%s", ta, tb,
            M, N, K, alpha, beta, pk_simd_name(pk_get_simd_level()));
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb;
    size_t nc = (size_t)M * ldc;
    float *A = fvec(na, 1), *B = fvec(nb, 1), *C0 = fvec(nc, 1);
    if (beta == 0.0f)
        for (size_t i = 0; i < nc; i++) C0[i] = NAN; /* must not be read */
    double *want = dzeros((size_t)M * N), *scale = dzeros((size_t)M * N);
    gemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C0, ldc, want, scale);
    float *got = fzeros((size_t)M * N), *ref_threads = NULL;
    for (int variant = 0; variant < 2; variant++)
        for (int t = 0; t < (variant ? 1 : 3); t++) {
            float *C = fcopy(C0, nc);
            pk_set_num_threads(k_threads[t]);
            if (variant == 0) pk_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
            else pk_gemm_naive(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
            for (int i = 0; i < M; i++) memcpy(got + (size_t)i * N, C + (size_t)i * ldc, (size_t)N * sizeof(float));
            expect_close(variant ? "naive vs double" : "fast vs double", got, want, scale, 0,
                         (size_t)M * N, K + 4.0);
            /* padding columns of C are untouched */
            for (int i = 0; i < M && variant == 0; i++)
                for (int j = N; j < ldc; j++) {
                    g_checks++;
                    size_t o = (size_t)i * ldc + j;
                    if (memcmp(C + o, C0 + o, sizeof(float)) != 0) {
                        fail("wrote outside C", o, C0[o], C[o], 0);
                        i = M;
                        break;
                    }
                }
            if (variant == 0) {
                if (t == 0) ref_threads = fcopy(got, (size_t)M * N);
                else expect_bitwise("threads 1 vs n", ref_threads, got, (size_t)M * N);
            }
            free(C);
        }
    free(ref_threads);
    free(A); free(B); free(C0); free(want); free(scale); free(got);
}

static void test_gemm(void) {
    /* (13, 96, 40) and (25, 160, 300): skinny N with an edge panel whose
     * tiles are split between threads */
    const int shapes[][3] = {{1, 1, 1},     {7, 13, 5},    {12, 32, 9},  {13, 33, 257},
                             {37, 45, 300}, {130, 530, 77}, {45, 64, 41}, {97, 1027, 128},
                             {13, 96, 40},  {25, 160, 300}};
    int nshapes = (int)(sizeof shapes / sizeof shapes[0]);
    for (int s = 0; s < nshapes; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                test_gemm_case(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 1.0f, 0.0f);
                if (s % 3 == 1) test_gemm_case(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 0.5f, 1.0f);
                if (s % 3 == 2) test_gemm_case(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], -1.25f, 0.5f);
            }
    if (!g_quick) test_gemm_case(0, 1, 1100, 600, 520, 1.0f, 0.0f);
    /* K = 0 scales C by beta; M = 0 is a no-op. */
    CONTEXT("gemm K=0");
    float c[6] = {1, 2, 3, 4, 5, 6};
    pk_gemm(0, 0, 2, 3, 0, 1.0f, c, 1, c, 3, 0.5f, c, 3);
    double want[6] = {0.5, 1, 1.5, 2, 2.5, 3};
    expect_close("K=0 scales by beta", c, want, NULL, 1, 6, 0);
    pk_gemm(0, 0, 0, 3, 4, 1.0f, NULL, 4, NULL, 3, 0.0f, NULL, 3);
    expect_true(1, "M=0 returns");
}

/* bf16 GEMM: against the double product of the bf16-rounded operands (the
 * fp32 sums' bound), of the fp32 operands (plus the rounding of each operand,
 * ≤ 2⁻⁹ relative), its naive twin bit for bit (beta = 0: the same roundings in
 * the same order), and 1, 2, 3 threads bit for bit. Below AVX-512 (or
 * without AVX512-BF16) it must be pk_gemm itself. */
static void test_gemm_bf16_case(int ta, int tb, int M, int N, int K, float alpha, float beta) {
    CONTEXT("gemm_bf16 ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g simd=%s bf16=%d", ta, tb, M, N, K, alpha, beta,
            pk_simd_name(pk_get_simd_level()), pk_gemm_bf16_available());
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = fvec(na, 1), *B = fvec(nb, 1), *C0 = fvec(nc, 1);
    if (beta == 0.0f)
        for (size_t i = 0; i < nc; i++) C0[i] = NAN; /* must not be read */
    float *Ar = fcopy(A, na), *Br = fcopy(B, nb); /* the operands as bf16 sees them */
    for (size_t i = 0; i < na; i++) Ar[i] = pk_float_from_bf16(pk_bf16_from_float(A[i]));
    for (size_t i = 0; i < nb; i++) Br[i] = pk_float_from_bf16(pk_bf16_from_float(B[i]));
    size_t mn = (size_t)M * N;
    double *want = dzeros(mn), *scale = dzeros(mn), *want_r = dzeros(mn), *scale_r = dzeros(mn);
    gemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C0, ldc, want, scale);
    gemm_ref(ta, tb, M, N, K, alpha, Ar, lda, Br, ldb, beta, C0, ldc, want_r, scale_r);
    float *got = fzeros(mn), *first = NULL, *naive = fzeros(mn), *fp32 = fzeros(mn);
    float *C = fcopy(C0, nc);
    pk_gemm_bf16_naive(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    for (int i = 0; i < M; i++) memcpy(naive + (size_t)i * N, C + (size_t)i * ldc, (size_t)N * sizeof(float));
    free(C);
    C = fcopy(C0, nc);
    pk_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    for (int i = 0; i < M; i++) memcpy(fp32 + (size_t)i * N, C + (size_t)i * ldc, (size_t)N * sizeof(float));
    free(C);
    const int bf16 = pk_gemm_bf16_available();
    for (int t = 0; t < 3; t++) {
        C = fcopy(C0, nc);
        pk_set_num_threads(k_threads[t]);
        pk_gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        for (int i = 0; i < M; i++) memcpy(got + (size_t)i * N, C + (size_t)i * ldc, (size_t)N * sizeof(float));
        if (t == 0) {
            first = fcopy(got, mn);
            if (bf16) {
                /* fp32 sums of exact products: pk_gemm's bound, against the rounded operands */
                expect_close("bf16 vs double of the bf16 operands", got, want_r, scale_r, 0, mn, K + 4.0);
                /* 2⁻⁷ + 2⁻¹⁶ of Σ|ab| for the operands' rounding (2⁻⁸ each), in units of FLT_EPSILON (2⁻²³) */
                expect_close("bf16 vs double of the fp32 operands", got, want, scale, 0, mn, 65536.0 + 128.0 + K + 4.0);
                expect_close("naive twin vs double of the bf16 operands", naive, want_r, scale_r, 0, mn, K + 4.0);
                if (beta == 0.0f) expect_bitwise("bf16 vs its naive twin", naive, got, mn);
            } else {
                expect_bitwise("without bf16 it is pk_gemm", fp32, got, mn);
            }
            for (int i = 0; i < M; i++)
                for (int j = N; j < ldc; j++) {
                    g_checks++;
                    size_t o = (size_t)i * ldc + j;
                    if (memcmp(C + o, C0 + o, sizeof(float)) != 0) { fail("wrote outside C", o, C0[o], C[o], 0); i = M; break; }
                }
        } else {
            expect_bitwise("threads 1 vs n", first, got, mn);
        }
        free(C);
    }
    free(A); free(B); free(C0); free(Ar); free(Br); free(want); free(scale); free(want_r); free(scale_r);
    free(got); free(first); free(naive); free(fp32);
}

static void test_gemm_bf16(void) {
    const int shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {12, 32, 9}, {13, 33, 257}, {37, 45, 300}, {130, 530, 77},
                             {45, 64, 41}, {97, 1027, 128}, {25, 160, 513}};
    int nshapes = (int)(sizeof shapes / sizeof shapes[0]);
    for (int s = 0; s < nshapes; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                test_gemm_bf16_case(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 1.0f, 0.0f);
                if (s % 3 == 1) test_gemm_bf16_case(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 0.5f, 1.0f);
                if (s % 3 == 2) test_gemm_bf16_case(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], -1.25f, 0.5f);
            }
    if (!g_quick) test_gemm_bf16_case(0, 1, 1100, 600, 520, 1.0f, 0.0f);
    CONTEXT("bf16 rounding");
    const float in[] = {1.0f, 1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -2.5f, 0x1.fffffep127f, INFINITY, -0.0f, 0x1p-130f};
    const uint16_t out[] = {0x3F80, 0x3F80, 0x3F82, 0xC020, 0x7F80, 0x7F80, 0x8000, 0x0008};
    for (int i = 0; i < 8; i++) {
        g_checks++;
        if (pk_bf16_from_float(in[i]) != out[i]) fail("bf16 of a float (nearest, ties to even)", (size_t)i, out[i], pk_bf16_from_float(in[i]), 0);
    }
    expect_true(isnan(pk_float_from_bf16(pk_bf16_from_float(NAN))), "NaN stays NaN");
    /* the precision switch: pk_gemm (and the linear layer through it) become
     * pk_gemm_bf16 on this thread, and fp32 again after */
    CONTEXT("precision switch simd=%s", pk_simd_name(pk_get_simd_level()));
    const int M = 37, N = 45, K = 300;
    float *A = fvec((size_t)M * K, 1), *B = fvec((size_t)N * K, 1), *bf = fzeros((size_t)M * N), *fp = fzeros((size_t)M * N);
    float *got = fzeros((size_t)M * N);
    pk_gemm_bf16(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, bf, N);
    pk_gemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, fp, N);
    expect_true(pk_get_precision() == PK_PRECISION_FP32, "fp32 products, as main set them");
    pk_set_precision(PK_PRECISION_BF16);
    pk_gemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, got, N);
    expect_bitwise("pk_gemm at bf16 = pk_gemm_bf16", bf, got, (size_t)M * N);
    pk_matmul_fwd(got, A, B, NULL, M, K, N);
    expect_bitwise("the linear layer at bf16 = pk_gemm_bf16", bf, got, (size_t)M * N);
    pk_set_precision(PK_PRECISION_FP32);
    pk_gemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, got, N);
    expect_bitwise("pk_gemm back at fp32", fp, got, (size_t)M * N);
    if (pk_gemm_bf16_available()) {
        int differ = memcmp(bf, fp, (size_t)M * N * sizeof(float)) != 0;
        expect_true(differ, "bf16 and fp32 products differ (or the switch shows nothing)");
    }
    /* denormal operands count as zero (also the largest, which rounding
     * alone would lift to the smallest normal bf16), as the naive twin says */
    if (pk_gemm_bf16_available()) {
        CONTEXT("bf16 denormal operands");
        for (int i = 0; i < M * K; i += 3) A[i] = (i % 2 ? 1 : -1) * (i % 9 ? 0x1.fffffcp-127f : 0x1p-140f);
        for (int i = 0; i < N * K; i += 5) B[i] = 0x1p+100f;
        pk_gemm_bf16(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, bf, N);
        pk_gemm_bf16_naive(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, got, N);
        expect_bitwise("bf16 vs its naive twin, denormal operands", got, bf, (size_t)M * N);
    }
    free(A); free(B); free(bf); free(fp); free(got);
    expect_true(pk_float_from_bf16(0x3F81) == 1.0f + 0x1p-7f, "bf16 back to float");
}

typedef struct matmul_ctx {
    int N, I, O;
    double *x, *w, *b, *wt; /* wt: the projection of the output */
} matmul_ctx;

static double matmul_objective(void *p) {
    matmul_ctx *c = p;
    double L = 0;
    for (int n = 0; n < c->N; n++)
        for (int o = 0; o < c->O; o++) {
            double s = c->b ? c->b[o] : 0;
            for (int i = 0; i < c->I; i++) s += c->x[(size_t)n * c->I + i] * c->w[(size_t)o * c->I + i];
            L += c->wt[(size_t)n * c->O + o] * s;
        }
    return L;
}

static void test_matmul(void) {
    const int shapes[][3] = {{1, 1, 1}, {5, 7, 3}, {41, 128, 256}, {64, 64, 192}, {33, 512, 128}};
    for (int s = 0; s < 5; s++) {
        int N = shapes[s][0], I = shapes[s][1], O = shapes[s][2];
        CONTEXT("matmul N=%d I=%d O=%d simd=%s", N, I, O, pk_simd_name(pk_get_simd_level()));
        float *x = fvec((size_t)N * I, 1), *w = fvec((size_t)O * I, 0.5f), *b = fvec((size_t)O, 1);
        float *g = fvec((size_t)N * O, 1);
        matmul_ctx c = {N, I, O, dfrom(x, (size_t)N * I), dfrom(w, (size_t)O * I), dfrom(b, O), dfrom(g, (size_t)N * O)};
        double *want = dzeros((size_t)N * O), *scale = dzeros((size_t)N * O);
        for (int n = 0; n < N; n++)
            for (int o = 0; o < O; o++) {
                double acc = b[o], sa = fabs(b[o]);
                for (int i = 0; i < I; i++) {
                    acc += c.x[(size_t)n * I + i] * c.w[(size_t)o * I + i];
                    sa += fabs(c.x[(size_t)n * I + i] * c.w[(size_t)o * I + i]);
                }
                want[(size_t)n * O + o] = acc;
                scale[(size_t)n * O + o] = sa;
            }
        float *out = fzeros((size_t)N * O), *outn = fzeros((size_t)N * O);
        pk_matmul_fwd(out, x, w, b, N, I, O);
        pk_matmul_fwd_naive(outn, x, w, b, N, I, O);
        expect_close("fwd fast vs double", out, want, scale, 0, (size_t)N * O, I + 4.0);
        expect_close("fwd naive vs double", outn, want, scale, 0, (size_t)N * O, I + 4.0);
        /* backward: analytic double gradients */
        double *gx = dzeros((size_t)N * I), *gw = dzeros((size_t)O * I), *gb = dzeros(O);
        double *sx = dzeros((size_t)N * I), *sw = dzeros((size_t)O * I), *sb = dzeros(O);
        for (int n = 0; n < N; n++)
            for (int o = 0; o < O; o++) {
                double go = g[(size_t)n * O + o];
                gb[o] += go;
                sb[o] += fabs(go);
                for (int i = 0; i < I; i++) {
                    gx[(size_t)n * I + i] += go * c.w[(size_t)o * I + i];
                    sx[(size_t)n * I + i] += fabs(go * c.w[(size_t)o * I + i]);
                    gw[(size_t)o * I + i] += go * c.x[(size_t)n * I + i];
                    sw[(size_t)o * I + i] += fabs(go * c.x[(size_t)n * I + i]);
                }
            }
        float *dx0 = fvec((size_t)N * I, 1), *dw0 = fvec((size_t)O * I, 1), *db0 = fvec(O, 1);
        /* accumulate onto non-zero buffers */
        for (size_t i = 0; i < (size_t)N * I; i++) { gx[i] += dx0[i]; sx[i] += fabs(dx0[i]); }
        for (size_t i = 0; i < (size_t)O * I; i++) { gw[i] += dw0[i]; sw[i] += fabs(dw0[i]); }
        for (int i = 0; i < O; i++) { gb[i] += db0[i]; sb[i] += fabs(db0[i]); }
        float *ref_dx = NULL, *ref_dw = NULL, *ref_db = NULL;
        for (int t = 0; t < 3; t++) {
            pk_set_num_threads(k_threads[t]);
            float *dx = fcopy(dx0, (size_t)N * I), *dw = fcopy(dw0, (size_t)O * I), *db = fcopy(db0, O);
            pk_matmul_bwd(dx, dw, db, g, x, w, N, I, O);
            if (t == 0) {
                expect_close("dinp vs double", dx, gx, sx, 0, (size_t)N * I, O + 4.0);
                expect_close("dweight vs double", dw, gw, sw, 0, (size_t)O * I, N + 4.0);
                expect_close("dbias vs double", db, gb, sb, 0, O, N + 4.0);
                ref_dx = dx; ref_dw = dw; ref_db = db;
                /* finite differences of the double objective (minus the
                 * accumulated start values) */
                float *fx = fzeros((size_t)N * I), *fw = fzeros((size_t)O * I), *fb = fzeros(O);
                for (size_t i = 0; i < (size_t)N * I; i++) fx[i] = dx[i] - dx0[i];
                for (size_t i = 0; i < (size_t)O * I; i++) fw[i] = dw[i] - dw0[i];
                for (int i = 0; i < O; i++) fb[i] = db[i] - db0[i];
                fd_check("dinp vs finite differences", c.x, (size_t)N * I, fx, matmul_objective, &c, 6, 1e-4);
                fd_check("dweight vs finite differences", c.w, (size_t)O * I, fw, matmul_objective, &c, 6, 1e-4);
                fd_check("dbias vs finite differences", c.b, O, fb, matmul_objective, &c, 4, 1e-4);
                free(fx); free(fw); free(fb);
            } else {
                expect_bitwise("dinp threads", ref_dx, dx, (size_t)N * I);
                expect_bitwise("dweight threads", ref_dw, dw, (size_t)O * I);
                expect_bitwise("dbias threads", ref_db, db, O);
                free(dx); free(dw); free(db);
            }
        }
        /* naive backward */
        float *dxn = fcopy(dx0, (size_t)N * I), *dwn = fcopy(dw0, (size_t)O * I), *dbn = fcopy(db0, O);
        pk_matmul_bwd_naive(dxn, dwn, dbn, g, x, w, N, I, O);
        expect_close("naive dinp vs double", dxn, gx, sx, 0, (size_t)N * I, O + 4.0);
        expect_close("naive dweight vs double", dwn, gw, sw, 0, (size_t)O * I, N + 4.0);
        free(dxn); free(dwn); free(dbn);
        free(ref_dx); free(ref_dw); free(ref_db);
        free(x); free(w); free(b); free(g); free(out); free(outn); free(want); free(scale);
        free(gx); free(gw); free(gb); free(sx); free(sw); free(sb); free(dx0); free(dw0); free(db0);
        free(c.x); free(c.w); free(c.b); free(c.wt);
    }
}

/* ------------------------------------------------------------------ */
/* Attention                                                          */
/* ------------------------------------------------------------------ */

typedef struct attn_case {
    pk_attention_desc d;
    int *kv_len, *q_len;
    float *q, *k, *v, *bias;
    size_t nq, nkv, nout, nprobs, nbias;
} attn_case;

typedef struct attn_ref_ctx {
    const pk_attention_desc *d;
    double *q, *k, *v, *bias, *w; /* w: projection of out */
} attn_ref_ctx;

static int ref_visible(const pk_attention_desc *d, int e, int b, int i, int j) {
    int klen = d->kv_len ? d->kv_len[e] : d->Tk;
    if (klen > d->Tk) klen = d->Tk;
    int qlen = d->q_len ? d->q_len[b] : d->Tq;
    return i < qlen && j < klen && (!d->causal || j <= i);
}

static double ref_keep(const pk_attention_desc *d, size_t idx) {
    if (d->dropout_p <= 0) return 1.0;
    return pk_dropout_keep(d->seed, d->stream, idx, d->dropout_p) ? 1.0 / (1.0 - (double)d->dropout_p) : 0.0;
}

/* Double forward; P [B,H,Tq,Tk] and out [B,Tq,H*D] packed. */
static void attn_ref(const pk_attention_desc *d, const double *q, const double *k,
                     const double *v, const double *bias, double *P, double *out) {
    int H = d->H, Tq = d->Tq, Tk = d->Tk, D = d->D;
    for (int b = 0; b < d->B; b++)
        for (int h = 0; h < H; h++) {
            int e = b / d->kv_group;
            for (int i = 0; i < Tq; i++) {
                double *p = P + (((size_t)b * H + h) * Tq + i) * Tk;
                double mx = -INFINITY;
                for (int j = 0; j < Tk; j++) {
                    if (!ref_visible(d, e, b, i, j)) { p[j] = -INFINITY; continue; }
                    double s = 0;
                    for (int c = 0; c < D; c++)
                        s += q[(size_t)b * Tq * d->q_stride + (size_t)i * d->q_stride + h * D + c] *
                             k[(size_t)e * d->Tk_cap * d->kv_stride + (size_t)j * d->kv_stride + h * D + c];
                    s = s * d->scale + (bias ? bias[((size_t)h * Tq + i) * Tk + j] : 0);
                    p[j] = s;
                    mx = fmax(mx, s);
                }
                double sum = 0;
                for (int j = 0; j < Tk; j++) {
                    p[j] = p[j] == -INFINITY ? 0 : exp(p[j] - mx);
                    sum += p[j];
                }
                for (int j = 0; j < Tk; j++) p[j] = sum > 0 ? p[j] / sum : 0;
                for (int c = 0; c < D; c++) {
                    double acc = 0;
                    for (int j = 0; j < Tk; j++) {
                        if (p[j] == 0) continue;
                        acc += p[j] * ref_keep(d, (((size_t)b * H + h) * Tq + i) * Tk + j) *
                               v[(size_t)e * d->Tk_cap * d->kv_stride + (size_t)j * d->kv_stride + h * D + c];
                    }
                    out[((size_t)b * Tq + i) * H * D + h * D + c] = acc;
                }
            }
        }
}

static double attn_objective(void *p) {
    attn_ref_ctx *c = p;
    const pk_attention_desc *d = c->d;
    size_t nP = (size_t)d->B * d->H * d->Tq * d->Tk, nO = (size_t)d->B * d->Tq * d->H * d->D;
    double *P = dzeros(nP), *O = dzeros(nO);
    attn_ref(d, c->q, c->k, c->v, c->bias, P, O);
    double L = 0;
    for (size_t i = 0; i < nO; i++) L += c->w[i] * O[i];
    free(P);
    free(O);
    return L;
}

static void attn_case_make(attn_case *c, int B, int G, int Tq, int Tk, int H,
                           int D, int causal, int with_bias, int padded,
                           float dropout, float scale) {
    memset(c, 0, sizeof *c);
    int E = (B + G - 1) / G;
    pk_attention_desc *d = &c->d;
    d->B = B; d->kv_group = G; d->Tq = Tq; d->Tk = Tk; d->Tk_cap = Tk + 2; d->H = H; d->D = D;
    d->q_stride = H * D + 5; d->kv_stride = H * D + 3; d->out_stride = H * D;
    d->causal = causal; d->scale = scale; d->dropout_p = dropout;
    d->seed = 1234; d->stream = 77;
    c->nq = (size_t)B * Tq * d->q_stride;
    c->nkv = (size_t)E * d->Tk_cap * d->kv_stride;
    c->nout = (size_t)B * Tq * d->out_stride;
    c->nprobs = (size_t)B * H * Tq * Tk;
    c->nbias = (size_t)H * Tq * Tk;
    c->q = fvec(c->nq, 1); c->k = fvec(c->nkv, 1); c->v = fvec(c->nkv, 1);
    if (with_bias) { c->bias = fvec(c->nbias, 2); d->bias = c->bias; }
    if (padded) {
        c->kv_len = malloc((size_t)E * sizeof(int));
        c->q_len = malloc((size_t)B * sizeof(int));
        for (int e = 0; e < E; e++) c->kv_len[e] = e == 0 ? Tk : (e == 1 ? 0 : 1 + rnd_int(Tk));
        for (int b = 0; b < B; b++) c->q_len[b] = b == 0 ? Tq : (b == 1 ? 0 : 1 + rnd_int(Tq));
        d->kv_len = c->kv_len;
        d->q_len = c->q_len;
    }
}

static void attn_case_free(attn_case *c) {
    free(c->kv_len); free(c->q_len); free(c->q); free(c->k); free(c->v); free(c->bias);
}

static void test_attention_case(int B, int G, int Tq, int Tk, int H, int D,
                                int causal, int with_bias, int padded,
                                float dropout, float scale) {
    attn_case c;
    attn_case_make(&c, B, G, Tq, Tk, H, D, causal, with_bias, padded, dropout, scale);
    const pk_attention_desc *d = &c.d;
    CONTEXT("attention B=%d G=%d Tq=%d Tk=%d H=%d D=%d causal=%d bias=%d padded=%d drop=%g simd=%s",
            B, G, Tq, Tk, H, D, causal, with_bias, padded, dropout, pk_simd_name(pk_get_simd_level()));
    size_t nO = (size_t)B * Tq * H * D;
    attn_ref_ctx r = {d, dfrom(c.q, c.nq), dfrom(c.k, c.nkv), dfrom(c.v, c.nkv),
                      c.bias ? dfrom(c.bias, c.nbias) : NULL, NULL};
    double *P = dzeros(c.nprobs), *O = dzeros(nO);
    attn_ref(d, r.q, r.k, r.v, r.bias, P, O);
    /* scale of an output element: Σ_j |p·keep| · max|v| ≤ max|v|/(1−p) */
    double oscale = 1.0 / (1.0 - dropout);
    float *out = fzeros(c.nout), *probs = fzeros(c.nprobs), *scratch = fzeros(c.nprobs);
    float *first_out = NULL, *first_probs = NULL;
    for (int variant = 0; variant < 2; variant++)
        for (int t = 0; t < (variant ? 1 : 3); t++) {
            pk_set_num_threads(k_threads[t]);
            for (size_t i = 0; i < c.nout; i++) out[i] = NAN;
            if (variant == 0) pk_attention_fwd(out, probs, scratch, c.q, c.k, c.v, d);
            else pk_attention_fwd_naive(out, probs, scratch, c.q, c.k, c.v, d);
            const char *tag = variant ? "naive" : "fast";
            char what[64];
            snprintf(what, sizeof what, "%s probs vs double", tag);
            expect_close(what, probs, P, NULL, 1.0, c.nprobs, 2.0 * (Tk + D) + 8.0);
            float *o = fzeros(nO);
            for (int b = 0; b < B; b++)
                for (int i = 0; i < Tq; i++)
                    memcpy(o + ((size_t)b * Tq + i) * H * D, out + ((size_t)b * Tq + i) * d->out_stride, (size_t)H * D * sizeof(float));
            snprintf(what, sizeof what, "%s out vs double", tag);
            expect_close(what, o, O, NULL, oscale, nO, 2.0 * (Tk + D) + 8.0);
            if (variant == 0) {
                if (t == 0) { first_out = fcopy(out, c.nout); first_probs = fcopy(probs, c.nprobs); }
                else {
                    expect_bitwise("out threads", first_out, out, c.nout);
                    expect_bitwise("probs threads", first_probs, probs, c.nprobs);
                }
            }
            free(o);
        }
    /* backward: fast vs naive, vs finite differences, threads */
    pk_set_num_threads(1);
    pk_attention_fwd(out, probs, scratch, c.q, c.k, c.v, d);
    float *g = fvec(c.nout, 1);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < Tq; i++)
            for (int x = H * D; x < d->out_stride; x++) g[((size_t)b * Tq + i) * d->out_stride + x] = 0;
    r.w = dzeros(nO);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < Tq; i++)
            for (int x = 0; x < H * D; x++)
                r.w[((size_t)b * Tq + i) * H * D + x] = g[((size_t)b * Tq + i) * d->out_stride + x];
    float *dq[2], *dk[2], *dv[2], *db[2];
    float *first[4] = {0};
    for (int variant = 0; variant < 2; variant++)
        for (int t = 0; t < (variant ? 1 : 3); t++) {
            pk_set_num_threads(k_threads[t]);
            float *gq = fzeros(c.nq), *gk = fzeros(c.nkv), *gv = fzeros(c.nkv), *gb = fzeros(c.nbias);
            float *sc = fzeros(c.nprobs);
            if (variant == 0) pk_attention_bwd(gq, gk, gv, c.bias ? gb : NULL, sc, g, probs, c.q, c.k, c.v, d);
            else pk_attention_bwd_naive(gq, gk, gv, c.bias ? gb : NULL, sc, g, probs, c.q, c.k, c.v, d);
            free(sc);
            if (variant == 0 && t > 0) {
                expect_bitwise("dq threads", first[0], gq, c.nq);
                expect_bitwise("dk threads", first[1], gk, c.nkv);
                expect_bitwise("dv threads", first[2], gv, c.nkv);
                expect_bitwise("dbias threads", first[3], gb, c.nbias);
                free(gq); free(gk); free(gv); free(gb);
                continue;
            }
            if (variant == 0) { first[0] = gq; first[1] = gk; first[2] = gv; first[3] = gb; }
            dq[variant] = gq; dk[variant] = gk; dv[variant] = gv; db[variant] = gb;
        }
    /* the fast and naive gradients agree (scale: largest naive gradient) */
    double *dn = dfrom(dq[1], c.nq);
    expect_close("dq fast vs naive", dq[0], dn, NULL, max_abs(dn, c.nq) + 1, c.nq, 16.0 * (Tk + D));
    free(dn); dn = dfrom(dk[1], c.nkv);
    expect_close("dk fast vs naive", dk[0], dn, NULL, max_abs(dn, c.nkv) + 1, c.nkv, 16.0 * (Tq * G + D));
    free(dn); dn = dfrom(dv[1], c.nkv);
    expect_close("dv fast vs naive", dv[0], dn, NULL, max_abs(dn, c.nkv) + 1, c.nkv, 16.0 * (Tq * G + D));
    free(dn); dn = dfrom(db[1], c.nbias);
    expect_close("dbias fast vs naive", db[0], dn, NULL, max_abs(dn, c.nbias) + 1, c.nbias, 16.0 * (B + D));
    free(dn);
    int samples = g_quick ? 4 : 8;
    fd_check("dq vs finite differences", r.q, c.nq, dq[0], attn_objective, &r, samples, 2e-4);
    fd_check("dk vs finite differences", r.k, c.nkv, dk[0], attn_objective, &r, samples, 2e-4);
    fd_check("dv vs finite differences", r.v, c.nkv, dv[0], attn_objective, &r, samples, 2e-4);
    if (c.bias) fd_check("dbias vs finite differences", r.bias, c.nbias, db[0], attn_objective, &r, samples, 2e-4);
    /* decode: the last query row against a cache equals the full forward's
     * last row (no dropout, not causal: decode sees all Tk keys). */
    if (dropout == 0.0f && !causal && !padded) {
        pk_attention_desc dd = *d;
        dd.Tq = 1;
        dd.q_stride = d->q_stride;
        dd.out_stride = d->out_stride;
        float *bias_row = NULL;
        if (c.bias) {
            bias_row = fzeros((size_t)H * Tk);
            for (int h = 0; h < H; h++)
                memcpy(bias_row + (size_t)h * Tk, c.bias + ((size_t)h * Tq + (Tq - 1)) * Tk, (size_t)Tk * sizeof(float));
            dd.bias = bias_row;
        }
        float *ql = fzeros((size_t)B * d->q_stride), *ol = fzeros((size_t)B * d->out_stride), *oln = fzeros((size_t)B * d->out_stride);
        for (int b = 0; b < B; b++)
            memcpy(ql + (size_t)b * d->q_stride, c.q + ((size_t)b * Tq + Tq - 1) * d->q_stride, (size_t)d->q_stride * sizeof(float));
        pk_attention_decode(ol, ql, c.k, c.v, &dd);
        pk_attention_decode_naive(oln, ql, c.k, c.v, &dd);
        double *want = dzeros((size_t)B * H * D);
        for (int b = 0; b < B; b++)
            for (int x = 0; x < H * D; x++) want[(size_t)b * H * D + x] = O[((size_t)b * Tq + Tq - 1) * H * D + x];
        float *olp = fzeros((size_t)B * H * D), *olnp = fzeros((size_t)B * H * D);
        for (int b = 0; b < B; b++) {
            memcpy(olp + (size_t)b * H * D, ol + (size_t)b * d->out_stride, (size_t)H * D * sizeof(float));
            memcpy(olnp + (size_t)b * H * D, oln + (size_t)b * d->out_stride, (size_t)H * D * sizeof(float));
        }
        expect_close("decode vs double", olp, want, NULL, 1.0, (size_t)B * H * D, 2.0 * (Tk + D) + 8);
        expect_close("decode naive vs double", olnp, want, NULL, 1.0, (size_t)B * H * D, 2.0 * (Tk + D) + 8);
        free(ql); free(ol); free(oln); free(want); free(olp); free(olnp); free(bias_row);
    }
    for (int i = 0; i < 2; i++) { free(dq[i]); free(dk[i]); free(dv[i]); free(db[i]); }
    free(first_out); free(first_probs);
    free(out); free(probs); free(scratch); free(g); free(P); free(O);
    free(r.q); free(r.k); free(r.v); free(r.bias); free(r.w);
    attn_case_free(&c);
}

/* Packed rows (q_rows/kv_rows) must give exactly what the padded layout
 * gives for the real rows: causal self-attention over sequences of unequal
 * length stored back to back, and cross-attention with shared kv entries,
 * both with a position bias and dropout. Packed probabilities are stored
 * [rows, H, Tk]. */
static void test_attention_packed(int causal, int G) {
    const int B = 6, T = 9, H = 2, D = 20, W = H * D + 3;
    int E = B / G;
    CONTEXT("attention packed rows causal=%d G=%d simd=%s", causal, G, pk_simd_name(pk_get_simd_level()));
    int qlen[6], kvlen[6], qrows[6], kvrows[6];
    int nq = 0, nkv = 0;
    for (int b = 0; b < B; b++) { qlen[b] = 1 + rnd_int(T); qrows[b] = nq; nq += qlen[b]; }
    int Tk = G == 1 ? T : 7;
    for (int e = 0; e < E; e++) { kvlen[e] = G == 1 ? qlen[e] : 1 + rnd_int(Tk); kvrows[e] = nkv; nkv += G == 1 ? qlen[e] : Tk; }
    /* padded inputs, and packed copies of their real rows */
    float *q = fvec((size_t)B * T * W, 1), *k = fvec((size_t)E * Tk * W, 1), *v = fvec((size_t)E * Tk * W, 1);
    float *g = fvec((size_t)B * T * H * D, 1), *bias = fvec((size_t)H * T * Tk, 2);
    float *qp = fzeros((size_t)nq * W), *kp = fzeros((size_t)nkv * W), *vp = fzeros((size_t)nkv * W);
    float *gp = fzeros((size_t)nq * H * D);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < qlen[b]; i++) {
            memcpy(qp + (size_t)(qrows[b] + i) * W, q + ((size_t)b * T + i) * W, W * 4);
            memcpy(gp + (size_t)(qrows[b] + i) * H * D, g + ((size_t)b * T + i) * H * D, (size_t)H * D * 4);
        }
    for (int e = 0; e < E; e++)
        for (int j = 0; j < (G == 1 ? qlen[e] : Tk); j++) {
            memcpy(kp + (size_t)(kvrows[e] + j) * W, k + ((size_t)e * Tk + j) * W, W * 4);
            memcpy(vp + (size_t)(kvrows[e] + j) * W, v + ((size_t)e * Tk + j) * W, W * 4);
        }
    pk_attention_desc d = {.B = B, .kv_group = G, .Tq = T, .Tk = Tk, .Tk_cap = Tk, .H = H, .D = D,
                           .q_stride = W, .kv_stride = W, .out_stride = H * D, .kv_len = kvlen, .q_len = qlen,
                           .causal = causal, .scale = 0.3f, .bias = bias, .dropout_p = 0.1f, .seed = 9, .stream = 4};
    pk_attention_desc dp = d;
    dp.q_rows = qrows;
    dp.kv_rows = kvrows;
    size_t np = (size_t)B * H * T * Tk, npp = (size_t)nq * H * Tk, nb = (size_t)H * T * Tk;
    for (int variant = 0; variant < 2; variant++) {
        float *o = fzeros((size_t)B * T * H * D), *op = fzeros((size_t)nq * H * D);
        float *P = fzeros(np), *Pp = fzeros(npp), *S = fzeros(np), *Sp = fzeros(npp);
        float *db = fzeros(nb), *dbp = fzeros(nb);
        float *dq = fzeros((size_t)B * T * W), *dk = fzeros((size_t)E * Tk * W), *dv = fzeros((size_t)E * Tk * W);
        float *dqp = fzeros((size_t)nq * W), *dkp = fzeros((size_t)nkv * W), *dvp = fzeros((size_t)nkv * W);
        if (variant == 0) {
            pk_attention_fwd(o, P, S, q, k, v, &d);
            pk_attention_fwd(op, Pp, Sp, qp, kp, vp, &dp);
            pk_attention_bwd(dq, dk, dv, db, S, g, P, q, k, v, &d);
            pk_attention_bwd(dqp, dkp, dvp, dbp, Sp, gp, Pp, qp, kp, vp, &dp);
        } else {
            pk_attention_fwd_naive(o, P, S, q, k, v, &d);
            pk_attention_fwd_naive(op, Pp, Sp, qp, kp, vp, &dp);
            pk_attention_bwd_naive(dq, dk, dv, db, S, g, P, q, k, v, &d);
            pk_attention_bwd_naive(dqp, dkp, dvp, dbp, Sp, gp, Pp, qp, kp, vp, &dp);
        }
        const char *tag = variant ? "naive" : "fast";
        char what[64];
        snprintf(what, sizeof what, "%s packed dbias = padded", tag);
        expect_bitwise(what, db, dbp, nb);
        for (int b = 0; b < B; b++)
            for (int i = 0; i < qlen[b]; i++) {
                for (int h = 0; h < H; h++) {
                    snprintf(what, sizeof what, "%s packed probs, dscores = padded", tag);
                    expect_bitwise(what, P + (((size_t)b * H + h) * T + i) * Tk, Pp + ((size_t)(qrows[b] + i) * H + h) * Tk, Tk);
                    expect_bitwise(what, S + (((size_t)b * H + h) * T + i) * Tk, Sp + ((size_t)(qrows[b] + i) * H + h) * Tk, Tk);
                }
                snprintf(what, sizeof what, "%s packed out = padded", tag);
                expect_bitwise(what, o + ((size_t)b * T + i) * H * D, op + (size_t)(qrows[b] + i) * H * D, (size_t)H * D);
                snprintf(what, sizeof what, "%s packed dq = padded", tag);
                expect_bitwise(what, dq + ((size_t)b * T + i) * W, dqp + (size_t)(qrows[b] + i) * W, W);
            }
        for (int e = 0; e < E; e++)
            for (int j = 0; j < (G == 1 ? qlen[e] : Tk); j++) {
                snprintf(what, sizeof what, "%s packed dk, dv = padded", tag);
                expect_bitwise(what, dk + ((size_t)e * Tk + j) * W, dkp + (size_t)(kvrows[e] + j) * W, W);
                expect_bitwise(what, dv + ((size_t)e * Tk + j) * W, dvp + (size_t)(kvrows[e] + j) * W, W);
            }
        free(o); free(op); free(P); free(Pp); free(S); free(Sp); free(db); free(dbp);
        free(dq); free(dk); free(dv); free(dqp); free(dkp); free(dvp);
    }
    free(q); free(k); free(v); free(g); free(bias); free(qp); free(kp); free(vp); free(gp);
}

/* Decoding over per-row caches: runs of rows sharing an entry (the G
 * samples of a prompt) are computed as groups. Fast vs naive, threads
 * bitwise, and each row alone gives bitwise what it gives in its group. */
static void test_attention_decode_groups(int Tk, int with_bias) {
    const int B = 37, H = 2, D = 24, W = H * D + 3;
    CONTEXT("attention decode groups Tk=%d bias=%d simd=%s", Tk, with_bias, pk_simd_name(pk_get_simd_level()));
    /* runs of 1, 17, 5, 3 and 11 rows; the 5-row run changes length midway */
    const int runs[5] = {1, 17, 5, 3, 11};
    int kvrows[37], kvlen[37], b = 0;
    for (int r = 0; r < 5; r++) {
        int len = 1 + rnd_int(Tk);
        for (int i = 0; i < runs[r]; i++, b++) {
            kvrows[b] = r * Tk;
            kvlen[b] = (r == 2 && i >= 2) ? (len > 1 ? len / 2 : 1) : len;
        }
    }
    /* values start H·D into a row: the last row's run past 5·Tk rows by H·D */
    float *q = fvec((size_t)B * W, 1), *kv = fvec((size_t)5 * Tk * W + H * D, 1), *bias = fvec((size_t)H * Tk, 2);
    pk_attention_desc d = {.B = B, .kv_group = 1, .Tq = 1, .Tk = Tk, .Tk_cap = Tk, .H = H, .D = D,
                           .q_stride = W, .kv_stride = W, .out_stride = H * D, .kv_len = kvlen,
                           .kv_rows = kvrows, .scale = 0.7f, .bias = with_bias ? bias : NULL};
    size_t n = (size_t)B * H * D;
    float *want = fzeros(n), *first = NULL;
    pk_attention_decode_naive(want, q, kv, kv + H * D, &d);
    double *wd = dfrom(want, n);
    for (int t = 0; t < 3; t++) {
        pk_set_num_threads(k_threads[t]);
        float *out = fzeros(n);
        pk_attention_decode(out, q, kv, kv + H * D, &d);
        expect_close("decode fast vs naive", out, wd, NULL, 1.0, n, 4.0 * (Tk + D));
        if (t == 0) first = out;
        else { expect_bitwise("decode threads", first, out, n); free(out); }
    }
    pk_set_num_threads(1);
    for (int r = 0; r < B; r += 6) {
        pk_attention_desc one = d;
        one.B = 1;
        one.kv_len = kvlen + r;
        one.kv_rows = kvrows + r;
        float *o = fzeros((size_t)H * D);
        pk_attention_decode(o, q + (size_t)r * W, kv, kv + H * D, &one);
        expect_bitwise("decode row alone = in its group", o, first + (size_t)r * H * D, (size_t)H * D);
        free(o);
    }
    free(first); free(want); free(wd); free(q); free(kv); free(bias);
}

static void test_attention(void) {
    test_attention_decode_groups(45, 0);
    test_attention_decode_groups(41, 1);
    test_attention_decode_groups(100, 1);
    test_attention_decode_groups(300, 1);
    test_attention_packed(1, 1);
    test_attention_packed(0, 3);
    /* B, G, Tq, Tk, H, D, causal, bias, padded, dropout, scale */
    test_attention_case(2, 1, 5, 5, 2, 8, 0, 1, 0, 0.0f, 1.0f);
    test_attention_case(3, 1, 7, 7, 2, 20, 1, 1, 1, 0.0f, 1.0f);       /* causal decoder, odd D */
    test_attention_case(3, 1, 7, 7, 2, 20, 1, 1, 1, 0.1f, 1.0f);       /* … with dropout (the T5 decoder's) */
    test_attention_case(2, 1, 70, 70, 2, 16, 1, 1, 1, 0.1f, 0.25f);    /* causal past one key block, dropout */
    test_attention_case(6, 3, 4, 9, 2, 16, 0, 0, 1, 0.0f, 0.25f);      /* cross, shared kv */
    test_attention_case(4, 1, 9, 9, 4, 64, 0, 1, 1, 0.1f, 1.0f);       /* T5 encoder with dropout */
    test_attention_case(3, 1, 11, 11, 2, 32, 1, 0, 1, 0.0f, 0.17677669f); /* SASRec layout */
    test_attention_case(2, 1, 1, 1, 1, 4, 1, 1, 0, 0.0f, 1.0f);        /* T = 1 */
    test_attention_case(2, 2, 3, 70, 2, 24, 0, 1, 0, 0.0f, 1.0f);      /* keys cross a block */
    test_attention_case(1, 1, 3, 4, 1, 300, 0, 0, 0, 0.0f, 0.05f);     /* D > max: naive path */
    if (!g_quick) test_attention_case(8, 4, 41, 45, 4, 64, 0, 0, 1, 0.1f, 1.0f); /* policy cross */
}

/* ------------------------------------------------------------------ */
/* Softmax, log-softmax, cross-entropy                                */
/* ------------------------------------------------------------------ */

typedef struct rows_ctx {
    int N, C, log_domain;
    double *x, *w;
    const uint8_t *mask;
} rows_ctx;

static void softmax_ref(const double *x, const uint8_t *mask, int N, int C,
                        int log_domain, double *y) {
    for (int n = 0; n < N; n++) {
        double mx = -INFINITY;
        for (int c = 0; c < C; c++)
            if (!mask || mask[(size_t)n * C + c]) mx = fmax(mx, x[(size_t)n * C + c]);
        double sum = 0;
        for (int c = 0; c < C; c++)
            if (!mask || mask[(size_t)n * C + c]) sum += exp(x[(size_t)n * C + c] - mx);
        for (int c = 0; c < C; c++) {
            int keep = (!mask || mask[(size_t)n * C + c]) && mx > -INFINITY;
            double v = x[(size_t)n * C + c] - mx;
            y[(size_t)n * C + c] = log_domain ? (keep ? v - log(sum) : (mx == -INFINITY ? 0 : -INFINITY))
                                              : (keep ? exp(v) / sum : 0);
        }
    }
}

static double rows_objective(void *p) {
    rows_ctx *c = p;
    size_t n = (size_t)c->N * c->C;
    double *y = dzeros(n), L = 0;
    softmax_ref(c->x, c->mask, c->N, c->C, c->log_domain, y);
    for (size_t i = 0; i < n; i++)
        if (isfinite(y[i])) L += c->w[i] * y[i];
    free(y);
    return L;
}

static void test_softmax_case(int N, int C, float amp, int masked, int log_domain) {
    CONTEXT("%s N=%d C=%d amp=%g masked=%d simd=%s", log_domain ? "log_softmax" : "softmax", N, C, amp,
            masked, pk_simd_name(pk_get_simd_level()));
    size_t n = (size_t)N * C;
    float *x = fvec(n, amp);
    uint8_t *mask = NULL;
    if (masked) {
        mask = malloc(n);
        for (size_t i = 0; i < n; i++) mask[i] = rnd_int(3) != 0;
        for (int c = 0; c < C; c++) mask[c] = 0; /* row 0 fully masked */
    }
    rows_ctx rc = {N, C, log_domain, dfrom(x, n), NULL, mask};
    double *want = dzeros(n);
    softmax_ref(rc.x, mask, N, C, log_domain, want);
    float *y = fzeros(n), *yn = fzeros(n), *first = NULL;
    for (int t = 0; t < 3; t++) {
        pk_set_num_threads(k_threads[t]);
        if (log_domain) pk_log_softmax_fwd(y, x, mask, N, C);
        else pk_softmax_fwd(y, x, mask, N, C);
        if (t == 0) first = fcopy(y, n);
        else expect_bitwise("threads", first, y, n);
    }
    if (log_domain) pk_log_softmax_fwd_naive(yn, x, mask, N, C);
    else pk_softmax_fwd_naive(yn, x, mask, N, C);
    /* infinities must match exactly; finite values within tolerance */
    for (size_t i = 0; i < n; i++) {
        g_checks++;
        if (isinf(want[i]) || isinf(y[i]) || isinf(yn[i])) {
            if (!(isinf(y[i]) && isinf(yn[i]) && isinf(want[i]))) { fail("masked entries are -inf", i, want[i], y[i], 0); break; }
            y[i] = yn[i] = 0; want[i] = 0;
        }
    }
    /* log-softmax error grows with |x|·eps; softmax values are ≤ 1 */
    double sc = log_domain ? 2.0 * amp + log((double)C) + 1 : 1.0;
    expect_close("fast vs double", y, want, NULL, sc, n, 4.0 * C + 16);
    expect_close("naive vs double", yn, want, NULL, sc, n, 4.0 * C + 16);
    /* in place */
    float *z = fcopy(x, n);
    if (log_domain) pk_log_softmax_fwd(z, z, mask, N, C);
    else pk_softmax_fwd(z, z, mask, N, C);
    if (log_domain) pk_log_softmax_fwd(y, x, mask, N, C);
    else pk_softmax_fwd(y, x, mask, N, C);
    expect_bitwise("in place", y, z, n);
    /* backward vs finite differences (no mask: masked entries are constant) */
    if (!masked && amp < 100) {
        float *g = fvec(n, 1), *dx = fzeros(n);
        rc.w = dfrom(g, n);
        if (log_domain) pk_log_softmax_bwd(dx, g, y, N, C);
        else pk_softmax_bwd(dx, g, y, N, C);
        fd_check("backward vs finite differences", rc.x, n, dx, rows_objective, &rc, 8, 1e-4);
        float *dx1 = fzeros(n);
        pk_set_num_threads(1);
        if (log_domain) pk_log_softmax_bwd(dx1, g, y, N, C);
        else pk_softmax_bwd(dx1, g, y, N, C);
        pk_set_num_threads(2);
        for (size_t i = 0; i < n; i++) dx[i] = 0;
        if (log_domain) pk_log_softmax_bwd(dx, g, y, N, C);
        else pk_softmax_bwd(dx, g, y, N, C);
        expect_bitwise("backward threads", dx1, dx, n);
        free(g); free(dx); free(dx1); free(rc.w);
    }
    free(x); free(mask); free(rc.x); free(want); free(y); free(yn); free(first); free(z);
}

static void test_softmax(void) {
    for (int log_domain = 0; log_domain < 2; log_domain++) {
        test_softmax_case(3, 1, 1, 0, log_domain);
        test_softmax_case(5, 7, 3, 0, log_domain);
        test_softmax_case(4, 33, 3, 1, log_domain);
        test_softmax_case(6, 1027, 5, 0, log_domain);
        test_softmax_case(3, 1027, 5, 1, log_domain);
        test_softmax_case(2, 50, 3.0e4f, 0, log_domain); /* large logits */
    }
}

typedef struct xent_ctx {
    int N, V;
    double *x, *w;
    const int *t;
} xent_ctx;

static double xent_objective(void *p) {
    xent_ctx *c = p;
    double L = 0;
    for (int n = 0; n < c->N; n++) {
        if (c->t[n] < 0) continue;
        const double *x = c->x + (size_t)n * c->V;
        double mx = -INFINITY, s = 0;
        for (int v = 0; v < c->V; v++) mx = fmax(mx, x[v]);
        for (int v = 0; v < c->V; v++) s += exp(x[v] - mx);
        L += c->w[n] * (mx + log(s) - x[c->t[n]]);
    }
    return L;
}

static void test_crossentropy_case(int N, int V, float amp, int per_row) {
    CONTEXT("crossentropy N=%d V=%d amp=%g per_row=%d simd=%s", N, V, amp, per_row,
            pk_simd_name(pk_get_simd_level()));
    size_t n = (size_t)N * V;
    float *x = fvec(n, amp);
    int *t = malloc((size_t)N * sizeof(int));
    for (int i = 0; i < N; i++) t[i] = (i % 4 == 3) ? -100 : rnd_int(V);
    float *w = fvec(N, 1);
    float scale = 0.37f;
    double *lw = dzeros(N), *lse_scale = dzeros(N);
    xent_ctx xc = {N, V, dfrom(x, n), lw, t};
    double *want_loss = dzeros(N), *want_ent = dzeros(N), *want_g = dzeros(n), *g_scale = dzeros(n);
    for (int r = 0; r < N; r++) {
        lw[r] = per_row ? w[r] : scale;
        if (t[r] < 0) continue;
        const double *xr = xc.x + (size_t)r * V;
        double mx = -INFINITY, s = 0, h = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, xr[v]);
        for (int v = 0; v < V; v++) s += exp(xr[v] - mx);
        double lse = mx + log(s);
        want_loss[r] = lse - xr[t[r]];
        lse_scale[r] = fabs(lse) + fabs(xr[t[r]]) + 1;
        for (int v = 0; v < V; v++) {
            double p = exp(xr[v] - lse);
            h -= p * (xr[v] - lse);
            want_g[(size_t)r * V + v] = (p - (v == t[r])) * lw[r];
            /* p = exp(x − lse) carries the rounding of x − lse: ~eps·(|x|+|lse|) */
            g_scale[(size_t)r * V + v] = fabs(lw[r]) * (p * (fabs(xr[v]) + fabs(lse) + 1) + 1e-3);
        }
        want_ent[r] = h;
    }
    float *loss = fzeros(N), *ent = fzeros(N), *g = fzeros(n), *first = NULL;
    for (int variant = 0; variant < 2; variant++)
        for (int th = 0; th < (variant ? 1 : 3); th++) {
            pk_set_num_threads(k_threads[th]);
            if (variant == 0) pk_crossentropy(loss, g, ent, x, t, per_row ? w : NULL, scale, N, V, -100);
            else pk_crossentropy_naive(loss, g, ent, x, t, per_row ? w : NULL, scale, N, V, -100);
            expect_close(variant ? "naive loss vs double" : "loss vs double", loss, want_loss, lse_scale, 0, N, 2.0 * V + 8);
            expect_close(variant ? "naive entropy vs double" : "entropy vs double", ent, want_ent, lse_scale, 0, N, 4.0 * V + 8);
            expect_close(variant ? "naive dlogits vs double" : "dlogits vs double", g, want_g, g_scale, 0, n, 4.0 * V + 8);
            if (variant == 0) {
                if (th == 0) first = fcopy(g, n);
                else expect_bitwise("dlogits threads", first, g, n);
            }
        }
    if (amp < 100) fd_check("dlogits vs finite differences", xc.x, n, g, xent_objective, &xc, 8, 1e-4);
    /* in place: dlogits aliasing logits */
    float *z = fcopy(x, n);
    pk_crossentropy(loss, z, NULL, z, t, per_row ? w : NULL, scale, N, V, -100);
    expect_bitwise("in place dlogits", first, z, n);
    free(x); free(t); free(w); free(lw); free(lse_scale); free(xc.x); free(want_loss); free(want_ent);
    free(want_g); free(g_scale); free(loss); free(ent); free(g); free(first); free(z);
}

/* ------------------------------------------------------------------ */
/* KL of categorical distributions and the masked fill                */
/* ------------------------------------------------------------------ */

typedef struct {
    int N, C;
    double *x, *r, *w;
    const uint8_t *m;
} kl_ctx;

/* Double reference: kl[n] over the support; returns Σ_n w[n] kl[n]. */
static double kl_ref(const kl_ctx *c, double *kl) {
    double L = 0;
    for (int n = 0; n < c->N; n++) {
        const double *x = c->x + (size_t)n * c->C, *r = c->r + (size_t)n * c->C;
        const uint8_t *m = c->m ? c->m + (size_t)n * c->C : NULL;
        double mx = -INFINITY, mr = -INFINITY, sx = 0, sr = 0, k = 0;
        for (int v = 0; v < c->C; v++)
            if (!m || m[v]) { mx = fmax(mx, x[v]); mr = fmax(mr, r[v]); }
        if (mx == -INFINITY) { if (kl) kl[n] = 0; continue; }
        for (int v = 0; v < c->C; v++)
            if (!m || m[v]) { sx += exp(x[v] - mx); sr += exp(r[v] - mr); }
        double lp = mx + log(sx), lq = mr + log(sr);
        for (int v = 0; v < c->C; v++)
            if (!m || m[v]) k += exp(x[v] - lp) * ((x[v] - lp) - (r[v] - lq));
        if (kl) kl[n] = k;
        L += c->w[n] * k;
    }
    return L;
}

static double kl_objective(void *p) { return kl_ref(p, NULL); }

static void test_kl_case(int N, int C, float amp, int masked, int per_row) {
    CONTEXT("kl N=%d C=%d amp=%g masked=%d per_row=%d", N, C, amp, masked, per_row);
    size_t n = (size_t)N * C;
    float *x = fvec(n, amp), *r = fvec(n, amp), *w = fvec(N, 1);
    uint8_t *m = NULL;
    if (masked) {
        m = malloc(n);
        for (size_t i = 0; i < n; i++) m[i] = rnd_unit() < 0.6;
        for (int v = 0; v < C; v++) m[(size_t)(N - 1) * C + v] = 0; /* an empty support */
        m[0] = 1;
    }
    float scale = 0.37f;
    kl_ctx kc = {N, C, dfrom(x, n), dfrom(r, n), dzeros(N), m};
    for (int i = 0; i < N; i++) kc.w[i] = per_row ? w[i] : scale;
    double *want = dzeros(N), *want_g = dzeros(n), *gs = dzeros(n);
    kl_ref(&kc, want);
    /* the gradient by the formula, in double; scale of each entry: w·p·(|log p|+|log q|+|kl|+1) */
    for (int row = 0; row < N; row++) {
        const double *xr = kc.x + (size_t)row * C, *rr = kc.r + (size_t)row * C;
        const uint8_t *mr = m ? m + (size_t)row * C : NULL;
        double mx = -INFINITY, mq = -INFINITY, sx = 0, sq = 0;
        for (int v = 0; v < C; v++) if (!mr || mr[v]) { mx = fmax(mx, xr[v]); mq = fmax(mq, rr[v]); }
        if (mx == -INFINITY) continue;
        for (int v = 0; v < C; v++) if (!mr || mr[v]) { sx += exp(xr[v] - mx); sq += exp(rr[v] - mq); }
        double lp = mx + log(sx), lq = mq + log(sq);
        for (int v = 0; v < C; v++) {
            size_t i = (size_t)row * C + v;
            if (mr && !mr[v]) continue;
            double p = exp(xr[v] - lp);
            want_g[i] = kc.w[row] * p * ((xr[v] - lp) - (rr[v] - lq) - want[row]);
            gs[i] = fabs(kc.w[row]) * (p * (fabs(xr[v]) + fabs(lp) + fabs(rr[v]) + fabs(lq) + fabs(want[row]) + 1) + 1e-6);
        }
    }
    double *kscale = dzeros(N);
    for (int i = 0; i < N; i++) kscale[i] = want[i] + 2 * amp + 1;
    float *kl = fzeros(N), *g = fzeros(n), *first = NULL;
    for (int variant = 0; variant < 2; variant++)
        for (int th = 0; th < (variant ? 1 : 3); th++) {
            pk_set_num_threads(k_threads[th]);
            if (variant == 0) pk_kl_categorical(kl, g, x, r, m, per_row ? w : NULL, scale, N, C);
            else pk_kl_categorical_naive(kl, g, x, r, m, per_row ? w : NULL, scale, N, C);
            expect_close(variant ? "naive kl vs double" : "kl vs double", kl, want, kscale, 0, N, 4.0 * C + 8);
            expect_close(variant ? "naive dlogits vs double" : "dlogits vs double", g, want_g, gs, 0, n, 4.0 * C + 8);
            for (int i = 0; i < N; i++) expect_true(kl[i] >= -1e-5f * kscale[i], "kl ≥ 0");
            if (variant == 0) {
                if (th == 0) first = fcopy(g, n);
                else expect_bitwise("dlogits threads", first, g, n);
            }
        }
    fd_check("dlogits vs finite differences", kc.x, n, first, kl_objective, &kc, 12, 1e-4);
    /* in place over the reference logits */
    float *z = fcopy(r, n);
    pk_kl_categorical(kl, z, x, z, m, per_row ? w : NULL, scale, N, C);
    expect_bitwise("dlogits in place over ref_logits", first, z, n);
    /* KL of a distribution with itself is 0 */
    pk_kl_categorical(kl, NULL, x, x, m, NULL, 1, N, C);
    for (int i = 0; i < N; i++) expect_true(fabsf(kl[i]) < 1e-5f, "kl(p, p) = 0");
    /* the masked fill restricts the cross-entropy to the support */
    if (m) {
        float *y = fcopy(x, n), *loss = fzeros(N), *ent = fzeros(N);
        pk_mask_fill(y, m, N, C);
        int *t = malloc((size_t)N * sizeof(int));
        for (int i = 0; i < N; i++) { t[i] = -100; for (int v = 0; v < C; v++) if (m[(size_t)i * C + v]) { t[i] = v; break; } }
        pk_crossentropy(loss, NULL, ent, y, t, NULL, 1, N, C, -100);
        double *wl = dzeros(N), *ls = dzeros(N);
        for (int row = 0; row < N; row++) {
            if (t[row] < 0) continue;
            const double *xr = kc.x + (size_t)row * C;
            double mx = -INFINITY, sx = 0;
            for (int v = 0; v < C; v++) if (m[(size_t)row * C + v]) mx = fmax(mx, xr[v]);
            for (int v = 0; v < C; v++) if (m[(size_t)row * C + v]) sx += exp(xr[v] - mx);
            wl[row] = mx + log(sx) - xr[t[row]];
            ls[row] = fabs(mx) + fabs(xr[t[row]]) + 1;
        }
        expect_close("cross-entropy over the filled support", loss, wl, ls, 0, N, 2.0 * C + 8);
        for (int i = 0; i < N; i++) expect_true(isfinite(ent[i]), "entropy over the filled support is finite");
        free(y); free(loss); free(ent); free(t); free(wl); free(ls);
    }
    free(x); free(r); free(w); free(m); free(kc.x); free(kc.r); free(kc.w); free(want); free(want_g); free(gs);
    free(kscale); free(kl); free(g); free(first); free(z);
}

static void test_kl(void) {
    test_kl_case(3, 1, 1, 0, 0);
    test_kl_case(7, 13, 2, 1, 1);
    test_kl_case(6, 1027, 3, 1, 0);
    test_kl_case(4, 1684, 2, 0, 1);
}

/* ------------------------------------------------------------------ */
/* GRU recurrence                                                     */
/* ------------------------------------------------------------------ */

typedef struct gru_ctx {
    int T, B, H;
    const int *counts;
    double *gi, *w, *h0, *proj;
} gru_ctx;

/* Double forward: h [(T+1)·B, H] (rows [0, B) = h0), gates as the kernel saves them. */
static void gru_ref(const gru_ctx *c, double *h, double *gates) {
    int T = c->T, B = c->B, H = c->H;
    memcpy(h, c->h0, (size_t)B * H * sizeof(double));
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            double *ht = h + ((size_t)(t + 1) * B + b) * H, *g = gates + ((size_t)t * B + b) * 4 * H;
            const double *hp = h + ((size_t)t * B + b) * H, *x = c->gi + ((size_t)t * B + b) * 3 * H;
            for (int j = 0; j < H; j++) {
                if (b >= c->counts[t]) { ht[j] = 0; g[j] = g[H + j] = g[2 * H + j] = g[3 * H + j] = 0; continue; }
                double a[3] = {0, 0, 0};
                for (int q = 0; q < 3; q++)
                    for (int k = 0; k < H; k++) a[q] += hp[k] * c->w[(size_t)(q * H + j) * H + k];
                double r = 1 / (1 + exp(-(x[j] + a[0]))), z = 1 / (1 + exp(-(x[H + j] + a[1])));
                double n = tanh(x[2 * H + j] + r * a[2]);
                g[j] = r; g[H + j] = z; g[2 * H + j] = n; g[3 * H + j] = a[2];
                ht[j] = (1 - z) * n + z * hp[j];
            }
        }
}

/* Double backward of L = Σ proj ∘ h_1..T: dgi, dw, dh0. */
static void gru_ref_bwd(const gru_ctx *c, const double *h, const double *gates, double *dgi, double *dw, double *dh0) {
    int T = c->T, B = c->B, H = c->H;
    double *dh = dzeros((size_t)T * B * H), *dg = dzeros((size_t)3 * H);
    memcpy(dh, c->proj, (size_t)T * B * H * sizeof(double));
    memset(dh0, 0, (size_t)B * H * sizeof(double));
    for (int t = T - 1; t >= 0; t--)
        for (int b = 0; b < B; b++) {
            size_t row = (size_t)t * B + b;
            double *di = dgi + row * 3 * H, *dprev = t > 0 ? dh + (row - B) * H : dh0 + (size_t)b * H;
            const double *g = gates + row * 4 * H, *hp = h + row * H, *d = dh + row * H;
            if (b >= c->counts[t]) { for (int k = 0; k < 3 * H; k++) di[k] = 0; continue; }
            for (int j = 0; j < H; j++) {
                double r = g[j], z = g[H + j], n = g[2 * H + j], gn = g[3 * H + j];
                double dn = d[j] * (1 - z) * (1 - n * n), dz = d[j] * (hp[j] - n) * z * (1 - z);
                double dr = dn * gn * r * (1 - r);
                di[j] = dr; di[H + j] = dz; di[2 * H + j] = dn;
                dg[j] = dr; dg[H + j] = dz; dg[2 * H + j] = dn * r;
                dprev[j] += d[j] * z;
            }
            for (int k = 0; k < 3 * H; k++)
                for (int j = 0; j < H; j++) {
                    dprev[j] += dg[k] * c->w[(size_t)k * H + j];
                    dw[(size_t)k * H + j] += dg[k] * hp[j];
                }
        }
    free(dh); free(dg);
}

static double gru_objective(void *p) {
    gru_ctx *c = p;
    size_t rows = (size_t)(c->T + 1) * c->B;
    double *h = dzeros(rows * c->H), *g = dzeros((size_t)c->T * c->B * 4 * c->H), L = 0;
    gru_ref(c, h, g);
    for (size_t i = 0; i < (size_t)c->T * c->B * c->H; i++) L += c->proj[i] * h[(size_t)c->B * c->H + i];
    free(h); free(g);
    return L;
}

static void test_gru_case(int T, int B, int H, int ragged) {
    CONTEXT("gru T=%d B=%d H=%d ragged=%d", T, B, H, ragged);
    int *counts = malloc((size_t)(T ? T : 1) * sizeof(int));
    for (int t = 0; t < T; t++) counts[t] = ragged ? B - (B * t) / (T + 1) : B; /* non-increasing */
    if (ragged && T > 1) counts[T - 1] = 0; /* a step where nothing runs */
    size_t ng = (size_t)T * B * 3 * H, nw = (size_t)3 * H * H, nh = (size_t)(T + 1) * B * H, nd = (size_t)T * B * H;
    float *gi = fvec(ng, 2), *w = fvec(nw, 0.8f), *h0 = fvec((size_t)B * H, 1), *proj = fvec(nd, 1);
    gru_ctx gc = {T, B, H, counts, dfrom(gi, ng), dfrom(w, nw), dfrom(h0, (size_t)B * H), dfrom(proj, nd)};
    double *want_h = dzeros(nh), *want_g = dzeros((size_t)T * B * 4 * H);
    gru_ref(&gc, want_h, want_g);
    double *want_dgi = dzeros(ng), *want_dw = dzeros(nw), *want_dh0 = dzeros((size_t)B * H);
    gru_ref_bwd(&gc, want_h, want_g, want_dgi, want_dw, want_dh0);
    /* error scales: gates are bounded, each product sums H terms of |h|·|w| ≤ 0.8;
     * dw_hh is accumulated into 0.25 (below), so its rounding is relative to that */
    double hs = 1.0 + 0.8 * H, ds = max_abs(want_dgi, ng) + 1e-3, ws = max_abs(want_dw, nw) + 0.25;
    double d0s = max_abs(want_dh0, (size_t)B * H) + 1e-3;
    float *first_h = NULL, *first_dgi = NULL, *first_dw = NULL, *first_dh0 = NULL;
    for (int variant = 0; variant < 2; variant++)
        for (int th = 0; th < (variant ? 1 : 3); th++) {
            pk_set_num_threads(k_threads[th]);
            float *h = fvec(nh, 1), *gates = fvec((size_t)T * B * 4 * H, 1); /* garbage the kernel must overwrite */
            memcpy(h, h0, (size_t)B * H * sizeof(float));
            int ok = variant ? pk_gru_fwd_naive(h, gates, gi, w, counts, T, B, H) : pk_gru_fwd(h, gates, gi, w, counts, T, B, H);
            expect_true(ok == 1, "gru_fwd accepts non-increasing counts");
            expect_close(variant ? "naive h vs double" : "h vs double", h, want_h, NULL, hs, nh, 8.0 * H + 16);
            float *dgi = fvec(ng, 1), *dgh = fvec(ng, 1), *dw = fzeros(nw), *dh0 = fvec((size_t)B * H, 1);
            float *dh = malloc(nd * sizeof(float) + 1);
            memcpy(dh, proj, nd * sizeof(float));
            for (size_t i = 0; i < nw; i++) dw[i] = 0.25f; /* accumulated into */
            ok = variant ? pk_gru_bwd_naive(dgi, dgh, dw, dh, dh0, h, gates, w, counts, T, B, H)
                         : pk_gru_bwd(dgi, dgh, dw, dh, dh0, h, gates, w, counts, T, B, H);
            expect_true(ok == 1, "gru_bwd accepts non-increasing counts");
            for (size_t i = 0; i < nw; i++) dw[i] -= 0.25f;
            expect_close(variant ? "naive dgi vs double" : "dgi vs double", dgi, want_dgi, NULL, ds, ng, 16.0 * H * (T + 1));
            expect_close(variant ? "naive dw_hh vs double" : "dw_hh vs double", dw, want_dw, NULL, ws, nw, 16.0 * H * (T + 1) * B);
            expect_close(variant ? "naive dh0 vs double" : "dh0 vs double", dh0, want_dh0, NULL, d0s, (size_t)B * H, 16.0 * H * (T + 1));
            if (variant == 0) {
                if (th == 0) {
                    first_h = fcopy(h, nh); first_dgi = fcopy(dgi, ng); first_dw = fcopy(dw, nw);
                    first_dh0 = fcopy(dh0, (size_t)B * H);
                } else {
                    expect_bitwise("h threads", first_h, h, nh);
                    expect_bitwise("dgi threads", first_dgi, dgi, ng);
                    expect_bitwise("dw_hh threads", first_dw, dw, nw);
                    expect_bitwise("dh0 threads", first_dh0, dh0, (size_t)B * H);
                }
            }
            free(h); free(gates); free(dgi); free(dgh); free(dw); free(dh0); free(dh);
        }
    fd_check("dgi vs finite differences", gc.gi, ng, first_dgi, gru_objective, &gc, 12, 1e-4);
    fd_check("dw_hh vs finite differences", gc.w, nw, first_dw, gru_objective, &gc, 12, 1e-4);
    fd_check("dh0 vs finite differences", gc.h0, (size_t)B * H, first_dh0, gru_objective, &gc, 8, 1e-4);
    /* malformed counts are refused, nothing written */
    if (T >= 2 && B >= 1) {
        int *bad = malloc((size_t)T * sizeof(int));
        memcpy(bad, counts, (size_t)T * sizeof(int));
        bad[1] = B + 1;
        float *h = fzeros(nh), *gates = fzeros((size_t)T * B * 4 * H);
        expect_true(pk_gru_fwd(h, gates, gi, w, bad, T, B, H) == 0, "gru_fwd refuses counts > B");
        size_t written = 0;
        for (size_t i = 0; i < nh; i++) written += h[i] != 0.0f;
        expect_true(written == 0, "refused gru_fwd writes nothing");
        free(bad); free(h); free(gates);
    }
    free(counts); free(gi); free(w); free(h0); free(proj); free(gc.gi); free(gc.w); free(gc.h0); free(gc.proj);
    free(want_h); free(want_g); free(want_dgi); free(want_dw); free(want_dh0);
    free(first_h); free(first_dgi); free(first_dw); free(first_dh0);
}

static void test_gru(void) {
    test_gru_case(1, 1, 1, 0);
    test_gru_case(5, 3, 4, 1);
    test_gru_case(7, 6, 16, 1);
    test_gru_case(4, 9, 37, 0);
    if (!g_quick) test_gru_case(12, 20, 64, 1);
}

static void test_crossentropy(void) {
    test_crossentropy_case(4, 1, 1, 0);
    test_crossentropy_case(9, 13, 2, 1);
    test_crossentropy_case(8, 1027, 4, 0);
    test_crossentropy_case(5, 3706, 4, 1);
    test_crossentropy_case(4, 100, 5.0e3f, 0); /* large logits */
}

/* ------------------------------------------------------------------ */
/* Normalisation                                                      */
/* ------------------------------------------------------------------ */

typedef struct norm_ctx {
    int N, C, layer;
    double eps;
    double *x, *w, *b, *proj;
} norm_ctx;

static void norm_ref(const norm_ctx *c, double *y) {
    for (int n = 0; n < c->N; n++) {
        const double *x = c->x + (size_t)n * c->C;
        double m = 0, v = 0;
        if (c->layer) {
            for (int i = 0; i < c->C; i++) m += x[i];
            m /= c->C;
        }
        for (int i = 0; i < c->C; i++) v += (x[i] - m) * (x[i] - m);
        double r = 1.0 / sqrt(v / c->C + c->eps);
        for (int i = 0; i < c->C; i++)
            y[(size_t)n * c->C + i] = (x[i] - m) * r * c->w[i] + (c->layer ? c->b[i] : 0);
    }
}

static double norm_objective(void *p) {
    norm_ctx *c = p;
    size_t n = (size_t)c->N * c->C;
    double *y = dzeros(n), L = 0;
    norm_ref(c, y);
    for (size_t i = 0; i < n; i++) L += c->proj[i] * y[i];
    free(y);
    return L;
}

static void test_norm_case(int layer, int N, int C) {
    CONTEXT("%s N=%d C=%d simd=%s", layer ? "layernorm" : "rmsnorm", N, C, pk_simd_name(pk_get_simd_level()));
    size_t n = (size_t)N * C;
    float *x = fvec(n, 2), *w = fvec(C, 1), *b = fvec(C, 1), *g = fvec(n, 1);
    for (int i = 0; i < C; i++) x[i] += 3.0f; /* a row with a large mean */
    float eps = layer ? 1e-12f : 1e-6f;
    norm_ctx nc = {N, C, layer, eps, dfrom(x, n), dfrom(w, C), dfrom(b, C), dfrom(g, n)};
    double *want = dzeros(n);
    norm_ref(&nc, want);
    float *y = fzeros(n), *yn = fzeros(n), *mean = fzeros(N), *rstd = fzeros(N), *first = NULL;
    for (int t = 0; t < 3; t++) {
        pk_set_num_threads(k_threads[t]);
        if (layer) pk_layernorm_fwd(y, mean, rstd, x, w, b, N, C, eps);
        else pk_rmsnorm_fwd(y, rstd, x, w, N, C, eps);
        if (t == 0) first = fcopy(y, n);
        else expect_bitwise("fwd threads", first, y, n);
    }
    if (layer) pk_layernorm_fwd_naive(yn, mean, rstd, x, w, b, N, C, eps);
    else pk_rmsnorm_fwd_naive(yn, rstd, x, w, N, C, eps);
    expect_close("fwd vs double", y, want, NULL, 4.0, n, 4.0 * C + 16);
    expect_close("naive fwd vs double", yn, want, NULL, 4.0, n, 4.0 * C + 16);
    float *dx[2], *dw[2], *db[2];
    for (int variant = 0; variant < 2; variant++) {
        dx[variant] = fzeros(n); dw[variant] = fzeros(C); db[variant] = fzeros(C);
        for (int t = 0; t < (variant ? 1 : 3); t++) {
            pk_set_num_threads(k_threads[t]);
            float *gx = fzeros(n), *gw = fzeros(C), *gb = fzeros(C);
            if (layer) {
                if (variant) pk_layernorm_bwd_naive(gx, gw, gb, g, x, w, mean, rstd, N, C);
                else pk_layernorm_bwd(gx, gw, gb, g, x, w, mean, rstd, N, C);
            } else {
                if (variant) pk_rmsnorm_bwd_naive(gx, gw, g, x, w, rstd, N, C);
                else pk_rmsnorm_bwd(gx, gw, g, x, w, rstd, N, C);
            }
            if (t == 0) { memcpy(dx[variant], gx, n * 4); memcpy(dw[variant], gw, (size_t)C * 4); memcpy(db[variant], gb, (size_t)C * 4); }
            else {
                expect_bitwise("dinp threads", dx[variant], gx, n);
                expect_bitwise("dweight threads", dw[variant], gw, C);
                expect_bitwise("dbias threads", db[variant], gb, C);
            }
            free(gx); free(gw); free(gb);
        }
    }
    for (int variant = 0; variant < 2; variant++) {
        const char *tag[2][3] = {{"dinp vs finite differences", "dweight vs finite differences", "dbias vs finite differences"},
                                 {"naive dinp vs finite differences", "naive dweight vs finite differences", "naive dbias vs finite differences"}};
        /* dinp = r·g∘w − (r³/C)(Σ g∘w∘x)·x: terms of size ~|g||w|r ≈ 1 */
        fd_check_floor(tag[variant][0], nc.x, n, dx[variant], norm_objective, &nc, 8, 2e-4, 1.0);
        fd_check(tag[variant][1], nc.w, C, dw[variant], norm_objective, &nc, 6, 2e-4);
        if (layer) fd_check(tag[variant][2], nc.b, C, db[variant], norm_objective, &nc, 6, 2e-4);
        free(dx[variant]); free(dw[variant]); free(db[variant]);
    }
    free(x); free(w); free(b); free(g); free(want); free(y); free(yn); free(mean); free(rstd); free(first);
    free(nc.x); free(nc.w); free(nc.b); free(nc.proj);
}

static void test_norm(void) {
    for (int layer = 0; layer < 2; layer++) {
        test_norm_case(layer, 1, 1);
        test_norm_case(layer, 7, 5);
        test_norm_case(layer, 37, 64);
        test_norm_case(layer, 20, 128);
    }
}

/* ------------------------------------------------------------------ */
/* Activations, embeddings, dropout                                   */
/* ------------------------------------------------------------------ */

static void test_activations(void) {
    size_t sizes[] = {1, 15, 16, 17, 1000, 70001};
    for (int s = 0; s < 6; s++) {
        size_t n = sizes[s];
        CONTEXT("gelu/relu n=%zu simd=%s", n, pk_simd_name(pk_get_simd_level()));
        float *x = fvec(n, 6), *g = fvec(n, 1);
        if (n > 3) { x[0] = 0.0f; x[1] = -12.0f; x[2] = 12.0f; }
        double *want = dzeros(n), *wantg = dzeros(n);
        for (size_t i = 0; i < n; i++) {
            double v = x[i];
            want[i] = 0.5 * v * (1 + erf(v / sqrt(2.0)));
            double cdf = 0.5 * (1 + erf(v / sqrt(2.0))), pdf = exp(-0.5 * v * v) / sqrt(2 * 3.14159265358979323846);
            wantg[i] = 0.25 + g[i] * (cdf + v * pdf); /* dinp starts at 0.25 */
        }
        float *y = fzeros(n), *dy = fzeros(n);
        pk_gelu_fwd(y, x, n);
        /* GELU: ≤ 1e-6·max(1,|x|) absolute — the erfc approximation has
         * relative error < 1.2e-7 */
        expect_close("gelu fwd vs double", y, want, NULL, 6.0, n, 16);
        pk_gelu_fwd_naive(y, x, n);
        expect_close("gelu naive fwd vs double", y, want, NULL, 6.0, n, 16);
        for (size_t i = 0; i < n; i++) dy[i] = 0.25f;
        pk_gelu_bwd(dy, g, x, n);
        expect_close("gelu bwd vs double", dy, wantg, NULL, 2.0, n, 16);
        for (size_t i = 0; i < n; i++) dy[i] = 0.25f;
        pk_gelu_bwd_naive(dy, g, x, n);
        expect_close("gelu naive bwd vs double", dy, wantg, NULL, 2.0, n, 16);
        /* relu */
        pk_relu_fwd(y, x, n);
        for (size_t i = 0; i < n; i++) want[i] = x[i] > 0 ? x[i] : 0;
        expect_close("relu fwd", y, want, NULL, 1, n, 0);
        for (size_t i = 0; i < n; i++) dy[i] = 1.0f;
        pk_relu_bwd(dy, g, y, n);
        for (size_t i = 0; i < n; i++) wantg[i] = 1.0 + (x[i] > 0 ? g[i] : 0);
        expect_close("relu bwd", dy, wantg, NULL, 2, n, 1);
        for (size_t i = 0; i < n; i++) { dy[i] = g[i]; wantg[i] = y[i] > 0 ? (double)g[i] * 1.25f : 0.0; }
        pk_relu_bwd_inplace(dy, y, 1.25f, n);
        expect_close("relu bwd in place", dy, wantg, NULL, 2, n, 1);
        /* add, axpy, scale */
        pk_add(y, x, g, n);
        for (size_t i = 0; i < n; i++) want[i] = (double)x[i] + g[i];
        expect_close("add", y, want, NULL, 12, n, 1);
        pk_axpy(y, g, -2.0f, n);
        for (size_t i = 0; i < n; i++) want[i] = want[i] - 2.0 * g[i];
        expect_close("axpy", y, want, NULL, 16, n, 2);
        pk_scale(y, 0.5f, n);
        for (size_t i = 0; i < n; i++) want[i] *= 0.5;
        expect_close("scale", y, want, NULL, 16, n, 2);
        free(x); free(g); free(want); free(wantg); free(y); free(dy);
    }
}

static void test_embedding(void) {
    const int V = 50, C = 37, N = 300;
    CONTEXT("embedding V=%d C=%d N=%d", V, C, N);
    float *table = fvec((size_t)V * C, 1), *dout = fvec((size_t)N * C, 1);
    int *ids = malloc(N * sizeof(int));
    for (int i = 0; i < N; i++) ids[i] = rnd_int(7) == 0 ? 3 : rnd_int(V); /* many repeats of 3 */
    float *out = fzeros((size_t)N * C);
    pk_embedding_fwd(out, table, ids, 2.0f, N, C);
    double *want = dzeros((size_t)N * C);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) want[(size_t)n * C + c] = 2.0 * table[(size_t)ids[n] * C + c];
    expect_close("gather", out, want, NULL, 1, (size_t)N * C, 0);
    float *first = NULL;
    for (int t = 0; t < 3; t++) {
        pk_set_num_threads(k_threads[t]);
        float *dt = fzeros((size_t)V * C);
        pk_embedding_bwd(dt, dout, ids, 0.5f, N, C);
        if (t == 0) first = dt;
        else { expect_bitwise("scatter threads", first, dt, (size_t)V * C); free(dt); }
    }
    float *dn = fzeros((size_t)V * C);
    pk_embedding_bwd_naive(dn, dout, ids, 0.5f, N, C);
    expect_bitwise("scatter fast vs naive (same order)", first, dn, (size_t)V * C);
    double *wt = dzeros((size_t)V * C), *st = dzeros((size_t)V * C);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            wt[(size_t)ids[n] * C + c] += 0.5 * dout[(size_t)n * C + c];
            st[(size_t)ids[n] * C + c] += fabs(0.5 * dout[(size_t)n * C + c]);
        }
    expect_close("scatter vs double", first, wt, st, 0, (size_t)V * C, N);
    free(table); free(dout); free(ids); free(out); free(want); free(first); free(dn); free(wt); free(st);
}

static void test_dropout(void) {
    const size_t n = 200003;
    const float p = 0.3f;
    CONTEXT("dropout n=%zu p=%g", n, p);
    float *x = fvec(n, 1), *y = fzeros(n), *first = NULL;
    for (int t = 0; t < 3; t++) {
        pk_set_num_threads(k_threads[t]);
        pk_dropout_fwd(y, x, n, p, 42, 7);
        if (t == 0) first = fcopy(y, n);
        else expect_bitwise("threads", first, y, n);
    }
    size_t kept = 0;
    int values_ok = 1;
    const float inv = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++) {
        int keep = pk_dropout_keep(42, 7, i, p);
        kept += keep;
        float want = keep ? x[i] * inv : 0.0f;
        if (values_ok && y[i] != want) { fail("value = keep ? x·(1/(1-p)) : 0", i, want, y[i], 0); values_ok = 0; }
    }
    g_checks++;
    /* keep fraction within 5 standard deviations of 1 − p */
    double frac = (double)kept / n, sd = sqrt(p * (1 - p) / n);
    expect_true(fabs(frac - (1 - p)) < 5 * sd, "keep fraction ≈ 1 − p");
    /* another stream gives another mask; backward uses the same mask */
    pk_dropout_fwd(y, x, n, p, 42, 8);
    expect_true(memcmp(y, first, n * sizeof(float)) != 0, "streams differ");
    float *g = fvec(n, 1), *dx = fzeros(n);
    pk_dropout_bwd(dx, g, n, p, 42, 7);
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        float want = pk_dropout_keep(42, 7, i, p) ? g[i] * inv : 0.0f;
        if (dx[i] != want) { fail("backward uses the forward mask", i, want, dx[i], 0); ok = 0; }
    }
    g_checks++;
    pk_dropout_fwd(y, x, n, 0.0f, 42, 7);
    expect_bitwise("p = 0 copies", x, y, n);
    /* in place */
    float *z = fcopy(x, n);
    pk_dropout_fwd(z, z, n, p, 42, 7);
    expect_bitwise("in place", first, z, n);
    /* uniform numbers lie in [0, 1) with mean ≈ 1/2 */
    double s = 0;
    for (int i = 0; i < 100000; i++) {
        float u = pk_uniform(9, 1, (uint64_t)i);
        if (!(u >= 0.0f && u < 1.0f)) { expect_true(0, "uniform in [0,1)"); break; }
        s += u;
    }
    expect_true(fabs(s / 100000 - 0.5) < 0.005, "uniform mean ≈ 1/2");
    free(x); free(y); free(first); free(g); free(dx); free(z);
}

/* ------------------------------------------------------------------ */
/* Optimiser                                                          */
/* ------------------------------------------------------------------ */

static void test_optimizer(void) {
    const size_t n = 100003;
    CONTEXT("adamw n=%zu", n);
    float *p = fvec(n, 1), *m = fzeros(n), *v = fzeros(n);
    float *p2 = fcopy(p, n), *m2 = fzeros(n), *v2 = fzeros(n);
    double *dp = dfrom(p, n), *dm = dzeros(n), *dv = dzeros(n);
    const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.05;
    for (int step = 1; step <= 5; step++) {
        float *g = fvec(n, 1);
        pk_set_num_threads(k_threads[step % 3]);
        pk_adamw(p, m, v, g, n, (float)lr, (float)b1, (float)b2, (float)eps, (float)wd, step);
        pk_adamw_naive(p2, m2, v2, g, n, (float)lr, (float)b1, (float)b2, (float)eps, (float)wd, step);
        double bc1 = 1 - pow(b1, step), bc2 = 1 - pow(b2, step);
        for (size_t i = 0; i < n; i++) {
            dp[i] *= 1 - lr * wd;
            dm[i] = b1 * dm[i] + (1 - b1) * g[i];
            dv[i] = b2 * dv[i] + (1 - b2) * (double)g[i] * g[i];
            dp[i] -= lr / bc1 * dm[i] / (sqrt(dv[i]) / sqrt(bc2) + eps);
        }
        free(g);
    }
    /* each step moves a parameter by ≤ lr(1 + ε); errors are relative to
     * the parameter scale (1) */
    expect_close("params vs double after 5 steps", p, dp, NULL, 1, n, 64);
    expect_close("naive params vs double", p2, dp, NULL, 1, n, 64);
    expect_close("first moment vs double", m, dm, NULL, 1, n, 16);
    expect_close("second moment vs double", v, dv, NULL, 1, n, 16);
    /* global norm: fixed chunk order, same for any thread count */
    float *g = fvec(n, 2);
    double want = 0;
    for (size_t i = 0; i < n; i++) want += (double)g[i] * g[i];
    double got[3];
    for (int t = 0; t < 3; t++) {
        pk_set_num_threads(k_threads[t]);
        got[t] = pk_sum_squares(g, n);
    }
    expect_true(got[0] == got[1] && got[1] == got[2], "sum of squares identical for 1, 2, 3 threads");
    expect_true(fabs(got[0] - want) <= 1e-12 * want, "sum of squares vs double");
    float norm = pk_clip_grad_norm(g, n, 1.0f);
    expect_true(fabsf(norm - (float)sqrt(want)) <= 1e-5f * norm, "clip returns the norm before clipping");
    expect_true(fabs(sqrt(pk_sum_squares(g, n)) - 1.0) < 1e-5, "clipped norm is max_norm");
    float before = g[0];
    pk_clip_grad_norm(g, n, 10.0f);
    expect_true(g[0] == before, "no clipping below max_norm");
    free(p); free(m); free(v); free(p2); free(m2); free(v2); free(dp); free(dm); free(dv); free(g);
}

/* ------------------------------------------------------------------ */
/* Item scoring                                                       */
/* ------------------------------------------------------------------ */

static void test_scoring_case(int B, int V, int C) {
    CONTEXT("score_stats B=%d V=%d C=%d simd=%s", B, V, C, pk_simd_name(pk_get_simd_level()));
    float *u = fvec((size_t)B * C, 1), *items = fvec((size_t)V * C, 1);
    int *targets = malloc((size_t)B * sizeof(int));
    for (int b = 0; b < B; b++) targets[b] = rnd_int(V);
    if (V > 3) memcpy(items + (size_t)1 * C, items + (size_t)targets[0] * C, (size_t)C * 4); /* a tie */
    double *want_lse = dzeros(B), *lse_scale = dzeros(B);
    for (int b = 0; b < B; b++) {
        double mx = -INFINITY, s = 0, amax = 0;
        for (int v = 0; v < V; v++) {
            double d = 0, a = 0;
            for (int c = 0; c < C; c++) {
                d += (double)u[(size_t)b * C + c] * items[(size_t)v * C + c];
                a += fabs((double)u[(size_t)b * C + c] * items[(size_t)v * C + c]);
            }
            mx = fmax(mx, d);
            amax = fmax(amax, a);
        }
        for (int v = 0; v < V; v++) {
            double d = 0;
            for (int c = 0; c < C; c++) d += (double)u[(size_t)b * C + c] * items[(size_t)v * C + c];
            s += exp(d - mx);
        }
        want_lse[b] = mx + log(s);
        lse_scale[b] = amax + 1;
    }
    float *lse = fzeros(B), *ts = fzeros(B), *lsen = fzeros(B), *tsn = fzeros(B);
    int *rank = calloc((size_t)B, sizeof(int)), *rankn = calloc((size_t)B, sizeof(int));
    float *first_lse = NULL;
    int *first_rank = NULL;
    for (int t = 0; t < 3; t++) {
        pk_set_num_threads(k_threads[t]);
        pk_score_stats(lse, ts, rank, u, items, targets, B, V, C);
        if (t == 0) {
            first_lse = fcopy(lse, B);
            first_rank = malloc((size_t)B * sizeof(int));
            memcpy(first_rank, rank, (size_t)B * sizeof(int));
        } else {
            expect_bitwise("lse threads", first_lse, lse, B);
            expect_true(memcmp(first_rank, rank, (size_t)B * sizeof(int)) == 0, "rank identical for 1, 2, 3 threads");
        }
    }
    pk_score_stats_naive(lsen, tsn, rankn, u, items, targets, B, V, C);
    expect_close("lse vs double", lse, want_lse, lse_scale, 0, B, 2.0 * C + 16);
    expect_close("naive lse vs double", lsen, want_lse, lse_scale, 0, B, 2.0 * C + 16);
    expect_bitwise("target score fast vs naive (same fma chain)", ts, tsn, B);
    int rank_ok = 1;
    for (int b = 0; b < B; b++)
        if (rank[b] != rankn[b]) {
            fail("rank fast vs naive", (size_t)b, rankn[b], rank[b], 0);
            rank_ok = 0;
            break;
        }
    g_checks++;
    /* rank vs its definition in double, allowing items whose score is
     * within rounding of the target's */
    for (int b = 0; b < B && rank_ok; b++) {
        double tsd = 0;
        for (int c = 0; c < C; c++) tsd += (double)u[(size_t)b * C + c] * items[(size_t)targets[b] * C + c];
        int lo = 1, hi = 1;
        for (int v = 0; v < V; v++) {
            if (v == targets[b]) continue;
            double d = 0, a = 0;
            for (int c = 0; c < C; c++) {
                d += (double)u[(size_t)b * C + c] * items[(size_t)v * C + c];
                a += fabs((double)u[(size_t)b * C + c] * items[(size_t)v * C + c]);
            }
            double band = (2.0 * C + 4) * FLT_EPSILON * a;
            if (d > tsd + band) { lo++; hi++; }
            else if (d > tsd - band) hi++;
        }
        g_checks++;
        if (rank[b] < lo || rank[b] > hi) { fail("rank within the rounding band", (size_t)b, lo, rank[b], hi - lo); break; }
    }
    /* the pair scores are the same fma chain */
    float *pairs = fzeros(B);
    pk_score_pairs(pairs, u, items, targets, B, C);
    expect_bitwise("score_pairs equals target score", pairs, ts, B);
    /* plain logits */
    float *logits = fzeros((size_t)B * V);
    pk_score_logits(logits, u, items, B, V, C);
    double *wl = dzeros((size_t)B * V), *sl = dzeros((size_t)B * V);
    for (int b = 0; b < B; b++)
        for (int v = 0; v < V; v++)
            for (int c = 0; c < C; c++) {
                wl[(size_t)b * V + v] += (double)u[(size_t)b * C + c] * items[(size_t)v * C + c];
                sl[(size_t)b * V + v] += fabs((double)u[(size_t)b * C + c] * items[(size_t)v * C + c]);
            }
    expect_close("logits vs double", logits, wl, sl, 0, (size_t)B * V, C + 4);
    free(u); free(items); free(targets); free(want_lse); free(lse_scale); free(lse); free(ts); free(lsen);
    free(tsn); free(rank); free(rankn); free(first_lse); free(first_rank); free(pairs); free(logits);
    free(wl); free(sl);
}

static void test_scoring(void) {
    test_scoring_case(1, 1, 1);
    test_scoring_case(3, 7, 5);
    test_scoring_case(33, 100, 64);
    test_scoring_case(70, 1683, 64);
    if (!g_quick) test_scoring_case(129, 3706, 64);
}

static void test_position_bias(void) {
    const int H = 3, Tq = 5, Tk = 7, NB = 8;
    CONTEXT("position bias");
    float *table = fvec((size_t)NB * H, 1);
    int buckets[5 * 7];
    for (int i = 0; i < Tq * Tk; i++) buckets[i] = rnd_int(NB);
    float *bias = fzeros((size_t)H * Tq * Tk);
    pk_position_bias_fwd(bias, table, buckets, H, Tq, Tk);
    double *want = dzeros((size_t)H * Tq * Tk);
    for (int h = 0; h < H; h++)
        for (int i = 0; i < Tq * Tk; i++) want[(size_t)h * Tq * Tk + i] = table[(size_t)buckets[i] * H + h];
    expect_close("gather", bias, want, NULL, 1, (size_t)H * Tq * Tk, 0);
    float *dt = fzeros((size_t)NB * H);
    pk_position_bias_bwd(dt, bias, buckets, NB, H, Tq, Tk);
    double *wt = dzeros((size_t)NB * H), *st = dzeros((size_t)NB * H);
    for (int h = 0; h < H; h++)
        for (int i = 0; i < Tq * Tk; i++) {
            wt[(size_t)buckets[i] * H + h] += bias[(size_t)h * Tq * Tk + i];
            st[(size_t)buckets[i] * H + h] += fabs(bias[(size_t)h * Tq * Tk + i]);
        }
    expect_close("scatter", dt, wt, st, 0, (size_t)NB * H, Tq * Tk);
    free(table); free(bias); free(want); free(dt); free(wt); free(st);
}

/* A thread that never set a precision has the process default, which is
 * bf16 exactly when PRORL_PRECISION=bf16 (make test-swift-bf16 runs with it). */
static void *default_precision_thread(void *out) {
    *(int *)out = pk_get_precision();
    return NULL;
}

static void test_default_precision(void) {
    CONTEXT("process default precision");
    const char *e = getenv("PRORL_PRECISION");
    int expected = e != NULL && strcmp(e, "bf16") == 0 ? PK_PRECISION_BF16 : PK_PRECISION_FP32;
    expect_true(pk_default_precision() == expected, "pk_default_precision follows PRORL_PRECISION");
    expect_true(pk_get_precision() == expected, "an unset thread has the process default");
    pk_set_precision(PK_PRECISION_BF16 + PK_PRECISION_FP32 - expected);
    expect_true(pk_get_precision() != expected, "pk_set_precision overrides the default on this thread");
    int other = -1;
    pthread_t t;
    pthread_create(&t, NULL, default_precision_thread, &other);
    pthread_join(t, NULL);
    expect_true(other == expected, "another thread keeps the process default");
    pk_set_precision(expected);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--quick") == 0) g_quick = 1;
    printf("kernel tests: OpenMP %s, best SIMD %s, bf16 products %s, PRORL_PRECISION %s\n", pk_openmp_enabled() ? "on" : "off",
           pk_simd_name(pk_simd_supported()), pk_gemm_bf16_available() ? "yes" : "no",
           getenv("PRORL_PRECISION") ? getenv("PRORL_PRECISION") : "unset");
    test_default_precision();
    /* every test below names the precision it checks: fp32 unless it sets bf16 */
    pk_set_precision(PK_PRECISION_FP32);
    for (int level = pk_simd_supported(); level >= PK_SIMD_SCALAR; level--) {
        pk_set_simd_level(level);
        int before = g_failures;
        test_gemm();
        test_gemm_bf16();
        test_matmul();
        test_attention();
        test_softmax();
        test_crossentropy();
        test_norm();
        test_activations();
        test_scoring();
        test_gru();
        printf("  simd %-6s: %s\n", pk_simd_name(level), g_failures == before ? "pass" : "FAIL");
    }
    test_embedding();
    test_dropout();
    test_optimizer();
    test_position_bias();
    test_kl();
    printf("%d checks, %d failures\n", g_checks, g_failures);
    return g_failures == 0 ? 0 : 1;
}
