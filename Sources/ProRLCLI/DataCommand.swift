import ArgumentParser
import Foundation
import ProRL

/// `prorl data`: import logs and splits, build tasks, generate the
/// synthetic world.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Import interaction logs and ProRL splits, build tasks, generate the synthetic world.",
        subcommands: [Synth.self, Tasks.self, ImportSplits.self]
    )

    /// `prorl data synth`
    struct Synth: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate the synthetic world (RecBole log + ground truth) into a directory.")

        @Option(help: "Output directory (created; files are replaced atomically).")
        var out = "Data/synthetic"
        @Option(help: "Random seed; the same seed regenerates the same bytes.")
        var seed: UInt64 = 7
        @Option(help: "Number of users.")
        var users = 500
        @Option(help: "Number of items.")
        var items = 600

        func run() throws {
            var s = SyntheticWorld.Settings()
            s.seed = seed
            s.users = users
            s.items = items
            let (world, log) = try SyntheticWorld.generate(s)
            try SyntheticWorld.write(world: world, log: log, to: out)
            print("wrote \(out)/synthetic.inter (\(log.eventCount) events, \(log.users.count) users), "
                  + "synthetic.item (\(log.catalog.itemCount) items), world.json")
        }
    }

    /// `prorl data tasks`
    struct Tasks: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build proactive tasks from a log and write train/validation/test JSON lines.",
            discussion: """
                The log is a RecBole .inter file (with --item for titles and genres), a MovieLens \
                ratings.dat (with --item pointing at movies.dat) or a CSV of user,item,timestamp. \
                Tasks are windows of each user's sequence: 10 history items, a path of 1…10 items and \
                the target after it; users are split disjointly by seed.
                """)

        @OptionGroup var log: LogOptions
        @Option(help: "Output directory for train.jsonl, validation.jsonl, test.jsonl and stats.json.")
        var out: String
        @Option(help: "Windows drawn per user (at most).")
        var tasksPerUser = 8
        @Option(help: "Windows per validation and test user (default: --tasks-per-user).")
        var evaluationTasksPerUser: Int?
        @Option(help: "Longest reference path.")
        var maxPathLength = 10
        @Option(help: "Path lengths: 'geometric:P' (P(L) ∝ (1−P)^(L−1)) or 'uniform'.")
        var pathLengths = "geometric:0.35"
        @Option(help: "Seed for the user split and the windows.")
        var seed: UInt64 = 2024
        @Flag(help: "Allow targets that occur in the history.")
        var allowTargetInHistory = false

        func run() throws {
            let log = try self.log.read()
            var s = TaskConstruction()
            s.tasksPerUser = tasksPerUser
            s.evaluationTasksPerUser = evaluationTasksPerUser
            s.maxPathLength = maxPathLength
            s.seed = seed
            s.targetNotInHistory = !allowTargetInHistory
            s.pathLengths = try parsePathLengths(pathLengths)
            let splits = try TaskBuilder.build(log, settings: s)
            var stats: [String: Any] = [:], files: [(name: String, data: Data)] = []
            for (name, tasks) in splits.all {
                files.append(("\(name).jsonl", Data(TaskFile.text(tasks, catalog: log.catalog).utf8)))
                let st = TaskStatistics(tasks)
                print("\(name): \(st)")
                stats[name] = ["tasks": st.count, "users": st.users, "targets": st.targets,
                               "mean_path_length": st.meanPathLength,
                               "path_length_histogram": Array(st.pathLengthHistogram.dropFirst())]
            }
            files.append(("stats.json", try JSONSerialization.data(withJSONObject: stats, options: [.prettyPrinted, .sortedKeys])))
            files.append(("catalog.json", try log.catalog.encoded()))
            try AtomicDirectory.write(files, to: out, replaceable: TaskFile.setNames)
        }
    }

    /// `prorl data import-splits`
    struct ImportSplits: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import-splits",
            abstract: "Import an official ProRL split: check it against its datamaps and semantic IDs, print statistics.",
            discussion: """
                With --out, writes the tasks as JSON lines split by user into train.jsonl and \
                validation.jsonl (--validation-users is the fraction of users held out), plus catalog.json \
                and, with --sem-ids, tokenizer.json.
                """)

        @Argument(help: "The split file (JSON array, val or test layout, or JSON lines).")
        var split: String
        @Option(help: "The dataset's .datamaps file.")
        var datamaps: String
        @Option(name: .customLong("sem-ids"), help: "The dataset's .sem_ids file (optional).")
        var semIDs: String?
        @Option(help: "Output directory for train/validation JSON lines (optional).")
        var out: String?
        @Option(help: "Fraction of users whose tasks go to validation.")
        var validationUsers = 0.1
        @Option(help: "Seed of the user split.")
        var seed: UInt64 = 2024

        func validate() throws {
            guard validationUsers >= 0 && validationUsers < 1 else {
                throw ValidationError("--validation-users: expected a fraction in [0, 1), found \(validationUsers)")
            }
        }

        func run() throws {
            let catalog = try ProRLDatamaps.catalog(datamaps)
            let tasks = try TaskFile.read(split, catalog: catalog)
            print("\(split): \(TaskStatistics(tasks)); catalogue of \(catalog.itemCount) items")
            var tokenizer: ItemTokenizer? = nil
            if let semIDs {
                let tok = try ProRLDatamaps.tokenizer(semanticIDs: semIDs, catalog: catalog)
                print("semantic IDs: \(tok.tokensPerItem) tokens per item, vocabulary \(tok.vocabularySize), "
                      + "trie of \(tok.trie.nodeCount) nodes")
                tokenizer = tok
            }
            guard let out else { return }
            let (train, validation) = TaskBuilder.splitByUser(tasks, validationFraction: validationUsers, seed: seed)
            var files: [(name: String, data: Data)] = [
                ("train.jsonl", Data(TaskFile.text(train, catalog: catalog).utf8)),
                ("validation.jsonl", Data(TaskFile.text(validation, catalog: catalog).utf8)),
                ("catalog.json", try catalog.encoded()),
            ]
            if let tokenizer { files.append(("tokenizer.json", try JSONEncoder().encode(tokenizer))) }
            try AtomicDirectory.write(files, to: out, replaceable: TaskFile.setNames)
            print("train: \(TaskStatistics(train))")
            print("validation: \(TaskStatistics(validation))")
        }
    }
}

