import Foundation

/// The policy's architecture: T5 v1.0 as HF `T5ForConditionalGeneration`
/// builds it for the ProRL reference (ReLU feed-forward, RMSNorm, no biases,
/// unscaled attention scores, bucketed relative positions computed by the
/// first layer and shared, tied input/output embedding with the output
/// scaled by d_model^-0.5).
public struct T5Config: Codable, Sendable, Equatable {
    public var vocabulary: Int
    public var modelWidth = 128
    public var ffWidth = 512
    public var heads = 4
    public var headWidth = 64
    public var encoderLayers = 3
    public var decoderLayers = 3
    public var buckets = 32
    public var maxDistance = 128
    public var dropout: Float = 0.1
    public var layerNormEps: Float = 1e-6
    public var eosToken: Int32
    /// The decoder's first input (T5: the padding token).
    public var decoderStartToken: Int32 = 0

    public init(vocabulary: Int, eosToken: Int32) {
        self.vocabulary = vocabulary
        self.eosToken = eosToken
    }

    /// Width of the concatenated heads.
    public var inner: Int { heads * headWidth }

    public func validate() throws {
        func bad(_ m: String) -> DataError { .setting("policy config", m) }
        guard vocabulary >= 3, eosToken > 0, Int(eosToken) < vocabulary else { throw bad("eos token \(eosToken) outside the vocabulary of \(vocabulary)") }
        guard vocabulary <= 1 << 26 else { throw bad("vocabulary: expected at most 2^26 tokens, found \(vocabulary)") }
        for (name, value, limit) in [("modelWidth", modelWidth, 8192), ("ffWidth", ffWidth, 65_536), ("heads", heads, 256),
                                     ("headWidth", headWidth, 1024), ("encoderLayers", encoderLayers, 128),
                                     ("decoderLayers", decoderLayers, 128), ("buckets", buckets, 4096),
                                     ("maxDistance", maxDistance, 1 << 20)] where !(1...limit).contains(value) {
            throw bad("\(name): expected 1...\(limit), found \(value)")
        }
        guard buckets >= 4, buckets % 2 == 0, maxDistance > buckets / 4 else { throw bad("buckets must be even ≥ 4, maxDistance > buckets/4") }
        guard (0..<1).contains(dropout) else { throw bad("dropout must be in [0, 1)") }
        guard decoderStartToken >= 0, Int(decoderStartToken) < vocabulary else {
            throw bad("decoderStartToken \(decoderStartToken) outside the vocabulary of \(vocabulary)")
        }
        guard layerNormEps > 0, layerNormEps <= 1 else { throw bad("layerNormEps: expected a value in (0, 1], found \(layerNormEps)") }
    }

    /// HF T5's `_relative_position_bucket` for `memory − query`, computed in
    /// float32 as PyTorch does.
    public func bucket(relative: Int, bidirectional: Bool) -> Int32 {
        var numBuckets = buckets, result = 0, n = relative
        if bidirectional {
            numBuckets /= 2
            if n > 0 { result += numBuckets }
            n = abs(n)
        } else {
            n = max(-n, 0)
        }
        let maxExact = numBuckets / 2
        if n < maxExact { return Int32(result + n) }
        let scaled = logf(Float(n) / Float(maxExact)) / Float(log(Double(maxDistance) / Double(maxExact)))
            * Float(numBuckets - maxExact)
        return Int32(result + min(maxExact + Int(scaled), numBuckets - 1))
    }

    /// Buckets `[queryLength · keyLength]` of positions `j − i` (queries from
    /// `firstQuery`).
    public func buckets(queryLength: Int, keyLength: Int, firstQuery: Int = 0, bidirectional: Bool) -> [Int32] {
        var out = [Int32](repeating: 0, count: queryLength * keyLength)
        for i in 0..<queryLength {
            for j in 0..<keyLength { out[i * keyLength + j] = bucket(relative: j - (i + firstQuery), bidirectional: bidirectional) }
        }
        return out
    }
}

