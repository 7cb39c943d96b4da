/// Maps each catalogued item to a fixed number of policy tokens and back,
/// with the prefix trie constrained decoding walks.
///
/// Token layout (as the ProRL reference): 0 is padding; digit `d` of a
/// semantic ID with code `c` is token `c + offset_d + 1` where `offset_d`
/// sums the earlier codebook sizes; then one reserved (user) token; then
/// EOS. With 4 digits of 256 codes: tokens 1…1024, reserved 1025, EOS 1026,
/// vocabulary 1027. One token per item: token = dense item id, EOS = items + 1.
public struct ItemTokenizer: Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case semanticIDs = "semantic-ids"
        case perItem = "per-item"
    }

    public static let padToken: Int32 = 0

    public let kind: Kind
    public let tokensPerItem: Int
    /// Codes per digit (semantic IDs) or `[itemCount]` (one token per item).
    public let codebookSizes: [Int]
    public let eosToken: Int32
    public let vocabularySize: Int
    /// Tokens of dense item `i` at `[i·tokensPerItem ..< (i+1)·tokensPerItem]`
    /// (row 0, padding, is all zeros).
    public let itemTokens: [Int32]
    public let trie: PrefixTrie

    /// Semantic IDs: `codes[i]` holds the digits of dense item `i` (index 0
    /// ignored); every item needs codes of the same length, each below its
    /// codebook size, and no two items may share a tuple.
    public init(semanticIDs codes: [[Int]], codebookSize: Int = 256, source: String = "semantic IDs") throws {
        guard codes.count >= 2 else { throw DataError(file: source, "no items to tokenise") }
        let width = codes[1].count
        guard width >= 1 else { throw DataError(file: source, "item 1 has no codes") }
        let sizes = [Int](repeating: codebookSize, count: width)
        var offsets = [0]
        for s in sizes.dropLast() { offsets.append(offsets.last! + s) }
        var table = [Int32](repeating: 0, count: codes.count * width)
        for item in 1..<codes.count {
            guard codes[item].count == width else {
                throw DataError(file: source, "item \(item): expected \(width) codes, found \(codes[item].count)")
            }
            for d in 0..<width {
                let c = codes[item][d]
                guard c >= 0 && c < sizes[d] else {
                    throw DataError(file: source, "item \(item): code \(c) of digit \(d + 1) outside 0..<\(sizes[d])")
                }
                table[item * width + d] = Int32(c + offsets[d] + 1)
            }
        }
        let total = sizes.reduce(0, +)
        try self.init(kind: .semanticIDs, tokensPerItem: width, codebookSizes: sizes, eos: Int32(total + 2),
                      vocabularySize: total + 3, itemTokens: table, source: source)
    }

    /// One token per item: token = dense id.
    public init(perItem itemCount: Int) throws {
        guard itemCount >= 1 else { throw DataError(file: "per-item tokenizer", "no items to tokenise") }
        let table = (0...itemCount).map { Int32($0) }
        try self.init(kind: .perItem, tokensPerItem: 1, codebookSizes: [itemCount], eos: Int32(itemCount + 1),
                      vocabularySize: itemCount + 2, itemTokens: table, source: "per-item tokenizer")
    }

    private init(kind: Kind, tokensPerItem: Int, codebookSizes: [Int], eos: Int32, vocabularySize: Int,
                 itemTokens: [Int32], source: String) throws {
        self.kind = kind
        self.tokensPerItem = tokensPerItem
        self.codebookSizes = codebookSizes
        self.eosToken = eos
        self.vocabularySize = vocabularySize
        self.itemTokens = itemTokens
        self.trie = try PrefixTrie(itemTokens: itemTokens, tokensPerItem: tokensPerItem, source: source)
    }

    /// Number of items (dense ids 1...itemCount).
    public var itemCount: Int { itemTokens.count / tokensPerItem - 1 }

    /// The tokens of dense item `item`.
    public func tokens(of item: Int32) -> ArraySlice<Int32> {
        let start = Int(item) * tokensPerItem
        return itemTokens[start..<(start + tokensPerItem)]
    }

    /// The item a token tuple spells, if any.
    public func item<C: Collection>(of tokens: C) -> Int32? where C.Element == Int32 {
        guard tokens.count == tokensPerItem else { return nil }
        var node: Int32 = 0
        for t in tokens {
            guard let next = trie.child(of: node, token: t) else { return nil }
            node = next
        }
        return trie.item(at: node)
    }

    /// Tokens of a sequence of items followed by EOS.
    public func encode(_ items: [Int32], appendEOS: Bool = true) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(items.count * tokensPerItem + 1)
        for i in items { out += tokens(of: i) }
        if appendEOS { out.append(eosToken) }
        return out
    }

    /// Items of a generated token sequence: read item by item up to EOS (or
    /// the end); a tuple that spells no item gives nil in its place.
    public func decode(_ tokens: [Int32]) -> [Int32?] {
        var out: [Int32?] = []
        var i = 0
        while i + tokensPerItem <= tokens.count {
            let chunk = tokens[i..<(i + tokensPerItem)]
            if chunk.contains(eosToken) { break }
            out.append(item(of: chunk))
            i += tokensPerItem
        }
        return out
    }
}

