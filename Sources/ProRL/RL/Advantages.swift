import Foundation

/// How step rewards are normalised before they are summed (DESIGN §2.4 and
/// what measuring it taught).
public enum CenteringMode: String, Codable, Sendable, CaseIterable {
    /// The reference: z-scores with one μ, σ per component over every real
    /// step of the warm-up, then frozen. Once the policy moves, a negative
    /// frozen μ pays |μ|/σ for every extra step.
    case frozen
    /// z-scores with μ, σ per component and path position over the warm-up,
    /// then frozen.
    case position
    /// z-scores with the μ, σ of the current batch, re-estimated every step.
    case batch
    /// IoI and IoR divided by their warm-up σ, not centred — their sums over
    /// a path are the path's IoI and IoR, the values evaluated — and CTR
    /// centred on the current batch's mean (its mean over the path is what
    /// is evaluated, so no item earns a bonus for being there) and divided by
    /// its warm-up σ.
    case scale
}

/// Stepwise reward normalisation (DESIGN §2.4): means and (sample) standard
/// deviations of each reward component over the real steps seen — valid
/// items that are not duplicates, as the reference code counts them — over
/// the warm-up (then frozen) or per batch, as `mode` says.
/// `z = (x − μ) / max(σ, floor)` (`scale` keeps IoI and IoR uncentred).
public struct RewardCentering: Codable, Sendable, Equatable {
    public enum Component: Int, CaseIterable, Sendable { case ctr, ioi, ior }

    /// Running moments of the three components (Welford).
    public struct Moments: Codable, Sendable, Equatable {
        public var count = 0
        public var mean = [0.0, 0.0, 0.0]
        /// Σ (x − mean)² per component.
        public var squares = [0.0, 0.0, 0.0]

        mutating func add(_ x: [Double]) {
            count += 1
            for c in 0..<3 {
                let d = x[c] - mean[c]
                mean[c] += d / Double(count)
                squares[c] += d * (x[c] - mean[c])
            }
        }
    }

    public let mode: CenteringMode
    /// One entry, or one per path position (`position`).
    public private(set) var moments: [Moments]
    /// The moments of the last batch observed (frozen or not).
    public private(set) var lastBatch = Moments()
    public var frozen = false
    public let sigmaFloor: Double

    /// - Parameter positions: path positions (Lmax), used by `position`.
    public init(mode: CenteringMode = .frozen, sigmaFloor: Double = 0.1, positions: Int = 1) {
        self.mode = mode
        self.sigmaFloor = sigmaFloor
        moments = [Moments](repeating: Moments(), count: mode == .position ? max(positions, 1) : 1)
    }

    /// Real steps observed (over all positions).
    public var count: Int { moments.reduce(0) { $0 + $1.count } }

    /// Adds the steps of a batch (ignored once frozen; `batch` mode first
    /// forgets the previous batch).
    public mutating func observe(_ rewards: StepRewards) {
        lastBatch = Moments()
        for r in 0..<rewards.ctr.count {
            for k in 0..<rewards.ctr[r].count where !rewards.invalid[r][k] && !rewards.duplicate[r][k] {
                let x = [rewards.ctr[r][k], rewards.ioi[r][k], rewards.ior[r][k]]
                lastBatch.add(x)
                if !frozen && mode != .batch { moments[min(k, moments.count - 1)].add(x) }
            }
        }
        if mode == .batch { moments = [lastBatch] }
    }

    private func at(_ position: Int) -> Moments {
        let m = moments[min(position, moments.count - 1)]
        // a position never seen falls back to the last one that was
        if m.count == 0, mode == .position, let seen = moments.last(where: { $0.count > 0 }) { return seen }
        return m
    }

    public func mu(_ c: Component, position: Int = 0) -> Double { at(position).mean[c.rawValue] }
    /// Sample standard deviation, floored (the floor alone below 2 steps).
    public func sigma(_ c: Component, position: Int = 0) -> Double {
        let m = at(position)
        return m.count < 2 ? sigmaFloor : max((m.squares[c.rawValue] / Double(m.count - 1)).squareRoot(), sigmaFloor)
    }
    /// The normalised value of component `c` of a step at `position`.
    public func normalise(_ x: Double, _ c: Component, position: Int = 0) -> Double {
        guard mode == .scale else { return (x - mu(c, position: position)) / sigma(c, position: position) }
        let centre = c == .ctr && lastBatch.count > 0 ? lastBatch.mean[0] : 0
        return (x - centre) / sigma(c)
    }
}

/// Per-action advantages of a batch of rollouts, G consecutive rollouts per
/// prompt (DESIGN §2.5, §2.7).
public enum Advantages {
    /// Reward-to-go of each action: `G_t = Σ_{k ≥ t} γ^{k−t} r_k` over the
    /// item steps; an EOS action (index ≥ the item count) has 0.
    public static func rewardToGo(_ r: [Double], actions: Int, gamma: Double) -> [Double] {
        var out = [Double](repeating: 0, count: actions)
        var running = 0.0
        for t in stride(from: r.count - 1, through: 0, by: -1) {
            running = r[t] + gamma * running
            if t < actions { out[t] = running }
        }
        return out
    }

    /// Advantages `[rollout][action]`.
    /// - Parameters:
    ///   - stepRewards: per rollout, the reward of each item step (already
    ///     centered or raw, as the algorithm wants).
    ///   - actions: per rollout, its number of actions (items + an early EOS).
    ///   - group: rollouts per prompt (consecutive).
    public static func compute(_ algorithm: RLAlgorithm, stepRewards: [[Double]], actions: [Int], group: Int,
                               gamma: Double, grpoScaleByStd: Bool = false) -> [[Double]] {
        precondition(stepRewards.count == actions.count && stepRewards.count % group == 0, "rollouts and groups disagree")
        var out: [[Double]] = []
        out.reserveCapacity(actions.count)
        for g0 in stride(from: 0, to: actions.count, by: group) {
            let members = g0..<(g0 + group)
            switch algorithm {
            case .prorl, .prorlNoCentering:
                // position-specific baselines over the rollouts active at t
                let togo = members.map { rewardToGo(stepRewards[$0], actions: actions[$0], gamma: gamma) }
                let longest = togo.map(\.count).max() ?? 0
                var baseline = [Double](repeating: 0, count: longest)
                for t in 0..<longest {
                    let active = togo.filter { $0.count > t }
                    baseline[t] = active.reduce(0) { $0 + $1[t] } / Double(active.count)
                }
                for g in togo { out.append(g.enumerated().map { $0.element - baseline[$0.offset] }) }
            case .prorlNoPSAE:
                // one path-level baseline: the group's mean return
                let togo = members.map { rewardToGo(stepRewards[$0], actions: actions[$0], gamma: gamma) }
                let returns = togo.map { $0.first ?? 0 }
                let b = returns.reduce(0, +) / Double(group)
                for g in togo { out.append(g.map { $0 - b }) }
            case .reinforce:
                for r in members {
                    let total = stepRewards[r].reduce(0, +)
                    out.append([Double](repeating: total, count: actions[r]))
                }
            case .grpo:
                let totals = members.map { stepRewards[$0].reduce(0, +) }
                let mean = totals.reduce(0, +) / Double(group)
                let std = (totals.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(group)).squareRoot()
                for (i, r) in members.enumerated() {
                    var a = totals[i] - mean
                    if grpoScaleByStd { a /= std + 1e-6 }
                    out.append([Double](repeating: a, count: actions[r]))
                }
            }
        }
        return out
    }
}
