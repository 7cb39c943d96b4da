import Foundation

/// What one RL step did: named values (JSON line) and its phase times.
public struct RLStepLog: Sendable {
    public var step: Int
    public var values: [(String, Double)] = []
    public var phasesMS: [(String, Double)] = []

    public subscript(_ key: String) -> Double? { values.first { $0.0 == key }?.1 }

    /// One JSON object on one line.
    public var json: String {
        var fields = ["\"step\":\(step)"]
        for (k, v) in values { fields.append("\"\(k)\":" + (v.isFinite ? String(format: "%.6g", v) : "null")) }
        fields.append("\"phases_ms\":{" + phasesMS.map { String(format: "\"%@\":%.2f", $0.0, $0.1) }.joined(separator: ",") + "}")
        return "{" + fields.joined(separator: ",") + "}"
    }
}

/// What scores rollouts: the step rewards of item paths (nil: an invalid
/// item), path r belonging to task `taskOf[r]`. The simulator
/// (``RolloutScorer``) is the engine's; tests bring toy worlds.
public protocol RolloutRewarding: AnyObject {
    /// Whether a task can be scored at all (its target and history known).
    func accepts(_ task: ProactiveTask) -> Bool
    func score(paths: [[Int32?]], tasks: [ProactiveTask], taskOf: [Int]) -> StepRewards
}

extension RolloutScorer: RolloutRewarding {
    public func accepts(_ task: ProactiveTask) -> Bool { simulatorView(history: task.history, target: task.target) != nil }
}

/// The per-action numbers the loss of one micro-batch needs.
public struct RLLossInput {
    /// Encoder tokens of the micro-batch's prompts.
    public var encoder: [[Int32]]
    /// G rollouts per prompt, prompt-major.
    public var rollouts: [Rollout]
    /// Advantage of each action, `[rollout][action]`.
    public var advantages: [[Double]]
    /// The loss normaliser: valid rollouts of the whole step.
    public var normaliser: Double
    /// What the sampler computed for these rollouts (rollout r in slot r),
    /// taken by the policy's pass instead of recomputing it; nil: recompute.
    public var recording: DecoderRecording?

    public init(encoder: [[Int32]], rollouts: [Rollout], advantages: [[Double]], normaliser: Double,
                recording: DecoderRecording? = nil) {
        self.encoder = encoder
        self.rollouts = rollouts
        self.advantages = advantages
        self.normaliser = normaliser
        self.recording = recording
    }
}

/// What the loss of a micro-batch came to.
public struct RLLossParts {
    /// The loss value whose gradient is accumulated.
    public var loss = 0.0
    /// Σ over valid rollouts of the exact KL (item-averaged over tokens, as ℓ).
    public var kl = 0.0
    /// Σ over valid rollouts of Σ_t (ℓ_t − ℓ_t^ref).
    public var klLogRatio = 0.0
    /// Σ of the per-position entropies and the positions counted.
    public var entropy = 0.0
    public var positions = 0

    /// Adds another micro-batch's parts.
    public static func += (a: inout RLLossParts, b: RLLossParts) {
        a.loss += b.loss
        a.kl += b.kl
        a.klLogRatio += b.klLogRatio
        a.entropy += b.entropy
        a.positions += b.positions
    }
}

