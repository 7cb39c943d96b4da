/// Owned Int32 memory (token ids, lengths, targets) handed to the kernels
/// without per-call array bridging; freed on deinit.
public final class Int32Buffer: @unchecked Sendable {
    public let base: UnsafeMutablePointer<Int32>
    public let capacity: Int

    public init(capacity: Int) {
        self.capacity = max(capacity, 1)
        base = .allocate(capacity: self.capacity)
        base.initialize(repeating: 0, count: self.capacity)
    }

    deinit { base.deallocate() }

    public subscript(i: Int) -> Int32 {
        get { base[i] }
        set { base[i] = newValue }
    }

    /// Copies `values` to the start of the buffer.
    public func set(_ values: [Int32]) {
        precondition(values.count <= capacity, "\(values.count) values into a buffer of \(capacity)")
        values.withUnsafeBufferPointer { base.update(from: $0.baseAddress!, count: values.count) }
    }
}
