/// One sampled path of a prompt, read back into items and the policy's
/// actions: one action per item (its tokens) and, when the policy chose to
/// stop before `Lmax`, one for the EOS.
public struct Rollout: Sendable, Equatable {
    /// Generated tokens (EOS included).
    public var tokens: [Int32]
    /// Items in order; nil where the tokens name no item (only possible
    /// without constrained decoding; a trailing partial item counts too).
    public var items: [Int32?]
    /// Token range of each action (items, then the EOS if it is an action).
    public var actionTokens: [Range<Int>]
    /// Whether the EOS was the policy's choice (a path shorter than Lmax).
    public var stoppedEarly: Bool

    public var actions: Int { actionTokens.count }
    public var length: Int { items.count }

    /// Splits `tokens` by the tokenizer: complete tuples are items, an
    /// early EOS is an action, and the EOS forced after `maxItems` items is
    /// not.
    public init(tokens: [Int32], tokenizer: ItemTokenizer, maxItems: Int) {
        self.tokens = tokens
        let k = tokenizer.tokensPerItem, eos = tokenizer.eosToken
        items = []
        actionTokens = []
        stoppedEarly = false
        var start = 0
        while start < tokens.count {
            var end = start
            while end < tokens.count && end - start < k && tokens[end] != eos { end += 1 }
            if end > start {
                items.append(end - start == k ? tokenizer.item(of: tokens[start..<end]) : nil)
                actionTokens.append(start..<end)
            }
            if end < tokens.count && tokens[end] == eos {
                if items.count < maxItems {
                    stoppedEarly = true
                    actionTokens.append(end..<(end + 1))
                }
                break
            }
            start = end
        }
    }
}

/// Raw reward components of every item step of a batch of rollouts, with
/// the reference code's penalties: an invalid item (no such item, or one
/// the simulator does not know) gets CTR −1 and IoI, IoR one below the
/// batch's smallest value over real items; a duplicate (an item already
/// earlier in the path) gets CTR 0.
public struct StepRewards: Sendable, Equatable {
    public var ctr: [[Double]]
    public var ioi: [[Double]]
    public var ior: [[Double]]
    public var invalid: [[Bool]]
    public var duplicate: [[Bool]]
    /// Path values from the simulator over the valid items: IoI, IoR and
    /// mean CTR (penalties excluded).
    public var pathIoI: [Double]
    public var pathIoR: [Double]
    public var pathCTR: [Double]
    /// log p(target) and its rank after the history alone (step 0), per
    /// path; a step's values are these plus its IoI, minus its IoR.
    public var startLogProb: [Double] = []
    public var startRank: [Double] = []

    public init(ctr: [[Double]], ioi: [[Double]], ior: [[Double]], invalid: [[Bool]], duplicate: [[Bool]],
                pathIoI: [Double], pathIoR: [Double], pathCTR: [Double]) {
        self.ctr = ctr
        self.ioi = ioi
        self.ior = ior
        self.invalid = invalid
        self.duplicate = duplicate
        self.pathIoI = pathIoI
        self.pathIoR = pathIoR
        self.pathCTR = pathCTR
    }

    /// Step rewards `w_ctr·ctr/Lmax + w_ioi·ioi + w_ior·ior`, each
    /// component first z-scored when `centering` is given.
    public func combined(weights w: RewardWeights, maxItems: Int, centering: RewardCentering?) -> [[Double]] {
        (0..<ctr.count).map { r in
            (0..<ctr[r].count).map { k in
                var c = ctr[r][k], i = ioi[r][k], o = ior[r][k]
                if let z = centering {
                    c = z.normalise(c, .ctr, position: k)
                    i = z.normalise(i, .ioi, position: k)
                    o = z.normalise(o, .ior, position: k)
                }
                return w.ctr * c / Double(maxItems) + w.ioi * i + w.ior * o
            }
        }
    }
}

/// Scores rollouts with the simulator, translating the policy's item ids
/// (a catalogue) to the simulator's rows.
public final class RolloutScorer: @unchecked Sendable {
    public let rewards: RewardModel
    /// Simulator row of each catalogue item (nil: unknown to it).
    public let rows: [Int32?]
    /// What a step's IoI measures (the path values stay the task's IoI).
    public let interest: InterestMeasure

    public init(simulator: Simulator, catalog: ItemCatalog, maxBatch: Int, maxItems: Int,
                interest: InterestMeasure = .logProb) throws {
        rewards = try RewardModel(simulator: simulator, maxBatch: maxBatch, maxPath: maxItems)
        rows = simulator.rows(for: catalog)
        self.interest = interest
    }

