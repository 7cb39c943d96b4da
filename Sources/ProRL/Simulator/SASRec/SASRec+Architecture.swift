import Foundation

extension SASRec {
    /// SASRec in the registry: `--hidden --heads --inner --layers
    /// --max-length --dropout` (hidden and attention dropout alike), and
    /// RecBole state_dicts recognised by `trm_encoder.*`.
    static let registration = SequenceArchitecture(
        name: architecture,
        summary: "SASRec (self-attention; RecBole: 2 layers, hidden 64, 2 heads, inner 256, dropout 0.5)",
        create: { items, o, seed in
            try o.check(allowed: ["hidden", "heads", "inner", "layers", "max-length", "dropout"], architecture: architecture)
            var c = SASRecConfig(itemVocabulary: items)
            c.hidden = o.hidden ?? c.hidden
            c.heads = o.heads ?? c.heads
            c.inner = o.inner ?? c.inner
            c.layers = o.layers ?? c.layers
            c.maxLength = o.maxLength ?? c.maxLength
            c.hiddenDropout = o.dropout ?? c.hiddenDropout
            c.attentionDropout = o.dropout ?? c.attentionDropout
            return try SASRec(config: c, seed: seed)
        },
        decode: { text, shapes in
            try SASRec(config: SequenceArchitectures.decodeConfig(text, as: SASRecConfig.self, architecture: "SASRec",
                                                                  shapes: shapes, layout: SASRec.layout))
        },
        infer: { shapes in
            guard shapes.keys.contains(where: { $0.hasPrefix("trm_encoder.") }) else { return nil }
            guard let table = shapes["item_embedding.weight"], table.count == 2 else {
                throw DataError(file: "state_dict", "has trm_encoder.* but no 2-d item_embedding.weight")
            }
            var c = SASRecConfig(itemVocabulary: table[0])
            c.hidden = table[1]
            if let p = shapes["position_embedding.weight"], p.count == 2 { c.maxLength = p[0] }
            c.layers = Set(shapes.keys.compactMap { k -> Int? in
                guard k.hasPrefix("trm_encoder.layer.") else { return nil }
                return Int(k.dropFirst("trm_encoder.layer.".count).prefix { $0.isNumber })
            }).count
            if let f = shapes["trm_encoder.layer.0.feed_forward.dense_1.weight"], f.count == 2 { c.inner = f[0] }
            // heads leave no trace in the shapes: RecBole's default (2) unless it does not divide the width
            if c.hidden % c.heads != 0 { c.heads = 1 }
            return try SASRec(config: c)
        })
}
