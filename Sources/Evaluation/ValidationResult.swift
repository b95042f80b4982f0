import Dataset
import Foundation

/// The model's output for one validation example, parsed and in pixels.
public struct ValidationPrediction: Sendable {
    public var example: Example
    /// Generated ids, up to and including EOS when there is one.
    public var tokens: [Int32]
    /// Natural-log probability of each generated token.
    public var logProbs: [Float]
    /// SentencePiece decode of the tokens before EOS.
    public var text: String
    /// The generated pieces before EOS joined, with "▁" as a space: the text `output` was
    /// parsed from and whose ` ; `-separated parts `output`'s objects refer to.
    public var parsedText: String
    /// Objects with scores, parse issues, and whether EOS was never generated.
    public var output: ParsedOutput
    /// Size of the oriented image, the frame of both box lists.
    public var imageWidth: Int
    public var imageHeight: Int
    public var groundTruth: [LabeledBox]
    public var predictions: [ScoredBox]

    /// Formats one line for `palitrain score --predictions`: `image`, `suffix` (the parsed text),
    /// `scores` (one per part, 0 for a part without a valid object), `truncated`, and the
    /// decoded `text`.
    public func scoreLine() throws -> String {
        var scores = [Double](repeating: 0, count: output.partCount)
        for object in output.objects where object.part < scores.count {
            scores[object.part] = object.score ?? 0
        }
        let line = ScoreLine(
            image: example.image, suffix: parsedText, scores: scores, truncated: output.reachedTokenLimit, text: text)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(line), as: UTF8.self)
    }

    private struct ScoreLine: Encodable {
        var image: String
        var suffix: String
        var scores: [Double]
        var truncated: Bool
        var text: String
    }
}

/// The outcome of a validation pass: COCO metrics, output statistics, each prediction, and
/// the first images with their boxes for the report.
public struct ValidationResult: Sendable {
    /// Metrics and statistics in the form `palitrain score` reports (`ScoreReport`).
    public var score: ScoreResult
    public var predictions: [ValidationPrediction]
    public var gallery: [GalleryItem]
    /// Wall-clock seconds spent decoding (prefill and steps) and in the whole pass.
    public var decodeSeconds: Double
    public var totalSeconds: Double

    /// Values for `metrics.jsonl`: `val/map50`, `val/map75`, `val/map50_95` (left out when no
    /// class has ground truth), `val/runaway_rate`, `val/parse_failure_rate`,
    /// `val/mean_new_tokens`, `val/seconds`, and `val/ap50/<class>` for every class with
    /// ground truth.
    public var metrics: [String: Double] {
        let detection = score.metrics
        var values: [String: Double] = [
            "val/runaway_rate": score.statistics.runawayRate,
            "val/parse_failure_rate": score.statistics.parseFailureRate,
            "val/seconds": totalSeconds,
        ]
        if let map50 = detection.map50 { values["val/map50"] = map50 }
        if let map75 = detection.map75 { values["val/map75"] = map75 }
        if let map50_95 = detection.map50_95 { values["val/map50_95"] = map50_95 }
        for entry in detection.perClass {
            if let ap50 = entry.ap50 { values["val/ap50/\(entry.name)"] = ap50 }
        }
        if !predictions.isEmpty {
            let generated = predictions.reduce(0) { $0 + $1.tokens.count }
            values["val/mean_new_tokens"] = Double(generated) / Double(predictions.count)
        }
        return values
    }
}
