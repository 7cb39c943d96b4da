/*
 * prorl_kernels.h — the numeric kernels of the ProRL engine.
 *
 * Float32, row-major, caller-owned buffers. Kernels never allocate, print or
 * exit. Every forward has its backward beside it; backward kernels ACCUMULATE
 * (+=) into gradient buffers, the caller zeroes them. Each fast kernel has a
 * `_naive` twin: plain loops with the same contract, kept as the reference
 * the fast one is tested against.
 *
 * Argument order: outputs, buffers saved for backward, inputs, scalars, dims.
 *
 * Dimension glossary
 *   N  rows (batch × positions, flattened)     C  width of a row
 *   I  input width of a linear layer           O  output width of a linear layer
 *   B  batch (query rows of attention)         G  query rows per key/value entry
 *   Tq query positions                         Tk key positions
 *   H  heads                                   D  head width
 *   V  vocabulary or catalogue size            M, K  GEMM dims (C[M,N] = A[M,K]·B[K,N])
 *
 * Determinism: every kernel partitions work by the index that owns each
 * write and sums in a fixed order, so results are bit-identical for any
 * thread count. They may differ between SIMD levels (AVX-512, AVX2, scalar).
 *
 * Thread safety: kernels may be called from several threads at once. The
 * GEMM serialises callers on its packing buffers; everything else is
 * re-entrant.
 */
#ifndef PRORL_KERNELS_H
#define PRORL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Threads and SIMD level                                             */
/* ------------------------------------------------------------------ */

/** Number of threads the calling thread's kernel calls use; n <= 0 means one
 * per core. The setting belongs to the calling thread. */
void pk_set_num_threads(int n);
int pk_get_num_threads(void);
/** 1 when the library was built with OpenMP, 0 otherwise. */
int pk_openmp_enabled(void);

enum { PK_SIMD_SCALAR = 0, PK_SIMD_AVX2 = 1, PK_SIMD_AVX512 = 2 };
/** Best SIMD level this CPU supports. */
int pk_simd_supported(void);
/** Force a SIMD level (clamped to what the CPU supports); for tests and benchmarks. */
void pk_set_simd_level(int level);
int pk_get_simd_level(void);
/** Human-readable name of a SIMD level ("avx512", "avx2", "scalar"). */
const char *pk_simd_name(int level);

/* ------------------------------------------------------------------ */
/* GEMM                                                               */
/* ------------------------------------------------------------------ */

/**
 * C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C.
 * op(A) = A (row-major, lda ≥ K) or, with trans_a, Aᵀ where A is [K,M] (lda ≥ M);
 * op(B) = B ([K,N], ldb ≥ N) or, with trans_b, Bᵀ where B is [N,K] (ldb ≥ K).
 * beta == 0 never reads C (it may hold NaN). Packed, cache-blocked, with
 * AVX-512 / AVX2+FMA / scalar micro-kernels. K == 0 scales C by beta.
 * Products in fp32, or, after pk_set_precision(PK_PRECISION_BF16) on the
 * calling thread, as pk_gemm_bf16 (every product of the library that goes
 * through pk_gemm: the linear layers, their backward, the models' GEMMs).
 */
void pk_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta,
             float *C, int ldc);
void pk_gemm_naive(int trans_a, int trans_b, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc);

/**
 * pk_gemm with bf16 products: op(A) and op(B) are rounded to bf16 (nearest,
 * ties to even; denormals count as zero) and their products summed in fp32
 * (AVX512-BF16 vdpbf16ps: per k-pair the odd product, then the even one,
 * each sum rounded), per block of 256 k; C, alpha and beta stay fp32. Error
 * against the exact product of the fp32 operands, per element:
 *   |C − C_exact| ≤ (2⁻⁷ + 2⁻¹⁶ + K·2⁻²⁴) · |alpha| · Σ_k |a_k b_k|
 * (each operand's rounding is ≤ 2⁻⁸ relative: 8 significant bits; the fp32
 * sums as pk_gemm's).
 * Bit-identical for any thread count. Where pk_gemm_bf16_available() is 0
 * (no AVX512-BF16, or a SIMD level below AVX-512) it is pk_gemm.
 */
void pk_gemm_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta,
                  float *C, int ldc);
