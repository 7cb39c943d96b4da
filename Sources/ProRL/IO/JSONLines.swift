import Foundation

/// An append-only JSON-lines file (a run's metrics): each `append` adds one
/// complete line and flushes it, so a killed run leaves whole lines behind.
public final class JSONLinesWriter {
    public let path: String
    private let handle: FileHandle

    /// Opens `path` for appending (created if missing). With `keeping`,
    /// first rewrites it with only the lines that predicate accepts (a
    /// resumed run drops what came after its checkpoint, and any torn last
    /// line).
    public init(path: String, keeping: ((String) -> Bool)? = nil) throws {
        self.path = path
        let fm = FileManager.default
        if let keeping, let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let kept = text.split(separator: "\n").map(String.init).filter { !$0.isEmpty && keeping($0) }
            try AtomicFile.write(kept.map { $0 + "\n" }.joined(), to: path)
        }
        if !fm.fileExists(atPath: path) {
            try AtomicFile.write("", to: path)
        }
        guard let h = FileHandle(forWritingAtPath: path) else { throw DataError(file: path, "cannot be opened for appending") }
        handle = h
        handle.seekToEndOfFile()
    }

    deinit { try? handle.close() }

    /// Appends one line (a newline is added).
    public func append(_ line: String) throws {
        do {
            try handle.write(contentsOf: Data((line + "\n").utf8))
            try handle.synchronize()
        } catch {
            throw DataError(file: path, "cannot be appended to: \(error.localizedDescription)")
        }
    }

    /// The `step` field of a JSON line, if it has one.
    public static func step(of line: String) -> Int? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
        return object["step"] as? Int
    }
}

/// JSON text of a value with its keys sorted: the same value always gives
/// the same bytes (checkpoint metadata, so that identical runs write
/// identical files).
public func stableJSON<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}