/// On-policy RL of the policy against the simulator (DESIGN §2 steps 2–6):
/// per step, G rollouts for each of P prompts, step rewards from one
/// simulator pass per rollout, normalisation, advantages, then one AdamW
/// update of `(1/n)·Σ [−Σ_t A_t ℓ_t + β·KL]` over the n valid rollouts. The
/// step runs in micro-batches of prompts (sampling, then the loss passes),
/// gradients accumulated, so its update equals that of one large batch.
///
/// Data-parallel (`collective` of several ranks): each rank samples, scores
/// and back-propagates its own contiguous share of the step's prompts (their
/// rollouts numbered over the whole step, so they are the rollouts one
/// process would draw); the rollouts and rewards are gathered, so every rank
/// computes the normalisation statistics, advantages, loss normaliser and
/// logged metrics of the whole step; the gradient arena is summed once.
public final class RLTrainer {
    public let policy: Policy
    /// The frozen pretrained policy (the KL anchor).
    public let reference: T5Policy
    public let settings: RLSettings
    public let train: [ProactiveTask]
    public let rewards: RolloutRewarding
    /// The ranks this trainer shares its steps with (one process by default).
    public let collective: any Collective
    public private(set) var centering: RewardCentering
    /// Steps completed.
    public private(set) var step = 0
    private let decoding: PathDecoding
    private let pass: T5Pass, referencePass: T5Pass
    private let weights, klWeights, klValues: FloatBuffer
    private let mask: UnsafeMutablePointer<UInt8>
    private let maskScratch: Int32Buffer
    private let schedule: LearningRateSchedule
    /// Whether a step's loss pass takes the decoder activations its
    /// sampling recorded instead of recomputing them (the same loss and
    /// gradient up to rounding; `RecordedPassTests`).
    public var reusesSamplerActivations = true
    /// Bytes the step's recordings may take at most (their capacity, every
    /// rollout at the longest length): a quarter of this machine's memory.
    /// Micro-batches beyond it recompute.
    public var recordingBudget = Double(ProcessInfo.processInfo.physicalMemory) / 4
    private var recordingPool: [DecoderRecording] = []
    /// Micro-batches of the last step whose loss pass took their recordings.
    public private(set) var recordedMicroBatches = 0

    /// - Parameters:
    ///   - policy: the policy to train (in place): the pretrained one, or a
    ///     resumed run's latest.
    ///   - reference: the frozen pretrained policy (nil: a copy of `policy`).
    ///   - train: prompts; each must be known to the simulator (see
    ///     ``PathEvaluator/scorable(_:)``).
    ///   - ensemble: further simulators; the step rewards are then the mean
    ///     over `simulator` and these (``EnsembleRewards``).
    public convenience init(policy: Policy, reference: T5Policy? = nil, simulator: Simulator, ensemble: [Simulator] = [],
                            catalog: ItemCatalog, train: [ProactiveTask], settings: RLSettings,
                            collective: any Collective = SingleProcess.shared) throws {
        try Self.checkCatalog(policy: policy, catalog: catalog)
        let scorers = try ([simulator] + ensemble).map {
            try RolloutScorer(simulator: $0, catalog: catalog, maxBatch: min(settings.promptsPerStep * settings.rollouts, 256),
                              maxItems: settings.maxItems, interest: settings.interest)
        }
        let rewards: RolloutRewarding = scorers.count == 1 ? scorers[0] : try EnsembleRewards(members: scorers)
        try self.init(policy: policy, reference: reference, rewards: rewards, train: train, settings: settings, collective: collective)
    }

    /// Refuses a policy whose items are not the tasks' catalogue's.
    public static func checkCatalog(policy: Policy, catalog: ItemCatalog) throws {
        guard policy.itemIDs == catalog.rawIDs else {
            throw DataError(file: "RL", "the policy's items differ from the tasks' catalogue (pretrain on these tasks)", kind: .incompatible)
        }
    }

    /// Refuses a micro-batch whose activations cannot fit in this machine's
    /// memory, before anything is allocated. The estimate (fp32): per
    /// decoder row the logits, their gradient and the tempered copy (3·V)
    /// and ~16·d per decoder layer (attention, feed-forward, norms, saved
    /// for backward), for the policy and the reference; per encoder token
    /// ~16·d per layer.
    static func checkMemory(_ c: T5Config, prompts: Int, rollouts: Int, decoderLength: Int, encoderLength: Int) throws {
        let rows = prompts * rollouts * decoderLength
        let perRow = 3 * c.vocabulary + c.decoderLayers * (16 * c.modelWidth + 2 * c.ffWidth)
        let perToken = c.encoderLayers * (16 * c.modelWidth + 2 * c.ffWidth)
        let (a, o1) = rows.multipliedReportingOverflow(by: 2 * perRow)
        let (b, o2) = (prompts * encoderLength).multipliedReportingOverflow(by: 2 * perToken)
        let (floats, o3) = a.addingReportingOverflow(b)
        let available = Double(ProcessInfo.processInfo.physicalMemory)
        let bytes = Double(floats) * 4
        guard !o1, !o2, !o3, bytes < 0.8 * available else {
            throw DataError.setting("RL settings", String(format: "a micro-batch of %d prompts × %d rollouts needs about %.1f GiB of "
                + "activations, this machine has %.1f GiB: lower --micro-batch or --rollouts", prompts, rollouts,
                (o1 || o2 || o3) ? Double.infinity : bytes / 1_073_741_824, available / 1_073_741_824))
        }
    }