/* The same arithmetic element by element (pk_gemm_naive where unavailable). */
void pk_gemm_bf16_naive(int trans_a, int trans_b, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb,
                        float beta, float *C, int ldc);
/* The precision of pk_gemm's products for the calling thread: PK_PRECISION_FP32
 * or PK_PRECISION_BF16 (fp32 where pk_gemm_bf16_available() is 0). A thread
 * that never set it has the process default, pk_default_precision(): bf16
 * when the environment variable PRORL_PRECISION is "bf16" at the first call,
 * else fp32. */
enum { PK_PRECISION_FP32 = 0, PK_PRECISION_BF16 = 1 };
void pk_set_precision(int precision);
int pk_get_precision(void);
int pk_default_precision(void);
/* 1 when pk_gemm_bf16 runs bf16 products on this CPU at the current SIMD level. */
int pk_gemm_bf16_available(void);
/* Round to bf16 (nearest, ties to even; NaN stays NaN), and back. */
uint16_t pk_bf16_from_float(float x);
float pk_float_from_bf16(uint16_t h);

/* ------------------------------------------------------------------ */
/* Linear layer                                                       */
/* ------------------------------------------------------------------ */

/**
 * out[N,O] = inp[N,I] · weight[O,I]ᵀ + bias[O]   (bias may be NULL).
 * Matches torch.nn.functional.linear.
 */
void pk_matmul_fwd(float *out, const float *inp, const float *weight,
                   const float *bias, int N, int I, int O);
/**
 * dinp[N,I] += dout · weight;  dweight[O,I] += doutᵀ · inp;  dbias[O] += Σ_n dout[n].
 * Any of dinp, dweight, dbias may be NULL to skip it.
 */
void pk_matmul_bwd(float *dinp, float *dweight, float *dbias,
                   const float *dout, const float *inp, const float *weight,
                   int N, int I, int O);
void pk_matmul_fwd_naive(float *out, const float *inp, const float *weight,
                         const float *bias, int N, int I, int O);
void pk_matmul_bwd_naive(float *dinp, float *dweight, float *dbias,
                         const float *dout, const float *inp,
                         const float *weight, int N, int I, int O);
/** dbias[C] += Σ_n x[n,C]  (column sums, fixed order). */
void pk_column_sum(float *dbias, const float *x, int N, int C);

/* ------------------------------------------------------------------ */
/* Multi-head attention                                               */
/* ------------------------------------------------------------------ */

/**
 * Shape and options of one attention call. Query batch row b attends to
 * key/value entry b / kv_group (so G rollouts can share one encoder output).
 * Layouts, with heads interleaved in a row as in HF/RecBole ([.., H*D]):
 *   q   [B, Tq, ·] row stride q_stride   (≥ H*D), batch stride Tq*q_stride
 *   k,v [B/G, Tk_cap, ·] row stride kv_stride, batch stride Tk_cap*kv_stride
 *   out [B, Tq, ·] row stride out_stride
 *   probs (saved for backward) [B, H, Tq, Tk] contiguous; with q_rows,
 *         [rows, H, Tk]: query row q_rows[b]+i holds its H heads' rows
 *         back to back and padding rows are not stored
 *   bias [H, Tq, Tk] additive (T5 relative positions), shared by the batch
 * Packed rows: with q_rows, query row i of batch entry b (and its output) is
 * row q_rows[b] + i instead of b·Tq + i, so sequences of unequal length can
 * be stored back to back; likewise kv_rows[e] for keys/values (instead of
 * e·Tk_cap). Either may be NULL.
 * Masks: key j of entry e is visible when j < kv_len[e] (NULL: all Tk) and,
 * with causal, when j ≤ i. Query rows i ≥ q_len[b] (NULL: all Tq) are not
 * computed; their probabilities and outputs are written as zeros unless
 * q_rows is given (packed rows have no padding to write). A row with
 * no visible key gives zeros, never NaN.
 * scores = scale · q·kᵀ + bias; p = softmax(scores); out = dropout(p) · v.
 * Dropout (training) keeps a probability with chance 1 − dropout_p and
 * scales it by 1/(1 − dropout_p), from the counter-based stream (seed,
 * stream); index of element (b,h,i,j) is ((b·H + h)·Tq + i)·Tk + j.
 */
