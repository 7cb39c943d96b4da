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

/// ‖observed − expected‖ / max(‖expected‖, √n · floor): 0 when equal.
public func normwiseError(_ observed: [Float], _ expected: [Double], floor: Double = 0) -> Double {
    precondition(observed.count == expected.count, "compared arrays differ in length")
    var diff = 0.0, norm = 0.0
    for i in 0..<observed.count {
        let d = Double(observed[i]) - expected[i]
        diff += d * d
        norm += expected[i] * expected[i]
    }
    guard diff > 0 else { return 0 }
    return diff.squareRoot() / max(norm.squareRoot(), Double(observed.count).squareRoot() * floor, .leastNormalMagnitude)
}

/// What a comparison with a reference (fp32 libraries, double loops) may
/// allow at the precision of the kernels' products on the calling thread
/// (``Kernels/precision``; `PRORL_PRECISION=bf16` makes bf16 the default,
/// as `make test-swift-bf16` runs the suite).
public enum Products {
    /// Whether this thread's products run in bf16 (asked for, and available).
    public static var areBF16: Bool { Kernels.precision == .bf16 && Kernels.bf16Available }

    /// The error bound of a K-term dot product, as a multiple of Σ|terms|:
    /// fp32 sums (K + 2)·ε; bf16 operands add 2⁻⁷ + 2⁻¹⁶ + K·2⁻²⁴ (each
    /// operand rounded to 8 significant bits, pk_gemm_bf16's stated bound).
    public static func dotBound(terms k: Int) -> Double {
        let fp32 = Double(k + 2) * Double(Float.ulpOfOne)
        return areBF16 ? fp32 + 1.0 / 128 + 1.0 / 65_536 + Double(k) / 16_777_216 : fp32
    }

    /// Normwise relative error a sequence model's outputs, loss and
    /// gradients may have at bf16 products against an fp32 reference: each
    /// product's operands carry up to 2⁻⁹ relative rounding, and a few layers
    /// forward and back add up to about 1 % (measured: at most 1.1 % on the
    /// SASRec and GRU4Rec goldens); a wrong formula is off by O(1).
    public static let bf16ModelError = 0.03

    /// nil when `observed` matches `expected`: elementwise within
    /// `tolerance` at fp32; at bf16 within ``bf16ModelError`` normwise,
    /// ‖observed − expected‖ ≤ 0.03 · max(‖expected‖, √n · floor) (`floor`,
    /// the scale of the values the tensor is made of, keeps a tensor that
    /// is zero up to rounding from being judged against its own noise).
    /// Otherwise a description of the mismatch.
    public static func mismatch(_ observed: [Float], _ expected: [Double], tolerance: Double, floor: Double = 0) -> String? {
        guard observed.count == expected.count else { return "\(observed.count) values, expected \(expected.count)" }
        guard areBF16 else { return firstMismatch(observed, expected, tolerance: tolerance).map { "\($0)" } }
        let relative = normwiseError(observed, expected, floor: floor)
        return relative <= bf16ModelError ? nil
            : "normwise relative error \(relative) at bf16 products (allowed \(bf16ModelError))"
    }

    /// |observed − expected| ≤ `relative`·|expected| at fp32, ≤ ``bf16ModelError``·|expected| at bf16.
    public static func close(_ observed: Double, _ expected: Double, relative: Double) -> Bool {
        abs(observed - expected) <= (areBF16 ? bf16ModelError : relative) * abs(expected)
    }
}
