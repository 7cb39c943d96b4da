import Foundation

extension ItemCatalog: Codable {
    enum CodingKeys: String, CodingKey { case items, attributeNames = "attribute_names" }
    struct Item: Codable { let id: String; let title: String; let attributes: [Int32] }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        let names = try c.decode([String].self, forKey: .attributeNames)
        for (n, item) in try c.decode([Item].self, forKey: .items).enumerated() {
            if let bad = item.attributes.first(where: { $0 < 0 || Int($0) >= names.count }) {
                throw DecodingError.dataCorruptedError(forKey: .items, in: c, debugDescription:
                    "item \(n) ('\(item.id)'): attribute index \(bad) outside attribute_names (\(names.count) names)")
            }
            guard dense(item.id) == nil else {
                throw DecodingError.dataCorruptedError(forKey: .items, in: c, debugDescription: "item \(n): id '\(item.id)' occurs twice")
            }
            let id = add(item.id)
            setTitle(item.title, of: id)
            setAttributes(item.attributes.map { names[Int($0)] }, of: id)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(attributeNames, forKey: .attributeNames)
        try c.encode((1..<rawIDs.count).map { Item(id: rawIDs[$0], title: titles[$0], attributes: attributes[$0]) },
                     forKey: .items)
    }

    /// Writes the catalogue as JSON (atomically).
    public func write(to path: String) throws {
        try AtomicFile.write(try encoded(), to: path)
    }

    /// The bytes ``write(to:)`` writes.
    public func encoded() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return try e.encode(self)
    }

    /// Reads a catalogue written by ``write(to:)``.
    public static func read(_ path: String) throws -> ItemCatalog {
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError.unreadable(path) }
        do { return try JSONDecoder().decode(ItemCatalog.self, from: data) } catch {
            throw DataError(file: path, "is not an item catalogue: \(error)")
        }
    }
}

extension ItemTokenizer: Codable {
    enum CodingKeys: String, CodingKey {
        case kind, codebookSizes = "codebook_sizes", tokensPerItem = "tokens_per_item", itemTokens = "item_tokens"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let kind = try c.decode(Kind.self, forKey: .kind)
        let sizes = try c.decode([Int].self, forKey: .codebookSizes)
        // at most 2^26 codes (or items) per codebook: tables that size are allocated before anything else is checked
        guard let first = sizes.first, sizes.allSatisfy({ (1...(1 << 26)).contains($0) }) else {
            throw DecodingError.dataCorruptedError(forKey: .codebookSizes, in: c, debugDescription:
                "codebook_sizes must be a non-empty list of sizes in 1...67108864, found \(sizes.prefix(8))")
        }
        switch kind {
        case .perItem:
            guard sizes.count == 1, (try c.decodeIfPresent(Int.self, forKey: .tokensPerItem)) ?? 1 == 1 else {
                throw DecodingError.dataCorruptedError(forKey: .tokensPerItem, in: c, debugDescription:
                    "a per-item tokenizer has one codebook and tokens_per_item 1")
            }
            try self.init(perItem: first)
        case .semanticIDs:
            let width = try c.decode(Int.self, forKey: .tokensPerItem)
            let table = try c.decode([Int32].self, forKey: .itemTokens)
            guard width >= 1, table.count % width == 0, sizes.count == width, Set(sizes).count == 1 else {
                throw DecodingError.dataCorruptedError(forKey: .itemTokens, in: c, debugDescription: "inconsistent token table")
            }
            var offsets = [0]
            for s in sizes.dropLast() { offsets.append(offsets.last! + s) }
            let codes = (0..<(table.count / width)).map { i in
                i == 0 ? [] : (0..<width).map { d in Int(table[i * width + d]) - offsets[d] - 1 }
            }
            try self.init(semanticIDs: codes, codebookSize: sizes[0], source: "tokenizer")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encode(codebookSizes, forKey: .codebookSizes)
        try c.encode(tokensPerItem, forKey: .tokensPerItem)
        if kind == .semanticIDs { try c.encode(itemTokens, forKey: .itemTokens) }
    }
}
