/// Readers for MovieLens `.dat` files and plain `user,item,timestamp` CSV.
public enum MovieLensReader {
    /// Reads `movies.dat` (`MovieID::Title::Genres`, latin-1) into a
    /// catalogue: titles and `|`-separated genres as attributes.
    public static func readMovies(_ path: String, into catalog: inout ItemCatalog) throws {
        let file = try TextFile(path: path, encoding: .latin1)
        guard file.lines.contains(where: { !$0.text.isEmpty }) else { throw DataError(file: path, "is empty") }
        for (number, text) in file.lines where !text.isEmpty {
            let f = text.components(separatedBy: "::")
            guard f.count == 3 else { throw DataError(file: path, line: number, "expected MovieID::Title::Genres (3 fields), found \(f.count)") }
            guard Int(f[0]) != nil else { throw DataError(file: path, line: number, "MovieID: expected an integer, found \"\(f[0])\"") }
            let id = catalog.add(f[0])
            catalog.setTitle(f[1], of: id)
            catalog.setAttributes(f[2].split(separator: "|").map(String.init), of: id)
        }
    }

    /// Reads `ratings.dat` (`UserID::MovieID::Rating::Timestamp`) into a
    /// log; with `movies`, titles and genres come from `movies.dat` and
    /// every rated movie must be listed there.
    public static func readRatings(_ path: String, movies: String? = nil, order: TimeOrder = .stable) throws -> InteractionLog {
        var builder = LogBuilder()
        if let movies { try readMovies(movies, into: &builder.catalog) }
        let known = builder.catalog
        let file = try TextFile(path: path, encoding: .latin1)
        for (number, text) in file.lines where !text.isEmpty {
            let f = text.components(separatedBy: "::")
            guard f.count == 4 else { throw DataError(file: path, line: number, "expected UserID::MovieID::Rating::Timestamp (4 fields), found \(f.count)") }
            guard Int(f[0]) != nil else { throw DataError(file: path, line: number, "UserID: expected an integer, found \"\(f[0])\"") }
            guard Int(f[1]) != nil else { throw DataError(file: path, line: number, "MovieID: expected an integer, found \"\(f[1])\"") }
            guard let t = Double(f[3]), t.isFinite else { throw DataError(file: path, line: number, "Timestamp: expected a number, found \"\(f[3])\"") }
            if movies != nil && known.dense(f[1]) == nil {
                throw DataError(file: path, line: number, "MovieID \(f[1]) is not in \(movies!)")
            }
            builder.add(user: f[0], item: f[1], time: t, line: number)
        }
        guard !builder.isEmpty else { throw DataError(file: path, "has no ratings") }
        return builder.build(order: order)
    }
}

/// Reader for plain CSV logs: `user,item,timestamp` per line, an optional
/// header line naming those three columns.
public enum CSVLogReader {
    public static func read(_ path: String, order: TimeOrder = .stable) throws -> InteractionLog {
        let file = try TextFile(path: path)
        var builder = LogBuilder()
        for (index, line) in file.lines.enumerated() where !line.text.isEmpty {
            let f = splitCSV(line.text).map { $0.trimmingCharacters(in: .whitespaces) }
            if index == 0 && f.map({ $0.lowercased() }) == ["user", "item", "timestamp"] { continue }
            guard f.count == 3 else { throw DataError(file: path, line: line.number, "expected 3 columns user,item,timestamp, found \(f.count)") }
            guard !f[0].isEmpty else { throw DataError(file: path, line: line.number, "column 'user': expected a value, found nothing") }
            guard !f[1].isEmpty else { throw DataError(file: path, line: line.number, "column 'item': expected a value, found nothing") }
            guard let t = Double(f[2]), t.isFinite else {
                throw DataError(file: path, line: line.number, "column 'timestamp': expected a number, found \"\(f[2])\"")
            }
            builder.add(user: f[0], item: f[1], time: t, line: line.number)
        }
        guard !builder.isEmpty else { throw DataError(file: path, "has no interactions") }
        return builder.build(order: order)
    }
}

import Foundation
