import ArgumentParser
import Foundation
import ProRL

/// `prorl demo`: the whole pipeline on the embedded synthetic world.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the whole pipeline on the synthetic world: tasks, simulator, pretraining, ProRL (and the reference preset, REINFORCE), evaluation, report.",
        discussion: """
            Everything goes into --out: tasks/, simulator/, pretrain/, prorl/, reference/ and reinforce/ (RL runs), \
            eval-validation/ and eval-test/ (results tables), example-path.svg, training.svg and report.md. \
            The synthetic world knows each user's true taste, so the report also gives the true acceptance \
            of the generated paths and the true gain in target interest.
            """)

    @Option(help: "Directory of the synthetic world (synthetic.inter, synthetic.item, world.json).") var data = "Data/synthetic"
    @Option(help: "Output directory (must not hold anything yet).") var out = "runs/demo"
    @Option(help: "RL steps per algorithm.") var steps = 300
    @Option(help: "RL prompts per step.") var promptsPerStep = 16
    @Option(help: "Pretraining epochs.") var pretrainEpochs = 15
    @Option(help: "Added to the pretraining and RL seeds (the tasks and the simulator stay): another seed of the same experiment.")
    var seed: UInt64 = 0
    @Flag(help: "A tiny run (seconds): for tests and smoke checks, not for results.") var quick = false
    @Option(help: Precision.help)
    var precision = Precision.processDefault
    @Option(help: "Kernel threads (0: one per core; at most 1024).", transform: parseThreads) var threads = 0

    func validate() throws {
        guard steps >= 1, pretrainEpochs >= 1, promptsPerStep >= 1 else {
            throw ValidationError("--steps, --prompts-per-step and --pretrain-epochs must be ≥ 1")
        }
    }

    func run() throws {
        Kernels.threads = threads
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: out), !entries.isEmpty {
            throw DataError(file: out, "is not empty (choose another --out, or remove it)")
        }
        let t0 = Date()
        func stage(_ name: String) {
            print(String(format: "\n== %@  (%.0f s)", name, Date().timeIntervalSince(t0)))
            fflush(nil)
        }

        stage("tasks from the synthetic world")
        let log = try RecBoleReader.readLog(inter: "\(data)/synthetic.inter", item: "\(data)/synthetic.item")
        let world = try SyntheticWorld.read("\(data)/world.json")
        var tc = TaskConstruction()
        if quick { tc.tasksPerUser = 2 }
        let splits = try TaskBuilder.build(log, settings: tc)
        for (name, tasks) in splits.all {
            try TaskFile.write(tasks, catalog: log.catalog, to: "\(out)/tasks/\(name).jsonl")
            print("\(name): \(TaskStatistics(tasks))")
        }
        try log.catalog.write(to: "\(out)/tasks/catalog.json")

        let architecture = SequenceArchitectures.standard
        stage("simulator (\(architecture.name)) on the world's interaction log")
        var ss = SimulatorTraining()
        ss.epochs = quick ? 2 : 60
        ss.patience = 8
        ss.precision = precision
        let simTrainer = try SimulatorTrainer(
            log: log, model: try architecture.create(log.catalog.vocabularySize, SequenceModelOptions(), ss.seed), settings: ss)
        let simResult = try simTrainer.run { e in
            if e.epoch % 10 == 0 || e.improved && e.epoch <= 3 {
                print(String(format: "epoch %3d  loss %.4f  valid ", e.epoch, e.loss) + e.validation.summary)
                fflush(nil)
            }
        }
        print("simulator test: \(simResult.test.summary)")
        let simulator = try Simulator(model: simTrainer.model, itemIDs: log.catalog.rawIDs)
        let simPath = "\(out)/simulator/simulator.safetensors"
        try simulator.save(to: simPath)

        stage("policy pretraining on the reference paths")
        let tokenizer = try ItemTokenizer(perItem: log.catalog.itemCount)
        let policy = try Policy(tokenizer: tokenizer, itemIDs: log.catalog.rawIDs)
        var ps = PretrainingSettings()
        ps.epochs = quick ? 1 : pretrainEpochs
        ps.seed &+= seed
        ps.precision = precision
        let pretrainer = try PolicyPretrainer(policy: policy, train: splits.train, validation: splits.validation, settings: ps)
        let bar = ProgressReporter(total: ps.epochs, label: "pretrain", every: 5)
        // the epoch kept is the one whose greedy validation paths raise p(target) most (IoI@1)
        let selector = try PathEvaluator(simulator: simulator, catalog: log.catalog)
        let selectionTasks = selector.scorable(splits.validation).tasks
        try pretrainer.run(evaluate: {
            ["ioi": selector.evaluate(policy: policy, method: "policy", tasks: selectionTasks, beams: 1,
                                      options: DecodingOptions()).top.ioi]
        }, selection: "ioi") { e in
            bar.update(e.epoch, status: String(format: "train %.3f  valid %.3f  IoI@1 %.3f", e.trainLoss, e.validationLoss ?? .nan,
                                               e.metrics["ioi"] ?? .nan))
        }
        bar.finish()
        let sftPath = "\(out)/pretrain/policy-sft.safetensors"
        try policy.save(to: sftPath)

        // the engine's ProRL, the official code's choices (--preset reference) and REINFORCE
        var runs: [(String, String)] = []
        for name in ["prorl", "reference", "reinforce"] {
            stage("RL: \(name)")
            var s = RLSettings()
            if name == "reference" { s.applyReferencePreset() }
            if name == "reinforce" { s.algorithm = .reinforce }
            s.seed &+= seed
            s.precision = precision
            s.promptsPerStep = quick ? 4 : promptsPerStep
            s.steps = quick ? 4 : steps
            s.evaluateEvery = quick ? 4 : 25
            s.checkpointEvery = s.evaluateEvery
            let dir = "\(out)/\(name)"
            let run = try RLRun.create(dir, config: .init(inputs: .init(tasks: "\(out)/tasks", simulator: simPath, policy: sftPath,
                                                                        world: "\(data)/world.json",
                                                                        worldLog: "\(data)/synthetic.inter"),
                                                          settings: s))
            let rl = ProgressReporter(total: s.steps, label: name)
            try run.train { p in
                rl.update(p.log.step, status: String(format: "length %.2f  diversity %.3f", p.log["length"] ?? 0,
                                                      p.log["diversity_within"] ?? 0))
            }
            rl.finish()
            runs.append((name, dir))
        }

        var results: [String] = []
        let evaluator = try PathEvaluator(simulator: simulator, catalog: log.catalog, world: (world, log))
        for (split, tasks) in [("validation", splits.validation), ("test", splits.test)] {
            stage("evaluation on \(split)")
            var plan = EvaluationPlan()
            plan.policies = [("pretrained", sftPath)] + runs.map { ($0.0, "\($0.1)/policy.safetensors") }
            plan.beams = quick ? [1, 2] : [1, 5, 10]
            plan.baselines = ["random", "popular", "greedy", "reference"]
            var (kept, _) = evaluator.scorable(tasks)
            if quick { kept = Array(kept.prefix(40)) }
            let table = try plan.run(tasks: kept, evaluator: evaluator,
                                     popularity: EvaluationPlan.popularity(of: splits.train, itemCount: log.catalog.itemCount),
                                     split: split) { r in
                print(String(format: "  %-14@ K=%-2d IoI %+.4f  IoR %+7.1f  CTR %.3f  length %.2f", r.method, r.beams,
                             r.top.ioi, r.top.ior, r.top.ctr, r.top.length))
                fflush(nil)
            }
            try table.write(to: "\(out)/eval-\(split)")
            results.append("\(out)/eval-\(split)/results.json")
        }

        stage("an example path (ProRL policy, first test task)")
        var figures: [(String, String)] = []
        if let task = evaluator.scorable(splits.test).tasks.first {
            let trained = try Policy.load("\(out)/prorl/policy.safetensors")
            var options = DecodingOptions()
            options.maxItems = 10
            let paths = PathGenerators.beams(policy: trained, tasks: [task], beams: 1, options: options)
            let e = try PathExplanation.explain(path: paths[0][0].compactMap { $0 }, history: task.history, target: task.target,
                                                policy: trained, simulator: simulator, catalog: log.catalog)
            print(e.text(catalog: log.catalog))
            try AtomicFile.write(Figures.path(title: e.targetTitle, logProbTarget: e.steps.map(\.logProbTarget),
                                              ctr: e.steps.compactMap(\.ctr)), to: "\(out)/example-path.svg")
            figures.append(("Example path (first test task, ProRL policy)", "\(out)/example-path.svg"))
        }

        let intro = """
            The whole pipeline on the synthetic world in `\(data)`: \(log.users.count) users, \(log.catalog.itemCount) items, \
            \(log.eventCount) events. Simulator test \(simResult.test.summary). Policy: T5 3+3 (d 128), one token per item, \
            pretrained \(ps.epochs) epochs; RL \(quick ? 4 : steps) steps of \(quick ? 4 : promptsPerStep) prompts × 16 rollouts \
            per method: ProRL as the engine runs it, the official code's choices (`--preset reference`) and REINFORCE.
            """
        let report = try Report.write(title: "ProRL demo on the synthetic world", runs: runs, results: results,
                                      figures: figures, intro: intro, to: out)
        stage("done")
        let validation = try ResultsTable.read(results[0])
        print(validation.markdown)
        print("report: \(report)  (figures: \(out)/training.svg, \(out)/example-path.svg)")
    }
}
