import Foundation

/// One path for one (history, target), step by step: what the simulator
/// thinks of each item (its acceptance, and p(target) and its rank after it)
/// and how likely the policy finds it.
public struct PathExplanation: Sendable, Codable {
    public struct Step: Sendable, Codable {
        /// Dense item id (nil at step 0, the history alone).
        public var item: Int32?
        public var title: String
        public var ctr: Double?
        public var logProbTarget: Double
        public var rankTarget: Int
        /// log p of the item under the policy (sum over its tokens).
        public var policyLogProb: Double?
    }

    public var steps: [Step]
    public var target: Int32
    public var targetTitle: String
    /// Beam search score (log-prob per generated token), when generated.
    public var beamScore: Double?
    /// The policy's input and output tokens for this path (encoder: history,
    /// target, EOS; decoder targets: the path's tokens, EOS).
    public var encoderTokens: [Int32] = []
    public var decoderTokens: [Int32] = []

    public var ioi: Double { steps.last!.logProbTarget - steps.first!.logProbTarget }
    public var ior: Int { steps.first!.rankTarget - steps.last!.rankTarget }
    public var meanCTR: Double {
        let c = steps.compactMap(\.ctr)
        return c.isEmpty ? 0 : c.reduce(0, +) / Double(c.count)
    }

    /// Scores `path` (dense ids) after `history` toward `target`.
    public static func explain(path: [Int32], history: [Int32], target: Int32, policy: Policy, simulator: Simulator,
                               catalog: ItemCatalog, beamScore: Double? = nil) throws -> PathExplanation {
        let rows = simulator.rows(for: catalog)
        func row(_ item: Int32) throws -> Int32 {
            guard Int(item) < rows.count, let r = rows[Int(item)] else {
                throw DataError(file: "simulator", "does not know item \"\(catalog.raw(item))\"")
            }
            return r
        }
        let h = history.compactMap { try? row($0) }
        guard !h.isEmpty else { throw DataError(file: "simulator", "knows no item of the history") }
        let steps = try RewardModel(simulator: simulator, maxBatch: 1, maxPath: max(path.count, 1))
            .score([.init(history: h, path: try path.map(row), target: try row(target))])[0]
        // the policy's log-prob of each item, from one teacher-forced pass
        let tokens = policy.decoderTargets(path: path)
        let encoder = policy.encoderTokens(history: history, target: target)
        let pass = T5Pass(model: policy.model, capacity: .init(prompts: 1, encoderLength: encoder.count, sequences: 1,
                                                              decoderLength: tokens.count))
        pass.forward(PolicyBatch(encoder: [encoder], targets: [tokens], startToken: policy.model.config.decoderStartToken),
                     training: false)
        let logp = pass.tokenLogProbs
        let k = policy.tokenizer.tokensPerItem
        var out = [Step(item: nil, title: "(history)", ctr: nil, logProbTarget: Double(steps.logProb[0]),
                        rankTarget: Int(steps.rank[0]), policyLogProb: nil)]
        for (i, item) in path.enumerated() {
            out.append(Step(item: item, title: catalog.displayName(item), ctr: Double(steps.ctr[i]),
                            logProbTarget: Double(steps.logProb[i + 1]), rankTarget: Int(steps.rank[i + 1]),
                            policyLogProb: Double(logp[(i * k)..<((i + 1) * k)].reduce(0, +))))
        }
        return PathExplanation(steps: out, target: target, targetTitle: catalog.displayName(target), beamScore: beamScore,
                               encoderTokens: encoder, decoderTokens: tokens)
    }

    /// A readable table with the item's attributes.
    public func text(catalog: ItemCatalog) -> String {
        func attrs(_ item: Int32) -> String {
            let names = catalog.attributes[Int(item)].map { catalog.attributeNames[Int($0)] }
            return names.isEmpty ? "" : " [" + names.joined(separator: "|") + "]"
        }
        var lines = ["  step  item" + String(repeating: " ", count: 44) + "CTR    p(target)   rank   log p(policy)"]
        for (i, s) in steps.enumerated() {
            let name = (s.item.map { s.title + attrs($0) } ?? s.title)
            let padded = name.count > 46 ? String(name.prefix(45)) + "…" : name.padding(toLength: 46, withPad: " ", startingAt: 0)
            lines.append(String(format: "  %4d  %@  %@  %.3e  %5d  %@", i, padded,
                                s.ctr.map { String(format: "%.3f", $0) } ?? "     ", exp(s.logProbTarget), s.rankTarget,
                                s.policyLogProb.map { String(format: "%8.3f", $0) } ?? ""))
        }
        lines.append("  → target: \(targetTitle)\(attrs(target))")
        lines.append(String(format: "  IoI %+.4f   IoR %+d   mean CTR %.3f", ioi, ior, meanCTR))
        return lines.joined(separator: "\n")
    }
}
