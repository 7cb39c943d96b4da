import Foundation

/// Stepwise reward centering (DESIGN §2.4): the mean and (sample) standard
/// deviation of each reward component over every real step seen during the
/// warm-up — valid items that are not duplicates, as the reference code
/// counts them — then frozen. `z = (x − μ) / max(σ, floor)`.
public struct RewardCentering: Codable, Sendable, Equatable {
    public enum Component: Int, CaseIterable, Sendable { case ctr, ioi, ior }

    public private(set) var count = 0
    public private(set) var mean = [0.0, 0.0, 0.0]
    /// Σ (x − mean)² per component (Welford).
    public private(set) var squares = [0.0, 0.0, 0.0]
    public var frozen = false
    public let sigmaFloor: Double

    public init(sigmaFloor: Double = 0.1) { self.sigmaFloor = sigmaFloor }

    /// Adds the steps of a batch (ignored once frozen).
    public mutating func observe(_ rewards: StepRewards) {
        guard !frozen else { return }
        for r in 0..<rewards.ctr.count {
            for k in 0..<rewards.ctr[r].count where !rewards.invalid[r][k] && !rewards.duplicate[r][k] {
                count += 1
                for (c, x) in [rewards.ctr[r][k], rewards.ioi[r][k], rewards.ior[r][k]].enumerated() {
                    let d = x - mean[c]
                    mean[c] += d / Double(count)
                    squares[c] += d * (x - mean[c])
                }
            }
        }
    }

    public func mu(_ c: Component) -> Double { mean[c.rawValue] }
    /// Sample standard deviation, floored (the floor alone below 2 steps).
    public func sigma(_ c: Component) -> Double {
        count < 2 ? sigmaFloor : max((squares[c.rawValue] / Double(count - 1)).squareRoot(), sigmaFloor)
    }
    public func normalise(_ x: Double, _ c: Component) -> Double { (x - mu(c)) / sigma(c) }
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
