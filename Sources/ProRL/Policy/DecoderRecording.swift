/// What a ``T5Decoder`` computed for every token it decoded — per decoder
/// layer the residual stream before and between its blocks, the norms'
/// reciprocal RMS, the self-attention q/k/v, the cross-attention queries and
/// the feed-forward activations; then the final norm and the logits — kept so
/// that a teacher-forced ``T5Pass`` over the same tokens takes them instead of
/// recomputing them (RL: the loss pass over the rollouts just sampled).
///
/// Rows are appended step by step (each step's active rows, in the order
/// given); ``row(slot:position:)`` finds one. Buffers are sized for the
/// decoder's capacity, `maxRows · maxSteps` rows, and left unzeroed: pages
/// never written cost no memory, so a recording holds what was decoded.
public final class DecoderRecording: @unchecked Sendable {
    /// One decoder layer's recorded rows (the names of ``T5Pass``'s saved activations).
    struct Layer {
        let y, rstd0, qkv, y1, rstd1, qc, y2, rstd2, fd: FloatBuffer
    }

    public let config: T5Config
    public let maxRows: Int
    public let maxSteps: Int
    let layers: [Layer]
    /// The final norm's input and reciprocal RMS, its output, and the logits
    /// `h · sharedᵀ / √d` (unscaled by any temperature).
    let finalIn, finalRstd, out, logits: FloatBuffer
    /// The token each row was fed.
    let inputs: Int32Buffer
    /// Rows recorded so far.
    public private(set) var rows = 0
    private var rowOf: [Int32]

    public init(config c: T5Config, maxRows: Int, maxSteps: Int) {
        config = c
        self.maxRows = maxRows
        self.maxSteps = maxSteps
        let n = maxRows * maxSteps
        func buffers(_ columns: [Int]) -> [FloatBuffer] { columns.map { FloatBuffer(count: n * $0, zeroed: false) } }
        layers = (0..<c.decoderLayers).map { _ in
            let b = buffers(Self.layerColumns(c))
            return Layer(y: b[0], rstd0: b[1], qkv: b[2], y1: b[3], rstd1: b[4], qc: b[5], y2: b[6], rstd2: b[7], fd: b[8])
        }
        let f = buffers(Self.finalColumns(c))
        (finalIn, finalRstd, out, logits) = (f[0], f[1], f[2], f[3])
        inputs = Int32Buffer(capacity: n)
        rowOf = [Int32](repeating: -1, count: n)
    }

    /// Columns of a ``Layer``'s buffers, in its order: three residual-stream
    /// rows and their norms' reciprocal RMS, q/k/v, the cross queries and
    /// the feed-forward activations.
    static func layerColumns(_ c: T5Config) -> [Int] {
        let C = c.modelWidth, I = c.inner
        return [C, 1, 3 * I, C, 1, I, C, 1, c.ffWidth]
    }

    /// Columns of the final norm's input, reciprocal RMS and output, and of the logits.
    static func finalColumns(_ c: T5Config) -> [Int] { [c.modelWidth, 1, c.modelWidth, c.vocabulary] }

    /// Floats recorded per decoded row.
    public static func floatsPerRow(_ c: T5Config) -> Int {
        c.decoderLayers * layerColumns(c).reduce(0, +) + finalColumns(c).reduce(0, +)
    }

    /// Bytes a recording of this capacity takes when every row is decoded.
    public static func bytes(_ c: T5Config, maxRows: Int, maxSteps: Int) -> Double {
        Double(floatsPerRow(c)) * Double(maxRows * maxSteps) * 4
    }

    /// Forgets every row (a new batch is being decoded).
    public func reset() {
        rows = 0
        for i in rowOf.indices { rowOf[i] = -1 }
    }

    /// Starts a step: the next `slots.count` rows are position `t` of
    /// those cache slots, fed `tokens`. Returns the first of them.
    func beginStep(slots: [Int], tokens: [Int32], position t: Int) -> Int {
        precondition(t < maxSteps && rows + slots.count <= maxRows * maxSteps, "recording full")
        let first = rows
        for (i, slot) in slots.enumerated() {
            precondition(slot < maxRows && rowOf[slot * maxSteps + t] < 0, "slot \(slot) recorded twice at position \(t)")
            rowOf[slot * maxSteps + t] = Int32(first + i)
            inputs[first + i] = tokens[i]
        }
        rows += slots.count
        return first
    }

    /// The recorded row of position `t` of cache slot `slot`, nil if none.
    public func row(slot: Int, position t: Int) -> Int? {
        guard slot < maxRows, t < maxSteps else { return nil }
        let r = rowOf[slot * maxSteps + t]
        return r < 0 ? nil : Int(r)
    }

    /// Copies `t` (`[m, cols]`) into rows `first…first+m−1` of `buffer`.
    static func keep(_ t: Tensor, in buffer: FloatBuffer, at first: Int) {
        Tensor(buffer.base + first * t.cols, rows: t.rows, cols: t.cols).copy(from: t)
    }

    /// `buffer` as a `[maxRows · maxSteps, cols]` table to gather rows from.
    func table(_ buffer: FloatBuffer, cols: Int) -> Tensor { buffer.tensor(rows: maxRows * maxSteps, cols: cols) }
}
