import XCTest

@testable import Evaluation

final class MeanAveragePrecisionTests: XCTestCase {
    private func box(_ x: Double, _ y: Double, _ width: Double, _ height: Double) -> PixelBox {
        PixelBox(xMin: x, yMin: y, xMax: x + width, yMax: y + height)
    }

    private func truth(_ label: String, _ box: PixelBox) -> LabeledBox {
        LabeledBox(label: label, box: box)
    }

    private func prediction(_ label: String, _ box: PixelBox, _ score: Double) -> ScoredBox {
        ScoredBox(label: label, box: box, score: score)
    }

    func testIoU() {
        let a = box(0, 0, 10, 10)
        XCTAssertEqual(COCOEvaluation.iou(a, a), 1)
        XCTAssertEqual(COCOEvaluation.iou(a, box(5, 0, 10, 10)), 50.0 / 150.0, accuracy: 1e-15)
        XCTAssertEqual(COCOEvaluation.iou(a, box(10, 0, 10, 10)), 0, "touching edges do not overlap")
        XCTAssertEqual(COCOEvaluation.iou(a, box(20, 20, 5, 5)), 0)
        XCTAssertEqual(COCOEvaluation.iou(a, box(2, 2, 0, 0)), 0, "a zero-size box overlaps nothing")
    }

    func testThresholdsMatchNumpy() {
        XCTAssertEqual(COCOEvaluation.iouThresholds.count, 10)
        XCTAssertEqual(COCOEvaluation.iouThresholds.first, 0.5)
        XCTAssertEqual(COCOEvaluation.iouThresholds.last, 0.95)
        XCTAssertEqual(COCOEvaluation.iouThresholds[5], 0.75)
        // numpy's linspace gives 0.8999999999999999 here, not 0.9; IoU 0.9 must match as there.
        XCTAssertEqual(COCOEvaluation.iouThresholds[8], 0.8999999999999999)
        XCTAssertEqual(COCOEvaluation.recallThresholds.count, 101)
        XCTAssertEqual(COCOEvaluation.recallThresholds[7], 0.07, accuracy: 1e-15)
        XCTAssertEqual(COCOEvaluation.recallThresholds.last, 1.0)
    }

    func testPerfectPredictionsScoreOne() throws {
        let images = [
            ImageDetections(groundTruth: [truth("cat", box(0, 0, 10, 10)), truth("dog", box(20, 20, 5, 8))],
                            predictions: [prediction("dog", box(20, 20, 5, 8), 0.3), prediction("cat", box(0, 0, 10, 10), 0.9)]),
            ImageDetections(groundTruth: [truth("cat", box(3, 4, 50, 60))], predictions: [prediction("cat", box(3, 4, 50, 60), 0.1)]),
        ]
        let metrics = COCOEvaluation.evaluate(images: images, classes: ["cat", "dog"])

        XCTAssertEqual(try XCTUnwrap(metrics.map50), 1, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(metrics.map50_95), 1, accuracy: 1e-12)
        XCTAssertEqual(metrics.perClass.map(\.groundTruthCount), [2, 1])
        XCTAssertEqual(metrics.perClass.map(\.predictionCount), [2, 1])
    }

    func testNoPredictionsScoreZero() throws {
        let images = [ImageDetections(groundTruth: [truth("cat", box(0, 0, 10, 10))], predictions: [])]
        let metrics = COCOEvaluation.evaluate(images: images, classes: ["cat"])

        XCTAssertEqual(try XCTUnwrap(metrics.map50), 0)
        XCTAssertEqual(try XCTUnwrap(metrics.map50_95), 0)
    }

    func testClassWithoutGroundTruthIsLeftOut() throws {
        let images = [
            ImageDetections(groundTruth: [truth("cat", box(0, 0, 10, 10))],
                            predictions: [prediction("cat", box(0, 0, 10, 10), 0.9), prediction("dog", box(30, 30, 10, 10), 0.99)]),
        ]
        let metrics = COCOEvaluation.evaluate(images: images, classes: ["cat", "dog"])

        XCTAssertNil(metrics.perClass[1].ap50)
        XCTAssertNil(metrics.perClass[1].ap50_95)
        XCTAssertEqual(metrics.perClass[1].predictionCount, 1)
        XCTAssertEqual(try XCTUnwrap(metrics.map50), 1, accuracy: 1e-12, "the dog false positive does not lower the mean")
    }

    func testNoGroundTruthAtAllGivesNoMean() {
        let images = [ImageDetections(groundTruth: [], predictions: [prediction("cat", box(0, 0, 1, 1), 1)])]
        let metrics = COCOEvaluation.evaluate(images: images, classes: ["cat"])

        XCTAssertNil(metrics.map50)
        XCTAssertNil(metrics.map50_95)
    }

