import ArgumentParser
import Foundation
import ProRL

/// `prorl generate`: paths for one history and target, explained step by step.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate paths toward a target for one history, with titles, CTR and p(target) at each step.",
        discussion: """
            The history is --history (raw item ids, oldest first) or the last --history-length items of \
            --user in --inter. With --path the given path is explained instead of generating one. Item \
            titles and genres come from --catalog (a tasks directory's catalog.json).

            Batch: with --tasks DIR (and --split) or --split-file with --datamaps, every task's --beams \
            paths go to --out as JSON lines, one per task and path: the history and target (raw ids), \
            the path (raw ids, titles), the beam score, IoI, IoR and CTR as `prorl eval` computes them, \
            and the simulator's CTR, log p(target) and rank of the target after every step.
            """)

    @Option(help: "Policy checkpoint.") var policy: String
    @Option(help: "Simulator checkpoint.") var simulator: String
    @Option(help: "catalog.json with titles and genres (default: the policy's raw ids).") var catalog: String?
    @Option(help: "History: raw item ids, comma-separated, oldest first.") var history: String?
    @Option(help: "A user of --inter whose last items form the history.") var user: String?
    @Option(help: "Interaction log for --user (RecBole .inter).") var inter: String?
    @Option(help: "Items of the history taken from --user's log.") var historyLength = 10
    @Option(help: "Target: a raw item id.") var target: String?
    @Option(help: "Explain this path (raw item ids, comma-separated) instead of generating.") var path: String?
    @Option(help: "Beams (paths returned).") var beams = 3
    @Option(help: "Most items per path.") var maxItems = 10
    @Flag(help: "Let a path repeat one of its items (by default it never does).") var allowRepeats = false
    @Flag(help: "Accepted for older scripts: paths never repeat an item (the default).") var noRepeats = false
    @Option(help: "Write the first path's p(target) and CTR curves to this SVG file.") var svg: String?
    @Flag(help: "Print JSON instead of tables.") var json = false
    @Option(help: "Batch: a tasks directory (catalog.json and split files).") var tasks: String?
    @Option(help: "Batch: the split of --tasks.") var split = "test"
    @Option(help: "Batch: an official ProRL split file, instead of --tasks.") var splitFile: String?
    @Option(help: "Batch: the .datamaps of --split-file.") var datamaps: String?
    @Option(help: "Batch: the JSON-lines file to write.") var out: String?
    @Option(help: "Batch: only the first N tasks (0: all).") var limit = 0
    @Option(help: "Kernel threads (0: one per core; at most 1024).", transform: parseThreads) var threads = 0

    var batch: Bool { tasks != nil || splitFile != nil }

    func validate() throws {
        guard (1...1024).contains(beams) else { throw ValidationError("--beams: expected 1...1024, found \(beams)") }
        guard (1...1000).contains(maxItems) else { throw ValidationError("--max-items: expected 1...1000, found \(maxItems)") }
        if batch {
            guard (tasks == nil) != (splitFile == nil) else { throw ValidationError("give exactly one of --tasks and --split-file") }
            if splitFile != nil && datamaps == nil { throw ValidationError("--split-file needs --datamaps") }
            if tasks != nil && datamaps != nil { throw ValidationError("--datamaps goes with --split-file, not --tasks") }
            guard out != nil else { throw ValidationError("--tasks and --split-file write JSON lines: give --out FILE") }
            guard history == nil, user == nil, target == nil, path == nil, svg == nil else {
                throw ValidationError("--history, --user, --target, --path and --svg are for one task, not with --tasks/--split-file")
            }
            guard limit >= 0 else { throw ValidationError("--limit: expected ≥ 0, found \(limit)") }
            return
        }
        guard target != nil else { throw ValidationError("give --target (or --tasks for a batch)") }
        guard out == nil else { throw ValidationError("--out is for a batch (--tasks or --split-file)") }
        guard (history == nil) != (user == nil) else { throw ValidationError("give exactly one of --history and --user") }
        if user != nil && inter == nil { throw ValidationError("--user needs --inter") }
        guard (1...4096).contains(historyLength) else { throw ValidationError("--history-length: expected 1...4096, found \(historyLength)") }
    }

    /// Comma-separated raw ids; an empty list or an empty id is an error.
    static func ids(_ text: String, _ flag: String) throws -> [String] {
        let ids = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard !text.isEmpty, ids.allSatisfy({ !$0.isEmpty }) else {
            throw ValidationError("\(flag): expected raw item ids separated by commas, found '\(text)'")
        }
        guard ids.count <= 4096 else { throw ValidationError("\(flag): at most 4096 items, found \(ids.count)") }
        return ids
    }

    func run() throws {
        Kernels.threads = threads
        let pol = try Policy.load(policy)
        let sim = try Simulator.load(simulator)
        guard maxItems < sim.model.maxLength else {
            throw ValidationError("--max-items: the simulator reads \(sim.model.maxLength) items, so at most \(sim.model.maxLength - 1) "
                                  + "fit after a history, found \(maxItems)")
        }
        if batch { return try runBatch(pol, sim) }
        let target = self.target!
        var cat: ItemCatalog
        if let catalog {
            cat = try ItemCatalog.read(catalog)
            guard cat.rawIDs == pol.itemIDs else { throw DataError(file: catalog, "its items differ from the policy's") }
        } else {
            cat = ItemCatalog()
            for id in pol.itemIDs.dropFirst() { cat.add(id) }
        }
        func dense(_ raw: String, _ what: String) throws -> Int32 {
            guard let d = cat.dense(raw) else { throw ValidationError("\(what): item '\(raw)' is not in the policy's catalogue") }
            return d
        }
        let hist: [Int32]
        if let history {
            hist = try Self.ids(history, "--history").map { try dense($0, "--history") }
        } else {
            let log = try RecBoleReader.readLog(inter: inter!, item: nil, order: .stable)
            guard let seq = log.users.first(where: { $0.user == user! }) else {
                throw DataError(file: inter!, "has no user '\(user!)'")
            }
            hist = try seq.items.suffix(historyLength).map { try dense(log.catalog.raw($0), "--user") }
        }
        guard !hist.isEmpty else { throw ValidationError("the history is empty") }
        let tgt = try dense(target, "--target")
        var explained: [PathExplanation] = []
        if let path {
            let items = try Self.ids(path, "--path").map { try dense($0, "--path") }
            explained = [try PathExplanation.explain(path: items, history: hist, target: tgt, policy: pol, simulator: sim, catalog: cat)]
        } else {
            var options = DecodingOptions()
            options.maxItems = maxItems
            options.allowRepeats = allowRepeats && !noRepeats
            let encoder = pol.encoderTokens(history: hist, target: tgt)
            let decoder = T5Decoder(model: pol.model, maxPrompts: 1, maxRows: beams, encoderLength: encoder.count,
                                    maxSteps: pol.decoderLength(maxItems: maxItems))
            let found = PathDecoding(decoder: decoder, tokenizer: pol.tokenizer).beamSearch(prompts: [encoder], beams: beams,
                                                                                            options: options)[0]
            for p in found {
                let items = Rollout(tokens: p.tokens, tokenizer: pol.tokenizer, maxItems: maxItems).items.compactMap { $0 }
                explained.append(try PathExplanation.explain(path: items, history: hist, target: tgt, policy: pol, simulator: sim,
                                                             catalog: cat, beamScore: Double(p.score)))
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            for e in explained { print(String(decoding: try encoder.encode(e), as: UTF8.self)) }
        } else {
            print("history: " + hist.suffix(5).map { cat.displayName($0) }.joined(separator: " · ")
                  + (hist.count > 5 ? " (last 5 of \(hist.count))" : ""))
            for (i, e) in explained.enumerated() {
                print("")
                print("path \(i + 1) of \(explained.count)" + (e.beamScore.map { String(format: " (beam score %.4f)", $0) } ?? ""))
                print(e.text(catalog: cat))
            }
        }
        if let svg, let first = explained.first {
            try AtomicFile.write(Figures.path(title: first.targetTitle, logProbTarget: first.steps.map(\.logProbTarget),
                                              ctr: first.steps.compactMap(\.ctr)), to: svg)
            if !json { print("\nwrote \(svg)") }
        }
    }

    /// `--tasks`/`--split-file`: every task's paths as JSON lines in --out.
    func runBatch(_ pol: Policy, _ sim: Simulator) throws {
        let catalog: ItemCatalog, all: [ProactiveTask], source: String
        if let tasks {
            catalog = try ItemCatalog.read("\(tasks)/catalog.json")
            source = "\(tasks)/\(split).jsonl"
        } else {
            catalog = try ProRLDatamaps.catalog(datamaps!)
            source = splitFile!
        }
        all = try TaskFile.read(source, catalog: catalog)
        guard pol.itemIDs == catalog.rawIDs else {
            throw DataError(file: policy, "the policy's items differ from the tasks' catalogue", kind: .incompatible)
        }
        let evaluator = try PathEvaluator(simulator: sim, catalog: catalog, maxItems: maxItems)
        var (kept, dropped) = evaluator.scorable(all)
        if limit > 0 { kept = Array(kept.prefix(limit)) }
        guard !kept.isEmpty else { throw DataError(file: source, "no task the simulator can score") }
        var options = DecodingOptions()
        options.maxItems = maxItems
        options.constrained = true
        options.allowRepeats = allowRepeats && !noRepeats
        print("generating \(beams) path\(beams == 1 ? "" : "s") for \(kept.count) tasks of \(source)"
              + (dropped > 0 ? " (\(dropped) unknown to the simulator skipped)" : ""))
        fflush(nil)
        let start = Date()
        let lines = try PathExport.lines(policy: pol, evaluator: evaluator, tasks: kept, beams: beams, options: options) { done, total in
            print(String(format: "  %d / %d tasks  %.0f tasks/s", done, total, Double(done) / max(Date().timeIntervalSince(start), 1e-9)))
            fflush(nil)
        }
        try AtomicFile.write(lines.map { $0 + "\n" }.joined(), to: out!)
        print("wrote \(lines.count) paths to \(out!)")
    }
}
