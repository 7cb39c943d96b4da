import Foundation

/// The encoder stack of a ``T5Policy``: forward (and, for training,
/// backward) over P prompts of up to S tokens, right-padded. Shared by the
/// teacher-forced pass and the decoder; its arena is sized once.
public final class T5EncoderPass: @unchecked Sendable {
    public let model: T5Policy
    public let maxPrompts: Int
    public let maxLength: Int
    private let arena: Arena
    private let tokens, lengths: Int32Buffer
    /// Saved per layer. The norms' outputs and the feed-forward activations
    /// (ReLU, then dropout from the same stream) are recomputed in backward.
    private struct Activations { var x, rstd0, qkv, probs, ctx, x1, rstd1: Tensor }
    private var acts: [Activations] = []
    private var finalIn: Tensor? = nil, out: Tensor? = nil, rstd: Tensor? = nil, bias: Tensor? = nil
    /// Forward temporaries, reused by backward.
    private var normedTemp: Tensor? = nil, ffTemp: Tensor? = nil
    private var buckets: [Int32] = []
    private var prompts = 0, length = 0
    private var training = false, seed: UInt64 = 0, step: UInt64 = 0
    private var forwardEnd: Arena.Mark? = nil

    public init(model: T5Policy, maxPrompts: Int, maxLength: Int) {
        self.model = model
        self.maxPrompts = maxPrompts
        self.maxLength = maxLength
        arena = Arena(capacity: T5EncoderPass.floatsNeeded(model.config, prompts: maxPrompts, length: maxLength))
        tokens = Int32Buffer(capacity: maxPrompts * maxLength)
        lengths = Int32Buffer(capacity: maxPrompts)
    }

    static func floatsNeeded(_ c: T5Config, prompts: Int, length: Int) -> Int {
        let C = c.modelWidth, I = c.inner, F = c.ffWidth, H = c.heads, S = length, ES = prompts * S
        let slab = prompts * H * S * S
        let forward = ES * (C + c.encoderLayers * (5 * C + 2 + 4 * I + F) + C + 1) + (c.encoderLayers + 1) * slab + H * S * S
        let backward = ES * (4 * C + 4 * I + F) + slab + H * S * S
        return forward + backward + 16 * (24 + 16 * c.encoderLayers)
    }

    /// Encoder output `[P·S, C]` (the final norm, then dropout when
    /// training) for `tokens` `[P·S]` with `lengths` `[P]` real tokens.
    @discardableResult
    public func forward(tokens t: [Int32], lengths l: [Int32], prompts P: Int, length S: Int, training: Bool,
                        seed: UInt64 = 0, step: UInt64 = 0) -> Tensor {
        let c = model.config, s = model.store
        let C = c.modelWidth, I = c.inner, H = c.heads, ES = P * S
        precondition(P <= maxPrompts && S <= maxLength, "encoder batch \(P) × \(S) exceeds \(maxPrompts) × \(maxLength)")
        arena.reset()
        prompts = P
        length = S
        self.training = training
        self.seed = seed
        self.step = step
        tokens.set(t)
        lengths.set(l)
        if buckets.count != S * S { buckets = c.buckets(queryLength: S, keyLength: S, bidirectional: true) }
        let b = arena.take(rows: H, cols: S * S)
        Kernels.positionBiasForward(bias: b, table: s.value(model.encoderBias), buckets: buckets, heads: H, queryLength: S, keyLength: S)
        bias = b
        let scratch = arena.take(rows: 1, cols: P * H * S * S)
        let normed = arena.take(rows: ES, cols: C), ff = arena.take(rows: ES, cols: c.ffWidth)
        normedTemp = normed
        ffTemp = ff
        var x = arena.take(rows: ES, cols: C)
        Kernels.embeddingForward(out: x, table: model.embedding, ids: tokens.base)
        dropout(x, site: 0)
        acts.removeAll(keepingCapacity: true)
        for (l, p) in model.encoder.enumerated() {
            let n0 = normed, rstd0 = arena.take(rows: ES, cols: 1)
            Kernels.rmsNormForward(out: n0, rstd: rstd0, input: x, weight: s.value(p.ln0), eps: c.layerNormEps)
            let qkv = arena.take(rows: ES, cols: 3 * I)
            Kernels.linearForward(out: qkv, input: n0, weight: s.fusedValue([p.q, p.k, p.v]))
            let probs = arena.take(rows: 1, cols: P * H * S * S), ctx = arena.take(rows: ES, cols: I)
            Kernels.attentionForward(selfCall(qkv, layer: l), out: ctx, probs: probs, scratch: scratch)
            let x1 = arena.take(rows: ES, cols: C)
            Kernels.linearForward(out: x1, input: ctx, weight: s.value(p.o))
            dropout(x1, site: 2 + 8 * l)
            Kernels.add(x1, x, into: x1)
            let rstd1 = arena.take(rows: ES, cols: 1)
            feedForwardActivations(into: ff, normed: normed, rstd: rstd1, input: x1, layer: l)
            let x2 = arena.take(rows: ES, cols: C)
            Kernels.linearForward(out: x2, input: ff, weight: s.value(p.wo))
            dropout(x2, site: 4 + 8 * l)
            Kernels.add(x2, x1, into: x2)
            acts.append(Activations(x: x, rstd0: rstd0, qkv: qkv, probs: probs, ctx: ctx, x1: x1, rstd1: rstd1))
            x = x2
        }
        let eo = arena.take(rows: ES, cols: C), er = arena.take(rows: ES, cols: 1)
        Kernels.rmsNormForward(out: eo, rstd: er, input: x, weight: s.value(model.encoderFinal), eps: c.layerNormEps)
        dropout(eo, site: 200)
        finalIn = x
        out = eo
        rstd = er
        forwardEnd = arena.mark
        return eo
    }

