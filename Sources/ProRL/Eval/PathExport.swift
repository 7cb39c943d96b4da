import Foundation

/// A policy's paths for many tasks, each with the simulator's view of every
/// step, as JSON lines — what `prorl generate --tasks … --out paths.jsonl`
/// writes, so that anyone can score the paths with their own evaluator.
///
/// One line per task and path (beam `k`, best first):
///
///     {"task": 0, "user": "196", "history": ["242", …], "target": "258",
///      "target_title": "Contact (1997)", "beam": 0, "path": ["288", …],
///      "titles": ["Scream (1996)", …], "score": -1.93,
///      "ioi": 0.21, "ior": 12, "ctr": 0.95,
///      "steps": [{"ctr": null, "log_p_target": -6.1, "rank_target": 140}, …]}
///
/// `steps[0]` is the history alone; `steps[j]` follows the path's j-th
/// item. IoI, IoR and CTR are computed exactly as `prorl eval` computes
/// them (the same scorer), so the file reproduces its tables.
public enum PathExport {
    /// The lines for `tasks` (already filtered to what the evaluator can
    /// score), `beams` paths each; `progress(done, total)` after each chunk.
    public static func lines(policy: Policy, evaluator: PathEvaluator, tasks: [ProactiveTask], beams: Int,
                             options: DecodingOptions, chunk: Int = 256,
                             progress: (Int, Int) -> Void = { _, _ in }) throws -> [String] {
        let catalog = evaluator.catalog
        var out: [String] = []
        out.reserveCapacity(tasks.count * beams)
        var start = 0
        while start < tasks.count {
            let slice = Array(tasks[start..<min(start + chunk, tasks.count)])
            let found = PathGenerators.scoredBeams(policy: policy, tasks: slice, beams: beams, options: options)
            var flat: [[Int32?]] = [], taskOf: [Int] = [], beamOf: [Int] = [], scores: [Float] = []
            for (t, list) in found.enumerated() {
                for (k, p) in list.enumerated() {
                    flat.append(p.items)
                    taskOf.append(t)
                    beamOf.append(k)
                    scores.append(p.score)
                }
            }
            let s = evaluator.scorer.score(paths: flat, tasks: slice, taskOf: taskOf)
            for r in flat.indices {
                let task = slice[taskOf[r]]
                let items = flat[r]
                // step rewards are each step's change: the values after a step are their running sums
                var logP = s.startLogProb[r], rank = s.startRank[r]
                var steps: [[String: Any]] = [["ctr": NSNull(), "log_p_target": logP, "rank_target": Int(rank)]]
                for k in items.indices {
                    guard !s.invalid[r][k] else {
                        steps.append(["ctr": s.ctr[r][k], "log_p_target": NSNull(), "rank_target": NSNull()])
                        continue
                    }
                    logP += s.ioi[r][k]
                    rank -= s.ior[r][k]
                    steps.append(["ctr": s.ctr[r][k], "log_p_target": logP, "rank_target": Int(rank)])
                }
                var line: [String: Any] = [
                    "task": start + taskOf[r], "beam": beamOf[r],
                    "history": task.history.map(catalog.raw), "target": catalog.raw(task.target),
                    "target_title": catalog.displayName(task.target),
                    "path": items.map { $0.map(catalog.raw) as Any? ?? NSNull() },
                    "titles": items.map { $0.map(catalog.displayName) as Any? ?? NSNull() },
                    "score": Double(scores[r]), "ioi": s.pathIoI[r], "ior": s.pathIoR[r], "ctr": s.pathCTR[r],
                    "steps": steps,
                ]
                if let user = task.user { line["user"] = user }
                let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys, .withoutEscapingSlashes])
                out.append(String(decoding: data, as: UTF8.self))
            }
            start += slice.count
            progress(start, tasks.count)
        }
        return out
    }
}
