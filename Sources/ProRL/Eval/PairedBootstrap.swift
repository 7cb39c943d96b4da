/// Paired bootstrap confidence intervals of a difference of means: two
/// methods scored on the same tasks, tasks resampled with replacement.
public enum PairedBootstrap {
    /// The mean difference and its percentile interval.
    public struct Interval: Codable, Sendable, Equatable {
        public var mean: Double
        public var low: Double
        public var high: Double
        /// Whether the interval excludes zero.
        public var excludesZero: Bool { low > 0 || high < 0 }
    }

    /// Mean of `a[i] − b[i]` with its `level` percentile interval over
    /// `resamples` seeded resamples of the tasks.
    public static func interval(_ a: [Double], _ b: [Double], level: Double = 0.95, resamples: Int = 2000,
                                seed: UInt64 = 2026) -> Interval {
        precondition(a.count == b.count && !a.isEmpty, "paired samples of equal, non-zero length expected")
        let d = zip(a, b).map { $0 - $1 }, n = d.count
        let mean = d.reduce(0, +) / Double(n)
        var rng = SplitMix64(seed: seed)
        var means = [Double](repeating: 0, count: resamples)
        for r in 0..<resamples {
            var s = 0.0
            for _ in 0..<n { s += d[rng.below(n)] }
            means[r] = s / Double(n)
        }
        means.sort()
        let tail = (1 - level) / 2
        let lo = means[min(resamples - 1, max(0, Int((tail * Double(resamples)).rounded(.down))))]
        let hi = means[min(resamples - 1, max(0, Int(((1 - tail) * Double(resamples)).rounded(.up)) - 1))]
        return Interval(mean: mean, low: lo, high: hi)
    }
}
