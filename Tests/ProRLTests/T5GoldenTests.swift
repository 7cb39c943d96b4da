import Foundation
import ProRL
import ProRLTestSupport
import Testing

/// The engine's T5 against HF transformers' T5ForConditionalGeneration with
/// the same weights (fixture written by tools/golden_t5.py).
@Suite("T5 policy vs HF golden outputs")
struct T5GoldenTests {
    static func fixture() throws -> (model: T5Policy, tensors: [String: SafeTensors.Tensor], batch: PolicyBatch,
                                     labels: [[Int]]) {
        let path = TestPaths.packageRoot + "/Tests/Fixtures/t5_golden.safetensors"
        let (tensors, meta) = try SafeTensors.read(path)
        let cfg = try JSONSerialization.jsonObject(with: Data(meta["config"]!.utf8)) as! [String: Any]
        var config = T5Config(vocabulary: cfg["vocab_size"] as! Int, eosToken: Int32(cfg["eos_token_id"] as! Int))
        config.modelWidth = cfg["d_model"] as! Int
        config.ffWidth = cfg["d_ff"] as! Int
        config.heads = cfg["num_heads"] as! Int
        config.headWidth = cfg["d_kv"] as! Int
        config.encoderLayers = cfg["num_layers"] as! Int
        config.decoderLayers = cfg["num_decoder_layers"] as! Int
        config.buckets = cfg["relative_attention_num_buckets"] as! Int
        config.maxDistance = cfg["relative_attention_max_distance"] as! Int
        config.dropout = 0
        let model = try T5Policy(config: config)
        var weights: [String: SafeTensors.Tensor] = [:]
        for (k, v) in tensors where k.hasPrefix("weights.") { weights[String(k.dropFirst("weights.".count))] = v }
        try model.load(weights, file: path)
        let enc = try JSONSerialization.jsonObject(with: Data(meta["encoder"]!.utf8)) as! [[Int]]
        let encLen = try JSONSerialization.jsonObject(with: Data(meta["encoder_lengths"]!.utf8)) as! [Int]
        let labels = try JSONSerialization.jsonObject(with: Data(meta["labels"]!.utf8)) as! [[Int]]
        let batch = PolicyBatch(encoder: zip(enc, encLen).map { e, n in e.prefix(n).map(Int32.init) },
                                targets: labels.map { $0.filter { $0 >= 0 }.map(Int32.init) })
        return (model, tensors, batch, labels)
    }

    @Test("relative position buckets equal HF's for −150…150, both directions")
    func buckets() throws {
        let (_, tensors, _, _) = try Self.fixture()
        let config = T5Config(vocabulary: 1027, eosToken: 1026)  // 32 buckets, max distance 128
        for (key, bidirectional) in [("buckets.bidirectional", true), ("buckets.causal", false)] {
            let reference = try #require(tensors[key]).values
            for (i, r) in (-150...150).enumerated() {
                #expect(config.bucket(relative: r, bidirectional: bidirectional) == Int32(reference[i]),
                        "\(key) at relative position \(r)")
            }
        }
    }

    @Test("logits, loss and every gradient match HF T5ForConditionalGeneration")
    func forwardBackward() throws {
        let (model, tensors, batch, labels) = try Self.fixture()
        let c = model.config
        let pass = T5Pass(model: model, capacity: .init(prompts: 3, encoderLength: 7, sequences: 3, decoderLength: 5))
        pass.forward(batch, training: false)
        // our packed rows vs HF's [B, T, V] logits at real positions
        let hfLogits = try #require(tensors["logits"]).values
        let T = labels[0].count
        var expected: [Double] = []
        for (b, row) in labels.enumerated() {
            for (t, label) in row.enumerated() where label >= 0 {
                expected += (0..<c.vocabulary).map { Double(hfLogits[(b * T + t) * c.vocabulary + $0]) }
            }
        }
        let logits = try logitsOf(pass: pass, model: model, batch: batch)
        let scale = expected.map(abs).max()!
        let bad = firstMismatch(logits, expected, tolerance: 2e-5 * scale)
        #expect(bad == nil, "logits vs HF: \(String(describing: bad)) (scale \(scale))")
        let hfLoss = Double(try #require(tensors["loss"]).values[0])
        #expect(abs(pass.meanLoss - hfLoss) <= 1e-5 * hfLoss, "loss \(pass.meanLoss) vs HF \(hfLoss)")
        model.store.zeroGrads()
        pass.backward()
        let largest = tensors.filter { $0.key.hasPrefix("grad.") }.values.flatMap(\.values).map { Double(abs($0)) }.max()!
        for e in model.store.entries {
            let reference = try #require(tensors["grad.\(e.name)"], "HF gradient of \(e.name)")
            let observed = model.store.grad(model.store.id(e.name)).toArray()
            let ref = reference.values.map(Double.init)
            // float32 on both sides, different summation orders through four
            // layers; key gradients cancel (softmax shift invariance)
            let tol = 3e-4 * max(ref.map(abs).max()!, 1e-3 * largest)
            let bad = firstMismatch(observed, ref, tolerance: tol)
            #expect(bad == nil, "gradient of \(e.name) vs HF: \(String(describing: bad)), tolerance \(tol)")
        }
    }

    func logitsOf(pass: T5Pass, model: T5Policy, batch: PolicyBatch) throws -> [Float] {
        try #require(pass.lastLogits).toArray()
    }
}