    /// normed = RMSNorm(input) and ff = dropout(relu(normed · Wiᵀ)) of layer
    /// `l` (forward, and again in backward: same dropout stream, same values).
    private func feedForwardActivations(into ff: Tensor, normed: Tensor, rstd: Tensor, input: Tensor, layer l: Int) {
        let c = model.config, s = model.store, p = model.encoder[l]
        Kernels.rmsNormForward(out: normed, rstd: rstd, input: input, weight: s.value(p.ln1), eps: c.layerNormEps)
        Kernels.linearForward(out: ff, input: normed, weight: s.value(p.wi))
        Kernels.reluForward(ff, into: ff)
        dropout(ff, site: 3 + 8 * l)
    }

    /// The output of the last forward.
    public var output: Tensor { out! }
    /// Per-prompt lengths of the last forward (for attention masks).
    public var lengthPointer: UnsafePointer<Int32> { UnsafePointer(lengths.base) }

    /// Accumulates parameter gradients given `dOut` `[P·S, C]`.
    public func backward(_ dOut: Tensor) {
        let c = model.config, s = model.store
        let C = c.modelWidth, I = c.inner, H = c.heads, P = prompts, S = length, ES = P * S
        arena.rewind(to: forwardEnd!)
        // dT (through a dropout) and dN (into a norm) are never live together
        let dX = arena.zeros(rows: ES, cols: C), dT = arena.take(rows: ES, cols: C), dN = dT
        let normed = normedTemp!, ff = ffTemp!, dCtx = arena.take(rows: ES, cols: I)
        // dQKV and dF are never live together: one buffer
        let shared = arena.take(rows: 1, cols: ES * max(3 * I, c.ffWidth))
        let dQKV = Tensor(shared.base, rows: ES, cols: 3 * I), dF = Tensor(shared.base, rows: ES, cols: c.ffWidth)
        let dScratch = arena.take(rows: 1, cols: P * H * S * S), dBias = arena.zeros(rows: H, cols: S * S)
        dropoutGradient(into: dT, dOut, site: 200)
        Kernels.rmsNormBackward(dInput: dX, dWeight: s.grad(model.encoderFinal), dOut: dT, input: finalIn!,
                                weight: s.value(model.encoderFinal), rstd: rstd!)
        for (l, p) in model.encoder.enumerated().reversed() {
            let a = acts[l]
            dropoutGradient(into: dT, dX, site: 4 + 8 * l)
            feedForwardActivations(into: ff, normed: normed, rstd: a.rstd1, input: a.x1, layer: l)
            Kernels.linearBackward(dInput: dF, dWeight: s.grad(p.wo), dBias: nil, dOut: dT, input: ff, weight: s.value(p.wo), overwriteInput: true)
            Kernels.reluBackwardInPlace(dF, out: ff, scale: 1 / (1 - dropoutRate))
            Kernels.linearBackward(dInput: dN, dWeight: s.grad(p.wi), dBias: nil, dOut: dF, input: normed, weight: s.value(p.wi), overwriteInput: true)
            Kernels.rmsNormBackward(dInput: dX, dWeight: s.grad(p.ln1), dOut: dN, input: a.x1, weight: s.value(p.ln1), rstd: a.rstd1)
            dropoutGradient(into: dT, dX, site: 2 + 8 * l)
            Kernels.linearBackward(dInput: dCtx, dWeight: s.grad(p.o), dBias: nil, dOut: dT, input: a.ctx, weight: s.value(p.o), overwriteInput: true)
            dQKV.zero()
            Kernels.attentionBackward(selfCall(a.qkv, layer: l), dQ: dQKV, dK: dQKV, dV: dQKV, dBias: dBias,
                                      scratch: dScratch, dOut: dCtx, probs: a.probs)
            Kernels.rmsNormForward(out: normed, rstd: a.rstd0, input: a.x, weight: s.value(p.ln0), eps: c.layerNormEps)
            Kernels.linearBackward(dInput: dN, dWeight: s.fusedGrad([p.q, p.k, p.v]), dBias: nil, dOut: dQKV, input: normed,
                                   weight: s.fusedValue([p.q, p.k, p.v]), overwriteInput: true)
            Kernels.rmsNormBackward(dInput: dX, dWeight: s.grad(p.ln0), dOut: dN, input: a.x, weight: s.value(p.ln0), rstd: a.rstd0)
        }
        dropoutGradient(into: dT, dX, site: 0)
        Kernels.embeddingBackward(dTable: s.grad(model.shared), dOut: dT, ids: tokens.base)
        Kernels.positionBiasBackward(dTable: s.grad(model.encoderBias), dBias: dBias, buckets: buckets, heads: H,
                                     queryLength: S, keyLength: S)
    }

