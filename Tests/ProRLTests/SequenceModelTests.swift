import Foundation
import ProRL
import ProRLTestSupport
import Testing

/// What every simulator architecture must do, checked for each one in the
/// registry, and the checkpoint seam (RecBole names in and out).
@Suite("Sequence models (every architecture)")
struct SequenceModelTests {
    static func model(_ architecture: String, items: Int, maxLength: Int, seed: UInt64) throws -> any SequenceModel {
        var o = SequenceModelOptions()
        o.hidden = 16
        o.maxLength = maxLength
        if architecture == "sasrec" { o.inner = 24 } else { o.embedding = 12 }
        return try SequenceArchitectures.named(architecture).create(items, o, seed)
    }

    @Test("a training step at the pass's full size fits its workspace, and repeats identically",
          arguments: SequenceArchitectures.names)
    func fullSizeStep(architecture: String) throws {
        let model = try Self.model(architecture, items: 40, maxLength: 12, seed: 1)
        let pass = model.makePass(maxBatch: 5)
        var rng = SplitMix64(seed: 3)
        let seqs = (0..<5).map { _ in (0..<12).map { _ in Int32(1 + rng.below(39)) } }
        let batch = SequenceBatch(seqs, maxLength: 12)
        var grads: [[Float]] = []
        for _ in 0..<2 {
            model.store.zeroGrads()
            let states = pass.forward(batch, training: true, seed: 9, step: 4, lastOnly: false)
            let d = FloatBuffer(count: states.count)
            d.flat.fill(0.01)
            pass.backward(d.tensor(rows: states.rows, cols: states.cols))
            pass.backward(d.tensor(rows: states.rows, cols: states.cols))  // backward may run twice
            grads.append(model.store.grads.flat.toArray())
        }
        #expect(grads[0] == grads[1], "\(architecture): same seed and step give the same dropout and gradients")
        #expect(grads[0].contains { $0 != 0 })
    }

    @Test("a last-position pass equals the full pass at each sequence's last row, forward and backward",
          arguments: SequenceArchitectures.names)
    func lastOnlyEqualsFull(architecture: String) throws {
        let model = try Self.model(architecture, items: 50, maxLength: 10, seed: 4)
        var g = GaussianSampler(seed: 6)
        g.fill(model.store.allValues, std: 0.2)
        let pass = model.makePass(maxBatch: 6)
        var rng = SplitMix64(seed: 8)
        let seqs = (0..<6).map { b in (0..<(b == 0 ? 10 : 1 + rng.below(10))).map { _ in Int32(1 + rng.below(49)) } }
        let batch = SequenceBatch(seqs, maxLength: 10)
        let H = model.width
        var upstream = [Float](repeating: 0, count: 6 * H)
        for i in upstream.indices { upstream[i] = Float(rng.uniform(in: 0...1000)) / 1000 - 0.5 }

        // full pass: states of every row; gradient only at the last rows
        model.store.zeroGrads()
        let all = pass.forward(batch)
        var expected: [Double] = []
        let dAll = FloatBuffer(count: all.count)
        for b in 0..<6 {
            let row = b * batch.length + Int(batch.lengths[b]) - 1
            expected += all.row(row).toArray().map(Double.init)
            for j in 0..<H { dAll[row * H + j] = upstream[b * H + j] }
        }
        pass.backward(dAll.tensor(rows: all.rows, cols: H))
        let fullGrads = model.store.grads.flat.toArray().map(Double.init)

        model.store.zeroGrads()
        let last = pass.forward(batch, lastOnly: true)
        #expect(last.rows == 6)
        if let m = firstMismatch(last.toArray(), expected, tolerance: 1e-5) {
            Issue.record("\(architecture): last-only state \(m.index): \(m.observed), full pass \(m.expected)")
        }
        let dLast = FloatBuffer(count: 6 * H)
        for i in 0..<(6 * H) { dLast[i] = upstream[i] }
        pass.backward(dLast.tensor(rows: 6, cols: H))
        if let m = firstMismatch(model.store.grads.flat.toArray(), fullGrads, tolerance: 1e-5) {
            Issue.record("\(architecture): last-only gradient \(m.index): \(m.observed), full pass \(m.expected)")
        }
    }

