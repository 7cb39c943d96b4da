import Foundation
import ProRL
import ProRLTestSupport
import Testing

/// A world whose step rewards are a function of the path alone: every new
/// item costs `newItem` (IoI; IoR ten times it), a repeat costs `repeatItem`,
/// CTR is `ctr` throughout. No penalties: the rewards are what they say.
final class ToyRewards: RolloutRewarding {
    let newItem: Double, repeatItem: Double, ctr: Double
    init(newItem: Double, repeatItem: Double = 0, ctr: Double = 0.5) {
        self.newItem = newItem
        self.repeatItem = repeatItem
        self.ctr = ctr
    }
    func accepts(_ task: ProactiveTask) -> Bool { true }
    func score(paths: [[Int32?]], tasks: [ProactiveTask], taskOf: [Int]) -> StepRewards {
        var ctr: [[Double]] = [], ioi: [[Double]] = [], ior: [[Double]] = [], no: [[Bool]] = []
        for p in paths {
            var seen = Set<Int32>()
            let r = p.map { seen.insert($0 ?? -1).inserted ? newItem : repeatItem }
            ctr.append(p.map { _ in self.ctr })
            ioi.append(r)
            ior.append(r.map { 10 * $0 })
            no.append(p.map { _ in false })
        }
        let sums = ioi.map { $0.reduce(0, +) }
        return StepRewards(ctr: ctr, ioi: ioi, ior: ior, invalid: no, duplicate: no, pathIoI: sums,
                           pathIoR: sums.map { 10 * $0 }, pathCTR: paths.map { _ in self.ctr })
    }
}

@Suite("RL objective: sampled support, exact KL, honest centering, the whole loss")
struct RLObjectiveTests {
    static func catalog(_ n: Int) -> ItemCatalog {
        var c = ItemCatalog()
        for i in 1...n { c.add(String(i)) }
        return c
    }

    /// A tiny policy: one token per item, or `tokensPerItem` semantic-ID
    /// tokens over a codebook of 3.
    static func policy(items: Int, tokensPerItem: Int = 1, seed: UInt64 = 3) throws -> Policy {
        let tok: ItemTokenizer
        if tokensPerItem == 1 {
            tok = try ItemTokenizer(perItem: items)
        } else {
            // distinct code tuples: item i's digits in base 3
            let codes = [[Int]()] + (0..<items).map { i in (0..<tokensPerItem).map { d in (i / Int(pow(3.0, Double(d)))) % 3 } }
            tok = try ItemTokenizer(semanticIDs: codes, codebookSize: 3)
        }
        return try Policy(tokenizer: tok, itemIDs: catalog(items).rawIDs, configure: {
            $0.modelWidth = 16; $0.ffWidth = 32; $0.heads = 2; $0.headWidth = 8
            $0.encoderLayers = 1; $0.decoderLayers = 1; $0.dropout = 0
        }, seed: seed)
    }

