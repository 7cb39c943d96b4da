/// Users' time-ordered item sequences over an ``ItemCatalog``: what every
/// reader produces from a log and every later stage consumes.
public struct InteractionLog: Sendable {
    /// One user's events, oldest first.
    public struct UserSequence: Sendable, Equatable {
        public var user: String
        public var items: [Int32]
        public var timestamps: [Double]
    }

    public var catalog: ItemCatalog
    /// Users in order of first appearance in the source.
    public var users: [UserSequence]

    public init(catalog: ItemCatalog, users: [UserSequence]) {
        self.catalog = catalog
        self.users = users
    }

    /// Total number of events.
    public var eventCount: Int { users.reduce(0) { $0 + $1.items.count } }
}

/// How events with equal timestamps (and timestamps in general) are ordered.
public enum TimeOrder: String, Codable, Sendable, CaseIterable {
    /// By timestamp, ties in file order (a stable sort).
    case stable
    /// RecBole's rule: by the min–max normalised timestamp rounded to
    /// float32, ties in file order. It merges timestamps a few seconds
    /// apart, so it differs from `stable` for some users; use it to
    /// reproduce RecBole's leave-one-out splits.
    case recbole
}

/// Collects raw events and turns them into an ``InteractionLog``.
struct LogBuilder {
    private var users: [String: Int] = [:]
    private var order: [String] = []
    private var events: [[(time: Double, line: Int, item: Int32)]] = []
    var catalog = ItemCatalog()

    mutating func add(user: String, item raw: String, time: Double, line: Int) {
        let item = catalog.add(raw)
        let u: Int
        if let existing = users[user] { u = existing } else {
            u = order.count
            users[user] = u
            order.append(user)
            events.append([])
        }
        events[u].append((time, line, item))
    }

    var isEmpty: Bool { order.isEmpty }

    func build(order timeOrder: TimeOrder) -> InteractionLog {
        var lo = Double.infinity, hi = -Double.infinity
        for list in events { for e in list { lo = min(lo, e.time); hi = max(hi, e.time) } }
        func key(_ t: Double) -> Double {
            switch timeOrder {
            case .stable: return t
            case .recbole: return hi > lo ? Double(Float((t - lo) / (hi - lo))) : 1
            }
        }
        var seqs: [InteractionLog.UserSequence] = []
        seqs.reserveCapacity(order.count)
        for (u, name) in order.enumerated() {
            let sorted = events[u].sorted { a, b in
                let ka = key(a.time), kb = key(b.time)
                return ka != kb ? ka < kb : a.line < b.line
            }
            seqs.append(.init(user: name, items: sorted.map(\.item), timestamps: sorted.map(\.time)))
        }
        return InteractionLog(catalog: catalog, users: seqs)
    }
}
