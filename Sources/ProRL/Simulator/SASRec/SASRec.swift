import Foundation

/// SASRec as RecBole implements it: item + learned position embeddings,
/// LayerNorm, dropout, then post-LN transformer layers (attention with
/// q/k/v/dense projections and biases, scores scaled by 1/√d, causal and
/// key-padding masks; a GELU feed-forward), all with RecBole's parameter
/// names so checkpoints move between the two.
public struct SASRecConfig: SequenceModelConfig, Sendable, Equatable {
    /// Rows of the item table: items + 1 (row 0 is padding).
    public var itemVocabulary: Int
    public var hidden = 64
    public var heads = 2
    public var inner = 256
    public var layers = 2
    public var maxLength = 50
    public var hiddenDropout: Float = 0.5
    public var attentionDropout: Float = 0.5
    public var layerNormEps: Float = 1e-12
    public var initializerRange: Float = 0.02

    public init(itemVocabulary: Int) { self.itemVocabulary = itemVocabulary }

    public var headWidth: Int { hidden / heads }

    public func validate() throws {
        func bad(_ m: String) -> DataError { .setting("simulator config", m) }
        for (name, value, range) in [("itemVocabulary", itemVocabulary, 2...(1 << 26)), ("hidden", hidden, 1...4096),
                                     ("heads", heads, 1...256), ("inner", inner, 1...65_536), ("layers", layers, 1...64),
                                     ("maxLength", maxLength, 2...4096)] where !range.contains(value) {
            throw bad("\(name): expected \(range.lowerBound)...\(range.upperBound), found \(value)")
        }
        guard hidden % heads == 0 else { throw bad("hidden \(hidden) must be a multiple of heads \(heads)") }
        guard (0..<1).contains(hiddenDropout), (0..<1).contains(attentionDropout) else { throw bad("dropout must be in [0, 1)") }
        guard layerNormEps > 0, layerNormEps <= 1 else { throw bad("layerNormEps: expected a value in (0, 1], found \(layerNormEps)") }
        guard initializerRange >= 0, initializerRange.isFinite else { throw bad("initializerRange must be ≥ 0, found \(initializerRange)") }
    }
}

public final class SASRec: SequenceModel, @unchecked Sendable {
    public static let architecture = "sasrec"
    public let config: SASRecConfig
    public let store: ParameterStore

    struct Layer {
        let q, qb, k, kb, v, vb, o, ob, ln1w, ln1b, f1, f1b, f2, f2b, ln2w, ln2b: Int
    }
    let itemEmbedding, positionEmbedding, lnWeight, lnBias: Int
    let layers: [Layer]

    /// The parameter names and shapes, in arena order (q, k, v weights and
    /// their biases adjacent so each can be viewed as one fused projection).
    public static func layout(_ c: SASRecConfig) -> [(name: String, shape: [Int])] {
        var out: [(String, [Int])] = [
            ("item_embedding.weight", [c.itemVocabulary, c.hidden]),
            ("position_embedding.weight", [c.maxLength, c.hidden]),
            ("LayerNorm.weight", [c.hidden]),
            ("LayerNorm.bias", [c.hidden]),
        ]
        for l in 0..<c.layers {
            let a = "trm_encoder.layer.\(l).multi_head_attention"
            let f = "trm_encoder.layer.\(l).feed_forward"
            out += [
                ("\(a).query.weight", [c.hidden, c.hidden]), ("\(a).key.weight", [c.hidden, c.hidden]),
                ("\(a).value.weight", [c.hidden, c.hidden]),
                ("\(a).query.bias", [c.hidden]), ("\(a).key.bias", [c.hidden]), ("\(a).value.bias", [c.hidden]),
                ("\(a).dense.weight", [c.hidden, c.hidden]), ("\(a).dense.bias", [c.hidden]),
                ("\(a).LayerNorm.weight", [c.hidden]), ("\(a).LayerNorm.bias", [c.hidden]),
                ("\(f).dense_1.weight", [c.inner, c.hidden]), ("\(f).dense_1.bias", [c.inner]),
                ("\(f).dense_2.weight", [c.hidden, c.inner]), ("\(f).dense_2.bias", [c.hidden]),
                ("\(f).LayerNorm.weight", [c.hidden]), ("\(f).LayerNorm.bias", [c.hidden]),
            ]
        }
        return out
    }

    /// A model initialised as RecBole does: linear and embedding weights
    /// normal(0, initializerRange) (the padding row included), biases 0,
    /// LayerNorm weight 1 and bias 0.
    public init(config: SASRecConfig, seed: UInt64 = 2020) throws {
        try config.validate()
        self.config = config
        store = ParameterStore(layout: SASRec.layout(config))
        itemEmbedding = store.id("item_embedding.weight")
        positionEmbedding = store.id("position_embedding.weight")
        lnWeight = store.id("LayerNorm.weight")
        lnBias = store.id("LayerNorm.bias")
        layers = (0..<config.layers).map { [store] l in
            let a = "trm_encoder.layer.\(l).multi_head_attention", f = "trm_encoder.layer.\(l).feed_forward"
            return Layer(q: store.id("\(a).query.weight"), qb: store.id("\(a).query.bias"),
                         k: store.id("\(a).key.weight"), kb: store.id("\(a).key.bias"),
                         v: store.id("\(a).value.weight"), vb: store.id("\(a).value.bias"),
                         o: store.id("\(a).dense.weight"), ob: store.id("\(a).dense.bias"),
                         ln1w: store.id("\(a).LayerNorm.weight"), ln1b: store.id("\(a).LayerNorm.bias"),
                         f1: store.id("\(f).dense_1.weight"), f1b: store.id("\(f).dense_1.bias"),
                         f2: store.id("\(f).dense_2.weight"), f2b: store.id("\(f).dense_2.bias"),
                         ln2w: store.id("\(f).LayerNorm.weight"), ln2b: store.id("\(f).LayerNorm.bias"))
        }
        var g = GaussianSampler(seed: seed)
        for e in store.entries.indices {
            let name = store.entries[e].name
            let t = store.value(e)
            if name.hasSuffix("LayerNorm.weight") { t.fill(1) }
            else if name.hasSuffix(".bias") { t.zero() }
            else { g.fill(t, std: Double(config.initializerRange)) }
        }
    }

    public var itemTableID: Int { itemEmbedding }
    public var maxLength: Int { config.maxLength }
    public func encodedConfig() throws -> String { try stableJSON(config) }
    public func makePass(maxBatch: Int) -> any SequencePass { SASRecPass(model: self, maxBatch: maxBatch) }
}

