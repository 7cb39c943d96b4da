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

/// On-policy RL of the policy against the simulator (DESIGN §2 steps 2–6):
/// per step, G rollouts for each of P prompts, step rewards from one
/// simulator pass per rollout, centering, advantages, then one AdamW update
/// of `−Σ A_t ℓ_t + β Σ (ℓ_t − ℓ_t^ref)` over the rollouts.
public final class RLTrainer {
    public let policy: Policy
    /// The frozen pretrained policy (the KL anchor).
    public let reference: T5Policy
    public let settings: RLSettings
    public let train: [ProactiveTask]
    public let scorer: RolloutScorer
    public private(set) var centering: RewardCentering
    /// Steps completed.
    public private(set) var step = 0
    private let decoding: PathDecoding
    private let pass: T5Pass, referencePass: T5Pass
    private let weights: FloatBuffer
    private let schedule: LearningRateSchedule

    /// - Parameters:
    ///   - policy: the policy to train (in place): the pretrained one, or a
    ///     resumed run's latest.
    ///   - reference: the frozen pretrained policy (nil: a copy of `policy`).
    ///   - train: prompts; each must be known to the simulator (see
    ///     ``PathEvaluator/scorable(_:)``).
    public init(policy: Policy, reference: T5Policy? = nil, simulator: Simulator, catalog: ItemCatalog,
                train: [ProactiveTask], settings: RLSettings) throws {
        try settings.validate()
        guard !train.isEmpty else { throw DataError(file: "RL", "no training tasks") }
        guard policy.itemIDs == catalog.rawIDs else {
            throw DataError(file: "RL", "the policy's items differ from the tasks' catalogue (pretrain on these tasks)")
        }
        self.policy = policy
        self.settings = settings
        self.train = train
        if let reference, reference !== policy.model {
            guard reference.config == policy.model.config else {
                throw DataError(file: "RL", "the reference policy's architecture differs from the policy's")
            }
            self.reference = reference
        } else {
            self.reference = try T5Policy(config: policy.model.config)
            self.reference.store.copyValues(from: policy.model.store)
        }
        let P = settings.promptsPerStep, G = settings.rollouts
        scorer = RolloutScorer(simulator: simulator, catalog: catalog, maxBatch: min(P * G, 256), maxItems: settings.maxItems)
        for (i, t) in train.enumerated() where scorer.simulatorView(history: t.history, target: t.target) == nil {
            throw DataError(file: "RL", "training task \(i + 1): target or history unknown to the simulator")
        }
        centering = RewardCentering(sigmaFloor: settings.sigmaFloor)
        let encoderLength = policy.encoderLength(historyLength: train.map(\.history.count).max()!)
        let decoderLength = policy.decoderLength(maxItems: settings.maxItems)
        let decoder = T5Decoder(model: policy.model, maxPrompts: P, maxRows: P * G, encoderLength: encoderLength,
                                maxSteps: decoderLength)
        decoding = PathDecoding(decoder: decoder, tokenizer: policy.tokenizer)
        let capacity = T5Pass.Capacity(prompts: P, encoderLength: encoderLength, sequences: P * G, decoderLength: decoderLength)
        pass = T5Pass(model: policy.model, capacity: capacity)
        referencePass = T5Pass(model: self.reference, capacity: capacity)
        weights = FloatBuffer(count: capacity.rows)
        schedule = LearningRateSchedule(peak: settings.learningRate, totalSteps: settings.steps,
                                        warmupFraction: settings.warmupFraction, cosine: false)
    }

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

