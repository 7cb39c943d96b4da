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

/// Where the step rewards come from.
public enum RewardSource: String, Codable, Sendable, CaseIterable {
    /// The learned simulator (and any ensemble): the method.
    case simulator
    /// A synthetic world's ground truth (``WorldRewards``): a diagnostic of
    /// what RL does when its reward is the truth; needs the run's world.
    case world
}

/// What a step reward's IoI measures.
public enum InterestMeasure: String, Codable, Sendable, CaseIterable {
    /// The task's IoI: the change of log p(target) under the simulator's
    /// softmax over every item — the target's share of the next choice,
    /// which a path can also raise by making the rest less likely.
    case logProb = "logprob"
    /// The change of the target's own acceptance σ(u·e(T)), the simulator's
    /// CTR of the target (what the synthetic world's true gain measures).
    case acceptance
}

/// How an item's log-probability is formed from its tokens'.
public enum ItemLogProb: String, Codable, Sendable, CaseIterable {
    case mean, sum
}

/// The KL penalty to the frozen pretrained policy.
public enum KLEstimator: String, Codable, Sendable, CaseIterable {
    /// The exact KL(π ‖ π_ref) of every sampled position's next-token
    /// distributions over the support, with its gradient (the paper: "can be
    /// computed analytically given policy distributions").
    case exact
    /// The reference code's `β·Σ (ℓ − ℓ_ref)` through ℓ alone: on-policy its
    /// expected gradient is zero.
    case logRatio = "log-ratio"
}

/// Which distribution a token's log-probability is taken under.
public enum LogProbSupport: String, Codable, Sendable, CaseIterable {
    /// The one the sampler drew from: the softmax at the sampling
    /// temperature, renormalised over the tokens decoding allowed at that
    /// position (valid items, EOS between items, no repeats when forbidden).
    case sampled
    /// The full vocabulary (the reference code): under constrained sampling
    /// its gradient also moves mass onto tokens that can never be sampled.
    case full
}

/// Settings of an RL run (defaults: DESIGN §2).
public struct RLSettings: Codable, Sendable, Equatable {
    public var algorithm = RLAlgorithm.prorl
    /// Prompts (tasks) per step.
    public var promptsPerStep = 64
    /// Rollouts per prompt (G).
    public var rollouts = 16
    /// Most items per path (Lmax).
    public var maxItems = 10
    /// Optimisation steps.
    public var steps = 600
    public var learningRate: Float = 1e-4
    public var weightDecay: Float = 0.05
    /// Fraction of the steps over which the learning rate warms up (then
    /// constant).
    public var warmupFraction = 0.05
    public var gradientClip: Float = 1
    /// β: weight of the KL term to the frozen pretrained policy.
    public var klWeight = 0.01
    public var klEstimator = KLEstimator.exact
    /// The distribution log-probabilities (policy and reference) are taken under.
    public var logProbSupport = LogProbSupport.sampled
    /// Prompts per micro-batch: a step's prompts are sampled, scored and
    /// back-propagated this many at a time, its gradients accumulated, so
    /// the update equals one over the whole batch.
    public var microBatchPrompts = 8
    /// γ: discount of the reward-to-go.
    public var gamma = 1.0
    public var weights = RewardWeights()
    /// What the step rewards' IoI measures (evaluation always reports the task's IoI).
    public var interest = InterestMeasure.logProb
    /// Where the step rewards come from.
    public var rewards = RewardSource.simulator
    /// How step rewards are normalised.
    public var centering = CenteringMode.scale
    /// Steps whose step rewards estimate the centering statistics, which
    /// are then frozen (all modes but `batch`).
    public var centeringWarmupSteps = 20
    /// Floor of the centering standard deviations.
    public var sigmaFloor = 0.1
    public var itemLogProb = ItemLogProb.mean
    /// GRPO: divide by the group's standard deviation too.
    public var grpoScaleByStd = false
    /// Sampling temperature of the rollouts. Below 1 the rollouts stay near
    /// the policy's own top choices, so what RL learns moves the top beam
    /// (what is evaluated); the loss scores the same tempered distribution.
    /// (ML-100K, test IoI@1 over the pretrained policy: +0.01 at T = 1,
    /// +0.01–0.03 at 0.5, +0.04 at 0.25; docs/RESULTS.md.)
    public var temperature: Float = 0.25
    public var topK = 0
    public var topP: Float = 1
    /// Constrain rollouts to valid items (the tokenizer's trie).
    public var constrained = true
    /// Whether a rollout (and the in-training validation) may name one of
    /// its items twice; a platform does not, and the simulator re-accepts a
    /// just-seen item readily, so policies allowed to repeat learn to.
    public var allowRepeats = false
    /// Evaluate on the validation tasks (and keep the best checkpoint)
    /// every this many steps; 0: only at the end.
    public var evaluateEvery = 50
    /// Beams of the in-training validation (selection metric: IoI@K).
    public var selectionBeams = 1
    /// Write a resumable checkpoint every this many steps.
    public var checkpointEvery = 50
    public var seed: UInt64 = 2025
    /// Matrix products of the step's passes (``Kernels/precision``; by
    /// default the process's, ``Precision/processDefault``); the in-training
    /// validation runs at fp32.
    public var precision = Precision.processDefault

    public init() {}

    /// The official code's choices, one flag away: global z-scores frozen
    /// after the warm-up, the log-ratio KL estimator over full-vocabulary
    /// log-probs, rollouts at temperature 1 with transformers' default
    /// top-k 50 and repeats allowed (duplicates get CTR 0).
    public mutating func applyReferencePreset() {
        centering = .frozen
        klEstimator = .logRatio
        logProbSupport = .full
        allowRepeats = true
        topK = 50
        temperature = 1
    }

