import Foundation

/// One proactive-recommendation task: a user's recent `history`, the
/// `target` to guide them toward, and a reference `path` of intermediate
/// items (what they actually consumed in between). Items are dense ids of an
/// ``ItemCatalog``.
public struct ProactiveTask: Sendable, Equatable, Hashable {
    public var user: String?
    public var history: [Int32]
    public var path: [Int32]
    public var target: Int32

    public init(user: String?, history: [Int32], path: [Int32], target: Int32) {
        self.user = user
        self.history = history
        self.path = path
        self.target = target
    }
}

/// Task files in the ProRL schema, with raw item ids so other tools read
/// them: `{"user", "inters": [history…], "proc_path": [path…, target]}`.
/// The official validation files are one JSON array with `user`; the test
/// files carry `target` and no `user`; the engine writes JSON lines.
public enum TaskFile {
    /// The longest history and path a task may have (the C API's bound too).
    public static let maxHistory = 4096, maxPath = 1000

    /// What a task directory written by `prorl data` holds (and may be
    /// replaced as a unit).
    public static let setNames: Set<String> = ["train.jsonl", "validation.jsonl", "test.jsonl", "stats.json", "catalog.json",
                                               "tokenizer.json"]

    /// Reads tasks from a JSON array (official layout) or JSON lines,
    /// resolving raw ids through `catalog`. Every item must be catalogued.
    public static func read(_ path: String, catalog: ItemCatalog) throws -> [ProactiveTask] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError.unreadable(path)
        }
        let firstByte = data.first { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }
        guard let firstByte else { throw DataError(file: path, "is empty: expected a JSON array or JSON lines of tasks") }
        var tasks: [ProactiveTask] = []
        if firstByte == UInt8(ascii: "[") {
            let object: Any
            do { object = try JSONSerialization.jsonObject(with: data) } catch {
                throw DataError(file: path, jsonProblem(error))
            }
            guard let array = object as? [Any] else { throw DataError(file: path, "expected a JSON array of task records") }
            for (index, record) in array.enumerated() {
                tasks.append(try parse(record, catalog: catalog, file: path, line: nil, record: index + 1))
            }
        } else {
            let file = try TextFile(path: path)
            for (number, text) in file.lines where !text.allSatisfy(\.isWhitespace) {
                let object: Any
                do { object = try JSONSerialization.jsonObject(with: Data(text.utf8)) } catch {
                    throw DataError(file: path, line: number, jsonProblem(error))
                }
                tasks.append(try parse(object, catalog: catalog, file: path, line: number, record: nil))
            }
        }
        guard !tasks.isEmpty else { throw DataError(file: path, "has no tasks") }
        return tasks
    }

    /// Writes tasks as JSON lines (atomically).
    public static func write(_ tasks: [ProactiveTask], catalog: ItemCatalog, to path: String) throws {
        try AtomicFile.write(text(tasks, catalog: catalog), to: path)
    }

    /// The JSON lines of `tasks`.
    public static func text(_ tasks: [ProactiveTask], catalog: ItemCatalog) -> String {
        var out = ""
        for t in tasks { out += line(t, catalog: catalog) + "\n" }
        return out
    }

    /// One task as a JSON line in the ProRL schema.
    public static func line(_ t: ProactiveTask, catalog: ItemCatalog) -> String {
        var fields: [String] = []
        if let user = t.user { fields.append("\"user\": \(jsonString(user))") }
        fields.append("\"inters\": [\(t.history.map { jsonString(catalog.raw($0)) }.joined(separator: ", "))]")
        let path = (t.path + [t.target]).map { jsonString(catalog.raw($0)) }
        fields.append("\"proc_path\": [\(path.joined(separator: ", "))]")
        return "{" + fields.joined(separator: ", ") + "}"
    }

    private static func parse(_ object: Any, catalog: ItemCatalog, file: String, line: Int?,
                              record: Int?) throws -> ProactiveTask {
        let whereText = record.map { "record \($0): " } ?? ""
        func fail(_ message: String) -> DataError { DataError(file: file, line: line, whereText + message) }
        guard let dict = object as? [String: Any] else { throw fail("expected a JSON object") }
        func items(_ key: String) throws -> [Int32] {
            guard let list = dict[key] as? [Any] else { throw fail("field '\(key)': expected an array of item ids") }
            return try list.map { value in
                let raw: String
                if let s = value as? String { raw = s } else if let n = value as? Int { raw = String(n) } else {
                    throw fail("field '\(key)': expected item ids (strings), found \(value)")
                }
                guard let id = catalog.dense(raw) else { throw fail("field '\(key)': item \"\(raw)\" is not in the catalogue") }
                return id
            }
        }
        let history = try items("inters")
        guard (1...maxHistory).contains(history.count) else {
            throw fail("field 'inters': expected 1...\(maxHistory) items, found \(history.count)")
        }
        let proc = try items("proc_path")
        guard proc.count >= 2 else { throw fail("field 'proc_path': expected at least one path item and the target") }
        guard proc.count <= maxPath + 1 else { throw fail("field 'proc_path': expected at most \(maxPath) path items, found \(proc.count - 1)") }
        if dict["target"] != nil {
            let target = try items2(dict["target"], key: "target", catalog: catalog, fail: fail)
            guard target == proc.last else { throw fail("field 'target' differs from the last item of 'proc_path'") }
        }
        let user: String?
        if let u = dict["user"] {
            guard let s = u as? String else { throw fail("field 'user': expected a string") }
            user = s
        } else { user = nil }
        return ProactiveTask(user: user, history: history, path: Array(proc.dropLast()), target: proc.last!)
    }

    private static func items2(_ value: Any?, key: String, catalog: ItemCatalog,
                               fail: (String) -> DataError) throws -> Int32 {
        let raw: String
        if let s = value as? String { raw = s } else if let n = value as? Int { raw = String(n) } else {
            throw fail("field '\(key)': expected an item id")
        }
        guard let id = catalog.dense(raw) else { throw fail("field '\(key)': item \"\(raw)\" is not in the catalogue") }
        return id
    }
}

func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
        }
    }
    return out + "\""
}

func jsonReason(_ error: Error) -> String {
    let ns = error as NSError
    let text = (ns.userInfo["NSDebugDescription"] as? String) ?? ns.localizedDescription
    // a well-formed number too large for a double is not a syntax error: say which
    if let r = text.range(of: #"Number (\S+) is not representable"#, options: .regularExpression) {
        return "a number out of range (\(text[r].dropFirst(7).split(separator: " ")[0]); expected one a double can hold)"
    }
    return text
}

/// "is not valid JSON: why", or, for a number too large, that.
func jsonProblem(_ error: Error) -> String {
    let reason = jsonReason(error)
    return reason.hasPrefix("a number out of range") ? "holds \(reason)" : "is not valid JSON: \(reason)"
}
