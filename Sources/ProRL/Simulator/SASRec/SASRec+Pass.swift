import Foundation

/// One forward/backward pass of a ``SASRec`` over batches up to a fixed
/// size. Activations live in an arena sized once, so passes allocate
/// nothing; `forward` keeps what `backward` needs.
public final class SASRecPass: SequencePass, @unchecked Sendable {
    public let model: SASRec
    public let maxBatch: Int
    public let maxLength: Int
    private let arena: Arena
    private let ids: Int32Buffer, positions: Int32Buffer, lengths: Int32Buffer

    /// Saved per layer. In the last layer of a `lastOnly` pass everything
    /// after the key/value projection covers only the B selected rows
    /// (`selected`: their queries; `input` stays whole for the projection).
    private struct LayerActivations {
        var input, qkv, ctx, probs, attnOut, s1, h1, mean1, rstd1, f, g, s2, out, mean2, rstd2: Tensor
        var selected: Tensor? = nil
    }
    private var x: Tensor? = nil, mean0: Tensor? = nil, rstd0: Tensor? = nil
    private var acts: [LayerActivations] = []
    private var batch = 0, length = 0
    private var forwardEnd: Arena.Mark? = nil
    private var training = false, lastOnly = false
    private var seed: UInt64 = 0, step: UInt64 = 0
    /// Row of each sequence's last position (`b·T + length_b − 1`).
    private let lastRows: Int32Buffer

    public init(model: SASRec, maxBatch: Int, maxLength: Int? = nil) {
        let c = model.config
        self.model = model
        self.maxBatch = maxBatch
        self.maxLength = min(maxLength ?? c.maxLength, c.maxLength)
        let rows = maxBatch * self.maxLength
        let slab = maxBatch * c.heads * self.maxLength * self.maxLength
        // forward: embeddings (3H + 2 per row), per layer 10H + 2·inner + 4
        // per row and two attention slabs (probabilities, dropped ones);
        // backward: 8H + 2·inner per row and one slab; 16-float alignment
        // for each of the 5 + 16·layers + 9 views
        let perRow = 3 * c.hidden + 2 + c.layers * (10 * c.hidden + 2 * c.inner + 4) + 8 * c.hidden + 2 * c.inner
        let slabs = (2 * c.layers + 1) * slab
        arena = Arena(capacity: rows * perRow + slabs + 16 * (14 + 17 * c.layers))
        ids = Int32Buffer(capacity: rows)
        positions = Int32Buffer(capacity: rows)
        lengths = Int32Buffer(capacity: maxBatch)
        lastRows = Int32Buffer(capacity: maxBatch)
    }

