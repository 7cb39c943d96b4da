/// Step rewards from several simulators at once: each step's CTR, IoI and
/// IoR are the members' means (invalid and repeated steps as the first
/// member finds them; every member knows the catalogue). A policy trained
/// against the mean cannot gain by what one simulator alone over-rates —
/// the usual guard against exploiting a learned model of the user.
public final class EnsembleRewards: RolloutRewarding {
    public let members: [RolloutScorer]

    public init(members: [RolloutScorer]) throws {
        guard !members.isEmpty else { throw DataError.setting("RL", "an ensemble needs at least one simulator") }
        self.members = members
    }

    public func accepts(_ task: ProactiveTask) -> Bool { members.allSatisfy { $0.accepts(task) } }

    public func score(paths: [[Int32?]], tasks: [ProactiveTask], taskOf: [Int]) -> StepRewards {
        let all = members.map { $0.score(paths: paths, tasks: tasks, taskOf: taskOf) }
        var out = all[0]
        guard all.count > 1 else { return out }
        let n = Double(all.count)
        func mean(_ key: KeyPath<StepRewards, [[Double]]>) -> [[Double]] {
            out[keyPath: key].indices.map { r in
                out[keyPath: key][r].indices.map { k in all.reduce(0) { $0 + $1[keyPath: key][r][k] } / n }
            }
        }
        func mean(_ key: KeyPath<StepRewards, [Double]>) -> [Double] {
            out[keyPath: key].indices.map { r in all.reduce(0) { $0 + $1[keyPath: key][r] } / n }
        }
        out.ctr = mean(\.ctr)
        out.ioi = mean(\.ioi)
        out.ior = mean(\.ior)
        out.pathIoI = mean(\.pathIoI)
        out.pathIoR = mean(\.pathIoR)
        out.pathCTR = mean(\.pathCTR)
        out.startLogProb = mean(\.startLogProb)
        out.startRank = mean(\.startRank)
        out.floorInvalidSteps()
        return out
    }
}
