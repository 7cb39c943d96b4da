import Foundation
import ProRL
import ProRLTestSupport
import Testing

/// Every kind of bad input gets one error naming the file, the line (when
/// there is one) and what was expected.
@Suite("Bad input")
struct BadInputTests {
    let dir = TestPaths.temporaryDirectory("prorl-bad")

    /// Runs `body`, expecting a DataError whose description names `file`
    /// (and `line` when given) and contains `expected`.
    func expectError(_ file: String, line: Int?, _ expected: String, _ body: () throws -> Void,
                     sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try body()
            Issue.record("no error for \(file); expected \"\(expected)\"", sourceLocation: sourceLocation)
        } catch let error as DataError {
            let text = error.description
            #expect(error.file.hasSuffix(file), "error names \(error.file), expected \(file): \(text)", sourceLocation: sourceLocation)
            #expect(error.line == line, "error line \(String(describing: error.line)), expected \(String(describing: line)): \(text)",
                    sourceLocation: sourceLocation)
            #expect(text.contains(expected), "\"\(text)\" lacks \"\(expected)\"", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error type \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("missing and empty files")
    func missingAndEmpty() {
        expectError("nope.inter", line: nil, "no such file") { _ = try RecBoleReader.readLog(inter: dir + "/nope.inter") }
        let empty = TestPaths.write("", "empty.inter", in: dir)
        expectError("empty.inter", line: nil, "is empty") { _ = try RecBoleReader.readLog(inter: empty) }
        let headerOnly = TestPaths.write("user_id:token\titem_id:token\ttimestamp:float\n", "h.inter", in: dir)
        expectError("h.inter", line: nil, "no interactions") { _ = try RecBoleReader.readLog(inter: headerOnly) }
        let emptyCSV = TestPaths.write("", "e.csv", in: dir)
        expectError("e.csv", line: nil, "no interactions") { _ = try CSVLogReader.read(emptyCSV) }
        let emptyJSON = TestPaths.write("  \n", "e.val", in: dir)
        expectError("e.val", line: nil, "is empty") { _ = try TaskFile.read(emptyJSON, catalog: ItemCatalog()) }
    }

    @Test("truncated file and wrong column counts")
    func columns() {
        let truncated = TestPaths.write("user_id:token\titem_id:token\ttimestamp:float\n1\t10\t100\n1\t11", "t.inter", in: dir)
        expectError("t.inter", line: 3, "expected 3 fields, found 2") { _ = try RecBoleReader.readLog(inter: truncated) }
        let csv = TestPaths.write("user,item,timestamp\na,x,1\nb,y\n", "c.csv", in: dir)
        expectError("c.csv", line: 3, "expected 3 columns") { _ = try CSVLogReader.read(csv) }
        let dat = TestPaths.write("1::10::5::978300760\n2::11::4\n", "ratings.dat", in: dir)
        expectError("ratings.dat", line: 2, "(4 fields), found 3") { _ = try MovieLensReader.readRatings(dat) }
    }

    @Test("non-numeric ids and timestamps")
    func numbers() {
        let inter = TestPaths.write("user_id:token\titem_id:token\ttimestamp:float\n1\t10\tyesterday\n", "n.inter", in: dir)
        expectError("n.inter", line: 2, "field 'timestamp': expected a number, found \"yesterday\"") {
            _ = try RecBoleReader.readLog(inter: inter)
        }
        let csv = TestPaths.write("u1,i1,12\nu1,i2,abc\n", "n.csv", in: dir)
        expectError("n.csv", line: 2, "column 'timestamp': expected a number") { _ = try CSVLogReader.read(csv) }
        let dat = TestPaths.write("1::ten::5::978300760\n", "ratings.dat", in: dir)
        expectError("ratings.dat", line: 1, "MovieID: expected an integer, found \"ten\"") { _ = try MovieLensReader.readRatings(dat) }
        let movies = TestPaths.write("x1::Toy Story (1995)::Animation\n", "movies.dat", in: dir)
        var catalog = ItemCatalog()
        expectError("movies.dat", line: 1, "MovieID: expected an integer") { try MovieLensReader.readMovies(movies, into: &catalog) }
        let missingID = TestPaths.write("user_id:token\titem_id:token\n1\t\n", "m.inter", in: dir)
        expectError("m.inter", line: 2, "field 'item_id': expected a value") { _ = try RecBoleReader.readLog(inter: missingID) }
    }

