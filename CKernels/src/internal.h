/*
 * internal.h — shared by the kernel files: thread helpers, the table of
 * per-ISA compute routines, and small scalar helpers. Not installed.
 */
#ifndef PK_INTERNAL_H
#define PK_INTERNAL_H

#include "prorl_kernels.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* OpenMP: we declare the three runtime functions we use instead of
 * including omp.h, so the library builds with any OpenMP runtime (LLVM's
 * libomp, GNU libgomp) and without OpenMP at all. */
#ifdef _OPENMP
int omp_get_thread_num(void);
int omp_get_num_threads(void);
int omp_get_num_procs(void);
#define PK_PRAGMA(x) _Pragma(#x)
#else
#define PK_PRAGMA(x)
#endif

/* Threads to use for a loop of `work` units (flops, bytes, …): 1 below a
 * threshold where waking the team costs more than it saves. The value can
 * change the partition, never the result. */
int pk_threads_for(double work);

/* Parallel for over an index that owns its writes: contiguous blocks, or
 * round-robin (interleaved) for units of uneven cost. Only static schedules:
 * they need nothing newer than the oldest OpenMP runtime we link. Without
 * OpenMP the thread count is evaluated and ignored. */
#ifdef _OPENMP
#define PK_PARALLEL_FOR(nthreads) \
    PK_PRAGMA(omp parallel for num_threads(nthreads) schedule(static))
#define PK_PARALLEL_FOR_INTERLEAVED(nthreads) \
    PK_PRAGMA(omp parallel for num_threads(nthreads) schedule(static, 1))
#else
#define PK_PARALLEL_FOR(nthreads) (void)(nthreads);
#define PK_PARALLEL_FOR_INTERLEAVED(nthreads) (void)(nthreads);
#endif

/* Column range [*c0, *c1) of part `part` of `parts`, cut at multiples of
 * 16 columns. Used by reductions over rows: each part owns its columns and
 * visits the rows in order, so every sum has the same order for any number
 * of parts. */
static inline void pk_column_part(int C, int part, int parts, int *c0, int *c1) {
    int blocks = (C + 15) / 16;
    int b0 = (int)((long)blocks * part / parts), b1 = (int)((long)blocks * (part + 1) / parts);
    *c0 = b0 * 16 < C ? b0 * 16 : C;
    *c1 = b1 * 16 < C ? b1 * 16 : C;
}

/* pk_gemm with fp32 products whatever the precision setting. */
void pk_gemm_fp32(int trans_a, int trans_b, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta,
                  float *C, int ldc);

#define PK_MIN(a, b) ((a) < (b) ? (a) : (b))
#define PK_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Largest head width the vectorised attention supports (stack buffers);
 * wider heads use the naive kernels. */
#define PK_ATTN_MAX_D 256
/* Decoding: up to PK_DECODE_GROUP consecutive query rows sharing a key/value
 * entry are computed together when it has at most PK_DECODE_KEYS keys
 * (longer caches take an online softmax, row by row). */
#define PK_DECODE_GROUP 16
#define PK_DECODE_KEYS 256
/* Widest user state the vectorised scoring supports (stack buffer). */
#define PK_SCORE_MAX_C 512

/* ---- counter-based random numbers (dropout, sampling) ---- */

static inline uint64_t pk_mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Key of a stream: one 64-bit word mixing seed and stream id. */
static inline uint64_t pk_stream_key(uint64_t seed, uint64_t stream) {
    return pk_mix64(seed ^ pk_mix64(stream + 0x632BE59BD9B4E019ull));
}

/* murmur3's 32-bit finaliser: a bijection with full avalanche. */
static inline uint32_t pk_fmix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x85EBCA6Bu;
    x ^= x >> 13;
    x *= 0xC2B2AE35u;
    x ^= x >> 16;
    return x;
}

/* 32 random bits for element `index` of a keyed stream (index taken mod
 * 2^32: a stream is 2^32 elements long). The SIMD bodies compute the same
 * bits lane by lane (simd.h: vrandom_keep). */
static inline uint32_t pk_random_bits(uint64_t key, uint64_t index) {
    return pk_fmix32(((uint32_t)index * 0x9E3779B1u) ^ (uint32_t)key) + (uint32_t)(key >> 32);
}

/* Keep threshold for drop probability p: keep iff bits >= threshold. */
static inline uint32_t pk_keep_threshold(float p) {
    double t = (double)p * 4294967296.0;
    if (t <= 0.0) return 0u;
    if (t >= 4294967295.0) return 0xFFFFFFFFu;
    return (uint32_t)t;
}
/* ---- per-ISA routines ---- */

/* Preprocessor twins of PK_SIMD_* (an enum, invisible to #if). */
#define PK_ISA_SCALAR 0
#define PK_ISA_AVX2 1
#define PK_ISA_AVX512 2

