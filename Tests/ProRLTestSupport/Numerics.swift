import ProRL

/// A seeded generator for reproducible test inputs (the engine's splitmix64).
public typealias SeededGenerator = SplitMix64

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
