/// Ground truth and predictions for one image.
public struct ImageDetections: Sendable {
    public var groundTruth: [LabeledBox]
    public var predictions: [ScoredBox]

    public init(groundTruth: [LabeledBox], predictions: [ScoredBox]) {
        self.groundTruth = groundTruth
        self.predictions = predictions
    }
}

/// Average precision of one class.
public struct ClassAP: Equatable, Sendable {
    public var name: String
    public var groundTruthCount: Int
    /// Predictions of this class over all images, before the per-image cap.
    public var predictionCount: Int
    /// AP at each threshold of `COCOEvaluation.iouThresholds`; nil when the class has no
    /// ground truth, which pycocotools marks -1 and leaves out of the mean.
    public var apPerThreshold: [Double]?

    public var ap50: Double? { apPerThreshold?[0] }
    public var ap75: Double? { apPerThreshold?[5] }
    public var ap50_95: Double? { apPerThreshold.map { $0.reduce(0, +) / Double($0.count) } }
}

/// COCO-style detection metrics over a set of images.
public struct DetectionMetrics: Equatable, Sendable {
    /// One entry per class, in the order the classes were given.
    public var perClass: [ClassAP]

    /// Means over the classes that have ground truth; nil when none has.
    public var map50: Double? { mean(perClass.compactMap(\.ap50)) }
    public var map75: Double? { mean(perClass.compactMap(\.ap75)) }
    public var map50_95: Double? { mean(perClass.compactMap(\.ap50_95)) }

    private func mean(_ values: [Double]) -> Double? {
        values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
    }
}

/// COCO bounding-box evaluation with pycocotools' semantics (`COCOeval`, iouType "bbox"):
/// area range "all", at most 100 detections per image and class, IoU thresholds
/// 0.50:0.05:0.95, 101-point interpolated precision.
///
/// Per image and class, detections are taken in descending score order (ties keep input
/// order) and each is matched greedily to the unmatched ground-truth box with the highest
/// IoU that reaches the threshold. Across images, detections are ranked by score with ties
/// in image order. Precision is made non-increasing from the right and read at recall
/// 0, 0.01, ..., 1 (0 where that recall is never reached). AP is the mean of those 101
/// values; mAP averages AP over classes with ground truth. There are no crowd or ignored
/// boxes.
public enum COCOEvaluation {
    /// 0.5, 0.55, ..., 0.95, computed as numpy's `linspace(.5, .95, 10)` does, so a box whose
    /// IoU sits exactly on a threshold is decided as in pycocotools.
    public static let iouThresholds: [Double] = linspace(0.5, 0.95, count: 10)

    /// 0, 0.01, ..., 1 (numpy's `linspace(0, 1, 101)`).
    public static let recallThresholds: [Double] = linspace(0.0, 1.0, count: 101)

    /// Evaluates `images` for `classes`. Boxes whose label is not in `classes` are ignored.
    public static func evaluate(images: [ImageDetections], classes: [String], maxDetectionsPerImage: Int = 100) -> DetectionMetrics {
        let perClass = classes.map { name in
            evaluateClass(name, images: images, maxDetectionsPerImage: maxDetectionsPerImage)
        }
        return DetectionMetrics(perClass: perClass)
    }

    /// IoU of two boxes, computed with the same floating-point steps as pycocotools' `bbIou`
    /// (boxes as x, y, width, height; right edge = x + width; no +1 on areas).
    public static func iou(_ a: PixelBox, _ b: PixelBox) -> Double {
        let (ax, ay, aw, ah) = (a.xMin, a.yMin, a.xMax - a.xMin, a.yMax - a.yMin)
        let (bx, by, bw, bh) = (b.xMin, b.yMin, b.xMax - b.xMin, b.yMax - b.yMin)
        let areaA = aw * ah
        let areaB = bw * bh

        let width = min(aw + ax, bw + bx) - max(ax, bx)
        if width <= 0 { return 0 }
        let height = min(ah + ay, bh + by) - max(ay, by)
        if height <= 0 { return 0 }

        let intersection = width * height
        let union = areaA + areaB - intersection
        // Two zero-area boxes cannot overlap with positive width and height, so union > 0.
        return intersection / union
    }

    // MARK: - One class

    /// A detection after per-image matching: its rank key and whether it matched at each
    /// IoU threshold.
    private struct RankedDetection {
        var score: Double
        var imageIndex: Int
        var rankInImage: Int
        var matched: [Bool]
    }