typedef struct pk_attention_desc {
    int B, kv_group, Tq, Tk, Tk_cap, H, D;
    int q_stride, kv_stride, out_stride;
    const int *kv_len;
    const int *q_len;
    const int *q_rows;
    const int *kv_rows;
    int causal;
    float scale;
    const float *bias;
    float dropout_p;
    uint64_t seed, stream;
} pk_attention_desc;

/**
 * Forward: writes out and probs (pre-dropout probabilities). scratch (laid
 * out as probs) receives the dropped probabilities and is needed only when
 * dropout_p > 0 (else it may be NULL).
 */
void pk_attention_fwd(float *out, float *probs, float *scratch, const float *q,
                      const float *k, const float *v,
                      const pk_attention_desc *d);
/**
 * Backward: dq, dk, dv accumulate with the layouts of q, k, v (dk, dv summed
 * over the kv_group rows sharing an entry, in row order). dbias [H,Tq,Tk]
 * accumulates the sum over the batch. scratch (laid out as probs) is always needed
 * (it ends holding dscores). Any of dq, dk, dv, dbias may be NULL.
 */
void pk_attention_bwd(float *dq, float *dk, float *dv, float *dbias,
                      float *scratch, const float *dout, const float *probs,
                      const float *q, const float *k, const float *v,
                      const pk_attention_desc *d);
void pk_attention_fwd_naive(float *out, float *probs, float *scratch,
                            const float *q, const float *k, const float *v,
                            const pk_attention_desc *d);
void pk_attention_bwd_naive(float *dq, float *dk, float *dv, float *dbias,
                            float *scratch, const float *dout,
                            const float *probs, const float *q,
                            const float *k, const float *v,
                            const pk_attention_desc *d);
/**
 * One decoding step over a key/value cache: d->Tq must be 1 and d->causal 0;
 * d->Tk is the number of cached positions to attend to, d->Tk_cap the cache
 * capacity. bias, if given, is [H, Tk] (the current query's row). No dropout.
 * out [B, ·] row stride out_stride; q [B, ·] row stride q_stride.
 * Consecutive rows with the same key/value entry (the samples or beams of
 * one prompt in cross-attention) are computed together, their keys loaded
 * once; a row's result is the same as when decoded alone.
 */
void pk_attention_decode(float *out, const float *q, const float *kcache,
                         const float *vcache, const pk_attention_desc *d);
void pk_attention_decode_naive(float *out, const float *q,
                               const float *kcache, const float *vcache,
                               const pk_attention_desc *d);

/**
 * T5 relative position bias: bias[h,i,j] = table[buckets[i,j], h].
 * table [NB, H], buckets [Tq, Tk] (values in [0, NB)).
 */
void pk_position_bias_fwd(float *bias, const float *table, const int *buckets,
                          int H, int Tq, int Tk);
/** dtable[buckets[i,j], h] += dbias[h,i,j]. */
void pk_position_bias_bwd(float *dtable, const float *dbias,
                          const int *buckets, int NB, int H, int Tq, int Tk);

/* ------------------------------------------------------------------ */
/* Softmax over rows                                                  */
/* ------------------------------------------------------------------ */

/**
 * out[N,C] = softmax(inp) per row over entries with mask[n,c] != 0 (mask
 * NULL: all). Masked entries get 0; a fully masked row is all zeros.
 * In place (out == inp) is allowed.
 */
void pk_softmax_fwd(float *out, const float *inp, const uint8_t *mask, int N,
                    int C);
/** dinp += out ∘ (dout − Σ_c dout·out). */
void pk_softmax_bwd(float *dinp, const float *dout, const float *out, int N,
                    int C);
/**
 * out = log_softmax(inp) per row over unmasked entries; masked entries get
 * -INFINITY; a fully masked row is all zeros. In place allowed.
 */
void pk_log_softmax_fwd(float *out, const float *inp, const uint8_t *mask,
                        int N, int C);
/** dinp += dout − exp(out) · Σ_c dout (masked entries of out = -inf give 0). */
void pk_log_softmax_bwd(float *dinp, const float *dout, const float *out,
                        int N, int C);
void pk_softmax_fwd_naive(float *out, const float *inp, const uint8_t *mask,
                          int N, int C);
void pk_log_softmax_fwd_naive(float *out, const float *inp,
                              const uint8_t *mask, int N, int C);

