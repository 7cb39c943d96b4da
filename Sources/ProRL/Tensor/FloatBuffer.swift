/// Owned, 64-byte aligned, zero-initialised float memory, freed on deinit.
public final class FloatBuffer: @unchecked Sendable {
    /// First element.
    public let base: UnsafeMutablePointer<Float>
    /// Number of floats.
    public let count: Int

    public init(count: Int) {
        precondition(count >= 0, "negative buffer size \(count)")
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        base.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { base.deallocate() }

    /// The whole buffer as `[rows, cols]` (rows·cols must equal count).
    public func tensor(rows: Int, cols: Int) -> Tensor {
        precondition(rows * cols <= count, "view [\(rows), \(cols)] larger than buffer of \(count)")
        return Tensor(base, rows: rows, cols: cols)
    }

    /// The whole buffer as `[1, count]`.
    public var flat: Tensor { Tensor(base, rows: 1, cols: count) }

    public subscript(i: Int) -> Float {
        get { base[i] }
        set { base[i] = newValue }
    }
}

/// A bump allocator over one ``FloatBuffer``: a model sizes its workspace
/// once for the largest batch it will see and carves activation views out
/// of it at every step with ``take(rows:cols:)``, after ``reset()``, so no
/// step allocates.
public final class Arena: @unchecked Sendable {
    private let buffer: FloatBuffer
    /// Floats handed out since the last reset.
    public private(set) var used = 0
    /// Largest `used` seen (to size the arena exactly next time).
    public private(set) var highWater = 0

    public init(capacity: Int) { buffer = FloatBuffer(count: capacity) }

    /// Total floats available.
    public var capacity: Int { buffer.count }

    /// Forgets every view handed out (their memory will be reused).
    public func reset() { used = 0 }

    /// Forgets the views handed out after `mark` (an earlier `used`).
    public func rewind(to mark: Int) {
        precondition(mark >= 0 && mark <= used, "rewind to \(mark) beyond \(used)")
        used = mark
    }

    /// A fresh `[rows, cols]` view, 16-float aligned. Contents are whatever
    /// the memory last held.
    public func take(rows: Int, cols: Int) -> Tensor {
        let n = rows * cols
        let start = (used + 15) & ~15
        precondition(start + n <= buffer.count, "arena exhausted: need \(start + n) floats of \(buffer.count)")
        used = start + n
        highWater = max(highWater, used)
        return Tensor(buffer.base + start, rows: rows, cols: cols)
    }

    /// Like ``take(rows:cols:)`` but zeroed.
    public func zeros(rows: Int, cols: Int) -> Tensor {
        let t = take(rows: rows, cols: cols)
        t.zero()
        return t
    }
}