/// Where a log comes from (shared by the commands that read one).
struct LogOptions: ParsableArguments {
    @Option(help: "Interaction log: RecBole .inter, MovieLens ratings.dat or CSV user,item,timestamp.")
    var inter: String
    @Option(help: "Item file: RecBole .item or MovieLens movies.dat (titles and genres).")
    var item: String?
    @Option(help: "Time order: 'stable' (timestamp, ties in file order) or 'recbole' (RecBole's rule).")
    var timeOrder: TimeOrder = .stable

    func read() throws -> InteractionLog {
        if inter.hasSuffix(".dat") { return try MovieLensReader.readRatings(inter, movies: item, order: timeOrder) }
        if inter.hasSuffix(".csv") {
            var log = try CSVLogReader.read(inter, order: timeOrder)
            if let item { try RecBoleReader.readItems(item, into: &log.catalog, addMissing: false) }
            return log
        }
        return try RecBoleReader.readLog(inter: inter, item: item, order: timeOrder)
    }
}

extension TimeOrder: ExpressibleByArgument {}

func parsePathLengths(_ text: String) throws -> TaskConstruction.PathLengths {
    if text == "uniform" { return .uniform }
    if text.hasPrefix("geometric:"), let p = Double(text.dropFirst("geometric:".count)), p > 0, p <= 1 {
        return .geometric(p: p)
    }
    throw ValidationError("--path-lengths: expected 'uniform' or 'geometric:P' with 0 < P ≤ 1, found '\(text)'")
}

/// `--threads`: 0 (one per core) … 1024, refused otherwise (a negative
/// count or one past Int32 must not silently mean "all" or trap).
func parseThreads(_ text: String) throws -> Int {
    guard let n = Int(text), (0...1024).contains(n) else {
        throw ValidationError("--threads: expected 0 (one per core) to 1024, found '\(text)'")
    }
    return n
}