/* ------------------------------------------------------------------ */
/* Fused softmax cross-entropy                                        */
/* ------------------------------------------------------------------ */

/**
 * Per row n with targets[n] != ignore_index:
 *   losses[n]  = logsumexp(logits[n]) − logits[n, targets[n]]
 *   dlogits[n] = (softmax(logits[n]) − onehot(targets[n])) · g[n],
 *     g[n] = dloss ? dloss[n] : scale
 *   entropy[n] = −Σ p log p (optional)
 * Ignored rows get loss 0, entropy 0 and dlogits 0. One read of the logits
 * per row for the statistics and one for the gradient. dlogits is WRITTEN
 * (not accumulated) and may alias logits (in place). dlogits, entropy and
 * dloss may be NULL. Matches torch cross_entropy(reduction='none').
 */
void pk_crossentropy(float *losses, float *dlogits, float *entropy,
                     const float *logits, const int *targets,
                     const float *dloss, float scale, int N, int V,
                     int ignore_index);
void pk_crossentropy_naive(float *losses, float *dlogits, float *entropy,
                           const float *logits, const int *targets,
                           const float *dloss, float scale, int N, int V,
                           int ignore_index);

/* ------------------------------------------------------------------ */
/* KL divergence of categorical distributions (kl.c)                  */
/* ------------------------------------------------------------------ */

/**
 * x[n,c] = −1e30 where mask[n,c] == 0 (in place, [N,C]): restricts logits
 * to a support, so softmax, cross-entropy and entropy kernels see the
 * distribution renormalised over it (masked entries get probability 0 and
 * contribute 0, not NaN, to p·log p).
 */
void pk_mask_fill(float *x, const uint8_t *mask, int N, int C);

/**
 * Per row n, with p = softmax(logits[n]) and q = softmax(ref_logits[n])
 * over the entries where mask[n,c] != 0 (mask NULL: all):
 *   kl[n]         = Σ_c p_c (log p_c − log q_c)              (KL(p ‖ q) ≥ 0)
 *   dlogits[n,c]  = g[n] · p_c (log p_c − log q_c − kl[n])    (= g · ∂kl/∂logits)
 *   g[n] = dkl ? dkl[n] : scale
 * Masked entries and rows with an empty support get 0. dlogits is WRITTEN
 * (not accumulated), may be NULL, and may alias ref_logits or logits (each
 * entry is read before it is written). Matches
 * torch.kl_div(log_q, log_p, log_target=True).sum(-1) on the support.
 */
void pk_kl_categorical(float *kl, float *dlogits, const float *logits,
                       const float *ref_logits, const uint8_t *mask,
                       const float *dkl, float scale, int N, int C);
void pk_kl_categorical_naive(float *kl, float *dlogits, const float *logits,
                             const float *ref_logits, const uint8_t *mask,
                             const float *dkl, float scale, int N, int C);

/* ------------------------------------------------------------------ */
/* GRU recurrence                                                     */
/* ------------------------------------------------------------------ */

/**
 * One GRU layer's recurrence over T steps of B sequences (PyTorch nn.GRU,
 * bias=False, gate order r|z|n), time-major: row t·B + b is sequence b at
 * step t. With gi = x·W_ihᵀ [T·B, 3H] computed by the caller and
 * g = h_{t−1}·W_hhᵀ (w_hh [3H, H]):
 *   r = σ(gi_r + g_r)   z = σ(gi_z + g_z)   n = tanh(gi_n + r∘g_n)
 *   h_t = (1 − z)∘n + z∘h_{t−1}
 * h [(T+1)·B, H]: rows [0, B) are the initial state (read); row
 * (t+1)·B + b is written with h_t of sequence b. gates [T·B, 4H] saves
 * r|z|n|g_n for the backward. Sequences are sorted longest first: at step t
 * rows b < counts[t] run (counts non-increasing, ≤ B); the other rows of
 * h_t and gates are set to 0. Returns 0 (writing nothing) when counts are
 * not of that form, 1 otherwise.
 */
int pk_gru_fwd(float *h, float *gates, const float *gi, const float *w_hh,
               const int *counts, int T, int B, int H);
int pk_gru_fwd_naive(float *h, float *gates, const float *gi, const float *w_hh,
                     const int *counts, int T, int B, int H);