    @Test("duplicate, malformed and unknown header fields; missing required fields")
    func headers() {
        let dup = TestPaths.write("user_id:token\titem_id:token\titem_id:token\n1\t2\t3\n", "d.inter", in: dir)
        expectError("d.inter", line: 1, "'item_id' appears twice") { _ = try RecBoleReader.readLog(inter: dup) }
        let untyped = TestPaths.write("user_id\titem_id:token\n1\t2\n", "u.inter", in: dir)
        expectError("u.inter", line: 1, "expected name:type") { _ = try RecBoleReader.readLog(inter: untyped) }
        let unknown = TestPaths.write("user_id:token\titem_id:tokn\n1\t2\n", "k.inter", in: dir)
        expectError("k.inter", line: 1, "unknown type 'tokn'") { _ = try RecBoleReader.readLog(inter: unknown) }
        let noUser = TestPaths.write("item_id:token\ttimestamp:float\n2\t3\n", "x.inter", in: dir)
        expectError("x.inter", line: 1, "no field named 'user_id'") { _ = try RecBoleReader.readLog(inter: noUser) }
    }

    @Test("bad JSON and items the catalogue lacks in split files")
    func splits() {
        var catalog = ItemCatalog()
        for i in 1...12 { catalog.add(String(i)) }
        let ok = (1...10).map { "\"\($0)\"" }.joined(separator: ",")
        let badJSON = TestPaths.write("[{\"user\": \"a\", \"inters\": [\(ok)], \"proc_path\": [\"11\", \"12\"]", "b.val", in: dir)
        expectError("b.val", line: nil, "is not valid JSON") { _ = try TaskFile.read(badJSON, catalog: catalog) }
        let unknown = TestPaths.write("[{\"user\": \"a\", \"inters\": [\(ok)], \"proc_path\": [\"11\", \"12\"]}, {\"user\": \"a\", \"inters\": [\(ok)], \"proc_path\": [\"99\", \"12\"]}]", "u.val", in: dir)
        expectError("u.val", line: nil, "record 2: field 'proc_path': item \"99\" is not in the catalogue") {
            _ = try TaskFile.read(unknown, catalog: catalog)
        }
        let lines = TestPaths.write("{\"inters\": [\(ok)], \"proc_path\": [\"11\", \"12\"]}\n{\"inters\": 5, \"proc_path\": [\"11\"]}\n", "l.jsonl", in: dir)
        expectError("l.jsonl", line: 2, "field 'inters': expected an array") { _ = try TaskFile.read(lines, catalog: catalog) }
        let noPath = TestPaths.write("{\"inters\": [\(ok)], \"proc_path\": [\"12\"]}\n", "p.jsonl", in: dir)
        expectError("p.jsonl", line: 1, "expected at least one path item and the target") { _ = try TaskFile.read(noPath, catalog: catalog) }
        let mismatch = TestPaths.write("[{\"inters\": [\(ok)], \"proc_path\": [\"11\", \"12\"], \"target\": \"11\"}]", "m.test", in: dir)
        expectError("m.test", line: nil, "record 1: field 'target' differs") { _ = try TaskFile.read(mismatch, catalog: catalog) }
    }

    @Test("bad datamaps and semantic-ID files")
    func sideFiles() {
        let notObject = TestPaths.write("[1, 2]", "x.datamaps", in: dir)
        expectError("x.datamaps", line: nil, "expected a JSON object") { _ = try ProRLDatamaps.catalog(notObject) }
        let missing = TestPaths.write("{\"item2id\": {}}", "y.datamaps", in: dir)
        expectError("y.datamaps", line: nil, "field 'id2item'") { _ = try ProRLDatamaps.catalog(missing) }
        let dup = TestPaths.write("{\"1\": [1, 2, 3, 1], \"2\": [1, 2, 3, 1]}", "d.sem_ids", in: dir)
        expectError("d.sem_ids", line: nil, "share the codes") { _ = try ProRLDatamaps.semanticIDs(dup) }
        let ragged = TestPaths.write("{\"1\": [1, 2, 3, 1], \"2\": [1, 2]}", "r.sem_ids", in: dir)
        expectError("r.sem_ids", line: nil, "expected 4 non-negative codes") { _ = try ProRLDatamaps.semanticIDs(ragged) }
        var catalog = ItemCatalog()
        catalog.add("1")
        catalog.add("3")
        let partial = TestPaths.write("{\"1\": [1, 2, 3, 1], \"2\": [1, 2, 4, 1]}", "p.sem_ids", in: dir)
        expectError("p.sem_ids", line: nil, "item \"3\" of the catalogue has no semantic ID") {
            _ = try ProRLDatamaps.tokenizer(semanticIDs: partial, catalog: catalog)
        }
    }

