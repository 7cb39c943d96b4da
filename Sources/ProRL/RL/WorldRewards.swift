import Foundation

/// Step rewards from a synthetic world's ground truth instead of a learned
/// simulator: a diagnostic of what RL does when its reward is the truth the
/// evaluation reports. Walking a path from the user's true taste at the end
/// of the history (each item accepted with its probability, the taste moved
/// by its expected drift, as ``SyntheticWorld/guidance(log:user:history:path:target:catalog:)``):
/// - CTR_k = the true acceptance of item k;
/// - IoI_k = the change of log a(target) (the log of the target's true
///   acceptance, so its steps sum to the log-ratio of the true gain);
/// - IoR_k = the change of the target's rank by true acceptance among the
///   world's items.
/// Invalid items get CTR −1 and the floored IoI/IoR, repeats CTR 0, as the
/// simulator's rewards do.
public final class WorldRewards: RolloutRewarding {
    public let world: SyntheticWorld
    public let log: InteractionLog
    /// The tasks' and the policy's item ids.
    public let catalog: ItemCatalog

    public init(world: SyntheticWorld, log: InteractionLog, catalog: ItemCatalog) {
        self.world = world
        self.log = log
        self.catalog = catalog
    }

    public func accepts(_ task: ProactiveTask) -> Bool {
        guard let user = task.user, world.itemNumber(task.target, in: catalog) != nil else { return false }
        return world.taste(log: log, user: user, history: task.history, catalog: catalog) != nil
    }

    /// 1 + the number of the world's items more acceptable than `target`,
    /// whose acceptance is `a`, at taste `p`.
    private func rank(_ p: [Double], _ target: Int, acceptance a: Double) -> Double {
        var above = 0
        for i in 1..<world.itemGenres.count where i != target && world.acceptance(p, i) > a { above += 1 }
        return Double(1 + above)
    }

    public func score(paths: [[Int32?]], tasks: [ProactiveTask], taskOf: [Int]) -> StepRewards {
        var out = StepRewards(ctr: [], ioi: [], ior: [], invalid: [], duplicate: [], pathIoI: [], pathIoR: [], pathCTR: [])
        var tastes: [Int: [Double]] = [:]
        for (r, items) in paths.enumerated() {
            let task = tasks[taskOf[r]]
            if tastes[taskOf[r]] == nil {
                guard let user = task.user, let p = world.taste(log: log, user: user, history: task.history, catalog: catalog) else {
                    preconditionFailure("task of rollout \(r) is not the world's (filter tasks with accepts(_:) first)")
                }
                tastes[taskOf[r]] = p
            }
            var p = tastes[taskOf[r]]!
            let t = world.itemNumber(task.target, in: catalog)!
            var aT = world.acceptance(p, t)
            var logA = Foundation.log(aT), rankT = rank(p, t, acceptance: aT)
            let startLogA = logA, startRank = rankT
            var seen = Set<Int32>()
            var ctr: [Double] = [], ioi: [Double] = [], ior: [Double] = [], bad: [Bool] = [], dup: [Bool] = []
            var accepted = 0.0, valid = 0
            for item in items {
                guard let item, let i = world.itemNumber(item, in: catalog) else {
                    ctr.append(-1); ioi.append(.nan); ior.append(.nan); bad.append(true); dup.append(false)
                    continue
                }
                let repeated = !seen.insert(item).inserted
                let a = world.acceptance(p, i)
                p = world.drifted(p, toward: i, weight: a)
                aT = world.acceptance(p, t)
                let newLogA = Foundation.log(aT), newRank = rank(p, t, acceptance: aT)
                ctr.append(repeated ? 0 : a)
                ioi.append(newLogA - logA)
                ior.append(rankT - newRank)
                bad.append(false)
                dup.append(repeated)
                (logA, rankT) = (newLogA, newRank)
                accepted += a
                valid += 1
            }
            out.ctr.append(ctr); out.ioi.append(ioi); out.ior.append(ior)
            out.invalid.append(bad); out.duplicate.append(dup)
            out.pathIoI.append(logA - startLogA)
            out.pathIoR.append(startRank - rankT)
            out.pathCTR.append(valid == 0 ? 0 : accepted / Double(valid))
        }
        out.floorInvalidSteps()
        return out
    }
}