    func testDuplicateCountsAsFalsePositive() throws {
        // The higher-scored duplicate overlaps with IoU 0.6: it matches up to threshold 0.6
        // (IoU equal to the threshold matches) but not at 0.65 and above, where the exact box
        // (ranked second) matches instead, at precision 1/2. A perfect ranking gives
        // 1 / (1 + eps) as in pycocotools, hence the tolerance.
        let object = box(0, 0, 100, 100)
        let loose = box(0, 0, 100, 60)
        XCTAssertEqual(COCOEvaluation.iou(object, loose), 0.6, accuracy: 1e-12)
        let images = [ImageDetections(groundTruth: [truth("cat", object)],
                                      predictions: [prediction("cat", object, 0.6), prediction("cat", loose, 0.9)])]
        let entry = try XCTUnwrap(COCOEvaluation.evaluate(images: images, classes: ["cat"]).perClass.first)

        XCTAssertEqual(try XCTUnwrap(entry.ap50), 1, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(entry.ap75), 0.5, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(entry.apPerThreshold?[2]), 1, accuracy: 1e-12, "IoU 0.6 reaches threshold 0.6")
        XCTAssertEqual(try XCTUnwrap(entry.apPerThreshold?[3]), 0.5, accuracy: 1e-12, "IoU 0.6 misses threshold 0.65")
    }

    func testInterpolatedPrecisionByHand() throws {
        // Ranked: TP (0.9), FP (0.8), TP (0.7) over 2 objects. Recall 0.5, 0.5, 1; the
        // precision envelope is 1, 2/3, 2/3. Recall points 0...0.5 (51 of them) read 1, the
        // other 50 read 2/3.
        let images = [
            ImageDetections(groundTruth: [truth("cat", box(0, 0, 10, 10)), truth("cat", box(50, 50, 10, 10))],
                            predictions: [prediction("cat", box(0, 0, 10, 10), 0.9), prediction("cat", box(80, 80, 10, 10), 0.8)]),
            ImageDetections(groundTruth: [], predictions: []),
        ]
        var withSecond = images
        withSecond[0].predictions.append(prediction("cat", box(50, 50, 10, 10), 0.7))
        let entry = try XCTUnwrap(COCOEvaluation.evaluate(images: withSecond, classes: ["cat"]).perClass.first)

        XCTAssertEqual(try XCTUnwrap(entry.ap50), (51 + 50 * 2.0 / 3) / 101, accuracy: 1e-12)

        // Without the third box recall stops at 0.5: points above 0.5 read 0.
        let partial = try XCTUnwrap(COCOEvaluation.evaluate(images: images, classes: ["cat"]).perClass.first)
        XCTAssertEqual(try XCTUnwrap(partial.ap50), 51.0 / 101, accuracy: 1e-12)
    }

    func testTiesRankInImageOrder() throws {
        // Equal scores: the first image's false positive ranks before the second image's hit.
        let images = [
            ImageDetections(groundTruth: [], predictions: [prediction("cat", box(0, 0, 10, 10), 1)]),
            ImageDetections(groundTruth: [truth("cat", box(0, 0, 10, 10))], predictions: [prediction("cat", box(0, 0, 10, 10), 1)]),
        ]
        let entry = try XCTUnwrap(COCOEvaluation.evaluate(images: images, classes: ["cat"]).perClass.first)
        XCTAssertEqual(try XCTUnwrap(entry.ap50), 0.5, accuracy: 1e-12)

        let swapped = [images[1], images[0]]
        let swappedEntry = try XCTUnwrap(COCOEvaluation.evaluate(images: swapped, classes: ["cat"]).perClass.first)
        XCTAssertEqual(try XCTUnwrap(swappedEntry.ap50), 1, accuracy: 1e-12)
    }

    func testDetectionCapPerImage() throws {
        let images = [
            ImageDetections(groundTruth: [truth("cat", box(0, 0, 10, 10)), truth("cat", box(50, 50, 10, 10))],
                            predictions: [prediction("cat", box(50, 50, 10, 10), 0.2), prediction("cat", box(0, 0, 10, 10), 0.8)]),
        ]
        let capped = try XCTUnwrap(COCOEvaluation.evaluate(images: images, classes: ["cat"], maxDetectionsPerImage: 1).perClass.first)
        XCTAssertEqual(try XCTUnwrap(capped.ap50), 51.0 / 101, accuracy: 1e-12, "only the 0.8 box is kept")
        XCTAssertEqual(capped.predictionCount, 2)
    }

    func testLabelsOutsideClassesAreIgnored() throws {
        let images = [ImageDetections(groundTruth: [truth("cat", box(0, 0, 10, 10)), truth("bird", box(0, 0, 5, 5))],
                                      predictions: [prediction("cat", box(0, 0, 10, 10), 0.5), prediction("bird", box(0, 0, 5, 5), 1)])]
        let metrics = COCOEvaluation.evaluate(images: images, classes: ["cat"])

        XCTAssertEqual(metrics.perClass.map(\.name), ["cat"])
        XCTAssertEqual(try XCTUnwrap(metrics.map50), 1, accuracy: 1e-12)
    }
}
