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
            """)

    @Option(help: "Policy checkpoint.") var policy: String
    @Option(help: "Simulator checkpoint.") var simulator: String
    @Option(help: "catalog.json with titles and genres (default: the policy's raw ids).") var catalog: String?
    @Option(help: "History: raw item ids, comma-separated, oldest first.") var history: String?
    @Option(help: "A user of --inter whose last items form the history.") var user: String?
    @Option(help: "Interaction log for --user (RecBole .inter).") var inter: String?
    @Option(help: "Items of the history taken from --user's log.") var historyLength = 10
    @Option(help: "Target: a raw item id.") var target: String
    @Option(help: "Explain this path (raw item ids, comma-separated) instead of generating.") var path: String?
    @Option(help: "Beams (paths returned).") var beams = 3
    @Option(help: "Most items per path.") var maxItems = 10
    @Flag(help: "Let a path repeat one of its items (by default it never does).") var allowRepeats = false
    @Flag(help: "Accepted for older scripts: paths never repeat an item (the default).") var noRepeats = false
    @Option(help: "Write the first path's p(target) and CTR curves to this SVG file.") var svg: String?
    @Flag(help: "Print JSON instead of tables.") var json = false

    func validate() throws {
        guard (history == nil) != (user == nil) else { throw ValidationError("give exactly one of --history and --user") }
        if user != nil && inter == nil { throw ValidationError("--user needs --inter") }
        guard (1...1024).contains(beams) else { throw ValidationError("--beams: expected 1...1024, found \(beams)") }
        guard (1...1000).contains(maxItems) else { throw ValidationError("--max-items: expected 1...1000, found \(maxItems)") }
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
        let pol = try Policy.load(policy)
        let sim = try Simulator.load(simulator)
        guard maxItems < sim.model.maxLength else {
            throw ValidationError("--max-items: the simulator reads \(sim.model.maxLength) items, so at most \(sim.model.maxLength - 1) "
                                  + "fit after a history, found \(maxItems)")
        }
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
}
