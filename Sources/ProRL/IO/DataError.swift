import Foundation

/// Bad input: which file, which line (when known) and what was expected.
/// Its description is the one line a user sees, e.g.
/// `ratings.csv:12: column 'timestamp': expected a number, found "abc"`.
/// Its ``kind`` says what went wrong in one word; the C API returns it as
/// the matching `prorl_status`, one status per kind.
public struct DataError: Error, CustomStringConvertible, Equatable {
    /// What went wrong (the C API's `prorl_status`, 1:1).
    public enum Kind: Sendable, Equatable, CaseIterable {
        /// A bad setting, argument, size or length (PRORL_ERR_INVALID_ARGUMENT).
        case invalidArgument
        /// A file or directory that does not exist (PRORL_ERR_NOT_FOUND).
        case notFound
        /// A malformed file, or a checkpoint of the wrong kind (PRORL_ERR_BAD_FILE).
        case badFile
        /// Files that do not belong together (PRORL_ERR_INCOMPATIBLE).
        case incompatible
        /// An item id the model does not know (PRORL_ERR_UNKNOWN_ITEM).
        case unknownItem
        /// A caller's buffer is too small (PRORL_ERR_BUFFER_TOO_SMALL).
        case bufferTooSmall
        /// A run directory another trainer holds (PRORL_ERR_BUSY).
        case busy
        /// Training stopped on a non-finite loss or gradient (PRORL_ERR_DIVERGED).
        case diverged
        /// A data-parallel run failed: an MPI collective, or ranks that
        /// disagree (PRORL_ERR_DISTRIBUTED).
        case distributed
    }

    public let file: String
    public let line: Int?
    public let message: String
    public let kind: Kind

    public init(file: String, line: Int? = nil, _ message: String, kind: Kind = .badFile) {
        self.file = file
        self.line = line
        self.message = message
        self.kind = kind
    }

    /// A file that cannot be opened: not found, or there but unreadable.
    public static func unreadable(_ path: String) -> DataError {
        FileManager.default.fileExists(atPath: path) ? DataError(file: path, "cannot be read")
                                                     : DataError(file: path, "no such file", kind: .notFound)
    }

    /// A settings error (`file` names the settings, e.g. "RL settings").
    public static func setting(_ file: String, _ message: String) -> DataError {
        DataError(file: file, message, kind: .invalidArgument)
    }

    public var description: String {
        if let line { return "\(file):\(line): \(message)" }
        return "\(file): \(message)"
    }
}
