import Foundation

/// Progress of a loop of known length: on a terminal a live bar with rate
/// and ETA (redrawn in place); otherwise a plain line every `every` units
/// (CI logs, files). Messages printed through it never tear the bar.
final class ProgressReporter {
    let total: Int
    let label: String
    let every: Int
    let live: Bool
    private let start = Date()
    private var drawn = false

    init(total: Int, label: String, every: Int? = nil) {
        self.total = max(total, 1)
        self.label = label
        self.every = every ?? max(1, total / 20)
        live = isatty(STDOUT_FILENO) != 0
    }

    /// Reports `done` units, with a short status.
    func update(_ done: Int, status: String = "") {
        let elapsed = Date().timeIntervalSince(start)
        let rate = Double(done) / max(elapsed, 1e-9)
        let eta = rate > 0 ? Double(total - done) / rate : 0
        if live {
            let width = 24, filled = width * done / total
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            let line = String(format: "\r%@ %@ %d/%d  %.2f/s  ETA %@  %@", label, bar, done, total, rate,
                              Self.clock(eta), status)
            FileHandle.standardOutput.write(Data((line + "\u{1B}[K").utf8))
            drawn = true
            if done == total { finish() }
        } else if done % every == 0 || done == total {
            print(String(format: "%@ %d/%d  %.2f/s  ETA %@  %@", label, done, total, rate, Self.clock(eta), status))
            fflush(nil)
        }
    }

    /// Prints a message on its own line.
    func message(_ text: String) {
        if live && drawn { FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8)) }
        print(text)
        fflush(nil)
    }

    func finish() {
        if live && drawn {
            FileHandle.standardOutput.write(Data("\n".utf8))
            drawn = false
        }
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
