import Foundation

/// One line of a chart.
public struct ChartSeries: Sendable {
    public var name: String
    /// A CSS colour.
    public var color: String
    /// Points in x order.
    public var points: [(x: Double, y: Double)]

    public init(name: String, color: String, points: [(x: Double, y: Double)]) {
        self.name = name
        self.color = color
        self.points = points
    }
}

/// Line charts as inline SVG, with axes, "nice" tick values and a legend; no scripts.
public enum SVGChart {
    public static let width = 520.0
    public static let height = 280.0
    private static let margin = (left: 64.0, right: 16.0, top: 44.0, bottom: 42.0)

    /// Builds an `<svg>` element that plots `series` against a shared x axis. Each series with
    /// two or more points becomes one `<path class="series">`, and a single point becomes a
    /// circle. Non-finite values are left out.
    public static func lineChart(title: String, xLabel: String, series: [ChartSeries], yRange: ClosedRange<Double>? = nil) -> String {
        let series = series.map { line in
            ChartSeries(name: line.name, color: line.color, points: line.points.filter { $0.x.isFinite && $0.y.isFinite })
        }
        let allPoints = series.flatMap(\.points)
        var svg = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\" aria-label=\"\(escapeHTML(title))\">\n"
        svg += "<text x=\"\(format(margin.left))\" y=\"18\" class=\"chart-title\">\(escapeHTML(title))</text>\n"

        guard let minX = allPoints.map(\.x).min(), let maxX = allPoints.map(\.x).max(),
              let dataMinY = allPoints.map(\.y).min(), let dataMaxY = allPoints.map(\.y).max()
        else {
            svg += "<text x=\"\(format(width / 2))\" y=\"\(format(height / 2))\" text-anchor=\"middle\" class=\"chart-empty\">no data yet</text>\n</svg>"
            return svg
        }

        let xAxis = Axis(low: minX, high: maxX, exact: true)
        let yAxis = yRange.map { Axis(low: $0.lowerBound, high: $0.upperBound, exact: true) } ?? Axis(low: dataMinY, high: dataMaxY)
        let plotWidth = width - margin.left - margin.right
        let plotHeight = height - margin.top - margin.bottom
        func px(_ x: Double) -> Double { margin.left + (x - xAxis.low) / (xAxis.high - xAxis.low) * plotWidth }
        func py(_ y: Double) -> Double { margin.top + (1 - (y - yAxis.low) / (yAxis.high - yAxis.low)) * plotHeight }

        // Grid lines and tick labels.
        for tick in yAxis.ticks {
            let y = format(py(tick))
            svg += "<line x1=\"\(format(margin.left))\" y1=\"\(y)\" x2=\"\(format(width - margin.right))\" y2=\"\(y)\" class=\"grid\"/>"
            svg += "<text x=\"\(format(margin.left - 6))\" y=\"\(y)\" text-anchor=\"end\" dominant-baseline=\"middle\" class=\"tick\">\(tickLabel(tick))</text>\n"
        }
        for tick in xAxis.ticks {
            let x = format(px(tick))
            svg += "<line x1=\"\(x)\" y1=\"\(format(margin.top))\" x2=\"\(x)\" y2=\"\(format(height - margin.bottom))\" class=\"grid\"/>"
            svg += "<text x=\"\(x)\" y=\"\(format(height - margin.bottom + 16))\" text-anchor=\"middle\" class=\"tick\">\(tickLabel(tick))</text>\n"
        }
        svg += "<rect x=\"\(format(margin.left))\" y=\"\(format(margin.top))\" width=\"\(format(plotWidth))\" height=\"\(format(plotHeight))\" class=\"frame\"/>\n"
        svg += "<text x=\"\(format(margin.left + plotWidth / 2))\" y=\"\(format(height - 6))\" text-anchor=\"middle\" class=\"axis-label\">\(escapeHTML(xLabel))</text>\n"

        // Series, clipped to the plot area when a fixed y range cuts them.
        for line in series where !line.points.isEmpty {
            let color = escapeHTML(line.color)
            if line.points.count == 1, let point = line.points.first {
                svg += "<circle cx=\"\(format(px(point.x)))\" cy=\"\(format(py(point.y)))\" r=\"3.5\" fill=\"\(color)\" class=\"series-point\"/>\n"
            } else {
                let path = line.points.enumerated().map { index, point in
                    (index == 0 ? "M" : "L") + format(px(point.x)) + "," + format(py(point.y))
                }.joined(separator: " ")
                svg += "<path class=\"series\" d=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" stroke-linejoin=\"round\"/>\n"
            }
        }

        // Legend, in a row under the title.
        var legendX = margin.left
        for line in series {
            svg += "<rect x=\"\(format(legendX))\" y=\"27\" width=\"12\" height=\"4\" fill=\"\(escapeHTML(line.color))\"/>"
            svg += "<text x=\"\(format(legendX + 16))\" y=\"32\" class=\"legend\">\(escapeHTML(line.name))</text>\n"
            // NOTE: text width is estimated (6.5 px per character at 11 px), as SVG cannot measure it.
            legendX += Double(line.name.count) * 6.5 + 34
        }
        svg += "</svg>"
        return svg
    }

    /// An axis range widened to "nice" tick values (1, 2 or 5 times a power of ten), or kept
    /// as given when `exact`.
    private struct Axis {
        var low: Double
        var high: Double
        var ticks: [Double]

        init(low: Double, high: Double, exact: Bool = false) {
            var low = low
            var high = high
            if high - low <= 0 {
                // A flat series: open a range around its value.
                let pad = low == 0 ? 1 : abs(low) * 0.1
                low -= pad
                high += pad
            }
            let step = Axis.niceStep((high - low) / 6)
            if !exact {
                low = (low / step).rounded(.down) * step
                high = (high / step).rounded(.up) * step
            }
            var ticks: [Double] = []
            var tick = (low / step).rounded(.up) * step
            while tick <= high + step * 1e-9 {
                ticks.append(abs(tick) < step * 1e-9 ? 0 : tick)
                tick += step
            }
            self.low = low
            self.high = high
            self.ticks = ticks
        }

        static func niceStep(_ rough: Double) -> Double {
            let magnitude = pow(10, (log10(rough)).rounded(.down))
            let fraction = rough / magnitude
            for nice in [1.0, 2.0, 5.0] where fraction <= nice {
                return nice * magnitude
            }
            return 10 * magnitude
        }
    }

    /// Compact tick text: `1200`, `0.25`, `3e-05` (six significant digits, trailing zeros dropped).
    private static func tickLabel(_ value: Double) -> String {
        String(format: "%.6g", value)
    }

    private static func format(_ value: Double) -> String {
        String(format: "%.1f", value)
    }
}

/// Escapes text for HTML element content and attribute values.
func escapeHTML(_ text: String) -> String {
    var escaped = ""
    escaped.reserveCapacity(text.count)
    for character in text {
        switch character {
        case "&": escaped += "&amp;"
        case "<": escaped += "&lt;"
        case ">": escaped += "&gt;"
        case "\"": escaped += "&quot;"
        case "'": escaped += "&#39;"
        default: escaped.append(character)
        }
    }
    return escaped
}
