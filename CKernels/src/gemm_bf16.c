/*
 * gemm_bf16.c — GEMM with bf16 products and fp32 accumulation
 * (AVX512-BF16 vdpbf16ps), and its naive twin.
 *
 * The operands stay fp32 in memory (master weights, activations); packing
 * rounds them to bf16 (vcvtne2ps2bf16: nearest, ties to even, fp32
 * denormals to zero), 16 at a time, and lays them out in k-pairs:
 * an A micro-panel holds, per pair q and row r, one 32-bit word
 * (a[r][2q] | a[r][2q+1] << 16); a B micro-panel per pair q and column c
 * (b[2q][c] | b[2q+1][c] << 16). One vdpbf16ps then adds, in each of 16
 * fp32 lanes, the two products of a pair: the micro-kernel keeps 12 × 32 fp32
 * accumulators in 24 zmm, as the fp32 one does, and does twice its products
 * per instruction. Loops as gemm.c (BLIS order, KC × NC blocks of op(B),
 * MB × KC blocks of op(A), always packed here); every C element is summed in
 * the same order whatever the thread count.
 *
 * Without AVX512-BF16 (or at a SIMD level below AVX-512), pk_gemm_bf16 has
 * fp32 products (pk_gemm_fp32). pk_gemm itself runs this one when the
 * calling thread asked for bf16 products (pk_set_precision).
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

/* An operand as the kernel converts it (vcvtne2ps2bf16): fp32 denormals
 * become (signed) zero, the rest is rounded to nearest, ties to even. */
static uint16_t bf16_of_operand(float x) { return pk_bf16_from_float(flush(x)); }

static inline float op_a(const float *A, int lda, int trans, int i, int p) {
    return trans ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
}

static inline float op_b(const float *B, int ldb, int trans, int p, int j) {
    return trans ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
}

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define PK_HAVE_BF16_KERNEL 1
/* The AVX-512 code of this file (the micro-kernel and the packers), compiled
 * for AVX512-BF16 like isa_avx512.c for AVX-512; only run where available. */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx512bf16,avx2,fma,f16c,bmi,bmi2,popcnt"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx512bf16,avx2,fma,f16c,bmi,bmi2,popcnt")
#endif
#define PK_ISA PK_ISA_AVX512
#include "simd.h"

/* C[12, 32] = alpha · Σ_q a-pairs ⊗ b-pairs + beta · C */
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

/* 16 words (x0[i] | x1[i] << 16) from two vectors of 16 floats. */
static inline __m512i pairs_of(__m512 x0, __m512 x1) {
    const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                                23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(x1, x0));
}

