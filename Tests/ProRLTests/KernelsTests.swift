import Foundation
import ProRL
import ProRLTestSupport
import Testing

/// The Swift door to the kernels: shapes are forwarded correctly and results
/// are identical for 1, 2 and 3 threads. (The kernels' numerics are tested
/// in depth by the C test program, Tests/CKernelsTests.)
@Suite("Kernels from Swift", .serialized)
struct KernelsTests {
    @Test("linear forward matches a double reference")
    func linearForward() throws {
        var rng = SeededGenerator(seed: 1)
        let (n, i, o) = (37, 45, 29)
        let x = FloatBuffer.random(count: n * i, using: &rng), w = FloatBuffer.random(count: o * i, using: &rng)
        let b = FloatBuffer.random(count: o, using: &rng), y = FloatBuffer(count: n * o)
        Kernels.linearForward(out: y.tensor(rows: n, cols: o), input: x.tensor(rows: n, cols: i),
                              weight: w.tensor(rows: o, cols: i), bias: b.flat)
        var expected = [Double](repeating: 0, count: n * o)
        for r in 0..<n {
            for c in 0..<o {
                var s = Double(b.base[c])
                for k in 0..<i { s += Double(x.base[r * i + k]) * Double(w.base[c * i + k]) }
                expected[r * o + c] = s
            }
        }
        // |error| ≤ bound·Σ|terms| (fp32: (I + 2)·ε; bf16 adds the operands'
        // rounding) with Σ|terms| ≤ I + 1 for inputs in [−1, 1)
        let tolerance = Products.dotBound(terms: i + 1) * Double(i + 1)
        let bad = firstMismatch(y.flat.toArray(), expected, tolerance: tolerance)
        #expect(bad == nil, "linear forward vs double: \(String(describing: bad)), tolerance \(tolerance)")
    }

    @Test("products at bf16: within the bf16 bound of fp32, the fp32 path restored bit for bit, settings default to the process's precision")
    func precision() throws {
        var rng = SeededGenerator(seed: 3)
        let (n, i, o) = (41, 128, 67)
        let x = FloatBuffer.random(count: n * i, using: &rng), w = FloatBuffer.random(count: o * i, using: &rng)
        func forward() -> [Float] {
            let y = FloatBuffer(count: n * o)
            Kernels.linearForward(out: y.tensor(rows: n, cols: o), input: x.tensor(rows: n, cols: i), weight: w.tensor(rows: o, cols: i))
            return y.flat.toArray()
        }
        let environment = ProcessInfo.processInfo.environment["PRORL_PRECISION"]
        #expect(Precision.processDefault == (environment == "bf16" ? .bf16 : .fp32), "the default follows PRORL_PRECISION (\(environment ?? "unset"))")
        #expect(Kernels.precision == Precision.processDefault, "a thread that set nothing has the process default")
        let fp32 = Kernels.withPrecision(.fp32) { forward() }
        let bf16 = Kernels.withPrecision(.bf16) { forward() }
        #expect(Kernels.precision == Precision.processDefault, "withPrecision restores the setting")
        #expect(Kernels.withPrecision(.fp32) { forward() } == fp32, "the fp32 path after a bf16 section is the same bit for bit")
        if Kernels.bf16Available {
            #expect(bf16 != fp32, "bf16 products should differ from fp32 ones")
            // |Δ| ≤ (2⁻⁷ + 2⁻¹⁶ + I·2⁻²⁴)·Σ|x w|, Σ|x w| ≤ I for inputs in [−1, 1)
            let bound = (1.0 / 128 + 1.0 / 65_536 + Double(i) / 16_777_216) * Double(i) + Double(2 * i) * Double(Float.ulpOfOne) * Double(i)
            let worst = zip(bf16, fp32).map { abs(Double($0) - Double($1)) }.max()!
            #expect(worst <= bound, "bf16 vs fp32 products: worst \(worst), bound \(bound)")
        } else {
            #expect(bf16 == fp32, "without AVX512-BF16, bf16 products are fp32 ones")
        }
        // new settings take the process default; a run's settings from before
        // precision existed read as fp32; bf16 survives a round trip
        #expect(RLSettings().precision == Precision.processDefault && PretrainingSettings().precision == Precision.processDefault)
        let old = try JSONDecoder().decode(RLSettings.self, from: Data("{}".utf8))
        #expect(old.precision == .fp32)
        var s = RLSettings()
        s.precision = .bf16
        #expect(try JSONDecoder().decode(RLSettings.self, from: try JSONEncoder().encode(s)).precision == .bf16)
    }

