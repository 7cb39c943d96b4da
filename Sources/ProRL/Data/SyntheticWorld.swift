import Foundation

/// A small world whose users' tastes drift toward what they accept — the
/// premise of proactive recommendation — with the ground truth kept, so any
/// path can be scored by the true model and not only by a learned simulator.
///
/// Model (see Data/README.md):
/// - K genres. Item i has a genre mix gᵢ (non-negative, sums to 1; one to
///   three genres) and an appeal bᵢ. Its attributes are the genres with
///   weight ≥ 0.25.
/// - User u has a taste p (non-negative, sums to 1), initially concentrated
///   on one or two genres.
/// - u accepts i with probability a(p, i) = σ(α·(p·gᵢ − κ) + bᵢ).
/// - Accepting i moves the taste: p ← (1 − η)·p + η·gᵢ.
/// - The log: for each user, candidates are proposed (half from a genre
///   drawn from the user's current taste, half uniformly) and each is accepted with
///   probability a; accepted items are logged with increasing timestamps
///   until the user has L events, L uniform in [minEvents, maxEvents].
/// All arithmetic is IEEE double with a self-contained exp, so the same
/// seed regenerates the same bytes on any machine.
public struct SyntheticWorld: Codable, Sendable, Equatable {
    public struct Settings: Codable, Sendable, Equatable {
        public var seed: UInt64 = 7
        public var genres = 10
        public var items = 600
        public var users = 500
        public var minEvents = 30
        public var maxEvents = 90
        /// Taste sharpness α.
        public var sharpness = 9.0
        /// Taste threshold κ.
        public var threshold = 0.35
        /// Drift rate η.
        public var drift = 0.12
        public init() {}
    }

    public var settings: Settings
    public var genreNames: [String]
    /// Genre mix per item, by the item's number (its raw id; index 0 unused).
    public var itemGenres: [[Double]]
    /// Appeal per item (index 0 unused).
    public var itemAppeal: [Double]
    /// Initial taste per user: index n − 1 for user "un".
    public var initialTaste: [[Double]]

    static let genreWords = ["Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Documentary",
                             "Animation", "Thriller", "Fantasy", "Mystery", "Western", "Musical", "Crime",
                             "War", "Noir"]
    static let adjectives = ["Silent", "Crimson", "Golden", "Hidden", "Last", "Broken", "Electric", "Midnight",
                             "Lonely", "Wild", "Frozen", "Distant", "Burning", "Secret", "Velvet", "Iron",
                             "Paper", "Glass", "Northern", "Little"]
    static let nouns = ["Harbor", "Garden", "Empire", "River", "Station", "Mirror", "Kingdom", "Orchard",
                        "Frontier", "Signal", "Lantern", "Voyage", "Castle", "Meadow", "Engine", "Island",
                        "Circus", "Archive", "Summit", "Canyon"]

    /// Acceptance probability of item i for taste p.
    public func acceptance(_ p: [Double], _ item: Int) -> Double {
        var dot = 0.0
        for k in 0..<settings.genres { dot += p[k] * itemGenres[item][k] }
        return SyntheticWorld.sigmoid(settings.sharpness * (dot - settings.threshold) + itemAppeal[item])
    }

    /// Taste after accepting item i with probability `weight` (1 = accepted;
    /// the expected drift otherwise).
    public func drifted(_ p: [Double], toward item: Int, weight: Double = 1) -> [Double] {
        let e = settings.drift * weight
        return (0..<settings.genres).map { (1 - e) * p[$0] + e * itemGenres[item][$0] }
    }