    /// The same against any rewarder.
    public init(policy: Policy, reference: T5Policy? = nil, rewards: RolloutRewarding, train: [ProactiveTask],
                settings: RLSettings, collective: any Collective = SingleProcess.shared) throws {
        try settings.validate()
        guard !train.isEmpty else { throw DataError(file: "RL", "no training tasks") }
        guard settings.promptsPerStep >= collective.size else {
            throw DataError.setting("RL settings", "\(settings.promptsPerStep) prompts per step cannot be shared by "
                                    + "\(collective.size) ranks: give each rank at least one (--prompts-per-step)")
        }
        self.collective = collective
        self.policy = policy
        self.settings = settings
        self.train = train
        self.rewards = rewards
        if let reference, reference !== policy.model {
            guard reference.config == policy.model.config else {
                throw DataError(file: "RL", "the reference policy's architecture differs from the policy's", kind: .incompatible)
            }
            self.reference = reference
        } else {
            self.reference = try T5Policy(config: policy.model.config)
            self.reference.store.copyValues(from: policy.model.store)
        }
        for (i, t) in train.enumerated() where !rewards.accepts(t) {
            throw DataError(file: "RL", "training task \(i + 1): target or history unknown to the simulator")
        }
        centering = RewardCentering(mode: settings.centering, sigmaFloor: settings.sigmaFloor, positions: settings.maxItems)
        let P = min(settings.microBatchPrompts, settings.promptsPerStep), G = settings.rollouts
        let encoderLength = policy.encoderLength(historyLength: train.map(\.history.count).max()!)
        let decoderLength = policy.decoderLength(maxItems: settings.maxItems)
        try Self.checkMemory(policy.model.config, prompts: P, rollouts: G, decoderLength: decoderLength, encoderLength: encoderLength)
        let decoder = T5Decoder(model: policy.model, maxPrompts: P, maxRows: P * G, encoderLength: encoderLength,
                                maxSteps: decoderLength)
        decoding = PathDecoding(decoder: decoder, tokenizer: policy.tokenizer)
        let capacity = T5Pass.Capacity(prompts: P, encoderLength: encoderLength, sequences: P * G, decoderLength: decoderLength)
        pass = T5Pass(model: policy.model, capacity: capacity)
        referencePass = T5Pass(model: self.reference, capacity: capacity, keepsActivations: false)
        // the sampled distribution is softmax(logits / T): score it, and the reference, at T too
        if settings.logProbSupport == .sampled {
            pass.logitScale = 1 / settings.temperature
            referencePass.logitScale = 1 / settings.temperature
        }
        weights = FloatBuffer(count: capacity.rows)
        klWeights = FloatBuffer(count: capacity.rows)
        klValues = FloatBuffer(count: capacity.rows)
        let V = policy.model.config.vocabulary
        mask = .allocate(capacity: capacity.rows * V)
        maskScratch = Int32Buffer(capacity: V)
        schedule = LearningRateSchedule(peak: settings.learningRate, totalSteps: settings.steps,
                                        warmupFraction: settings.warmupFraction, cosine: false)
    }

    deinit { mask.deallocate() }

    /// The prompts of step `s` (1-based): consecutive slices of a seeded
    /// shuffle of the tasks, reshuffled every pass over them — a function
    /// of the step, so a resumed run sees the same prompts.
    public func prompts(forStep s: Int) -> [ProactiveTask] {
        let P = settings.promptsPerStep, n = train.count
        var out: [ProactiveTask] = []
        var position = (s - 1) * P
        while out.count < P {
            let epoch = position / n
            var order = Array(0..<n)
            var rng = SplitMix64(seed: settings.seed ^ (UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15))
            rng.shuffle(&order)
            let offset = position % n
            let take = min(P - out.count, n - offset)
            out += order[offset..<(offset + take)].map { train[$0] }
            position += take
        }
        return out
    }

