import ProRL

/// A seeded generator (splitmix64) for reproducible test inputs.
public struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension FloatBuffer {
    /// A buffer of `count` values uniform in [−amplitude, amplitude).
    public static func random(count: Int, amplitude: Float = 1, using rng: inout SeededGenerator) -> FloatBuffer {
        let b = FloatBuffer(count: count)
        for i in 0..<count { b.base[i] = Float.random(in: -amplitude..<amplitude, using: &rng) }
        return b
    }
}

/// The first index where |observed − expected| > tolerance, with the values,
/// or nil when all agree. Tolerances are absolute: callers derive them from
/// the problem's scale, never from the element checked.
public func firstMismatch(_ observed: [Float], _ expected: [Double], tolerance: Double)
    -> (index: Int, observed: Float, expected: Double, error: Double)?
{
    precondition(observed.count == expected.count, "compared arrays differ in length")
    for i in 0..<observed.count {
        let err = abs(Double(observed[i]) - expected[i])
        if !(err <= tolerance) { return (i, observed[i], expected[i], err) }
    }
    return nil
}