/// The policy model: T5 parameters with HF names in one arena.
public final class T5Policy: @unchecked Sendable {
    public let config: T5Config
    public let store: ParameterStore

    struct EncoderLayer { let q, k, v, o, ln0, wi, wo, ln1: Int }
    struct DecoderLayer { let q, k, v, o, ln0, cq, ck, cv, co, ln1, wi, wo, ln2: Int }
    let shared, encoderBias, decoderBias, encoderFinal, decoderFinal: Int
    let encoder: [EncoderLayer]
    let decoder: [DecoderLayer]

    /// Parameter names and shapes in arena order (q, k, v adjacent; cross
    /// k, v adjacent) — HF's state_dict names without the tied aliases.
    public static func layout(_ c: T5Config) -> [(name: String, shape: [Int])] {
        let C = c.modelWidth, I = c.inner, F = c.ffWidth
        var out: [(String, [Int])] = [("shared.weight", [c.vocabulary, C])]
        for i in 0..<c.encoderLayers {
            let a = "encoder.block.\(i).layer.0.SelfAttention"
            out += [("\(a).q.weight", [I, C]), ("\(a).k.weight", [I, C]), ("\(a).v.weight", [I, C]), ("\(a).o.weight", [C, I])]
            if i == 0 { out.append(("\(a).relative_attention_bias.weight", [c.buckets, c.heads])) }
            out += [("encoder.block.\(i).layer.0.layer_norm.weight", [C]),
                    ("encoder.block.\(i).layer.1.DenseReluDense.wi.weight", [F, C]),
                    ("encoder.block.\(i).layer.1.DenseReluDense.wo.weight", [C, F]),
                    ("encoder.block.\(i).layer.1.layer_norm.weight", [C])]
        }
        out.append(("encoder.final_layer_norm.weight", [C]))
        for i in 0..<c.decoderLayers {
            let a = "decoder.block.\(i).layer.0.SelfAttention", x = "decoder.block.\(i).layer.1.EncDecAttention"
            out += [("\(a).q.weight", [I, C]), ("\(a).k.weight", [I, C]), ("\(a).v.weight", [I, C]), ("\(a).o.weight", [C, I])]
            if i == 0 { out.append(("\(a).relative_attention_bias.weight", [c.buckets, c.heads])) }
            out += [("decoder.block.\(i).layer.0.layer_norm.weight", [C]),
                    ("\(x).q.weight", [I, C]), ("\(x).k.weight", [I, C]), ("\(x).v.weight", [I, C]), ("\(x).o.weight", [C, I]),
                    ("decoder.block.\(i).layer.1.layer_norm.weight", [C]),
                    ("decoder.block.\(i).layer.2.DenseReluDense.wi.weight", [F, C]),
                    ("decoder.block.\(i).layer.2.DenseReluDense.wo.weight", [C, F]),
                    ("decoder.block.\(i).layer.2.layer_norm.weight", [C])]
        }
        out.append(("decoder.final_layer_norm.weight", [C]))
        return out
    }

    /// HF's names of the embedding's tied aliases (accepted when loading).
    public static let tiedAliases = ["encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"]

