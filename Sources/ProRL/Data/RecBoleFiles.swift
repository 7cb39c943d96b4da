/// A RecBole atomic file (`.inter`, `.item`, `.user`): a header of
/// `name:type` fields, then one row per line. Fields are tab-separated (or
/// comma-separated with CSV quoting, as some published files are);
/// `token_seq` values are space-separated, or a Python list string
/// (`['Action', 'Indie']`).
public struct AtomicTable {
    public enum FieldType: String, Sendable {
        case token
        case tokenSeq = "token_seq"
        case float
        case floatSeq = "float_seq"
    }

    public let path: String
    public let fields: [(name: String, type: FieldType)]
    public let rows: [(line: Int, values: [Substring])]

    public init(path: String) throws {
        let file = try TextFile(path: path)
        self.path = path
        guard let header = file.lines.first, !header.text.allSatisfy(\.isWhitespace) else {
            throw DataError(file: path, "is empty: expected a header of name:type fields")
        }
        let comma = !header.text.contains("\t") && header.text.contains(",")
        let split: (Substring) -> [Substring] = comma ? { splitCSV($0) } : { $0.split(separator: "\t", omittingEmptySubsequences: false) }
        var fields: [(String, FieldType)] = []
        for spec in split(header.text) {
            let parts = spec.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw DataError(file: path, line: 1, "header field '\(spec)': expected name:type")
            }
            guard let type = FieldType(rawValue: String(parts[1])) else {
                throw DataError(file: path, line: 1,
                                "header field '\(spec)': unknown type '\(parts[1])' (expected token, token_seq, float or float_seq)")
            }
            let name = String(parts[0])
            if fields.contains(where: { $0.0 == name }) {
                throw DataError(file: path, line: 1, "header field '\(name)' appears twice")
            }
            fields.append((name, type))
        }
        self.fields = fields
        var rows: [(Int, [Substring])] = []
        rows.reserveCapacity(file.lines.count)
        for (number, text) in file.lines.dropFirst() {
            if text.isEmpty { continue }
            let values = split(text)
            guard values.count == fields.count else {
                throw DataError(file: path, line: number, "expected \(fields.count) fields, found \(values.count)")
            }
            rows.append((number, values))
        }
        self.rows = rows
    }

    /// Column of the first field named one of `names`.
    public func column(_ names: [String]) -> Int? {
        for name in names { if let i = fields.firstIndex(where: { $0.name == name }) { return i } }
        return nil
    }

    /// Like ``column(_:)`` but a missing field is an error.
    public func requiredColumn(_ names: [String]) throws -> Int {
        guard let c = column(names) else {
            throw DataError(file: path, line: 1, "no field named \(names.map { "'\($0)'" }.joined(separator: " or "))")
        }
        return c
    }

    /// A non-empty token.
    public func token(_ row: Int, _ col: Int) throws -> String {
        let v = rows[row].values[col].trimmingCharacters(in: .whitespaces)
        guard !v.isEmpty else {
            throw DataError(file: path, line: rows[row].line, "field '\(fields[col].name)': expected a value, found nothing")
        }
        return v
    }

    /// A number.
    public func number(_ row: Int, _ col: Int) throws -> Double {
        let raw = rows[row].values[col].trimmingCharacters(in: .whitespaces)
        guard let v = Double(raw), v.isFinite else {
            throw DataError(file: path, line: rows[row].line, "field '\(fields[col].name)': expected a number, found \"\(raw)\"")
        }
        return v
    }

    /// The tokens of a `token_seq` value (a plain `token` gives one).
    public func tokens(_ row: Int, _ col: Int) -> [String] {
        let v = rows[row].values[col].trimmingCharacters(in: .whitespaces)
        if fields[col].type == .token { return v.isEmpty ? [] : [v] }
        if v.hasPrefix("[") && v.hasSuffix("]") { return parsePythonList(v) }
        return v.split(separator: " ").map(String.init)
    }
}

/// Readers for logs and item files in RecBole's atomic format.
public enum RecBoleReader {
    static let userFields = ["user_id"]
    static let itemFields = ["item_id", "product_id"]
    static let timeFields = ["timestamp"]
    static let titleFields = ["title", "movie_title", "name", "item_name"]
    static let attributeFields = ["genres", "class", "categories", "genre", "attributes", "tags"]

    /// Reads a `.inter` log (user, item and — when present — timestamp
    /// fields; without timestamps, file order), then, when given, the
    /// `.item` file's titles and attributes. Items of the `.item` file that
    /// the log lacks are catalogued after the logged ones (RecBole's id
    /// order: first appearance in the log, then in the item file).
    public static func readLog(inter: String, item: String? = nil, order: TimeOrder = .stable) throws -> InteractionLog {
        let table = try AtomicTable(path: inter)
        guard !table.rows.isEmpty else { throw DataError(file: inter, "has a header but no interactions") }
        let u = try table.requiredColumn(userFields), i = try table.requiredColumn(itemFields)
        let t = table.column(timeFields)
        var builder = LogBuilder()
        for r in 0..<table.rows.count {
            let time = try t.map { try table.number(r, $0) } ?? Double(table.rows[r].line)
            builder.add(user: try table.token(r, u), item: try table.token(r, i), time: time, line: table.rows[r].line)
        }
        var log = builder.build(order: order)
        if let item { try readItems(item, into: &log.catalog, addMissing: true) }
        return log
    }

    /// Reads titles and attributes from a `.item` file into `catalog`.
    /// With `addMissing`, items not yet catalogued are added; otherwise they
    /// are skipped.
    public static func readItems(_ path: String, into catalog: inout ItemCatalog, addMissing: Bool) throws {
        let table = try AtomicTable(path: path)
        let i = try table.requiredColumn(itemFields)
        let title = table.column(titleFields), attrs = table.column(attributeFields)
        for r in 0..<table.rows.count {
            let raw = try table.token(r, i)
            guard let id = addMissing ? catalog.add(raw) : catalog.dense(raw) else { continue }
            if let title { catalog.setTitle(table.tokens(r, title).joined(separator: " "), of: id) }
            if let attrs { catalog.setAttributes(table.tokens(r, attrs), of: id) }
        }
    }
}

/// Splits one CSV line on commas, honouring double quotes ("" is a quote).
func splitCSV(_ line: Substring) -> [Substring] {
    guard line.contains("\"") else { return line.split(separator: ",", omittingEmptySubsequences: false) }
    var out: [Substring] = []
    var field = ""
    var quoted = false
    var iterator = line.makeIterator()
    var pending: Character? = nil
    while true {
        guard let c = pending ?? iterator.next() else { break }
        pending = nil
        if quoted {
            if c == "\"" {
                if let next = iterator.next() {
                    if next == "\"" { field.append("\"") } else { quoted = false; pending = next }
                } else { quoted = false }
            } else { field.append(c) }
        } else if c == "\"" {
            quoted = true
        } else if c == "," {
            out.append(Substring(field))
            field = ""
        } else { field.append(c) }
    }
    out.append(Substring(field))
    return out
}

/// `['a', "b c"]` → ["a", "b c"].
func parsePythonList(_ s: String) -> [String] {
    var out: [String] = []
    var current = ""
    var quote: Character? = nil
    for c in s.dropFirst().dropLast() {
        if let q = quote {
            if c == q { out.append(current); current = ""; quote = nil } else { current.append(c) }
        } else if c == "'" || c == "\"" {
            quote = c
        } else if c != "," && c != " " {
            current.append(c)
        } else if c == "," && !current.isEmpty {
            out.append(current)
            current = ""
        }
    }
    if !current.isEmpty { out.append(current) }
    return out
}

import Foundation
