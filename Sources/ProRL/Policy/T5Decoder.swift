import Foundation

/// Incremental decoding with key/value caches: the encoder runs once per
/// prompt and each layer's cross-attention keys/values are computed once
/// and shared by every row (sample or beam) of that prompt; each step runs
/// the decoder for one new token of the active rows only, appending their
/// self-attention keys/values to the cache.
public final class T5Decoder: @unchecked Sendable {
    public let model: T5Policy
    public let maxPrompts: Int
    public let maxRows: Int
    /// Longest decoded sequence (tokens, EOS included).
    public let maxSteps: Int
    let encoder: T5EncoderPass
    private let selfCache: [FloatBuffer]
    private let crossKV: [FloatBuffer]
    private let x, n, rstd, qkv, ctx, qc, f, out, logitBuffer, bias, reorderTemp: FloatBuffer
    private let inputTokens, selfRows, crossRows, selfLengths, crossLengths: Int32Buffer
    private var encoderLengths: [Int32] = []
    private var encoderLength = 0

    public init(model: T5Policy, maxPrompts: Int, maxRows: Int, encoderLength: Int, maxSteps: Int) {
        let c = model.config
        self.model = model
        self.maxPrompts = maxPrompts
        self.maxRows = maxRows
        self.maxSteps = maxSteps
        encoder = T5EncoderPass(model: model, maxPrompts: maxPrompts, maxLength: encoderLength)
        let C = c.modelWidth, I = c.inner
        selfCache = (0..<c.decoderLayers).map { _ in FloatBuffer(count: maxRows * maxSteps * 2 * I) }
        crossKV = (0..<c.decoderLayers).map { _ in FloatBuffer(count: maxPrompts * encoderLength * 2 * I) }
        x = FloatBuffer(count: maxRows * C)
        n = FloatBuffer(count: maxRows * C)
        rstd = FloatBuffer(count: maxRows)
        qkv = FloatBuffer(count: maxRows * 3 * I)
        ctx = FloatBuffer(count: maxRows * I)
        qc = FloatBuffer(count: maxRows * I)
        f = FloatBuffer(count: maxRows * c.ffWidth)
        out = FloatBuffer(count: maxRows * C)
        logitBuffer = FloatBuffer(count: maxRows * c.vocabulary)
        bias = FloatBuffer(count: c.heads * maxSteps)
        reorderTemp = FloatBuffer(count: maxRows * maxSteps * 2 * I)
        inputTokens = Int32Buffer(capacity: maxRows)
        selfRows = Int32Buffer(capacity: maxRows)
        crossRows = Int32Buffer(capacity: maxRows)
        selfLengths = Int32Buffer(capacity: maxRows)
        crossLengths = Int32Buffer(capacity: maxRows)
    }

    /// Encodes the prompts and fills each layer's cross-attention keys and
    /// values.
    public func start(prompts: [[Int32]]) {
        let c = model.config, s = model.store
        precondition(!prompts.isEmpty && prompts.count <= maxPrompts, "\(prompts.count) prompts (decoder takes \(maxPrompts))")
        let S = prompts.map(\.count).max()!
        precondition(S <= encoder.maxLength, "prompt of \(S) tokens exceeds \(encoder.maxLength)")
        var tokens = [Int32](repeating: 0, count: prompts.count * S)
        for (p, t) in prompts.enumerated() { for (i, v) in t.enumerated() { tokens[p * S + i] = v } }
        encoderLengths = prompts.map { Int32($0.count) }
        encoderLength = S
        let eo = encoder.forward(tokens: tokens, lengths: encoderLengths, prompts: prompts.count, length: S, training: false)
        for (l, p) in model.decoder.enumerated() {
            Kernels.linearForward(out: crossKV[l].tensor(rows: prompts.count * S, cols: 2 * c.inner), input: eo,
                                  weight: s.fusedValue([p.ck, p.cv]))
        }
    }