/**
 * Backpropagation through time of pk_gru_fwd. dh [T·B, H]: on entry
 * ∂L/∂h_t from above for every step; on return the total gradient of each
 * h_t (the recurrence added). Writes dgi [T·B, 3H] = ∂L/∂gi and dgh
 * [T·B, 3H] = ∂L/∂g (both 0 on rows that did not run); accumulates
 * dw_hh [3H, H] += Σ_t dghᵀ·h_{t−1} (dw_hh may be NULL); writes dh0 [B, H]
 * = ∂L/∂(initial state) unless NULL. h and gates are the forward's. The
 * input gradients follow from dgi: dx = dgi·W_ih, dW_ih += dgiᵀ·x. Returns
 * 0 on malformed counts, 1 otherwise.
 */
int pk_gru_bwd(float *dgi, float *dgh, float *dw_hh, float *dh, float *dh0,
               const float *h, const float *gates, const float *w_hh,
               const int *counts, int T, int B, int H);
int pk_gru_bwd_naive(float *dgi, float *dgh, float *dw_hh, float *dh, float *dh0,
                     const float *h, const float *gates, const float *w_hh,
                     const int *counts, int T, int B, int H);

/* ------------------------------------------------------------------ */
/* Normalisation                                                      */
/* ------------------------------------------------------------------ */

/** T5 RMSNorm: out = weight ∘ x / sqrt(mean(x²) + eps); saves rstd[N]. */
void pk_rmsnorm_fwd(float *out, float *rstd, const float *inp,
                    const float *weight, int N, int C, float eps);
void pk_rmsnorm_bwd(float *dinp, float *dweight, const float *dout,
                    const float *inp, const float *weight, const float *rstd,
                    int N, int C);
/** LayerNorm: out = (x − mean) · rstd ∘ weight + bias; saves mean[N], rstd[N]. */
void pk_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp,
                      const float *weight, const float *bias, int N, int C,
                      float eps);
void pk_layernorm_bwd(float *dinp, float *dweight, float *dbias,
                      const float *dout, const float *inp, const float *weight,
                      const float *mean, const float *rstd, int N, int C);
void pk_rmsnorm_fwd_naive(float *out, float *rstd, const float *inp,
                          const float *weight, int N, int C, float eps);
void pk_rmsnorm_bwd_naive(float *dinp, float *dweight, const float *dout,
                          const float *inp, const float *weight,
                          const float *rstd, int N, int C);
void pk_layernorm_fwd_naive(float *out, float *mean, float *rstd,
                            const float *inp, const float *weight,
                            const float *bias, int N, int C, float eps);
void pk_layernorm_bwd_naive(float *dinp, float *dweight, float *dbias,
                            const float *dout, const float *inp,
                            const float *weight, const float *mean,
                            const float *rstd, int N, int C);

/* ------------------------------------------------------------------ */
/* Activations and elementwise                                        */
/* ------------------------------------------------------------------ */

/** out = max(x, 0); in place allowed. */
void pk_relu_fwd(float *out, const float *inp, size_t n);
/** dinp += dout · [out > 0]  (out: the forward output). */
void pk_relu_bwd(float *dinp, const float *dout, const float *out, size_t n);
/**
 * In place: d[i] ← out[i] > 0 ? d[i] · scale : 0. The backward of ReLU
 * followed by inverted dropout, given the dropped output `out` (positive
 * exactly where x > 0 and the element was kept; scale = 1/(1 − p)).
 */
void pk_relu_bwd_inplace(float *d, const float *out, float scale, size_t n);
/** out = x · ½(1 + erf(x/√2)) (PyTorch's exact GELU); in place allowed. */
void pk_gelu_fwd(float *out, const float *inp, size_t n);
/** dinp += dout · (Φ(x) + x·φ(x)). */
void pk_gelu_bwd(float *dinp, const float *dout, const float *inp, size_t n);
void pk_gelu_fwd_naive(float *out, const float *inp, size_t n);
void pk_gelu_bwd_naive(float *dinp, const float *dout, const float *inp,
                       size_t n);
/** out = a + b (residual); out may alias a or b. */
void pk_add(float *out, const float *a, const float *b, size_t n);
/** y += alpha · x. */
void pk_axpy(float *y, const float *x, float alpha, size_t n);
/** x *= alpha. */
void pk_scale(float *x, float alpha, size_t n);

