import Foundation

/// GRU4Rec as RecBole 1.2.1 implements it: item embedding → dropout →
/// GRU without biases (`layers` stacked, gates r|z|n as in PyTorch) → a
/// dense layer back to the embedding width; items are scored against the
/// item table. Parameter names are RecBole's, so checkpoints move between
/// the two.
public struct GRU4RecConfig: SequenceModelConfig, Sendable, Equatable {
    /// Rows of the item table: items + 1 (row 0 is padding).
    public var itemVocabulary: Int
    public var embedding = 64
    public var hidden = 128
    public var layers = 1
    /// Longest sequence read (RecBole's MAX_ITEM_LIST_LENGTH).
    public var maxLength = 50
    /// Dropout on the item embeddings.
    public var dropout: Float = 0.3

    public init(itemVocabulary: Int) { self.itemVocabulary = itemVocabulary }

    public func validate() throws {
        func bad(_ m: String) -> DataError { .setting("simulator config", m) }
        for (name, value, range) in [("itemVocabulary", itemVocabulary, 2...(1 << 26)), ("embedding", embedding, 1...4096),
                                     ("hidden", hidden, 1...4096), ("layers", layers, 1...64),
                                     ("maxLength", maxLength, 2...4096)] where !range.contains(value) {
            throw bad("\(name): expected \(range.lowerBound)...\(range.upperBound), found \(value)")
        }
        guard (0..<1).contains(dropout) else { throw bad("dropout must be in [0, 1)") }
    }
}

public final class GRU4Rec: SequenceModel, @unchecked Sendable {
    public static let architecture = "gru4rec"
    public let config: GRU4RecConfig
    public let store: ParameterStore
    let itemEmbedding: Int, dense: Int, denseBias: Int
    /// Per layer: W_ih `[3H, in]` and W_hh `[3H, H]`.
    let inputWeights: [Int], recurrentWeights: [Int]

    public static func layout(_ c: GRU4RecConfig) -> [(name: String, shape: [Int])] {
        var out: [(String, [Int])] = [("item_embedding.weight", [c.itemVocabulary, c.embedding])]
        for l in 0..<c.layers {
            out.append(("gru_layers.weight_ih_l\(l)", [3 * c.hidden, l == 0 ? c.embedding : c.hidden]))
            out.append(("gru_layers.weight_hh_l\(l)", [3 * c.hidden, c.hidden]))
        }
        out += [("dense.weight", [c.embedding, c.hidden]), ("dense.bias", [c.embedding])]
        return out
    }

    /// A model initialised as RecBole does: the item table xavier-normal
    /// (padding row included), the first GRU layer's weights
    /// xavier-uniform, later layers PyTorch's GRU default U(±1/√H), the
    /// dense layer PyTorch's Linear default (weight and bias U(±1/√H)).
    public init(config: GRU4RecConfig, seed: UInt64 = 2020) throws {
        try config.validate()
        self.config = config
        store = ParameterStore(layout: GRU4Rec.layout(config))
        itemEmbedding = store.id("item_embedding.weight")
        dense = store.id("dense.weight")
        denseBias = store.id("dense.bias")
        inputWeights = (0..<config.layers).map { [store] in store.id("gru_layers.weight_ih_l\($0)") }
        recurrentWeights = (0..<config.layers).map { [store] in store.id("gru_layers.weight_hh_l\($0)") }
        var rng = SplitMix64(seed: seed)
        var gauss = GaussianSampler(seed: seed ^ 0x9E37)
        func uniform(_ t: Tensor, bound: Double) {
            for i in 0..<t.count { t.base[i] = Float((2 * rng.nextUnit() - 1) * bound) }
        }
        func xavierBound(_ t: Tensor) -> Double { (6.0 / Double(t.rows + t.cols)).squareRoot() }
        let table = store.value(itemEmbedding)
        gauss.fill(table, std: (2.0 / Double(table.rows + table.cols)).squareRoot())
        let h = 1 / Double(config.hidden).squareRoot()
        for l in 0..<config.layers {
            let wi = store.value(inputWeights[l]), wh = store.value(recurrentWeights[l])
            uniform(wi, bound: l == 0 ? xavierBound(wi) : h)
            uniform(wh, bound: l == 0 ? xavierBound(wh) : h)
        }
        uniform(store.value(dense), bound: h)
        uniform(store.value(denseBias), bound: h)
    }

    public var itemTableID: Int { itemEmbedding }
    public var maxLength: Int { config.maxLength }
    public func encodedConfig() throws -> String { try stableJSON(config) }
    public func makePass(maxBatch: Int) -> any SequencePass { GRU4RecPass(model: self, maxBatch: maxBatch) }

    /// GRU4Rec in the registry: `--embedding --hidden --layers --max-length
    /// --dropout`, and RecBole state_dicts recognised by `gru_layers.*`.
    static let registration = SequenceArchitecture(
        name: architecture,
        summary: "GRU4Rec (recurrent; RecBole: embedding 64, 1-layer GRU of 128, dropout 0.3)",
        create: { items, o, seed in
            try o.check(allowed: ["embedding", "hidden", "layers", "max-length", "dropout"], architecture: architecture)
            var c = GRU4RecConfig(itemVocabulary: items)
            c.embedding = o.embedding ?? c.embedding
            c.hidden = o.hidden ?? c.hidden
            c.layers = o.layers ?? c.layers
            c.maxLength = o.maxLength ?? c.maxLength
            c.dropout = o.dropout ?? c.dropout
            return try GRU4Rec(config: c, seed: seed)
        },
        decode: { text, shapes in
            try GRU4Rec(config: SequenceArchitectures.decodeConfig(text, as: GRU4RecConfig.self, architecture: "GRU4Rec",
                                                                   shapes: shapes, layout: GRU4Rec.layout))
        },
        infer: { shapes in
            guard shapes.keys.contains(where: { $0.hasPrefix("gru_layers.") }) else { return nil }
            guard let table = shapes["item_embedding.weight"], table.count == 2,
                  let wh = shapes["gru_layers.weight_hh_l0"], wh.count == 2 else {
                throw DataError(file: "state_dict", "has gru_layers.* but no 2-d item_embedding.weight and gru_layers.weight_hh_l0")
            }
            if shapes.keys.contains(where: { $0.hasPrefix("gru_layers.bias") }) {
                throw DataError(file: "state_dict", "has GRU biases; RecBole's GRU4Rec (bias=False) has none")
            }
            var c = GRU4RecConfig(itemVocabulary: table[0])
            c.embedding = table[1]
            c.hidden = wh[1]
            c.layers = shapes.keys.filter { $0.hasPrefix("gru_layers.weight_hh_l") }.count
            return try GRU4Rec(config: c)
        })
}