    /// Runs one step and returns its log.
    public func runStep() -> RLStepLog {
        step += 1
        let s = settings, P = s.promptsPerStep, G = s.rollouts
        let timer = Workloads.PhaseTimer()
        let t0 = Date()
        timer.start()
        let tasks = prompts(forStep: step)
        let encoder = tasks.map { policy.encoderTokens(history: $0.history, target: $0.target) }

        // 1. rollouts
        let sampled = decoding.sample(prompts: encoder, samplesPerPrompt: G, options: s.decoding, stream: UInt64(step))
        let rollouts = sampled.map { Rollout(tokens: $0.tokens, tokenizer: policy.tokenizer, maxItems: s.maxItems) }
        timer.lap("generate")

        // 2. step rewards, centering, advantages
        let raw = scorer.score(rollouts, tasks: tasks, taskOf: (0..<(P * G)).map { $0 / G })
        if step <= s.centeringWarmupSteps { centering.observe(raw) }
        if step >= s.centeringWarmupSteps { centering.frozen = true }
        let stepRewards = raw.combined(weights: s.weights, maxItems: s.maxItems,
                                       centering: s.algorithm.centers ? centering : nil)
        let advantages = Advantages.compute(s.algorithm, stepRewards: stepRewards, actions: rollouts.map(\.actions),
                                            group: G, gamma: s.gamma, grpoScaleByStd: s.grpoScaleByStd)
        timer.lap("rewards")

        // 3. log-probs under the policy and the reference (one encoder pass
        //    per prompt, packed decoder rows)
        let batch = PolicyBatch(encoder: encoder, targets: rollouts.map(\.tokens), group: G,
                                startToken: policy.model.config.decoderStartToken)
        pass.forward(batch, training: false, entropy: true)
        timer.lap("policy_forward")
        referencePass.forward(batch, training: false)
        timer.lap("reference_forward")

        // 4. per-token weights of the loss, backward, update
        let logp = pass.tokenLosses, refLogp = referencePass.tokenLosses  // −log p
        let w = weights.tensor(rows: batch.rows, cols: 1)
        w.zero()
        // the loss counts rollouts with at least one item (the reference's
        // valid rollouts)
        let n = Double(max(rollouts.filter { $0.length > 0 }.count, 1)), beta = s.klWeight
        var kl = 0.0, actionCount = 0, advSum = 0.0, advSquares = 0.0
        for (r, rollout) in rollouts.enumerated() where rollout.length > 0 {
            let start = Int(batch.decoderStarts[r])
            for (t, range) in rollout.actionTokens.enumerated() {
                let a = advantages[r][t]
                let k = s.itemLogProb == .mean ? Double(range.count) : 1
                var l = 0.0, lr = 0.0
                for j in range {
                    w[start + j] = Float((a - beta) / (k * n))
                    l -= Double(logp[start + j])
                    lr -= Double(refLogp[start + j])
                }
                kl += (l - lr) / k
                actionCount += 1
                advSum += a
                advSquares += a * a
            }
        }
        policy.model.store.zeroGrads()
        pass.backward(weights: w)
        let gradNorm = Kernels.clipGradientNorm(policy.model.store.allGrads, maxNorm: s.gradientClip)
        let lr = schedule(step)
        policy.model.store.adamW(lr: lr, weightDecay: s.weightDecay)
        timer.lap("backward_update")

        // 5. the log
        var log = RLStepLog(step: step)
        let all = Double(rollouts.count)
        let seconds = Date().timeIntervalSince(t0)
        let steps = raw.ctr.reduce(0) { $0 + $1.count }
        func meanOver(_ x: [[Double]]) -> Double { x.reduce(0) { $0 + $1.reduce(0, +) } / Double(max(steps, 1)) }
        func count(_ x: [[Bool]]) -> Double { Double(x.reduce(0) { $0 + $1.filter { $0 }.count }) }
        let entropy = pass.tokenEntropy!
        var entropySum = 0.0
        for i in 0..<entropy.count { entropySum += Double(entropy[i]) }
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
            ("ctr_z", meanOver(raw.ctr.map { $0.map { centering.normalise($0, .ctr) } })),
            ("ioi_z", meanOver(raw.ioi.map { $0.map { centering.normalise($0, .ioi) } })),
            ("ior_z", meanOver(raw.ior.map { $0.map { centering.normalise($0, .ior) } })),
            ("path_ioi", raw.pathIoI.reduce(0, +) / all), ("path_ior", raw.pathIoR.reduce(0, +) / all),
            ("path_ctr", raw.pathCTR.reduce(0, +) / all),
            ("step_reward", meanOver(stepRewards)),
            ("path_reward", stepRewards.reduce(0) { $0 + $1.reduce(0, +) } / all),
            ("advantage_mean", advMean),
            ("advantage_std", (max(advSquares / Double(max(actionCount, 1)) - advMean * advMean, 0)).squareRoot()),
            ("kl", kl / n), ("entropy", entropySum / Double(max(entropy.count, 1))),
            ("grad_norm", Double(gradNorm)), ("lr", Double(lr)),
            ("seconds", seconds), ("rollouts_per_second", all / max(seconds, 1e-9)),
        ]
        log.phasesMS = timer.medians
        return log
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

    /// Saves what a resumed run needs: the policy (as a policy checkpoint)
    /// and the optimiser state, centering statistics and step.
    public func saveState(policyPath: String, statePath: String) throws {
        try policy.save(to: policyPath, extra: ["rl_step": String(step)])
        var tensors: [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)] = []
        let store = policy.model.store
        let opt = store.optimizerState
        if let opt {
            tensors.append(("adam.m", [opt.m.count], UnsafeBufferPointer(start: opt.m.base, count: opt.m.count)))
            tensors.append(("adam.v", [opt.v.count], UnsafeBufferPointer(start: opt.v.base, count: opt.v.count)))
        }
        let meta = [
            "format": "prorl-rl-state", "step": String(step), "adam_step": String(opt?.step ?? 0),
            "centering": String(decoding: try JSONEncoder().encode(centering), as: UTF8.self),
            "settings": String(decoding: try JSONEncoder().encode(settings), as: UTF8.self),
        ]
        try SafeTensors.write(tensors, metadata: meta, to: statePath)
    }

    /// Restores a state written by ``saveState(policyPath:statePath:)``
    /// (the policy weights are loaded by the caller from `policyPath`).
    public func restoreState(_ path: String) throws {
        let (tensors, meta) = try SafeTensors.read(path)
        guard meta["format"] == "prorl-rl-state", let s = meta["step"].flatMap(Int.init),
              let adamStep = meta["adam_step"].flatMap(Int.init), let c = meta["centering"] else {
            throw DataError(file: path, "is not an RL state (format, step, adam_step and centering expected)")
        }
        if let text = meta["settings"], let saved = try? JSONDecoder().decode(RLSettings.self, from: Data(text.utf8)),
           saved.algorithm != settings.algorithm || saved.promptsPerStep != settings.promptsPerStep || saved.rollouts != settings.rollouts {
            throw DataError(file: path, "was written by a run with other settings (algorithm, prompts or rollouts differ)")
        }
        do { centering = try JSONDecoder().decode(RewardCentering.self, from: Data(c.utf8)) } catch {
            throw DataError(file: path, "metadata 'centering' is malformed: \(error)")
        }
        if let m = tensors["adam.m"], let v = tensors["adam.v"] {
            guard m.values.count == policy.model.store.count, v.values.count == m.values.count else {
                throw DataError(file: path, "optimiser state has \(m.values.count) values, the policy \(policy.model.store.count)")
            }
            policy.model.store.restoreOptimizer(step: adamStep, m: m.values, v: v.values)
        }
        step = s
    }
}
