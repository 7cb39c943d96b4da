/*
 * gemm.c — packed, cache-blocked GEMM (BLIS loop order) and its naive twin.
 *
 * Loops: jc over N by GEMM_NC; pc over K by GEMM_KC (pack a KC×NC block of
 * op(B)); ic over M by GEMM_MB (pack an MB×KC block of op(A)); then the
 * MR×NR tiles of that block, A micro-panel in L1, B streamed from L2/L3.
 * When N is small (≤ GEMM_PACK_A_MIN_N) an A panel serves only a few
 * tiles and packing it costs more than it saves: the micro-kernel then
 * reads A in place (only edge panels, with rows past M, are packed). Every C element is summed over k in the same order whatever the
 * thread count, so results are bit-identical for 1, 2 or 3 threads. The
 * packing buffers are static (no allocation); callers serialise on a lock.
 */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define GEMM_KC 256
#define GEMM_NC 2048 /* multiple of every NR (32, 16, 4) */
#define GEMM_MB 1536 /* multiple of every MR (12, 6, 4) */
#define GEMM_MAX_NR 64
#define GEMM_MAX_MR 16
#define GEMM_PACK_A_MIN_N 513

static float g_pack_a[GEMM_MB * GEMM_KC] __attribute__((aligned(64)));
static float g_pack_b[GEMM_NC * GEMM_KC] __attribute__((aligned(64)));
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

/* Pack op(A)[i0 + ip .., p0 ..] panel of `mr` rows: dst[p·mr + r]. */
static void pack_a_panel(float *dst, const float *A, int lda, int trans,
                         int row, int rows, int p0, int kc, int mr) {
    if (!trans) {
        for (int r = 0; r < rows; r++) {
            const float *src = A + (size_t)(row + r) * lda + p0;
            for (int p = 0; p < kc; p++) dst[(size_t)p * mr + r] = src[p];
        }
    } else {
        for (int p = 0; p < kc; p++) {
            const float *src = A + (size_t)(p0 + p) * lda + row;
            for (int r = 0; r < rows; r++) dst[(size_t)p * mr + r] = src[r];
        }
    }
    for (int r = rows; r < mr; r++)
        for (int p = 0; p < kc; p++) dst[(size_t)p * mr + r] = 0.0f;
}

/* Pack op(B)[p0 .., col ..] panel of `nr` columns: dst[p·nr + c]. */
static void pack_b_panel(float *dst, const float *B, int ldb, int trans,
                         int col, int cols, int p0, int kc, int nr) {
    if (!trans) {
        for (int p = 0; p < kc; p++) {
            const float *src = B + (size_t)(p0 + p) * ldb + col;
            float *d = dst + (size_t)p * nr;
            memcpy(d, src, (size_t)cols * sizeof(float));
            for (int c = cols; c < nr; c++) d[c] = 0.0f;
        }
    } else {
        for (int c = 0; c < cols; c++) {
            const float *src = B + (size_t)(col + c) * ldb + p0;
            for (int p = 0; p < kc; p++) dst[(size_t)p * nr + c] = src[p];
        }
        for (int c = cols; c < nr; c++)
            for (int p = 0; p < kc; p++) dst[(size_t)p * nr + c] = 0.0f;
    }
}

static void scale_c(int M, int N, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float *c = C + (size_t)i * ldc + j;
            *c = beta == 0.0f ? 0.0f : beta * *c;
        }
}

/* The products' precision of this calling thread (pk_set_precision); -1
 * until set: the process default. */
static _Thread_local int g_precision = -1;

/* PRORL_PRECISION, read once ("bf16": bf16; anything else or unset: fp32).
 * Threads that race here compute the same value. */
int pk_default_precision(void) {
    static int value = -1;
    int v = __atomic_load_n(&value, __ATOMIC_RELAXED);
    if (v < 0) {
        const char *e = getenv("PRORL_PRECISION");
        v = e != NULL && strcmp(e, "bf16") == 0 ? PK_PRECISION_BF16 : PK_PRECISION_FP32;
        __atomic_store_n(&value, v, __ATOMIC_RELAXED);
    }
    return v;
}

void pk_set_precision(int precision) { g_precision = precision == PK_PRECISION_BF16 ? PK_PRECISION_BF16 : PK_PRECISION_FP32; }
int pk_get_precision(void) { return g_precision < 0 ? pk_default_precision() : g_precision; }