    /// Recordings for the first of `microBatches` micro-batches, as many as
    /// ``recordingBudget`` allows (none when ``reusesSamplerActivations``
    /// is off); made on first use and kept.
    private func recordings(microBatches: Int) -> [DecoderRecording] {
        guard reusesSamplerActivations else { return [] }
        let decoder = decoding.decoder
        let c = policy.model.config
        let fit = recordingBudget / DecoderRecording.bytes(c, maxRows: decoder.maxRows, maxSteps: decoder.maxSteps)
        let wanted = fit >= Double(microBatches) ? microBatches : fit >= 1 ? Int(fit) : 0
        while recordingPool.count < wanted {
            recordingPool.append(DecoderRecording(config: c, maxRows: decoder.maxRows, maxSteps: decoder.maxSteps))
        }
        return Array(recordingPool.prefix(wanted))
    }

    /// Micro-batches (prompt ranges, from 0) of `count` prompts.
    private func microBatches(_ count: Int) -> [Range<Int>] {
        let m = min(settings.microBatchPrompts, settings.promptsPerStep)
        return stride(from: 0, to: count, by: m).map { $0..<min($0 + m, count) }
    }

    /// Samples G rollouts for each prompt (micro-batch by micro-batch; rows
    /// numbered over the whole step, whose prompt `firstPrompt` the first
    /// of `encoder` is). Micro-batch k records its decoder activations into
    /// `recordings[k]` where there is one.
    public func sampleRollouts(encoder: [[Int32]], stream: UInt64, firstPrompt: Int = 0,
                               recordings: [DecoderRecording] = []) -> [Rollout] {
        let G = settings.rollouts
        var out: [Rollout] = []
        out.reserveCapacity(encoder.count * G)
        for (k, m) in microBatches(encoder.count).enumerated() {
            let sampled = decoding.sample(prompts: Array(encoder[m]), samplesPerPrompt: G, options: settings.decoding,
                                          stream: stream, rowOffset: (firstPrompt + m.lowerBound) * G,
                                          recording: k < recordings.count ? recordings[k] : nil)
            out += sampled.map { Rollout(tokens: $0.tokens, tokenizer: policy.tokenizer, maxItems: settings.maxItems) }
        }
        return out
    }

    /// The loss of one micro-batch (at most `microBatchPrompts` prompts):
    /// log-probs of policy and reference under the support the settings
    /// name (`sampled`: the tokens allowed at each position, at the sampling
    /// temperature), then `Σ_tokens w·(−log p) + Σ_positions g·KL` with, per action
    /// of k tokens (k = 1 with `sum`), w = (A − β_logratio)/(k·n) and
    /// g = β_exact/(k·n). With `backward`, accumulates its gradient into the
    /// policy's gradients (the caller zeroes them).
    @discardableResult
    public func loss(_ input: RLLossInput, backward: Bool) -> RLLossParts {
        lossParts(input, backward: backward).reduce(into: RLLossParts()) { $0 += $1 }
    }

