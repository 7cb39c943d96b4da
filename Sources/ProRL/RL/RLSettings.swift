/// The policy-gradient estimators the RL trainer runs (one machinery, one
/// switch; DESIGN §2.7).
public enum RLAlgorithm: String, Codable, Sendable, CaseIterable {
    /// Centered step rewards, reward-to-go, position-specific baselines.
    case prorl
    /// Every step weighted by the whole raw path reward, no baseline (Eq. 3).
    case reinforce
    /// Raw path reward minus its group mean (optionally over the group std)
    /// for every step.
    case grpo
    /// ProRL without stepwise centering: raw (positive-mean) step rewards.
    case prorlNoCentering = "prorl-no-centering"
    /// ProRL with a path-level baseline instead of position-specific ones.
    case prorlNoPSAE = "prorl-no-psae"

    /// Whether step rewards are z-scored with the frozen warm-up statistics.
    public var centers: Bool { self == .prorl || self == .prorlNoPSAE }
}

/// Weights of the reward components in a step reward
/// `w_ctr·ctr/Lmax + w_ioi·ioi + w_ior·ior`.
public struct RewardWeights: Codable, Sendable, Equatable {
    public var ctr: Double = 1
    public var ioi: Double = 1
    public var ior: Double = 1
    public init(ctr: Double = 1, ioi: Double = 1, ior: Double = 1) {
        self.ctr = ctr
        self.ioi = ioi
        self.ior = ior
    }
}

/// How an item's log-probability is formed from its tokens'.
public enum ItemLogProb: String, Codable, Sendable, CaseIterable {
    case mean, sum
}

/// Settings of an RL run (defaults: DESIGN §2).
public struct RLSettings: Codable, Sendable, Equatable {
    public var algorithm = RLAlgorithm.prorl
    /// Prompts (tasks) per step.
    public var promptsPerStep = 8
    /// Rollouts per prompt (G).
    public var rollouts = 16
    /// Most items per path (Lmax).
    public var maxItems = 10
    /// Optimisation steps.
    public var steps = 200
    public var learningRate: Float = 1e-4
    public var weightDecay: Float = 0.05
    /// Fraction of the steps over which the learning rate warms up (then
    /// constant).
    public var warmupFraction = 0.05
    public var gradientClip: Float = 1
    /// β: weight of the KL term to the frozen pretrained policy.
    public var klWeight = 0.01
    /// γ: discount of the reward-to-go.
    public var gamma = 1.0
    public var weights = RewardWeights()
    /// Steps whose step rewards estimate the centering statistics, which
    /// are then frozen.
    public var centeringWarmupSteps = 20
    /// Floor of the centering standard deviations.
    public var sigmaFloor = 0.1
    public var itemLogProb = ItemLogProb.mean
    /// GRPO: divide by the group's standard deviation too.
    public var grpoScaleByStd = false
    /// Sampling.
    public var temperature: Float = 1
    public var topK = 0
    public var topP: Float = 1
    /// Constrain rollouts to valid items (the tokenizer's trie).
    public var constrained = true
    /// Evaluate on the validation tasks (and keep the best checkpoint)
    /// every this many steps; 0: only at the end.
    public var evaluateEvery = 50
    /// Beams of the in-training validation (selection metric: IoI@K).
    public var selectionBeams = 1
    /// Write a resumable checkpoint every this many steps.
    public var checkpointEvery = 50
    public var seed: UInt64 = 2025

    public init() {}

    /// Throws when a value is out of range (named as on the command line).
    public func validate() throws {
        func bad(_ m: String) -> DataError { DataError(file: "RL settings", m) }
        guard promptsPerStep >= 1 else { throw bad("prompts-per-step: expected ≥ 1, found \(promptsPerStep)") }
        guard rollouts >= 1 else { throw bad("rollouts: expected ≥ 1, found \(rollouts)") }
        guard maxItems >= 1 else { throw bad("max-items: expected ≥ 1, found \(maxItems)") }
        guard steps >= 1 else { throw bad("steps: expected ≥ 1, found \(steps)") }
        guard learningRate > 0 else { throw bad("lr: expected > 0, found \(learningRate)") }
        guard (0...1).contains(gamma) else { throw bad("gamma: expected a value in [0, 1], found \(gamma)") }
        guard klWeight >= 0 else { throw bad("kl: expected ≥ 0, found \(klWeight)") }
        guard temperature > 0 else { throw bad("temperature: expected > 0, found \(temperature)") }
        guard topK >= 0, topP > 0, topP <= 1 else { throw bad("top-k ≥ 0 and top-p in (0, 1] expected") }
        guard sigmaFloor > 0 else { throw bad("sigma-floor: expected > 0, found \(sigmaFloor)") }
        guard centeringWarmupSteps >= 1 else { throw bad("centering-warmup: expected ≥ 1 step, found \(centeringWarmupSteps)") }
        guard selectionBeams >= 1 else { throw bad("selection-beams: expected ≥ 1, found \(selectionBeams)") }
    }

    var decoding: DecodingOptions {
        var o = DecodingOptions()
        o.maxItems = maxItems
        o.constrained = constrained
        o.temperature = temperature
        o.topK = topK
        o.topP = topP
        o.seed = seed
        return o
    }
}
