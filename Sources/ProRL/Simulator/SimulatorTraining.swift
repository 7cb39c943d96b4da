import Foundation

/// How the simulator is trained and evaluated on a log.
public struct SimulatorTraining: Codable, Sendable, Equatable {
    /// Which positions carry the loss.
    public enum Loss: String, Codable, Sendable, CaseIterable {
        /// Every position of a training window predicts its next item: one
        /// causal forward pass trains all prefixes at once (the default).
        case allPositions = "all"
        /// RecBole's prefix augmentation: one sample per prefix, loss at its
        /// last position.
        case lastPosition = "last"
    }

    public var loss = Loss.allPositions
    public var batchSize = 128
    public var epochs = 200
    public var learningRate: Float = 1e-3
    public var weightDecay: Float = 0
    /// Epochs without a better validation NDCG@10 before stopping.
    public var patience = 10
    public var seed: UInt64 = 2020
    /// Negatives per user in the sampled protocol.
    public var sampledNegatives = 100
    /// Batches of sequences of similar length: each epoch's shuffled
    /// samples are sorted by length within spans of 32 batches, cut into
    /// batches, and the batches shuffled, so little of a batch is padding.
    public var bucketByLength = false
    /// Matrix products of the training steps (``Kernels/precision``; by
    /// default the process's); evaluation runs at fp32.
    public var precision = Precision.processDefault

    public init() {}
}

/// Leave-one-out ranking metrics.
public struct RankingMetrics: Codable, Sendable, Equatable {
    public var users = 0
    public var hr10 = 0.0, ndcg10 = 0.0, mrr10 = 0.0
    /// Against 100 sampled negatives (RecBole's uni100 rule, see ``SimulatorEvaluation``).
    public var sampledHR10 = 0.0, sampledNDCG10 = 0.0

    enum CodingKeys: String, CodingKey {
        case users, hr10 = "hr@10", ndcg10 = "ndcg@10", mrr10 = "mrr@10"
        case sampledHR10 = "sampled_hr@10", sampledNDCG10 = "sampled_ndcg@10"
    }

    public var summary: String {
        String(format: "HR@10 %.4f  NDCG@10 %.4f  MRR@10 %.4f  (sampled HR@10 %.4f NDCG@10 %.4f)",
               hr10, ndcg10, mrr10, sampledHR10, sampledNDCG10)
    }
}

/// One line of training progress.
public struct SimulatorEpoch: Sendable {
    public let epoch: Int
    public let loss: Double
    public let validation: RankingMetrics
    public let seconds: Double
    public let improved: Bool
}

/// One optimisation step of a ``SequenceModel``: forward over a batch of
/// samples, the full-softmax loss at the positions the loss kind names,
/// backward and Adam(W). Used by ``SimulatorTrainer`` and the benchmarks.
///
/// Data-parallel (`collective` of several ranks), each rank takes its
/// contiguous share of a step's samples, the mean is over the whole step's
/// targets and the gradients are summed: the step one process makes on all
/// of them (dropout masks are each rank's own).
public final class SequenceTrainingStep {
    /// An input sequence and its targets: one per position (all-position
    /// loss) or one for the last position.
    public typealias Sample = (input: [Int32], targets: [Int32])
    public let model: any SequenceModel
    public let pass: any SequencePass
    public let settings: SimulatorTraining
    public let collective: any Collective
    private let lossHead: FullSoftmaxLoss
    private let dStates: FloatBuffer

    public init(model: any SequenceModel, maxBatch: Int, settings: SimulatorTraining,
                collective: any Collective = SingleProcess.shared) {
        self.model = model
        self.collective = collective
        pass = model.makePass(maxBatch: maxBatch)
        self.settings = settings
        let rows = maxBatch * model.maxLength
        lossHead = FullSoftmaxLoss(maxRows: settings.loss == .allPositions ? rows : maxBatch, width: model.width,
                                   vocabulary: model.itemVocabulary)
        dStates = FloatBuffer(count: rows * model.width)
    }

    /// Runs step `index` (it seeds dropout) on `samples`; returns the mean
    /// loss over their targets.
    public func callAsFunction(_ samples: ArraySlice<Sample>, index: UInt64) throws -> Double {
        try Kernels.withPrecision(settings.precision) { try step(samples, index: index) }
    }

