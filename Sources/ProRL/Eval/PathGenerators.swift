import Foundation

/// Candidate paths for tasks (`[task][candidate][item]`, best first): the
/// policy's beam search, and the non-learned baselines. Baseline paths are
/// as long as the task's reference path (1…Lmax items) and never repeat an
/// item of the history or of the path.
public enum PathGenerators {
    /// Beam search with `beams` beams per task, batched by `batch` prompts
    /// (DESIGN §2.8; constrained to valid items unless `options` say not).
    public static func beams(policy: Policy, tasks: [ProactiveTask], beams: Int, options: DecodingOptions,
                             batch: Int = 32) -> [[[Int32?]]] {
        scoredBeams(policy: policy, tasks: tasks, beams: beams, options: options, batch: batch).map { $0.map(\.items) }
    }

    /// The same with each path's beam score (log-prob per generated token).
    public static func scoredBeams(policy: Policy, tasks: [ProactiveTask], beams: Int, options: DecodingOptions,
                                   batch: Int = 32) -> [[(items: [Int32?], score: Float)]] {
        let prompts = tasks.map { policy.encoderTokens(history: $0.history, target: $0.target) }
        let longest = prompts.map(\.count).max() ?? 1
        let size = min(batch, max(tasks.count, 1))
        let decoder = T5Decoder(model: policy.model, maxPrompts: size, maxRows: size * beams, encoderLength: longest,
                                maxSteps: policy.decoderLength(maxItems: options.maxItems))
        let decoding = PathDecoding(decoder: decoder, tokenizer: policy.tokenizer)
        var out: [[(items: [Int32?], score: Float)]] = []
        var start = 0
        while start < tasks.count {
            let end = min(start + size, tasks.count)
            for list in decoding.beamSearch(prompts: Array(prompts[start..<end]), beams: beams, options: options) {
                out.append(list.map {
                    (Rollout(tokens: $0.tokens, tokenizer: policy.tokenizer, maxItems: options.maxItems).items, $0.score)
                })
            }
            start = end
        }
        return out
    }

    static func length(_ task: ProactiveTask, maxItems: Int) -> Int { min(max(task.path.count, 1), maxItems) }

    /// `samples` uniformly random paths per task.
    public static func random(tasks: [ProactiveTask], itemCount: Int, samples: Int, maxItems: Int, seed: UInt64) -> [[[Int32?]]] {
        tasks.enumerated().map { i, task in
            var rng = SplitMix64(seed: seed &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15)
            return (0..<samples).map { _ in
                var seen = Set(task.history), path: [Int32?] = []
                while path.count < length(task, maxItems: maxItems) && seen.count < itemCount {
                    let item = Int32(1 + rng.below(itemCount))
                    if seen.insert(item).inserted { path.append(item) }
                }
                return path
            }
        }
    }

    /// The most popular items (by `popularity[item]`, ties by id) the user
    /// has not seen.
    public static func popular(tasks: [ProactiveTask], popularity: [Int], maxItems: Int) -> [[[Int32?]]] {
        let order = (1..<popularity.count).sorted { popularity[$0] != popularity[$1] ? popularity[$0] > popularity[$1] : $0 < $1 }
        return tasks.map { task in
            let seen = Set(task.history)
            let path = order.lazy.map { Int32($0) }.filter { !seen.contains($0) && $0 != task.target }
                .prefix(length(task, maxItems: maxItems))
            return [path.map { Optional($0) }]
        }
    }

    /// Greedy guidance (the IPG idea): at each step, among the `candidates`
    /// items the simulator finds most acceptable after the current prefix,
    /// take the one that most raises p(target).
    public static func greedy(tasks: [ProactiveTask], evaluator: PathEvaluator, candidates n: Int = 20,
                              maxItems: Int) -> [[[Int32?]]] {
        let scorer = evaluator.scorer, sim = scorer.rewards.simulator
        let V = sim.model.itemVocabulary
        var catalogOf = [Int32](repeating: 0, count: V)
        for (item, row) in scorer.rows.enumerated() where item > 0 { if let row { catalogOf[Int(row)] = Int32(item) } }
        let views = tasks.map { scorer.simulatorView(history: $0.history, target: $0.target)! }
        var paths = tasks.map { _ in [Int32]() }  // catalogue ids
        let batch = 64
        let pass = sim.model.makePass(maxBatch: batch)
        let logits = FloatBuffer(count: batch * V)
        for step in 0..<maxItems {
            let active = tasks.indices.filter { length(tasks[$0], maxItems: maxItems) > step }
            if active.isEmpty { break }
            // the n most acceptable unseen items after each active prefix
            var choices: [[Int32]] = []  // simulator rows
            var start = 0
            while start < active.count {
                let chunk = active[start..<min(start + batch, active.count)]
                let seqs = chunk.map { t in views[t].history + paths[t].map { scorer.rows[Int($0)]! } }
                let b = SequenceBatch(seqs, maxLength: sim.model.maxLength)
                let last = pass.forward(b, lastOnly: true)
                let z = logits.tensor(rows: chunk.count, cols: V)
                Kernels.scoreLogits(states: last, items: sim.model.items, into: z)
                for (i, t) in chunk.enumerated() {
                    let seen = Set(tasks[t].history + paths[t] + [tasks[t].target])
                    let row = z.base + i * V
                    let order = (1..<V).filter { catalogOf[$0] != 0 && !seen.contains(catalogOf[$0]) }
                        .sorted { row[$0] != row[$1] ? row[$0] > row[$1] : $0 < $1 }
                    choices.append(order.prefix(n).map { Int32($0) })
                }
                start += batch
            }
            // p(target) after each candidate: one pass per candidate
            var requests: [RewardModel.Request] = []
            for (i, t) in active.enumerated() {
                let prefix = views[t].history + paths[t].map { scorer.rows[Int($0)]! }
                for c in choices[i] { requests.append(.init(history: prefix, path: [c], target: views[t].target)) }
            }
            let steps = scorer.rewards.score(requests)
            var k = 0
            for (i, t) in active.enumerated() {
                var best: Int32? = nil, bestLogP = -Float.infinity
                for c in choices[i] {
                    let lp = steps[k].logProb[1]
                    if lp > bestLogP { bestLogP = lp; best = c }
                    k += 1
                }
                if let best { paths[t].append(catalogOf[Int(best)]) }
            }
        }
        return paths.map { [$0.map { Optional($0) }] }
    }
}
