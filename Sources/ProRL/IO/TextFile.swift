import Foundation

/// Text encodings the readers accept.
public enum TextEncoding: Sendable {
    case utf8
    /// ISO-8859-1: every byte is one character (MovieLens .dat files).
    case latin1
}

/// A text file read whole and cut into numbered lines (1-based; `\n` or
/// `\r\n` endings; a final line without a newline counts; a leading UTF-8
/// byte-order mark is dropped).
public struct TextFile {
    public let path: String
    public let lines: [(number: Int, text: Substring)]

    /// Reads `path`. An empty file has no lines. Invalid UTF-8 is an error
    /// naming the line.
    public init(path: String, encoding: TextEncoding = .utf8) throws {
        self.path = path
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError.unreadable(path) }
        var out: [(Int, Substring)] = []
        var lineNumber = 0
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = raw.bindMemory(to: UInt8.self)
            // a UTF-8 byte-order mark (Windows editors write one) is not part of the first field's name
            var start = bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0
            let n = bytes.count
            while start < n {
                var end = start
                while end < n && bytes[end] != 0x0A { end += 1 }
                lineNumber += 1
                var stop = end
                if stop > start && bytes[stop - 1] == 0x0D { stop -= 1 }
                let slice = UnsafeBufferPointer(rebasing: bytes[start..<stop])
                let text: String
                switch encoding {
                case .utf8:
                    guard let s = String(validating: slice, as: UTF8.self) else {
                        throw DataError(file: path, line: lineNumber, "is not valid UTF-8")
                    }
                    text = s
                case .latin1:
                    text = String(String.UnicodeScalarView(slice.map { Unicode.Scalar($0) }))
                }
                out.append((lineNumber, Substring(text)))
                start = end + 1
            }
        }
        lines = out
    }

    /// The file's name without directories (for messages).
    public var name: String { (path as NSString).lastPathComponent }
}

/// Writes files so that a reader never sees a half-written one: the bytes
/// go to a temporary file beside the target, which is then renamed over it.
public enum AtomicFile {
    /// Writes `data` to `path` atomically (POSIX rename over the target),
    /// creating parent directories.
    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent()
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)")
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try data.write(to: tmp)
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw DataError(file: path, "cannot be written: \(reason(error))")
        }
        if rename(tmp.path, path) != 0 {
            let message = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: tmp)
            throw DataError(file: path, "cannot be written: \(message)")
        }
    }

    private static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        return ns.localizedDescription
    }

    /// Writes `text` (UTF-8) to `path` atomically.
    public static func write(_ text: String, to path: String) throws {
        try write(Data(text.utf8), to: path)
    }
}

/// Writes a set of files that belong together (a task directory's splits)
/// as one unit: they are written into a staging directory beside the
/// target, which then replaces it, so a reader sees the old set or the new
/// one, never a mix (a kill between the two renames leaves the target
/// missing and both sets intact beside it).
public enum AtomicDirectory {
    /// Writes `files` (name → bytes) as the directory `path`. An existing
    /// `path` is replaced only when everything in it is one of `replaceable`
    /// (the names this kind of set may hold); otherwise nothing is written.
    public static func write(_ files: [(name: String, data: Data)], to path: String, replaceable: Set<String>) throws {
        let fm = FileManager.default
        let target = URL(fileURLWithPath: path).standardizedFileURL
        let pid = ProcessInfo.processInfo.processIdentifier
        let parent = target.deletingLastPathComponent(), name = target.lastPathComponent
        let stage = parent.appendingPathComponent(".\(name).tmp-\(pid)"), old = parent.appendingPathComponent(".\(name).old-\(pid)")
        var isDirectory: ObjCBool = false
        let exists = fm.fileExists(atPath: target.path, isDirectory: &isDirectory)
        if exists {
            guard isDirectory.boolValue else { throw DataError(file: path, "exists and is not a directory") }
            let foreign = ((try? fm.contentsOfDirectory(atPath: target.path)) ?? []).filter { !replaceable.contains($0) }.sorted()
            guard foreign.isEmpty else {
                throw DataError(file: path, "holds other files than a task set (\(foreign.prefix(3).joined(separator: ", "))); "
                                + "choose a new or empty directory")
            }
        }
        do {
            try? fm.removeItem(at: stage)
            try fm.createDirectory(at: stage, withIntermediateDirectories: true)
            for f in files { try f.data.write(to: stage.appendingPathComponent(f.name)) }
        } catch {
            try? fm.removeItem(at: stage)
            throw DataError(file: path, "cannot be written: \(error.localizedDescription)")
        }
        if exists && rename(target.path, old.path) != 0 {
            let message = String(cString: strerror(errno))
            try? fm.removeItem(at: stage)
            throw DataError(file: path, "cannot be replaced: \(message)")
        }
        guard rename(stage.path, target.path) == 0 else {
            let message = String(cString: strerror(errno))
            if exists { _ = rename(old.path, target.path) }
            try? fm.removeItem(at: stage)
            throw DataError(file: path, "cannot be written: \(message)")
        }
        if exists { try? fm.removeItem(at: old) }
    }
}