    /// ``loss(_:backward:)`` rollout by rollout: the parts of each rollout of
    /// the micro-batch (entropy over its positions), so sums over a step
    /// are the same however it is split into micro-batches or ranks.
    func lossParts(_ input: RLLossInput, backward: Bool) -> [RLLossParts] {
        let s = settings, G = s.rollouts
        let batch = PolicyBatch(encoder: input.encoder, targets: input.rollouts.map(\.tokens), group: G,
                                startToken: policy.model.config.decoderStartToken)
        let V = policy.model.config.vocabulary
        var logitMask: UnsafePointer<UInt8>? = nil
        if s.logProbSupport == .sampled {
            for (r, rollout) in input.rollouts.enumerated() {
                decoding.tokenMask(rollout.tokens, options: s.decoding, into: mask + Int(batch.decoderStarts[r]) * V,
                                   scratch: maskScratch.base)
            }
            logitMask = UnsafePointer(mask)
        }
        pass.forward(batch, training: false, entropy: true, logitMask: logitMask, recording: input.recording)
        referencePass.forward(batch, training: false, logitMask: logitMask)
        let logp = pass.tokenLosses, refLogp = referencePass.tokenLosses  // −log p
        let w = weights.tensor(rows: batch.rows, cols: 1), g = klWeights.tensor(rows: batch.rows, cols: 1)
        let klRows = klValues.tensor(rows: batch.rows, cols: 1)
        w.zero()
        g.zero()
        let n = input.normaliser, beta = s.klWeight
        let exact = s.klEstimator == .exact
        var parts = [RLLossParts](repeating: RLLossParts(), count: input.rollouts.count)
        for (r, rollout) in input.rollouts.enumerated() where rollout.length > 0 {
            let start = Int(batch.decoderStarts[r])
            for (t, range) in rollout.actionTokens.enumerated() {
                let a = input.advantages[r][t]
                let k = s.itemLogProb == .mean ? Double(range.count) : 1
                var l = 0.0, lr = 0.0
                for j in range {
                    w[start + j] = Float((a - (exact ? 0 : beta)) / (k * n))
                    if exact { g[start + j] = Float(beta / (k * n)) }
                    l -= Double(logp[start + j])
                    lr -= Double(refLogp[start + j])
                }
                parts[r].klLogRatio += (l - lr) / k
                parts[r].loss += -a * l / k / n + (exact ? 0 : beta * l / k / n)
            }
        }
        // the exact KL of every position; its gradient (weighted by g) is
        // written over the reference's logits, which are not needed again
        let z = pass.lastLogits!, zRef = referencePass.lastLogits!
        Kernels.klCategorical(kl: klRows, dLogits: backward && exact ? zRef : nil, logits: z, reference: zRef,
                              mask: logitMask, rowWeights: g)
        for (r, rollout) in input.rollouts.enumerated() where rollout.length > 0 {
            let start = Int(batch.decoderStarts[r])
            for range in rollout.actionTokens {
                let k = s.itemLogProb == .mean ? Double(range.count) : 1
                for j in range {
                    parts[r].kl += Double(klRows[start + j]) / k
                    if exact { parts[r].loss += Double(g[start + j]) * Double(klRows[start + j]) }
                }
            }
        }
        let entropy = pass.tokenEntropy!
        for r in 0..<input.rollouts.count {
            let end = r + 1 < input.rollouts.count ? Int(batch.decoderStarts[r + 1]) : batch.rows
            for i in Int(batch.decoderStarts[r])..<end { parts[r].entropy += Double(entropy[i]) }
            parts[r].positions = end - Int(batch.decoderStarts[r])
        }
        if backward { pass.backward(weights: w, extraLogitGradient: exact ? zRef : nil) }
        return parts
    }

    /// Runs one step (the policy's products at the settings' precision, the
    /// simulator's at fp32) and returns its log.
    public func runStep() throws -> RLStepLog {
        try Kernels.withPrecision(settings.precision) { try runStepAtPrecision() }
    }

