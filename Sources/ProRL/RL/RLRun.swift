import Foundation

/// An RL training run living in one directory:
///
///     config.json            inputs and resolved settings
///     metrics.jsonl          one line per step (RLStepLog)
///     validation.jsonl       one line per validation evaluation
///     policy.safetensors     the best policy by validation IoI
///     policy-last.safetensors, state.safetensors   what --resume needs
///
/// Every file is written atomically or appended line by line.
public final class RLRun {
    /// Where the run's inputs live.
    public struct Inputs: Codable, Sendable, Equatable {
        /// Directory with train.jsonl, validation.jsonl and catalog.json.
        public var tasks: String
        public var simulator: String
        /// Further simulators whose step rewards are averaged with the
        /// simulator's (validation is by `simulator` alone).
        public var ensemble: [String]?
        /// The pretrained policy (the starting point and the KL anchor).
        public var policy: String
        /// The synthetic world's world.json and log (ground truth), if any.
        public var world: String?
        public var worldLog: String?
        public init(tasks: String, simulator: String, policy: String, world: String? = nil, worldLog: String? = nil) {
            self.tasks = tasks
            self.simulator = simulator
            self.policy = policy
            self.world = world
            self.worldLog = worldLog
        }
    }

    public struct Config: Codable, Sendable, Equatable {
        public var inputs: Inputs
        public var settings: RLSettings
        public init(inputs: Inputs, settings: RLSettings) {
            self.inputs = inputs
            self.settings = settings
        }
    }

    public let directory: String
    public private(set) var config: Config

    public var configPath: String { "\(directory)/config.json" }
    public var metricsPath: String { "\(directory)/metrics.jsonl" }
    public var validationPath: String { "\(directory)/validation.jsonl" }
    public var bestPolicyPath: String { "\(directory)/policy.safetensors" }
    public var lastPolicyPath: String { "\(directory)/policy-last.safetensors" }
    public var statePath: String { "\(directory)/state.safetensors" }

    /// Whether ``create(_:config:)`` made this run in this process (and
    /// nothing of it has trained yet): then a session that cannot start
    /// takes the run's files away again, so the directory is not blocked.
    private var fresh = false
    /// Whether ``create(_:config:)`` also made the directory itself.
    private var madeDirectory = false

    private init(directory: String, config: Config) {
        self.directory = directory
        self.config = config
    }

    /// Opens a training session; when a run made by ``create(_:config:)``
    /// cannot start (a missing input, tasks the simulator cannot score…),
    /// removes what creating it wrote before passing the error on.
    /// Data-parallel, every rank opens its session and they learn whether
    /// all did before any goes on, so a failure on one rank stops all of
    /// them, after rank 0 has removed what creating the run wrote.
    public func session(collective: any Collective = SingleProcess.shared) throws -> RLSession {
        do {
            var opened: Result<RLSession, Error>
            do { opened = .success(try RLSession(run: self, collective: collective)) } catch { opened = .failure(error) }
            if collective.size > 1 {
                let mine: UInt8 = (try? opened.get()) != nil ? 1 : 0
                let ok = try collective.allGather([mine]).map { $0 == [1] }
                if mine == 1, let failed = ok.firstIndex(of: false) {
                    opened = .failure(DataError(file: directory, "rank \(failed) could not open the run (its error is printed "
                                                + "above); stopped", kind: .distributed))
                }
            }
            let session = try opened.get()
            fresh = false
            return session
        } catch {
            if fresh && !FileManager.default.fileExists(atPath: statePath) {
                let fm = FileManager.default
                for path in [configPath, metricsPath, validationPath, bestPolicyPath, "\(directory)/.lock"] {
                    try? fm.removeItem(atPath: path)
                }
                if madeDirectory, (try? fm.contentsOfDirectory(atPath: directory))?.isEmpty == true {
                    try? fm.removeItem(atPath: directory)
                }
            }
            try? collective.barrier()  // no rank ends the job before rank 0 has cleaned up
            throw error
        }
    }

