import Foundation

/// The measures of one path for one task (DESIGN §1): the simulator's IoI,
/// IoR and mean CTR over its valid items, coherence over `P ⊕ T`, validity,
/// length, the share of items that repeat an earlier one (the simulator
/// happily re-accepts an item, so a policy can farm CTR by repeating), and — on the synthetic world — the ground-truth mean acceptance
/// and target-interest gain.
public struct PathScore: Sendable, Equatable {
    public var items: [Int32?]
    public var ioi = 0.0, ior = 0.0, ctr = 0.0
    public var coherence = 0.0, validity = 0.0, repeats = 0.0
    public var truthAcceptance: Double? = nil
    public var truthGain: Double? = nil
    public var length: Int { items.count }
}

/// Means of the path measures over tasks.
public struct MetricSet: Codable, Sendable, Equatable {
    public var ioi = 0.0, ior = 0.0, ctr = 0.0, coherence = 0.0, validity = 0.0, length = 0.0
    /// 1 − mean pairwise Jaccard similarity of the item sets of different
    /// tasks' paths.
    public var diversity = 0.0
    /// Share of path items that repeat an earlier item of the same path
    /// (lower is better: under the reference semantics, the min over K);
    /// nil in tables written before it was measured.
    public var repeats: Double? = nil
    public var truthAcceptance: Double? = nil
    public var truthGain: Double? = nil

    enum CodingKeys: String, CodingKey {
        case ioi, ior, ctr, coherence, validity, length, diversity, repeats
        case truthAcceptance = "truth_acceptance", truthGain = "truth_gain"
    }
}

/// One row of a results table: a method evaluated with K candidate paths
/// per task, under the reference semantics (each measure's best over the K
/// paths) and for the top path alone.
public struct MethodResult: Codable, Sendable, Equatable {
    public var method: String
    public var beams: Int
    public var tasks: Int
    public var reference: MetricSet
    public var top: MetricSet
    /// The top path's measures task by task (for paired comparisons); nil
    /// in tables written before they were kept.
    public var perTask: PerTask? = nil

    /// Top-path IoI, IoR and CTR of each task, in task order (and the true
    /// gain on the synthetic world).
    public struct PerTask: Codable, Sendable, Equatable {
        public var ioi: [Double]
        public var ior: [Double]
        public var ctr: [Double]
        public var truthGain: [Double]?
    }
}

/// Scores candidate paths with the simulator and summarises them.
public final class PathEvaluator: @unchecked Sendable {
    public let scorer: RolloutScorer
    public let catalog: ItemCatalog
    public let maxItems: Int
    /// Ground truth (the synthetic world and its log), when known.
    public let world: (world: SyntheticWorld, log: InteractionLog)?

    public init(simulator: Simulator, catalog: ItemCatalog, maxItems: Int = 10,
                world: (world: SyntheticWorld, log: InteractionLog)? = nil, maxBatch: Int = 256) throws {
        scorer = try RolloutScorer(simulator: simulator, catalog: catalog, maxBatch: maxBatch, maxItems: maxItems)
        self.catalog = catalog
        self.maxItems = maxItems
        self.world = world
    }

    /// Tasks the simulator can score (known target and some known history
    /// item), and how many were dropped.
    public func scorable(_ tasks: [ProactiveTask]) -> (tasks: [ProactiveTask], dropped: Int) {
        let kept = tasks.filter { scorer.simulatorView(history: $0.history, target: $0.target) != nil }
        return (kept, tasks.count - kept.count)
    }

    /// Scores of each task's candidate paths (`candidates[task][k]`).
    public func score(_ candidates: [[[Int32?]]], tasks: [ProactiveTask]) -> [[PathScore]] {
        precondition(candidates.count == tasks.count, "one candidate list per task")
        var flat: [[Int32?]] = [], taskOf: [Int] = []
        for (t, list) in candidates.enumerated() {
            for p in list { flat.append(p); taskOf.append(t) }
        }
        let steps = scorer.score(paths: flat, tasks: tasks, taskOf: taskOf)
        var out = candidates.map { _ in [PathScore]() }
        for (i, items) in flat.enumerated() {
            let task = tasks[taskOf[i]]
            var s = PathScore(items: items)
            s.ioi = steps.pathIoI[i]
            s.ior = steps.pathIoR[i]
            s.ctr = steps.pathCTR[i]
            s.validity = items.isEmpty ? 0 : Double(steps.invalid[i].filter { !$0 }.count) / Double(items.count)
            s.coherence = coherence(items, target: task.target)
            s.repeats = items.isEmpty ? 0 : Double(steps.duplicate[i].filter { $0 }.count) / Double(items.count)
            if let (world, log) = world, let user = task.user,
               let g = world.guidance(log: log, user: user, history: task.history, path: items.compactMap { $0 },
                                      target: task.target, catalog: catalog) {
                s.truthAcceptance = g.meanAcceptance
                s.truthGain = g.gain
            }
            out[taskOf[i]].append(s)
        }
        return out
    }

