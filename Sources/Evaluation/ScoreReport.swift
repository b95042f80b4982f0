import Foundation

/// Formats a `ScoreResult` as a table for people or as one JSON object for scripts.
public enum ScoreReport {
    /// Formats a table for people: per-class AP, the means, runaway and parse-failure rates.
    public static func table(_ result: ScoreResult, source: String) -> String {
        var lines: [String] = []
        let stats = result.statistics
        lines.append("Scored \(stats.outputCount) outputs against \(result.imageCount) ground-truth images (\(source)).")
        if !result.scored {
            lines.append("NOTE: the predictions have no 'scores', so every box scores 1.0 and AP ranks boxes in file order.")
        }
        if result.imagesWithoutPrediction > 0 {
            let count = result.imagesWithoutPrediction
            let text = count == 1
                ? "1 ground-truth image has no prediction line; it counts as an image with no detections."
                : "\(count) ground-truth images have no prediction line; they count as images with no detections."
            lines.append("NOTE: " + text)
        }
        lines.append("")

        let nameWidth = max(12, result.metrics.perClass.map(\.name.count).max() ?? 0)
        lines.append(pad("class", nameWidth) + "  " + ["gt", "pred", "AP@0.5", "AP@0.75", "AP@0.5:0.95"].map { leftPad($0, 12) }.joined())
        for entry in result.metrics.perClass {
            var row = pad(entry.name, nameWidth) + "  " + leftPad(String(entry.groundTruthCount), 12) + leftPad(String(entry.predictionCount), 12)
            row += [entry.ap50, entry.ap75, entry.ap50_95].map { leftPad(format($0), 12) }.joined()
            if entry.apPerThreshold == nil { row += "  (no ground truth, left out of the mean)" }
            lines.append(row)
        }
        let classesInMean = result.metrics.perClass.filter { $0.apPerThreshold != nil }.count
        let metrics = result.metrics
        lines.append(
            pad("mean (\(classesInMean) classes)", nameWidth + 26)
                + [metrics.map50, metrics.map75, metrics.map50_95].map { leftPad(format($0), 12) }.joined()
        )
        lines.append("")

        lines.append("runaway (token limit reached without EOS): \(stats.runawayCount) of \(stats.outputCount) outputs (\(percent(stats.runawayRate)))")
        lines.append("failed to parse: \(stats.failedCount) of \(stats.outputCount) outputs (\(percent(stats.parseFailureRate)))")
        let issues = ParseIssueKind.allCases.compactMap { kind in
            stats.issueCounts[kind].map { "\(kind.rawValue) \($0)" }
        }
        if !issues.isEmpty {
            lines.append("parse issues: " + issues.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }

    /// Formats one JSON object with `map50`, `map75`, `map50_95` (null without ground truth),
    /// `per_class`, `runaway_rate`, `parse_failure_rate`, `parse_issues` and counts.
    public static func json(_ result: ScoreResult) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(JSONReport(result))
        return String(decoding: data, as: UTF8.self)
    }

    private struct JSONReport: Encodable {
        var result: ScoreResult

        init(_ result: ScoreResult) { self.result = result }

        enum Keys: String, CodingKey {
            case map50, map75, map50_95, per_class, runaway_rate, parse_failure_rate, parse_issues
            case outputs, images, images_without_prediction, scored
        }

        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(result.metrics.map50, forKey: .map50)
            try container.encode(result.metrics.map75, forKey: .map75)
            try container.encode(result.metrics.map50_95, forKey: .map50_95)

            var perClass: [String: ClassEntry] = [:]
            for entry in result.metrics.perClass {
                perClass[entry.name] = ClassEntry(entry)
            }
            try container.encode(perClass, forKey: .per_class)

            try container.encode(result.statistics.runawayRate, forKey: .runaway_rate)
            try container.encode(result.statistics.parseFailureRate, forKey: .parse_failure_rate)
            var issues: [String: Int] = [:]
            for kind in ParseIssueKind.allCases {
                issues[kind.rawValue] = result.statistics.issueCounts[kind, default: 0]
            }
            try container.encode(issues, forKey: .parse_issues)
            try container.encode(result.statistics.outputCount, forKey: .outputs)
            try container.encode(result.imageCount, forKey: .images)
            try container.encode(result.imagesWithoutPrediction, forKey: .images_without_prediction)
            try container.encode(result.scored, forKey: .scored)
        }
    }

    private struct ClassEntry: Encodable {
        var entry: ClassAP

        init(_ entry: ClassAP) { self.entry = entry }

        enum Keys: String, CodingKey {
            case ap50, ap75, ap50_95, ground_truth, predictions
        }

        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(entry.ap50, forKey: .ap50)
            try container.encode(entry.ap75, forKey: .ap75)
            try container.encode(entry.ap50_95, forKey: .ap50_95)
            try container.encode(entry.groundTruthCount, forKey: .ground_truth)
            try container.encode(entry.predictionCount, forKey: .predictions)
        }
    }

    private static func format(_ value: Double?) -> String {
        value.map { String(format: "%.4f", $0) } ?? "-"
    }

    private static func percent(_ rate: Double) -> String {
        String(format: "%.1f%%", rate * 100)
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    private static func leftPad(_ text: String, _ width: Int) -> String {
        text.count >= width ? " " + text : String(repeating: " ", count: width - text.count) + text
    }
}