    @Test("a sequence's states do not depend on the other sequences of its batch", arguments: SequenceArchitectures.names)
    func batchIndependence(architecture: String) throws {
        let model = try Self.model(architecture, items: 30, maxLength: 8, seed: 2)
        var rng = SplitMix64(seed: 5)
        let seqs = (0..<7).map { _ in (0..<(1 + rng.below(8))).map { _ in Int32(1 + rng.below(29)) } }
        let pass = model.makePass(maxBatch: 7)  // owns the memory the states live in
        let together = pass.forward(SequenceBatch(seqs, maxLength: 8), lastOnly: true).toArray()
        let alone = model.makePass(maxBatch: 1)
        for (b, s) in seqs.enumerated() {
            let one = alone.forward(SequenceBatch([s], maxLength: 8), lastOnly: true).toArray()
            let mine = Array(together[(b * model.width)..<((b + 1) * model.width)])
            if let m = firstMismatch(mine, one.map(Double.init), tolerance: 1e-6) {
                Issue.record("\(architecture): sequence \(b) (length \(s.count)) in a batch vs alone: \(m)")
            }
        }
    }

    /// RecBole state_dicts (names and shapes) of the golden fixtures.
    static let fixtures = [("sasrec", "sasrec_golden"), ("gru4rec", "gru4rec_golden")]

    @Test("parameter names and shapes are RecBole's, so checkpoints load in PyTorch by name", arguments: fixtures)
    func recboleNames(architecture: String, fixture: String) throws {
        let golden = try GoldenFixture(fixture)
        let recbole = golden.weights.mapValues(\.shape)
        let model = try SequenceArchitectures.infer(recbole, file: golden.path)
        #expect(model.architecture == architecture, "\(fixture): inferred \(model.architecture)")
        var ours: [String: [Int]] = [:]
        for e in model.store.entries { ours[e.name] = e.shape }
        #expect(ours == recbole, "\(architecture): engine names/shapes \(ours.keys.sorted()) vs RecBole \(recbole.keys.sorted())")
    }

    @Test("a RecBole state_dict without metadata loads given the item ids, and import writes a full checkpoint",
          arguments: fixtures)
    func recboleStateDictLoads(architecture: String, fixture: String) throws {
        var names: [String] = [], shapes: [[Int]] = [], values: [[Float]] = []
        for (k, v) in try GoldenFixture(fixture).weights.sorted(by: { $0.key < $1.key }) {
            names.append(k)
            shapes.append(v.shape)
            values.append(v.values)
        }
        let dir = TestPaths.temporaryDirectory()
        let bare = dir + "/recbole.safetensors"
        try writeTensors(names: names, shapes: shapes, values: values, to: bare)
        let items = shapes[names.firstIndex(of: "item_embedding.weight")!][0]
        // no ids: a clear error naming what to give
        #expect(throws: DataError.self) { _ = try Simulator.load(bare) }
        let ids = ["[PAD]"] + (1..<items).map { "i\($0)" }
        let sim = try Simulator.load(bare, itemIDs: ids)
        #expect(sim.model.architecture == architecture)
        for (n, v) in zip(names, values) {
            #expect(sim.model.store.value(sim.model.store.id(n)).toArray() == v, "\(n) loaded as written")
        }
        // saved with metadata, it loads alone and agrees
        try sim.save(to: dir + "/sim.safetensors")
        let again = try Simulator.load(dir + "/sim.safetensors")
        #expect(again.model.architecture == architecture && again.itemIDs == ids)
        #expect(again.model.store.values.flat.toArray() == sim.model.store.values.flat.toArray())
        #expect(throws: DataError.self) { _ = try Simulator.load(dir + "/sim.safetensors", itemIDs: Array(ids.reversed())) }
    }

    @Test("options an architecture does not have are refused, naming the flag")
    func optionsChecked() throws {
        var o = SequenceModelOptions()
        o.heads = 4
        #expect(throws: DataError.self) { _ = try SequenceArchitectures.named("gru4rec").create(10, o, 1) }
        o = SequenceModelOptions()
        o.embedding = 8
        #expect(throws: DataError.self) { _ = try SequenceArchitectures.named("sasrec").create(10, o, 1) }
        #expect(throws: DataError.self) { _ = try SequenceArchitectures.named("bert4rec") }
    }
}

/// Writes plain F32 safetensors (what `safetensors.torch.save_file` writes
/// for a state_dict, no metadata).
func writeTensors(names: [String], shapes: [[Int]], values: [[Float]], metadata: [String: String]? = nil,
                  to path: String) throws {
    var header: [String: Any] = [:]
    if let metadata { header["__metadata__"] = metadata }
    var offset = 0
    for (i, n) in names.enumerated() {
        let bytes = values[i].count * 4
        header[n] = ["dtype": "F32", "shape": shapes[i], "data_offsets": [offset, offset + bytes]]
        offset += bytes
    }
    var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    while json.count % 8 != 0 { json.append(0x20) }
    var data = Data()
    var n = UInt64(json.count).littleEndian
    withUnsafeBytes(of: &n) { data.append(contentsOf: $0) }
    data.append(json)
    for v in values { v.withUnsafeBytes { data.append(contentsOf: $0) } }
    try data.write(to: URL(fileURLWithPath: path))
}