    /// Generates the world and its interaction log.
    public static func generate(_ s: Settings) throws -> (world: SyntheticWorld, log: InteractionLog) {
        guard s.genres >= 2, s.genres <= genreWords.count else {
            throw DataError.setting("synthetic settings", "genres: expected 2...\(genreWords.count), found \(s.genres)")
        }
        guard (20...100_000).contains(s.items) else { throw DataError.setting("synthetic settings", "items: expected 20...100000, found \(s.items)") }
        guard (1...100_000).contains(s.users) else { throw DataError.setting("synthetic settings", "users: expected 1...100000, found \(s.users)") }
        guard s.minEvents >= 12, s.maxEvents >= s.minEvents, s.maxEvents < s.items / 2 else {
            throw DataError.setting("synthetic settings", "events: expected 12 ≤ minEvents ≤ maxEvents < items/2")
        }
        var rng = SplitMix64(seed: s.seed)
        let K = s.genres
        var genres: [[Double]] = [[]], appeal: [Double] = [0]
        var catalog = ItemCatalog()
        var usedTitles = Set<String>()
        for i in 1...s.items {
            // one to three genres, the first dominant
            let count = 1 + rng.below(3)
            var mix = [Double](repeating: 0, count: K)
            var chosen: [Int] = []
            while chosen.count < count {
                let g = rng.below(K)
                if !chosen.contains(g) { chosen.append(g) }
            }
            var total = 0.0
            for (rank, g) in chosen.enumerated() {
                let w = rank == 0 ? 1.0 + rng.nextUnit() : 0.3 + 0.7 * rng.nextUnit()
                mix[g] = w
                total += w
            }
            mix = mix.map { $0 / total }
            genres.append(mix)
            appeal.append(-1.2 + 1.6 * rng.nextUnit() * rng.nextUnit())
            let id = catalog.add(String(i))
            var title = adjectives[rng.below(adjectives.count)] + " " + nouns[rng.below(nouns.count)]
            while usedTitles.contains(title) { title += " \(["II", "III", "Returns", "Again"][rng.below(4)])" }
            usedTitles.insert(title)
            catalog.setTitle(title + " (\(1970 + rng.below(50)))", of: id)
            catalog.setAttributes((0..<K).filter { mix[$0] >= 0.25 }.map { genreWords[$0] }, of: id)
        }
        let names = Array(genreWords.prefix(K))
        var world = SyntheticWorld(settings: s, genreNames: names, itemGenres: genres, itemAppeal: appeal,
                                   initialTaste: [])
        // items of each genre (where it is the largest weight), for proposals
        var byGenre = [[Int]](repeating: [], count: K)
        for i in 1...s.items {
            let top = (0..<K).max { genres[i][$0] < genres[i][$1] }!
            byGenre[top].append(i)
        }
        var users: [InteractionLog.UserSequence] = []
        for u in 1...s.users {
            var p = [Double](repeating: 0.02, count: K)
            p[rng.below(K)] += 1.0
            if rng.nextUnit() < 0.5 { p[rng.below(K)] += 0.5 }
            let norm = p.reduce(0, +)
            p = p.map { $0 / norm }
            world.initialTaste.append(p)
            let length = rng.uniform(in: s.minEvents...s.maxEvents)
            var items: [Int32] = [], times: [Double] = []
            var seen = Set<Int>()
            var time = 1_600_000_000.0 + Double(rng.below(10_000_000))
            var proposals = 0
            while items.count < length && proposals < 200 * length {
                proposals += 1
                let candidate: Int
                if rng.nextUnit() < 0.5 {
                    // a genre drawn from the user's current taste: what is logged next follows the taste alone
                    var u = rng.nextUnit(), g = 0
                    while g < K - 1 && u >= p[g] { u -= p[g]; g += 1 }
                    let pool = byGenre[g]
                    if pool.isEmpty { continue }
                    candidate = pool[rng.below(pool.count)]
                } else {
                    candidate = 1 + rng.below(s.items)
                }
                if seen.contains(candidate) { continue }
                if rng.nextUnit() < world.acceptance(p, candidate) {
                    seen.insert(candidate)
                    items.append(Int32(candidate))
                    time += Double(60 + rng.below(86_400))
                    times.append(time)
                    p = world.drifted(p, toward: candidate)
                }
            }
            users.append(.init(user: "u\(u)", items: items, timestamps: times))
        }
        return (world, InteractionLog(catalog: catalog, users: users))
    }