/// The prefix trie of every item's token tuple. Node 0 is the root (an item
/// boundary); a node at depth `tokensPerItem` is a leaf naming its item.
/// Children are stored sorted in one array (compressed rows).
public struct PrefixTrie: Sendable, Equatable {
    /// Children of node n: `childTokens[childStart[n] ..< childStart[n+1]]`,
    /// reaching `childNodes[…]`.
    public let childStart: [Int32]
    public let childTokens: [Int32]
    public let childNodes: [Int32]
    /// Item at each node (0 unless a leaf).
    public let leafItem: [Int32]
    /// Depth of each node (0 at the root).
    public let depth: [Int32]
    /// Items below each node (1 at a leaf).
    public let leafCount: [Int32]

    init(itemTokens: [Int32], tokensPerItem: Int, source: String) throws {
        let itemCount = itemTokens.count / tokensPerItem - 1
        // sort items by their token tuples, then lay the nodes out level by level
        let order = (1...itemCount).sorted { a, b in
            for d in 0..<tokensPerItem {
                let x = itemTokens[a * tokensPerItem + d], y = itemTokens[b * tokensPerItem + d]
                if x != y { return x < y }
            }
            return a < b
        }
        var children: [[(Int32, Int32)]] = [[]]
        var leaf: [Int32] = [0], depth: [Int32] = [0]
        for item in order {
            var node = 0
            for d in 0..<tokensPerItem {
                let t = itemTokens[item * tokensPerItem + d]
                if let last = children[node].last, last.0 == t {
                    node = Int(last.1)
                } else {
                    let new = Int32(children.count)
                    children[node].append((t, new))
                    children.append([])
                    leaf.append(0)
                    depth.append(Int32(d + 1))
                    node = Int(new)
                }
            }
            if leaf[node] != 0 {
                throw DataError(file: source, "items \(leaf[node]) and \(item) have the same tokens")
            }
            leaf[node] = Int32(item)
        }
        var start: [Int32] = [0], tokens: [Int32] = [], nodes: [Int32] = []
        for list in children {
            for (t, n) in list { tokens.append(t); nodes.append(n) }
            start.append(Int32(tokens.count))
        }
        childStart = start
        childTokens = tokens
        childNodes = nodes
        leafItem = leaf
        self.depth = depth
        // nodes are numbered parents first, so one reverse sweep sums the leaves
        var count = leaf.map { $0 == 0 ? Int32(0) : 1 }
        for n in stride(from: children.count - 1, through: 0, by: -1) {
            for (_, c) in children[n] { count[n] += count[Int(c)] }
        }
        leafCount = count
    }

    /// Number of nodes.
    public var nodeCount: Int { leafItem.count }

    /// Tokens allowed after `node`.
    public func allowedTokens(at node: Int32) -> ArraySlice<Int32> {
        childTokens[Int(childStart[Int(node)])..<Int(childStart[Int(node) + 1])]
    }

    /// The node reached from `node` by `token`, if allowed.
    public func child(of node: Int32, token: Int32) -> Int32? {
        var lo = Int(childStart[Int(node)]), hi = Int(childStart[Int(node) + 1])
        while lo < hi {
            let mid = (lo + hi) / 2
            let t = childTokens[mid]
            if t == token { return childNodes[mid] }
            if t < token { lo = mid + 1 } else { hi = mid }
        }
        return nil
    }

    /// The item at a leaf.
    public func item(at node: Int32) -> Int32? {
        let i = leafItem[Int(node)]
        return i == 0 ? nil : i
    }
}
