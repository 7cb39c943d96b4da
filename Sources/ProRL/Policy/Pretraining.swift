import Foundation

/// Supervised pretraining settings (teacher forcing on reference paths).
public struct PretrainingSettings: Codable, Sendable, Equatable {
    public var epochs = 40
    public var batchSize = 256
    public var learningRate: Float = 3e-3
    public var weightDecay: Float = 0.05
    /// Fraction of all steps spent warming the learning rate up linearly.
    public var warmupFraction: Double = 0.05
    /// The cosine decay ends at this fraction of the learning rate.
    public var finalLearningRateFraction: Double = 0
    public var gradientClip: Float = 1
    /// Evaluate on the validation tasks every this many epochs.
    public var evaluateEvery = 1
    public var seed: UInt64 = 2024
    /// Matrix products of the training steps (``Kernels/precision``; by
    /// default the process's); validation runs at fp32.
    public var precision = Precision.processDefault
    public init() {}
}

/// Learning rate at a step: linear warm-up, then cosine decay (or constant).
public struct LearningRateSchedule: Sendable {
    public let peak: Float
    public let warmupSteps: Int
    public let totalSteps: Int
    public let finalFraction: Double
    public let cosine: Bool

    public init(peak: Float, totalSteps: Int, warmupFraction: Double, finalFraction: Double = 0, cosine: Bool = true) {
        self.peak = peak
        self.totalSteps = max(totalSteps, 1)
        warmupSteps = Int((warmupFraction * Double(max(totalSteps, 1))).rounded(.up))
        self.finalFraction = finalFraction
        self.cosine = cosine
    }

    /// Learning rate of step `step` (1-based).
    public func callAsFunction(_ step: Int) -> Float {
        if step <= warmupSteps { return peak * Float(step) / Float(max(warmupSteps, 1)) }
        guard cosine else { return peak }
        let progress = Double(step - warmupSteps) / Double(max(totalSteps - warmupSteps, 1))
        let f = finalFraction + (1 - finalFraction) * 0.5 * (1 + cos(Double.pi * min(progress, 1)))
        return peak * Float(f)
    }
}

/// One evaluation during pretraining.
public struct PretrainingEpoch: Sendable {
    public let epoch: Int
    public let trainLoss: Double
    public let validationLoss: Double?
    /// Extra validation metrics (e.g. the simulator's IoI@K), when given.
    public let metrics: [String: Double]
    public let seconds: Double
    public let improved: Bool
    public let learningRate: Float
}

/// Token cross-entropy training on reference paths; keeps the parameters of
/// the best validation score (lower loss, or a higher `selection` metric).
///
/// Data-parallel (`collective` of several ranks), every rank walks the same
/// shuffled batches and trains on its contiguous share of each, the mean
/// taken over the whole batch's tokens and the gradients summed, so a step
/// is the one a single process makes on the whole batch; dropout masks are
/// each rank's own. Every rank validates, so all keep the same best.
public final class PolicyPretrainer {
    public let policy: Policy
    public let settings: PretrainingSettings
    public let collective: any Collective
    private let train: [ProactiveTask]
    private let validation: [ProactiveTask]
    private let pass: T5Pass
    private let maxItems: Int

    public init(policy: Policy, train: [ProactiveTask], validation: [ProactiveTask], settings: PretrainingSettings,
                maxItems: Int = 10, collective: any Collective = SingleProcess.shared) throws {
        guard !train.isEmpty else { throw DataError(file: "pretraining", "no training tasks") }
        guard let h = (train + validation).map(\.history.count).max(), (train + validation).allSatisfy({ $0.path.count <= maxItems }) else {
            throw DataError(file: "pretraining", "a reference path is longer than \(maxItems) items")
        }
        self.policy = policy
        self.settings = settings
        self.collective = collective
        self.train = train
        self.validation = validation
        self.maxItems = maxItems
        let batch = settings.batchSize
        pass = T5Pass(model: policy.model, capacity: .init(prompts: batch, encoderLength: policy.encoderLength(historyLength: h),
                                                            sequences: batch, decoderLength: policy.decoderLength(maxItems: maxItems)))
    }

    func batch(_ tasks: ArraySlice<ProactiveTask>) -> PolicyBatch {
        PolicyBatch(encoder: tasks.map { policy.encoderTokens(history: $0.history, target: $0.target) },
                    targets: tasks.map { policy.decoderTargets(path: $0.path) },
                    startToken: policy.model.config.decoderStartToken)
    }

