import Foundation
import ProRL
import ProRLTestSupport
import Testing

/// The engine's SASRec against RecBole's own SASRec with the same weights
/// (fixture written by tools/golden_sasrec.py).
@Suite("SASRec vs RecBole golden outputs")
struct SASRecGoldenTests {
    struct Golden {
        let model: SASRec
        let tensors: [String: SafeTensors.Tensor]
        let batch: SequenceBatch
        let targets: [Int32]
    }

    static func load() throws -> Golden {
        let path = TestPaths.packageRoot + "/Tests/Fixtures/sasrec_golden.safetensors"
        let (tensors, meta) = try SafeTensors.read(path)
        let cfg = try JSONSerialization.jsonObject(with: Data(meta["config"]!.utf8)) as! [String: Int]
        var config = SASRecConfig(itemVocabulary: cfg["n_items"]!)
        config.hidden = cfg["hidden"]!
        config.heads = cfg["heads"]!
        config.inner = cfg["inner"]!
        config.layers = cfg["layers"]!
        config.maxLength = cfg["max_length"]!
        let model = try SASRec(config: config)
        var weights: [String: SafeTensors.Tensor] = [:]
        for (k, v) in tensors where k.hasPrefix("weights.") { weights[String(k.dropFirst("weights.".count))] = v }
        try SafeTensors.load(weights, into: model.store, file: path)
        let seqs = try JSONSerialization.jsonObject(with: Data(meta["sequences"]!.utf8)) as! [[Int]]
        let lengths = try JSONSerialization.jsonObject(with: Data(meta["lengths"]!.utf8)) as! [Int]
        let targets = try JSONSerialization.jsonObject(with: Data(meta["targets"]!.utf8)) as! [Int]
        let batch = SequenceBatch(zip(seqs, lengths).map { s, n in s.prefix(n).map(Int32.init) }, maxLength: config.maxLength)
        return Golden(model: model, tensors: tensors, batch: batch, targets: targets.map(Int32.init))
    }

    /// Compares against a reference with tolerance `relative` × max(max|reference|,
    /// floor): `floor` is the scale of the quantities the values are made of
    /// (for gradients, the model's largest gradient), so a tensor that is
    /// zero up to rounding — the key biases' gradients, which softmax's shift
    /// invariance makes exactly 0 — is judged against that, not against its
    /// own rounding noise.
    func expectClose(_ observed: [Float], _ reference: SafeTensors.Tensor, relative: Double, _ what: String,
                     floor: Double = 1e-6) {
        let expected = reference.values.map(Double.init)
        let scale = expected.map(abs).max() ?? 1
        let tol = relative * max(scale, floor)
        let bad = firstMismatch(observed, expected, tolerance: tol)
        #expect(bad == nil, "\(what) vs RecBole: \(String(describing: bad)), tolerance \(tol)")
    }

    @Test("sequence output, full-sort scores, CE loss and every gradient match RecBole")
    func goldenForwardBackward() throws {
        let g = try Self.load()
        let c = g.model.config
        let pass = SASRecPass(model: g.model, maxBatch: g.batch.batch)
        let states = pass.forward(g.batch, training: false)
        let rows = (0..<g.batch.batch).map { $0 * g.batch.length + Int(g.batch.lengths[$0]) - 1 }
        var gathered: [Float] = []
        for r in rows { gathered += states.row(r).toArray() }
        expectClose(gathered, g.tensors["output"]!, relative: 2e-5, "gathered sequence output")
        // full-sort scores: states · item tableᵀ
        let scores = FloatBuffer(count: rows.count * c.itemVocabulary)
        let h = FloatBuffer(count: rows.count * c.hidden)
        h.flat.copy(from: gathered)
        Kernels.scoreLogits(states: h.tensor(rows: rows.count, cols: c.hidden), items: g.model.items,
                            into: scores.tensor(rows: rows.count, cols: c.itemVocabulary))
        expectClose(scores.flat.toArray(), g.tensors["scores"]!, relative: 2e-5, "full-sort scores")
        // loss and gradients
        let loss = FullSoftmaxLoss(maxRows: rows.count, width: c.hidden, vocabulary: c.itemVocabulary)
        let dStates = FloatBuffer(count: states.count)
        g.model.store.zeroGrads()
        let value = loss(states: states, rows: rows, targets: g.targets, items: g.model.items,
                         dStates: dStates.tensor(rows: states.rows, cols: states.cols),
                         dItems: g.model.store.grad(g.model.store.id("item_embedding.weight")))
        let expectedLoss = Double(g.tensors["loss"]!.values[0])
        #expect(abs(value - expectedLoss) <= 1e-5 * abs(expectedLoss), "loss \(value) vs RecBole \(expectedLoss)")
        pass.backward(dStates.tensor(rows: states.rows, cols: states.cols))
        let largest = g.tensors.filter { $0.key.hasPrefix("grad.") }.values.flatMap(\.values).map { Double(abs($0)) }.max()!
        for e in g.model.store.entries {
            let reference = try #require(g.tensors["grad.\(e.name)"], "RecBole gradient of \(e.name)")
            expectClose(g.model.store.grad(g.model.store.id(e.name)).toArray(), reference, relative: 5e-5,
                        "gradient of \(e.name)", floor: 1e-3 * largest)
        }
    }

    @Test("checkpoints round-trip through safetensors with RecBole names")
    func checkpointRoundTrip() throws {
        let g = try Self.load()
        let dir = TestPaths.temporaryDirectory()
        try SafeTensors.write(g.model.store, metadata: ["format": "test"], to: dir + "/sim.safetensors")
        let (tensors, meta) = try SafeTensors.read(dir + "/sim.safetensors")
        #expect(meta["format"] == "test")
        #expect(tensors["trm_encoder.layer.1.feed_forward.dense_2.weight"]?.shape == [16, 24])
        let other = try SASRec(config: g.model.config, seed: 99)
        try SafeTensors.load(tensors, into: other.store, file: "round trip")
        #expect(other.store.values.flat.toArray() == g.model.store.values.flat.toArray())
        // a checkpoint of another size is refused with the tensor named
        var bigger = g.model.config
        bigger.hidden = 32
        let wrong = try SASRec(config: bigger)
        #expect(throws: DataError.self) { try SafeTensors.load(tensors, into: wrong.store, file: "round trip") }
    }
}
