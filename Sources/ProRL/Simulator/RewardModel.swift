/// The simulator's opinion of guidance paths, step by step, from ONE causal
/// forward pass over `history ⊕ path` per path.
///
/// The simulator is causal, so the hidden state at position t of that pass is the
/// user state after the prefix ending at t. For a path i₁…i_K toward T:
/// - `logProb[k]` = log p(T | history ⊕ i₁…i_k), k = 0…K (k = 0: before
///   the path), p a softmax over every item (padding excluded);
/// - `rank[k]` = 1 + the number of items scored strictly above T there;
/// - `ctr[k−1]` = σ(u(history ⊕ i₁…i_{k−1}) · e(i_k)), k = 1…K;
/// - `targetScore[k]` = u(history ⊕ i₁…i_k) · e(T): σ of it is the
///   target's own acceptance, as `ctr` is a path item's.
/// The states of all prefixes are gathered and scored by the fused kernel
/// (log-sum-exp, target score, rank) — no `[B, V]` matrix.
public final class RewardModel: @unchecked Sendable {
    /// One path to score: items are rows of the simulator's item table.
    public struct Request: Sendable, Equatable {
        public var history: [Int32]
        public var path: [Int32]
        public var target: Int32
        public init(history: [Int32], path: [Int32], target: Int32) {
            self.history = history
            self.path = path
            self.target = target
        }
    }

    /// Step values of one path (see the type's description).
    public struct Steps: Sendable, Equatable {
        public var ctr: [Float]
        public var logProb: [Float]
        public var rank: [Int32]
        public var targetScore: [Float]

        /// Step k's increase of interest, log p(T|…i_k) − log p(T|…i_{k−1}).
        public func ioi(step k: Int) -> Float { logProb[k] - logProb[k - 1] }
        /// Step k's increase of the target's acceptance, σ(s_k) − σ(s_{k−1})
        /// of its scores (``InterestMeasure/acceptance``).
        public func acceptanceGain(step k: Int) -> Float { sigmoid(targetScore[k]) - sigmoid(targetScore[k - 1]) }
        private func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }
        /// Step k's rank improvement.
        public func ior(step k: Int) -> Float { Float(rank[k - 1] - rank[k]) }
        /// Whole-path IoI (the steps telescope to it).
        public var ioi: Float { logProb[logProb.count - 1] - logProb[0] }
        /// Whole-path IoR.
        public var ior: Float { Float(rank[0] - rank[rank.count - 1]) }
        /// Mean acceptance of the path's items.
        public var meanCTR: Float { ctr.isEmpty ? 0 : ctr.reduce(0, +) / Float(ctr.count) }
    }

    public let simulator: Simulator
    public let maxBatch: Int
    public let maxPath: Int
    private let pass: any SequencePass
    private let states: FloatBuffer, lse: FloatBuffer, score: FloatBuffer, ctrScores: FloatBuffer
    private let targets: Int32Buffer, ranks: Int32Buffer, pairIDs: Int32Buffer
    private let ctrStates: FloatBuffer

    /// A scorer for up to `maxBatch` paths of up to `maxPath` items; a
    /// path must leave room for at least one history item in what the
    /// simulator reads (`maxPath` < its maxLength).
    public init(simulator: Simulator, maxBatch: Int, maxPath: Int = 10) throws {
        guard maxPath >= 1, maxPath < simulator.model.maxLength else {
            throw DataError(file: "simulator", "paths of up to \(maxPath) items: the simulator reads \(simulator.model.maxLength) "
                            + "items, so at most \(simulator.model.maxLength - 1) fit after a history (lower --max-items)")
        }
        guard maxBatch >= 1 else { throw DataError(file: "simulator", "a batch of \(maxBatch) paths") }
        self.simulator = simulator
        self.maxBatch = maxBatch
        self.maxPath = maxPath
        let width = simulator.model.width
        pass = simulator.model.makePass(maxBatch: maxBatch)
        let rows = maxBatch * (maxPath + 1)
        states = FloatBuffer(count: rows * width)
        ctrStates = FloatBuffer(count: rows * width)
        lse = FloatBuffer(count: rows)
        score = FloatBuffer(count: rows)
        ctrScores = FloatBuffer(count: rows)
        targets = Int32Buffer(capacity: rows)
        ranks = Int32Buffer(capacity: rows)
        pairIDs = Int32Buffer(capacity: rows)
    }

    /// Step values of every request, in order. Sequences longer than the
    /// simulator's `maxLength` keep their last items (history first trimmed).
    public func score(_ requests: [Request]) -> [Steps] {
        var out: [Steps] = []
        out.reserveCapacity(requests.count)
        var start = 0
        while start < requests.count {
            let end = min(start + maxBatch, requests.count)
            out += scoreBatch(requests[start..<end])
            start = end
        }
        return out
    }

    private func scoreBatch(_ requests: ArraySlice<Request>) -> [Steps] {
        let model = simulator.model
        let H = model.width, V = model.itemVocabulary, maxLength = model.maxLength
        var sequences: [[Int32]] = [], historyLength: [Int] = []
        for r in requests {
            precondition(r.path.count <= maxPath, "path of \(r.path.count) items (scorer takes \(maxPath))")
            precondition(!r.history.isEmpty, "a request needs a history (the state before the path)")
            let room = maxLength - r.path.count
            precondition(room >= 1, "path longer than the simulator's maximum length")
            let h = Array(r.history.suffix(room))
            sequences.append(h + r.path)
            historyLength.append(h.count)
        }
        let batch = SequenceBatch(sequences, maxLength: maxLength)
        let all = pass.forward(batch)
        // gather the state after each prefix: position h−1+k for k = 0…K
        var n = 0, pairs = 0
        let S = states.tensor(rows: maxBatch * (maxPath + 1), cols: H)
        let P = ctrStates.tensor(rows: maxBatch * (maxPath + 1), cols: H)
        for (b, r) in requests.enumerated() {
            let first = b * batch.length + historyLength[b] - 1
            for k in 0...r.path.count {
                S.row(n).copy(from: all.row(first + k))
                targets[n] = r.target - 1  // the padding row is not in the softmax
                n += 1
                if k >= 1 {
                    // acceptance of item k: the state before it
                    P.row(pairs).copy(from: all.row(first + k - 1))
                    pairIDs[pairs] = r.path[k - 1]
                    pairs += 1
                }
            }
        }
        let items = model.items.rows(1, V - 1)
        Kernels.scoreStatistics(states: S.rows(0, n), items: items, targets: targets.base,
                                logSumExp: lse.tensor(rows: n, cols: 1), targetScore: score.tensor(rows: n, cols: 1),
                                rank: ranks.base)
        Kernels.scorePairs(states: P.rows(0, pairs), items: model.items, ids: pairIDs.base,
                           into: ctrScores.tensor(rows: pairs, cols: 1))
        var out: [Steps] = []
        var i = 0, j = 0
        for r in requests {
            var steps = Steps(ctr: [], logProb: [], rank: [], targetScore: [])
            for _ in 0...r.path.count {
                steps.logProb.append(score.base[i] - lse.base[i])
                steps.targetScore.append(score.base[i])
                steps.rank.append(ranks[i])
                i += 1
            }
            for _ in 0..<r.path.count {
                steps.ctr.append(1 / (1 + expf(-ctrScores.base[j])))
                j += 1
            }
            out.append(steps)
        }
        return out
    }
}

import Foundation