    private func selfCall(_ qkv: Tensor, layer: Int) -> AttentionCall {
        let c = model.config
        var call = AttentionCall(q: qkv, qOffset: 0, k: qkv, kOffset: c.inner, v: qkv, vOffset: 2 * c.inner,
                                 batch: prompts, queryLength: length, keyLength: length, heads: c.heads,
                                 headWidth: c.headWidth, outStride: c.inner)
        call.bias = bias
        call.keyLengths = UnsafePointer(lengths.base)
        call.queryLengths = UnsafePointer(lengths.base)
        if training && c.dropout > 0 {
            call.dropout = c.dropout
            call.seed = seed
            call.stream = T5Dropout.stream(step: step, site: 1 + 8 * layer)
        }
        return call
    }

    private var dropoutRate: Float { training ? model.config.dropout : 0 }

    private func dropout(_ t: Tensor, site: Int) {
        guard training, model.config.dropout > 0 else { return }
        Kernels.dropoutForward(t, into: t, p: model.config.dropout, seed: seed, stream: T5Dropout.stream(step: step, site: site))
    }

    /// dInput = mask · dOut (the same mask as the forward; a copy when off).
    private func dropoutGradient(into dInput: Tensor, _ dOut: Tensor, site: Int) {
        Kernels.dropoutForward(dOut, into: dInput, p: dropoutRate, seed: seed, stream: T5Dropout.stream(step: step, site: site))
    }
}

/// Dropout stream ids of the policy: one per (step, site). Sites: encoder
/// 0…199 (embedding 0; layer l: 1+8l probabilities, 2+8l attention output,
/// 3+8l feed-forward inner, 4+8l feed-forward output; final 200); decoder
/// 300… (embedding 300; layer l: 301+8l self probabilities, 302+8l self
/// output, 303+8l cross probabilities, 304+8l cross output, 305+8l inner,
/// 306+8l output; final 500).
enum T5Dropout {
    static func stream(step: UInt64, site: Int) -> UInt64 { step &* 1024 &+ UInt64(site) }
}

/// One teacher-forced forward/backward pass of a ``T5Policy`` over a
/// ``PolicyBatch``: the encoder runs once per prompt, the decoder only over
/// real (packed) tokens, and cross-attention lets the G decoder rows of a
/// prompt share its encoder output. Activations live in an arena sized once
/// for the largest batch, so passes allocate nothing.
public final class T5Pass: @unchecked Sendable {
    /// The largest batch a pass takes.
    public struct Capacity: Sendable, Equatable {
        public var prompts: Int
        public var encoderLength: Int
        public var sequences: Int
        public var decoderLength: Int
        /// Packed decoder rows (≤ sequences · decoderLength).
        public var rows: Int
        public init(prompts: Int, encoderLength: Int, sequences: Int, decoderLength: Int, rows: Int? = nil) {
            self.prompts = prompts
            self.encoderLength = encoderLength
            self.sequences = sequences
            self.decoderLength = decoderLength
            self.rows = rows ?? sequences * decoderLength
        }
    }

    public let model: T5Policy
    public let capacity: Capacity
    public let encoder: T5EncoderPass
    private let arena: Arena
    private let decInputs, labels, decLengths, decStarts: Int32Buffer
    /// Recorded row of each packed row (forward from a recording).
    private let recordRows: Int32Buffer

