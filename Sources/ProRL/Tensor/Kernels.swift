import CKernels
import Foundation
import Dispatch

/// The one door to the C kernels: every call checks its shapes (a mismatch
/// is a programmer error and stops with a message) and forwards to
/// `prorl_kernels.h`. Semantics, formulas and accumulate-vs-write rules are
/// the header's; backward calls accumulate into gradients.
public enum Kernels {
    // MARK: Profiling

    /// When on, every call's wall time is added to ``profile`` under the
    /// kernel's name (for benchmarks; off by default, free when off).
    nonisolated(unsafe) public static var profiling = false
    /// Milliseconds and calls per kernel since the last ``resetProfile()``.
    nonisolated(unsafe) public static private(set) var profile: [String: (ms: Double, calls: Int)] = [:]

    public static func resetProfile() { profile = [:] }

    @inline(__always)
    static func timed<T>(_ name: String, _ body: () -> T) -> T {
        guard profiling else { return body() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        let r = body()
        let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
        let old = profile[name] ?? (0, 0)
        profile[name] = (old.ms + ms, old.calls + 1)
        return r
    }

    // MARK: Threads and SIMD

    /// Threads the kernels use (≥ 1). Setting 0 means one per core.
    public static var threads: Int {
        get { Int(pk_get_num_threads()) }
        set { pk_set_num_threads(Int32(newValue)) }
    }

    /// Whether the kernels were built with OpenMP.
    public static var openMP: Bool { pk_openmp_enabled() != 0 }

    /// SIMD level in use (0 scalar, 1 AVX2, 2 AVX-512); setting clamps to
    /// what the CPU supports.
    public static var simdLevel: Int {
        get { Int(pk_get_simd_level()) }
        set { pk_set_simd_level(Int32(newValue)) }
    }

    /// The precision of matrix products on this thread: every GEMM (linear
    /// layers forward and backward, the models' other products) takes bf16
    /// operands with fp32 accumulation under `.bf16` where the CPU has
    /// AVX512-BF16 (else fp32). Weights, gradients and optimizer stay fp32.
    public static var precision: Precision {
        get { pk_get_precision() == Int32(PK_PRECISION_BF16) ? .bf16 : .fp32 }
        set { pk_set_precision(newValue == .bf16 ? Int32(PK_PRECISION_BF16) : Int32(PK_PRECISION_FP32)) }
    }

    /// Whether `.bf16` products run in bf16 on this CPU (AVX512-BF16).
    public static var bf16Available: Bool { pk_gemm_bf16_available() != 0 }

    /// Runs `body` with products at `p`, then restores the setting.
    public static func withPrecision<T>(_ p: Precision, _ body: () throws -> T) rethrows -> T {
        let saved = precision
        precision = p
        defer { precision = saved }
        return try body()
    }

    /// Name of the SIMD level in use.
    public static var simdName: String { String(cString: pk_simd_name(pk_get_simd_level())) }

    // MARK: GEMM and linear layers

    /// `c = alpha·op(a)·op(b) + beta·c` with `op` a transpose when asked.
    public static func gemm(transposeA: Bool = false, transposeB: Bool = false, _ a: Tensor, _ b: Tensor,
                            into c: Tensor, alpha: Float = 1, beta: Float = 0) {
        let (m, k) = transposeA ? (a.cols, a.rows) : (a.rows, a.cols)
        let (kb, n) = transposeB ? (b.cols, b.rows) : (b.rows, b.cols)
        precondition(k == kb, "gemm inner dimensions \(k) and \(kb) differ")
        precondition(c.rows == m && c.cols == n, "gemm output [\(c.rows), \(c.cols)], expected [\(m), \(n)]")
        timed("gemm") {
            pk_gemm(transposeA ? 1 : 0, transposeB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha,
                    a.base, Int32(a.cols), b.base, Int32(b.cols), beta, c.base, Int32(c.cols))
        }
    }

    /// `out[N,O] = input[N,I]·weight[O,I]ᵀ + bias[O]`.
    public static func linearForward(out: Tensor, input: Tensor, weight: Tensor, bias: Tensor? = nil) {
        checkLinear(out: out, input: input, weight: weight, bias: bias)
        timed("matmul_fwd") {
            pk_matmul_fwd(out.base, input.base, weight.base, bias?.base, Int32(input.rows), Int32(input.cols),
                          Int32(weight.rows))
        }
    }

    /// Accumulates `dInput += dOut·weight`, `dWeight += dOutᵀ·input`, `dBias += Σ dOut`.
    /// With `overwriteInput`, dInput is written (`= dOut·weight`) instead of
    /// accumulated, which spares zeroing it first.
    public static func linearBackward(dInput: Tensor?, dWeight: Tensor?, dBias: Tensor?, dOut: Tensor,
                                      input: Tensor, weight: Tensor, overwriteInput: Bool = false) {
        checkLinear(out: dOut, input: input, weight: weight, bias: dBias)
        if let d = dInput { precondition(d.rows == input.rows && d.cols == input.cols, "dInput shape") }
        if let d = dWeight { precondition(d.rows == weight.rows && d.cols == weight.cols, "dWeight shape") }
        timed("matmul_bwd") {
            if overwriteInput, let d = dInput {
                pk_gemm(0, 0, Int32(input.rows), Int32(input.cols), Int32(weight.rows), 1, dOut.base, Int32(weight.rows),
                        weight.base, Int32(weight.cols), 0, d.base, Int32(d.cols))
            }
            pk_matmul_bwd(overwriteInput ? nil : dInput?.base, dWeight?.base, dBias?.base, dOut.base, input.base,
                          weight.base, Int32(input.rows), Int32(input.cols), Int32(weight.rows))
        }
    }

    private static func checkLinear(out: Tensor, input: Tensor, weight: Tensor, bias: Tensor?) {
        precondition(weight.cols == input.cols, "linear: input width \(input.cols), weight [\(weight.rows), \(weight.cols)]")
        precondition(out.rows == input.rows && out.cols == weight.rows,
                     "linear: output [\(out.rows), \(out.cols)], expected [\(input.rows), \(weight.rows)]")
        if let b = bias { precondition(b.count == weight.rows, "linear: bias of \(b.count), expected \(weight.rows)") }
    }

    /// `sums[C] += Σ_n x[n, C]`.
    public static func columnSum(_ x: Tensor, into sums: Tensor) {
        precondition(sums.count == x.cols, "column sum into \(sums.count), expected \(x.cols)")
        timed("column_sum") {
            pk_column_sum(sums.base, x.base, Int32(x.rows), Int32(x.cols))
        }
    }

    // MARK: Attention

    /// Forward attention; see ``AttentionCall``.
    public static func attentionForward(_ call: AttentionCall, out: Tensor, probs: Tensor, scratch: Tensor?) {
        call.check(out: out, probs: probs, scratch: scratch, needScratch: call.dropout > 0)
        call.withDescriptor { d in
            timed("attention_fwd") {
                pk_attention_fwd(out.base + call.outOffset, probs.base, scratch?.base, call.q.base + call.qOffset,
                                 call.k.base + call.kOffset, call.v.base + call.vOffset, d)
            }
        }
    }

    /// Backward attention, accumulating into the gradients (same layouts as
    /// q, k, v); `dBias` `[H, Tq·Tk]` sums over the batch.
    public static func attentionBackward(_ call: AttentionCall, dQ: Tensor?, dK: Tensor?, dV: Tensor?,
                                         dBias: Tensor?, scratch: Tensor, dOut: Tensor, probs: Tensor) {
        call.check(out: dOut, probs: probs, scratch: scratch, needScratch: true)
        if let g = dQ { precondition(g.count == call.q.count, "dQ shape") }
        if let g = dK { precondition(g.count == call.k.count, "dK shape") }
        if let g = dV { precondition(g.count == call.v.count, "dV shape") }
        if let g = dBias { precondition(g.count == call.heads * call.queryLength * call.keyLength, "dBias shape") }
        call.withDescriptor { d in
            timed("attention_bwd") {
                pk_attention_bwd(dQ.map { $0.base + call.qOffset }, dK.map { $0.base + call.kOffset },
                                 dV.map { $0.base + call.vOffset }, dBias?.base, scratch.base,
                                 dOut.base + call.outOffset, probs.base, call.q.base + call.qOffset,
                                 call.k.base + call.kOffset, call.v.base + call.vOffset, d)
            }
        }
    }

    /// One decoding step against key/value caches (`call.queryLength` must be 1).
    public static func attentionDecode(_ call: AttentionCall, out: Tensor) {
        precondition(call.queryLength == 1 && !call.causal, "decode takes one query and no causal mask")
        precondition(out.count >= call.outOffset + (call.batch - 1) * call.outStride + call.heads * call.headWidth,
                     "decode output too small")
        call.withDescriptor { d in
            timed("attention_decode") {
                pk_attention_decode(out.base + call.outOffset, call.q.base + call.qOffset, call.k.base + call.kOffset,
                                    call.v.base + call.vOffset, d)
            }
        }
    }

    /// `bias[h, i·Tk + j] = table[buckets[i·Tk + j], h]`.
    public static func positionBiasForward(bias: Tensor, table: Tensor, buckets: [Int32], heads: Int,
                                           queryLength: Int, keyLength: Int) {
        precondition(buckets.count == queryLength * keyLength && table.cols == heads
                     && bias.count == heads * queryLength * keyLength, "position bias shapes")
        buckets.withUnsafeBufferPointer { b in
            timed("position_bias_fwd") {
                pk_position_bias_fwd(bias.base, table.base, b.baseAddress, Int32(heads), Int32(queryLength),
                                     Int32(keyLength))
            }
        }
    }

    /// `dTable[buckets[i·Tk + j], h] += dBias[h, i·Tk + j]`.
    public static func positionBiasBackward(dTable: Tensor, dBias: Tensor, buckets: [Int32], heads: Int,
                                            queryLength: Int, keyLength: Int) {
        precondition(buckets.count == queryLength * keyLength && dTable.cols == heads
                     && dBias.count == heads * queryLength * keyLength, "position bias shapes")
        buckets.withUnsafeBufferPointer { b in
            timed("position_bias_bwd") {
                pk_position_bias_bwd(dTable.base, dBias.base, b.baseAddress, Int32(dTable.rows), Int32(heads),
                                     Int32(queryLength), Int32(keyLength))
            }
        }
    }

    // MARK: Softmax and cross-entropy

    /// Row-wise log-softmax; `mask` (one byte per element, nil = all) hides entries.
    public static func logSoftmax(_ input: Tensor, into out: Tensor, mask: UnsafePointer<UInt8>? = nil) {
        precondition(input.rows == out.rows && input.cols == out.cols, "log-softmax shapes")
        timed("log_softmax_fwd") {
            pk_log_softmax_fwd(out.base, input.base, mask, Int32(input.rows), Int32(input.cols))
        }
    }

    /// Row-wise softmax; `mask` as for ``logSoftmax(_:into:mask:)``.
    public static func softmax(_ input: Tensor, into out: Tensor, mask: UnsafePointer<UInt8>? = nil) {
        precondition(input.rows == out.rows && input.cols == out.cols, "softmax shapes")
        timed("softmax_fwd") {
            pk_softmax_fwd(out.base, input.base, mask, Int32(input.rows), Int32(input.cols))
        }
    }

    /// Fused cross-entropy: per-row `losses`, optional `dLogits` (written,
    /// may alias `logits`) scaled by `rowWeights[n]` or `scale`, optional
    /// `entropy`. Rows whose target is `ignoreIndex` give zeros.
    public static func crossEntropy(logits: Tensor, targets: UnsafePointer<Int32>, losses: Tensor,
                                    dLogits: Tensor?, entropy: Tensor? = nil, rowWeights: Tensor? = nil,
                                    scale: Float = 1, ignoreIndex: Int32 = -100) {
        precondition(losses.count == logits.rows, "cross-entropy: \(losses.count) losses for \(logits.rows) rows")
        if let d = dLogits { precondition(d.count == logits.count, "cross-entropy: dLogits shape") }
        if let e = entropy { precondition(e.count == logits.rows, "cross-entropy: entropy shape") }
        if let w = rowWeights { precondition(w.count == logits.rows, "cross-entropy: row weights shape") }
        timed("crossentropy") {
            pk_crossentropy(losses.base, dLogits?.base, entropy?.base, logits.base, targets, rowWeights?.base, scale,
                            Int32(logits.rows), Int32(logits.cols), ignoreIndex)
        }
    }

    /// Restricts logits `[N, C]` to a support in place: entries where
    /// `mask[n·C + c] == 0` become −1e30 (probability 0 downstream).
    public static func maskFill(_ x: Tensor, mask: UnsafePointer<UInt8>) {
        timed("mask_fill") { pk_mask_fill(x.base, mask, Int32(x.rows), Int32(x.cols)) }
    }

    /// Exact `KL(softmax(logits) ‖ softmax(reference))` per row over the
    /// support `mask` (nil: all), into `kl` `[N]`; with `dLogits`, its
    /// gradient with respect to `logits` times `rowWeights[n]` (or `scale`),
    /// written (may alias `reference` or `logits`).
    public static func klCategorical(kl: Tensor, dLogits: Tensor?, logits: Tensor, reference: Tensor,
                                     mask: UnsafePointer<UInt8>?, rowWeights: Tensor? = nil, scale: Float = 1) {
        precondition(reference.rows == logits.rows && reference.cols == logits.cols && kl.count == logits.rows,
                     "kl shapes")
        if let d = dLogits { precondition(d.count == logits.count, "kl: dLogits shape") }
        if let w = rowWeights { precondition(w.count == logits.rows, "kl: row weights shape") }
        timed("kl_categorical") {
            pk_kl_categorical(kl.base, dLogits?.base, logits.base, reference.base, mask, rowWeights?.base, scale,
                              Int32(logits.rows), Int32(logits.cols))
        }
    }

    // MARK: GRU

    /// One GRU layer's recurrence, time-major (row t·B + b): `gi` `[T·B, 3H]`
    /// = x·W_ihᵀ, `wHH` `[3H, H]`; `h` `[(T+1)·B, H]` with the initial state
    /// in rows 0..<B; `gates` `[T·B, 4H]` saved for the backward. `counts[t]`:
    /// sequences (sorted longest first) still running at step t.
    public static func gruForward(h: Tensor, gates: Tensor, gi: Tensor, wHH: Tensor, counts: UnsafePointer<Int32>,
                                  steps: Int, batch: Int) {
        let H = wHH.cols
        precondition(wHH.rows == 3 * H && gi.rows == steps * batch && gi.cols == 3 * H
                     && h.rows == (steps + 1) * batch && h.cols == H && gates.rows == steps * batch && gates.cols == 4 * H,
                     "gru forward shapes")
        let ok = timed("gru_fwd") {
            pk_gru_fwd(h.base, gates.base, gi.base, wHH.base, counts, Int32(steps), Int32(batch), Int32(H))
        }
        precondition(ok == 1, "gru forward: counts must be non-increasing and ≤ batch")
    }

    /// Backpropagation through time: `dh` `[T·B, H]` (in: gradient from
    /// above; out: total), writes `dgi` and the recurrent-product gradient
    /// `dgh` (`[T·B, 3H]`), accumulates `dWHH`.
    public static func gruBackward(dgi: Tensor, dgh: Tensor, dWHH: Tensor, dh: Tensor, h: Tensor, gates: Tensor,
                                   wHH: Tensor, counts: UnsafePointer<Int32>, steps: Int, batch: Int) {
        let H = wHH.cols
        precondition(dgi.rows == steps * batch && dgi.cols == 3 * H && dgh.rows == dgi.rows && dgh.cols == 3 * H
                     && dh.rows == steps * batch && dh.cols == H && dWHH.count == wHH.count, "gru backward shapes")
        let ok = timed("gru_bwd") {
            pk_gru_bwd(dgi.base, dgh.base, dWHH.base, dh.base, nil, h.base, gates.base, wHH.base, counts, Int32(steps),
                       Int32(batch), Int32(H))
        }
        precondition(ok == 1, "gru backward: counts must be non-increasing and ≤ batch")
    }

    // MARK: Normalisation

    /// T5 RMSNorm forward; saves `rstd[N]`.
    public static func rmsNormForward(out: Tensor, rstd: Tensor, input: Tensor, weight: Tensor, eps: Float) {
        precondition(out.count == input.count && rstd.count == input.rows && weight.count == input.cols,
                     "rmsnorm shapes")
        timed("rmsnorm_fwd") {
            pk_rmsnorm_fwd(out.base, rstd.base, input.base, weight.base, Int32(input.rows), Int32(input.cols), eps)
        }
    }

    /// T5 RMSNorm backward (accumulates).
    public static func rmsNormBackward(dInput: Tensor?, dWeight: Tensor?, dOut: Tensor, input: Tensor,
                                       weight: Tensor, rstd: Tensor) {
        precondition(dOut.count == input.count && rstd.count == input.rows && weight.count == input.cols,
                     "rmsnorm backward shapes")
        timed("rmsnorm_bwd") {
            pk_rmsnorm_bwd(dInput?.base, dWeight?.base, dOut.base, input.base, weight.base, rstd.base,
                           Int32(input.rows), Int32(input.cols))
        }
    }

    /// LayerNorm forward; saves `mean[N]`, `rstd[N]`.
    public static func layerNormForward(out: Tensor, mean: Tensor, rstd: Tensor, input: Tensor, weight: Tensor,
                                        bias: Tensor, eps: Float) {
        precondition(out.count == input.count && mean.count == input.rows && rstd.count == input.rows
                     && weight.count == input.cols && bias.count == input.cols, "layernorm shapes")
        timed("layernorm_fwd") {
            pk_layernorm_fwd(out.base, mean.base, rstd.base, input.base, weight.base, bias.base, Int32(input.rows),
                             Int32(input.cols), eps)
        }
    }

    /// LayerNorm backward (accumulates).
    public static func layerNormBackward(dInput: Tensor?, dWeight: Tensor?, dBias: Tensor?, dOut: Tensor,
                                         input: Tensor, weight: Tensor, mean: Tensor, rstd: Tensor) {
        precondition(dOut.count == input.count && mean.count == input.rows && rstd.count == input.rows,
                     "layernorm backward shapes")
        timed("layernorm_bwd") {
            pk_layernorm_bwd(dInput?.base, dWeight?.base, dBias?.base, dOut.base, input.base, weight.base, mean.base,
                             rstd.base, Int32(input.rows), Int32(input.cols))
        }
    }

    // MARK: Elementwise

    public static func reluForward(_ input: Tensor, into out: Tensor) {
        precondition(input.count == out.count, "relu shapes")
        timed("relu_fwd") {
            pk_relu_fwd(out.base, input.base, input.count)
        }
    }

    /// `dInput += dOut · [out > 0]`.
    public static func reluBackward(dInput: Tensor, dOut: Tensor, out: Tensor) {
        precondition(dInput.count == dOut.count && out.count == dOut.count, "relu backward shapes")
        timed("relu_bwd") {
            pk_relu_bwd(dInput.base, dOut.base, out.base, dOut.count)
        }
    }

    /// In place `d ← out > 0 ? d · scale : 0` (ReLU then inverted dropout,
    /// backward, from the dropped output).
    public static func reluBackwardInPlace(_ d: Tensor, out: Tensor, scale: Float = 1) {
        precondition(d.count == out.count, "relu backward shapes")
        timed("relu_bwd_inplace") {
            pk_relu_bwd_inplace(d.base, out.base, scale, d.count)
        }
    }

    public static func geluForward(_ input: Tensor, into out: Tensor) {
        precondition(input.count == out.count, "gelu shapes")
        timed("gelu_fwd") {
            pk_gelu_fwd(out.base, input.base, input.count)
        }
    }

    public static func geluBackward(dInput: Tensor, dOut: Tensor, input: Tensor) {
        precondition(dInput.count == dOut.count && input.count == dOut.count, "gelu backward shapes")
        timed("gelu_bwd") {
            pk_gelu_bwd(dInput.base, dOut.base, input.base, dOut.count)
        }
    }

    /// `out = a + b`.
    public static func add(_ a: Tensor, _ b: Tensor, into out: Tensor) {
        precondition(a.count == b.count && out.count == a.count, "add shapes")
        timed("add") {
            pk_add(out.base, a.base, b.base, a.count)
        }
    }

    /// `y += alpha·x`.
    public static func axpy(_ x: Tensor, alpha: Float = 1, into y: Tensor) {
        precondition(x.count == y.count, "axpy shapes")
        timed("axpy") {
            pk_axpy(y.base, x.base, alpha, x.count)
        }
    }

    /// `x *= alpha`.
    public static func scale(_ x: Tensor, by alpha: Float) { pk_scale(x.base, alpha, x.count) }

    // MARK: Embeddings and dropout

    /// `out[n] = scale·table[ids[n]]`.
    public static func embeddingForward(out: Tensor, table: Tensor, ids: UnsafePointer<Int32>, scale: Float = 1) {
        precondition(out.cols == table.cols, "embedding widths \(out.cols) and \(table.cols)")
        timed("embedding_fwd") {
            pk_embedding_fwd(out.base, table.base, ids, scale, Int32(out.rows), Int32(out.cols))
        }
    }

    /// `dTable[ids[n]] += scale·dOut[n]`.
    public static func embeddingBackward(dTable: Tensor, dOut: Tensor, ids: UnsafePointer<Int32>, scale: Float = 1) {
        precondition(dOut.cols == dTable.cols, "embedding widths \(dOut.cols) and \(dTable.cols)")
        timed("embedding_bwd") {
            pk_embedding_bwd(dTable.base, dOut.base, ids, scale, Int32(dOut.rows), Int32(dOut.cols))
        }
    }

    /// Inverted dropout from stream `(seed, stream)`; in place allowed.
    public static func dropoutForward(_ input: Tensor, into out: Tensor, p: Float, seed: UInt64, stream: UInt64) {
        precondition(input.count == out.count, "dropout shapes")
        timed("dropout_fwd") {
            pk_dropout_fwd(out.base, input.base, input.count, p, seed, stream)
        }
    }

    /// `dInput += mask · dOut / (1 − p)` with the forward's mask.
    public static func dropoutBackward(dInput: Tensor, dOut: Tensor, p: Float, seed: UInt64, stream: UInt64) {
        precondition(dInput.count == dOut.count, "dropout backward shapes")
        timed("dropout_bwd") {
            pk_dropout_bwd(dInput.base, dOut.base, dOut.count, p, seed, stream)
        }
    }

    /// Uniform float in [0, 1) for element `index` of stream `(seed, stream)`.
    public static func uniform(seed: UInt64, stream: UInt64, index: UInt64) -> Float {
        pk_uniform(seed, stream, index)
    }

    // MARK: Optimiser

    /// One AdamW step over flat arrays (torch.optim.AdamW semantics).
    public static func adamW(params: Tensor, m: Tensor, v: Tensor, grads: Tensor, lr: Float, beta1: Float,
                             beta2: Float, eps: Float, weightDecay: Float, step: Int) {
        precondition(params.count == grads.count && m.count == grads.count && v.count == grads.count,
                     "adamw shapes")
        precondition(step >= 1, "adamw step counts from 1")
        timed("adamw") {
            pk_adamw(params.base, m.base, v.base, grads.base, grads.count, lr, beta1, beta2, eps, weightDecay,
                     Int32(step))
        }
    }

    /// Σ x² in double, in a fixed order.
    public static func sumOfSquares(_ x: Tensor) -> Double { pk_sum_squares(x.base, x.count) }

    /// Global-norm clipping; returns the norm before clipping.
    @discardableResult
    public static func clipGradientNorm(_ grads: Tensor, maxNorm: Float) -> Float {
        pk_clip_grad_norm(grads.base, grads.count, maxNorm)
    }

    // MARK: Item scoring

    /// `logits[B,V] = states[B,C]·items[V,C]ᵀ`.
    public static func scoreLogits(states: Tensor, items: Tensor, into logits: Tensor) {
        precondition(states.cols == items.cols && logits.rows == states.rows && logits.cols == items.rows,
                     "score logits shapes")
        timed("score_logits") {
            pk_score_logits(logits.base, states.base, items.base, Int32(states.rows), Int32(items.rows),
                            Int32(items.cols))
        }
    }

    /// Per row: log-sum-exp over all items, the target's score and its rank
    /// (1 + items scoring strictly higher), without materialising `[B,V]`.
    public static func scoreStatistics(states: Tensor, items: Tensor, targets: UnsafePointer<Int32>?,
                                       logSumExp: Tensor?, targetScore: Tensor?, rank: UnsafeMutablePointer<Int32>?) {
        precondition(states.cols == items.cols, "score statistics widths")
        if let t = logSumExp { precondition(t.count == states.rows, "lse shape") }
        if let t = targetScore { precondition(t.count == states.rows, "target score shape") }
        precondition(targets != nil || (targetScore == nil && rank == nil), "target score and rank need targets")
        timed("score_stats") {
            pk_score_stats(logSumExp?.base, targetScore?.base, rank, states.base, items.base, targets,
                           Int32(states.rows), Int32(items.rows), Int32(items.cols))
        }
    }

    /// `out[b] = states[b]·items[ids[b]]`, the same fused-multiply-add chain
    /// as the target scores.
    public static func scorePairs(states: Tensor, items: Tensor, ids: UnsafePointer<Int32>, into out: Tensor) {
        precondition(states.cols == items.cols && out.count == states.rows, "score pairs shapes")
        timed("score_pairs") {
            pk_score_pairs(out.base, states.base, items.base, ids, Int32(states.rows), Int32(items.cols))
        }
    }
}

/// One attention call: where q, k and v live and the shape of the problem.
/// q, k, v are tensors whose rows hold positions (`[B·Tq, ·]` for q,
/// `[E·Tk_cap, ·]` for k and v) with heads interleaved from a column
/// offset, as a fused projection writes them. See `pk_attention_desc`.
public struct AttentionCall {
    public var q: Tensor, qOffset: Int
    public var k: Tensor, kOffset: Int
    public var v: Tensor, vOffset: Int
    /// Column offset of the output within its rows (out stride = out.cols).
    public var outOffset = 0
    public var batch: Int
    /// Query rows per key/value entry (G rollouts sharing one encoder output).
    public var kvGroup = 1
    public var queryLength: Int
    public var keyLength: Int
    /// Rows per entry in k/v (≥ keyLength; a cache's capacity).
    public var keyCapacity: Int
    public var heads: Int
    public var headWidth: Int
    public var outStride: Int
    public var causal = false
    public var scale: Float = 1
    public var bias: Tensor? = nil
    public var keyLengths: UnsafePointer<Int32>? = nil
    public var queryLengths: UnsafePointer<Int32>? = nil
    /// Packed rows: first row of each batch entry's queries (and outputs) /
    /// of each kv entry's keys and values; nil = `b·Tq` / `e·keyCapacity`.
    public var queryRows: UnsafePointer<Int32>? = nil
    public var keyRows: UnsafePointer<Int32>? = nil
    public var dropout: Float = 0
    public var seed: UInt64 = 0
    public var stream: UInt64 = 0