    private func runStepAtPrecision() throws -> RLStepLog {
        step += 1
        let s = settings, G = s.rollouts
        let timer = Workloads.PhaseTimer()
        let t0 = Date()
        timer.start()
        let tasks = prompts(forStep: step)
        let mine = collective.shard(tasks.count)  // all of them in one process
        let encoder = tasks[mine].map { policy.encoderTokens(history: $0.history, target: $0.target) }

        // 1. rollouts (this rank's prompts), recording what the decoder
        //    computed for the loss pass
        let batches = microBatches(mine.count)
        let recordings = recordings(microBatches: batches.count)
        func recording(_ k: Int) -> DecoderRecording? { k < recordings.count ? recordings[k] : nil }
        let local = sampleRollouts(encoder: encoder, stream: UInt64(step), firstPrompt: mine.lowerBound, recordings: recordings)
        recordedMicroBatches = recordings.count
        timer.lap("generate")

        // 2. step rewards of this rank's rollouts, then those of the whole
        //    step on every rank; normalisation, advantages
        // the simulator is the environment: it scores at fp32 whatever the policy's precision
        let localRaw = Kernels.withPrecision(.fp32) {
            rewards.score(paths: local.map(\.items), tasks: Array(tasks[mine]), taskOf: (0..<local.count).map { $0 / G })
        }
        let (rollouts, raw) = try gathered(local, localRaw)
        centering.observe(raw)  // adds to the statistics until frozen; always records the batch
        if s.centering != .batch && step >= s.centeringWarmupSteps { centering.frozen = true }
        let stepRewards = raw.combined(weights: s.weights, maxItems: s.maxItems,
                                       centering: s.algorithm.centers ? centering : nil)
        let advantages = Advantages.compute(s.algorithm, stepRewards: stepRewards, actions: rollouts.map(\.actions),
                                            group: G, gamma: s.gamma, grpoScaleByStd: s.grpoScaleByStd)
        timer.lap("rewards")

        // 3. the loss of this rank's rollouts, micro-batch by micro-batch,
        //    gradients accumulated; it counts the step's rollouts with at
        //    least one item (the reference's valid ones)
        let n = Double(max(rollouts.filter { $0.length > 0 }.count, 1))
        policy.model.store.zeroGrads()
        var localParts: [RLLossParts] = []
        for (k, m) in batches.enumerated() {
            let rows = ((mine.lowerBound + m.lowerBound) * G)..<((mine.lowerBound + m.upperBound) * G)
            localParts += lossParts(RLLossInput(encoder: Array(encoder[m]), rollouts: Array(rollouts[rows]),
                                                advantages: Array(advantages[rows]), normaliser: n,
                                                recording: recording(k)), backward: true)
        }
        let parts = try gatheredSum(localParts)
        timer.lap("loss_passes")
        let lr = schedule(step)
        let gradNorm = try policy.model.store.update(lr: lr, weightDecay: s.weightDecay, clip: s.gradientClip,
                                                     collective: collective) ?? 0
        timer.lap("update")

        // 4. the log
        var actionCount = 0, advSum = 0.0, advSquares = 0.0
        for (r, rollout) in rollouts.enumerated() where rollout.length > 0 {
            for a in advantages[r] { actionCount += 1; advSum += a; advSquares += a * a }
        }
        var log = RLStepLog(step: step)
        let all = Double(rollouts.count)
        let seconds = Date().timeIntervalSince(t0)
        let steps = raw.ctr.reduce(0) { $0 + $1.count }
        func meanOver(_ x: [[Double]]) -> Double { x.reduce(0) { $0 + $1.reduce(0, +) } / Double(max(steps, 1)) }
        func count(_ x: [[Bool]]) -> Double { Double(x.reduce(0) { $0 + $1.filter { $0 }.count }) }
        func normalised(_ x: [[Double]], _ c: RewardCentering.Component) -> [[Double]] {
            x.map { $0.enumerated().map { centering.normalise($0.element, c, position: $0.offset) } }
        }
        let advMean = advSum / Double(max(actionCount, 1))
        log.values = [
            ("length", Double(rollouts.reduce(0) { $0 + $1.length }) / all),
            ("eos_ratio", Double(rollouts.filter(\.stoppedEarly).count) / all),
            ("diversity_within", Self.withinDiversity(rollouts, group: G)),
            ("diversity_across", PathEvaluator.diversity(stride(from: 0, to: rollouts.count, by: G).map {
                Set(rollouts[$0].items.compactMap { $0 }) })),
            ("duplicates", count(raw.duplicate) / Double(max(steps, 1))),
            ("validity", 1 - count(raw.invalid) / Double(max(steps, 1))),
            ("ctr", meanOver(raw.ctr)), ("ioi", meanOver(raw.ioi)), ("ior", meanOver(raw.ior)),
            ("ctr_z", meanOver(normalised(raw.ctr, .ctr))),
            ("ioi_z", meanOver(normalised(raw.ioi, .ioi))),
            ("ior_z", meanOver(normalised(raw.ior, .ior))),
            ("path_ioi", raw.pathIoI.reduce(0, +) / all), ("path_ior", raw.pathIoR.reduce(0, +) / all),
            ("path_ctr", raw.pathCTR.reduce(0, +) / all),
            ("step_reward", meanOver(stepRewards)),
            ("path_reward", stepRewards.reduce(0) { $0 + $1.reduce(0, +) } / all),
            ("advantage_mean", advMean),
            ("advantage_std", (max(advSquares / Double(max(actionCount, 1)) - advMean * advMean, 0)).squareRoot()),
            ("loss", parts.loss), ("kl", parts.kl / n), ("kl_log_ratio", parts.klLogRatio / n),
            ("entropy", parts.entropy / Double(max(parts.positions, 1))),
            ("grad_norm", Double(gradNorm)), ("lr", Double(lr)),
            ("seconds", seconds), ("rollouts_per_second", all / max(seconds, 1e-9)),
        ]
        log.phasesMS = timer.medians
        return log
    }

    // MARK: Data-parallel steps