    /// Saved per decoder layer. The norms' outputs and the cross-attention
    /// keys/values of the encoder output are recomputed in backward.
    private struct DecoderActivations {
        var y, rstd0, qkv, probs, ctx, y1, rstd1, qc, probsC, ctxC, y2, rstd2, fd: Tensor
    }
    private var dec: [DecoderActivations] = []
    private var encOut: Tensor? = nil
    private var decFinalIn: Tensor? = nil, decOut: Tensor? = nil, decRstd: Tensor? = nil
    private var biasD: Tensor? = nil
    private var logits: Tensor? = nil
    /// Forward temporaries, reused by backward.
    private var normedTemp: Tensor? = nil, kvTemp: Tensor? = nil
    private var lossBuffer: Tensor? = nil, entropyBuffer: Tensor? = nil
    private var bucketsD: [Int32] = []
    private var batch: PolicyBatch? = nil
    private var training = false, seed: UInt64 = 0, step: UInt64 = 0
    private var forwardEnd: Arena.Mark? = nil

    /// Whether forward keeps what ``backward(weights:extraLogitGradient:meanOver:)``
    /// needs. A pass that only scores (the RL reference) does not: its
    /// decoder holds one layer's activations at a time, and its arena a
    /// fraction of a training pass's.
    public let keepsActivations: Bool

    public init(model: T5Policy, capacity: Capacity, keepsActivations: Bool = true) {
        self.model = model
        self.capacity = capacity
        self.keepsActivations = keepsActivations
        encoder = T5EncoderPass(model: model, maxPrompts: capacity.prompts, maxLength: capacity.encoderLength)
        arena = Arena(capacity: T5Pass.floatsNeeded(model.config, capacity, keepsActivations: keepsActivations))
        decInputs = Int32Buffer(capacity: capacity.rows)
        labels = Int32Buffer(capacity: capacity.rows)
        decLengths = Int32Buffer(capacity: capacity.sequences)
        decStarts = Int32Buffer(capacity: capacity.sequences)
        recordRows = Int32Buffer(capacity: capacity.rows)
    }

    /// Floats of decoder workspace a pass of this capacity takes (forward
    /// and backward views, 16-float aligned; without kept activations, the
    /// forward's with one decoder layer live).
    static func floatsNeeded(_ c: T5Config, _ k: Capacity, keepsActivations: Bool = true) -> Int {
        let C = c.modelWidth, I = c.inner, F = c.ffWidth, H = c.heads, V = c.vocabulary
        let ES = k.prompts * k.encoderLength, R = k.rows, S = k.encoderLength, T = k.decoderLength
        let slabD = R * H * T, slabC = R * H * S  // packed probabilities [rows, H, keys]
        let layersLive = keepsActivations ? c.decoderLayers : 1
        let forward = R * ((keepsActivations ? C : 3 * C) + layersLive * (6 * C + 3 + 6 * I + F) + C + 1)
            + ES * 2 * I + layersLive * (slabD + slabC) + max(slabD, slabC) + H * T * T + R * V + 2 * R
        let backward = R * (3 * C + 4 * I + F) + ES * (2 * I + C) + max(slabD, slabC) + H * T * T
        return forward + (keepsActivations ? backward : 0) + 16 * (30 + 24 * c.decoderLayers)
    }

    // MARK: Forward