    /// Simulator rows of a task's history and target; nil when the target
    /// or every history item is unknown to the simulator.
    public func simulatorView(history: [Int32], target: Int32) -> (history: [Int32], target: Int32)? {
        guard Int(target) < rows.count, let t = rows[Int(target)] else { return nil }
        let h = history.compactMap { Int($0) < rows.count ? rows[Int($0)] : nil }
        return h.isEmpty ? nil : (h, t)
    }

    /// Step rewards of `rollouts`, rollout r belonging to task `taskOf[r]`.
    public func score(_ rollouts: [Rollout], tasks: [ProactiveTask], taskOf: [Int]) -> StepRewards {
        score(paths: rollouts.map(\.items), tasks: tasks, taskOf: taskOf)
    }

    /// Step rewards of item paths (nil: an invalid item), path r belonging
    /// to task `taskOf[r]`.
    public func score(paths: [[Int32?]], tasks: [ProactiveTask], taskOf: [Int]) -> StepRewards {
        var requests: [RewardModel.Request] = []
        var validIndex: [[Int?]] = []
        var out = StepRewards(ctr: [], ioi: [], ior: [], invalid: [], duplicate: [], pathIoI: [], pathIoR: [], pathCTR: [])
        for (r, items) in paths.enumerated() {
            let task = tasks[taskOf[r]]
            guard let view = simulatorView(history: task.history, target: task.target) else {
                preconditionFailure("task of rollout \(r) is unknown to the simulator (filter tasks first)")
            }
            var seen = Set<Int32>()
            var path: [Int32] = [], index: [Int?] = [], dup: [Bool] = [], bad: [Bool] = []
            for item in items {
                if let item, Int(item) < rows.count, let row = rows[Int(item)] {
                    index.append(path.count)
                    path.append(row)
                    bad.append(false)
                    dup.append(!seen.insert(item).inserted)
                } else {
                    index.append(nil)
                    bad.append(true)
                    dup.append(false)
                }
            }
            requests.append(.init(history: view.history, path: path, target: view.target))
            validIndex.append(index)
            out.invalid.append(bad)
            out.duplicate.append(dup)
        }
        let steps = rewards.score(requests)
        for (r, s) in steps.enumerated() {
            var ctr: [Double] = [], ioi: [Double] = [], ior: [Double] = []
            for (k, j) in validIndex[r].enumerated() {
                guard let j else { ctr.append(-1); ioi.append(.nan); ior.append(.nan); continue }
                let duplicate = out.duplicate[r][k]
                ctr.append(duplicate ? 0 : Double(s.ctr[j]))
                let i = Double(interest == .logProb ? s.ioi(step: j + 1) : s.acceptanceGain(step: j + 1))
                let o = Double(s.ior(step: j + 1))
                ioi.append(i)
                ior.append(o)
            }
            out.ctr.append(ctr)
            out.ioi.append(ioi)
            out.ior.append(ior)
            out.pathIoI.append(Double(s.ioi))
            out.pathIoR.append(Double(s.ior))
            out.pathCTR.append(Double(s.meanCTR))
            out.startLogProb.append(Double(s.logProb[0]))
            out.startRank.append(Double(s.rank[0]))
        }
        out.floorInvalidSteps()
        return out
    }
}

extension StepRewards {
    /// Gives every invalid step IoI and IoR one below the smallest value of
    /// a valid, non-duplicate step of these rollouts (−1 when there is none).
    /// Depends on the valid steps only, so applying it again to a union of
    /// rollouts (a data-parallel step's) gives the floor of the union.
    public mutating func floorInvalidSteps() {
        var minIoI = Double.infinity, minIoR = Double.infinity
        for r in 0..<ioi.count {
            for k in 0..<ioi[r].count where !invalid[r][k] && !duplicate[r][k] {
                minIoI = min(minIoI, ioi[r][k])
                minIoR = min(minIoR, ior[r][k])
            }
        }
        let floorIoI = minIoI.isFinite ? minIoI - 1 : -1, floorIoR = minIoR.isFinite ? minIoR - 1 : -1
        for r in 0..<ioi.count {
            for k in 0..<ioi[r].count where invalid[r][k] {
                ioi[r][k] = floorIoI
                ior[r][k] = floorIoR
            }
        }
    }
}