/* Where the probabilities of head h of query batch row b live: rows of
 * length Tk with stride *ld, from the returned offset. Padded layout
 * [B,H,Tq,Tk]; with packed query rows, [rows,H,Tk] (query row q_rows[b]+i
 * holds its H heads back to back, and padding rows are not stored). */
static inline size_t pk_attn_probs_at(const pk_attention_desc *d, int b, int h, int *ld) {
    if (d->q_rows) {
        *ld = d->H * d->Tk;
        return ((size_t)d->q_rows[b] * d->H + h) * d->Tk;
    }
    *ld = d->Tk;
    return ((size_t)b * d->H + h) * d->Tq * d->Tk;
}

typedef struct pk_attn_args {
    const pk_attention_desc *d;
    float *out, *probs;             /* forward outputs */
    float *dq, *dk, *dv, *ds;       /* backward outputs; ds: laid out as probs, or NULL */
    const float *dout, *saved_probs; /* backward inputs */
    const float *q, *k, *v;
} pk_attn_args;

typedef struct pk_isa_ops {
    int level;
    /* GEMM micro-kernel: C[mr,nr] = alpha·A(mr×kc)·Bpanel + beta·C, with
     * A(r,p) = a[r·a_rs + p·a_cs]. */
    int mr, nr;
    void (*gemm_ukernel)(int kc, const float *a, int a_rs, int a_cs,
                         const float *b, float *c, int ldc, float alpha,
                         float beta);
    /* attention: forward for one (b,h); backward for one (kv entry, h). */
    void (*attn_fwd_head)(const pk_attn_args *a, int b, int h);
    void (*attn_bwd_head)(const pk_attn_args *a, int e, int h);
    void (*attn_decode_group)(const pk_attn_args *a, int b, int n);
    /* rows */
    void (*softmax_row)(float *out, const float *inp, const uint8_t *mask,
                        int C, int log_domain);
    void (*softmax_bwd_row)(float *dinp, const float *dout, const float *out,
                            int C, int log_domain);
    void (*xent_row)(float *loss, float *dlogits, float *entropy,
                     const float *logits, int target, float g, int V);
    /* exact KL(softmax(x) ‖ softmax(r)) over a masked support, and w·∂/∂x */
    void (*kl_row)(float *kl, float *g, const float *x, const float *r,
                   const uint8_t *mask, float w, int C);
    float (*rmsnorm_fwd_row)(float *y, const float *x, const float *w, int C, float eps);
    void (*rmsnorm_bwd_row)(float *dx, const float *g, const float *x, const float *w, float r, int C);
    void (*layernorm_fwd_row)(float *y, float *mean, float *rstd, const float *x, const float *w,
                              const float *b, int C, float eps);
    void (*layernorm_bwd_row)(float *dx, const float *g, const float *x, const float *w, float m, float r, int C);
    void (*norm_weight_grad_span)(float *acc, const float *g, const float *x, float shift, float scale, int n);
    void (*gelu_fwd)(float *out, const float *inp, size_t n);
    void (*gelu_bwd)(float *dinp, const float *dout, const float *inp,
                     size_t n);
    /* one row of GRU gates: g (r|z|n products in, r|z|n|g_n out), h_t */
    void (*gru_gates_row)(float *h, float *g, const float *x, const float *hp, int H);
    void (*dropout_span)(float *out, const float *in, size_t n, uint64_t key,
                         uint32_t base, uint32_t thr, float scale,
                         int accumulate);
    void (*relu_fwd_span)(float *out, const float *inp, size_t n);
    void (*relu_bwd_span)(float *dinp, const float *dout, const float *out, size_t n);
    void (*relu_bwd_inplace_span)(float *d, const float *out, float scale, size_t n);
    /* out = a + alpha·b (residual add: alpha 1; axpy: out = a = y) */
    void (*axpby_span)(float *out, const float *a, const float *b, float alpha, size_t n);
    void (*scale_span)(float *x, float alpha, size_t n);
    /* scoring: rows [0, nrows) of u against all items. */
    void (*score_stats_rows)(float *lse, float *tscore, int *rank,
                             const float *u, const float *items,
                             const int *targets, int nrows, int V, int C);
    int score_rows; /* rows per scoring tile */
    float (*dot)(const float *a, const float *b, int n);
} pk_isa_ops;

extern const pk_isa_ops pk_ops_scalar;
#if defined(__x86_64__) || defined(_M_X64)
extern const pk_isa_ops pk_ops_avx2;
extern const pk_isa_ops pk_ops_avx512;
#endif

/* The routines of the current SIMD level. */
const pk_isa_ops *pk_ops(void);

/* Scalar helpers shared by naive kernels. */
static inline float pk_gelu_scalar(float x) {
    return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}
static inline float pk_gelu_grad_scalar(float x) {
    float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
    float pdf = expf(-0.5f * x * x) * 0.39894228040143268f;
    return cdf + x * pdf;
}

#endif /* PK_INTERNAL_H */
