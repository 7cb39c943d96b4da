import Foundation

/// The side files of the official ProRL datasets: `<D>.datamaps` (ids,
/// titles, attributes) and `<prefix>.sem_ids` (4 semantic-ID codes per item).
public enum ProRLDatamaps {
    /// Builds the catalogue the split files refer to. For ml-1m and Steam
    /// the splits use raw ids (`item2id` keys, catalogued in dense-id
    /// order, titles from `itemid2title[dense]`); for Books they use the
    /// internal ids (`id2item` keys, in numeric order). Which applies is read
    /// off the keys of `raw_item_id2attribute`.
    public static func catalog(_ path: String) throws -> ItemCatalog {
        let root = try jsonObject(path)
        func table(_ key: String) throws -> [String: Any] {
            guard let t = root[key] as? [String: Any] else { throw DataError(file: path, "field '\(key)': expected a JSON object") }
            return t
        }
        let item2id = try table("item2id"), id2item = try table("id2item")
        let titles = try table("itemid2title"), attrs = try table("raw_item_id2attribute")
        let attrNames = try table("id2attribute")
        let internalIDs = !attrs.keys.isEmpty && attrs.keys.allSatisfy { id2item[$0] != nil } && !attrs.keys.allSatisfy { item2id[$0] != nil }
        var entries: [(key: String, dense: Int)] = []
        if internalIDs {
            for k in id2item.keys.sorted() {
                guard let n = Int(k) else { throw DataError(file: path, "field 'id2item': key \"\(k)\" is not an integer") }
                entries.append((k, n))
            }
        } else {
            for k in item2id.keys.sorted() {
                let v = item2id[k]!
                guard let n = (v as? Int) ?? Int(v as? String ?? "") else {
                    throw DataError(file: path, "field 'item2id': value of \"\(k)\" is not an integer")
                }
                entries.append((k, n))
            }
        }
        entries.sort { $0.dense < $1.dense }
        var catalog = ItemCatalog()
        for (key, dense) in entries {
            let id = catalog.add(key)
            if let t = titles[String(dense)] as? String { catalog.setTitle(t, of: id) }
            if let list = attrs[key] as? [Any] {
                let names = list.compactMap { a -> String? in
                    let k = (a as? Int).map(String.init) ?? (a as? String) ?? ""
                    return attrNames[k] as? String
                }
                catalog.setAttributes(names, of: id)
            }
        }
        guard catalog.itemCount > 0 else { throw DataError(file: path, "lists no items") }
        return catalog
    }

    /// Reads a `.sem_ids` file: item id → its codes (3 codebook levels and
    /// a collision digit). Every code tuple must have the same length and
    /// be unique.
    public static func semanticIDs(_ path: String) throws -> [String: [Int]] {
        let root = try jsonObject(path)
        var out: [String: [Int]] = [:]
        var seen: [[Int]: String] = [:]
        var width: Int? = nil
        // sorted keys: the same file always gives the same first complaint
        for key in root.keys.sorted(by: { ($0.count, $0) < ($1.count, $1) }) {
            let value = root[key]!
            guard let list = value as? [Any], let codes = list as? [Int], codes.count == list.count else {
                throw DataError(file: path, "item \"\(key)\": expected a list of integer codes")
            }
            if width == nil { width = codes.count }
            guard codes.count == width, codes.allSatisfy({ $0 >= 0 }) else {
                throw DataError(file: path, "item \"\(key)\": expected \(width!) non-negative codes, found \(codes)")
            }
            if let other = seen[codes] { throw DataError(file: path, "items \"\(other)\" and \"\(key)\" share the codes \(codes)") }
            seen[codes] = key
            out[key] = codes
        }
        guard !out.isEmpty else { throw DataError(file: path, "lists no items") }
        return out
    }

    /// A semantic-ID tokenizer for `catalog` from a `.sem_ids` file; every
    /// catalogued item must have codes.
    public static func tokenizer(semanticIDs path: String, catalog: ItemCatalog,
                                 codebookSize: Int = 256) throws -> ItemTokenizer {
        let table = try semanticIDs(path)
        var codes: [[Int]] = [[]]
        for item in 1...catalog.itemCount {
            guard let c = table[catalog.rawIDs[item]] else {
                throw DataError(file: path, "item \"\(catalog.rawIDs[item])\" of the catalogue has no semantic ID")
            }
            codes.append(c)
        }
        return try ItemTokenizer(semanticIDs: codes, codebookSize: codebookSize, source: path)
    }

    static func jsonObject(_ path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError.unreadable(path)
        }
        guard !data.isEmpty else { throw DataError(file: path, "is empty: expected a JSON object") }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw DataError(file: path, jsonProblem(error))
        }
        guard let dict = object as? [String: Any] else { throw DataError(file: path, "expected a JSON object") }
        return dict
    }
}