    /// Runs the model over `b` and the output layer; afterwards
    /// ``tokenLogProbs`` holds log p of each packed target. With `training`,
    /// dropout is on, drawn from `(seed, step)`. With `logitMask`
    /// (`[rows, vocabulary]`, non-zero = allowed), every distribution is the
    /// softmax renormalised over its row's allowed tokens — the distribution
    /// a constrained sampler draws from — for the log-probs, the entropy and
    /// the gradient alike. With `recording` (of a decoder that sampled `b`'s
    /// decoder sequences, sequence r in slot r; no dropout), the decoder's
    /// activations are taken from it instead of recomputed: only the
    /// encoder, the cross-attention keys/values and the attention
    /// probabilities (in this pass's layout) are computed.
    public func forward(_ b: PolicyBatch, training: Bool, seed: UInt64 = 0, step: UInt64 = 0, entropy: Bool = false,
                        logitMask: UnsafePointer<UInt8>? = nil, recording: DecoderRecording? = nil) {
        let c = model.config, s = model.store
        let C = c.modelWidth, I = c.inner, H = c.heads
        let P = b.prompts, S = b.encoderLength, ES = P * S, R = b.rows, T = b.maxDecoderLength
        precondition(P <= capacity.prompts && S <= capacity.encoderLength && b.sequences <= capacity.sequences
                     && T <= capacity.decoderLength && R <= capacity.rows,
                     "batch (\(P) prompts × \(S), \(b.sequences) sequences ≤ \(T), \(R) rows) exceeds the pass's capacity")
        arena.reset()
        batch = b
        self.training = training
        self.seed = seed
        self.step = step
        decInputs.set(b.decoderInputs)
        labels.set(b.labels)
        decLengths.set(b.decoderLengths)
        decStarts.set(b.decoderStarts)
        if let recording { locate(b, in: recording) }
        /// out = the recorded rows of `buffer` (`recording` only).
        func recorded(_ out: Tensor, _ buffer: FloatBuffer) {
            Kernels.embeddingForward(out: out, table: recording!.table(buffer, cols: out.cols), ids: recordRows.base)
        }
        let eo = encoder.forward(tokens: b.encoderTokens, lengths: b.encoderLengths, prompts: P, length: S,
                                 training: training, seed: seed, step: step)
        encOut = eo
        if bucketsD.count != T * T { bucketsD = c.buckets(queryLength: T, keyLength: T, bidirectional: false) }
        let bD = arena.take(rows: H, cols: T * T)
        Kernels.positionBiasForward(bias: bD, table: s.value(model.decoderBias), buckets: bucketsD, heads: H, queryLength: T, keyLength: T)
        biasD = bD
        let scratch = arena.take(rows: 1, cols: R * H * max(T, S))
        let normed = arena.take(rows: R, cols: C), kv = arena.take(rows: ES, cols: 2 * I)
        normedTemp = normed
        kvTemp = kv

        // decoder over packed rows
        var y = arena.take(rows: R, cols: C)
        if let recording {
            recorded(y, recording.layers[0].y)
        } else {
            Kernels.embeddingForward(out: y, table: model.embedding, ids: decInputs.base)
            dropout(y, site: 300)
        }
        /// out = RMSNorm(input) · Wᵀ, rstd its reciprocal RMS (or their recorded rows).
        func normThenLinear(_ out: Tensor, rstd: Tensor, _ input: Tensor, norm: Int, weight: Tensor,
                            recordedAs kept: (out: FloatBuffer, rstd: FloatBuffer)?) {
            if let kept {
                recorded(rstd, kept.rstd)
                recorded(out, kept.out)
            } else {
                Kernels.rmsNormForward(out: normed, rstd: rstd, input: input, weight: s.value(norm), eps: c.layerNormEps)
                Kernels.linearForward(out: out, input: normed, weight: weight)
            }
        }
        /// out = residual + dropout(x · Wᵀ) (or its recorded rows).
        func residual(_ out: Tensor, _ x: Tensor, weight: Int, plus residual: Tensor, site: Int, recordedAs kept: FloatBuffer?) {
            if let kept {
                recorded(out, kept)
            } else {
                Kernels.linearForward(out: out, input: x, weight: s.value(weight))
                dropout(out, site: site)
                Kernels.add(out, residual, into: out)
            }
        }
        dec.removeAll(keepingCapacity: true)
        // without kept activations, each layer's views are given back after
        // it and the residual stream alternates between two buffers
        let stream = keepsActivations ? [] : [arena.take(rows: R, cols: C), arena.take(rows: R, cols: C)]
        for (l, p) in model.decoder.enumerated() {
            let layerStart = arena.mark
            let kept = recording?.layers[l]
            let rstd0 = arena.take(rows: R, cols: 1), qkv = arena.take(rows: R, cols: 3 * I)
            normThenLinear(qkv, rstd: rstd0, y, norm: p.ln0, weight: s.fusedValue([p.q, p.k, p.v]),
                           recordedAs: kept.map { ($0.qkv, $0.rstd0) })
            let probs = arena.take(rows: 1, cols: R * H * T), ctx = arena.take(rows: R, cols: I)
            Kernels.attentionForward(decoderSelfCall(qkv, out: ctx, layer: l), out: ctx, probs: probs, scratch: scratch)
            let y1 = arena.take(rows: R, cols: C)
            residual(y1, ctx, weight: p.o, plus: y, site: 302 + 8 * l, recordedAs: kept?.y1)
            let rstd1 = arena.take(rows: R, cols: 1), qc = arena.take(rows: R, cols: I)
            normThenLinear(qc, rstd: rstd1, y1, norm: p.ln1, weight: s.value(p.cq), recordedAs: kept.map { ($0.qc, $0.rstd1) })
            Kernels.linearForward(out: kv, input: eo, weight: s.fusedValue([p.ck, p.cv]))
            let probsC = arena.take(rows: 1, cols: R * H * S), ctxC = arena.take(rows: R, cols: I)
            Kernels.attentionForward(crossCall(qc, kv, layer: l), out: ctxC, probs: probsC, scratch: scratch)
            let y2 = arena.take(rows: R, cols: C)
            residual(y2, ctxC, weight: p.co, plus: y1, site: 304 + 8 * l, recordedAs: kept?.y2)
            let rstd2 = arena.take(rows: R, cols: 1), fd = arena.take(rows: R, cols: c.ffWidth)
            normThenLinear(fd, rstd: rstd2, y2, norm: p.ln2, weight: s.value(p.wi), recordedAs: kept.map { ($0.fd, $0.rstd2) })
            if kept == nil {
                Kernels.reluForward(fd, into: fd)
                dropout(fd, site: 305 + 8 * l)
            }
            let y3 = keepsActivations ? arena.take(rows: R, cols: C) : stream[l % 2]
            let next = recording.map { l + 1 < c.decoderLayers ? $0.layers[l + 1].y : $0.finalIn }
            residual(y3, fd, weight: p.wo, plus: y2, site: 306 + 8 * l, recordedAs: next)
            if keepsActivations {
                dec.append(DecoderActivations(y: y, rstd0: rstd0, qkv: qkv, probs: probs, ctx: ctx, y1: y1, rstd1: rstd1,
                                              qc: qc, probsC: probsC, ctxC: ctxC, y2: y2, rstd2: rstd2, fd: fd))
            } else {
                arena.rewind(to: layerStart)
            }
            y = y3
        }
        let dOut = arena.take(rows: R, cols: C), dr = arena.take(rows: R, cols: 1)
        // output layer: logits = (h · d^-½) · sharedᵀ
        let z = arena.take(rows: R, cols: c.vocabulary)
        if let recording {
            recorded(dOut, recording.out)
            recorded(dr, recording.finalRstd)
            recorded(z, recording.logits)
            if logitScale != 1 { Kernels.scale(z, by: logitScale) }
        } else {
            Kernels.rmsNormForward(out: dOut, rstd: dr, input: y, weight: s.value(model.decoderFinal), eps: c.layerNormEps)
            dropout(dOut, site: 500)
            Kernels.gemm(transposeB: true, dOut, model.embedding, into: z, alpha: outputScale)
        }
        decFinalIn = y
        decOut = dOut
        decRstd = dr
        if let logitMask { Kernels.maskFill(z, mask: logitMask) }
        logits = z
        let losses = arena.take(rows: R, cols: 1), ent = arena.take(rows: R, cols: 1)
        Kernels.crossEntropy(logits: z, targets: labels.base, losses: losses, dLogits: nil, entropy: entropy ? ent : nil)
        lossBuffer = losses
        entropyBuffer = entropy ? ent : nil
        forwardEnd = arena.mark
    }