    /// Mean token cross-entropy on `tasks` (no dropout).
    public func loss(on tasks: [ProactiveTask]) -> Double {
        var total = 0.0, tokens = 0
        var start = 0
        while start < tasks.count {
            let end = min(start + settings.batchSize, tasks.count)
            let b = batch(tasks[start..<end])
            pass.forward(b, training: false)
            total += pass.meanLoss * Double(b.rows)
            tokens += b.rows
            start = end
        }
        return total / Double(max(tokens, 1))
    }

    /// Trains; `evaluate` may add validation metrics, and `selection` names
    /// the one to maximise (nil: minimise the validation loss). Restores the
    /// best parameters and returns the epochs run and the best score.
    @discardableResult
    /// Stops with an error naming the step when a loss is not finite.
    public func run(evaluate: (() -> [String: Double])? = nil, selection: String? = nil,
                    progress: (PretrainingEpoch) -> Void) throws -> (epochs: Int, best: Double) {
        var order = train
        var rng = SplitMix64(seed: settings.seed ^ 0x5EED)
        let stepsPerEpoch = (train.count + settings.batchSize - 1) / settings.batchSize
        let schedule = LearningRateSchedule(peak: settings.learningRate, totalSteps: stepsPerEpoch * settings.epochs,
                                            warmupFraction: settings.warmupFraction,
                                            finalFraction: settings.finalLearningRateFraction)
        let best = ParameterStore(layout: T5Policy.layout(policy.model.config))
        best.copyValues(from: policy.model.store)
        var bestScore = -Double.infinity
        var step = 0
        for epoch in 1...max(1, settings.epochs) {
            let t0 = Date()
            rng.shuffle(&order)
            var lossSum = 0.0, tokens = 0
            var lr: Float = 0
            var start = 0
            try Kernels.withPrecision(settings.precision) {  // the steps at the settings' precision, validation at fp32
                while start < order.count {
                    let end = min(start + settings.batchSize, order.count)
                    let whole = order[start..<end], mine = collective.shard(whole.count)
                    let shard = whole.dropFirst(mine.lowerBound).prefix(mine.count)
                    start = end
                    step += 1
                    policy.model.store.zeroGrads()
                    // the whole batch's token count and loss (this rank's share of each, summed)
                    var rows = 0, batchLoss = 0.0
                    if !shard.isEmpty {
                        let b = batch(shard)
                        pass.forward(b, training: true, seed: settings.seed, step: collective.dropoutStep(UInt64(step)))
                        rows = b.rows
                        batchLoss = pass.meanLoss * Double(b.rows)
                    }
                    if collective.size > 1 {
                        let sums = try collective.allReduceSum([batchLoss, Double(rows)])
                        (batchLoss, rows) = (sums[0], Int(sums[1]))
                    }
                    guard batchLoss.isFinite else {
                        policy.model.store.copyValues(from: best)
                        throw DataError(file: "pretraining", "epoch \(epoch), step \(step): the loss is \(batchLoss / Double(max(rows, 1))) "
                                        + "(diverged: lower --lr?); stopped, nothing of this run saved", kind: .diverged)
                    }
                    lossSum += batchLoss
                    tokens += rows
                    if !shard.isEmpty { pass.backward(meanOver: rows) }
                    lr = schedule(step)
                    try policy.model.store.update(lr: lr, weightDecay: settings.weightDecay, clip: settings.gradientClip,
                                                  collective: collective)
                }
            }
            let trainLoss = lossSum / Double(max(tokens, 1))
            var validationLoss: Double? = nil
            var metrics: [String: Double] = [:]
            var improved = false
            if epoch % max(1, settings.evaluateEvery) == 0 || epoch == settings.epochs {
                if !validation.isEmpty { validationLoss = loss(on: validation) }
                metrics = evaluate?() ?? [:]
                let score: Double
                if let selection, let value = metrics[selection] { score = value }
                else if let v = validationLoss { score = -v } else { score = -trainLoss }
                if score > bestScore {
                    bestScore = score
                    best.copyValues(from: policy.model.store)
                    improved = true
                }
            }
            progress(PretrainingEpoch(epoch: epoch, trainLoss: trainLoss, validationLoss: validationLoss, metrics: metrics,
                                      seconds: Date().timeIntervalSince(t0), improved: improved, learningRate: lr))
        }
        policy.model.store.copyValues(from: best)
        return (settings.epochs, bestScore)
    }
}
