import ArgumentParser
import Foundation
import ProRL

/// `prorl train`: RL of a pretrained policy against the simulator.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a pretrained policy with ProRL (or a baseline estimator) against the simulator.",
        discussion: """
            A run lives in --run: config.json (inputs and resolved settings), metrics.jsonl (one line per \
            step), validation.jsonl, policy.safetensors (best by validation IoI), policy-last.safetensors \
            and state.safetensors (for --resume). Settings come from the defaults, then --config (a JSON \
            file with "inputs" and "settings" as config.json holds them), then the flags.
            """)

    @Option(name: .customLong("run"), help: "Run directory (new, or an existing run with --resume).") var runDirectory: String
    @Flag(help: "Continue the run in --run from its last checkpoint (its saved config is used).") var resume = false
    @Option(help: "JSON config file (the layout of a run's config.json; flags override it).") var config: String?
    @Option(help: "Directory with train.jsonl, validation.jsonl and catalog.json.") var tasks: String?
    @Option(help: "Simulator checkpoint.") var simulator: String?
    @Option(help: "A further simulator checkpoint (repeatable): step rewards are the mean over --simulator and these; validation is by --simulator.")
    var ensemble: [String] = []
    @Option(help: "Pretrained policy checkpoint (start and KL anchor).") var policy: String?
    @Option(help: "Synthetic world directory (world.json, synthetic.inter) for ground-truth metrics.") var world: String?
    @Option(help: "Start from a preset: 'default' (the engine's) or 'reference' (the official code's choices: frozen global z-scores, log-ratio KL over full-vocabulary log-probs, repeats allowed, top-k 50); other flags override it.")
    var preset: String?
    @Option(help: "Estimator: prorl, reinforce, grpo, prorl-no-centering, prorl-no-psae.") var algo: RLAlgorithm?
    @Option(help: "Optimisation steps.") var steps: Int?
    @Option(help: "Passes over the training prompts (sets --steps to epochs × ⌈tasks / prompts-per-step⌉).") var epochs: Int?
    @Option(help: "Prompts per micro-batch (gradients accumulated; the update is that of the whole step).") var microBatch: Int?
    @Option(help: "Step-reward normalisation: scale (IoI, IoR / σ; CTR z-scored), frozen (global z-scores), position, batch.")
    var centering: CenteringMode?
    @Option(help: "KL penalty: exact (analytic KL of the next-token distributions) or log-ratio (the reference code's).")
    var klEstimator: KLEstimator?
    @Option(help: "Log-probs under the 'sampled' distribution (renormalised over the allowed tokens) or the 'full' vocabulary.")
    var logProbSupport: LogProbSupport?
    @Flag(help: "Let rollouts and validation paths repeat an item (duplicates get CTR 0).") var allowRepeats = false
    @Option(help: "Rollouts keep the k most likely tokens (0: all).") var topK: Int?
    @Option(help: "Rollouts keep the smallest set of tokens with probability ≥ p (1: all).") var topP: Float?
    @Option(help: "Prompts per step.") var promptsPerStep: Int?
    @Option(help: "Rollouts per prompt (G).") var rollouts: Int?
    @Option(help: "Most items per path (Lmax).") var maxItems: Int?
    @Option(help: "Learning rate (AdamW, constant after a 5 % warm-up).") var lr: Float?
    @Option(help: "β, the weight of the KL term.") var kl: Double?
    @Option(help: "γ, the reward-to-go discount.") var gamma: Double?
    @Option(help: "Weights of CTR, IoI and IoR in a step reward, as 'ctr,ioi,ior'.") var weights: String?
    @Option(help: "What a step reward's IoI measures: logprob (the task's IoI: the change of log p(target)) or acceptance (of the target's own acceptance σ(u·e), the simulator's CTR of it).")
    var interest: InterestMeasure?
    @Option(help: "Where step rewards come from: simulator (the method), or world — the synthetic world's ground truth (needs --world; a diagnostic of RL with a faithful reward).")
    var rewards: RewardSource?
    @Option(help: "Steps whose rewards set the centering statistics.") var centeringWarmup: Int?
    @Option(help: "An item's log-probability from its tokens': mean or sum.") var itemLogProb: ItemLogProb?
    @Flag(help: "GRPO: divide by the group's standard deviation.") var grpoStd = false
    @Option(help: "Sampling temperature.") var temperature: Float?
    @Flag(help: "Sample without the valid-item constraint (invalid items are penalised).") var unconstrained = false
    @Option(help: "Evaluate on validation every this many steps (0: at the end).") var evaluateEvery: Int?
    @Option(help: "Write a resumable checkpoint every this many steps.") var checkpointEvery: Int?
    @Option(help: "Seed of prompt order and sampling.") var seed: UInt64?
    @Option(help: Precision.help)
    var precision: Precision?
    @Option(help: "Stop after this many minutes of training (validated and checkpointed; --resume continues).")
    var timeLimit: Double?
    @Option(help: "Kernel threads (0: one per core; at most 1024).", transform: parseThreads) var threads = 0

    func validate() throws {
        if let weights { _ = try parseWeights(weights) }
        if let preset, !["default", "reference"].contains(preset) {
            throw ValidationError("--preset: expected default or reference, found '\(preset)'")
        }
        if let epochs, epochs < 1 { throw ValidationError("--epochs: expected ≥ 1, found \(epochs)") }
        if epochs != nil && steps != nil { throw ValidationError("--epochs and --steps both set the number of steps; give one") }
        if resume {
            let overrides: [Any?] = [config, tasks, simulator, policy, world, algo, steps, promptsPerStep, rollouts, maxItems,
                                     lr, kl, gamma, weights, centeringWarmup, itemLogProb, temperature, evaluateEvery,
                                     checkpointEvery, seed, preset, epochs, microBatch, centering, klEstimator, logProbSupport,
                                     topK, topP, precision, interest, rewards]
            if overrides.contains(where: { $0 != nil }) || grpoStd || unconstrained || allowRepeats || !ensemble.isEmpty {
                throw ValidationError("--resume continues a run with its saved config; drop the other settings")
            }
        }
    }

    /// Defaults, then the config file, then the flags.
    func resolvedConfig() throws -> RLRun.Config {
        var cfg: RLRun.Config
        if let config {
            guard let data = FileManager.default.contents(atPath: config) else { throw DataError.unreadable(config) }
            do { cfg = try JSONDecoder().decode(RLRun.Config.self, from: data) } catch {
                throw DataError(file: config, "is not a train config (\"inputs\" and \"settings\" expected): \(error)")
            }
        } else {
            guard let tasks, let simulator, let policy else {
                throw ValidationError("--tasks, --simulator and --policy are required (or --config)")
            }
            cfg = RLRun.Config(inputs: .init(tasks: tasks, simulator: simulator, policy: policy), settings: RLSettings())
        }
        if let tasks { cfg.inputs.tasks = tasks }
        if let simulator { cfg.inputs.simulator = simulator }
        if let policy { cfg.inputs.policy = policy }
        if !ensemble.isEmpty { cfg.inputs.ensemble = ensemble }
        if let world {
            cfg.inputs.world = "\(world)/world.json"
            cfg.inputs.worldLog = "\(world)/synthetic.inter"
        }
        var s = cfg.settings
        if preset == "reference" { s.applyReferencePreset() }
        if let algo { s.algorithm = algo }
        if let steps { s.steps = steps }
        if let promptsPerStep { s.promptsPerStep = promptsPerStep }
        if let rollouts { s.rollouts = rollouts }
        if let maxItems { s.maxItems = maxItems }
        if let lr { s.learningRate = lr }
        if let kl { s.klWeight = kl }
        if let gamma { s.gamma = gamma }
        if let weights { s.weights = try parseWeights(weights) }
        if let interest { s.interest = interest }
        if let rewards { s.rewards = rewards }
        if let centeringWarmup { s.centeringWarmupSteps = centeringWarmup }
        if let itemLogProb { s.itemLogProb = itemLogProb }
        if grpoStd { s.grpoScaleByStd = true }
        if let temperature { s.temperature = temperature }
        if unconstrained { s.constrained = false }
        if let evaluateEvery { s.evaluateEvery = evaluateEvery }
        if let checkpointEvery { s.checkpointEvery = checkpointEvery }
        if let seed { s.seed = seed }
        if let microBatch { s.microBatchPrompts = microBatch }
        if let centering { s.centering = centering }
        if let klEstimator { s.klEstimator = klEstimator }
        if let logProbSupport { s.logProbSupport = logProbSupport }
        if allowRepeats { s.allowRepeats = true }
        if let topK { s.topK = topK }
        if let topP { s.topP = topP }
        if let precision { s.precision = precision }
        if let epochs {
            let catalog = try ItemCatalog.read("\(cfg.inputs.tasks)/catalog.json")
            let n = try TaskFile.read("\(cfg.inputs.tasks)/train.jsonl", catalog: catalog).count
            s.steps = epochs * ((n + s.promptsPerStep - 1) / s.promptsPerStep)
        }
        cfg.settings = s
        return cfg
    }

    func run() throws {
        Kernels.threads = threads
        if let timeLimit, !(timeLimit > 0 && timeLimit.isFinite) {
            throw ValidationError("--time-limit: expected a finite number of minutes > 0, found \(timeLimit)")
        }
        // data-parallel: rank 0 creates the run, then every other rank opens it
        let world = Distributed.world
        let run: RLRun
        if resume {
            run = try RLRun.open(runDirectory)
        } else if world.isWriter {
            run = try RLRun.create(runDirectory, config: try resolvedConfig())
            try world.barrier()
        } else {
            _ = try resolvedConfig()  // the same flags, checked on every rank
            try world.barrier()
            run = try RLRun.open(runDirectory)
        }
        let s = run.config.settings
        let workers: String = world.size > 1 ? "\(world.size) ranks × \(Kernels.threads) threads" : "\(Kernels.threads) threads"
        let products = s.precision.note
        let header: String = "\(resume ? "resuming" : "training") \(s.algorithm.rawValue) in \(run.directory): \(s.steps) steps of "
            + "\(s.promptsPerStep) prompts × \(s.rollouts) rollouts, \(workers)\(products); centering \(s.centering.rawValue), "
        print(header + "KL \(s.klEstimator.rawValue) (β \(s.klWeight)), log-probs over the \(s.logProbSupport.rawValue) support, "
              + (s.allowRepeats ? "repeats allowed" : "no repeats")
              + (s.interest == .acceptance ? ", IoI as the target's acceptance" : "")
              + (s.rewards == .world ? ", rewards from the world's truth (a diagnostic)" : ""))
        fflush(nil)
        let bar = ProgressReporter(total: s.steps, label: s.algorithm.rawValue)
        let best = try run.train(timeLimit: timeLimit.map { $0 * 60 }, collective: world) { p in
            let l = p.log
            bar.update(l.step, status: String(format: "len %.2f  div %.2f  reward %.3f  kl %.4f",
                                              l["length"] ?? 0, l["diversity_within"] ?? 0, l["path_reward"] ?? 0, l["kl"] ?? 0))
            if let v = p.validation {
                bar.message(String(format: "step %d  validation IoI %.4f  IoR %.1f  CTR %.4f  length %.2f%@", l.step,
                                   v.reference.ioi, v.reference.ior, v.reference.ctr, v.reference.length,
                                   p.improved ? "  *" : ""))
            }
        }
        bar.finish()
        if let best {
            print(String(format: "best validation IoI %.4f (K=%d); wrote %@/policy.safetensors", best.reference.ioi, best.beams,
                         run.directory))
        }
    }
}

extension RLAlgorithm: ExpressibleByArgument {}
extension ItemLogProb: ExpressibleByArgument {}
extension CenteringMode: ExpressibleByArgument {}
extension KLEstimator: ExpressibleByArgument {}
extension InterestMeasure: ExpressibleByArgument {}
extension RewardSource: ExpressibleByArgument {}
extension LogProbSupport: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {
    /// The help of every command's --precision.
    static let help = ArgumentHelp("Matrix products: fp32, or bf16 (bf16 operands, fp32 accumulation; needs AVX512-BF16, else fp32). "
                                   + "Default: the environment variable PRORL_PRECISION, else fp32.")

    /// What a command's first line says of it ("" at fp32).
    var note: String { self == .fp32 ? "" : ", bf16 products" + (Kernels.bf16Available ? "" : " (unavailable here: fp32)") }
}

func parseWeights(_ text: String) throws -> RewardWeights {
    let parts = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
    guard parts.count == 3, let c = parts[0], let i = parts[1], let o = parts[2] else {
        throw ValidationError("--weights: expected three numbers 'ctr,ioi,ior', found '\(text)'")
    }
    return RewardWeights(ctr: c, ioi: i, ior: o)
}

extension TrainCommand: DataParallelCommand {}
