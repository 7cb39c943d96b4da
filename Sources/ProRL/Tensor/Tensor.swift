/// A row-major `[rows, cols]` view of float memory owned elsewhere (a
/// ``FloatBuffer`` or a ``ParameterStore``). A view never owns or frees its
/// memory, and making one allocates nothing, so hot loops can slice freely.
/// Higher-rank data (`[B, T, C]`) is viewed flattened as `[B·T, C]`; the
/// kernels that need the extra dimensions take them explicitly.
public struct Tensor: @unchecked Sendable {
    /// First element.
    public let base: UnsafeMutablePointer<Float>
    /// Number of rows (all leading dimensions multiplied).
    public let rows: Int
    /// Number of columns (the last dimension).
    public let cols: Int

    public init(_ base: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
        precondition(rows >= 0 && cols >= 0, "negative tensor shape [\(rows), \(cols)]")
        self.base = base
        self.rows = rows
        self.cols = cols
    }

    /// Number of elements.
    public var count: Int { rows * cols }

    /// Element `i` of the flattened view.
    public subscript(i: Int) -> Float {
        get { base[i] }
        nonmutating set { base[i] = newValue }
    }

    /// Element at `(row, col)`.
    public subscript(row: Int, col: Int) -> Float {
        get { base[row * cols + col] }
        nonmutating set { base[row * cols + col] = newValue }
    }

    /// The same memory viewed as `[rows, cols]` (same element count).
    public func reshaped(rows newRows: Int, cols newCols: Int) -> Tensor {
        precondition(newRows * newCols == count, "cannot view [\(rows), \(cols)] as [\(newRows), \(newCols)]")
        return Tensor(base, rows: newRows, cols: newCols)
    }

    /// Rows `[start, start + n)`.
    public func rows(_ start: Int, _ n: Int) -> Tensor {
        precondition(start >= 0 && n >= 0 && start + n <= rows, "rows \(start)..<\(start + n) of \(rows)")
        return Tensor(base + start * cols, rows: n, cols: cols)
    }

    /// Row `r` as a `[1, cols]` view.
    public func row(_ r: Int) -> Tensor { rows(r, 1) }

    /// Sets every element to zero.
    public func zero() { Kernels.timed("zero") { base.update(repeating: 0, count: count) } }

    /// Sets every element to `value`.
    public func fill(_ value: Float) { base.update(repeating: value, count: count) }

    /// Copies `other` (same element count) into this view.
    public func copy(from other: Tensor) {
        precondition(other.count == count, "copy of \(other.count) elements into \(count)")
        Kernels.timed("copy") { base.update(from: other.base, count: count) }
    }

    /// Copies `values` (same element count) into this view.
    public func copy(from values: [Float]) {
        precondition(values.count == count, "copy of \(values.count) values into \(count)")
        values.withUnsafeBufferPointer { base.update(from: $0.baseAddress!, count: count) }
    }

    /// The elements as an array (allocates; for tests, checkpoints and reports).
    public func toArray() -> [Float] { Array(UnsafeBufferPointer(start: base, count: count)) }
}
