/// Owned, 64-byte aligned, zero-initialised float memory, freed on deinit.
public final class FloatBuffer: @unchecked Sendable {
    /// First element.
    public let base: UnsafeMutablePointer<Float>
    /// Number of floats.
    public let count: Int

    /// - Parameter zeroed: fill with zeros (else the contents are
    ///   unspecified, and pages never touched cost no memory).
    public init(count: Int, zeroed: Bool = true) {
        precondition(count >= 0, "negative buffer size \(count)")
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        if zeroed { base.initialize(repeating: 0, count: max(count, 1)) }
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

/// A bump allocator for activations: a model hands out views with
/// ``take(rows:cols:)`` during a step and calls ``reset()`` before the next.
/// If a step needs more than the arena holds, it chains another block (the
/// views already handed out stay valid); the next ``reset()`` replaces the
/// blocks by one block of the high-water size. So the first step may
/// allocate; every later step of the same or a smaller size allocates
/// nothing.
public final class Arena: @unchecked Sendable {
    /// A position to rewind to (see ``mark`` and ``rewind(to:)``).
    public struct Mark: Sendable { let block: Int, offset: Int, used: Int }

    private var blocks: [FloatBuffer]
    private var block = 0, offset = 0
    /// Floats handed out since the last reset (alignment included).
    public private(set) var used = 0
    /// Largest `used` seen.
    public private(set) var highWater = 0
    /// Blocks allocated after construction (growth and consolidation).
    public private(set) var allocations = 0

    public init(capacity: Int) { blocks = [FloatBuffer(count: max(capacity, 1024), zeroed: false)] }

    /// Floats held (all blocks).
    public var capacity: Int { blocks.reduce(0) { $0 + $1.count } }

    /// Forgets every view handed out (their memory will be reused).
    public func reset() {
        if blocks.count > 1 {
            blocks = [FloatBuffer(count: highWater + 64, zeroed: false)]
            allocations += 1
        }
        block = 0
        offset = 0
        used = 0
    }

    /// The current position.
    public var mark: Mark { Mark(block: block, offset: offset, used: used) }

    /// Forgets the views handed out after `mark`.
    public func rewind(to mark: Mark) {
        precondition(mark.used <= used, "rewind to a later mark")
        block = mark.block
        offset = mark.offset
        used = mark.used
    }

    /// A fresh `[rows, cols]` view, 16-float aligned. Contents are whatever
    /// the memory last held.
    public func take(rows: Int, cols: Int) -> Tensor {
        let n = rows * cols
        var start = (offset + 15) & ~15
        if start + n > blocks[block].count {
            // the rest of this block is skipped; count it, so the high-water
            // mark is what one contiguous block would need
            used += blocks[block].count - offset
            block += 1
            if block == blocks.count {
                blocks.append(FloatBuffer(count: max(n, blocks[0].count / 4, 1 << 16), zeroed: false))
                allocations += 1
            } else if blocks[block].count < n {
                blocks[block] = FloatBuffer(count: n, zeroed: false)  // later blocks hold no live views
                allocations += 1
            }
            offset = 0
            start = 0
        }
        used += (start - offset) + n
        offset = start + n
        highWater = max(highWater, used)
        return Tensor(blocks[block].base + start, rows: rows, cols: cols)
    }

    /// Like ``take(rows:cols:)`` but zeroed.
    public func zeros(rows: Int, cols: Int) -> Tensor {
        let t = take(rows: rows, cols: cols)
        t.zero()
        return t
    }
}
