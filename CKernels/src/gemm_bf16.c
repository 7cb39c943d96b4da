/*
 * gemm_bf16.c — GEMM with bf16 products and fp32 accumulation
 * (AVX512-BF16 vdpbf16ps), and its naive twin.
 *
 * The operands stay fp32 in memory (master weights, activations); packing
 * rounds them to bf16 (nearest, ties to even) and lays them out in k-pairs:
 * an A micro-panel holds, per pair q and row r, one 32-bit word
 * (a[r][2q] | a[r][2q+1] << 16); a B micro-panel per pair q and column c
 * (b[2q][c] | b[2q+1][c] << 16). One vdpbf16ps then adds, in each of 16
 * fp32 lanes, the two products of a pair: the micro-kernel keeps 12 × 32 fp32
 * accumulators in 24 zmm, as the fp32 one does, and does twice its products
 * per instruction. Loops as gemm.c (BLIS order, KC × NC blocks of op(B),
 * MB × KC blocks of op(A), always packed here); every C element is summed in
 * the same order whatever the thread count.
 *
 * Without AVX512-BF16 (or at a SIMD level below AVX-512), pk_gemm_bf16 is
 * pk_gemm: fp32 products.
 */
#include "internal.h"

#include <pthread.h>
#include <string.h>

#define BF_KC 256 /* k per block: 128 pairs */
#define BF_NC 2048
#define BF_MB 1536
#define BF_MR 12
#define BF_NR 32

static uint32_t g_bf_pack_a[BF_MB * BF_KC / 2] __attribute__((aligned(64)));
static uint32_t g_bf_pack_b[BF_NC * BF_KC / 2] __attribute__((aligned(64)));
static pthread_mutex_t g_bf_lock = PTHREAD_MUTEX_INITIALIZER;

uint16_t pk_bf16_from_float(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu)) return (uint16_t)((u >> 16) | 0x0040u); /* quiet NaN */
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float pk_float_from_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* A bf16 value as vdpbf16ps reads it: denormals are zero. */
static float bf16_operand(uint16_t h) {
    return (h & 0x7F80u) == 0 ? ((h & 0x8000u) ? -0.0f : 0.0f) : pk_float_from_bf16(h);
}

/* A result as vdpbf16ps writes it: denormals flushed to (signed) zero. */
static float flush(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7F800000u) == 0) u &= 0x80000000u;
    memcpy(&x, &u, 4);
    return x;
}

static inline uint32_t bf16_pair(float lo, float hi) {
    return (uint32_t)pk_bf16_from_float(lo) | (uint32_t)pk_bf16_from_float(hi) << 16;
}

static inline float op_a(const float *A, int lda, int trans, int i, int p) {
    return trans ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
}

static inline float op_b(const float *B, int ldb, int trans, int p, int j) {
    return trans ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
}

/* rows × kc of op(A) from (row, p0) into pairs dst[q·MR + r]; zero padding */
static void pack_a_pairs(uint32_t *dst, const float *A, int lda, int trans, int row, int rows, int p0, int kc) {
    const int pairs = (kc + 1) / 2;
    for (int q = 0; q < pairs; q++) {
        const int p = p0 + 2 * q;
        const int odd = 2 * q + 1 < kc;
        for (int r = 0; r < BF_MR; r++)
            dst[(size_t)q * BF_MR + r] = r < rows ? bf16_pair(op_a(A, lda, trans, row + r, p),
                                                              odd ? op_a(A, lda, trans, row + r, p + 1) : 0.0f)
                                                  : 0u;
    }
}

/* kc × cols of op(B) from (p0, col) into pairs dst[q·NR + c]; zero padding */
static void pack_b_pairs(uint32_t *dst, const float *B, int ldb, int trans, int col, int cols, int p0, int kc) {
    const int pairs = (kc + 1) / 2;
    for (int q = 0; q < pairs; q++) {
        const int p = p0 + 2 * q;
        const int odd = 2 * q + 1 < kc;
        for (int c = 0; c < BF_NR; c++)
            dst[(size_t)q * BF_NR + c] = c < cols ? bf16_pair(op_b(B, ldb, trans, p, col + c),
                                                              odd ? op_b(B, ldb, trans, p + 1, col + c) : 0.0f)
                                                  : 0u;
    }
}

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#define PK_HAVE_BF16_KERNEL 1

/* C[12, 32] = alpha · Σ_q a-pairs ⊗ b-pairs + beta · C */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void ukernel_bf16(int pairs, const uint32_t *restrict a, const uint32_t *restrict b, float *restrict c, int ldc,
                         float alpha, float beta) {
    __m512 acc[BF_MR][2];
    for (int r = 0; r < BF_MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int q = 0; q < pairs; q++) {
        const __m512bh b0 = (__m512bh)_mm512_load_si512((const void *)(b + (size_t)q * BF_NR));
        const __m512bh b1 = (__m512bh)_mm512_load_si512((const void *)(b + (size_t)q * BF_NR + 16));
        const uint32_t *ap = a + (size_t)q * BF_MR;
        for (int r = 0; r < BF_MR; r++) {
            const __m512bh ar = (__m512bh)_mm512_set1_epi32((int)ap[r]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], ar, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], ar, b1);
        }
    }
    const __m512 va = _mm512_set1_ps(alpha);
    for (int r = 0; r < BF_MR; r++)
        for (int v = 0; v < 2; v++) {
            float *cp = c + (size_t)r * ldc + 16 * v;
            __m512 x = _mm512_mul_ps(va, acc[r][v]);
            if (beta != 0.0f) x = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_loadu_ps(cp), x);
            _mm512_storeu_ps(cp, x);
        }
}
#endif