void pk_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta,
             float *C, int ldc) {
    if (pk_get_precision() == PK_PRECISION_BF16 && pk_gemm_bf16_available())
        pk_gemm_bf16(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
        pk_gemm_fp32(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void pk_gemm_fp32(int trans_a, int trans_b, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta,
                  float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    const pk_isa_ops *ops = pk_ops();
    const int mr = ops->mr, nr = ops->nr;
    const int pack_a = N >= GEMM_PACK_A_MIN_N;
    const int nthreads = pk_threads_for(2.0 * M * (double)N * K);
    (void)nthreads; /* unused without OpenMP */

    pthread_mutex_lock(&g_lock);
    PK_PRAGMA(omp parallel num_threads(nthreads))
    {
        /* this thread's copy of an edge A panel, and which panel it holds */
        float edge[GEMM_MAX_MR * GEMM_KC] __attribute__((aligned(64)));
        int edge_panel = -1;
        for (int jc = 0; jc < N; jc += GEMM_NC) {
            const int nc = PK_MIN(GEMM_NC, N - jc);
            const int njr = (nc + nr - 1) / nr;
            for (int pc = 0; pc < K; pc += GEMM_KC) {
                const int kc = PK_MIN(GEMM_KC, K - pc);
                const float bp = pc == 0 ? beta : 1.0f;
                PK_PRAGMA(omp for schedule(static))
                for (int jr = 0; jr < njr; jr++)
                    pack_b_panel(g_pack_b + (size_t)jr * nr * kc, B, ldb, trans_b,
                                 jc + jr * nr, PK_MIN(nr, nc - jr * nr), pc, kc, nr);
                for (int ic = 0; ic < M; ic += GEMM_MB) {
                    const int mc = PK_MIN(GEMM_MB, M - ic);
                    const int nir = (mc + mr - 1) / mr;
                    edge_panel = -1;
                    if (pack_a) {
                        PK_PRAGMA(omp for schedule(static))
                        for (int ir = 0; ir < nir; ir++)
                            pack_a_panel(g_pack_a + (size_t)ir * mr * kc, A, lda, trans_a,
                                         ic + ir * mr, PK_MIN(mr, mc - ir * mr), pc, kc, mr);
                    }
                    PK_PRAGMA(omp for schedule(static))
                    for (int t = 0; t < nir * njr; t++) {
                        const int ir = t / njr, jr = t % njr;
                        const int row = ic + ir * mr;
                        const int rows = PK_MIN(mr, mc - ir * mr);
                        const int cols = PK_MIN(nr, nc - jr * nr);
                        const float *ap;
                        int a_rs = 1, a_cs = mr;
                        if (pack_a) {
                            ap = g_pack_a + (size_t)ir * mr * kc;
                        } else if (rows < mr) {
                            if (edge_panel != ir) {
                                pack_a_panel(edge, A, lda, trans_a, row, rows, pc, kc, mr);
                                edge_panel = ir;
                            }
                            ap = edge;
                        } else if (trans_a) {
                            ap = A + (size_t)pc * lda + row;
                            a_cs = lda;
                        } else {
                            ap = A + (size_t)row * lda + pc;
                            a_rs = lda;
                            a_cs = 1;
                        }
                        const float *bpn = g_pack_b + (size_t)jr * nr * kc;
                        float *cp = C + (size_t)row * ldc + jc + jr * nr;
                        if (rows == mr && cols == nr) {
                            ops->gemm_ukernel(kc, ap, a_rs, a_cs, bpn, cp, ldc, alpha, bp);
                        } else {
                            float tmp[GEMM_MAX_MR * GEMM_MAX_NR] __attribute__((aligned(64)));
                            ops->gemm_ukernel(kc, ap, a_rs, a_cs, bpn, tmp, nr, 1.0f, 0.0f);
                            for (int r = 0; r < rows; r++)
                                for (int c = 0; c < cols; c++) {
                                    float *o = cp + (size_t)r * ldc + c;
                                    float v = alpha * tmp[r * nr + c];
                                    *o = bp == 0.0f ? v : v + bp * *o;
                                }
                        }
                    }
                }
            }
        }
    }
    pthread_mutex_unlock(&g_lock);
}

void pk_gemm_naive(int trans_a, int trans_b, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = 0.0f;
            for (int p = 0; p < K; p++) {
                float a = trans_a ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                float b = trans_b ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                s += a * b;
            }
            float *c = C + (size_t)i * ldc + j;
            *c = beta == 0.0f ? alpha * s : alpha * s + beta * *c;
        }
}
