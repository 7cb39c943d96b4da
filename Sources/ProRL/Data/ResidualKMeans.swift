/// Semantic IDs by residual k-means (the RQ-k-means of TIGER-style
/// recommenders): level 1 clusters the item embeddings, each later level
/// clusters what the previous levels left unexplained, and a final
/// collision digit (1, 2, … in item order) separates items that received
/// the same codes. Seeded, deterministic, in double precision.
public enum ResidualKMeans {
    public struct Settings: Codable, Sendable, Equatable {
        public var levels = 3
        public var codebookSize = 256
        public var iterations = 25
        public var seed: UInt64 = 2024
        public init() {}
    }

    /// Codes for items 1...N given their embeddings (`embeddings[i]` for
    /// dense id i; row 0 ignored). Each result has `levels + 1` digits.
    public static func codes(embeddings: [[Float]], settings s: Settings = Settings()) throws -> [[Int]] {
        let n = embeddings.count - 1
        guard n >= 1 else { throw DataError(file: "residual k-means", "no items") }
        let width = embeddings[1].count
        guard width >= 1, embeddings.dropFirst().allSatisfy({ $0.count == width }) else {
            throw DataError(file: "residual k-means", "embeddings must all have the same width ≥ 1")
        }
        var residual = embeddings.dropFirst().map { $0.map(Double.init) }
        var codes = [[Int]](repeating: [], count: n)
        var rng = SplitMix64(seed: s.seed)
        for _ in 0..<s.levels {
            let k = min(s.codebookSize, n)
            let (centroids, assignment) = kmeans(residual, k: k, iterations: s.iterations, rng: &rng)
            for i in 0..<n {
                codes[i].append(assignment[i])
                for c in 0..<width { residual[i][c] -= centroids[assignment[i]][c] }
            }
        }
        // collision digit
        var seen: [[Int]: Int] = [:]
        for i in 0..<n {
            let next = (seen[codes[i]] ?? 0) + 1
            seen[codes[i]] = next
            guard next < s.codebookSize else {
                throw DataError(file: "residual k-means", "more than \(s.codebookSize - 1) items share codes \(codes[i]): add a level")
            }
            codes[i].append(next)
        }
        return [[]] + codes
    }

    /// Lloyd's algorithm with k-means++ seeding; empty clusters are
    /// re-seeded with the point farthest from its centroid.
    static func kmeans(_ x: [[Double]], k: Int, iterations: Int, rng: inout SplitMix64) -> ([[Double]], [Int]) {
        let n = x.count, w = x[0].count
        func dist(_ a: [Double], _ b: [Double]) -> Double {
            var s = 0.0
            for c in 0..<w { let d = a[c] - b[c]; s += d * d }
            return s
        }
        var centroids = [x[rng.below(n)]]
        var nearest = x.map { dist($0, centroids[0]) }
        while centroids.count < k {
            let total = nearest.reduce(0, +)
            var pick = 0
            if total > 0 {
                var u = rng.nextUnit() * total
                for i in 0..<n { u -= nearest[i]; if u < 0 { pick = i; break } ; pick = i }
            } else { pick = rng.below(n) }
            centroids.append(x[pick])
            for i in 0..<n { nearest[i] = min(nearest[i], dist(x[i], x[pick])) }
        }
        var assignment = [Int](repeating: 0, count: n)
        for _ in 0..<max(1, iterations) {
            var changed = false
            for i in 0..<n {
                var best = 0, bestD = Double.infinity
                for j in 0..<k { let d = dist(x[i], centroids[j]); if d < bestD { bestD = d; best = j } }
                if best != assignment[i] { changed = true; assignment[i] = best }
            }
            var sums = [[Double]](repeating: [Double](repeating: 0, count: w), count: k)
            var counts = [Int](repeating: 0, count: k)
            for i in 0..<n {
                counts[assignment[i]] += 1
                for c in 0..<w { sums[assignment[i]][c] += x[i][c] }
            }
            for j in 0..<k {
                if counts[j] > 0 {
                    centroids[j] = sums[j].map { $0 / Double(counts[j]) }
                } else {
                    let far = (0..<n).max { dist(x[$0], centroids[assignment[$0]]) < dist(x[$1], centroids[assignment[$1]]) }!
                    centroids[j] = x[far]
                    assignment[far] = j
                    changed = true
                }
            }
            if !changed { break }
        }
        return (centroids, assignment)
    }
}