    @Test("results are bit-identical for 1, 2 and 3 threads")
    func threadDeterminism() throws {
        var rng = SeededGenerator(seed: 2)
        let (n, c) = (513, 96)
        let x = FloatBuffer.random(count: n * c, using: &rng), w = FloatBuffer.random(count: c * c, using: &rng)
        let g = FloatBuffer.random(count: n * c, using: &rng)
        let saved = Kernels.threads
        defer { Kernels.threads = saved }
        var results: [[Float]] = []
        for threads in 1...3 {
            Kernels.threads = threads
            let dx = FloatBuffer(count: n * c), dw = FloatBuffer(count: c * c), db = FloatBuffer(count: c)
            Kernels.linearBackward(dInput: dx.tensor(rows: n, cols: c), dWeight: dw.tensor(rows: c, cols: c),
                                   dBias: db.flat, dOut: g.tensor(rows: n, cols: c), input: x.tensor(rows: n, cols: c),
                                   weight: w.tensor(rows: c, cols: c))
            results.append(dx.flat.toArray() + dw.flat.toArray() + db.flat.toArray())
        }
        #expect(results[0] == results[1], "linear backward: 1 vs 2 threads differ")
        #expect(results[0] == results[2], "linear backward: 1 vs 3 threads differ")
    }

    @Test("item score statistics agree with materialised logits")
    func scoreStatistics() throws {
        var rng = SeededGenerator(seed: 3)
        let (b, v, c) = (40, 300, 64)
        let u = FloatBuffer.random(count: b * c, using: &rng), items = FloatBuffer.random(count: v * c, using: &rng)
        let targets = (0..<b).map { _ in Int32.random(in: 0..<Int32(v), using: &rng) }
        let lse = FloatBuffer(count: b), ts = FloatBuffer(count: b)
        var rank = [Int32](repeating: 0, count: b)
        targets.withUnsafeBufferPointer { t in
            rank.withUnsafeMutableBufferPointer { r in
                Kernels.scoreStatistics(states: u.tensor(rows: b, cols: c), items: items.tensor(rows: v, cols: c),
                                        targets: t.baseAddress, logSumExp: lse.flat, targetScore: ts.flat,
                                        rank: r.baseAddress)
            }
        }
        let logits = FloatBuffer(count: b * v)
        Kernels.scoreLogits(states: u.tensor(rows: b, cols: c), items: items.tensor(rows: v, cols: c),
                            into: logits.tensor(rows: b, cols: v))
        for row in 0..<b {
            let scores = (0..<v).map { Double(logits.base[row * v + $0]) }
            let m = scores.max()!
            let expectedLse = m + log(scores.reduce(0) { $0 + exp($1 - m) })
            // scores are sums of 64 products of size ≤ 1: absolute error ≤ 66·64·ε
            // (at bf16 products the materialised logits add their operands' rounding)
            let tol = Products.dotBound(terms: 64) * 64
            #expect(abs(Double(lse.base[row]) - expectedLse) <= tol * 2,
                    "row \(row): lse \(lse.base[row]) vs \(expectedLse)")
            let t = Double(ts.base[row])
            let higher = scores.enumerated().filter { $0.offset != Int(targets[row]) && $0.element > t + tol }.count
            let tied = scores.enumerated().filter { $0.offset != Int(targets[row]) && abs($0.element - t) <= tol }.count
            #expect(Int(rank[row]) >= higher + 1 && Int(rank[row]) <= higher + 1 + tied,
                    "row \(row): rank \(rank[row]), expected \(higher + 1) (+\(tied) near-ties)")
        }
    }
}

import Foundation

@Suite("Arena")
struct ArenaTests {
    @Test("an arena grows during the first step and never allocates in later ones")
    func growsOnceThenStays() {
        let arena = Arena(capacity: 1000)
        func step() -> [Tensor] {
            arena.reset()
            return [arena.take(rows: 30, cols: 20), arena.take(rows: 70_000, cols: 1), arena.take(rows: 5, cols: 7),
                    arena.take(rows: 1, cols: 100_000), arena.take(rows: 3, cols: 3)]
        }
        var views = step()
        // views of one step never overlap
        for (i, a) in views.enumerated() {
            a.fill(Float(i))
        }
        for (i, a) in views.enumerated() { #expect(a.toArray().allSatisfy { $0 == Float(i) }, "view \(i) was overwritten") }
        let afterFirst = arena.allocations
        #expect(afterFirst >= 1, "the first step had to grow")
        views = step()
        let afterSecond = arena.allocations
        for _ in 0..<3 { views = step() }
        #expect(arena.allocations == afterSecond, "steps after the consolidation allocated \(arena.allocations - afterSecond) blocks")
        #expect(afterSecond == afterFirst + 1, "one consolidation")
        _ = views
    }
}
