import Foundation
import ProRL
import ProRLTestSupport
import Testing

@Suite("Reward API (one causal pass per path)")
struct RewardModelTests {
    /// A small simulator of each architecture, weights larger than their
    /// init so scores spread out.
    static func simulator(_ architecture: String) throws -> Simulator {
        var o = SequenceModelOptions()
        o.hidden = 32
        o.maxLength = 24
        if architecture == "sasrec" { o.inner = 48 } else { o.embedding = 16 }
        let model = try SequenceArchitectures.named(architecture).create(60, o, 11)
        var g = GaussianSampler(seed: 5)
        g.fill(model.store.allValues, std: 0.3)
        for e in model.store.entries where e.name.hasSuffix("LayerNorm.weight") { model.store.value(model.store.id(e.name)).fill(1) }
        return try Simulator(model: model, itemIDs: ["[PAD]"] + (1..<60).map(String.init))
    }

    static func requests(count: Int, seed: UInt64) -> [RewardModel.Request] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in
            let h = (0..<(1 + rng.below(10))).map { _ in Int32(1 + rng.below(59)) }
            let p = (0..<rng.below(11)).map { _ in Int32(1 + rng.below(59)) }
            return RewardModel.Request(history: h, path: p, target: Int32(1 + rng.below(59)))
        }
    }

    @Test("one pass over history ⊕ path equals a separate pass per prefix", arguments: SequenceArchitectures.names)
    func onePassEqualsPrefixPasses(architecture: String) throws {
        let sim = try Self.simulator(architecture)
        let scorer = try RewardModel(simulator: sim, maxBatch: 16)
        let requests = Self.requests(count: 40, seed: 2)
        let steps = scorer.score(requests)
        let m = sim.model
        let single = m.makePass(maxBatch: 1)
        let state = FloatBuffer(count: m.width), lse = FloatBuffer(count: 1), ts = FloatBuffer(count: 1)
        var rank: Int32 = 0
        for (r, s) in zip(requests, steps) {
            #expect(s.logProb.count == r.path.count + 1 && s.rank.count == r.path.count + 1 && s.ctr.count == r.path.count)
            var previous: [Float] = []
            for k in 0...r.path.count {
                let seq = r.history + r.path.prefix(k)
                let out = single.forward(SequenceBatch([seq], maxLength: m.maxLength))
                state.flat.copy(from: out.row(seq.count - 1))
                var target = r.target - 1
                Kernels.scoreStatistics(states: state.tensor(rows: 1, cols: m.width), items: m.items.rows(1, m.itemVocabulary - 1),
                                        targets: &target, logSumExp: lse.flat, targetScore: ts.flat, rank: &rank)
                #expect(s.logProb[k] == ts[0] - lse[0], "log p(T | prefix \(k)): one pass \(s.logProb[k]) vs separate \(ts[0] - lse[0])")
                #expect(s.rank[k] == rank, "rank(T | prefix \(k)): one pass \(s.rank[k]) vs separate \(rank)")
                if k >= 1 {
                    let item = sim.model.items.row(Int(r.path[k - 1])).toArray()
                    let dot = zip(previous, item).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                    let ctr = 1 / (1 + exp(-dot))
                    #expect(abs(Double(s.ctr[k - 1]) - ctr) <= 1e-5, "CTR of step \(k): \(s.ctr[k - 1]) vs \(ctr)")
                }
                previous = state.flat.toArray()
            }
        }
    }

    @Test("step IoI and IoR telescope to the path's; log p and the target's score match a double reference", arguments: SequenceArchitectures.names)
    func telescopingAndDoubleReference(architecture: String) throws {
        let sim = try Self.simulator(architecture)
        let scorer = try RewardModel(simulator: sim, maxBatch: 8)
        let requests = Self.requests(count: 20, seed: 9)
        let steps = scorer.score(requests)
        let m = sim.model
        for (r, s) in zip(requests, steps) where !r.path.isEmpty {
            let ioi = (1...r.path.count).reduce(Float(0)) { $0 + s.ioi(step: $1) }
            #expect(abs(ioi - s.ioi) <= 1e-4 * max(1, abs(s.ioi)), "Σ step IoI \(ioi) vs path IoI \(s.ioi)")
            let ior = (1...r.path.count).reduce(Float(0)) { $0 + s.ior(step: $1) }
            #expect(ior == s.ior, "Σ step IoR \(ior) vs path IoR \(s.ior)")
        }
        // the final log-probability against a double-precision softmax
        let single = m.makePass(maxBatch: 1)
        for (r, s) in zip(requests, steps).prefix(8) {
            let seq = r.history + r.path
            let out = single.forward(SequenceBatch([seq], maxLength: m.maxLength))
            let h = out.row(seq.count - 1).toArray()
            let scores = (1..<m.itemVocabulary).map { v in zip(h, m.items.row(v).toArray()).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }
            let top = scores.max()!
            let lse = top + log(scores.reduce(0) { $0 + exp($1 - top) })
            let expected = scores[Int(r.target) - 1] - lse
            #expect(abs(Double(s.logProb.last!) - expected) <= 1e-4, "log p(T|H⊕P) \(s.logProb.last!) vs double \(expected)")
            let score = scores[Int(r.target) - 1]
            #expect(abs(Double(s.targetScore.last!) - score) <= 1e-4 * max(1, abs(score)),
                    "u(H⊕P)·e(T) \(s.targetScore.last!) vs double \(score)")
            // the acceptance gains telescope to the change of σ(score) over the path
            let gains = (1...max(r.path.count, 1)).reduce(Float(0)) { $0 + (r.path.isEmpty ? 0 : s.acceptanceGain(step: $1)) }
            let sigma = { (x: Float) in 1 / (1 + expf(-x)) }
            #expect(abs(gains - (sigma(s.targetScore.last!) - sigma(s.targetScore[0]))) <= 1e-5, "Σ acceptance gains \(gains)")
        }
    }
}