    /// Share of consecutive pairs of `P ⊕ T` that share an attribute.
    public func coherence(_ items: [Int32?], target: Int32) -> Double {
        guard !items.isEmpty else { return 0 }
        let seq = items + [target]
        var shared = 0
        for k in 0..<(seq.count - 1) {
            if let a = seq[k], let b = seq[k + 1], catalog.shareAttribute(a, b) { shared += 1 }
        }
        return Double(shared) / Double(seq.count - 1)
    }

    /// The row of `policy`'s beam-searched paths (K = `beams`) on `tasks`.
    public func evaluate(policy: Policy, method: String, tasks: [ProactiveTask], beams: Int,
                         options: DecodingOptions) -> MethodResult {
        let candidates = PathGenerators.beams(policy: policy, tasks: tasks, beams: beams, options: options)
        return summarise(method: method, beams: beams, scores: score(candidates, tasks: tasks))
    }

    /// The table row of `scores` (each task's candidates, best first).
    public func summarise(method: String, beams: Int, scores: [[PathScore]]) -> MethodResult {
        let n = Double(max(scores.count, 1))
        var reference = MetricSet(), top = MetricSet()
        var refRepeats = 0.0, topRepeats = 0.0
        var refTruthA = 0.0, refTruthG = 0.0, topTruthA = 0.0, topTruthG = 0.0, truthCount = 0
        for list in scores {
            guard let first = list.first else { continue }
            reference.ioi += list.map(\.ioi).max()! / n
            reference.ior += list.map(\.ior).max()! / n
            reference.ctr += list.map(\.ctr).max()! / n
            reference.coherence += list.map(\.coherence).max()! / n
            reference.validity += list.map(\.validity).max()! / n
            reference.length += Double(list.map(\.length).max()!) / n
            refRepeats += list.map(\.repeats).min()! / n
            top.ioi += first.ioi / n
            top.ior += first.ior / n
            top.ctr += first.ctr / n
            top.coherence += first.coherence / n
            top.validity += first.validity / n
            top.length += Double(first.length) / n
            topRepeats += first.repeats / n
            if let a = first.truthAcceptance, let g = first.truthGain {
                truthCount += 1
                topTruthA += a
                topTruthG += g
                refTruthA += list.compactMap(\.truthAcceptance).max()!
                refTruthG += list.compactMap(\.truthGain).max()!
            }
        }
        reference.repeats = refRepeats
        top.repeats = topRepeats
        if truthCount > 0 {
            let c = Double(truthCount)
            reference.truthAcceptance = refTruthA / c
            reference.truthGain = refTruthG / c
            top.truthAcceptance = topTruthA / c
            top.truthGain = topTruthG / c
        }
        // diversity across tasks: of the top paths, and of all candidates
        top.diversity = Self.diversity(scores.compactMap { $0.first.map { Set($0.items.compactMap { $0 }) } })
        reference.diversity = Self.diversity(scores.flatMap { $0.map { Set($0.items.compactMap { $0 }) } })
        let firsts = scores.compactMap(\.first)
        let gains = firsts.compactMap(\.truthGain)
        let perTask = MethodResult.PerTask(ioi: firsts.map(\.ioi), ior: firsts.map(\.ior), ctr: firsts.map(\.ctr),
                                           truthGain: gains.count == firsts.count && !gains.isEmpty ? gains : nil)
        return MethodResult(method: method, beams: beams, tasks: scores.count, reference: reference, top: top,
                            perTask: perTask)
    }

    /// 1 − mean pairwise Jaccard similarity of item sets (at most 300 sets,
    /// evenly spaced, so the cost stays bounded).
    public static func diversity(_ sets: [Set<Int32>]) -> Double {
        let stride = max(1, sets.count / 300)
        let s = Swift.stride(from: 0, to: sets.count, by: stride).map { sets[$0] }
        guard s.count >= 2 else { return 0 }
        var total = 0.0, pairs = 0
        for i in 0..<s.count {
            for j in (i + 1)..<s.count {
                let union = s[i].union(s[j]).count
                total += union == 0 ? 1 : Double(s[i].intersection(s[j]).count) / Double(union)
                pairs += 1
            }
        }
        return 1 - total / Double(pairs)
    }
}
