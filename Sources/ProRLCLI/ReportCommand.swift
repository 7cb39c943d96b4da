import ArgumentParser
import Foundation
import ProRL

/// `prorl report`: one markdown report with figures from runs and results.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write report.md and training.svg from RL runs and evaluation results.",
        discussion: """
            training.svg overlays the runs' curves (path length, diversity, path IoI and CTR, stopping \
            rate, KL; moving average of 9 steps) — with a ProRL and a REINFORCE run, the length-shortcut \
            figure. Each --results table (results.json from 'prorl eval') is copied in.
            """)

    @Option(name: .customLong("run"), help: "An RL run as NAME=DIRECTORY (repeatable).") var runs: [String] = []
    @Option(name: .customLong("results"), help: "A results.json from 'prorl eval' (repeatable).") var results: [String] = []
    @Option(help: "An SVG figure to include, as CAPTION=FILE (repeatable).") var figure: [String] = []
    @Option(help: "Report title.") var title = "ProRL report"
    @Option(help: "Output directory.") var out: String

    func validate() throws {
        for r in runs where EvalCommand.namePath(r) == nil { throw ValidationError("--run: expected NAME=DIRECTORY, found '\(r)'") }
        for f in figure where EvalCommand.namePath(f) == nil { throw ValidationError("--figure: expected CAPTION=FILE, found '\(f)'") }
        guard !runs.isEmpty || !results.isEmpty else { throw ValidationError("give at least one --run or --results") }
    }

    func run() throws {
        let report = try Report.write(title: title, runs: runs.map(Self.pair), results: results, figures: figure.map(Self.pair),
                                      to: out)
        print("wrote \(report)")
    }

    /// NAME=PATH, already validated.
    static func pair(_ s: String) -> (String, String) {
        let p = EvalCommand.namePath(s) ?? (s, s)
        return (p.name, p.path)
    }
}

/// Builds a report directory (shared by `report` and the demo pipeline).
enum Report {
    /// Writes OUT/report.md (and OUT/training.svg for runs); returns the
    /// report's path.
    static func write(title: String, runs: [(String, String)], results: [String], figures: [(String, String)],
                      intro: String = "", to out: String) throws -> String {
        var md = "# \(title)\n\n"
        if !intro.isEmpty { md += intro + "\n\n" }
        if !runs.isEmpty {
            let loaded = try runs.map { name, dir in (name: name, rows: try Figures.readMetrics("\(dir)/metrics.jsonl")) }
            try AtomicFile.write(Figures.training(loaded), to: "\(out)/training.svg")
            md += "## Training\n\n![training curves](training.svg)\n\n"
            md += "| run | steps | length (first → last 10) | diversity within | path IoI | path CTR | KL |\n"
            md += "|---|---:|---:|---:|---:|---:|---:|\n"
            for r in loaded {
                func mean(_ key: String, _ rows: ArraySlice<[String: Double]>) -> Double {
                    let v = rows.compactMap { $0[key] }
                    return v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count)
                }
                let first = r.rows.prefix(10), last = r.rows.suffix(10)
                md += String(format: "| %@ | %d | %.2f → %.2f | %.3f → %.3f | %.3f → %.3f | %.3f → %.3f | %.4f |\n", r.name,
                             r.rows.count, mean("length", first), mean("length", last), mean("diversity_within", first),
                             mean("diversity_within", last), mean("path_ioi", first), mean("path_ioi", last),
                             mean("path_ctr", first), mean("path_ctr", last), mean("kl", last))
            }
            md += "\n"
        }
        for path in results {
            let table = try ResultsTable.read(path)
            md += "## Evaluation (\(table.split))\n\n" + table.markdown + "\n"
        }
        for (caption, file) in figures {
            let name = (file as NSString).lastPathComponent
            if (file as NSString).standardizingPath != ("\(out)/\(name)" as NSString).standardizingPath {
                guard let data = FileManager.default.contents(atPath: file) else { throw DataError.unreadable(file) }
                try AtomicFile.write(data, to: "\(out)/\(name)")
            }
            md += "## \(caption)\n\n![\(caption)](\(name))\n\n"
        }
        try AtomicFile.write(md, to: "\(out)/report.md")
        return "\(out)/report.md"
    }
}