    /// Fills `recordRows` with the recorded row of each packed row of `b`
    /// (sequence r is slot r of `recording`), checking that the recording
    /// fed the same tokens.
    private func locate(_ b: PolicyBatch, in recording: DecoderRecording) {
        precondition(!training, "a recorded decoder pass has no dropout")
        precondition(recording.config == model.config, "the recording is of another architecture")
        for r in 0..<b.sequences {
            let start = Int(b.decoderStarts[r])
            for t in 0..<Int(b.decoderLengths[r]) {
                guard let row = recording.row(slot: r, position: t), recording.inputs[row] == b.decoderInputs[start + t] else {
                    preconditionFailure("the recording did not decode sequence \(r)'s token \(t) of this batch")
                }
                recordRows[start + t] = Int32(row)
            }
        }
    }

    /// The output logits `[rows, vocabulary]` of the last forward (until
    /// ``backward(weights:)`` turns them into their gradient).
    public var lastLogits: Tensor? { logits }

    /// log p of each packed target token of the last forward.
    public var tokenLogProbs: [Float] { lossBuffer!.toArray().map { -$0 } }
    /// −log p of each packed target (the token cross-entropies), as a view.
    public var tokenLosses: Tensor { lossBuffer! }
    /// Entropy of each position's distribution (when requested).
    public var tokenEntropy: Tensor? { entropyBuffer }

    /// Mean token cross-entropy of the last forward.
    public var meanLoss: Double {
        let l = lossBuffer!
        var s = 0.0
        for i in 0..<l.count { s += Double(l[i]) }
        return s / Double(max(l.count, 1))
    }

    /// Multiplies the output logits (1 / temperature): the pass then scores
    /// tokens under the distribution a sampler at that temperature draws
    /// from. 1 (the model itself) unless set.
    public var logitScale: Float = 1

    private var outputScale: Float { logitScale / Float(model.config.modelWidth).squareRoot() }

    // MARK: Backward

