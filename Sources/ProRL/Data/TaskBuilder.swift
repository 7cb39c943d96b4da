/// Builds proactive-recommendation tasks from users' sequences.
///
/// Procedure (all choices seeded, so the same log and settings always give
/// the same tasks):
/// 1. Users are shuffled with the seed and cut into disjoint train /
///    validation / test groups by `splitFractions`.
/// 2. For each user with at least `minSequenceLength` events, up to
///    `tasksPerUser` windows are drawn: an end position `e` uniform over
///    the positions that leave room for a history, a path length `L` from
///    `pathLengths` (capped by the room before `e`); then
///    history = the `historyLength` items before the path,
///    path = items `e−L ..< e`, target = item `e`.
/// 3. A window is kept when it passes the filters — target not in the
///    history (`targetNotInHistory`), target not in the path
///    (`targetNotInPath`), path items distinct (`distinctPath`) — and is not
///    a repeat of an earlier window of the same user. At most
///    `attemptsPerTask · tasksPerUser` draws are made per user.
public struct TaskConstruction: Codable, Sendable, Equatable {
    /// How path lengths are drawn.
    public enum PathLengths: Codable, Sendable, Equatable {
        /// Uniform on 1...maxPathLength.
        case uniform
        /// P(L) ∝ (1 − p)^(L−1) on 1...maxPathLength (short paths common, as
        /// in the official ProRL splits).
        case geometric(p: Double)
    }

    public var historyLength = 10
    public var maxPathLength = 10
    public var pathLengths = PathLengths.geometric(p: 0.35)
    public var tasksPerUser = 8
    /// Windows per validation and test user (nil: `tasksPerUser`), so the
    /// training set can grow without making evaluation slower.
    public var evaluationTasksPerUser: Int? = nil
    public var minSequenceLength = 12
    public var targetNotInHistory = true
    public var targetNotInPath = true
    public var distinctPath = false
    public var attemptsPerTask = 20
    /// Fractions of users in train, validation and test (normalised).
    public var splitFractions: [Double] = [0.8, 0.1, 0.1]
    public var seed: UInt64 = 2024

    public init() {}

    /// Checks the settings; a bad value is an error naming it.
    public func validate() throws {
        func bad(_ field: String, _ message: String) -> DataError { .setting("task settings", "\(field): \(message)") }
        guard historyLength >= 1 else { throw bad("historyLength", "expected ≥ 1, found \(historyLength)") }
        guard maxPathLength >= 1 else { throw bad("maxPathLength", "expected ≥ 1, found \(maxPathLength)") }
        guard tasksPerUser >= 1 else { throw bad("tasksPerUser", "expected ≥ 1, found \(tasksPerUser)") }
        if let e = evaluationTasksPerUser, e < 1 { throw bad("evaluationTasksPerUser", "expected ≥ 1, found \(e)") }
        guard minSequenceLength >= historyLength + 2 else {
            throw bad("minSequenceLength", "expected ≥ historyLength + 2 = \(historyLength + 2), found \(minSequenceLength)")
        }
        guard splitFractions.count == 3, splitFractions.allSatisfy({ $0 >= 0 }), splitFractions.reduce(0, +) > 0 else {
            throw bad("splitFractions", "expected three non-negative fractions, found \(splitFractions)")
        }
        if case .geometric(let p) = pathLengths, !(p > 0 && p <= 1) {
            throw bad("pathLengths", "geometric p must be in (0, 1], found \(p)")
        }
    }
}

/// Tasks split by user into train, validation and test.
public struct TaskSplits: Sendable {
    public var train: [ProactiveTask]
    public var validation: [ProactiveTask]
    public var test: [ProactiveTask]

    public init(train: [ProactiveTask], validation: [ProactiveTask], test: [ProactiveTask]) {
        self.train = train
        self.validation = validation
        self.test = test
    }

    public var all: [(name: String, tasks: [ProactiveTask])] {
        [("train", train), ("validation", validation), ("test", test)]
    }
}

public enum TaskBuilder {
    /// Tasks from every user of `log`, split by user.
    public static func build(_ log: InteractionLog, settings s: TaskConstruction) throws -> TaskSplits {
        try s.validate()
        var order = Array(log.users.indices)
        var rng = SplitMix64(seed: s.seed)
        order.sortByStableKey { stableHash(log.users[$0].user) }
        rng.shuffle(&order)
        let total = s.splitFractions.reduce(0, +)
        let nTrain = Int((Double(order.count) * s.splitFractions[0] / total).rounded())
        let nVal = Int((Double(order.count) * s.splitFractions[1] / total).rounded())
        var groups: [[ProactiveTask]] = [[], [], []]
        for (rank, u) in order.enumerated() {
            let g = rank < nTrain ? 0 : (rank < nTrain + nVal ? 1 : 2)
            var settings = s
            if g > 0, let e = s.evaluationTasksPerUser { settings.tasksPerUser = e }
            groups[g] += windows(log.users[u], settings: settings)
        }
        return TaskSplits(train: groups[0], validation: groups[1], test: groups[2])
    }

