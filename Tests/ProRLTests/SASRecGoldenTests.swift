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
        let fixture: GoldenFixture
        let batch: SequenceBatch
        let targets: [Int32]
    }

    static func load() throws -> Golden {
        let fixture = try GoldenFixture("sasrec_golden")
        let cfg: [String: Int] = try fixture.json("config")
        var config = SASRecConfig(itemVocabulary: cfg["n_items"]!)
        config.hidden = cfg["hidden"]!
        config.heads = cfg["heads"]!
        config.inner = cfg["inner"]!
        config.layers = cfg["layers"]!
        config.maxLength = cfg["max_length"]!
        let model = try SASRec(config: config)
        try SafeTensors.load(fixture.weights, into: model.store, file: fixture.path)
        let (batch, targets) = try fixture.batch(maxLength: config.maxLength)
        return Golden(model: model, fixture: fixture, batch: batch, targets: targets)
    }

    /// Tolerances as ``GoldenFixture/compare(_:to:relative:floor:)`` states
    /// them: the key biases' gradients, which softmax's shift invariance
    /// makes exactly 0, are judged against the model's largest gradient.
    func expectClose(_ observed: [Float], _ g: GoldenFixture, _ name: String, relative: Double, _ what: String,
                     floor: Double = 1e-6) {
        let (bad, tol) = g.compare(observed, to: name, relative: relative, floor: floor)
        #expect(bad == nil, "\(what) vs RecBole: \(bad ?? ""), tolerance \(tol)")
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
        expectClose(gathered, g.fixture, "output", relative: 2e-5, "gathered sequence output")
        // full-sort scores: states · item tableᵀ
        let scores = FloatBuffer(count: rows.count * c.itemVocabulary)
        let h = FloatBuffer(count: rows.count * c.hidden)
        h.flat.copy(from: gathered)
        Kernels.scoreLogits(states: h.tensor(rows: rows.count, cols: c.hidden), items: g.model.items,
                            into: scores.tensor(rows: rows.count, cols: c.itemVocabulary))
        expectClose(scores.flat.toArray(), g.fixture, "scores", relative: 2e-5, "full-sort scores")
        // loss and gradients
        let loss = FullSoftmaxLoss(maxRows: rows.count, width: c.hidden, vocabulary: c.itemVocabulary)
        let dStates = FloatBuffer(count: states.count)
        g.model.store.zeroGrads()
        let value = loss(states: states, rows: rows, targets: g.targets, items: g.model.items,
                         dStates: dStates.tensor(rows: states.rows, cols: states.cols),
                         dItems: g.model.store.grad(g.model.store.id("item_embedding.weight")))
        let expectedLoss = Double(try #require(g.fixture.tensors["loss"]).values[0])
        #expect(Products.close(value, expectedLoss, relative: 1e-5), "loss \(value) vs RecBole \(expectedLoss)")
        pass.backward(dStates.tensor(rows: states.rows, cols: states.cols))
        for e in g.model.store.entries {
            expectClose(g.model.store.grad(g.model.store.id(e.name)).toArray(), g.fixture, "grad.\(e.name)", relative: 5e-5,
                        "gradient of \(e.name)", floor: 1e-3 * g.fixture.largestGradient)
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
