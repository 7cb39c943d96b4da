import Foundation
import ProRL
import ProRLTestSupport
import Testing

@Suite("Task construction, tokenizers, synthetic world")
struct TaskAndTokenizerTests {
    static func ml100k() throws -> InteractionLog {
        try RecBoleReader.readLog(inter: TestPaths.data("ml-100k/ml-100k.inter"),
                                  item: TestPaths.data("ml-100k/ml-100k.item"))
    }

    @Test("ML-100K tasks: users split disjointly, deterministic, filters hold")
    func tasksFromLog() throws {
        let log = try Self.ml100k()
        let settings = TaskConstruction()
        let a = try TaskBuilder.build(log, settings: settings)
        let b = try TaskBuilder.build(log, settings: settings)
        #expect(a.train == b.train && a.validation == b.validation && a.test == b.test, "same seed, same tasks")
        let users = a.all.map { Set($0.tasks.compactMap(\.user)) }
        #expect(users[0].isDisjoint(with: users[1]) && users[0].isDisjoint(with: users[2])
                && users[1].isDisjoint(with: users[2]), "splits share users")
        #expect(users[0].count + users[1].count + users[2].count > 900, "most users contribute tasks")
        for (_, tasks) in a.all {
            for t in tasks {
                #expect(t.history.count == 10 && (1...10).contains(t.path.count))
                #expect(!t.history.contains(t.target) && !t.path.contains(t.target), "filters")
            }
        }
        // the window is contiguous in the user's sequence
        let seqs = Dictionary(uniqueKeysWithValues: log.users.map { ($0.user, $0.items) })
        for t in a.train.prefix(300) {
            let window = t.history + t.path + [t.target]
            let s = try #require(seqs[t.user!])
            let found = (0...(s.count - window.count)).contains { Array(s[$0..<($0 + window.count)]) == window }
            #expect(found, "task of user \(t.user!) is not a window of their sequence")
        }
        var other = settings
        other.seed = 99
        let c = try TaskBuilder.build(log, settings: other)
        #expect(c.train != a.train, "another seed gives other tasks")
        // more windows for held-out users: same users and training tasks, a superset of their tasks
        var more = settings
        more.evaluationTasksPerUser = 16
        let d = try TaskBuilder.build(log, settings: more)
        #expect(d.train == a.train, "the training tasks do not depend on the evaluation windows")
        #expect(d.validation.count > a.validation.count && Set(a.validation.map { "\($0)" }).isSubset(of: Set(d.validation.map { "\($0)" })),
                "validation: \(a.validation.count) tasks with 8 windows per user, \(d.validation.count) with 16, not a superset")
        #expect(Set(d.test.compactMap(\.user)) == users[2], "test users change")
    }

    @Test("task files round-trip through JSON lines in the ProRL schema")
    func taskFileRoundTrip() throws {
        let log = try Self.ml100k()
        let tasks = try TaskBuilder.build(log, settings: TaskConstruction()).validation
        let dir = TestPaths.temporaryDirectory()
        try TaskFile.write(tasks, catalog: log.catalog, to: dir + "/val.jsonl")
        let back = try TaskFile.read(dir + "/val.jsonl", catalog: log.catalog)
        #expect(back == tasks)
        let first = try String(contentsOfFile: dir + "/val.jsonl", encoding: .utf8).split(separator: "\n")[0]
        let object = try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any]
        #expect(object?["inters"] is [String] && object?["proc_path"] is [String] && object?["user"] is String)
        // the official test layout: "target" and no "user"
        let t = tasks[0]
        let raw = { (i: Int32) in "\"\(log.catalog.raw(i))\"" }
        let testLayout = "[{\"inters\": [\(t.history.map(raw).joined(separator: ","))], \"proc_path\": [\((t.path + [t.target]).map(raw).joined(separator: ","))], \"target\": \(raw(t.target))}]"
        TestPaths.write(testLayout, "x.test", in: dir)
        let parsed = try TaskFile.read(dir + "/x.test", catalog: log.catalog)
        #expect(parsed == [ProactiveTask(user: nil, history: t.history, path: t.path, target: t.target)])
    }

    @Test("per-item tokenizer and trie")
    func perItemTokenizer() throws {
        let tok = try ItemTokenizer(perItem: 5)
        #expect(tok.vocabularySize == 7 && tok.eosToken == 6 && tok.tokensPerItem == 1)
        #expect(tok.encode([3, 1]) == [3, 1, 6])
        #expect(tok.decode([3, 1, 6, 2]) == [3, 1])
        #expect(Array(tok.trie.allowedTokens(at: 0)) == [1, 2, 3, 4, 5])
        #expect(tok.item(of: [9]) == nil, "unknown token")
    }

    @Test("semantic-ID trie: allowed tokens at each depth, invalid tuples rejected")
    func semanticTrie() throws {
        let codes = [[], [0, 0, 1], [0, 1, 1], [2, 0, 1], [0, 0, 2]]
        let tok = try ItemTokenizer(semanticIDs: codes, codebookSize: 4)
        // token = code + 4·digit + 1: digit 1 tokens 1…4, digit 2 5…8, digit 3 9…12; EOS 14
        #expect(tok.eosToken == 14 && tok.vocabularySize == 15)
        #expect(Array(tok.tokens(of: 4)) == [1, 5, 11])
        #expect(Array(tok.trie.allowedTokens(at: 0)) == [1, 3])
        let n1 = try #require(tok.trie.child(of: 0, token: 1))
        #expect(Array(tok.trie.allowedTokens(at: n1)) == [5, 6])
        let n2 = try #require(tok.trie.child(of: n1, token: 5))
        #expect(Array(tok.trie.allowedTokens(at: n2)) == [10, 11])
        #expect(tok.item(of: [1, 5, 10]) == 1 && tok.item(of: [1, 6, 10]) == 2 && tok.item(of: [3, 5, 10]) == 3)
        #expect(tok.item(of: [3, 6, 10]) == nil, "a tuple no item has")
        #expect(tok.decode([1, 5, 11, 3, 6, 10, 14]) == [4, nil])
        #expect(throws: DataError.self) { try ItemTokenizer(semanticIDs: [[], [0, 0, 1], [0, 0, 1]], codebookSize: 4) }
        #expect(throws: DataError.self) { try ItemTokenizer(semanticIDs: [[], [0, 9, 1]], codebookSize: 4) }
    }

    @Test("residual k-means separates planted clusters and gives unique codes")
    func residualKMeans() throws {
        var rng = SplitMix64(seed: 5)
        // 4 well separated centres in 8 dimensions, 30 points each
        let centres = (0..<4).map { c in (0..<8).map { d in d == c * 2 ? Float(10) : Float(0) } }
        var embeddings: [[Float]] = [[]]
        var truth: [Int] = [-1]
        for c in 0..<4 {
            for _ in 0..<30 {
                embeddings.append(centres[c].map { $0 + Float(rng.nextUnit() - 0.5) })
                truth.append(c)
            }
        }
        var settings = ResidualKMeans.Settings()
        settings.codebookSize = 16
        settings.levels = 2
        let codes = try ResidualKMeans.codes(embeddings: embeddings, settings: settings)
        #expect(codes.count == 121 && codes[1].count == 3)
        // 16 level-1 clusters over 4 well separated groups: none mixes groups,
        // and every group is covered
        for i in 1...120 {
            for j in 1...120 where codes[i][0] == codes[j][0] {
                #expect(truth[i] == truth[j], "items \(i), \(j) of different groups share level-1 code \(codes[i][0])")
            }
        }
        #expect(Set((1...120).map { truth[$0] }) == Set(0..<4))
        #expect(Set(codes.dropFirst()).count == 120, "collision digit makes tuples unique")
        let again = try ResidualKMeans.codes(embeddings: embeddings, settings: settings)
        #expect(again == codes, "deterministic")
        let tok = try ItemTokenizer(semanticIDs: codes, codebookSize: 16)
        #expect((1...120).allSatisfy { tok.item(of: tok.tokens(of: Int32($0))) == Int32($0) })
    }

    @Test("the synthetic world regenerates the committed Data/ files bit for bit")
    func syntheticWorldRegenerates() throws {
        let (world, log) = try SyntheticWorld.generate(SyntheticWorld.Settings())
        let dir = TestPaths.temporaryDirectory()
        try SyntheticWorld.write(world: world, log: log, to: dir)
        for name in ["synthetic.inter", "synthetic.item", "world.json"] {
            let fresh = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
            let committed = try Data(contentsOf: URL(fileURLWithPath: TestPaths.packageRoot + "/Data/synthetic/" + name))
            #expect(fresh == committed, "Data/synthetic/\(name) differs from a fresh generation")
        }
        // and the files read back as a log with the same sequences
        let back = try RecBoleReader.readLog(inter: dir + "/synthetic.inter", item: dir + "/synthetic.item")
        // (dense ids follow first appearance in the file; compare raw ids)
        #expect(back.users.map { $0.items.map(back.catalog.raw) } == log.users.map { $0.items.map(log.catalog.raw) })
        #expect(back.catalog.itemCount == log.catalog.itemCount)
        #expect(try SyntheticWorld.read(dir + "/world.json") == world)
    }

    @Test("ground truth: following the taste raises target interest")
    func syntheticGroundTruth() throws {
        let (world, log) = try SyntheticWorld.generate(SyntheticWorld.Settings())
        let tasks = try TaskBuilder.build(log, settings: TaskConstruction()).train
        var gains = 0.0, counted = 0
        for t in tasks.prefix(300) {
            let g = try #require(world.guidance(log: log, user: t.user!, history: t.history, path: t.path, target: t.target))
            #expect((0...1).contains(g.meanAcceptance) && (0...1).contains(g.targetBefore))
            gains += g.gain
            counted += 1
            // an empty path changes nothing
            let none = try #require(world.guidance(log: log, user: t.user!, history: t.history, path: [], target: t.target))
            #expect(none.gain == 0)
        }
        // the logged paths were accepted by users drifting toward their later items
        #expect(gains / Double(counted) > 0, "mean true gain of reference paths \(gains / Double(counted))")
    }

    @Test("ground truth speaks raw ids: a log read back from its files (other dense ids) gets the same truth")
    func syntheticGroundTruthAfterReading() throws {
        let (world, log) = try SyntheticWorld.generate(SyntheticWorld.Settings())
        let dir = TestPaths.temporaryDirectory()
        try SyntheticWorld.write(world: world, log: log, to: dir)
        let back = try RecBoleReader.readLog(inter: dir + "/synthetic.inter", item: dir + "/synthetic.item")
        let moved = (1...log.catalog.itemCount).filter { back.catalog.raw(Int32($0)) != String($0) }.count
        #expect(moved > log.catalog.itemCount / 2, "reading renumbers the items (else this test shows nothing): \(moved)")
        let toBack = { (id: Int32) in back.catalog.dense(log.catalog.raw(id))! }
        var differs = 0
        for t in try TaskBuilder.build(log, settings: TaskConstruction()).test.prefix(200) {
            let truth = try #require(world.guidance(log: log, user: t.user!, history: t.history, path: t.path, target: t.target))
            let read = try #require(world.guidance(log: back, user: t.user!, history: t.history.map(toBack),
                                                   path: t.path.map(toBack), target: toBack(t.target)))
            // or the tasks' own ids, with the catalog they belong to
            let mixed = world.guidance(log: back, user: t.user!, history: t.history, path: t.path, target: t.target,
                                       catalog: log.catalog)
            if read != truth || mixed != truth { differs += 1 }
        }
        #expect(differs == 0, "\(differs) of 200 tasks got another truth from the log read back from its files")
        // an item that is not the world's has no truth
        var stranger = back.catalog
        let extra = stranger.add("not-an-item")
        let odd = InteractionLog(catalog: stranger, users: back.users)
        let t = back.users[0]
        #expect(world.guidance(log: odd, user: t.user, history: Array(t.items.prefix(10)), path: [extra], target: t.items[10]) == nil)
    }
}