    /// Starts a run in a new (or empty) directory and saves its config
    /// (input paths made absolute, so the run opens from anywhere).
    public static func create(_ directory: String, config given: Config) throws -> RLRun {
        try given.settings.validate()
        var config = given
        func absolute(_ p: String) -> String {
            URL(fileURLWithPath: p, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).standardizedFileURL.path
        }
        config.inputs.tasks = absolute(config.inputs.tasks)
        config.inputs.simulator = absolute(config.inputs.simulator)
        config.inputs.ensemble = config.inputs.ensemble.map { $0.map(absolute) }
        config.inputs.policy = absolute(config.inputs.policy)
        config.inputs.world = config.inputs.world.map(absolute)
        config.inputs.worldLog = config.inputs.worldLog.map(absolute)
        let fm = FileManager.default
        if let entries = try? fm.contentsOfDirectory(atPath: directory), !entries.isEmpty {
            throw DataError(file: directory, "already holds a run (use --resume to continue it, or another directory)")
        }
        let run = RLRun(directory: directory, config: config)
        run.fresh = true
        run.madeDirectory = !fm.fileExists(atPath: directory)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(config), to: run.configPath)
        return run
    }

    /// Raises the configured number of steps (rewriting config.json).
    func setSteps(_ steps: Int) throws {
        config.settings.steps = steps
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(config), to: configPath)
    }

    /// Opens an existing run to resume it.
    public static func open(_ directory: String) throws -> RLRun {
        let path = "\(directory)/config.json"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError(file: directory, "holds no run to resume (no config.json)", kind: .notFound)
        }
        let config: Config
        do { config = try JSONDecoder().decode(Config.self, from: data) } catch {
            throw DataError(file: path, "is not a run config: \(error)")
        }
        do { try config.settings.validate() } catch let e as DataError {
            throw DataError(file: path, "settings: \(e.message)")
        }
        return RLRun(directory: directory, config: config)
    }

    /// What a training session reports after each step.
    public struct Progress {
        public var log: RLStepLog
        public var validation: MethodResult?
        public var improved: Bool
        public var totalSteps: Int
    }

    /// Trains until `settings.steps`, resuming from the last checkpoint when
    /// one exists. Returns the best validation result of this session.
    @discardableResult
    /// With `timeLimit` (seconds of training in this session), stops after
    /// the step that passes it: the policy then is validated (it is a
    /// candidate like any other) and checkpointed, and `--resume` continues.
    /// Data-parallel, every rank runs this with the same arguments; rank 0's
    /// clock decides when the time is up.
    public func train(timeLimit: Double? = nil, collective: any Collective = SingleProcess.shared,
                      progress: (Progress) -> Void = { _ in }) throws -> MethodResult? {
        let session = try session(collective: collective)
        let start = Date()
        var validatedLast = false
        while !session.finished {
            let p = try session.step()
            validatedLast = p.validation != nil
            progress(p)
            if let timeLimit, try collective.agree(Date().timeIntervalSince(start) >= timeLimit), !session.finished {
                if !validatedLast { _ = try session.validateNow() }
                break
            }
        }
        try session.finish()
        return session.bestResult
    }

    static func validationLine(step: Int, result r: MethodResult, improved: Bool) -> String {
        let m = r.reference
        return String(format: "{\"step\":%d,\"selection\":%.6g,\"ioi\":%.6g,\"ior\":%.6g,\"ctr\":%.6g,\"coherence\":%.6g,"
                      + "\"length\":%.4g,\"diversity\":%.4g,\"beams\":%d,\"tasks\":%d,\"best\":%@}",
                      step, m.ioi, m.ioi, m.ior, m.ctr, m.coherence, m.length, m.diversity, r.beams, r.tasks,
                      improved ? "true" : "false")
    }
}

/// An exclusive lock on a run directory for a training session's lifetime
/// (flock on DIR/.lock, released when the session goes away or the process
/// dies), so two trainers never write one run.
final class RunLock {
    private let fd: Int32

