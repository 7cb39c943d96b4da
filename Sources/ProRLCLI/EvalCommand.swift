import ArgumentParser
import Foundation
import ProRL

/// `prorl eval`: the results table of policies and baselines on a split.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate policies (beam search, K beams) and non-learned baselines with the simulator.",
        discussion: """
            Tasks come from --tasks DIR (DIR/SPLIT.jsonl with DIR/catalog.json) or from an official ProRL \
            split file with its --datamaps. Measures per path: IoI, IoR, CTR (simulator), coherence, \
            validity, length; per method: the best of the K paths (reference semantics) and the top path, \
            and diversity across tasks. Writes OUT/results.json and OUT/results.md. With --evaluator, the same \
            paths are also scored by each further simulator (either architecture): one table per evaluator, \
            OUT/results-NAME.json and .md; tasks are those every simulator can score, and the greedy baseline \
            consults --simulator only.
            """)

    @Option(help: "Simulator checkpoint (scores the paths; the greedy baseline asks it).") var simulator: String
    @Option(name: .customLong("evaluator"), help: "A further simulator that scores the same paths, as NAME=CHECKPOINT (repeatable).")
    var evaluators: [String] = []
    @Option(help: "Directory with SPLIT.jsonl and catalog.json.") var tasks: String?
    @Option(help: "Split to evaluate in --tasks: validation or test.") var split = "validation"
    @Option(help: "An official ProRL split file (val or test layout), instead of --tasks.") var splitFile: String?
    @Option(help: "The .datamaps of --split-file.") var datamaps: String?
    @Option(name: .customLong("policy"), help: "A policy to evaluate, as NAME=CHECKPOINT (repeatable).")
    var policies: [String] = []
    @Option(help: "Baselines, comma-separated: random, popular, greedy, reference (the logged path), or 'none'.")
    var baselines = "random,popular,greedy,reference"
    @Option(help: "Beam counts K, comma-separated.") var beams = "1,5,10"
    @Option(help: "Most items per path.") var maxItems = 10
    @Flag(help: "Let policies' beams repeat an item within a path (by default they never do).") var allowRepeats = false
    @Flag(help: "Accepted for older scripts: paths never repeat an item (the default).") var noRepeats = false
    @Option(help: "Evaluate only the first N tasks (0: all).") var limit = 0
    @Option(help: "Synthetic world directory (world.json, synthetic.inter) for ground-truth measures.") var world: String?
    @Option(help: "Output directory for results.json and results.md.") var out: String?
    @Option(help: "Kernel threads (0: one per core; at most 1024).", transform: parseThreads) var threads = 0

    func validate() throws {
        guard (tasks == nil) != (splitFile == nil) else { throw ValidationError("give exactly one of --tasks and --split-file") }
        if splitFile != nil && datamaps == nil { throw ValidationError("--split-file needs --datamaps") }
        guard ["validation", "test", "train"].contains(split) else {
            throw ValidationError("--split: expected validation, test or train, found '\(split)'")
        }
        _ = try parsedBeams()
        for p in policies where Self.namePath(p) == nil { throw ValidationError("--policy: expected NAME=CHECKPOINT, found '\(p)'") }
        let names = try parsedEvaluators().map(\.name)
        guard Set(names).count == names.count, !names.contains("simulator") else {
            throw ValidationError("--evaluator: names must differ from each other and from 'simulator', found \(names)")
        }
        guard maxItems >= 1, limit >= 0 else { throw ValidationError("--max-items ≥ 1 and --limit ≥ 0 expected") }
    }

    func parsedBeams() throws -> [Int] {
        let k = beams.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !k.isEmpty, k.allSatisfy({ (1...1024).contains($0 ?? 0) }) else {
            throw ValidationError("--beams: expected integers in 1...1024 separated by commas, found '\(beams)'")
        }
        return k.map { $0! }
    }

    /// NAME=PATH split at the first '=' (nil without one, or with an empty
    /// name or path).
    static func namePath(_ text: String) -> (name: String, path: String)? {
        let parts = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        return parts.count == 2 && !parts[0].isEmpty && !parts[1].isEmpty ? (parts[0], parts[1]) : nil
    }

    /// The --evaluator pairs; names become file names (results-NAME.json).
    func parsedEvaluators() throws -> [(name: String, path: String)] {
        try evaluators.map { e in
            guard let (name, path) = Self.namePath(e), !name.isEmpty, !path.isEmpty,
                  name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
                throw ValidationError("--evaluator: expected NAME=CHECKPOINT with NAME of letters, digits, - or _, found '\(e)'")
            }
            return (name, path)
        }
    }

    func run() throws {
        Kernels.threads = threads
        let catalog: ItemCatalog, all: [ProactiveTask], popularitySource: [ProactiveTask]
        if let tasks {
            catalog = try ItemCatalog.read("\(tasks)/catalog.json")
            all = try TaskFile.read("\(tasks)/\(split).jsonl", catalog: catalog)
            let train = "\(tasks)/train.jsonl"
            popularitySource = FileManager.default.fileExists(atPath: train) ? try TaskFile.read(train, catalog: catalog) : all
        } else {
            catalog = try ProRLDatamaps.catalog(datamaps!)
            all = try TaskFile.read(splitFile!, catalog: catalog)
            popularitySource = all
        }
        let sim = try Simulator.load(simulator)
        var truth: (world: SyntheticWorld, log: InteractionLog)? = nil
        if let world {
            truth = (try SyntheticWorld.read("\(world)/world.json"),
                     try RecBoleReader.readLog(inter: "\(world)/synthetic.inter", item: nil, order: .stable))
        }
        var evaluators = [(name: "simulator", evaluator: try PathEvaluator(simulator: sim, catalog: catalog, maxItems: maxItems,
                                                                        world: truth))]
        for (name, path) in try parsedEvaluators() {
            evaluators.append((name, try PathEvaluator(simulator: try Simulator.load(path), catalog: catalog, maxItems: maxItems,
                                                   world: truth)))
        }
        var kept = all, dropped = 0
        for (_, e) in evaluators {
            let r = e.scorable(kept)
            kept = r.tasks
            dropped += r.dropped
        }
        if limit > 0 { kept = Array(kept.prefix(limit)) }
        guard !kept.isEmpty else { throw DataError(file: tasks ?? splitFile!, "no task the simulator can score") }
        print("evaluating on \(kept.count) \(split) tasks" + (dropped > 0 ? " (\(dropped) unknown to a simulator skipped)" : "")
              + (evaluators.count > 1 ? ", scored by \(evaluators.map(\.name).joined(separator: ", "))" : ""))
        var plan = EvaluationPlan()
        plan.policies = policies.compactMap(Self.namePath)
        plan.baselines = baselines == "none" ? [] : baselines.split(separator: ",").map { String($0) }
        for b in plan.baselines where !EvaluationPlan.knownBaselines.contains(b) {
            throw ValidationError("--baselines: unknown '\(b)' (known: \(EvaluationPlan.knownBaselines.joined(separator: ", ")), none)")
        }
        plan.beams = try parsedBeams()
        plan.maxItems = maxItems
        plan.allowRepeats = allowRepeats && !noRepeats
        let tables = try plan.run(tasks: kept, evaluators: evaluators,
                                  popularity: EvaluationPlan.popularity(of: popularitySource, itemCount: catalog.itemCount),
                                  split: split) { name, r in
            print(String(format: "  %@ K=%d  IoI %.4f  IoR %.1f  CTR %.4f  length %.2f", r.method, r.beams, r.reference.ioi,
                         r.reference.ior, r.reference.ctr, r.reference.length)
                  + (evaluators.count > 1 ? "  (\(name))" : ""))
            fflush(nil)
        }
        for t in tables {
            print("")
            print(t.markdown)
        }
        if let out {
            try tables[0].write(to: out)
            for t in tables.dropFirst() { try t.write(to: out, name: "results-\(t.evaluator!)") }
            print("wrote \(out)/results.json and results.md"
                  + tables.dropFirst().map { ", results-\($0.evaluator!).json" }.joined())
        }
    }
}