    /// Backward-compatible decoding: fields added later take their defaults.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func get<T: Decodable>(_ k: CodingKeys, _ d: T) throws -> T { try c.decodeIfPresent(T.self, forKey: k) ?? d }
        let d = RLSettings()
        algorithm = try get(.algorithm, d.algorithm)
        promptsPerStep = try get(.promptsPerStep, d.promptsPerStep)
        rollouts = try get(.rollouts, d.rollouts)
        maxItems = try get(.maxItems, d.maxItems)
        steps = try get(.steps, d.steps)
        learningRate = try get(.learningRate, d.learningRate)
        weightDecay = try get(.weightDecay, d.weightDecay)
        warmupFraction = try get(.warmupFraction, d.warmupFraction)
        gradientClip = try get(.gradientClip, d.gradientClip)
        klWeight = try get(.klWeight, d.klWeight)
        klEstimator = try get(.klEstimator, d.klEstimator)
        logProbSupport = try get(.logProbSupport, d.logProbSupport)
        microBatchPrompts = try get(.microBatchPrompts, d.microBatchPrompts)
        gamma = try get(.gamma, d.gamma)
        weights = try get(.weights, d.weights)
        interest = try get(.interest, d.interest)
        rewards = try get(.rewards, d.rewards)
        centering = try get(.centering, d.centering)
        centeringWarmupSteps = try get(.centeringWarmupSteps, d.centeringWarmupSteps)
        sigmaFloor = try get(.sigmaFloor, d.sigmaFloor)
        itemLogProb = try get(.itemLogProb, d.itemLogProb)
        grpoScaleByStd = try get(.grpoScaleByStd, d.grpoScaleByStd)
        temperature = try get(.temperature, d.temperature)
        topK = try get(.topK, d.topK)
        topP = try get(.topP, d.topP)
        constrained = try get(.constrained, d.constrained)
        allowRepeats = try get(.allowRepeats, d.allowRepeats)
        evaluateEvery = try get(.evaluateEvery, d.evaluateEvery)
        selectionBeams = try get(.selectionBeams, d.selectionBeams)
        checkpointEvery = try get(.checkpointEvery, d.checkpointEvery)
        seed = try get(.seed, d.seed)
        precision = try get(.precision, .fp32)  // settings written before the key were fp32
    }

    /// Throws when a value is out of range (named as on the command line).
    public func validate() throws {
        func bad(_ m: String) -> DataError { .setting("RL settings", m) }
        guard (1...65_536).contains(promptsPerStep) else { throw bad("prompts-per-step: expected 1...65536, found \(promptsPerStep)") }
        guard (1...1_024).contains(rollouts) else { throw bad("rollouts: expected 1...1024, found \(rollouts)") }
        guard promptsPerStep * rollouts <= 1 << 20 else {
            throw bad("prompts-per-step × rollouts: expected at most 1048576 rollouts per step, found \(promptsPerStep * rollouts)")
        }
        guard (1...1_000).contains(maxItems) else { throw bad("max-items: expected 1...1000, found \(maxItems)") }
        guard (1...1_000_000_000).contains(steps) else { throw bad("steps: expected 1...1000000000, found \(steps)") }
        guard learningRate.isFinite, learningRate > 0 else { throw bad("lr: expected a finite value > 0, found \(learningRate)") }
        guard weightDecay.isFinite, weightDecay >= 0 else { throw bad("weight-decay: expected a finite value ≥ 0, found \(weightDecay)") }
        guard (0...1).contains(warmupFraction) else { throw bad("warmup: expected a fraction in [0, 1], found \(warmupFraction)") }
        guard gradientClip.isFinite, gradientClip > 0 else { throw bad("gradient-clip: expected a finite value > 0, found \(gradientClip)") }
        guard (0...1).contains(gamma) else { throw bad("gamma: expected a value in [0, 1], found \(gamma)") }
        guard klWeight.isFinite, klWeight >= 0 else { throw bad("kl: expected a finite value ≥ 0, found \(klWeight)") }
        guard [weights.ctr, weights.ioi, weights.ior].allSatisfy(\.isFinite) else {
            throw bad("weights: expected three finite numbers, found \(weights.ctr),\(weights.ioi),\(weights.ior)")
        }
        guard temperature.isFinite, temperature > 0 else { throw bad("temperature: expected a finite value > 0, found \(temperature)") }
        guard topK >= 0, topP > 0, topP <= 1 else { throw bad("top-k ≥ 0 and top-p in (0, 1] expected, found \(topK), \(topP)") }
        guard sigmaFloor.isFinite, sigmaFloor > 0 else { throw bad("sigma-floor: expected a finite value > 0, found \(sigmaFloor)") }
        guard centeringWarmupSteps >= 1 else { throw bad("centering-warmup: expected ≥ 1 step, found \(centeringWarmupSteps)") }
        guard (1...65_536).contains(microBatchPrompts) else { throw bad("micro-batch: expected 1...65536 prompts, found \(microBatchPrompts)") }
        guard (1...64).contains(selectionBeams) else { throw bad("selection-beams: expected 1...64, found \(selectionBeams)") }
        guard evaluateEvery >= 0 else { throw bad("evaluate-every: expected ≥ 0 (0: at the end), found \(evaluateEvery)") }
        guard checkpointEvery >= 1 else { throw bad("checkpoint-every: expected ≥ 1 step, found \(checkpointEvery)") }
    }

    var decoding: DecodingOptions {
        var o = DecodingOptions()
        o.maxItems = maxItems
        o.constrained = constrained
        o.temperature = temperature
        o.topK = topK
        o.topP = topP
        o.seed = seed
        o.allowRepeats = allowRepeats
        return o
    }
}