    static func tasks(_ n: Int, items: Int, seed: UInt64 = 4) -> [ProactiveTask] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in
            ProactiveTask(user: nil, history: (0..<4).map { _ in Int32(1 + rng.below(items)) }, path: [1],
                          target: Int32(1 + rng.below(items)))
        }
    }

    static func gradient(_ policy: Policy) -> [Double] { policy.model.store.allGrads.toArray().map(Double.init) }
    static func norm(_ x: [Double]) -> Double { x.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    /// Mean over 4 prompts of the norm of the mean gradient of −Σ_t ℓ_t over
    /// G sampled rollouts (A ≡ 1, β = 0).
    static func meanScoreGradientNorm(support: LogProbSupport, rollouts G: Int) throws -> Double {
        let policy = try policy(items: 9, tokensPerItem: 2)
        var s = RLSettings()
        s.promptsPerStep = 1
        s.rollouts = G
        s.maxItems = 3
        s.klWeight = 0
        s.logProbSupport = support
        let trainer = try RLTrainer(policy: policy, rewards: ToyRewards(newItem: 0), train: tasks(4, items: 9), settings: s)
        var total = 0.0
        for (i, task) in trainer.train.enumerated() {
            let encoder = [policy.encoderTokens(history: task.history, target: task.target)]
            let rollouts = trainer.sampleRollouts(encoder: encoder, stream: UInt64(100 + i))
            let advantages = rollouts.map { [Double](repeating: 1, count: $0.actions) }
            policy.model.store.zeroGrads()
            trainer.loss(RLLossInput(encoder: encoder, rollouts: rollouts, advantages: advantages,
                                     normaliser: Double(G)), backward: true)
            total += norm(gradient(policy))
        }
        return total / 4
    }

    @Test("score-function identity: under the sampled support the mean of ∇ℓ over samples vanishes; under the full vocabulary it does not")
    func scoreFunctionIdentity() throws {
        let sampled16 = try Self.meanScoreGradientNorm(support: .sampled, rollouts: 16)
        let sampled512 = try Self.meanScoreGradientNorm(support: .sampled, rollouts: 512)
        let full16 = try Self.meanScoreGradientNorm(support: .full, rollouts: 16)
        let full512 = try Self.meanScoreGradientNorm(support: .full, rollouts: 512)
        // zero mean: the norm shrinks like 1/√G (√(16/512) ≈ 0.18)
        #expect(sampled512 / sampled16 < 0.35,
                "sampled support: |mean ∇ℓ| over 16 samples \(sampled16), over 512 \(sampled512) — should shrink toward 0")
        // the full vocabulary's −∇log Z(allowed) bias stays whatever G is
        #expect(full512 / full16 > 0.6 && full512 > 3 * sampled512,
                "full vocabulary: |mean ∇ℓ| over 16 samples \(full16), over 512 \(full512) (sampled: \(sampled512))")
    }

    @Test("REINFORCE with a constant negative reward keeps the KL to the reference ≥ 0 (both estimators)")
    func klStaysNonNegative() throws {
        let policy = try Self.policy(items: 9, tokensPerItem: 2)
        var s = RLSettings()
        s.algorithm = .reinforce
        s.promptsPerStep = 2
        s.rollouts = 16
        s.maxItems = 3
        s.steps = 30
        s.learningRate = 3e-3
        s.warmupFraction = 0
        let trainer = try RLTrainer(policy: policy, rewards: ToyRewards(newItem: -1, repeatItem: -1, ctr: -1),
                                    train: Self.tasks(4, items: 9), settings: s)
        var exact: [Double] = [], ratio: [Double] = []
        for _ in 0..<s.steps {
            let log = try trainer.runStep()
            exact.append(log["kl"]!)
            ratio.append(log["kl_log_ratio"]!)
        }
        #expect(exact.allSatisfy { $0 >= -1e-6 }, "exact KL per step: \(exact)")
        let lateRatio = ratio.suffix(15).reduce(0, +) / 15
        #expect(lateRatio > -0.02, "log-ratio KL estimate, mean of the last 15 steps \(lateRatio): \(ratio)")
        #expect(exact.last! > 0.01, "the policy moved away from the reference: KL \(exact.last!)")
    }

    @Test("with zero advantages the exact KL pulls a perturbed policy back: KL to the reference falls every step")
    func exactKLPullsBack() throws {
        let policy = try Self.policy(items: 12)
        let reference = try T5Policy(config: policy.model.config)
        reference.store.copyValues(from: policy.model.store)
        var g = GaussianSampler(seed: 9)
        let noise = FloatBuffer(count: policy.model.store.count)
        g.fill(noise.flat, std: 0.05)
        Kernels.axpy(noise.flat, into: policy.model.store.allValues)
        var s = RLSettings()
        s.promptsPerStep = 1
        s.rollouts = 8
        s.maxItems = 1  // one position per rollout: its KL does not depend on the samples
        s.steps = 12
        s.klWeight = 1
        s.learningRate = 2e-4
        s.warmupFraction = 0
        let trainer = try RLTrainer(policy: policy, reference: reference, rewards: ToyRewards(newItem: 0),
                                    train: Self.tasks(1, items: 12), settings: s)
        var kl: [Double] = []
        for _ in 0..<s.steps { kl.append(try trainer.runStep()["kl"]!) }
        #expect(kl[0] > 1e-3, "the perturbation should give a visible KL: \(kl[0])")
        #expect(zip(kl, kl.dropFirst()).allSatisfy { $1 < $0 }, "KL per step should fall every step: \(kl)")
    }

    /// Mean rollout length over the last 10 of `steps` steps in the toy world
    /// where each new item costs 1 and a repeat nothing, repeats allowed.
    static func lengthAfterTraining(centering: CenteringMode) throws -> (first: Double, last: Double) {
        // a short-path starting policy, as pretraining on short logged paths gives
        let policy = try policy(items: 6)
        var rng = SplitMix64(seed: 8)
        let short = (0..<32).map { _ in
            ProactiveTask(user: nil, history: (0..<4).map { _ in Int32(1 + rng.below(6)) }, path: [Int32(1 + rng.below(6))],
                          target: Int32(1 + rng.below(6)))
        }
        var p = PretrainingSettings()
        p.epochs = 3
        p.batchSize = 8
        p.learningRate = 1e-2
        try PolicyPretrainer(policy: policy, train: short, validation: [], settings: p).run { _ in }
        var s = RLSettings()
        s.promptsPerStep = 4
        s.rollouts = 8
        s.maxItems = 6
        s.steps = 80
        s.learningRate = 5e-3
        s.warmupFraction = 0
        s.centeringWarmupSteps = 3
        s.allowRepeats = true
        s.centering = centering
        s.temperature = 1  // the comparison is about centering alone
        let trainer = try RLTrainer(policy: policy, rewards: ToyRewards(newItem: -1), train: tasks(4, items: 6), settings: s)
        var lengths: [Double] = []
        for _ in 0..<s.steps { lengths.append(try trainer.runStep()["length"]!) }
        return (lengths.prefix(10).reduce(0, +) / 10, lengths.suffix(10).reduce(0, +) / 10)
    }

    @Test("a world where new items cost reward and repeats are free: frozen centering drifts to Lmax, the default does not")
    func centeringDoesNotPayForLength() throws {
        let frozen = try Self.lengthAfterTraining(centering: .frozen)
        let chosen = try Self.lengthAfterTraining(centering: RLSettings().centering)
        #expect(frozen.last > frozen.first + 1 && frozen.last > 4,
                "frozen centering: mean length \(frozen.first) → \(frozen.last) (expected to grow toward Lmax 6)")
        #expect(chosen.last < chosen.first && chosen.last < 2.5,
                "default centering (\(RLSettings().centering.rawValue)): mean length \(chosen.first) → \(chosen.last)")
    }

    @Test("the trainer's whole loss matches central finite differences (G > 1, 4-token items, EOS actions, forced EOS)")
    func wholeLossGradient() throws {
        // A central difference needs a smooth loss: bf16 products round the
        // parameters themselves to 8 significant bits, coarser than h, so
        // the check runs at fp32 (the golden tests bound the same passes at bf16).
        try Kernels.withPrecision(.fp32) { try wholeLossGradientAtFP32() }
    }

    private func wholeLossGradientAtFP32() throws {
        for estimator in KLEstimator.allCases {
            let policy = try Self.policy(items: 20, tokensPerItem: 4, seed: 5)
            var g = GaussianSampler(seed: 1)
            g.fill(policy.model.store.allValues, std: 0.4)  // spread distributions: EOS and item actions both occur
            let reference = try T5Policy(config: policy.model.config)
            reference.store.copyValues(from: policy.model.store)
            var noise = GaussianSampler(seed: 2)
            noise.fill(reference.store.allValues, std: 0.4)
            var s = RLSettings()
            s.promptsPerStep = 2
            s.rollouts = 4
            s.maxItems = 2
            s.klWeight = 0.3
            s.klEstimator = estimator
            let trainer = try RLTrainer(policy: policy, reference: reference, rewards: ToyRewards(newItem: 0),
                                        train: Self.tasks(2, items: 20), settings: s)
            let encoder = trainer.train.map { policy.encoderTokens(history: $0.history, target: $0.target) }
            let rollouts = trainer.sampleRollouts(encoder: encoder, stream: 3)
            #expect(rollouts.contains { $0.stoppedEarly } && rollouts.contains { !$0.stoppedEarly },
                    "rollouts should include an EOS action and a forced EOS: \(rollouts.map(\.tokens))")
            var rng = SplitMix64(seed: 6)
            let advantages = rollouts.map { r in (0..<r.actions).map { _ in rng.nextUnit() * 2 - 1 } }
            let input = RLLossInput(encoder: encoder, rollouts: rollouts, advantages: advantages, normaliser: 8)
            policy.model.store.zeroGrads()
            trainer.loss(input, backward: true)
            let grad = Self.gradient(policy)
            let values = policy.model.store.allValues
            // the largest gradient entries and a spread of others
            let order = grad.indices.sorted { abs(grad[$0]) > abs(grad[$1]) }
            let probes = Array(order.prefix(12)) + stride(from: 0, to: grad.count, by: grad.count / 12).map { $0 }
            let scale = abs(grad[order[0]])
            for i in probes {
                let x0 = values[i], h: Float = 1e-3
                values[i] = x0 + h
                let up = trainer.loss(input, backward: false).loss
                values[i] = x0 - h
                let down = trainer.loss(input, backward: false).loss
                values[i] = x0
                let fd = (up - down) / Double(2 * h)
                // float32 forward passes and ReLU kinks bound the finite difference to ~2 % of the scale
                #expect(abs(fd - grad[i]) <= 0.04 * scale,
                        "\(estimator.rawValue): parameter \(i): finite difference \(fd), gradient \(grad[i]), scale \(scale)")
            }
        }
    }

    @Test("a step in micro-batches equals the step in one batch: same rollouts, same update")
    func microBatchesEqualOneBatch() throws {
        func run(micro: Int) throws -> (params: [Float], log: RLStepLog) {
            let policy = try Self.policy(items: 9, tokensPerItem: 2)
            var s = RLSettings()
            s.promptsPerStep = 4
            s.rollouts = 6
            s.maxItems = 3
            s.microBatchPrompts = micro
            s.centering = .batch
            s.allowRepeats = true
            let trainer = try RLTrainer(policy: policy, rewards: ToyRewards(newItem: -0.3, repeatItem: 0.2),
                                        train: Self.tasks(4, items: 9), settings: s)
            let log = try trainer.runStep()
            return (policy.model.store.allGrads.toArray(), log)
        }
        let one = try run(micro: 4), split = try run(micro: 1)
        #expect(one.log["length"] == split.log["length"] && one.log["path_reward"] == split.log["path_reward"],
                "rollouts differ: length \(one.log["length"]!) vs \(split.log["length"]!)")
        // the gradients of the update (after clipping): accumulated in another order, so equal to rounding
        let scale = one.params.map { abs($0) }.max()!
        let worst = zip(one.params, split.params).map { abs($0 - $1) }.max()!
        #expect(scale > 0 && worst <= 1e-5 * scale, "gradients of the step differ by up to \(worst) (largest \(scale))")
    }
}