    private func step(_ samples: ArraySlice<Sample>, index: UInt64) throws -> Double {
        // all-position: every real position of every sequence; last-position:
        // the pass returns only each sequence's last state
        let lastOnly = settings.loss == .lastPosition
        let L = model.maxLength
        let wholeTargets = lastOnly ? samples.count : samples.reduce(0) { $0 + min($1.input.count, L) }
        let mine = collective.shard(samples.count)
        let shard = samples.dropFirst(mine.lowerBound).prefix(mine.count)
        model.store.zeroGrads()
        var lossSum = 0.0
        if !shard.isEmpty {
            let batch = SequenceBatch(shard.map(\.input), maxLength: L)
            var rows: [Int] = [], targets: [Int32] = []
            for (b, sample) in shard.enumerated() {
                if lastOnly {
                    rows.append(b)
                    targets.append(sample.targets[0])
                } else {
                    for t in 0..<Int(batch.lengths[b]) { rows.append(b * batch.length + t); targets.append(sample.targets[t]) }
                }
            }
            let states = pass.forward(batch, training: true, seed: settings.seed, step: collective.dropoutStep(index),
                                      lastOnly: lastOnly)
            let d = dStates.tensor(rows: states.rows, cols: states.cols)
            d.zero()
            let loss = lossHead(states: states, rows: rows, targets: targets, items: model.items, dStates: d,
                                dItems: model.store.grad(model.itemTableID), meanOver: wholeTargets)
            pass.backward(d)
            lossSum = loss * Double(rows.count)
        }
        // RecBole does not clip
        try model.store.update(lr: settings.learningRate, weightDecay: settings.weightDecay, clip: nil, collective: collective)
        guard collective.size > 1 else { return lossSum / Double(max(wholeTargets, 1)) }
        return try collective.allReduceSum([lossSum])[0] / Double(max(wholeTargets, 1))
    }
}

/// Trains a ``SequenceModel`` on a log with leave-one-out splits by time:
/// for each user the last item is the test target, the second last the
/// validation target, the rest trains.
public final class SimulatorTrainer {
    public let log: InteractionLog
    public let settings: SimulatorTraining
    public let model: any SequenceModel
    private let step: SequenceTrainingStep
    private let trainSequences: [[Int32]]
    private let evalPrefixes: (validation: [[Int32]], test: [[Int32]])
    private let evalTargets: (validation: [Int32], test: [Int32])

    /// Trains `model` (fresh, or a checkpoint's to evaluate) on `log`; with
    /// a `collective` of several ranks, data-parallel (every rank validates,
    /// so all stop at the same epoch with the same best parameters).
    public init(log: InteractionLog, model: any SequenceModel, settings: SimulatorTraining,
                collective: any Collective = SingleProcess.shared) throws {
        guard model.itemVocabulary == log.catalog.vocabularySize else {
            throw DataError(file: "simulator", "item table of \(model.itemVocabulary) rows ≠ catalogue size \(log.catalog.vocabularySize)")
        }
        self.log = log
        self.settings = settings
        self.model = model
        var train: [[Int32]] = [], vp: [[Int32]] = [], tp: [[Int32]] = [], vt: [Int32] = [], tt: [Int32] = []
        for user in log.users {
            let s = user.items
            if s.count >= 3 {
                train.append(Array(s.dropLast(2)))
                vp.append(Array(s.dropLast(2)))
                vt.append(s[s.count - 2])
                tp.append(Array(s.dropLast(1)))
                tt.append(s[s.count - 1])
            } else if s.count >= 2 {
                train.append(s)
            }
        }
        guard !vp.isEmpty else { throw DataError(file: "simulator training", "no user has 3 or more events") }
        trainSequences = train
        evalPrefixes = (vp, tp)
        evalTargets = (vt, tt)
        step = SequenceTrainingStep(model: model, maxBatch: max(settings.batchSize, 256), settings: settings, collective: collective)
    }

    /// Training samples of one epoch: (input sequence, per-position targets;
    /// last-position samples have one target).
    private func samples() -> [SequenceTrainingStep.Sample] {
        let L = model.maxLength
        var out: [SequenceTrainingStep.Sample] = []
        for s in trainSequences {
            switch settings.loss {
            case .allPositions:
                // windows ending at the sequence's end, stepping back by L:
                // every position 1..<n is a target exactly once
                var end = s.count
                while end >= 2 {
                    let start = max(0, end - 1 - L)
                    out.append((Array(s[start..<(end - 1)]), Array(s[(start + 1)..<end])))
                    end = start + 1
                }
            case .lastPosition:
                for t in 1..<s.count { out.append((Array(s[max(0, t - L)..<t]), [s[t]])) }
            }
        }
        return out
    }

