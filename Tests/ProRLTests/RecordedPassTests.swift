import Foundation
import ProRL
import ProRLTestSupport
import Testing

@Suite("The RL loss pass from what sampling recorded")
struct RecordedPassTests {
    /// Two decoder layers (so the residual stream is taken between layers
    /// too), 2-token items, a temperature ≠ 1 (so the recorded logits are
    /// rescaled).
    static func policy(seed: UInt64 = 5) throws -> Policy {
        let items = 9
        let codes = [[Int]()] + (0..<items).map { i in [i % 3, i / 3] }
        let tokenizer = try ItemTokenizer(semanticIDs: codes, codebookSize: 3)
        return try Policy(tokenizer: tokenizer, itemIDs: RLObjectiveTests.catalog(items).rawIDs, configure: {
            $0.modelWidth = 16; $0.ffWidth = 32; $0.heads = 2; $0.headWidth = 8
            $0.encoderLayers = 2; $0.decoderLayers = 2; $0.dropout = 0
        }, seed: seed)
    }

    /// The encoder tokens of three seeded tasks.
    static func prompts(_ policy: Policy) -> [[Int32]] {
        RLObjectiveTests.tasks(3, items: 9).map { policy.encoderTokens(history: $0.history, target: $0.target) }
    }

    @Test("a pass from sampling's recording equals the recomputed pass: log-probs, entropy, parameter gradients; and it recomputes nothing it was given")
    func recordedPassEqualsRecomputed() throws {
        let policy = try Self.policy()
        let c = policy.model.config
        let prompts = Self.prompts(policy)
        let G = 4, rows = prompts.count * G, maxSteps = policy.decoderLength(maxItems: 4)
        let encoderLength = prompts.map(\.count).max()!
        let decoder = T5Decoder(model: policy.model, maxPrompts: prompts.count, maxRows: rows, encoderLength: encoderLength,
                                maxSteps: maxSteps)
        let decoding = PathDecoding(decoder: decoder, tokenizer: policy.tokenizer)
        var options = DecodingOptions()
        options.maxItems = 4
        options.temperature = 1.6
        let recording = DecoderRecording(config: c, maxRows: rows, maxSteps: maxSteps)
        let paths = decoding.sample(prompts: prompts, samplesPerPrompt: G, options: options, stream: 5, recording: recording)
        let batch = PolicyBatch(encoder: prompts, targets: paths.map(\.tokens), group: G, startToken: c.decoderStartToken)
        #expect(Set(batch.decoderLengths).count > 1, "sampled lengths \(batch.decoderLengths): all equal, the packing is not exercised")
        #expect(recording.rows == batch.rows, "recorded \(recording.rows) rows for \(batch.rows) tokens")

        let pass = T5Pass(model: policy.model, capacity: .init(prompts: prompts.count, encoderLength: encoderLength,
                                                               sequences: rows, decoderLength: maxSteps))
        pass.logitScale = 1 / options.temperature
        let V = c.vocabulary
        let mask = UnsafeMutablePointer<UInt8>.allocate(capacity: batch.rows * V)
        defer { mask.deallocate() }
        let scratch = Int32Buffer(capacity: V)
        for (r, p) in paths.enumerated() {
            decoding.tokenMask(p.tokens, options: options, into: mask + Int(batch.decoderStarts[r]) * V, scratch: scratch.base)
        }
        var rng = SeededGenerator(seed: 9)
        let weights = FloatBuffer.random(count: batch.rows, using: &rng)
        func run(_ recording: DecoderRecording?) -> (losses: [Float], entropy: [Float], grads: [Float]) {
            policy.model.store.zeroGrads()
            pass.forward(batch, training: false, entropy: true, logitMask: UnsafePointer(mask), recording: recording)
            let losses = pass.tokenLosses.toArray(), entropy = pass.tokenEntropy!.toArray()
            pass.backward(weights: weights.tensor(rows: batch.rows, cols: 1))
            return (losses, entropy, policy.model.store.allGrads.toArray())
        }
        let fresh = run(nil), reused = run(recording)
        for (name, got, want) in [("log-probs", reused.losses, fresh.losses), ("entropy", reused.entropy, fresh.entropy),
                                  ("gradients", reused.grads, fresh.grads)] {
            let scale = want.map { Double(abs($0)) }.max()!
            let bad = Products.mismatch(got, want.map(Double.init), tolerance: 2e-5 * scale, floor: 1e-3 * scale)
            #expect(bad == nil, "recorded against recomputed pass, \(name): \(bad ?? "")")
        }

        // the recorded pass takes the decoder's outputs as recorded: moving
        // the weights moves the recomputed log-probs, not the recorded ones
        let values = policy.model.store.allValues
        for i in 0..<values.count { values[i] += 0.05 * Float(i % 7 - 3) }
        let movedFresh = run(nil), movedReused = run(recording)
        #expect(movedReused.losses == reused.losses, "the recorded pass recomputed its log-probs")
        #expect(normwiseError(movedFresh.losses, fresh.losses.map(Double.init)) > 1e-3,
                "moving the weights did not move the recomputed log-probs: the comparison above cannot tell the passes apart")
    }

    @Test("a pass that keeps no activations (the RL reference's) scores bit for bit as one that does")
    func scoringPassEqualsTrainingPass() throws {
        let policy = try Self.policy()
        let c = policy.model.config
        let prompts = Self.prompts(policy)
        var rng = SeededGenerator(seed: 2)
        let targets = (0..<6).map { _ in (0..<(1 + Int(rng.below(4)))).flatMap { _ in policy.tokenizer.tokens(of: Int32(1 + rng.below(9))) } + [c.eosToken] }
        let batch = PolicyBatch(encoder: prompts, targets: targets, group: 2, startToken: c.decoderStartToken)
        let capacity = T5Pass.Capacity(prompts: 3, encoderLength: prompts.map(\.count).max()!, sequences: 6,
                                       decoderLength: batch.maxDecoderLength)
        let training = T5Pass(model: policy.model, capacity: capacity)
        let scoring = T5Pass(model: policy.model, capacity: capacity, keepsActivations: false)
        training.forward(batch, training: false, entropy: true)
        scoring.forward(batch, training: false, entropy: true)
        #expect(scoring.tokenLosses.toArray() == training.tokenLosses.toArray(), "token losses differ")
        #expect(scoring.tokenEntropy!.toArray() == training.tokenEntropy!.toArray(), "entropies differ")
        #expect(scoring.lastLogits!.toArray() == training.lastLogits!.toArray(), "logits differ")
    }

    @Test("RL steps taking sampling's recordings (some micro-batches, then all) equal steps that recompute")
    func trainerStepsAgree() throws {
        var s = RLSettings()
        s.promptsPerStep = 4
        s.microBatchPrompts = 2
        s.rollouts = 4
        s.maxItems = 3
        s.steps = 3
        s.temperature = 1.6
        let tasks = RLObjectiveTests.tasks(8, items: 9)
        func trainer(reuse: Bool) throws -> (RLTrainer, Policy) {
            let policy = try Self.policy()
            let t = try RLTrainer(policy: policy, rewards: ToyRewards(newItem: 0.3, repeatItem: -0.1), train: tasks, settings: s)
            t.reusesSamplerActivations = reuse
            return (t, policy)
        }
        let (recomputing, p0) = try trainer(reuse: false)
        let (reusing, p1) = try trainer(reuse: true)
        let initial = p1.model.store.allValues.toArray()
        // one micro-batch's recording fits the first step, both the others
        reusing.recordingBudget = 1.5 * DecoderRecording.bytes(p1.model.config, maxRows: 8, maxSteps: p1.decoderLength(maxItems: 3))
        for step in 1...3 {
            if step == 2 { reusing.recordingBudget = .infinity }
            let a = try recomputing.runStep(), b = try reusing.runStep()
            #expect(recomputing.recordedMicroBatches == 0 && reusing.recordedMicroBatches == (step == 1 ? 1 : 2),
                    "step \(step): \(reusing.recordedMicroBatches) of 2 micro-batches took their recordings")
            for key in ["length", "path_ioi", "loss", "kl", "entropy", "grad_norm"] {
                let x = try #require(a[key]), y = try #require(b[key])
                #expect(Products.close(y, x, relative: 1e-4) || abs(y - x) < 1e-7,
                        "step \(step) \(key): \(y) reusing the recordings, \(x) recomputing")
            }
        }
        // what the three updates moved, reusing against recomputing
        let moved = zip(p1.model.store.allValues.toArray(), initial).map { $0 - $1 }
        let expected = zip(p0.model.store.allValues.toArray(), initial).map { Double($0) - Double($1) }
        let error = normwiseError(moved, expected)
        #expect(error < (Products.areBF16 ? Products.bf16ModelError : 1e-3), "the 3 steps' parameter updates differ by \(error) normwise")
    }
}
