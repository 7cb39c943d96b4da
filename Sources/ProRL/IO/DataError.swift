/// Bad input: which file, which line (when known) and what was expected.
/// Its description is the one line a user sees, e.g.
/// `ratings.csv:12: column 'timestamp': expected a number, found "abc"`.
public struct DataError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let line: Int?
    public let message: String

    public init(file: String, line: Int? = nil, _ message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String {
        if let line { return "\(file):\(line): \(message)" }
        return "\(file): \(message)"
    }
}
