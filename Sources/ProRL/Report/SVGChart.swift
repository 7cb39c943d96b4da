import Foundation

/// A line chart written as SVG by hand (no plotting tool needed): axes with
/// 1-2-5 ticks, one polyline per series, a legend. Charts can be laid out
/// in a grid in one file.
public struct SVGChart: Sendable {
    public struct Series: Sendable {
        public var name: String
        public var points: [(x: Double, y: Double)]
        /// Draw markers at the points (short series).
        public var markers: Bool
        public init(name: String, points: [(x: Double, y: Double)], markers: Bool = false) {
            self.name = name
            self.points = points.filter { $0.x.isFinite && $0.y.isFinite }
            self.markers = markers
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    public var width = 520.0
    public var height = 300.0
    /// Fixed y range (nil: fitted to the data).
    public var yRange: ClosedRange<Double>? = nil
    /// Only integer x ticks (steps).
    public var integerX = false

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    /// A standalone SVG document.
    public func render() -> String { Self.grid([self], columns: 1) }

    /// Several charts in a grid, one SVG document.
    public static func grid(_ charts: [SVGChart], columns: Int) -> String {
        let cols = max(1, min(columns, charts.count))
        let rows = (charts.count + cols - 1) / cols
        let w = charts.map(\.width).max() ?? 520, h = charts.map(\.height).max() ?? 300
        var out = String(format: "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                         + "viewBox=\"0 0 %.0f %.0f\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"11\">\n",
                         w * Double(cols), h * Double(rows), w * Double(cols), h * Double(rows))
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        for (i, c) in charts.enumerated() {
            out += String(format: "<g transform=\"translate(%.0f,%.0f)\">\n", w * Double(i % cols), h * Double(i / cols))
            out += c.body()
            out += "</g>\n"
        }
        return out + "</svg>\n"
    }

    /// Round tick values covering [lo, hi].
    static func ticks(_ lo: Double, _ hi: Double, count: Int = 5, integer: Bool = false) -> [Double] {
        guard hi > lo else { return [lo] }
        let raw = (hi - lo) / Double(count)
        let magnitude = pow(10, floor(log10(raw)))
        var step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        if integer { step = max(1, step.rounded()) }
        var t = ceil(lo / step) * step
        var out: [Double] = []
        while t <= hi + step * 1e-9 {
            out.append(abs(t) < step * 1e-9 ? 0 : t)
            t += step
        }
        return out
    }

    static func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 10000 || a < 0.001 { return String(format: "%.1e", v) }
        if a >= 100 { return String(format: "%.0f", v) }
        if a >= 1 { return String(format: "%.4g", v) }
        return String(format: "%.3g", v)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    func body() -> String {
        let left = 58.0, right = 12.0, top = 28.0, bottom = 40.0
        let pw = width - left - right, ph = height - top - bottom
        let xs = series.flatMap { $0.points.map(\.x) }, ys = series.flatMap { $0.points.map(\.y) }
        var x0 = xs.min() ?? 0, x1 = xs.max() ?? 1, y0 = ys.min() ?? 0, y1 = ys.max() ?? 1
        if x1 <= x0 { x0 -= 0.5; x1 += 0.5 }
        if y1 <= y0 { y0 -= max(abs(y0) * 0.1, 0.5); y1 += max(abs(y1) * 0.1, 0.5) }
        let pad = (y1 - y0) * 0.05
        y0 -= pad
        y1 += pad
        if let r = yRange { y0 = r.lowerBound; y1 = r.upperBound }
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * pw }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * ph }
        let shown = title.count > 64 ? String(title.prefix(63)) + "…" : title
        var out = String(format: "<text x=\"%.1f\" y=\"16\" text-anchor=\"middle\" font-size=\"12\" font-weight=\"bold\">%@</text>\n",
                         left + pw / 2, Self.escape(shown))
        // grid and ticks
        for t in Self.ticks(y0, y1) {
            out += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", left, py(t), left + pw, py(t))
            out += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%@</text>\n", left - 4, py(t) + 4, Self.label(t))
        }
        for t in Self.ticks(x0, x1, integer: integerX) {
            out += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#f0f0f0\"/>\n", px(t), top, px(t), top + ph)
            out += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%@</text>\n", px(t), top + ph + 14, Self.label(t))
        }
        out += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444\"/>\n", left, top, pw, ph)
        out += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%@</text>\n", left + pw / 2, height - 6, Self.escape(xLabel))
        out += String(format: "<text transform=\"translate(12,%.1f) rotate(-90)\" text-anchor=\"middle\">%@</text>\n",
                      top + ph / 2, Self.escape(yLabel))
        // series
        for (i, s) in series.enumerated() where !s.points.isEmpty {
            let color = Self.palette[i % Self.palette.count]
            let pts = s.points.map { String(format: "%.1f,%.1f", px($0.x), py($0.y)) }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.6\" points=\"\(pts)\"/>\n"
            if s.markers {
                for p in s.points {
                    out += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%@\"/>\n", px(p.x), py(p.y), color)
                }
            }
        }
        // legend
        if series.count > 1 || !(series.first?.name.isEmpty ?? true) {
            for (i, s) in series.enumerated() {
                let color = Self.palette[i % Self.palette.count]
                let y = top + 10 + Double(i) * 14
                out += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%@\" stroke-width=\"2\"/>\n",
                              left + pw - 110, y, left + pw - 94, y, color)
                out += String(format: "<text x=\"%.1f\" y=\"%.1f\">%@</text>\n", left + pw - 90, y + 4, Self.escape(s.name))
            }
        }
        return out
    }

    /// Centred moving average over `window` points (ends use what exists).
    public static func smooth(_ points: [(x: Double, y: Double)], window: Int) -> [(x: Double, y: Double)] {
        guard window > 1 else { return points }
        let h = window / 2
        return points.indices.map { i in
            let lo = max(0, i - h), hi = min(points.count - 1, i + h)
            let ys = points[lo...hi].map(\.y)
            return (points[i].x, ys.reduce(0, +) / Double(ys.count))
        }
    }
}