    /// A model initialised as HF T5 does (factor 1): shared normal(0, 1);
    /// q normal(0, (C·d_kv)^-½); k, v normal(0, C^-½); o normal(0, (H·d_kv)^-½);
    /// relative bias normal(0, C^-½); wi normal(0, C^-½); wo normal(0, F^-½);
    /// layer norms 1.
    public init(config: T5Config, seed: UInt64 = 2024) throws {
        try config.validate()
        self.config = config
        store = ParameterStore(layout: T5Policy.layout(config))
        let s = store
        shared = s.id("shared.weight")
        encoderBias = s.id("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight")
        decoderBias = s.id("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight")
        encoderFinal = s.id("encoder.final_layer_norm.weight")
        decoderFinal = s.id("decoder.final_layer_norm.weight")
        encoder = (0..<config.encoderLayers).map { i in
            let a = "encoder.block.\(i).layer.0.SelfAttention", f = "encoder.block.\(i).layer.1"
            return EncoderLayer(q: s.id("\(a).q.weight"), k: s.id("\(a).k.weight"), v: s.id("\(a).v.weight"),
                                o: s.id("\(a).o.weight"), ln0: s.id("encoder.block.\(i).layer.0.layer_norm.weight"),
                                wi: s.id("\(f).DenseReluDense.wi.weight"), wo: s.id("\(f).DenseReluDense.wo.weight"),
                                ln1: s.id("\(f).layer_norm.weight"))
        }
        decoder = (0..<config.decoderLayers).map { i in
            let a = "decoder.block.\(i).layer.0.SelfAttention", x = "decoder.block.\(i).layer.1.EncDecAttention"
            let f = "decoder.block.\(i).layer.2"
            return DecoderLayer(q: s.id("\(a).q.weight"), k: s.id("\(a).k.weight"), v: s.id("\(a).v.weight"),
                                o: s.id("\(a).o.weight"), ln0: s.id("decoder.block.\(i).layer.0.layer_norm.weight"),
                                cq: s.id("\(x).q.weight"), ck: s.id("\(x).k.weight"), cv: s.id("\(x).v.weight"),
                                co: s.id("\(x).o.weight"), ln1: s.id("decoder.block.\(i).layer.1.layer_norm.weight"),
                                wi: s.id("\(f).DenseReluDense.wi.weight"), wo: s.id("\(f).DenseReluDense.wo.weight"),
                                ln2: s.id("\(f).layer_norm.weight"))
        }
        var g = GaussianSampler(seed: seed)
        let C = Double(config.modelWidth), dkv = Double(config.headWidth), H = Double(config.heads)
        for (i, e) in s.entries.enumerated() {
            let t = s.value(i), n = e.name
            if n.hasSuffix("layer_norm.weight") { t.fill(1) }
            else if n == "shared.weight" { g.fill(t, std: 1) }
            else if n.hasSuffix(".q.weight") { g.fill(t, std: 1 / (C * dkv).squareRoot()) }
            else if n.hasSuffix(".k.weight") || n.hasSuffix(".v.weight") { g.fill(t, std: 1 / C.squareRoot()) }
            else if n.hasSuffix(".o.weight") { g.fill(t, std: 1 / (H * dkv).squareRoot()) }
            else if n.hasSuffix("relative_attention_bias.weight") { g.fill(t, std: 1 / C.squareRoot()) }
            else if n.hasSuffix(".wi.weight") { g.fill(t, std: 1 / C.squareRoot()) }
            else if n.hasSuffix(".wo.weight") { g.fill(t, std: 1 / Double(config.ffWidth).squareRoot()) }
            else { preconditionFailure("no initialisation rule for \(n)") }
        }
    }

    /// The tied embedding `[vocabulary, modelWidth]`.
    public var embedding: Tensor { store.value(shared) }
}

extension T5Policy {
    /// Loads parameters from safetensors tensors with HF names. The tied
    /// aliases of the embedding (`lm_head.weight`, `*.embed_tokens.weight`)
    /// may be present and must then equal `shared.weight`.
    public func load(_ tensors: [String: SafeTensors.Tensor], file: String) throws {
        var own = tensors
        for alias in T5Policy.tiedAliases {
            guard let t = own.removeValue(forKey: alias) else { continue }
            guard let shared = tensors["shared.weight"], t.values == shared.values else {
                throw DataError(file: file, "tensor '\(alias)' differs from 'shared.weight': untied embeddings are not supported")
            }
        }
        try SafeTensors.load(own, into: store, file: file)
    }
}
