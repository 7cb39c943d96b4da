import Foundation

/// End-to-end benchmark workloads (the engine's `prorl bench`): each runs a
/// realistic step several times and reports the median, with a phase
/// breakdown where one helps. Inputs are synthetic (seeded) at the shapes
/// the issues name.
public enum Workloads {
    /// One measured workload.
    public struct Result: Sendable {
        public var name: String
        public var shape: String
        public var medianMS: Double
        public var phasesMS: [(String, Double)] = []
        public var extra: [(String, Double)] = []
        /// Per-kernel milliseconds per repetition (with PRORL_KERNEL_PROFILE=1).
        public var kernels: [(String, Double)] = []

        /// One JSON line.
        public var json: String {
            var fields = ["\"workload\":\(jsonString(name))", "\"shape\":\(jsonString(shape))",
                          "\"threads\":\(Kernels.threads)", "\"precision\":\"\(Kernels.precision.rawValue)\"",
                          String(format: "\"ms_median\":%.2f", medianMS)]
            if !phasesMS.isEmpty {
                fields.append("\"phases_ms\":{" + phasesMS.map { String(format: "%@:%.2f", jsonString($0.0), $0.1) }.joined(separator: ",") + "}")
            }
            for (k, v) in extra { fields.append(String(format: "%@:%.4g", jsonString(k), v)) }
            if !kernels.isEmpty {
                fields.append("\"kernels_ms\":{" + kernels.map { String(format: "%@:%.1f", jsonString($0.0), $0.1) }.joined(separator: ",") + "}")
            }
            return "{" + fields.joined(separator: ",") + "}"
        }
    }

    /// Wall-clock timer with named phases, medians over repetitions.
    public final class PhaseTimer {
        private var samples: [String: [Double]] = [:]
        private var order: [String] = []
        private var mark = Date()

        public init() {}
        public func start() { mark = Date() }
        /// Ends the current phase.
        public func lap(_ name: String) {
            let now = Date()
            if samples[name] == nil { order.append(name); samples[name] = [] }
            samples[name]!.append(now.timeIntervalSince(mark) * 1000)
            mark = now
        }
        public var medians: [(String, Double)] { order.map { ($0, median(samples[$0]!)) } }
    }

    static func median(_ x: [Double]) -> Double {
        let s = x.sorted()
        return s.isEmpty ? 0 : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
    }