    /// The whole step's rollouts and rewards from this rank's: every rank's
    /// in rank order (its prompts are the next block), as one process would
    /// have them. A single process returns its own.
    func gathered(_ local: [Rollout], _ raw: StepRewards) throws -> ([Rollout], StepRewards) {
        guard collective.size > 1 else { return (local, raw) }
        // per rollout: its tokens, its steps' values, its path values (doubles hold every Int32 exactly)
        var packed: [Double] = []
        // the start values travel when every rank's rewarder gives them
        let starts = try collective.allGather([raw.startLogProb.count == local.count ? 1 as UInt8 : 0]).allSatisfy { $0 == [1] }
        for (r, rollout) in local.enumerated() {
            packed.append(Double(rollout.tokens.count))
            packed += rollout.tokens.map(Double.init)
            packed.append(Double(raw.ctr[r].count))
            packed += raw.ctr[r] + raw.ioi[r] + raw.ior[r]
            packed += raw.invalid[r].map { $0 ? 1 : 0 } + raw.duplicate[r].map { $0 ? 1 : 0 }
            packed += [raw.pathIoI[r], raw.pathIoR[r], raw.pathCTR[r]]
            packed += starts ? [raw.startLogProb[r], raw.startRank[r]] : []
        }
        var rollouts: [Rollout] = []
        var all = StepRewards(ctr: [], ioi: [], ior: [], invalid: [], duplicate: [], pathIoI: [], pathIoR: [], pathCTR: [])
        let blocks = try collective.allGather(packed)
        for block in blocks {
            var at = 0
            func take(_ k: Int) -> ArraySlice<Double> { defer { at += k }; return block[at..<(at + k)] }
            while at < block.count {
                let tokens = take(Int(block[at]) + 1).dropFirst().map { Int32($0) }
                rollouts.append(Rollout(tokens: tokens, tokenizer: policy.tokenizer, maxItems: settings.maxItems))
                let k = Int(take(1).first!)
                all.ctr.append(Array(take(k))); all.ioi.append(Array(take(k))); all.ior.append(Array(take(k)))
                all.invalid.append(take(k).map { $0 != 0 }); all.duplicate.append(take(k).map { $0 != 0 })
                let path = Array(take(3))
                all.pathIoI.append(path[0]); all.pathIoR.append(path[1]); all.pathCTR.append(path[2])
                if starts {
                    let s = Array(take(2))
                    all.startLogProb.append(s[0]); all.startRank.append(s[1])
                }
            }
        }
        all.floorInvalidSteps()  // the floor of the whole step, as one process has it
        return (rollouts, all)
    }

    /// The sum, in the step's rollout order, of every rank's per-rollout loss parts.
    func gatheredSum(_ local: [RLLossParts]) throws -> RLLossParts {
        var all = local
        if collective.size > 1 {
            let blocks = try collective.allGather(local.flatMap { [$0.loss, $0.kl, $0.klLogRatio, $0.entropy, Double($0.positions)] })
            all = blocks.flatMap { b in stride(from: 0, to: b.count, by: 5).map {
                RLLossParts(loss: b[$0], kl: b[$0 + 1], klLogRatio: b[$0 + 2], entropy: b[$0 + 3], positions: Int(b[$0 + 4])) } }
        }
        return all.reduce(into: RLLossParts()) { $0 += $1 }
    }

    /// Mean over prompts of 1 − mean pairwise Jaccard of its rollouts' item sets.
    static func withinDiversity(_ rollouts: [Rollout], group: Int) -> Double {
        var total = 0.0, groups = 0
        for g0 in stride(from: 0, to: rollouts.count, by: group) {
            total += PathEvaluator.diversity((g0..<(g0 + group)).map { Set(rollouts[$0].items.compactMap { $0 }) })
            groups += 1
        }
        return total / Double(max(groups, 1))
    }

    // MARK: Resuming