    init(directory: String) throws {
        let path = "\(directory)/.lock"
        fd = open(path, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw DataError(file: path, "cannot be created: \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let busy = errno == EWOULDBLOCK
            close(fd)
            throw DataError(file: directory, busy ? "is being trained by another process (it holds \(path)); wait for it or stop it"
                                                 : "cannot be locked: \(String(cString: strerror(errno)))",
                            kind: busy ? .busy : .badFile)
        }
    }

    deinit { close(fd) }
}

/// A run opened for training, step by step: its inputs loaded, its state
/// resumed from the last checkpoint when there is one. Each ``step()``
/// appends to the metrics, evaluates and checkpoints as the settings say.
///
/// Data-parallel, every rank opens a session on the same run and resumes
/// from the same files; every rank validates (so all keep the same best),
/// rank 0 alone holds the lock and writes.
public final class RLSession {
    public let run: RLRun
    private let lock: RunLock?
    public let trainer: RLTrainer
    public let evaluator: PathEvaluator
    public let validation: [ProactiveTask]
    public private(set) var bestResult: MethodResult? = nil
    private var best = -Double.infinity
    private let metrics: JSONLinesWriter?, validations: JSONLinesWriter?
    private let collective: any Collective

    /// Takes the run directory's lock first: a second session on the same
    /// run, in this process or another, is refused.
    public init(run: RLRun, collective: any Collective = SingleProcess.shared) throws {
        lock = collective.isWriter ? try RunLock(directory: run.directory) : nil
        self.run = run
        self.collective = collective
        let s = run.config.settings, inputs = run.config.inputs
        let catalog = try ItemCatalog.read("\(inputs.tasks)/catalog.json")
        let simulator = try Simulator.load(inputs.simulator)
        let pretrained = try Policy.load(inputs.policy)
        var world: (world: SyntheticWorld, log: InteractionLog)? = nil
        if let w = inputs.world, let l = inputs.worldLog {
            world = (try SyntheticWorld.read(w), try RecBoleReader.readLog(inter: l, item: nil, order: .stable))
        }
        evaluator = try PathEvaluator(simulator: simulator, catalog: catalog, maxItems: s.maxItems, world: world)
        var (train, _) = evaluator.scorable(try TaskFile.read("\(inputs.tasks)/train.jsonl", catalog: catalog))
        var truth: WorldRewards? = nil
        if s.rewards == .world {
            guard let world else {
                throw DataError.setting("RL settings", "rewards: 'world' needs the run's synthetic world (--world)")
            }
            let rewards = WorldRewards(world: world.world, log: world.log, catalog: catalog)
            train = train.filter(rewards.accepts)
            truth = rewards
        }
        (validation, _) = evaluator.scorable(try TaskFile.read("\(inputs.tasks)/validation.jsonl", catalog: catalog))
        guard !train.isEmpty else { throw DataError(file: inputs.tasks, "no training task is known to the simulator") }
        if collective.isWriter { RLSession.removeStaleTemporaries(in: run.directory) }
        let resuming = FileManager.default.fileExists(atPath: run.statePath)
        // the trained policy is its own copy; `pretrained` stays frozen
        let policy = try Policy.load(inputs.policy)
        let ensemble = try (inputs.ensemble ?? []).map { try Simulator.load($0) }
        if let truth {
            try RLTrainer.checkCatalog(policy: policy, catalog: catalog)
            trainer = try RLTrainer(policy: policy, reference: pretrained.model, rewards: truth, train: train, settings: s,
                                    collective: collective)
        } else {
            trainer = try RLTrainer(policy: policy, reference: pretrained.model, simulator: simulator, ensemble: ensemble,
                                    catalog: catalog, train: train, settings: s, collective: collective)
        }
        if resuming, try !trainer.restoreState(run.statePath) {
            // a state from before the weights were part of it: the policy is the other file of the pair
            let policyStep = try SafeTensors.metadata(run.lastPolicyPath)["rl_step"].flatMap(Int.init)
            guard policyStep == trainer.step else {
                throw DataError(file: run.lastPolicyPath, "is from step \(policyStep.map(String.init) ?? "?"), "
                                + "state.safetensors from step \(trainer.step): the run stopped between the two writes; "
                                + "restore a matching pair or start again")
            }
            let last = try Policy.load(run.lastPolicyPath)
            guard last.model.config == policy.model.config else {
                throw DataError(file: run.lastPolicyPath, "has another architecture than the run's policy")
            }
            policy.model.store.copyValues(from: last.model.store)
        }
        if resuming {
            for line in (try? String(contentsOfFile: run.validationPath, encoding: .utf8))?.split(separator: "\n") ?? [] {
                guard let step = JSONLinesWriter.step(of: String(line)), step <= trainer.step,
                      let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let score = object["selection"] as? Double else { continue }
                best = max(best, score)
            }
        }
        // lines up to the checkpoint stay (none when starting over)
        let done = trainer.step
        let keep: (String) -> Bool = { (JSONLinesWriter.step(of: $0) ?? Int.max) <= done }
        metrics = collective.isWriter ? try JSONLinesWriter(path: run.metricsPath, keeping: keep) : nil
        validations = collective.isWriter ? try JSONLinesWriter(path: run.validationPath, keeping: keep) : nil
        // the starting policy is a candidate too: RL must beat it to be kept
        if done == 0 && s.evaluateEvery > 0 { initialValidation = try validate()?.0 }
    }