    // MARK: Ground truth

    /// The true outcome of guiding a user along a path.
    public struct Guidance: Sendable, Equatable {
        /// Mean acceptance probability of the path's items.
        public var meanAcceptance: Double
        /// Target acceptance probability before and after the path.
        public var targetBefore: Double
        public var targetAfter: Double
        /// targetAfter − targetBefore.
        public var gain: Double { targetAfter - targetBefore }
    }

    /// The world's number of a log item: its raw id ("1" … "items"), or nil
    /// when the item is not one of the world's. Dense ids depend on how a
    /// log was read (first appearance in a file), the raw id does not.
    public func itemNumber(_ dense: Int32, in catalog: ItemCatalog) -> Int? {
        guard dense > 0, Int(dense) < catalog.vocabularySize, let n = Int(catalog.raw(dense)),
              n >= 1, n < itemGenres.count else { return nil }
        return n
    }

    /// The index of a user ("u1" → 0) in `initialTaste`, or nil.
    public func userNumber(_ name: String) -> Int? {
        guard name.first == "u", let n = Int(name.dropFirst()), n >= 1, n <= initialTaste.count else { return nil }
        return n - 1
    }

    /// The true taste of `user` at the end of `history` (dense ids of
    /// `catalog`), found in their logged sequence; nil when the user, an
    /// item or the window is not the world's.
    public func taste(log: InteractionLog, user: String, history: [Int32], catalog: ItemCatalog) -> [Double]? {
        guard let u = userNumber(user), let sequence = log.users.first(where: { $0.user == user }) else { return nil }
        let seq = sequence.items.compactMap { itemNumber($0, in: log.catalog) }
        let window = history.compactMap { itemNumber($0, in: catalog) }
        guard seq.count == sequence.items.count, window.count == history.count, window.count <= seq.count else { return nil }
        for start in 0...(seq.count - window.count) where seq[start..<(start + window.count)].elementsEqual(window) {
            return taste(userNumber: u, after: seq.prefix(start + window.count))
        }
        return nil
    }

    /// The taste of user `userNumber` after accepting `items` (world numbers)
    /// from their initial taste.
    public func taste(userNumber: Int, after items: some Sequence<Int>) -> [Double] {
        var p = initialTaste[userNumber]
        for item in items { p = drifted(p, toward: item) }
        return p
    }

    /// Ground truth for `path` after a user's `history` toward `target`,
    /// dense ids of `catalog` (by default the log's own; any reading of the
    /// same items will do, they are matched by raw id): the taste is the
    /// user's true taste at the end of the history (found in their log),
    /// each path item is accepted with its probability and moves the taste
    /// by its expected drift. Nil when the user, the history or an item is
    /// not the world's.
    public func guidance(log: InteractionLog, user: String, history: [Int32], path: [Int32], target: Int32,
                         catalog: ItemCatalog? = nil) -> Guidance? {
        let ids = catalog ?? log.catalog
        let walked = path.compactMap { itemNumber($0, in: ids) }
        guard walked.count == path.count, let t = itemNumber(target, in: ids),
              var p = taste(log: log, user: user, history: history, catalog: ids) else { return nil }
        let before = acceptance(p, t)
        var sum = 0.0
        for item in walked {
            let a = acceptance(p, item)
            sum += a
            p = drifted(p, toward: item, weight: a)
        }
        return Guidance(meanAcceptance: path.isEmpty ? 0 : sum / Double(path.count), targetBefore: before,
                        targetAfter: acceptance(p, t))
    }

    // MARK: Files