    /// Hidden states `[B·T, hidden]` of every position (rows past a
    /// sequence's length are meaningless), or with `lastOnly` `[B, hidden]`:
    /// each sequence's last position only — the last layer then runs its
    /// queries, feed-forward and norms for those rows alone (the causal
    /// mask makes every other row of that layer irrelevant to them). With
    /// `training`, dropout is on, drawn from `(seed, step)`.
    @discardableResult
    public func forward(_ b: SequenceBatch, training: Bool, seed: UInt64 = 0, step: UInt64 = 0,
                        lastOnly: Bool = false) -> Tensor {
        let c = model.config, s = model.store
        precondition(b.batch <= maxBatch && b.length <= maxLength, "batch [\(b.batch), \(b.length)] exceeds the pass's [\(maxBatch), \(maxLength)]")
        arena.reset()
        batch = b.batch
        length = b.length
        self.training = training
        self.lastOnly = lastOnly
        self.seed = seed
        self.step = step
        let rows = batch * length, H = c.hidden
        ids.set(b.ids)
        lengths.set(b.lengths)
        for r in 0..<rows { positions[r] = Int32(r % length) }
        for i in 0..<batch { lastRows[i] = Int32(i * length + max(Int(b.lengths[i]), 1) - 1) }
        // embeddings → LayerNorm → dropout
        let x = arena.take(rows: rows, cols: H)
        let pos = arena.take(rows: rows, cols: H)
        Kernels.embeddingForward(out: x, table: s.value(model.itemEmbedding), ids: ids.base)
        Kernels.embeddingForward(out: pos, table: s.value(model.positionEmbedding), ids: positions.base)
        Kernels.add(x, pos, into: x)
        let mean0 = arena.take(rows: rows, cols: 1), rstd0 = arena.take(rows: rows, cols: 1)
        var h = arena.take(rows: rows, cols: H)
        Kernels.layerNormForward(out: h, mean: mean0, rstd: rstd0, input: x, weight: s.value(model.lnWeight),
                                 bias: s.value(model.lnBias), eps: c.layerNormEps)
        dropout(h, site: 0)
        self.x = x
        self.mean0 = mean0
        self.rstd0 = rstd0
        acts.removeAll(keepingCapacity: true)
        for (l, p) in model.layers.enumerated() {
            let qkv = arena.take(rows: rows, cols: 3 * H)
            Kernels.linearForward(out: qkv, input: h, weight: s.fusedValue([p.q, p.k, p.v]),
                                  bias: s.fusedValue([p.qb, p.kb, p.vb]).reshaped(rows: 1, cols: 3 * H))
            // the rows this layer's queries and everything after them cover
            let pruned = lastOnly && l == model.layers.count - 1
            let n = pruned ? batch : rows
            var selected: Tensor? = nil, residual = h
            if pruned {
                let q = arena.take(rows: batch, cols: 3 * H), r = arena.take(rows: batch, cols: H)
                Kernels.embeddingForward(out: q, table: qkv, ids: lastRows.base)
                Kernels.embeddingForward(out: r, table: h, ids: lastRows.base)
                selected = q
                residual = r
            }
            let ctx = arena.take(rows: n, cols: H)
            let call = attentionCall(qkv, queries: selected, layer: l)
            let probs = arena.take(rows: 1, cols: batch * c.heads * call.queryLength * length)
            let scratch = training && c.attentionDropout > 0 ? arena.take(rows: 1, cols: probs.count) : nil
            Kernels.attentionForward(call, out: ctx, probs: probs, scratch: scratch)
            let attnOut = arena.take(rows: n, cols: H)
            Kernels.linearForward(out: attnOut, input: ctx, weight: s.value(p.o), bias: s.value(p.ob))
            dropout(attnOut, site: 2 + 4 * l)
            let s1 = arena.take(rows: n, cols: H)
            Kernels.add(attnOut, residual, into: s1)
            let h1 = arena.take(rows: n, cols: H)
            let mean1 = arena.take(rows: n, cols: 1), rstd1 = arena.take(rows: n, cols: 1)
            Kernels.layerNormForward(out: h1, mean: mean1, rstd: rstd1, input: s1, weight: s.value(p.ln1w),
                                     bias: s.value(p.ln1b), eps: c.layerNormEps)
            let f = arena.take(rows: n, cols: c.inner), g = arena.take(rows: n, cols: c.inner)
            Kernels.linearForward(out: f, input: h1, weight: s.value(p.f1), bias: s.value(p.f1b))
            Kernels.geluForward(f, into: g)
            let f2 = arena.take(rows: n, cols: H)
            Kernels.linearForward(out: f2, input: g, weight: s.value(p.f2), bias: s.value(p.f2b))
            dropout(f2, site: 3 + 4 * l)
            let s2 = arena.take(rows: n, cols: H)
            Kernels.add(f2, h1, into: s2)
            let out = arena.take(rows: n, cols: H)
            let mean2 = arena.take(rows: n, cols: 1), rstd2 = arena.take(rows: n, cols: 1)
            Kernels.layerNormForward(out: out, mean: mean2, rstd: rstd2, input: s2, weight: s.value(p.ln2w),
                                     bias: s.value(p.ln2b), eps: c.layerNormEps)
            acts.append(LayerActivations(input: h, qkv: qkv, ctx: ctx, probs: probs, attnOut: attnOut, s1: s1, h1: h1,
                                         mean1: mean1, rstd1: rstd1, f: f, g: g, s2: s2, out: out, mean2: mean2,
                                         rstd2: rstd2, selected: selected))
            h = out
        }
        forwardEnd = arena.mark
        return h
    }