    public init(q: Tensor, qOffset: Int, k: Tensor, kOffset: Int, v: Tensor, vOffset: Int, batch: Int,
                queryLength: Int, keyLength: Int, keyCapacity: Int? = nil, heads: Int, headWidth: Int,
                outStride: Int) {
        self.q = q; self.qOffset = qOffset
        self.k = k; self.kOffset = kOffset
        self.v = v; self.vOffset = vOffset
        self.batch = batch
        self.queryLength = queryLength
        self.keyLength = keyLength
        self.keyCapacity = keyCapacity ?? keyLength
        self.heads = heads
        self.headWidth = headWidth
        self.outStride = outStride
    }

    func check(out: Tensor, probs: Tensor, scratch: Tensor?, needScratch: Bool) {
        let width = heads * headWidth
        let entries = (batch + kvGroup - 1) / kvGroup
        precondition(keyCapacity >= keyLength, "attention: key capacity \(keyCapacity) < key length \(keyLength)")
        precondition(qOffset + width <= q.cols && kOffset + width <= k.cols && vOffset + width <= v.cols,
                     "attention: heads exceed the q/k/v rows")
        if queryRows == nil {
            precondition(q.rows >= batch * queryLength, "attention: q too small")
            precondition(outOffset + width <= outStride && out.count >= batch * queryLength * outStride,
                         "attention: output too small")
        }
        if keyRows == nil {
            precondition(k.rows >= entries * keyCapacity && v.rows >= entries * keyCapacity, "attention: k/v too small")
        }
        // probabilities: [B,H,Tq,Tk], or [rows,H,Tk] over packed query rows
        let slabs = (queryRows == nil ? batch * queryLength : q.rows) * heads * keyLength
        precondition(probs.count >= slabs, "attention: probabilities need \(slabs) floats")
        if needScratch { precondition((scratch?.count ?? 0) >= slabs, "attention: scratch needs \(slabs) floats") }
        if let b = bias { precondition(b.count == heads * queryLength * keyLength, "attention: bias shape") }
    }

