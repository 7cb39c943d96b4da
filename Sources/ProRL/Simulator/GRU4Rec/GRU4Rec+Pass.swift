/// One forward/backward pass of a ``GRU4Rec``. The recurrence runs
/// time-major with the sequences sorted longest first, so step t multiplies
/// only the sequences still running (RecBole runs the padding too; the
/// states it reads are the same). Activations live in an arena sized once.
public final class GRU4RecPass: SequencePass, @unchecked Sendable {
    public let model: GRU4Rec
    public let maxBatch: Int
    private let arena: Arena
    /// Time-major item ids (0 past a sequence's end), sequences running per
    /// step, and the time-major row each output row reads.
    private let ids: Int32Buffer, counts: Int32Buffer, gatherRows: Int32Buffer

    private struct LayerActivations { var input, h, gates: Tensor }
    private var selected: Tensor? = nil
    private var acts: [LayerActivations] = []
    private var batch = 0, steps = 0
    private var forwardEnd: Arena.Mark? = nil
    private var training = false, seed: UInt64 = 0, step: UInt64 = 0

    public init(model: GRU4Rec, maxBatch: Int) {
        let c = model.config
        self.model = model
        self.maxBatch = maxBatch
        let rows = maxBatch * c.maxLength
        // forward: x (E), per layer gi 3H + h H + gates 4H (+ one initial
        // block of B rows), selected H and output E; backward: dSelected H,
        // dh H, dgi and dgh 3H each, the layer input's gradient max(E, H)
        let perRow = c.embedding + c.layers * 8 * c.hidden + c.hidden + c.embedding + 8 * c.hidden + max(c.embedding, c.hidden)
        arena = Arena(capacity: rows * perRow + c.layers * maxBatch * c.hidden + 16 * (8 + 4 * c.layers))
        ids = Int32Buffer(capacity: rows)
        counts = Int32Buffer(capacity: c.maxLength)
        gatherRows = Int32Buffer(capacity: rows)
    }

    @discardableResult
    public func forward(_ b: SequenceBatch, training: Bool, seed: UInt64 = 0, step: UInt64 = 0,
                        lastOnly: Bool = false) -> Tensor {
        let c = model.config, s = model.store
        precondition(b.batch <= maxBatch && b.length <= c.maxLength,
                     "batch [\(b.batch), \(b.length)] exceeds the pass's [\(maxBatch), \(c.maxLength)]")
        arena.reset()
        batch = b.batch
        steps = b.length
        self.training = training
        self.seed = seed
        self.step = step
        let B = batch, T = steps, H = c.hidden, E = c.embedding
        // longest first (stable); slot[b]: where sequence b runs
        let order = (0..<B).sorted { b.lengths[$0] != b.lengths[$1] ? b.lengths[$0] > b.lengths[$1] : $0 < $1 }
        var slot = [Int](repeating: 0, count: B)
        for (i, o) in order.enumerated() { slot[o] = i }
        for t in 0..<T {
            var n: Int32 = 0
            for (i, o) in order.enumerated() {
                let running = t < Int(b.lengths[o])
                ids[t * B + i] = running ? b.ids[o * T + t] : 0
                if running { n += 1 }
            }
            counts[t] = n
        }
        let x = arena.take(rows: T * B, cols: E)
        Kernels.embeddingForward(out: x, table: s.value(model.itemEmbedding), ids: ids.base)
        if training && c.dropout > 0 {
            Kernels.dropoutForward(x, into: x, p: c.dropout, seed: seed, stream: step &* 64)
        }
        acts.removeAll(keepingCapacity: true)
        var input = x
        for l in 0..<c.layers {
            let gi = arena.take(rows: T * B, cols: 3 * H)
            Kernels.linearForward(out: gi, input: input, weight: s.value(model.inputWeights[l]))
            let h = arena.take(rows: (T + 1) * B, cols: H)
            h.rows(0, B).zero()
            let gates = arena.take(rows: T * B, cols: 4 * H)
            Kernels.gruForward(h: h, gates: gates, gi: gi, wHH: s.value(model.recurrentWeights[l]), counts: counts.base,
                               steps: T, batch: B)
            acts.append(LayerActivations(input: input, h: h, gates: gates))
            input = h.rows(B, T * B)
        }
        // the rows read: each sequence's last step, or every step (rows past
        // a sequence's end were zeroed by the recurrence)
        let n = lastOnly ? B : B * T
        for o in 0..<B {
            if lastOnly { gatherRows[o] = Int32((Int(b.lengths[o]) - 1) * B + slot[o]) }
            else { for t in 0..<T { gatherRows[o * T + t] = Int32(t * B + slot[o]) } }
        }
        let selected = arena.take(rows: n, cols: H)
        Kernels.embeddingForward(out: selected, table: input, ids: gatherRows.base)
        self.selected = selected
        let out = arena.take(rows: n, cols: E)
        Kernels.linearForward(out: out, input: selected, weight: s.value(model.dense), bias: s.value(model.denseBias))
        forwardEnd = arena.mark
        return out
    }

    public func backward(_ dOut: Tensor) {
        let c = model.config, s = model.store
        let B = batch, T = steps, H = c.hidden
        guard let selected, let forwardEnd else { preconditionFailure("backward before forward") }
        precondition(dOut.rows == selected.rows && dOut.cols == c.embedding, "backward: dOut shape")
        arena.rewind(to: forwardEnd)
        let dSelected = arena.take(rows: selected.rows, cols: H)
        Kernels.linearBackward(dInput: dSelected, dWeight: s.grad(model.dense), dBias: s.grad(model.denseBias), dOut: dOut,
                               input: selected, weight: s.value(model.dense), overwriteInput: true)
        var dh = arena.zeros(rows: T * B, cols: H)
        Kernels.embeddingBackward(dTable: dh, dOut: dSelected, ids: gatherRows.base)
        let dgi = arena.take(rows: T * B, cols: 3 * H), dgh = arena.take(rows: T * B, cols: 3 * H)
        for l in (0..<c.layers).reversed() {
            let a = acts[l]
            Kernels.gruBackward(dgi: dgi, dgh: dgh, dWHH: s.grad(model.recurrentWeights[l]), dh: dh, h: a.h, gates: a.gates,
                                wHH: s.value(model.recurrentWeights[l]), counts: counts.base, steps: T, batch: B)
            let dInput = arena.take(rows: T * B, cols: a.input.cols)
            Kernels.linearBackward(dInput: dInput, dWeight: s.grad(model.inputWeights[l]), dBias: nil, dOut: dgi,
                                   input: a.input, weight: s.value(model.inputWeights[l]), overwriteInput: true)
            dh = dInput
        }
        // dh is now ∂L/∂(dropped embeddings)
        if training && c.dropout > 0 {
            Kernels.dropoutForward(dh, into: dh, p: c.dropout, seed: seed, stream: step &* 64)
        }
        // the padding row gets no gradient (padding_idx = 0) without masking:
        // ids are 0 only on rows past a sequence's end, whose dgi — and so dh — is 0
        Kernels.embeddingBackward(dTable: s.grad(model.itemEmbedding), dOut: dh, ids: ids.base)
    }

    /// Floats of activation memory this pass holds.
    public var workspaceFloats: Int { arena.capacity }
}
