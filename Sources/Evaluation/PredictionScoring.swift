import Foundation

/// Everything `palitrain score` reports.
public struct ScoreResult: Sendable {
    public var metrics: DetectionMetrics
    public var statistics: OutputStatistics
    /// False when the predictions carried no `scores`, so every box scored 1.0.
    public var scored: Bool
    public var imageCount: Int
    /// Ground-truth images with no prediction line; they count as images with no detections.
    public var imagesWithoutPrediction: Int
}

/// Scores predictions made by any model against a ground-truth split.
///
/// The predictions file contains one JSON object per line:
/// `{"image": "x.jpg", "suffix": "<loc..>×4 cat ; ...", "scores": [0.9, ...], "truncated": false}`.
/// `image` must be an `image` value of the ground truth. `suffix` is PaliGemma-format output,
/// parsed leniently with the classes of that image's prompt. `scores` (optional) has one number
/// per ` ; `-separated part of the suffix, in order; without it every box scores 1.0.
/// `truncated` (optional, default false) marks an output that hit the token limit before EOS.
public enum PredictionScoring {
    private struct Line: Decodable {
        var image: String
        var suffix: String
        var scores: [Double]?
        var truncated: Bool?
    }

    public static func score(predictionsURL: URL, groundTruth: GroundTruthSplit) throws(EvaluationInputError) -> ScoreResult {
        let path = predictionsURL.path
        var indexOfImage: [String: Int] = [:]
        for (index, image) in groundTruth.images.enumerated() {
            indexOfImage[image.image] = index
        }

        var predictions = Array(repeating: [ScoredBox](), count: groundTruth.images.count)
        var lineOfImage: [Int: Int] = [:]
        var statistics = OutputStatistics()
        var firstLineWithScores: Int?
        var firstLineWithout: Int?

        for (line, data) in try readJSONLines(predictionsURL) {
            let entry = try decodeLine(Line.self, data, path: path, line: line)
            guard let imageIndex = indexOfImage[entry.image] else {
                throw .unknownImage(path: path, line: line, image: entry.image, annotationsPath: groundTruth.annotationsURL.path)
            }
            if let first = lineOfImage[imageIndex] {
                throw .duplicateImage(path: path, line: line, image: entry.image, firstLine: first)
            }
            lineOfImage[imageIndex] = line

            if entry.scores == nil {
                firstLineWithout = firstLineWithout ?? line
            } else {
                firstLineWithScores = firstLineWithScores ?? line
            }
            if let withScores = firstLineWithScores, let without = firstLineWithout {
                throw .mixedScores(path: path, lineWithScores: withScores, lineWithout: without)
            }

            let truth = groundTruth.images[imageIndex]
            var output = DetectionParser(classes: truth.classes).parse(entry.suffix)
            output.reachedTokenLimit = entry.truncated ?? false
            if let scores = entry.scores, scores.count != output.partCount {
                throw .scoreCountMismatch(path: path, line: line, scores: scores.count, objects: output.partCount)
            }
            statistics.add(output)

            predictions[imageIndex] = output.objects.map { object in
                ScoredBox(
                    label: object.label,
                    box: object.bins.pixelBox(width: truth.width, height: truth.height),
                    score: entry.scores?[object.part] ?? 1.0
                )
            }
        }

        let images = zip(groundTruth.images, predictions).map { truth, predicted in
            ImageDetections(groundTruth: truth.boxes, predictions: predicted)
        }
        return ScoreResult(
            metrics: COCOEvaluation.evaluate(images: images, classes: groundTruth.classes),
            statistics: statistics,
            scored: firstLineWithScores != nil,
            imageCount: groundTruth.images.count,
            imagesWithoutPrediction: groundTruth.images.count - lineOfImage.count
        )
    }
}
