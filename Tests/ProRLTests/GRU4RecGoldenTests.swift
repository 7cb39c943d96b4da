import Foundation
import ProRL
import ProRLTestSupport
import Testing

/// The engine's GRU4Rec against RecBole's own GRU4Rec with the same weights
/// (fixture written by tools/golden_gru4rec.py: 2 stacked GRU layers,
/// right-padded sequences of lengths 7, 2, 4, 1, 5).
@Suite("GRU4Rec vs RecBole golden outputs")
struct GRU4RecGoldenTests {
    static func load() throws -> (model: GRU4Rec, fixture: GoldenFixture, batch: SequenceBatch, targets: [Int32]) {
        let fixture = try GoldenFixture("gru4rec_golden")
        let cfg: [String: Int] = try fixture.json("config")
        var config = GRU4RecConfig(itemVocabulary: cfg["n_items"]!)
        config.embedding = cfg["embedding"]!
        config.hidden = cfg["hidden"]!
        config.layers = cfg["layers"]!
        config.maxLength = cfg["max_length"]!
        let model = try GRU4Rec(config: config)
        try SafeTensors.load(fixture.weights, into: model.store, file: fixture.path)
        let (batch, targets) = try fixture.batch(maxLength: config.maxLength)
        return (model, fixture, batch, targets)
    }

    func expectClose(_ observed: [Float], _ g: GoldenFixture, _ name: String, relative: Double, _ what: String,
                     floor: Double = 1e-6) {
        let (bad, tol) = g.compare(observed, to: name, relative: relative, floor: floor)
        #expect(bad == nil, "\(what) vs RecBole: \(bad ?? ""), tolerance \(tol)")
    }

    @Test("sequence output, full-sort scores, CE loss and every gradient match RecBole", arguments: [false, true])
    func goldenForwardBackward(lastOnly: Bool) throws {
        let g = try Self.load()
        let m = g.model, B = g.batch.batch
        let pass = m.makePass(maxBatch: B)
        let states = pass.forward(g.batch, lastOnly: lastOnly)
        // RecBole reads the state at the last real position of each sequence
        let rows = (0..<B).map { lastOnly ? $0 : $0 * g.batch.length + Int(g.batch.lengths[$0]) - 1 }
        var gathered: [Float] = []
        for r in rows { gathered += states.row(r).toArray() }
        expectClose(gathered, g.fixture, "output", relative: 2e-5, "gathered sequence output (lastOnly \(lastOnly))")
        let scores = FloatBuffer(count: B * m.itemVocabulary), h = FloatBuffer(count: B * m.width)
        h.flat.copy(from: gathered)
        Kernels.scoreLogits(states: h.tensor(rows: B, cols: m.width), items: m.items,
                            into: scores.tensor(rows: B, cols: m.itemVocabulary))
        expectClose(scores.flat.toArray(), g.fixture, "scores", relative: 2e-5, "full-sort scores")
        let loss = FullSoftmaxLoss(maxRows: rows.count, width: m.width, vocabulary: m.itemVocabulary)
        let dStates = FloatBuffer(count: states.count)
        m.store.zeroGrads()
        let value = loss(states: states, rows: rows, targets: g.targets, items: m.items,
                         dStates: dStates.tensor(rows: states.rows, cols: states.cols), dItems: m.store.grad(m.itemTableID))
        let expectedLoss = Double(try #require(g.fixture.tensors["loss"]).values[0])
        #expect(Products.close(value, expectedLoss, relative: 1e-5), "loss \(value) vs RecBole \(expectedLoss)")
        pass.backward(dStates.tensor(rows: states.rows, cols: states.cols))
        for e in m.store.entries {
            expectClose(m.store.grad(m.store.id(e.name)).toArray(), g.fixture, "grad.\(e.name)", relative: 5e-5,
                        "gradient of \(e.name)", floor: 1e-3 * g.fixture.largestGradient)
        }
    }
}