/* 16 words: the pairs of 32 consecutive floats (k order), n of them real. */
static inline __m512i pairs_along(const float *x, int n) {
    __m512 lo = _mm512_maskz_loadu_ps((__mmask16)(n >= 16 ? 0xFFFF : (1u << PK_MAX(n, 0)) - 1), x);
    __m512 hi = _mm512_maskz_loadu_ps((__mmask16)(n >= 32 ? 0xFFFF : (1u << PK_MAX(n - 16, 0)) - 1), x + 16);
    return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

/* r[i] ← the i-th column of the 16×16 block of dwords r (simd.h's float transpose). */
static inline void transpose16(__m512i r[16]) {
    __m512 f[16];
    for (int i = 0; i < 16; i++) f[i] = _mm512_castsi512_ps(r[i]);
    vtranspose16(f);
    for (int i = 0; i < 16; i++) r[i] = _mm512_castps_si512(f[i]);
}

/* Packing: an A micro-panel of `rows` ≤ 12 rows and a B micro-panel of
 * `cols` ≤ 32 columns, kc values of k from p0, as k-pairs of bf16
 * (dst[q·MR + r], dst[q·NR + c]; low half the even k); zero padding. */
static void pack_a_pairs_avx512(uint32_t *dst, const float *A, int lda, int trans, int row, int rows, int p0, int kc) {
    const int pairs = (kc + 1) / 2;
    const __mmask16 keep = (__mmask16)((1u << rows) - 1);
    if (trans) {
        /* op(A)[i][p] = A[p·lda + i]: rows p, p+1 give the pairs of 12 rows at once */
        for (int q = 0; q < pairs; q++) {
            const int p = p0 + 2 * q;
            __m512 x0 = _mm512_maskz_loadu_ps(keep, A + (size_t)p * lda + row);
            __m512 x1 = 2 * q + 1 < kc ? _mm512_maskz_loadu_ps(keep, A + (size_t)(p + 1) * lda + row) : _mm512_setzero_ps();
            _mm512_mask_storeu_epi32(dst + (size_t)q * BF_MR, 0x0FFF, pairs_of(x0, x1));
        }
        return;
    }
    /* op(A)[i][p] = A[i·lda + p]: a row's pairs are consecutive; transpose 16 pairs × 12 rows */
    for (int q0 = 0; q0 < pairs; q0 += 16) {
        __m512i r[16];
        for (int i = 0; i < 16; i++)
            r[i] = i < rows ? pairs_along(A + (size_t)(row + i) * lda + p0 + 2 * q0, kc - 2 * q0) : _mm512_setzero_si512();
        transpose16(r);
        for (int j = 0; j < 16 && q0 + j < pairs; j++) _mm512_mask_storeu_epi32(dst + (size_t)(q0 + j) * BF_MR, 0x0FFF, r[j]);
    }
}

static void pack_b_pairs_avx512(uint32_t *dst, const float *B, int ldb, int trans, int col, int cols, int p0, int kc) {
    const int pairs = (kc + 1) / 2;
    if (!trans) {
        /* op(B)[p][c] = B[p·ldb + c]: rows p, p+1 give the pairs of 16 columns at once */
        for (int q = 0; q < pairs; q++) {
            const int p = p0 + 2 * q;
            for (int c0 = 0; c0 < BF_NR; c0 += 16) {
                int n = cols - c0;
                __mmask16 keep = (__mmask16)(n >= 16 ? 0xFFFF : (1u << PK_MAX(n, 0)) - 1);
                __m512 x0 = _mm512_maskz_loadu_ps(keep, B + (size_t)p * ldb + col + c0);
                __m512 x1 = 2 * q + 1 < kc ? _mm512_maskz_loadu_ps(keep, B + (size_t)(p + 1) * ldb + col + c0) : _mm512_setzero_ps();
                _mm512_storeu_si512((void *)(dst + (size_t)q * BF_NR + c0), pairs_of(x0, x1));
            }
        }
        return;
    }
    /* op(B)[p][c] = B[c·ldb + p]: a column's pairs are consecutive; transpose 16 pairs × 16 columns */
    for (int q0 = 0; q0 < pairs; q0 += 16)
        for (int c0 = 0; c0 < BF_NR; c0 += 16) {
            __m512i r[16];
            for (int i = 0; i < 16; i++)
                r[i] = c0 + i < cols ? pairs_along(B + (size_t)(col + c0 + i) * ldb + p0 + 2 * q0, kc - 2 * q0) : _mm512_setzero_si512();
            transpose16(r);
            for (int j = 0; j < 16 && q0 + j < pairs; j++) _mm512_storeu_si512((void *)(dst + (size_t)(q0 + j) * BF_NR + c0), r[j]);
        }
}
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif /* the AVX-512 code */

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
        pk_gemm_fp32(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
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
                    pack_b_pairs_avx512(g_bf_pack_b + (size_t)jr * BF_NR * pairs, B, ldb, trans_b, jc + jr * BF_NR,
                                        PK_MIN(BF_NR, nc - jr * BF_NR), pc, kc);
                for (int ic = 0; ic < M; ic += BF_MB) {
                    const int mc = PK_MIN(BF_MB, M - ic);
                    const int nir = (mc + BF_MR - 1) / BF_MR;
                    PK_PRAGMA(omp for schedule(static))
                    for (int ir = 0; ir < nir; ir++)
                        pack_a_pairs_avx512(g_bf_pack_a + (size_t)ir * BF_MR * pairs, A, lda, trans_a, ic + ir * BF_MR,
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
                    float a1 = odd ? bf16_operand(bf16_of_operand(op_a(A, lda, trans_a, i, p + 1))) : 0.0f;
                    float b1 = odd ? bf16_operand(bf16_of_operand(op_b(B, ldb, trans_b, p + 1, j))) : 0.0f;
                    float a0 = bf16_operand(bf16_of_operand(op_a(A, lda, trans_a, i, p)));
                    float b0 = bf16_operand(bf16_of_operand(op_b(B, ldb, trans_b, p, j)));
                    s = flush(s + a1 * b1); /* bf16 products are exact in fp32 */
                    s = flush(s + a0 * b0);
                }
                const float bp = pc == 0 ? beta : 1.0f;
                const float v = alpha * s;
                *c = bp == 0.0f ? v : v + bp * *c;
            }
        }
}