    /// Accumulates parameter gradients given `dOut`, the gradient of the
    /// loss with respect to the last forward's output (same shape).
    public func backward(_ dOut: Tensor) {
        let c = model.config, s = model.store
        let rows = batch * length, H = c.hidden
        precondition(dOut.rows == (lastOnly ? batch : rows) && dOut.cols == H, "backward: dOut shape")
        arena.rewind(to: forwardEnd!)
        // dh: gradient of the current layer's output; dIn: of its input
        var dh = arena.take(rows: rows, cols: H)
        var dIn = arena.take(rows: rows, cols: H)
        let dS = arena.take(rows: rows, cols: H)
        let dPre = arena.take(rows: rows, cols: H), dCtx = arena.take(rows: rows, cols: H)
        let dG = arena.take(rows: rows, cols: c.inner), dF = arena.take(rows: rows, cols: c.inner)
        let dQKV = arena.take(rows: rows, cols: 3 * H)
        let dQ = lastOnly ? arena.take(rows: batch, cols: 3 * H) : nil
        let dScratch = arena.take(rows: 1, cols: batch * c.heads * length * length)
        dh.rows(0, dOut.rows).copy(from: dOut)
        for (l, p) in model.layers.enumerated().reversed() {
            let a = acts[l]
            let n = a.out.rows  // rows after attention: all, or the B selected
            let dOutL = dh.rows(0, n), dS = dS.rows(0, n), dPre = dPre.rows(0, n), dCtx = dCtx.rows(0, n)
            let dG = dG.rows(0, n), dF = dF.rows(0, n), dInTop = dIn.rows(0, n)
            // out = LN2(f2 + h1)
            dS.zero()
            Kernels.layerNormBackward(dInput: dS, dWeight: s.grad(p.ln2w), dBias: s.grad(p.ln2b), dOut: dOutL,
                                      input: a.s2, weight: s.value(p.ln2w), mean: a.mean2, rstd: a.rstd2)
            dropoutGradient(into: dPre, dS, site: 3 + 4 * l)
            Kernels.linearBackward(dInput: dG, dWeight: s.grad(p.f2), dBias: s.grad(p.f2b), dOut: dPre, input: a.g,
                                   weight: s.value(p.f2), overwriteInput: true)
            dF.zero()
            Kernels.geluBackward(dInput: dF, dOut: dG, input: a.f)
            // dH1 = dS (residual) + dF·W1
            let dH1 = dS
            Kernels.linearBackward(dInput: dH1, dWeight: s.grad(p.f1), dBias: s.grad(p.f1b), dOut: dF, input: a.h1,
                                   weight: s.value(p.f1))
            // h1 = LN1(attnOut + input)
            dInTop.zero()
            Kernels.layerNormBackward(dInput: dInTop, dWeight: s.grad(p.ln1w), dBias: s.grad(p.ln1b), dOut: dH1,
                                      input: a.s1, weight: s.value(p.ln1w), mean: a.mean1, rstd: a.rstd1)
            dropoutGradient(into: dPre, dInTop, site: 2 + 4 * l)
            Kernels.linearBackward(dInput: dCtx, dWeight: s.grad(p.o), dBias: s.grad(p.ob), dOut: dPre, input: a.ctx,
                                   weight: s.value(p.o), overwriteInput: true)
            dQKV.zero()
            let call = attentionCall(a.qkv, queries: a.selected, layer: l)
            if a.selected != nil, let dQ {
                // queries of the selected rows, keys/values of all rows
                dQ.zero()
                Kernels.attentionBackward(call, dQ: dQ, dK: dQKV, dV: dQKV, dBias: nil, scratch: dScratch, dOut: dCtx,
                                          probs: a.probs)
                Kernels.embeddingBackward(dTable: dQKV, dOut: dQ, ids: lastRows.base)
                // dInput = dQKV·Wqkv, plus the residual into the selected rows
                let residual = dPre
                residual.copy(from: dInTop)
                Kernels.linearBackward(dInput: dIn, dWeight: s.fusedGrad([p.q, p.k, p.v]),
                                       dBias: s.fusedGrad([p.qb, p.kb, p.vb]).reshaped(rows: 1, cols: 3 * H), dOut: dQKV,
                                       input: a.input, weight: s.fusedValue([p.q, p.k, p.v]), overwriteInput: true)
                Kernels.embeddingBackward(dTable: dIn, dOut: residual, ids: lastRows.base)
            } else {
                Kernels.attentionBackward(call, dQ: dQKV, dK: dQKV, dV: dQKV, dBias: nil, scratch: dScratch, dOut: dCtx,
                                          probs: a.probs)
                // dInput = dIn (residual) + dQKV·Wqkv
                Kernels.linearBackward(dInput: dIn, dWeight: s.fusedGrad([p.q, p.k, p.v]),
                                       dBias: s.fusedGrad([p.qb, p.kb, p.vb]).reshaped(rows: 1, cols: 3 * H), dOut: dQKV,
                                       input: a.input, weight: s.fusedValue([p.q, p.k, p.v]))
            }
            swap(&dh, &dIn)
        }
        // h0 = dropout(LN0(item + position))
        dropoutGradient(into: dS, dh, site: 0)
        dIn.zero()
        Kernels.layerNormBackward(dInput: dIn, dWeight: s.grad(model.lnWeight), dBias: s.grad(model.lnBias), dOut: dS,
                                  input: x!, weight: s.value(model.lnWeight), mean: mean0!, rstd: rstd0!)
        Kernels.embeddingBackward(dTable: s.grad(model.positionEmbedding), dOut: dIn, ids: positions.base)
        // the item lookup gives no gradient to the padding row (padding_idx)
        for r in 0..<rows where ids[r] == 0 { dIn.row(r).zero() }
        Kernels.embeddingBackward(dTable: s.grad(model.itemEmbedding), dOut: dIn, ids: ids.base)
    }

