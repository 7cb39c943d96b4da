/// The item vocabulary: dense ids `1...itemCount` (0 is padding) for raw
/// item ids (strings as the source spells them), with titles and attribute
/// sets (genres, categories) used for coherence and display.
public struct ItemCatalog: Sendable, Equatable {
    /// Raw id of each dense id; index 0 is the padding entry `[PAD]`.
    public private(set) var rawIDs: [String] = ["[PAD]"]
    /// Title of each dense id ("" when unknown).
    public private(set) var titles: [String] = [""]
    /// Attribute ids of each dense id (indices into `attributeNames`).
    public private(set) var attributes: [[Int32]] = [[]]
    /// Attribute names; index = attribute id.
    public private(set) var attributeNames: [String] = []
    private var denseOfRaw: [String: Int32] = [:]
    private var attributeOfName: [String: Int32] = [:]

    public init() {}

    /// Number of real items (dense ids run 1...itemCount).
    public var itemCount: Int { rawIDs.count - 1 }
    /// Size of an item table including the padding row (itemCount + 1).
    public var vocabularySize: Int { rawIDs.count }

    /// The first raw id that occurs twice in a checkpoint's `item_ids`
    /// (which must name each item once), if any.
    public static func firstDuplicate(_ ids: [String]) -> String? {
        var seen = Set<String>()
        for id in ids where !seen.insert(id).inserted { return id }
        return nil
    }

    /// Dense id of a raw id, if catalogued.
    public func dense(_ raw: String) -> Int32? { denseOfRaw[raw] }

    /// Raw id of a dense id.
    public func raw(_ dense: Int32) -> String { rawIDs[Int(dense)] }

    /// Title of a dense id, falling back to its raw id.
    public func displayName(_ dense: Int32) -> String {
        let t = titles[Int(dense)]
        return t.isEmpty ? rawIDs[Int(dense)] : t
    }

    /// Adds `raw` if new; returns its dense id either way.
    @discardableResult
    public mutating func add(_ raw: String) -> Int32 {
        if let id = denseOfRaw[raw] { return id }
        let id = Int32(rawIDs.count)
        rawIDs.append(raw)
        titles.append("")
        attributes.append([])
        denseOfRaw[raw] = id
        return id
    }

    /// Sets the title of an item.
    public mutating func setTitle(_ title: String, of dense: Int32) { titles[Int(dense)] = title }

    /// Sets the attributes of an item by name, creating attribute ids in
    /// order of first appearance.
    public mutating func setAttributes(_ names: [String], of dense: Int32) {
        var ids: [Int32] = []
        for name in names where !name.isEmpty {
            let id: Int32
            if let existing = attributeOfName[name] { id = existing } else {
                id = Int32(attributeNames.count)
                attributeNames.append(name)
                attributeOfName[name] = id
            }
            if !ids.contains(id) { ids.append(id) }
        }
        attributes[Int(dense)] = ids
    }

    /// Whether two items share an attribute (the coherence relation).
    public func shareAttribute(_ a: Int32, _ b: Int32) -> Bool {
        let x = attributes[Int(a)], y = attributes[Int(b)]
        return x.contains { y.contains($0) }
    }
}
