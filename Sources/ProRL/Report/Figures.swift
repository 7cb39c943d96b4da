import Foundation

/// The figures of a report: training curves of one or several runs
/// (overlaid — the length-shortcut figure), and the steps of one path.
public enum Figures {
    /// The numeric fields of each line of a run's metrics.jsonl. A last line
    /// without its newline that is not JSON (an append a killed writer did
    /// not finish) is skipped; any other malformed line is an error.
    public static func readMetrics(_ path: String) throws -> [[String: Double]] {
        let file = try TextFile(path: path)
        let complete = (FileManager.default.contents(atPath: path)?.last).map { $0 == 0x0A } ?? true
        var rows: [[String: Double]] = []
        for (k, line) in file.lines.enumerated() where !line.text.isEmpty {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.text.utf8)) as? [String: Any] else {
                // a last line without its newline is an append a killed writer did not finish: skip it
                if k == file.lines.count - 1 && !complete { break }
                throw DataError(file: path, line: line.number, "is not a JSON object")
            }
            rows.append(object.compactMapValues { ($0 as? NSNumber)?.doubleValue })
        }
        return rows
    }

    /// What the training figure plots: metrics key, title, axis label.
    public static let trainingPanels: [(key: String, title: String, label: String)] = [
        ("length", "Mean path length", "items"),
        ("diversity_within", "Diversity within a prompt's rollouts", "1 − mean Jaccard"),
        ("path_ioi", "Path IoI (simulator)", "Δ log p(target)"),
        ("path_ctr", "Path CTR (simulator)", "mean acceptance"),
        ("eos_ratio", "Rollouts that chose to stop", "share"),
        ("kl", "KL to the pretrained policy", "nats per rollout"),
    ]

    /// Curves of `runs` (name, metrics rows) on every training panel,
    /// smoothed by a moving average of `window` steps, as one SVG.
    public static func training(_ runs: [(name: String, rows: [[String: Double]])], window: Int = 9) -> String {
        let charts = trainingPanels.map { panel in
            SVGChart(title: panel.title, xLabel: "step", yLabel: panel.label, series: runs.map { run in
                let pts = run.rows.compactMap { r -> (x: Double, y: Double)? in
                    guard let s = r["step"], let v = r[panel.key] else { return nil }
                    return (s, v)
                }
                return SVGChart.Series(name: run.name, points: SVGChart.smooth(pts, window: window))
            })
        }
        return SVGChart.grid(charts, columns: 2)
    }

    /// p(target) and CTR along a path's steps (step 0: the history alone).
    public static func path(title: String, logProbTarget: [Double], ctr: [Double]) -> String {
        var lp = SVGChart(title: "log p(\(title)) after each step", xLabel: "step (0: the history alone)",
                          yLabel: "log p(target)",
                          series: [.init(name: "", points: logProbTarget.enumerated().map { (Double($0.offset), $0.element) },
                                         markers: true)])
        lp.integerX = true
        var c = SVGChart(title: "Acceptance (CTR) of each item", xLabel: "step", yLabel: "CTR",
                         series: [.init(name: "", points: ctr.enumerated().map { (Double($0.offset + 1), $0.element) },
                                        markers: true)])
        c.integerX = true
        c.yRange = 0...1
        return SVGChart.grid([lp, c], columns: 2)
    }
}
