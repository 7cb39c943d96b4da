import Foundation
import ProRL
import ProRLTestSupport
import Testing

/// Readers on the real files in ../shared/data (read in place).
@Suite("Data readers on real data")
struct DataReadersTests {
    @Test("ML-100K RecBole atomic files: 943 users, 1682 items, 100000 events, titles and genres")
    func movieLens100K() throws {
        let log = try RecBoleReader.readLog(inter: TestPaths.data("ml-100k/ml-100k.inter"),
                                            item: TestPaths.data("ml-100k/ml-100k.item"))
        #expect(log.users.count == 943, "users")
        #expect(log.catalog.itemCount == 1682, "items")
        #expect(log.eventCount == 100_000, "events")
        let toyStory = try #require(log.catalog.dense("1"))
        #expect(log.catalog.titles[Int(toyStory)] == "Toy Story", "title of item 1")
        let genres = log.catalog.attributes[Int(toyStory)].map { log.catalog.attributeNames[Int($0)] }
        #expect(genres == ["Animation", "Children's", "Comedy"], "genres of item 1: \(genres)")
        for user in log.users {
            #expect(zip(user.timestamps, user.timestamps.dropFirst()).allSatisfy { $0 <= $1 },
                    "user \(user.user) events out of time order")
        }
        // dense ids follow RecBole's rule: first appearance in the log
        #expect(log.catalog.rawIDs[1] == "242" && log.catalog.rawIDs[2] == "302", "first items in log order")
    }

    @Test("RecBole's time order differs from a stable sort for exactly 83 ML-100K users")
    func recboleOrder() throws {
        let inter = TestPaths.data("ml-100k/ml-100k.inter")
        let stable = try RecBoleReader.readLog(inter: inter, order: .stable)
        let recbole = try RecBoleReader.readLog(inter: inter, order: .recbole)
        let differing = zip(stable.users, recbole.users).filter { $0.items != $1.items }.count
        #expect(differing == 83, "users whose order differs: \(differing) (the data README counts 83)")
        var lastTwo = 0
        for (a, b) in zip(stable.users, recbole.users) where a.items.last != b.items.last { lastTwo += 1 }
        #expect(lastTwo == 4, "users whose last (test) item differs: \(lastTwo) (the data README counts 4)")
    }

    @Test("ML-1M movies.dat is latin-1: 3883 movies, accented titles, | genres")
    func movies() throws {
        var catalog = ItemCatalog()
        try MovieLensReader.readMovies(TestPaths.data("ml-1m/movies.dat"), into: &catalog)
        #expect(catalog.itemCount == 3883)
        let les = try #require(catalog.dense("73"))
        #expect(catalog.titles[Int(les)] == "Misérables, Les (1995)")
        #expect(catalog.attributeNames.count == 18, "genres: \(catalog.attributeNames.count)")
    }

    @Test("official ProRL validation splits import with every item resolved", arguments: [
        ("ml-1m", 6771, 1.838), ("Steam", 9522, 3.288), ("Books", 8986, 2.431),
    ])
    func prorlSplits(dataset: String, records: Int, meanPath: Double) throws {
        let dir = TestPaths.data("prorl-splits/\(dataset)")
        let catalog = try ProRLDatamaps.catalog("\(dir)/\(dataset).datamaps")
        let tasks = try TaskFile.read("\(dir)/\(dataset).val", catalog: catalog)
        #expect(tasks.count == records, "\(dataset): \(tasks.count) records")
        #expect(tasks.allSatisfy { $0.history.count == 10 }, "histories of 10")
        let stats = TaskStatistics(tasks)
        #expect(abs(stats.meanPathLength - meanPath) < 0.0005, "\(dataset): mean path length \(stats.meanPathLength)")
        #expect(tasks.allSatisfy { $0.user != nil }, "val records carry users")
        let tokenizer = try ProRLDatamaps.tokenizer(semanticIDs: "\(dir)/qwen3-embedding-8b-pca.sem_ids", catalog: catalog)
        #expect(tokenizer.vocabularySize == 1027 && tokenizer.eosToken == 1026, "ProRL token layout")
        for task in tasks.prefix(200) {
            for item in task.history + task.path + [task.target] {
                #expect(tokenizer.item(of: tokenizer.tokens(of: item)) == item, "round trip of item \(item)")
            }
        }
    }

    @Test("ml-1m semantic IDs tokenise as the reference: code + 256·digit + 1")
    func semanticIDTokens() throws {
        let dir = TestPaths.data("prorl-splits/ml-1m")
        let catalog = try ProRLDatamaps.catalog("\(dir)/ml-1m.datamaps")
        let tokenizer = try ProRLDatamaps.tokenizer(semanticIDs: "\(dir)/qwen3-embedding-8b-pca.sem_ids", catalog: catalog)
        // sem_ids["1"] = [82, 195, 247, 1]
        let toyStory = try #require(catalog.dense("1"))
        #expect(Array(tokenizer.tokens(of: toyStory)) == [83, 452, 760, 770])
        #expect(catalog.displayName(toyStory) == "Toy Story (1995)")
        // every item decodes back; the trie has one leaf per item
        for item in 1...Int32(catalog.itemCount) {
            #expect(tokenizer.item(of: tokenizer.tokens(of: item)) == item)
        }
        #expect(tokenizer.trie.leafItem.filter { $0 != 0 }.count == catalog.itemCount)
    }
}