    /// Saves what a resumed run needs as ONE file, `statePath` (renamed into
    /// place, so a kill leaves the old state or the new, never a mix): the
    /// policy weights, the optimiser state, centering statistics and step.
    /// `policyPath` gets the same policy as a policy checkpoint first (what
    /// `eval` and `generate` read; resume does not).
    public func saveState(policyPath: String, statePath: String) throws {
        try policy.save(to: policyPath, extra: ["rl_step": String(step)])
        let store = policy.model.store
        var tensors: [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)] = [
            ("policy", [store.count], UnsafeBufferPointer(start: store.values.base, count: store.count))
        ]
        let opt = store.optimizerState
        if let opt {
            tensors.append(("adam.m", [opt.m.count], UnsafeBufferPointer(start: opt.m.base, count: opt.m.count)))
            tensors.append(("adam.v", [opt.v.count], UnsafeBufferPointer(start: opt.v.base, count: opt.v.count)))
        }
        let meta = [
            "format": "prorl-rl-state", "step": String(step), "adam_step": String(opt?.step ?? 0),
            "centering": try stableJSON(centering),
            "settings": try stableJSON(settings),
        ]
        try SafeTensors.write(tensors, metadata: meta, to: statePath)
    }

    /// Restores a state written by ``saveState(policyPath:statePath:)``.
    /// Returns false when the state holds no policy weights (written before
    /// they were part of it): the caller then loads them from `policyPath`.
    @discardableResult
    public func restoreState(_ path: String) throws -> Bool {
        let (tensors, meta) = try SafeTensors.read(path)
        guard meta["format"] == "prorl-rl-state", let s = meta["step"].flatMap(Int.init),
              let adamStep = meta["adam_step"].flatMap(Int.init), let c = meta["centering"] else {
            throw DataError(file: path, "is not an RL state (format, step, adam_step and centering expected)")
        }
        guard let text = meta["settings"], let saved = try? JSONDecoder().decode(RLSettings.self, from: Data(text.utf8)) else {
            throw DataError(file: path, "metadata 'settings' is missing or malformed")
        }
        guard saved.algorithm == settings.algorithm, saved.promptsPerStep == settings.promptsPerStep, saved.rollouts == settings.rollouts else {
            throw DataError(file: path, "was written by a run with other settings (algorithm, prompts or rollouts differ)")
        }
        for (name, t) in tensors {
            guard ["policy", "adam.m", "adam.v"].contains(name) else { throw DataError(file: path, "has an unknown tensor '\(name)'") }
            guard t.shape == [t.values.count] else { throw DataError(file: path, "tensor '\(name)': expected one dimension, found \(t.shape)") }
        }
        guard (0...settings.steps).contains(s) else {
            throw DataError(file: path, "step \(s) is outside the run's 0...\(settings.steps)")
        }
        guard (0...s).contains(adamStep) else {
            throw DataError(file: path, "adam_step \(adamStep) is outside 0...\(s) (one update per step)")
        }
        let restored: RewardCentering
        do { restored = try JSONDecoder().decode(RewardCentering.self, from: Data(c.utf8)) } catch {
            throw DataError(file: path, "metadata 'centering' is malformed: \(error)")
        }
        // the shape a fresh run of these settings has: mode, one entry per position, 3 components
        let fresh = RewardCentering(mode: settings.centering, sigmaFloor: settings.sigmaFloor, positions: settings.maxItems)
        guard restored.mode == fresh.mode, restored.moments.count == fresh.moments.count,
              (restored.moments + [restored.lastBatch]).allSatisfy({
                  $0.count >= 0 && $0.mean.count == 3 && $0.squares.count == 3 && ($0.mean + $0.squares).allSatisfy(\.isFinite)
              }) else {
            throw DataError(file: path, "metadata 'centering' does not fit the run (mode \(settings.centering.rawValue), "
                            + "\(fresh.moments.count) moment sets of 3 finite components expected)")
        }
        switch (tensors["adam.m"], tensors["adam.v"]) {
        case let (m?, v?):
            guard m.values.count == policy.model.store.count, v.values.count == m.values.count else {
                throw DataError(file: path, "optimiser state has \(m.values.count) values, the policy \(policy.model.store.count)")
            }
            guard m.values.allSatisfy(\.isFinite), v.values.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
                throw DataError(file: path, "optimiser state is not finite (or has a negative second moment)")
            }
            policy.model.store.restoreOptimizer(step: adamStep, m: m.values, v: v.values)
        case (nil, nil) where adamStep == 0:
            break
        default:
            throw DataError(file: path, "adam_step \(adamStep) but the optimiser tensors adam.m and adam.v are not both there")
        }
        var weights = false
        if let w = tensors["policy"] {
            let store = policy.model.store
            guard w.values.count == store.count else {
                throw DataError(file: path, "policy weights have \(w.values.count) values, the policy \(store.count)")
            }
            guard w.values.allSatisfy(\.isFinite) else { throw DataError(file: path, "policy weights are not finite") }
            w.values.withUnsafeBufferPointer { store.values.base.update(from: $0.baseAddress!, count: store.count) }
            weights = true
        }
        centering = restored
        step = s
        return weights
    }
}
