import Foundation
import ProRL

/// Where tests find things.
public enum TestPaths {
    /// The package root (the directory holding Package.swift).
    public static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
        }
        return FileManager.default.currentDirectoryPath
    }()

    /// The shared real-data folder, read in place: `$PRORL_DATA_DIR`, else a
    /// `shared/data` beside the checkout or any of its parents, else
    /// `/work/shared/data`.
    public static let sharedData: String = {
        if let env = ProcessInfo.processInfo.environment["PRORL_DATA_DIR"], !env.isEmpty { return env }
        var url = URL(fileURLWithPath: packageRoot)
        while url.path != "/" {
            let candidate = url.deletingLastPathComponent().appendingPathComponent("shared/data")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("ml-100k").path) { return candidate.path }
            url.deleteLastPathComponent()
        }
        return "/work/shared/data"
    }()

    /// A file of the shared data (`ml-100k/ml-100k.inter`, …).
    public static func data(_ relative: String) -> String { sharedData + "/" + relative }

    /// A new empty temporary directory.
    public static func temporaryDirectory(_ label: String = "prorl-test") -> String {
        let path = NSTemporaryDirectory() + "\(label)-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Writes `text` to `directory/name` and returns the path.
    @discardableResult
    public static func write(_ text: String, _ name: String, in directory: String) -> String {
        let path = directory + "/" + name
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }
}
