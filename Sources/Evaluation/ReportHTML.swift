import Foundation

/// The HTML of the run report: summary, curves, gallery. Self-contained (inline CSS and
/// SVG, no scripts, no network), so it opens from a copied run folder.
struct ReportHTML {
    var runName: String
    var history: MetricsHistory
    var gallery: [GalleryItem]
    /// Relative paths of the gallery JPEGs, one per item.
    var imagePaths: [String]
    var generatedAt: Date

    private static let blue = "#1f77b4"
    private static let orange = "#ff7f0e"
    private static let purple = "#9467bd"
    private static let red = "#d62728"

    func render() -> String {
        var html = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>\(escapeHTML(runName)) - palitrain report</title>
        <style>\(Self.style)</style>
        </head>
        <body>
        <h1>\(escapeHTML(runName))</h1>

        """
        html += summary()
        html += "<h2>Training</h2>\n<div class=\"charts\">\n"
        html += chart("Loss", [("train/loss", "train loss", Self.blue), ("val/loss", "validation loss", Self.orange)])
        html += chart("Learning rate", [("train/lr", "learning rate", Self.purple)])
        html += "</div>\n<h2>Validation</h2>\n<div class=\"charts\">\n"
        html += chart("mAP", [("val/map50", "mAP@0.5", Self.blue), ("val/map50_95", "mAP@0.5:0.95", Self.orange)], yRange: 0...1)
        if !history.series("val/runaway_rate").isEmpty || !history.series("val/parse_failure_rate").isEmpty {
            html += chart("Decoding failures (share of outputs)", [
                ("val/runaway_rate", "runaway (no EOS)", Self.red), ("val/parse_failure_rate", "failed to parse", Self.purple),
            ], yRange: 0...1)
        }
        html += "</div>\n"
        html += galleryHTML()
        html += "<footer>Generated \(ISO8601DateFormatter().string(from: generatedAt)) by palitrain from metrics.jsonl; regenerated at each validation.</footer>\n"
        html += "</body>\n</html>\n"
        return html
    }

    private func summary() -> String {
        var rows: [(String, String)] = []
        let step = history.names.compactMap { history.latest($0)?.step }.max()
        rows.append(("latest step", step.map(String.init) ?? "none yet"))
        if let loss = history.latest("train/loss") {
            rows.append(("train loss", "\(formatValue(loss.value)) at step \(loss.step)"))
        }
        if let map = history.latest("val/map50") {
            rows.append(("mAP@0.5", "\(formatValue(map.value)) at step \(map.step)"))
        }
        if let map = history.latest("val/map50_95") {
            rows.append(("mAP@0.5:0.95", "\(formatValue(map.value)) at step \(map.step)"))
        }
        if let best = history.series("val/map50_95").max(by: { $0.value < $1.value }) {
            rows.append(("best mAP@0.5:0.95", "\(formatValue(best.value)) at step \(best.step)"))
        }
        let cells = rows.map { "<tr><th>\(escapeHTML($0.0))</th><td>\(escapeHTML($0.1))</td></tr>" }.joined(separator: "\n")
        return "<table class=\"summary\">\n\(cells)\n</table>\n"
    }

    /// Renders one chart of the metrics `lines` (key, legend name, colour) against the step.
    private func chart(_ title: String, _ lines: [(key: String, name: String, color: String)], yRange: ClosedRange<Double>? = nil) -> String {
        let series = lines.compactMap { line -> ChartSeries? in
            let points = history.series(line.key).map { (x: Double($0.step), y: $0.value) }
            return points.isEmpty ? nil : ChartSeries(name: line.name, color: line.color, points: points)
        }
        return "<figure class=\"chart-box\">" + SVGChart.lineChart(title: title, xLabel: "step", series: series, yRange: yRange) + "</figure>\n"
    }

    private func galleryHTML() -> String {
        var html = "<h2>Validation images</h2>\n"
        html += "<p class=\"legend\"><span class=\"swatch\" style=\"border: 3px solid \(RGBColor.groundTruth.hex)\"></span> ground truth (solid) "
        html += "<span class=\"swatch\" style=\"border: 3px dashed \(RGBColor.prediction.hex)\"></span> prediction (dashed), with its score</p>\n"
        guard !gallery.isEmpty else {
            return html + "<p>No validation images yet.</p>\n"
        }

        html += "<div class=\"gallery\">\n"
        for (item, path) in zip(gallery, imagePaths) {
            html += "<figure>\n<img src=\"\(escapeHTML(path))\" alt=\"\(escapeHTML(item.title))\" loading=\"lazy\">\n<figcaption>"
            html += "<strong>\(escapeHTML(item.title))</strong><br>"
            html += "<span class=\"gt\">ground truth:</span> \(escapeHTML(groundTruthCaption(item.groundTruth)))<br>"
            html += "<span class=\"pred\">predictions:</span> \(escapeHTML(predictionCaption(item.predictions)))"
            html += "</figcaption>\n</figure>\n"
        }
        return html + "</div>\n"
    }

    /// "cat ×2, dog", in order of first appearance.
    private func groundTruthCaption(_ boxes: [LabeledBox]) -> String {
        guard !boxes.isEmpty else { return "none" }
        var order: [String] = []
        var counts: [String: Int] = [:]
        for box in boxes {
            if counts[box.label] == nil { order.append(box.label) }
            counts[box.label, default: 0] += 1
        }
        return order.map { label in
            let count = counts[label, default: 1]
            return count > 1 ? "\(label) ×\(count)" : label
        }.joined(separator: ", ")
    }

    /// "cat 0.93, dog 0.41", highest score first.
    private func predictionCaption(_ boxes: [ScoredBox]) -> String {
        guard !boxes.isEmpty else { return "none" }
        return boxes.sorted { $0.score > $1.score }.map { "\($0.label) \(String(format: "%.2f", $0.score))" }.joined(separator: ", ")
    }

    private func formatValue(_ value: Double) -> String {
        String(format: "%.4g", value)
    }

    private static let style = """
    body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #222; background: #fff; }
    h1 { font-size: 22px; margin: 0 0 12px; }
    h2 { font-size: 17px; margin: 24px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
    table.summary { border-collapse: collapse; font-size: 14px; }
    table.summary th { text-align: left; padding: 2px 16px 2px 0; color: #555; font-weight: normal; }
    .charts { display: flex; flex-wrap: wrap; gap: 16px; }
    figure { margin: 0; }
    .chart-box { border: 1px solid #e4e4e4; border-radius: 4px; padding: 4px; }
    svg.chart { font-size: 11px; }
    svg.chart .chart-title { font-size: 13px; font-weight: 600; fill: #222; }
    svg.chart .grid { stroke: #eee; stroke-width: 1; }
    svg.chart .frame { fill: none; stroke: #999; stroke-width: 1; }
    svg.chart .tick, svg.chart .legend, svg.chart .axis-label { fill: #444; }
    svg.chart .chart-empty { fill: #888; font-size: 13px; }
    p.legend { font-size: 14px; }
    .swatch { display: inline-block; width: 22px; height: 12px; vertical-align: middle; margin: 0 4px 0 12px; }
    .gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 16px; }
    .gallery img { width: 100%; height: auto; display: block; border: 1px solid #ddd; }
    .gallery figcaption { font-size: 13px; margin-top: 4px; line-height: 1.4; }
    .gt { color: #00a040; font-weight: 600; }
    .pred { color: #e64a19; font-weight: 600; }
    footer { margin-top: 24px; font-size: 12px; color: #777; }
    """
}