/* ------------------------------------------------------------------ */
/* Embeddings                                                         */
/* ------------------------------------------------------------------ */

/** out[n] = scale · table[ids[n]]  (table [V,C]). */
void pk_embedding_fwd(float *out, const float *table, const int *ids,
                      float scale, int N, int C);
/** dtable[ids[n]] += scale · dout[n]  (duplicates summed in row order). */
void pk_embedding_bwd(float *dtable, const float *dout, const int *ids,
                      float scale, int N, int C);
void pk_embedding_bwd_naive(float *dtable, const float *dout, const int *ids,
                            float scale, int N, int C);

/* ------------------------------------------------------------------ */
/* Dropout (counter-based, thread-count independent)                  */
/* ------------------------------------------------------------------ */

/**
 * out[i] = keep(i) ? inp[i] · (1/(1 − p)) : 0, keep(i) = pk_dropout_keep(seed,
 * stream, i, p). p == 0 copies. In place allowed.
 */
void pk_dropout_fwd(float *out, const float *inp, size_t n, float p,
                    uint64_t seed, uint64_t stream);
/** dinp[i] += keep(i) ? dout[i] · (1/(1 − p)) : 0. */
void pk_dropout_bwd(float *dinp, const float *dout, size_t n, float p,
                    uint64_t seed, uint64_t stream);
/** The keep decision for element `index` of stream (seed, stream); a
 * stream is 2^32 elements long (index is taken mod 2^32). */
int pk_dropout_keep(uint64_t seed, uint64_t stream, uint64_t index, float p);
/** Uniform float in [0, 1) for element `index` of stream (seed, stream). */
float pk_uniform(uint64_t seed, uint64_t stream, uint64_t index);

/* ------------------------------------------------------------------ */
/* Optimiser                                                          */
/* ------------------------------------------------------------------ */

/**
 * One AdamW step (torch.optim.AdamW): p −= lr·wd·p; m = β1 m + (1−β1) g;
 * v = β2 v + (1−β2) g²; p −= lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + eps).
 * step t ≥ 1. With weight_decay 0 this is torch.optim.Adam.
 */
void pk_adamw(float *params, float *m, float *v, const float *grads, size_t n,
              float lr, float beta1, float beta2, float eps,
              float weight_decay, int step);
void pk_adamw_naive(float *params, float *m, float *v, const float *grads,
                    size_t n, float lr, float beta1, float beta2, float eps,
                    float weight_decay, int step);
/** Σ x² in double, summed in fixed-size chunks in a fixed order. */
double pk_sum_squares(const float *x, size_t n);
/**
 * Global-norm clipping (torch.nn.utils.clip_grad_norm_): norm = ‖g‖₂; if
 * max_norm > 0 and norm > max_norm, g *= max_norm / (norm + 1e-6).
 * Returns the norm before clipping.
 */
float pk_clip_grad_norm(float *grads, size_t n, float max_norm);

/* ------------------------------------------------------------------ */
/* Item scoring (simulator)                                           */
/* ------------------------------------------------------------------ */

/** logits[B,V] = u[B,C] · items[V,C]ᵀ. */
void pk_score_logits(float *logits, const float *u, const float *items, int B,
                     int V, int C);
/**
 * Per row b, without materialising [B,V]: with s_v = u[b]·items[v],
 *   lse[b]          = log Σ_v exp(s_v)
 *   target_score[b] = s_{targets[b]}
 *   rank[b]         = 1 + #{v ≠ targets[b] : s_v > s_{targets[b]}}
 * Scores are dot products summed in index order with fused multiply-add, so
 * the target's score equals the one compared against. Any of lse,
 * target_score, rank may be NULL.
 */
void pk_score_stats(float *lse, float *target_score, int *rank,
                    const float *u, const float *items, const int *targets,
                    int B, int V, int C);
void pk_score_stats_naive(float *lse, float *target_score, int *rank,
                          const float *u, const float *items,
                          const int *targets, int B, int V, int C);
/** out[b] = u[b] · items[ids[b]]  (one dot product per row). */
void pk_score_pairs(float *out, const float *u, const float *items,
                    const int *ids, int B, int C);

#ifdef __cplusplus
}
#endif

#endif /* PRORL_KERNELS_H */