    /// Resident set size high-water mark of this process, in MB.
    public static func peakRSSMegabytes() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
            return kb / 1024
        }
        return 0
    }

    // MARK: Policy

    /// The reference policy (T5 3+3, d 128, semantic IDs: vocabulary 1027).
    static func referencePolicy(seed: UInt64 = 1) throws -> T5Policy {
        var c = T5Config(vocabulary: 1027, eosToken: 1026)
        c.dropout = 0.1
        return try T5Policy(config: c, seed: seed)
    }

    /// Random tokens in 1...1024 (item tokens), deterministic.
    static func tokens(_ n: Int, _ rng: inout SplitMix64) -> [Int32] { (0..<n).map { _ in Int32(1 + rng.below(1024)) } }

    /// Path lengths (items) of the official ml-1m validation split: how many
    /// paths have 1, 2, … 9 items.
    public static let ml1mPathLengths = [4028, 1460, 608, 269, 151, 88, 64, 61, 42]

    /// `count` decoder lengths (tokens: 4 per item + EOS) drawn from the ml-1m
    /// validation path-length distribution.
    public static func ml1mDecoderLengths(_ count: Int, seed: UInt64 = 5) -> [Int] {
        var rng = SplitMix64(seed: seed)
        let total = ml1mPathLengths.reduce(0, +)
        return (0..<count).map { _ in
            var u = rng.below(total)
            for (i, c) in ml1mPathLengths.enumerated() {
                if u < c { return 4 * (i + 1) + 1 }
                u -= c
            }
            return 41
        }
    }

    /// A pretraining step: forward, backward, clip and AdamW on a batch of
    /// `batch` tasks (encoder 45 tokens; decoder lengths `decoderLengths`).
    public static func pretrainStep(batch: Int = 256, decoderLengths: [Int]? = nil, repetitions: Int = 5,
                                    label: String) throws -> Result {
        let model = try referencePolicy()
        var rng = SplitMix64(seed: 3)
        let lengths = decoderLengths ?? [Int](repeating: 41, count: batch)
        let b = PolicyBatch(encoder: (0..<batch).map { _ in tokens(44, &rng) + [1026] },
                            targets: lengths.map { tokens($0 - 1, &rng) + [1026] })
        let pass = T5Pass(model: model, capacity: .init(prompts: batch, encoderLength: 45, sequences: batch,
                                                        decoderLength: 41, rows: b.rows))
        let timer = PhaseTimer()
        let (ms, kernels) = try measure(repetitions: repetitions) { rep in
            timer.start()
            model.store.zeroGrads()
            pass.forward(b, training: true, seed: 1, step: UInt64(rep + 1))
            timer.lap("forward")
            pass.backward()
            timer.lap("backward")
            try model.store.update(lr: 1e-3, weightDecay: 0.05, clip: 1)
            timer.lap("update")
        }
        var r = Result(name: "pretrain_step", shape: "\(label): batch \(batch), encoder 45, decoder rows \(b.rows) (max 41)",
                       medianMS: ms)
        r.phasesMS = timer.medians
        r.extra = [("peak_rss_mb", peakRSSMegabytes()), ("decoder_rows", Double(b.rows))]
        r.kernels = kernels
        return r
    }

    /// A seeded semantic-ID tokenizer over `items` items: 4 digits of 256
    /// (vocabulary 1027, as the reference policy).
    static func randomSemanticIDs(items: Int, seed: UInt64 = 11) throws -> ItemTokenizer {
        var rng = SplitMix64(seed: seed)
        var seen = Set<[Int]>()
        var codes: [[Int]] = [[]]
        while codes.count <= items {
            let c = (0..<4).map { _ in rng.below(256) }
            if seen.insert(c).inserted { codes.append(c) }
        }
        return try ItemTokenizer(semanticIDs: codes)
    }

    /// Sampling `prompts × samples` paths with the KV cache: 45-token
    /// prompts, constrained to valid items, up to 10 items (41 tokens).
    public static func sampling(prompts: Int = 32, samples: Int = 16, repetitions: Int = 5) throws -> Result {
        let model = try referencePolicy()
        let tokenizer = try randomSemanticIDs(items: 3706)
        let decoding = PathDecoding(decoder: T5Decoder(model: model, maxPrompts: prompts, maxRows: prompts * samples,
                                                       encoderLength: 45, maxSteps: 41),
                                    tokenizer: tokenizer)
        var rng = SplitMix64(seed: 4)
        let batch = (0..<prompts).map { _ in
            tokenizer.encode((0..<11).map { _ in Int32(1 + rng.below(tokenizer.itemCount)) })
        }
        var options = DecodingOptions()
        options.maxItems = 10
        options.allowRepeats = true  // as the PyTorch baseline samples
        var tokens = 0
        let (ms, kernels) = measure(repetitions: repetitions) { rep in
            let paths = decoding.sample(prompts: batch, samplesPerPrompt: samples, options: options, stream: UInt64(rep))
            if rep > 0 { tokens += paths.reduce(0) { $0 + $1.tokens.count } }
        }
        var r = Result(name: "sample", shape: "\(prompts) prompts × \(samples) samples, encoder 45, constrained, ≤ 41 tokens",
                       medianMS: ms)
        r.extra = [("mean_tokens", Double(tokens) / Double(repetitions * prompts * samples)), ("peak_rss_mb", peakRSSMegabytes())]
        r.kernels = kernels
        return r
    }

    // MARK: Simulator

    /// Runs `body` `repetitions + 1` times (the first warms up) and returns
    /// the median milliseconds and the kernel profile per repetition.
    static func measure(repetitions: Int, _ body: (Int) throws -> Void) rethrows -> (Double, [(String, Double)]) {
        var totals: [Double] = []
        Kernels.profiling = ProcessInfo.processInfo.environment["PRORL_KERNEL_PROFILE"] == "1"
        defer { Kernels.profiling = false }
        for rep in 0...repetitions {
            if rep == 1 { Kernels.resetProfile() }
            let t0 = Date()
            try body(rep)
            if rep > 0 { totals.append(Date().timeIntervalSince(t0) * 1000) }
        }
        let kernels = Kernels.profile.map { ($0.key, $0.value.ms / Double(repetitions)) }.sorted { $0.1 > $1.1 }
        return (median(totals), kernels)
    }

    /// A simulator training step (the architecture's RecBole defaults) on
    /// `batch` sequences of `length` items over `items` items, with the
    /// last-position or the all-position loss.
    public static func simulatorTrainStep(architecture: String = SequenceArchitectures.standard.name,
                                          loss: SimulatorTraining.Loss, batch: Int = 256, length: Int = 50,
                                          items: Int = 3706, repetitions: Int = 5) throws -> Result {
        let model = try SequenceArchitectures.named(architecture).create(items + 1, SequenceModelOptions(), 1)
        var settings = SimulatorTraining()
        settings.loss = loss
        settings.batchSize = batch
        settings.precision = Kernels.precision
        let step = SequenceTrainingStep(model: model, maxBatch: batch, settings: settings)
        var rng = SplitMix64(seed: 8)
        let samples: [SequenceTrainingStep.Sample] = (0..<batch).map { _ in
            let s = (0...length).map { _ in Int32(1 + rng.below(items)) }
            return (Array(s.dropLast()), loss == .allPositions ? Array(s.dropFirst()) : [s[length]])
        }
        let (ms, kernels) = try measure(repetitions: repetitions) { rep in _ = try step(samples[...], index: UInt64(rep + 1)) }
        var r = Result(name: "simulator_train_step",
                       shape: "\(architecture), batch \(batch) × length \(length), \(items) items, \(loss.rawValue)-position loss",
                       medianMS: ms)
        r.extra = [("peak_rss_mb", peakRSSMegabytes())]
        r.kernels = kernels
        return r
    }

    /// Rewards (CTR, log p(target), rank per step) of `paths` paths of
    /// `pathItems` items after `historyItems`-item histories over `items`
    /// items, from one causal pass per path.
    public static func rewards(architecture: String = SequenceArchitectures.standard.name, paths: Int = 128,
                               historyItems: Int = 10, pathItems: Int = 10, items: Int = 3706,
                               repetitions: Int = 5) throws -> Result {
        let model = try SequenceArchitectures.named(architecture).create(items + 1, SequenceModelOptions(), 1)
        let scorer = try RewardModel(simulator: try Simulator(model: model, itemIDs: (0...items).map(String.init)), maxBatch: paths,
                                 maxPath: pathItems)
        var rng = SplitMix64(seed: 9)
        func draw(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32(1 + rng.below(items)) } }
        let requests = (0..<paths).map { _ in
            RewardModel.Request(history: draw(historyItems), path: draw(pathItems), target: draw(1)[0])
        }
        let (ms, kernels) = measure(repetitions: repetitions) { _ in _ = scorer.score(requests) }
        var r = Result(name: "rewards", shape: "\(architecture), \(paths) paths × \(pathItems) items after \(historyItems)-item histories, \(items) items",
                       medianMS: ms)
        r.kernels = kernels
        return r
    }

    // MARK: RL

    /// One RL step (sampling, rewards, policy and reference forward,
    /// backward, update) with `prompts × rollouts` rollouts on the reference
    /// configuration: T5 3+3 over 4-token semantic IDs of 3706 items, a
    /// simulator (the standard architecture) over the same items, 10-item histories. Weights are
    /// untrained, so most rollouts run to Lmax = 10 items (41 tokens): the
    /// longest case. `reuseSamplerActivations` off: the loss pass recomputes
    /// the decoder (``RLTrainer/reusesSamplerActivations``).
    public static func rlStep(prompts: Int = 8, rollouts: Int = 16, items: Int = 3706, reuseSamplerActivations: Bool = true,
                              repetitions: Int = 5) throws -> Result {
        var catalog = ItemCatalog()
        for i in 1...items { catalog.add(String(i)) }
        let tokenizer = try randomSemanticIDs(items: items)
        let policy = try Policy(tokenizer: tokenizer, itemIDs: catalog.rawIDs)
        let simulator = try Simulator(model: try SequenceArchitectures.standard.create(items + 1, SequenceModelOptions(), 1),
                                      itemIDs: catalog.rawIDs)
        var rng = SplitMix64(seed: 12)
        let tasks = (0..<(prompts * (repetitions + 1))).map { _ in
            ProactiveTask(user: nil, history: (0..<10).map { _ in Int32(1 + rng.below(items)) },
                          path: [Int32(1 + rng.below(items))], target: Int32(1 + rng.below(items)))
        }
        var settings = RLSettings()
        settings.precision = Kernels.precision  // the bench command's --precision
        settings.promptsPerStep = prompts
        settings.temperature = 1  // as the PyTorch baseline samples
        settings.allowRepeats = true
        settings.rollouts = rollouts
        settings.steps = repetitions + 1
        let trainer = try RLTrainer(policy: policy, simulator: simulator, catalog: catalog, train: tasks, settings: settings)
        trainer.reusesSamplerActivations = reuseSamplerActivations
        var phases: [String: [Double]] = [:], order: [String] = []
        var lengths = 0.0
        let (ms, kernels) = try measure(repetitions: repetitions) { rep in
            let log = try trainer.runStep()
            guard rep > 0 else { return }
            lengths += log["length"] ?? 0
            for (k, v) in log.phasesMS {
                if phases[k] == nil { order.append(k) }
                phases[k, default: []].append(v)
            }
        }
        var r = Result(name: "rl_step", shape: "\(prompts) prompts × \(rollouts) rollouts, T5 3+3 d128, 4-token semantic IDs, \(items) items"
                           + (reuseSamplerActivations ? "" : ", decoder recomputed"),
                       medianMS: ms)
        r.phasesMS = order.map { ($0, median(phases[$0]!)) }
        r.extra = [("mean_items", lengths / Double(repetitions)), ("peak_rss_mb", peakRSSMegabytes())]
        r.kernels = kernels
        return r
    }

    /// The gradient all-reduce of a data-parallel step: `floats` fp32
    /// values summed over the ranks of `collective`, in place (default: the
    /// 2,045,568 parameters of the reference policy, 8.2 MB). Reports the
    /// bytes per rank and the bus bandwidth 2(N−1)/N · bytes / time (what a
    /// ring all-reduce moves per rank).
    public static func allReduce(floats: Int = 2_045_568, collective: any Collective, repetitions: Int = 20) throws -> Result {
        let buffer = FloatBuffer(count: floats)
        for i in 0..<floats { buffer.flat[i] = Float(i % 7) * 0.5 }
        try collective.barrier()
        var times: [Double] = []
        for rep in 0...repetitions {
            try collective.barrier()
            let t0 = Date()
            try collective.allReduceSum(buffer.flat)
            if rep > 0 { times.append(Date().timeIntervalSince(t0) * 1000) }
        }
        // rank 0's median, the one every rank reports
        var ms = [median(times)]
        try ms.withUnsafeMutableBufferPointer { try collective.broadcast($0.baseAddress!, count: 8, root: 0) }
        let n = Double(collective.size), bytes = Double(floats) * 4
        var r = Result(name: "allreduce", shape: "\(floats) fp32 (\(String(format: "%.1f", bytes / 1e6)) MB), \(collective.size) ranks",
                       medianMS: ms[0])
        r.extra = [("ranks", n), ("bytes", bytes), ("bus_gb_per_s", 2 * (n - 1) / n * bytes / (ms[0] / 1000) / 1e9)]
        return r
    }
}