    /// Splits existing tasks by user (tasks without a user count as their
    /// own user): a seeded `validationFraction` of users go to validation.
    public static func splitByUser(_ tasks: [ProactiveTask], validationFraction: Double, seed: UInt64)
        -> (train: [ProactiveTask], validation: [ProactiveTask])
    {
        var users = Array(Set(tasks.enumerated().map { $0.element.user ?? "#\($0.offset)" })).sorted()
        var rng = SplitMix64(seed: seed)
        rng.shuffle(&users)
        let held = Set(users.prefix(Int((Double(users.count) * validationFraction).rounded())))
        var train: [ProactiveTask] = [], validation: [ProactiveTask] = []
        for (i, t) in tasks.enumerated() {
            if held.contains(t.user ?? "#\(i)") { validation.append(t) } else { train.append(t) }
        }
        return (train, validation)
    }

    /// The windows of one user (see ``TaskConstruction``).
    public static func windows(_ user: InteractionLog.UserSequence, settings s: TaskConstruction) -> [ProactiveTask] {
        let items = user.items, n = items.count, h = s.historyLength
        guard n >= s.minSequenceLength, n >= h + 2 else { return [] }
        var rng = SplitMix64(seed: s.seed ^ stableHash(user.user))
        var seen = Set<[Int]>()
        var out: [(end: Int, task: ProactiveTask)] = []
        for _ in 0..<(s.tasksPerUser * s.attemptsPerTask) {
            if out.count == s.tasksPerUser { break }
            let end = rng.uniform(in: (h + 1)...(n - 1))
            let room = min(s.maxPathLength, end - h)
            let length = drawLength(s.pathLengths, max: room, using: &rng)
            let key = [end, length]
            if seen.contains(key) { continue }
            seen.insert(key)
            let history = Array(items[(end - length - h)..<(end - length)])
            let path = Array(items[(end - length)..<end])
            let target = items[end]
            if s.targetNotInHistory && history.contains(target) { continue }
            if s.targetNotInPath && path.contains(target) { continue }
            if s.distinctPath && Set(path).count != path.count { continue }
            out.append((end, ProactiveTask(user: user.user, history: history, path: path, target: target)))
        }
        return out.sorted { $0.end < $1.end }.map(\.task)
    }

    private static func drawLength(_ d: TaskConstruction.PathLengths, max: Int, using rng: inout SplitMix64) -> Int {
        switch d {
        case .uniform: return rng.uniform(in: 1...max)
        case .geometric(let p):
            // inverse CDF of the geometric law truncated to 1...max
            var weights: [Double] = []
            var w = 1.0
            for _ in 1...max { weights.append(w); w *= 1 - p }
            var u = rng.nextUnit() * weights.reduce(0, +)
            for (i, wi) in weights.enumerated() {
                if u < wi { return i + 1 }
                u -= wi
            }
            return max
        }
    }
}

/// Summary of a task set: counts and the path-length histogram.
public struct TaskStatistics: Sendable, CustomStringConvertible {
    public let count: Int
    public let users: Int
    public let targets: Int
    public let meanPathLength: Double
    /// histogram[L] = tasks with path length L (index 0 unused).
    public let pathLengthHistogram: [Int]

    public init(_ tasks: [ProactiveTask]) {
        count = tasks.count
        users = Set(tasks.compactMap(\.user)).count
        targets = Set(tasks.map(\.target)).count
        meanPathLength = tasks.isEmpty ? 0 : Double(tasks.reduce(0) { $0 + $1.path.count }) / Double(tasks.count)
        var h = [Int](repeating: 0, count: (tasks.map(\.path.count).max() ?? 0) + 1)
        for t in tasks { h[t.path.count] += 1 }
        pathLengthHistogram = h
    }

    public var description: String {
        let hist = pathLengthHistogram.enumerated().dropFirst().map { "\($0.offset):\($0.element)" }.joined(separator: " ")
        return "\(count) tasks, \(users) users, \(targets) targets, mean path length "
            + String(format: "%.2f", meanPathLength) + ", lengths [\(hist)]"
    }
}

/// splitmix64: the engine's seeded generator (deterministic everywhere).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform double in [0, 1) from 53 random bits.
    public mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// A uniform integer in 0..<n (multiply-shift; the tiny bias is fixed
    /// by the algorithm, so results never change between releases).
    public mutating func below(_ n: Int) -> Int {
        precondition(n > 0, "below(\(n))")
        return Int((UInt128(next()) * UInt128(n)) >> 64)
    }

    /// A uniform integer in `range`.
    public mutating func uniform(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + below(range.upperBound - range.lowerBound + 1)
    }

    /// Fisher–Yates shuffle with this generator.
    public mutating func shuffle<T>(_ a: inout [T]) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, below(i + 1)) }
    }
}

/// FNV-1a of a string's UTF-8 bytes (stable across runs, unlike hashValue).
public func stableHash(_ s: String) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
    return h
}

extension Array {
    /// Sorts by a key, keeping the original order among equal keys.
    mutating func sortByStableKey<K: Comparable>(_ key: (Element) -> K) {
        self = enumerated().sorted { a, b in
            let ka = key(a.element), kb = key(b.element)
            return ka != kb ? ka < kb : a.offset < b.offset
        }.map(\.element)
    }
}