    /// Accumulates parameter gradients of `Σ_r w_r · (−log p_r)` over the
    /// packed targets of the last forward (`weights` `[rows]`; nil: the mean,
    /// w = 1/`meanOver`, by default the forward's rows — a shard of a larger
    /// batch passes the whole batch's), plus any further gradient of the loss
    /// with respect to the logits (`extraLogitGradient` `[rows, vocabulary]`,
    /// e.g. a KL term's). Call once per forward (it consumes the logits).
    public func backward(weights: Tensor? = nil, extraLogitGradient: Tensor? = nil, meanOver: Int? = nil) {
        precondition(keepsActivations, "backward of a pass that keeps no activations")
        let c = model.config, s = model.store, b = batch!
        let C = c.modelWidth, I = c.inner, H = c.heads
        let P = b.prompts, S = b.encoderLength, ES = P * S, R = b.rows, T = b.maxDecoderLength
        arena.rewind(to: forwardEnd!)
        let z = logits!
        Kernels.crossEntropy(logits: z, targets: labels.base, losses: lossBuffer!, dLogits: z, rowWeights: weights,
                             scale: 1 / Float(meanOver ?? R))
        if let extra = extraLogitGradient {
            precondition(extra.rows == R && extra.cols == c.vocabulary, "extra logit gradient shape")
            Kernels.add(z, extra, into: z)
        }
        let dH = arena.zeros(rows: R, cols: C)
        Kernels.gemm(z, model.embedding, into: dH, alpha: outputScale, beta: 0)
        Kernels.gemm(transposeA: true, z, decOut!, into: s.grad(model.shared), alpha: outputScale, beta: 1)
        // decoder final norm (through its dropout)
        // dT (through a dropout) and dN (into a norm) are never live together
        let dY = arena.zeros(rows: R, cols: C), dT = arena.take(rows: R, cols: C), dN = dT
        dropoutGradient(into: dT, dH, site: 500)
        Kernels.rmsNormBackward(dInput: dY, dWeight: s.grad(model.decoderFinal), dOut: dT, input: decFinalIn!,
                                weight: s.value(model.decoderFinal), rstd: decRstd!)
        let dCtx = arena.take(rows: R, cols: I), dQKV = arena.take(rows: R, cols: 3 * I), dF = arena.take(rows: R, cols: c.ffWidth)
        let dQc = arena.take(rows: R, cols: I), dKV = arena.take(rows: ES, cols: 2 * I)
        let normed = normedTemp!, kv = kvTemp!
        let dEnc = arena.zeros(rows: ES, cols: C)
        let dScratch = arena.take(rows: 1, cols: R * H * max(T, S))
        let dBiasD = arena.zeros(rows: H, cols: T * T)
        for (l, p) in model.decoder.enumerated().reversed() {
            let a = dec[l]
            // y3 = y2 + drop(wo · drop(relu(wi · n2)))
            dropoutGradient(into: dT, dY, site: 306 + 8 * l)
            Kernels.linearBackward(dInput: dF, dWeight: s.grad(p.wo), dBias: nil, dOut: dT, input: a.fd, weight: s.value(p.wo), overwriteInput: true)
            Kernels.reluBackwardInPlace(dF, out: a.fd, scale: 1 / (1 - (training ? c.dropout : 0)))
            Kernels.rmsNormForward(out: normed, rstd: a.rstd2, input: a.y2, weight: s.value(p.ln2), eps: c.layerNormEps)
            Kernels.linearBackward(dInput: dN, dWeight: s.grad(p.wi), dBias: nil, dOut: dF, input: normed, weight: s.value(p.wi), overwriteInput: true)
            Kernels.rmsNormBackward(dInput: dY, dWeight: s.grad(p.ln2), dOut: dN, input: a.y2, weight: s.value(p.ln2), rstd: a.rstd2)
            // y2 = y1 + drop(co · cross(qc(n1), kv(encOut)))
            dropoutGradient(into: dT, dY, site: 304 + 8 * l)
            Kernels.linearBackward(dInput: dCtx, dWeight: s.grad(p.co), dBias: nil, dOut: dT, input: a.ctxC, weight: s.value(p.co), overwriteInput: true)
            dQc.zero()
            dKV.zero()
            Kernels.linearForward(out: kv, input: encOut!, weight: s.fusedValue([p.ck, p.cv]))
            Kernels.attentionBackward(crossCall(a.qc, kv, layer: l), dQ: dQc, dK: dKV, dV: dKV, dBias: nil,
                                      scratch: dScratch, dOut: dCtx, probs: a.probsC)
            Kernels.linearBackward(dInput: dEnc, dWeight: s.fusedGrad([p.ck, p.cv]), dBias: nil, dOut: dKV, input: encOut!,
                                   weight: s.fusedValue([p.ck, p.cv]))
            Kernels.rmsNormForward(out: normed, rstd: a.rstd1, input: a.y1, weight: s.value(p.ln1), eps: c.layerNormEps)
            Kernels.linearBackward(dInput: dN, dWeight: s.grad(p.cq), dBias: nil, dOut: dQc, input: normed, weight: s.value(p.cq), overwriteInput: true)
            Kernels.rmsNormBackward(dInput: dY, dWeight: s.grad(p.ln1), dOut: dN, input: a.y1, weight: s.value(p.ln1), rstd: a.rstd1)
            // y1 = y + drop(o · self(qkv(n0)))
            dropoutGradient(into: dT, dY, site: 302 + 8 * l)
            Kernels.linearBackward(dInput: dCtx, dWeight: s.grad(p.o), dBias: nil, dOut: dT, input: a.ctx, weight: s.value(p.o), overwriteInput: true)
            dQKV.zero()
            Kernels.attentionBackward(decoderSelfCall(a.qkv, out: a.ctx, layer: l), dQ: dQKV, dK: dQKV, dV: dQKV,
                                      dBias: dBiasD, scratch: dScratch, dOut: dCtx, probs: a.probs)
            Kernels.rmsNormForward(out: normed, rstd: a.rstd0, input: a.y, weight: s.value(p.ln0), eps: c.layerNormEps)
            Kernels.linearBackward(dInput: dN, dWeight: s.fusedGrad([p.q, p.k, p.v]), dBias: nil, dOut: dQKV, input: normed,
                                   weight: s.fusedValue([p.q, p.k, p.v]), overwriteInput: true)
            Kernels.rmsNormBackward(dInput: dY, dWeight: s.grad(p.ln0), dOut: dN, input: a.y, weight: s.value(p.ln0), rstd: a.rstd0)
        }
        dropoutGradient(into: dT, dY, site: 300)
        Kernels.embeddingBackward(dTable: s.grad(model.shared), dOut: dT, ids: decInputs.base)
        Kernels.positionBiasBackward(dTable: s.grad(model.decoderBias), dBias: dBiasD, buckets: bucketsD, heads: H,
                                     queryLength: T, keyLength: T)
        encoder.backward(dEnc)
    }