    // MARK: helpers

    /// Causal self-attention over the qkv rows, or with `queries` (one row
    /// per sequence: its last position) those queries against every key of
    /// their sequence — the last position sees all of them, so no mask
    /// beyond the length is needed.
    private func attentionCall(_ qkv: Tensor, queries: Tensor?, layer: Int) -> AttentionCall {
        let c = model.config
        var call = AttentionCall(q: queries ?? qkv, qOffset: 0, k: qkv, kOffset: c.hidden, v: qkv, vOffset: 2 * c.hidden,
                                 batch: batch, queryLength: queries == nil ? length : 1, keyLength: length, heads: c.heads,
                                 headWidth: c.headWidth, outStride: c.hidden)
        call.causal = queries == nil
        call.scale = 1 / Float(c.headWidth).squareRoot()
        call.keyLengths = UnsafePointer(lengths.base)
        if queries == nil { call.queryLengths = UnsafePointer(lengths.base) }
        if training {
            call.dropout = c.attentionDropout
            call.seed = seed
            call.stream = streamID(1 + 4 * layer)
        }
        return call
    }

    private func streamID(_ site: Int) -> UInt64 { step &* 64 &+ UInt64(site) }

    private func dropout(_ t: Tensor, site: Int) {
        guard training, model.config.hiddenDropout > 0 else { return }
        Kernels.dropoutForward(t, into: t, p: model.config.hiddenDropout, seed: seed, stream: streamID(site))
    }

    /// dInput = dropout mask · dOut (the forward's mask; a copy when off).
    private func dropoutGradient(into dInput: Tensor, _ dOut: Tensor, site: Int) {
        let p: Float = training ? model.config.hiddenDropout : 0
        Kernels.dropoutForward(dOut, into: dInput, p: p, seed: seed, stream: streamID(site))
    }

    /// Floats of activation memory this pass holds.
    public var workspaceFloats: Int { arena.capacity }
}