    func withDescriptor(_ body: (UnsafePointer<pk_attention_desc>) -> Void) {
        var d = pk_attention_desc(
            B: Int32(batch), kv_group: Int32(kvGroup), Tq: Int32(queryLength), Tk: Int32(keyLength),
            Tk_cap: Int32(keyCapacity), H: Int32(heads), D: Int32(headWidth), q_stride: Int32(q.cols),
            kv_stride: Int32(k.cols), out_stride: Int32(outStride), kv_len: keyLengths, q_len: queryLengths,
            q_rows: queryRows, kv_rows: keyRows, causal: causal ? 1 : 0, scale: scale, bias: bias.map { UnsafePointer($0.base) }, dropout_p: dropout,
            seed: seed, stream: stream)
        precondition(k.cols == v.cols, "attention: k and v must share a row stride")
        withUnsafePointer(to: &d) { body($0) }
    }
}

/// The precision of matrix products (``Kernels/precision``).
public enum Precision: String, Codable, Sendable, CaseIterable {
    /// fp32 operands and products.
    case fp32
    /// bf16 operands (rounded from fp32), fp32 accumulation: mixed precision.
    case bf16

    /// The process default: `.bf16` when the environment variable
    /// `PRORL_PRECISION` is `bf16`, else `.fp32` — what a thread has until it
    /// sets ``Kernels/precision``, and the default of every training setting.
    public static var processDefault: Precision { pk_default_precision() == Int32(PK_PRECISION_BF16) ? .bf16 : .fp32 }

    /// Checks `PRORL_PRECISION` (unset, `fp32` or `bf16`); the kernels read
    /// any other value as fp32, so commands refuse it with this error first.
    public static func checkEnvironment() throws {
        guard let value = ProcessInfo.processInfo.environment["PRORL_PRECISION"] else { return }
        guard Precision(rawValue: value) != nil else {
            throw DataError(file: "environment variable PRORL_PRECISION", "expected fp32 or bf16, found '\(value)'",
                            kind: .invalidArgument)
        }
    }
}