    /// Trains until the epochs run out or validation NDCG@10 stops
    /// improving for `patience` epochs; restores the best parameters and
    /// returns (validation, test) metrics of that model.
    /// Stops with an error naming the step when a loss is not finite (the
    /// best parameters so far are restored first).
    public func run(progress: (SimulatorEpoch) -> Void) throws -> (validation: RankingMetrics, test: RankingMetrics, epochs: Int) {
        var data = samples()
        var rng = SplitMix64(seed: settings.seed ^ 0xA5A5)
        let best = ParameterStore(layout: model.store.entries.map { ($0.name, $0.shape) })
        best.copyValues(from: model.store)
        var bestScore = -1.0, bestValidation = RankingMetrics(), since = 0, epochsRun = 0
        var stepIndex: UInt64 = 0
        for epoch in 1...max(1, settings.epochs) {
            let t0 = Date()
            rng.shuffle(&data)
            var lossSum = 0.0, batches = 0
            for range in batchRanges(&data, rng: &rng) {
                stepIndex += 1
                let loss = try step(data[range], index: stepIndex)
                guard loss.isFinite else {
                    model.store.copyValues(from: best)
                    throw DataError(file: "simulator training", "epoch \(epoch), step \(stepIndex): the loss is \(loss) "
                                    + "(diverged: lower --lr?); stopped, nothing of this run saved", kind: .diverged)
                }
                lossSum += loss
                batches += 1
            }
            let validation = evaluate(split: .validation)
            epochsRun = epoch
            let improved = validation.ndcg10 > bestScore
            if improved {
                bestScore = validation.ndcg10
                bestValidation = validation
                best.copyValues(from: model.store)
                since = 0
            } else {
                since += 1
            }
            progress(SimulatorEpoch(epoch: epoch, loss: lossSum / Double(max(batches, 1)), validation: validation,
                                    seconds: Date().timeIntervalSince(t0), improved: improved))
            if since >= settings.patience { break }
        }
        model.store.copyValues(from: best)
        return (bestValidation, evaluate(split: .test), epochsRun)
    }

    /// The batches of one epoch over the shuffled `data`, in training order
    /// (with ``SimulatorTraining/bucketByLength``, `data` is reordered).
    private func batchRanges(_ data: inout [SequenceTrainingStep.Sample], rng: inout SplitMix64) -> [Range<Int>] {
        let size = settings.batchSize
        var ranges = stride(from: 0, to: data.count, by: size).map { $0..<min($0 + size, data.count) }
        guard settings.bucketByLength else { return ranges }
        let span = 32 * size
        for start in stride(from: 0, to: data.count, by: span) {
            let end = min(start + span, data.count)
            let sorted = data[start..<end].enumerated().sorted {
                $0.element.input.count != $1.element.input.count ? $0.element.input.count < $1.element.input.count
                    : $0.offset < $1.offset
            }.map(\.element)
            data.replaceSubrange(start..<end, with: sorted)
        }
        rng.shuffle(&ranges)
        return ranges
    }

    public enum Split { case validation, test }

    /// Full-ranking and sampled metrics on a leave-one-out split.
    public func evaluate(split: Split) -> RankingMetrics {
        let prefixes = split == .validation ? evalPrefixes.validation : evalPrefixes.test
        let targets = split == .validation ? evalTargets.validation : evalTargets.test
        return SimulatorEvaluation.metrics(model: model, pass: step.pass, prefixes: prefixes, targets: targets,
                                           negatives: settings.sampledNegatives, seed: settings.seed)
    }
}

/// Ranking a target among all items (padding excluded) after a prefix.
public enum SimulatorEvaluation {
    /// Full-ranking HR/NDCG/MRR@10, and the sampled ones under RecBole's
    /// `uni100` rule: `negatives` items drawn uniformly with replacement
    /// from all items but the target (the user's other items included);
    /// duplicates count once.
    public static func metrics(model: any SequenceModel, pass: any SequencePass, prefixes: [[Int32]], targets: [Int32],
                               negatives: Int, seed: UInt64) -> RankingMetrics {
        let V = model.itemVocabulary
        var m = RankingMetrics()
        let logits = FloatBuffer(count: pass.maxBatch * V)
        var start = 0
        while start < prefixes.count {
            let end = min(start + pass.maxBatch, prefixes.count)
            let batch = SequenceBatch(Array(prefixes[start..<end]), maxLength: model.maxLength)
            let last = pass.forward(batch, lastOnly: true)
            let z = logits.tensor(rows: batch.batch, cols: V)
            Kernels.scoreLogits(states: last, items: model.items, into: z)
            for b in 0..<batch.batch {
                let i = start + b, t = Int(targets[i])
                let row = z.base + b * V
                let ts = row[t]
                var rank = 1
                for v in 1..<V where v != t && row[v] > ts { rank += 1 }
                if rank <= 10 {
                    m.hr10 += 1
                    m.ndcg10 += 1 / log2(Double(rank) + 1)
                    m.mrr10 += 1 / Double(rank)
                }
                var rng = SplitMix64(seed: seed ^ UInt64(i) &* 0x9E37_79B9)
                var drawn = Set<Int>()
                for _ in 0..<(V > 2 ? negatives : 0) {
                    var v = 1 + rng.below(V - 1)
                    while v == t { v = 1 + rng.below(V - 1) }
                    drawn.insert(v)
                }
                let sampledRank = 1 + drawn.filter { row[$0] > ts }.count
                if sampledRank <= 10 {
                    m.sampledHR10 += 1
                    m.sampledNDCG10 += 1 / log2(Double(sampledRank) + 1)
                }
            }
            start = end
        }
        let n = Double(max(prefixes.count, 1))
        m.users = prefixes.count
        m.hr10 /= n; m.ndcg10 /= n; m.mrr10 /= n; m.sampledHR10 /= n; m.sampledNDCG10 /= n
        return m
    }
}