    private static func evaluateClass(_ name: String, images: [ImageDetections], maxDetectionsPerImage: Int) -> ClassAP {
        var detections: [RankedDetection] = []
        var groundTruthCount = 0
        var predictionCount = 0

        for (imageIndex, image) in images.enumerated() {
            let truths = image.groundTruth.filter { $0.label == name }.map(\.box)
            let predictions = image.predictions.filter { $0.label == name }
            groundTruthCount += truths.count
            predictionCount += predictions.count

            let ordered = stableSortedByScore(predictions).prefix(maxDetectionsPerImage)
            let matches = matchGreedily(ordered.map(\.box), truths: truths)
            for (rank, prediction) in ordered.enumerated() {
                detections.append(RankedDetection(score: prediction.score, imageIndex: imageIndex, rankInImage: rank, matched: matches[rank]))
            }
        }

        guard groundTruthCount > 0 else {
            return ClassAP(name: name, groundTruthCount: 0, predictionCount: predictionCount, apPerThreshold: nil)
        }

        detections.sort { lhs, rhs in
            if lhs.score != rhs.score { return lhs.score > rhs.score }
            if lhs.imageIndex != rhs.imageIndex { return lhs.imageIndex < rhs.imageIndex }
            return lhs.rankInImage < rhs.rankInImage
        }
        let apPerThreshold = iouThresholds.indices.map { threshold in
            interpolatedAP(matched: detections.map { $0.matched[threshold] }, groundTruthCount: groundTruthCount)
        }
        return ClassAP(name: name, groundTruthCount: groundTruthCount, predictionCount: predictionCount, apPerThreshold: apPerThreshold)
    }

    /// `predictions` in descending score order; equal scores keep their input order.
    private static func stableSortedByScore(_ predictions: [ScoredBox]) -> [ScoredBox] {
        predictions.enumerated()
            .sorted { lhs, rhs in
                lhs.element.score != rhs.element.score ? lhs.element.score > rhs.element.score : lhs.offset < rhs.offset
            }
            .map(\.element)
    }

    /// Greedy matching of score-ordered detections to ground truth in one image and class.
    ///
    /// - Returns: [detectionCount][thresholdCount], true where the detection matched.
    private static func matchGreedily(_ detections: [PixelBox], truths: [PixelBox]) -> [[Bool]] {
        let ious = detections.map { detection in truths.map { iou(detection, $0) } }
        var matched = Array(repeating: Array(repeating: false, count: iouThresholds.count), count: detections.count)

        for (thresholdIndex, threshold) in iouThresholds.enumerated() {
            var truthTaken = Array(repeating: false, count: truths.count)
            for detection in detections.indices {
                // pycocotools starts from min(t, 1 - 1e-10) and lets a later box with an equal
                // IoU replace an earlier one (it skips only strictly smaller values).
                var best = min(threshold, 1 - 1e-10)
                var bestTruth = -1
                for truth in truths.indices where !truthTaken[truth] {
                    if ious[detection][truth] < best { continue }
                    best = ious[detection][truth]
                    bestTruth = truth
                }
                if bestTruth >= 0 {
                    truthTaken[bestTruth] = true
                    matched[detection][thresholdIndex] = true
                }
            }
        }
        return matched
    }

    /// 101-point interpolated AP of detections in rank order.
    private static func interpolatedAP(matched: [Bool], groundTruthCount: Int) -> Double {
        var recall: [Double] = []
        var precision: [Double] = []
        var truePositives = 0.0
        var falsePositives = 0.0
        for isMatch in matched {
            if isMatch { truePositives += 1 } else { falsePositives += 1 }
            recall.append(truePositives / Double(groundTruthCount))
            precision.append(truePositives / (falsePositives + truePositives + Double.ulpOfOne))
        }

        // Make precision non-increasing from the right (the precision envelope).
        if precision.count > 1 {
            for index in stride(from: precision.count - 1, to: 0, by: -1) where precision[index] > precision[index - 1] {
                precision[index - 1] = precision[index]
            }
        }

        // For each recall threshold, the precision at the first rank whose recall reaches it.
        var sum = 0.0
        var rank = 0
        for threshold in recallThresholds {
            while rank < recall.count, recall[rank] < threshold { rank += 1 }
            if rank < recall.count { sum += precision[rank] }
        }
        return sum / Double(recallThresholds.count)
    }

    /// numpy's `linspace(start, stop, count)`: `start + i * ((stop - start) / (count - 1))`
    /// with the last value set to `stop`.
    private static func linspace(_ start: Double, _ stop: Double, count: Int) -> [Double] {
        let step = (stop - start) / Double(count - 1)
        var values = (0..<count).map { start + Double($0) * step }
        values[count - 1] = stop
        return values
    }
}