    /// One decoding step at position `t` for the rows `rows` (cache slots),
    /// each belonging to prompt `promptOf[i]` and fed `tokens[i]`. Returns
    /// the logits `[rows.count, vocabulary]`. With `recording`, appends
    /// what the step computed for these rows to it.
    public func step(rows: [Int], promptOf: [Int], tokens: [Int32], position t: Int,
                     recording: DecoderRecording? = nil) -> Tensor {
        let c = model.config, s = model.store
        let m = rows.count, C = c.modelWidth, I = c.inner, H = c.heads, S = encoderLength
        precondition(t < maxSteps && m <= maxRows, "step \(t) for \(m) rows exceeds the decoder's capacity")
        for i in 0..<m {
            inputTokens[i] = tokens[i]
            selfRows[i] = Int32(rows[i] * maxSteps)
            crossRows[i] = Int32(promptOf[i] * S)
            selfLengths[i] = Int32(t + 1)
            crossLengths[i] = encoderLengths[promptOf[i]]
        }
        // self-attention bias of query position t over keys 0…t
        let b = bias.tensor(rows: H, cols: t + 1)
        let table = s.value(model.decoderBias)
        for j in 0...t {
            let bucket = Int(c.bucket(relative: j - t, bidirectional: false))
            for h in 0..<H { b[h * (t + 1) + j] = table[bucket * H + h] }
        }
        let X = x.tensor(rows: m, cols: C), N = n.tensor(rows: m, cols: C), Rs = rstd.tensor(rows: m, cols: 1)
        let QKV = qkv.tensor(rows: m, cols: 3 * I), CTX = ctx.tensor(rows: m, cols: I), QC = qc.tensor(rows: m, cols: I)
        let FF = f.tensor(rows: m, cols: c.ffWidth)
        let first = recording?.beginStep(slots: rows, tokens: tokens, position: t) ?? 0
        func keep(_ x: Tensor, _ buffer: KeyPath<DecoderRecording.Layer, FloatBuffer>, layer l: Int) {
            if let recording { DecoderRecording.keep(x, in: recording.layers[l][keyPath: buffer], at: first) }
        }
        Kernels.embeddingForward(out: X, table: model.embedding, ids: inputTokens.base)
        for (l, p) in model.decoder.enumerated() {
            keep(X, \.y, layer: l)
            Kernels.rmsNormForward(out: N, rstd: Rs, input: X, weight: s.value(p.ln0), eps: c.layerNormEps)
            keep(Rs, \.rstd0, layer: l)
            Kernels.linearForward(out: QKV, input: N, weight: s.fusedValue([p.q, p.k, p.v]))
            keep(QKV, \.qkv, layer: l)
            let cache = selfCache[l].tensor(rows: maxRows * maxSteps, cols: 2 * I)
            for i in 0..<m {
                (cache.base + (rows[i] * maxSteps + t) * 2 * I).update(from: QKV.base + i * 3 * I + I, count: 2 * I)
            }
            var selfCall = AttentionCall(q: QKV, qOffset: 0, k: cache, kOffset: 0, v: cache, vOffset: I, batch: m,
                                         queryLength: 1, keyLength: t + 1, keyCapacity: maxSteps, heads: H,
                                         headWidth: c.headWidth, outStride: I)
            selfCall.bias = b
            selfCall.keyRows = UnsafePointer(selfRows.base)
            selfCall.keyLengths = UnsafePointer(selfLengths.base)
            Kernels.attentionDecode(selfCall, out: CTX)
            Kernels.gemm(transposeB: true, CTX, s.value(p.o), into: X, beta: 1)
            keep(X, \.y1, layer: l)
            Kernels.rmsNormForward(out: N, rstd: Rs, input: X, weight: s.value(p.ln1), eps: c.layerNormEps)
            keep(Rs, \.rstd1, layer: l)
            Kernels.linearForward(out: QC, input: N, weight: s.value(p.cq))
            keep(QC, \.qc, layer: l)
            let kv = crossKV[l].tensor(rows: maxPrompts * S, cols: 2 * I)
            var crossCall = AttentionCall(q: QC, qOffset: 0, k: kv, kOffset: 0, v: kv, vOffset: I, batch: m,
                                          queryLength: 1, keyLength: S, heads: H, headWidth: c.headWidth, outStride: I)
            crossCall.keyRows = UnsafePointer(crossRows.base)
            crossCall.keyLengths = UnsafePointer(crossLengths.base)
            Kernels.attentionDecode(crossCall, out: CTX)
            Kernels.gemm(transposeB: true, CTX, s.value(p.co), into: X, beta: 1)
            keep(X, \.y2, layer: l)
            Kernels.rmsNormForward(out: N, rstd: Rs, input: X, weight: s.value(p.ln2), eps: c.layerNormEps)
            keep(Rs, \.rstd2, layer: l)
            Kernels.linearForward(out: FF, input: N, weight: s.value(p.wi))
            Kernels.reluForward(FF, into: FF)
            keep(FF, \.fd, layer: l)
            Kernels.gemm(transposeB: true, FF, s.value(p.wo), into: X, beta: 1)
        }
        let O = out.tensor(rows: m, cols: C)
        Kernels.rmsNormForward(out: O, rstd: Rs, input: X, weight: s.value(model.decoderFinal), eps: c.layerNormEps)
        let z = logitBuffer.tensor(rows: m, cols: c.vocabulary)
        Kernels.gemm(transposeB: true, O, model.embedding, into: z, alpha: 1 / Float(C).squareRoot())
        if let recording {
            DecoderRecording.keep(X, in: recording.finalIn, at: first)
            DecoderRecording.keep(Rs, in: recording.finalRstd, at: first)
            DecoderRecording.keep(O, in: recording.out, at: first)
            DecoderRecording.keep(z, in: recording.logits, at: first)
        }
        return z
    }

    /// Beam search bookkeeping: cache slot `rows[i]` takes the first `length`
    /// positions of slot `parents[i]` (slots whose parent is themselves stay).
    public func reorder(rows: [Int], parents: [Int], length: Int) {
        let I = model.config.inner
        let moves = zip(rows, parents).filter { $0 != $1 }
        guard !moves.isEmpty, length > 0 else { return }
        let sources = Array(Set(moves.map(\.1))).sorted()
        let slot = Dictionary(uniqueKeysWithValues: sources.enumerated().map { ($1, $0) })
        let width = length * 2 * I
        for cache in selfCache {
            for (k, src) in sources.enumerated() {
                (reorderTemp.base + k * width).update(from: cache.base + src * maxSteps * 2 * I, count: width)
            }
            for (dst, src) in moves {
                (cache.base + dst * maxSteps * 2 * I).update(from: reorderTemp.base + slot[src]! * width, count: width)
            }
        }
    }
}