int pk_gemm_bf16_available(void) {
#ifdef PK_HAVE_BF16_KERNEL
    static int supported = -1;
    if (supported < 0) {
        __builtin_cpu_init();
        supported = __builtin_cpu_supports("avx512bf16") ? 1 : 0;
    }
    return supported && pk_get_simd_level() >= PK_SIMD_AVX512;
#else
    return 0;
#endif
}

void pk_gemm_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                  int ldb, float beta, float *C, int ldc) {
#ifdef PK_HAVE_BF16_KERNEL
    if (!pk_gemm_bf16_available() || M <= 0 || N <= 0 || K <= 0 || alpha == 0.0f)
#endif
    {
        pk_gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#ifdef PK_HAVE_BF16_KERNEL
    const int nthreads = pk_threads_for(2.0 * M * (double)N * K);
    (void)nthreads;
    pthread_mutex_lock(&g_bf_lock);
    PK_PRAGMA(omp parallel num_threads(nthreads))
    {
        for (int jc = 0; jc < N; jc += BF_NC) {
            const int nc = PK_MIN(BF_NC, N - jc);
            const int njr = (nc + BF_NR - 1) / BF_NR;
            for (int pc = 0; pc < K; pc += BF_KC) {
                const int kc = PK_MIN(BF_KC, K - pc), pairs = (kc + 1) / 2;
                const float bp = pc == 0 ? beta : 1.0f;
                PK_PRAGMA(omp for schedule(static))
                for (int jr = 0; jr < njr; jr++)
                    pack_b_pairs(g_bf_pack_b + (size_t)jr * BF_NR * pairs, B, ldb, trans_b, jc + jr * BF_NR,
                                 PK_MIN(BF_NR, nc - jr * BF_NR), pc, kc);
                for (int ic = 0; ic < M; ic += BF_MB) {
                    const int mc = PK_MIN(BF_MB, M - ic);
                    const int nir = (mc + BF_MR - 1) / BF_MR;
                    PK_PRAGMA(omp for schedule(static))
                    for (int ir = 0; ir < nir; ir++)
                        pack_a_pairs(g_bf_pack_a + (size_t)ir * BF_MR * pairs, A, lda, trans_a, ic + ir * BF_MR,
                                     PK_MIN(BF_MR, mc - ir * BF_MR), pc, kc);
                    PK_PRAGMA(omp for schedule(static))
                    for (int t = 0; t < nir * njr; t++) {
                        const int ir = t / njr, jr = t % njr;
                        const int row = ic + ir * BF_MR;
                        const int rows = PK_MIN(BF_MR, mc - ir * BF_MR), cols = PK_MIN(BF_NR, nc - jr * BF_NR);
                        const uint32_t *ap = g_bf_pack_a + (size_t)ir * BF_MR * pairs;
                        const uint32_t *bpn = g_bf_pack_b + (size_t)jr * BF_NR * pairs;
                        float *cp = C + (size_t)row * ldc + jc + jr * BF_NR;
                        if (rows == BF_MR && cols == BF_NR) {
                            ukernel_bf16(pairs, ap, bpn, cp, ldc, alpha, bp);
                        } else {
                            float tmp[BF_MR * BF_NR] __attribute__((aligned(64)));
                            ukernel_bf16(pairs, ap, bpn, tmp, BF_NR, 1.0f, 0.0f);
                            for (int r = 0; r < rows; r++)
                                for (int c = 0; c < cols; c++) {
                                    float *o = cp + (size_t)r * ldc + c;
                                    float v = alpha * tmp[r * BF_NR + c];
                                    *o = bp == 0.0f ? v : v + bp * *o;
                                }
                        }
                    }
                }
            }
        }
    }
    pthread_mutex_unlock(&g_bf_lock);
#endif
}

/* The same arithmetic one element at a time: per KC block, the pairs in
 * order, each adding its odd product, then its even one (as vdpbf16ps does),
 * each sum rounded to fp32 with denormal operands and results flushed;
 * then alpha, and beta · C (or + C for later blocks). */
void pk_gemm_bf16_naive(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc) {
    if (!pk_gemm_bf16_available() || M <= 0 || N <= 0 || K <= 0 || alpha == 0.0f) {
        pk_gemm_naive(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float *c = C + (size_t)i * ldc + j;
            for (int pc = 0; pc < K; pc += BF_KC) {
                const int kc = PK_MIN(BF_KC, K - pc);
                float s = 0.0f;
                for (int p = pc; p < pc + kc; p += 2) {
                    const int odd = p + 1 < pc + kc;
                    float a1 = odd ? bf16_operand(pk_bf16_from_float(op_a(A, lda, trans_a, i, p + 1))) : 0.0f;
                    float b1 = odd ? bf16_operand(pk_bf16_from_float(op_b(B, ldb, trans_b, p + 1, j))) : 0.0f;
                    float a0 = bf16_operand(pk_bf16_from_float(op_a(A, lda, trans_a, i, p)));
                    float b0 = bf16_operand(pk_bf16_from_float(op_b(B, ldb, trans_b, p, j)));
                    s = flush(s + a1 * b1); /* bf16 products are exact in fp32 */
                    s = flush(s + a0 * b0);
                }
                const float bp = pc == 0 ? beta : 1.0f;
                const float v = alpha * s;
                *c = bp == 0.0f ? v : v + bp * *c;
            }
        }
}
