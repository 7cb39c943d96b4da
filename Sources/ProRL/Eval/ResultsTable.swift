import Foundation

/// A results table: one row per (method, K), as markdown and JSON.
public struct ResultsTable: Codable, Sendable, Equatable {
    public var split: String
    public var rows: [MethodResult]
    /// The simulator that scored the paths (nil in tables from before
    /// cross-evaluation: the training simulator).
    public var evaluator: String? = nil

    public init(split: String, rows: [MethodResult], evaluator: String? = nil) {
        self.split = split
        self.rows = rows
        self.evaluator = evaluator
    }

    /// Markdown: the reference semantics (best of K) first, then the top
    /// path; ground-truth columns when any row has them.
    public var markdown: String {
        let truth = rows.contains { $0.top.truthGain != nil }
        func table(_ title: String, _ pick: (MethodResult) -> MetricSet) -> String {
            var header = "| method | K | IoI | IoR | CTR | coherence | validity | length | repeats | diversity |"
            var rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            if truth {
                header += " true acceptance | true gain |"
                rule += "---:|---:|"
            }
            let by = evaluator.map { ", scored by \($0)" } ?? ""
            var out = "**\(title)** (\(split), \(rows.first?.tasks ?? 0) tasks\(by))\n\n\(header)\n\(rule)\n"
            for r in rows {
                let m = pick(r)
                out += String(format: "| %@ | %d | %.4f | %.1f | %.4f | %.3f | %.3f | %.2f | %@ | %.3f |", r.method, r.beams,
                              m.ioi, m.ior, m.ctr, m.coherence, m.validity, m.length,
                              m.repeats.map { String(format: "%.3f", $0) } ?? "—", m.diversity)
                if truth {
                    out += String(format: " %@ | %@ |", m.truthAcceptance.map { String(format: "%.4f", $0) } ?? "—",
                                  m.truthGain.map { String(format: "%.4f", $0) } ?? "—")
                }
                out += "\n"
            }
            return out
        }
        return table("Best of K paths (the reference's semantics)", \.reference) + "\n"
            + table("Top path", \.top) + comparisons
    }

    /// The K = 1 row every other K = 1 row is compared with: `pretrained`
    /// when there is one, else the first.
    public var comparisonBaseline: MethodResult? {
        let ones = rows.filter { $0.beams == 1 && $0.perTask != nil }
        return ones.first { $0.method == "pretrained" } ?? ones.first
    }

    /// Paired differences of the top path (K = 1) to ``comparisonBaseline``
    /// with 95 % bootstrap intervals over tasks, as markdown.
    public var comparisons: String {
        guard let base = comparisonBaseline, let b = base.perTask else { return "" }
        let others = rows.filter { $0.beams == 1 && $0.method != base.method && $0.perTask?.ioi.count == b.ioi.count }
        guard !others.isEmpty else { return "" }
        func cell(_ i: PairedBootstrap.Interval, _ f: String) -> String {
            String(format: "\(f) [\(f), \(f)]%@", i.mean, i.low, i.high, i.excludesZero ? " *" : "")
        }
        var out = "\n**Top path (K = 1) minus \(base.method)**, paired over the \(b.ioi.count) tasks; "
            + "95 % bootstrap interval, * where it excludes 0\n\n| method | ΔIoI | ΔIoR | ΔCTR |\n|---|---:|---:|---:|\n"
        for r in others {
            let p = r.perTask!
            out += "| \(r.method) | " + cell(PairedBootstrap.interval(p.ioi, b.ioi), "%+.4f") + " | "
                + cell(PairedBootstrap.interval(p.ior, b.ior), "%+.1f") + " | "
                + cell(PairedBootstrap.interval(p.ctr, b.ctr), "%+.4f") + " |\n"
        }
        return out
    }

    /// Writes `NAME.json` and `NAME.md` into `directory`, atomically.
    public func write(to directory: String, name: String = "results") throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(self), to: "\(directory)/\(name).json")
        try AtomicFile.write(markdown, to: "\(directory)/\(name).md")
    }

    public static func read(_ path: String) throws -> ResultsTable {
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError.unreadable(path) }
        do { return try JSONDecoder().decode(ResultsTable.self, from: data) } catch {
            throw DataError(file: path, "is not a results table: \(error)")
        }
    }
}

