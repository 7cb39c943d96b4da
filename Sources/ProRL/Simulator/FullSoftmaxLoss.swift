/// Cross-entropy of chosen rows of hidden states against every item, with
/// the item table as the output layer (RecBole's CE loss): mean over rows of
/// `logsumexp(h·Eᵀ) − h·e_target`. Rows are processed in chunks, so the
/// `[N, V]` logits never exist whole; buffers are sized once.
public final class FullSoftmaxLoss: @unchecked Sendable {
    public let maxRows: Int
    public let chunk: Int
    private let width: Int, vocabulary: Int
    private let gathered: FloatBuffer, dGathered: FloatBuffer, logits: FloatBuffer, losses: FloatBuffer
    private let targets: Int32Buffer, rowIDs: Int32Buffer

    public init(maxRows: Int, width: Int, vocabulary: Int, chunk: Int = 1024) {
        self.maxRows = maxRows
        self.width = width
        self.vocabulary = vocabulary
        self.chunk = min(chunk, max(maxRows, 1))
        gathered = FloatBuffer(count: maxRows * width)
        dGathered = FloatBuffer(count: maxRows * width)
        logits = FloatBuffer(count: self.chunk * vocabulary)
        losses = FloatBuffer(count: maxRows)
        targets = Int32Buffer(capacity: maxRows)
        rowIDs = Int32Buffer(capacity: maxRows)
    }

    /// Mean loss over `rows` of `states` (each with its target). With
    /// `dStates`, adds the gradient to those rows of `dStates` and to
    /// `dItems` (the item table's gradient), of the sum over the rows
    /// divided by `meanOver` (by default the rows' count; a shard of a larger
    /// batch passes the whole batch's).
    public func callAsFunction(states: Tensor, rows: [Int], targets t: [Int32], items: Tensor,
                               dStates: Tensor? = nil, dItems: Tensor? = nil, meanOver: Int? = nil) -> Double {
        let n = rows.count
        precondition(n == t.count && n <= maxRows, "loss over \(n) rows (capacity \(maxRows))")
        precondition(states.cols == width && items.cols == width && items.rows == vocabulary, "loss shapes")
        guard n > 0 else { return 0 }
        rowIDs.set(rows.map { Int32($0) })
        Kernels.embeddingForward(out: gathered.tensor(rows: n, cols: width), table: states, ids: rowIDs.base)
        targets.set(t)
        let training = dStates != nil
        var total = 0.0
        var start = 0
        while start < n {
            let m = min(chunk, n - start)
            let h = Tensor(gathered.base + start * width, rows: m, cols: width)
            let z = Tensor(logits.base, rows: m, cols: vocabulary)
            Kernels.scoreLogits(states: h, items: items, into: z)
            let l = Tensor(losses.base + start, rows: m, cols: 1)
            Kernels.crossEntropy(logits: z, targets: targets.base + start, losses: l, dLogits: training ? z : nil,
                                 scale: 1 / Float(meanOver ?? n))
            for i in 0..<m { total += Double(l[i]) }
            if training {
                let dh = Tensor(dGathered.base + start * width, rows: m, cols: width)
                Kernels.gemm(z, items, into: dh)
                if let dItems { Kernels.gemm(transposeA: true, z, h, into: dItems, beta: 1) }
            }
            start += m
        }
        if let dStates {
            Kernels.embeddingBackward(dTable: dStates, dOut: dGathered.tensor(rows: n, cols: width), ids: rowIDs.base)
        }
        return total / Double(n)
    }
}