    /// Writes the log (`synthetic.inter`, `synthetic.item`, RecBole format)
    /// and the ground truth (`world.json`) into `directory`.
    public static func write(world: SyntheticWorld, log: InteractionLog, to directory: String) throws {
        var inter = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        for user in log.users {
            for (item, t) in zip(user.items, user.timestamps) {
                inter += "\(user.user)\t\(log.catalog.raw(item))\t1\t\(Int64(t))\n"
            }
        }
        var item = "item_id:token\ttitle:token_seq\tgenres:token_seq\n"
        for id in 1...log.catalog.itemCount {
            let names = log.catalog.attributes[id].map { log.catalog.attributeNames[Int($0)] }
            item += "\(log.catalog.rawIDs[id])\t\(log.catalog.titles[id])\t\(names.joined(separator: " "))\n"
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let json = try encoder.encode(world)
        try AtomicFile.write(inter, to: directory + "/synthetic.inter")
        try AtomicFile.write(item, to: directory + "/synthetic.item")
        try AtomicFile.write(json, to: directory + "/world.json")
    }

    /// Reads `world.json`.
    public static func read(_ path: String) throws -> SyntheticWorld {
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError.unreadable(path) }
        let world: SyntheticWorld
        do { world = try JSONDecoder().decode(SyntheticWorld.self, from: data) } catch {
            throw DataError(file: path, "is not a synthetic world: \(error)")
        }
        try world.validate(path)
        return world
    }

    /// Checks that the sizes agree with the settings and every number is
    /// usable, naming the first field that is not.
    func validate(_ path: String) throws {
        let s = settings, K = s.genres
        func bad(_ field: String, _ expected: String) -> DataError { DataError(file: path, "\(field): expected \(expected)") }
        guard (2...SyntheticWorld.genreWords.count).contains(K) else { throw bad("settings.genres", "2...\(SyntheticWorld.genreWords.count), found \(K)") }
        guard s.items >= 1, s.users >= 1 else { throw bad("settings.items/users", "≥ 1") }
        guard s.sharpness.isFinite, s.threshold.isFinite, s.drift.isFinite, (0...1).contains(s.drift) else {
            throw bad("settings.sharpness/threshold/drift", "finite numbers, drift in 0...1")
        }
        guard genreNames.count == K else { throw bad("genreNames", "\(K) names, found \(genreNames.count)") }
        guard itemGenres.count == s.items + 1, itemAppeal.count == s.items + 1 else {
            throw bad("itemGenres/itemAppeal", "\(s.items + 1) entries (index 0 unused), found \(itemGenres.count)/\(itemAppeal.count)")
        }
        for i in 1...s.items {
            guard itemGenres[i].count == K, itemGenres[i].allSatisfy({ $0.isFinite && $0 >= 0 }) else {
                throw bad("itemGenres[\(i)]", "\(K) finite non-negative weights")
            }
            guard itemAppeal[i].isFinite else { throw bad("itemAppeal[\(i)]", "a finite number") }
        }
        guard initialTaste.count == s.users else { throw bad("initialTaste", "\(s.users) users, found \(initialTaste.count)") }
        for (u, p) in initialTaste.enumerated() where p.count != K || !p.allSatisfy({ $0.isFinite && $0 >= 0 }) {
            throw bad("initialTaste[\(u)]", "\(K) finite non-negative weights")
        }
    }

    // MARK: Deterministic math

    static func sigmoid(_ x: Double) -> Double { x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)) }

    /// e^x from IEEE arithmetic only: x = n·ln2 + r, |r| ≤ ln2/2, Taylor
    /// series of e^r to 1e-17, scaled by 2^n exactly.
    static func exp(_ x: Double) -> Double {
        if x < -700 { return 0 }
        if x > 700 { return .infinity }
        let n = (x / 0.6931471805599453).rounded()
        let r = x - n * 0.6931471805599453
        var term = 1.0, sum = 1.0
        for k in 1...20 {
            term *= r / Double(k)
            sum += term
        }
        return sum * Double(sign: .plus, exponent: Int(n), significand: 1)
    }
}