/// The evaluation of DESIGN §2.8: policies by beam search with each K, and
/// the non-learned baselines.
public struct EvaluationPlan: Sendable {
    public var policies: [(name: String, path: String)] = []
    public var baselines: [String] = ["random", "popular", "greedy"]
    public var beams: [Int] = [1, 5, 10]
    public var maxItems = 10
    /// Whether the policies' beams may repeat an item within a path (a
    /// platform does not recommend an item twice in one path).
    public var allowRepeats = false
    public var seed: UInt64 = 2026
    public init() {}

    /// `reference` is the task's own logged path (not a method: a yardstick).
    public static let knownBaselines = ["random", "popular", "greedy", "reference"]

    /// Evaluates every policy at every K and every baseline on `tasks`
    /// (already filtered to scorable ones); `popularity[item]` ranks the
    /// popular baseline. `progress` hears each row as it is done.
    public func run(tasks: [ProactiveTask], evaluator: PathEvaluator, popularity: [Int], split: String,
                    progress: (MethodResult) -> Void = { _ in }) throws -> ResultsTable {
        var table = try run(tasks: tasks, evaluators: [("simulator", evaluator)], popularity: popularity, split: split) { _, r in
            progress(r)
        }[0]
        table.evaluator = nil  // one simulator: the table reads as before cross-evaluation
        return table
    }

    /// Cross-evaluation: every path is generated once and scored by each of
    /// `evaluators` (tasks must be scorable by all of them); one table per
    /// evaluator, in order. The greedy baseline consults the first
    /// evaluator, so under the others it is scored by a simulator it did not
    /// ask. `progress` hears (evaluator, row) as each is done.
    public func run(tasks: [ProactiveTask], evaluators: [(name: String, evaluator: PathEvaluator)], popularity: [Int],
                    split: String, progress: (String, MethodResult) -> Void = { _, _ in }) throws -> [ResultsTable] {
        guard let first = evaluators.first?.evaluator else { throw DataError(file: "evaluation", "no evaluator") }
        var tables = evaluators.map { ResultsTable(split: split, rows: [], evaluator: $0.name) }
        func add(_ method: String, _ k: Int, _ candidates: [[[Int32?]]]) {
            for (e, (name, evaluator)) in evaluators.enumerated() {
                let row = evaluator.summarise(method: method, beams: k, scores: evaluator.score(candidates, tasks: tasks))
                tables[e].rows.append(row)
                progress(name, row)
            }
        }
        var options = DecodingOptions()
        options.maxItems = maxItems
        options.constrained = true
        options.allowRepeats = allowRepeats
        for (name, path) in policies {
            let policy = try Policy.load(path)
            guard policy.itemIDs == first.catalog.rawIDs else {
                throw DataError(file: path, "the policy's items differ from the tasks' catalogue", kind: .incompatible)
            }
            for k in beams {
                add(name, k, PathGenerators.beams(policy: policy, tasks: tasks, beams: k, options: options))
            }
        }
        for b in baselines {
            switch b {
            case "random":
                for k in beams {
                    add("random", k, PathGenerators.random(tasks: tasks, itemCount: first.catalog.itemCount, samples: k,
                                                           maxItems: maxItems, seed: seed))
                }
            case "popular":
                add("popular", 1, PathGenerators.popular(tasks: tasks, popularity: popularity, maxItems: maxItems))
            case "greedy":
                add("greedy", 1, PathGenerators.greedy(tasks: tasks, evaluator: first, maxItems: maxItems))
            case "reference":
                add("reference path", 1, tasks.map { [$0.path.prefix(maxItems).map { Optional($0) }] })
            default:
                throw DataError(file: "evaluation", "unknown baseline '\(b)' (known: \(Self.knownBaselines.joined(separator: ", ")))")
            }
        }
        return tables
    }

    /// Item popularity: occurrences in the tasks' histories and paths.
    public static func popularity(of tasks: [ProactiveTask], itemCount: Int) -> [Int] {
        var counts = [Int](repeating: 0, count: itemCount + 1)
        for t in tasks { for i in t.history + t.path { counts[Int(i)] += 1 } }
        return counts
    }
}