    @Test("invalid UTF-8 is reported with its line")
    func encoding() {
        var bytes = Data("user_id:token\titem_id:token\n1\t2\n".utf8)
        bytes.append(contentsOf: [0x33, 0x09, 0xFF, 0xFE, 0x0A])
        let path = dir + "/bin.inter"
        _ = FileManager.default.createFile(atPath: path, contents: bytes)
        expectError("bin.inter", line: 3, "not valid UTF-8") { _ = try RecBoleReader.readLog(inter: path) }
    }

    @Test("a metrics log with a torn last line (a killed append) still reads; a bad line inside does not")
    func tornMetrics() throws {
        let path = dir + "/metrics.jsonl"
        try "{\"step\":1,\"ioi\":0.5}\n{\"step\":2,\"ioi\":0.25}\n{\"step\":3,\"io".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try Figures.readMetrics(path).map { $0["step"] } == [1, 2], "the whole lines are read, the torn one skipped")
        try "{\"step\":1}\n\n{\"step\":2\n{\"step\":3}\n".write(toFile: path, atomically: true, encoding: .utf8)
        expectError("metrics.jsonl", line: 3, "is not a JSON object") { _ = try Figures.readMetrics(path) }
    }

    @Test("a task set replaces the old one as a unit, and never a directory holding other files")
    func taskSetAsAUnit() throws {
        let fm = FileManager.default
        let out = dir + "/set"
        let names: Set<String> = ["train.jsonl", "validation.jsonl", "test.jsonl"]
        try AtomicDirectory.write([("train.jsonl", Data("a\n".utf8)), ("validation.jsonl", Data("a\n".utf8)),
                                   ("test.jsonl", Data("a\n".utf8))], to: out, replaceable: names)
        // a new set without a test split: the old test split must not survive beside the new train split
        try AtomicDirectory.write([("train.jsonl", Data("b\n".utf8)), ("validation.jsonl", Data("b\n".utf8))], to: out,
                                  replaceable: names)
        #expect(try fm.contentsOfDirectory(atPath: out).sorted() == ["train.jsonl", "validation.jsonl"])
        #expect(try String(contentsOfFile: out + "/validation.jsonl", encoding: .utf8) == "b\n")
        try "mine".write(toFile: out + "/notes.txt", atomically: true, encoding: .utf8)
        expectError("set", line: nil, "holds other files than a task set (notes.txt)") {
            try AtomicDirectory.write([("train.jsonl", Data("c\n".utf8))], to: out, replaceable: names)
        }
        #expect(try String(contentsOfFile: out + "/train.jsonl", encoding: .utf8) == "b\n", "a refused write changes nothing")
        #expect(try fm.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") || $0.contains(".old-") } == [],
                "no staging directory is left behind")
    }

    @Test("errors say what kind they are (the C API's status): missing, malformed, a bad setting")
    func errorKinds() throws {
        func kind(_ body: () throws -> Void) -> DataError.Kind? {
            do { try body(); return nil } catch let e as DataError { return e.kind } catch { return nil }
        }
        #expect(kind { _ = try TextFile(path: dir + "/absent.inter") } == .notFound)
        #expect(kind { _ = try SafeTensors.read(dir + "/absent.safetensors") } == .notFound)
        try "not json".write(toFile: dir + "/c.json", atomically: true, encoding: .utf8)
        #expect(kind { _ = try ItemCatalog.read(dir + "/c.json") } == .badFile)
        var s = RLSettings()
        s.rollouts = 0
        #expect(kind { try s.validate() } == .invalidArgument)
        #expect(kind { _ = try RLRun.open(dir) } == .notFound, "a directory without a run")
        #expect(Set(DataError.Kind.allCases.map { "\($0)" }).count == DataError.Kind.allCases.count)
    }

    @Test("a byte-order mark is not part of the first field; a number too large for a double is named as such")
    func bomAndHugeNumbers() throws {
        let inter = dir + "/bom.inter"
        try Data([0xEF, 0xBB, 0xBF] + Array("user_id:token\titem_id:token\ttimestamp:float\n1\t2\t3\n1\t3\t4\n".utf8))
            .write(to: URL(fileURLWithPath: inter))
        let log = try RecBoleReader.readLog(inter: inter)
        #expect(log.users.count == 1 && log.users[0].items.count == 2, "the BOM-prefixed header names user_id")
        var catalog = ItemCatalog()
        catalog.add("1")
        let tasks = dir + "/huge.jsonl"
        try "{\"inters\": [\"1\"], \"proc_path\": [1e400]}\n".write(toFile: tasks, atomically: true, encoding: .utf8)
        expectError("huge.jsonl", line: 1, "holds a number out of range (1e400") { _ = try TaskFile.read(tasks, catalog: catalog) }
    }

    @Test("settings out of range are rejected with the field named")
    func settings() {
        var s = TaskConstruction()
        s.historyLength = 0
        expectError("task settings", line: nil, "historyLength: expected ≥ 1") { try s.validate() }
        s = TaskConstruction()
        s.splitFractions = [1, 2]
        expectError("task settings", line: nil, "splitFractions") { try s.validate() }
    }

    @Test("simulator checkpoints: unknown tensor names, GRU biases, no item ids, an unknown architecture")
    func simulatorCheckpoints() throws {
        let unknown = dir + "/bert.safetensors"
        try writeTensors(names: ["item_embedding.weight", "bert.layer.0.weight"], shapes: [[5, 4], [4, 4]],
                         values: [[Float](repeating: 0.1, count: 20), [Float](repeating: 0.1, count: 16)], to: unknown)
        expectError("bert.safetensors", line: nil, "tensor names are none of") { _ = try Simulator.load(unknown, itemIDs: ["[PAD]", "a", "b", "c", "d"]) }
        let biased = dir + "/gru-bias.safetensors"
        try writeTensors(names: ["item_embedding.weight", "gru_layers.weight_hh_l0", "gru_layers.bias_hh_l0"],
                         shapes: [[5, 4], [24, 8], [24]], values: [[Float](repeating: 0, count: 20),
                                                                   [Float](repeating: 0, count: 192), [Float](repeating: 0, count: 24)],
                         to: biased)
        expectError("gru-bias.safetensors", line: nil, "bias=False") { _ = try Simulator.load(biased, itemIDs: ["[PAD]", "a", "b", "c", "d"]) }
        // a real GRU4Rec state_dict without ids, and with ids of the wrong count
        let sim = try RewardModelTests.simulator("gru4rec")
        let bare = dir + "/gru.safetensors"
        let entries = sim.model.store.entries
        try writeTensors(names: entries.map(\.name), shapes: entries.map(\.shape),
                         values: entries.indices.map { sim.model.store.value($0).toArray() }, to: bare)
        expectError("gru.safetensors", line: nil, "has no item ids") { _ = try Simulator.load(bare) }
        expectError("gru.safetensors", line: nil, "3 item ids for an item table of 60 rows") {
            _ = try Simulator.load(bare, itemIDs: ["[PAD]", "a", "b"])
        }
        // metadata naming an architecture the registry lacks
        let named = dir + "/named.safetensors"
        try SafeTensors.write(sim.model.store, metadata: ["format": Simulator.format, "architecture": "bert4rec",
                                                          "config": "{}", "item_ids": "[]"], to: named)
        expectError("named.safetensors", line: nil, "'bert4rec' is not one of sasrec, gru4rec") { _ = try Simulator.load(named) }
    }

    @Test("safetensors headers that lie: huge lengths, negative or overflowing shapes, offsets, overlaps")
    func safetensorsHeaders() throws {
        /// A file of an 8-byte length `length` (default: the header's), the JSON header, then `body` bytes.
        func file(_ name: String, header: String, length: UInt64? = nil, body: Int = 16) throws -> String {
            var data = Data()
            var n = (length ?? UInt64(header.utf8.count)).littleEndian
            withUnsafeBytes(of: &n) { data.append(contentsOf: $0) }
            data.append(Data(header.utf8))
            data.append(Data(count: body))
            let path = dir + "/" + name
            try data.write(to: URL(fileURLWithPath: path))
            return path
        }
        let ok = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        for (length, name) in [(UInt64.max, "max.safetensors"), (UInt64(1) << 63, "2p63.safetensors"),
                               (UInt64(Int.max), "intmax.safetensors")] {
            let path = try file(name, header: ok, length: length)
            expectError(name, line: nil, "header length \(length) exceeds the file") { _ = try SafeTensors.read(path) }
        }
        let negative = try file("neg.safetensors", header: #"{"a":{"dtype":"F32","shape":[-2,-4],"data_offsets":[0,32]}}"#)
        expectError("neg.safetensors", line: nil, "negative dimension") { _ = try SafeTensors.read(negative) }
        let huge = try file("huge.safetensors",
                            header: #"{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}}"#)
        expectError("huge.safetensors", line: nil, "more values than the file has bytes") { _ = try SafeTensors.read(huge) }
        let offsets = try file("off.safetensors",
                               header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[9223372036854775800,-9223372036854775800]}}"#)
        expectError("off.safetensors", line: nil, "do not fit shape") { _ = try SafeTensors.read(offsets) }
        let overlap = try file("overlap.safetensors", header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
                               + #""b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#)
        expectError("overlap.safetensors", line: nil, "overlap") { _ = try SafeTensors.read(overlap) }
        // the well-formed file reads
        let good = try file("good.safetensors", header: ok)
        #expect(try SafeTensors.read(good).tensors["a"]?.values == [0, 0])
    }

    @Test("non-finite weights: never written, refused on load, and training that diverges stops")
    func nonFinite() throws {
        let sim = try RewardModelTests.simulator("sasrec")
        let path = dir + "/finite.safetensors"
        try sim.save(to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        sim.model.store.values.base[7] = .nan
        expectError("finite.safetensors", line: nil, "is not finite at index") { try sim.save(to: path) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before, "the good file is untouched")
        // a file carrying a NaN (written by another tool) is refused with the tensor named
        let entries = sim.model.store.entries
        let nanFile = dir + "/nan.safetensors"
        try writeTensors(names: entries.map(\.name), shapes: entries.map(\.shape),
                         values: entries.indices.map { sim.model.store.value($0).toArray() }, to: nanFile)
        expectError("nan.safetensors", line: nil, "has a non-finite value (nan) at index 7") {
            _ = try Simulator.load(nanFile, itemIDs: sim.itemIDs)
        }
        // simulator training at an absurd learning rate stops, naming the step
        var text = "user_id:token\titem_id:token\ttimestamp:float\n"
        for u in 0..<6 { for i in 0..<8 { text += "\(u)\t\((u + i) % 10)\t\(i)\n" } }
        let log = try RecBoleReader.readLog(inter: TestPaths.write(text, "tiny.inter", in: dir))
        var settings = SimulatorTraining()
        settings.learningRate = 1e30
        settings.batchSize = 4
        settings.epochs = 3
        let trainer = try SimulatorTrainer(log: log, model: try SequenceArchitectures.standard.create(
            log.catalog.vocabularySize, SequenceModelOptions(), 1), settings: settings)
        expectError("simulator training", line: nil, "the loss is") { _ = try trainer.run { _ in } }
    }

    @Test("checkpoint metadata that lies: eos, decoder start, eps, sizes far beyond the tensors")
    func lyingMetadata() throws {
        /// Rewrites `path`'s metadata entry `key` (a JSON object) with `change`, into NAME.
        func rewrite(_ path: String, _ name: String, key: String, _ change: (inout [String: Any]) -> Void) throws -> String {
            let (tensors, meta) = try SafeTensors.read(path)
            var m = meta
            var object = try JSONSerialization.jsonObject(with: Data(meta[key]!.utf8)) as! [String: Any]
            change(&object)
            m[key] = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
            let names = tensors.keys.sorted()
            let out = dir + "/" + name
            try writeTensors(names: names, shapes: names.map { tensors[$0]!.shape }, values: names.map { tensors[$0]!.values },
                             metadata: m, to: out)
            return out
        }
        let inputs = try CommandTests.tinyInputs(in: dir + "/tiny")
        _ = try Policy.load(inputs.policy)
        let cases: [(String, String, (inout [String: Any]) -> Void)] = [
            ("eos.safetensors", "is not the tokenizer's", { $0["eosToken"] = 3 }),
            ("start.safetensors", "decoderStartToken 100000 outside the vocabulary", { $0["decoderStartToken"] = 100000 }),
            ("negstart.safetensors", "decoderStartToken -7 outside", { $0["decoderStartToken"] = -7 }),
            ("eps.safetensors", "layerNormEps: expected a value in (0, 1], found -1", { $0["layerNormEps"] = -1 }),
            // beyond any model: refused by the bounds before anything is computed from them
            ("heads.safetensors", "heads: expected 1...256, found 1000000", { $0["heads"] = 1_000_000; $0["headWidth"] = 1_000_000 }),
            ("huge.safetensors", "headWidth: expected 1...1024", { $0["headWidth"] = 1 << 62 }),
            ("layers.safetensors", "encoderLayers: expected 1...128", { $0["encoderLayers"] = 1_000_000_000 }),
            // within the bounds but not what the file holds: compared with the tensors before allocation
            ("heads2.safetensors", "the config says", { $0["heads"] = 200; $0["headWidth"] = 1000 }),
            ("layers2.safetensors", "layers; the file has", { $0["encoderLayers"] = 120 }),
        ]
        for (name, needle, change) in cases {
            let bad = try rewrite(inputs.policy, name, key: "config", change)
            expectError(name, line: nil, needle) { _ = try Policy.load(bad) }
        }
        let simCases: [(String, String, (inout [String: Any]) -> Void)] = [
            ("sim-layers.safetensors", "layers: expected 1...64", { $0["layers"] = 1_000_000_000 }),
            ("sim-layers2.safetensors", "layers; the file has", { $0["layers"] = 60 }),
            ("sim-hidden.safetensors", "hidden: expected 1...4096", { $0["hidden"] = 1 << 20; $0["heads"] = 1 }),
            ("sim-hidden2.safetensors", "the config says", { $0["hidden"] = 4096; $0["heads"] = 1 }),
            ("sim-eps.safetensors", "layerNormEps: expected a value in (0, 1], found -1", { $0["layerNormEps"] = -1 }),
        ]
        for (name, needle, change) in simCases {
            let bad = try rewrite(inputs.simulator, name, key: "config", change)
            expectError(name, line: nil, needle) { _ = try Simulator.load(bad) }
        }
    }

    @Test("catalogue attribute indexes and tokenizer codebooks out of range")
    func catalogAndTokenizer() throws {
        let catalog = TestPaths.write(#"{"attribute_names":["Drama"],"items":[{"id":"1","title":"A","attributes":[0,3]}]}"#,
                                      "catalog.json", in: dir)
        expectError("catalog.json", line: nil, "attribute index 3 outside attribute_names (1 names)") {
            _ = try ItemCatalog.read(catalog)
        }
        let negative = TestPaths.write(#"{"attribute_names":["Drama"],"items":[{"id":"1","title":"A","attributes":[-1]}]}"#,
                                       "neg-catalog.json", in: dir)
        expectError("neg-catalog.json", line: nil, "attribute index -1") { _ = try ItemCatalog.read(negative) }
        for (json, needle) in [(#"{"kind":"per-item","codebook_sizes":[],"tokens_per_item":1}"#, "non-empty list"),
                               (#"{"kind":"per-item","codebook_sizes":[1000000000000],"tokens_per_item":1}"#, "1...67108864")] {
            #expect(throws: DecodingError.self) { _ = try JSONDecoder().decode(ItemTokenizer.self, from: Data(json.utf8)) }
            do { _ = try JSONDecoder().decode(ItemTokenizer.self, from: Data(json.utf8)) } catch {
                #expect("\(error)".contains(needle), "\(error) should say \(needle)")
            }
        }
    }

    @Test("atomic writes leave nothing behind when they fail")
    func atomicWrite() throws {
        let blocker = TestPaths.write("a file, not a directory", "blocker", in: dir)
        #expect(throws: DataError.self) { try AtomicFile.write("x", to: blocker + "/out.jsonl") }
        let listing = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(!listing.contains { $0.contains(".tmp-") }, "temporary files left: \(listing)")
        // a successful write replaces the old file whole
        let target = dir + "/tasks.jsonl"
        try AtomicFile.write("old\n", to: target)
        try AtomicFile.write("new\n", to: target)
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "new\n")
    }
}