    /// Removes the temporary files (`.NAME.tmp-PID`) a killed writer left in
    /// `directory`. Only called under the run's lock, so no live writer owns them.
    static func removeStaleTemporaries(in directory: String) {
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: directory)) ?? [] where name.hasPrefix(".") && name.contains(".tmp-") {
            try? fm.removeItem(atPath: "\(directory)/\(name)")
        }
    }

    /// The validation of the starting policy (step 0), when there was one.
    public private(set) var initialValidation: MethodResult? = nil

    /// Validates the current policy now (as a scheduled validation does).
    public func validateNow() throws -> MethodResult? { try validate()?.0 }

    /// Evaluates the current policy on the validation tasks (beam search,
    /// `selectionBeams`, constrained), keeps it when its IoI is the best so
    /// far and appends the validation line.
    private func validate() throws -> (MethodResult, Bool)? {
        guard !validation.isEmpty else { return nil }
        let s = run.config.settings, step = trainer.step
        var options = s.decoding
        options.constrained = true
        let r = evaluator.evaluate(policy: trainer.policy, method: s.algorithm.rawValue, tasks: validation,
                                   beams: s.selectionBeams, options: options)
        let improved = r.reference.ioi > best
        if improved {
            best = r.reference.ioi
            bestResult = r
            if collective.isWriter { try trainer.policy.save(to: run.bestPolicyPath, extra: ["rl_step": String(step)]) }
        }
        try validations?.append(RLRun.validationLine(step: step, result: r, improved: improved))
        return (r, improved)
    }

    /// Whether the configured number of steps is done.
    public var finished: Bool { trainer.step >= run.config.settings.steps }

    /// Makes room for `n` more steps: raises the run's configured total
    /// when fewer remain (the learning-rate schedule is constant after its
    /// warm-up, so only the count changes).
    public func extend(by n: Int) throws {
        if trainer.step + n > run.config.settings.steps { try run.setSteps(trainer.step + n) }
    }

    /// One RL step, then the validation and checkpoint it is due for.
    public func step() throws -> RLRun.Progress {
        let s = run.config.settings
        let log = try trainer.runStep()
        if let bad = ["loss", "grad_norm"].first(where: { !(log[$0] ?? 0).isFinite }) {
            throw DataError(file: run.directory, "step \(trainer.step): \(bad) is \(log[bad]!) (diverged: lower --lr?); "
                            + "stopped before writing anything of this step — the checkpoints are the last good ones", kind: .diverged)
        }
        try metrics?.append(log.json)
        var result: MethodResult? = nil, improved = false
        let step = trainer.step
        if (s.evaluateEvery > 0 && step % s.evaluateEvery == 0) || step == s.steps, let (r, better) = try validate() {
            result = r
            improved = better
        }
        if step % max(s.checkpointEvery, 1) == 0 || step == s.steps { try save() }
        return RLRun.Progress(log: log, validation: result, improved: improved, totalSteps: s.steps)
    }

    /// Writes the resumable state (latest policy, optimiser, centering) now
    /// (rank 0, once every rank is checked to hold the same parameters).
    public func save() throws {
        try collective.checkIdentical(trainer.policy.model.store.allValues, what: "the policy's parameters")
        guard collective.isWriter else { return }
        try trainer.saveState(policyPath: run.lastPolicyPath, statePath: run.statePath)
    }

    /// Ends a session: without any validation, the latest policy is the best.
    public func finish() throws {
        try save()
        if collective.isWriter, !FileManager.default.fileExists(atPath: run.bestPolicyPath) {
            try trainer.policy.save(to: run.bestPolicyPath)
        }
    }
}