    // MARK: Attention calls

    private func decoderSelfCall(_ qkv: Tensor, out: Tensor, layer: Int) -> AttentionCall {
        let c = model.config, b = batch!
        var call = AttentionCall(q: qkv, qOffset: 0, k: qkv, kOffset: c.inner, v: qkv, vOffset: 2 * c.inner,
                                 batch: b.sequences, queryLength: b.maxDecoderLength, keyLength: b.maxDecoderLength,
                                 heads: c.heads, headWidth: c.headWidth, outStride: c.inner)
        call.causal = true
        call.bias = biasD
        call.keyLengths = UnsafePointer(decLengths.base)
        call.queryLengths = UnsafePointer(decLengths.base)
        call.queryRows = UnsafePointer(decStarts.base)
        call.keyRows = UnsafePointer(decStarts.base)
        attentionDropout(&call, site: 301 + 8 * layer)
        return call
    }

    private func crossCall(_ qc: Tensor, _ kv: Tensor, layer: Int) -> AttentionCall {
        let c = model.config, b = batch!
        var call = AttentionCall(q: qc, qOffset: 0, k: kv, kOffset: 0, v: kv, vOffset: c.inner, batch: b.sequences,
                                 queryLength: b.maxDecoderLength, keyLength: b.encoderLength, heads: c.heads,
                                 headWidth: c.headWidth, outStride: c.inner)
        call.kvGroup = b.group
        call.keyLengths = encoder.lengthPointer
        call.queryLengths = UnsafePointer(decLengths.base)
        call.queryRows = UnsafePointer(decStarts.base)
        attentionDropout(&call, site: 303 + 8 * layer)
        return call
    }

    // MARK: Dropout

    private func streamID(_ site: Int) -> UInt64 { T5Dropout.stream(step: step, site: site) }

    private func attentionDropout(_ call: inout AttentionCall, site: Int) {
        guard training, model.config.dropout > 0 else { return }
        call.dropout = model.config.dropout
        call.seed = seed
        call.stream = streamID(site)
    }

    private func dropout(_ t: Tensor, site: Int) {
        guard training, model.config.dropout > 0 else { return }
        Kernels.dropoutForward(t, into: t, p: model.config.dropout, seed: seed, stream: streamID(site))
    }

    /// dInput = mask · dOut (the same mask as the forward; a copy when off).
    private func dropoutGradient(into dInput: Tensor, _ dOut: Tensor, site: Int) {
        Kernels.dropoutForward(dOut, into: dInput, p: training ? model.config.dropout : 0, seed: seed, stream: streamID(site))
    }
}
