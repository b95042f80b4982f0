import Dataset
import Foundation
import PaliGemmaModel
import TensorCore
import XCTest

@testable import Evaluation

/// The validation pass: prompts and ground truth checked up front, decoding with a random
/// model, and scoring of known outputs through the real tokenizer.
final class ValidatorTests: XCTestCase {
    private var dataset: ValidationDataset!

    override func setUpWithError() throws {
        dataset = try ValidationDataset()
    }

    override func tearDown() {
        dataset?.remove()
    }

    // MARK: - A random model, end to end

    func testRandomModelRunsThroughEveryStep() throws {
        let settings = ValidationSettings(batchSize: 2, maxNewTokens: 6, galleryCount: 2, galleryMaxSide: 32)
        let validator = try Validator(examples: try dataset.examples(), tokenizer: dataset.tokenizer, settings: settings)
        XCTAssertEqual(validator.classes, ["cat", "dog"])
        var progress: [Int] = []

        let result = try validator.run(try ValidationDataset.randomModel(vocabSize: dataset.tokenizer.vocabularySize)) { done, total in
            XCTAssertEqual(total, 3)
            progress.append(done)
        }

        XCTAssertEqual(progress, [2, 3])
        XCTAssertEqual(result.predictions.count, 3)
        XCTAssertEqual(result.score.imageCount, 3)
        XCTAssertEqual(result.score.statistics.outputCount, 3)
        for prediction in result.predictions {
            XCTAssertLessThanOrEqual(prediction.tokens.count, 6)
            XCTAssertEqual(prediction.tokens.count, prediction.logProbs.count)
            XCTAssertTrue(prediction.logProbs.allSatisfy { $0 <= 0 && $0.isFinite }, "\(prediction.logProbs)")
            XCTAssertEqual(prediction.output.reachedTokenLimit, !prediction.tokens.contains(dataset.tokenizer.eosID))
            XCTAssertEqual([prediction.imageWidth, prediction.imageHeight], [64, 48])
        }

        let metrics = result.metrics
        for key in ["val/map50", "val/map75", "val/map50_95", "val/runaway_rate", "val/parse_failure_rate", "val/ap50/cat", "val/ap50/dog"] {
            let value = try XCTUnwrap(metrics[key], key)
            XCTAssertTrue((0...1).contains(value), "\(key) = \(value)")
        }
        XCTAssertGreaterThan(try XCTUnwrap(metrics["val/mean_new_tokens"]), 0)

        XCTAssertEqual(result.gallery.count, 2)
        XCTAssertEqual(result.gallery.map(\.title), ["a.jpg", "b.jpg"])
        XCTAssertEqual([result.gallery[0].width, result.gallery[0].height], [32, 24], "shrunk to 32 on the longer side")
        XCTAssertEqual(result.gallery[0].groundTruth.count, 1)
        XCTAssertEqual(result.gallery[0].groundTruth[0].box.xMax, 400.0 / 1023 * 32, accuracy: 1e-9, "boxes shrink with the image")
    }

    // MARK: - Scoring known outputs

    /// Outputs equal to the ground truth score AP 1 at every threshold, with each box's score
    /// exp(mean log p) of its tokens.
    func testOutputsEqualToGroundTruthScoreOne() throws {
        let validator = try Validator(examples: try dataset.examples(), tokenizer: dataset.tokenizer, settings: ValidationSettings(galleryCount: 0))
        let outputs = try dataset.examples().map { example in
            Validator.GeneratedOutput(
                tokens: try dataset.tokenizer.encode(example.suffix) + [dataset.tokenizer.eosID],
                logProbs: Array(repeating: -0.25, count: try dataset.tokenizer.encode(example.suffix).count + 1),
                width: 64, height: 48)
        }

        let result = try validator.score(outputs)

        XCTAssertEqual(result.score.metrics.map50, 1)
        XCTAssertEqual(try XCTUnwrap(result.score.metrics.map50_95), 1, accuracy: 1e-12)
        XCTAssertEqual(result.metrics["val/runaway_rate"], 0)
        XCTAssertEqual(result.metrics["val/parse_failure_rate"], 0)
        XCTAssertEqual(result.predictions.map(\.predictions.count), [1, 2, 0])
        for prediction in result.predictions {
            XCTAssertEqual(prediction.predictions.map(\.box), prediction.groundTruth.map(\.box))
            XCTAssertEqual(prediction.predictions.map(\.label), prediction.groundTruth.map(\.label))
            for box in prediction.predictions { XCTAssertEqual(box.score, exp(-0.25), accuracy: 1e-6) }
            XCTAssertEqual(prediction.text, prediction.example.suffix)
        }
    }

    /// One box moved by half its width, one runaway output without EOS, one unknown label.
    func testWrongOutputsLowerTheScores() throws {
        let examples = try dataset.examples()
        let validator = try Validator(examples: examples, tokenizer: dataset.tokenizer, settings: ValidationSettings(galleryCount: 0))
        let texts = [
            "<loc0100><loc0250><loc0300><loc0550> cat",  // ground truth x 100...400, so IoU 1/3
            examples[1].suffix,
            "<loc0010><loc0010><loc0020><loc0020> horse",
        ]
        let eos = dataset.tokenizer.eosID
        let outputs = try texts.enumerated().map { index, text in
            let tokens = try dataset.tokenizer.encode(text) + (index == 1 ? [] : [eos])
            return Validator.GeneratedOutput(tokens: tokens, logProbs: Array(repeating: -1, count: tokens.count), width: 64, height: 48)
        }

        let result = try validator.score(outputs)

        XCTAssertEqual(result.metrics["val/ap50/cat"], 0, "the only cat box misses")
        XCTAssertEqual(result.metrics["val/ap50/dog"], 1)
        XCTAssertEqual(result.metrics["val/map50"], 0.5)
        XCTAssertEqual(try XCTUnwrap(result.metrics["val/runaway_rate"]), 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(result.metrics["val/parse_failure_rate"]), 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(result.predictions[2].output.issues.map(\.kind), [.unknownLabel])
        XCTAssertTrue(result.predictions[1].output.reachedTokenLimit)
    }

    /// The lines for `palitrain score` give the same metrics when scored from the file.
    func testScoreLinesRescoreToTheSameMetrics() throws {
        let examples = try dataset.examples()
        let validator = try Validator(examples: examples, tokenizer: dataset.tokenizer, settings: ValidationSettings(galleryCount: 0))
        let texts = ["<loc0100><loc0120><loc0300><loc0420> cat", examples[1].suffix, "<loc0010><loc0010><loc0020><loc0020> dog"]
        let outputs = try texts.enumerated().map { index, text in
            let tokens = try dataset.tokenizer.encode(text) + [dataset.tokenizer.eosID]
            return Validator.GeneratedOutput(
                tokens: tokens, logProbs: (0..<tokens.count).map { -Float($0 + index) / 10 }, width: 64, height: 48)
        }
        let result = try validator.score(outputs)
        let file = dataset.root.appendingPathComponent("predictions.jsonl")
        try (result.predictions.map { try $0.scoreLine() }.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)

        let groundTruth = try GroundTruthReader.load(dataDirectory: dataset.root, split: "valid")
        let rescored = try PredictionScoring.score(predictionsURL: file, groundTruth: groundTruth)

        XCTAssertEqual(rescored.metrics, result.score.metrics)
        XCTAssertEqual(rescored.statistics, result.score.statistics)
    }

    // MARK: - Checks when the validator is made

    func testNonDetectionPromptIsRejected() throws {
        var examples = try dataset.examples()
        let first = examples[0]
        examples[0] = Example(
            image: first.image, imagePath: first.imagePath, prefix: "caption en", suffix: "a cat", split: "valid",
            sourceFile: first.sourceFile, line: first.line)
        XCTAssertThrowsError(try Validator(examples: examples, tokenizer: dataset.tokenizer)) { error in
            XCTAssertTrue("\(error)".contains("_annotations.valid.jsonl:1: prefix 'caption en' is not a detection prompt"), "\(error)")
        }
    }

    func testMalformedGroundTruthIsRejected() throws {
        var examples = try dataset.examples()
        let second = examples[1]
        examples[1] = Example(
            image: second.image, imagePath: second.imagePath, prefix: second.prefix, suffix: "<loc0001><loc0002> cat",
            split: "valid", sourceFile: second.sourceFile, line: second.line)
        XCTAssertThrowsError(try Validator(examples: examples, tokenizer: dataset.tokenizer)) { error in
            XCTAssertTrue("\(error)".contains("_annotations.valid.jsonl:2: suffix '<loc0001><loc0002> cat'"), "\(error)")
            XCTAssertTrue("\(error)".contains("too_few_locs"), "\(error)")
        }
    }

    func testEmptySplitAndBadSettingsAreRejected() throws {
        XCTAssertThrowsError(try Validator(examples: [], tokenizer: dataset.tokenizer)) { error in
            XCTAssertTrue("\(error)".contains("no usable example"), "\(error)")
        }
        XCTAssertThrowsError(try Validator(examples: try dataset.examples(), tokenizer: dataset.tokenizer, settings: ValidationSettings(batchSize: 0))) { error in
            XCTAssertTrue("\(error)".contains("batchSize must be at least 1, found 0"), "\(error)")
        }
    }

    func testModelWithSmallerVocabularyIsRejected() throws {
        let validator = try Validator(examples: try dataset.examples(), tokenizer: dataset.tokenizer)
        XCTAssertThrowsError(try validator.run(try ValidationDataset.randomModel(vocabSize: 1300))) { error in
            XCTAssertTrue("\(error)".contains("has 1900 pieces but the model's vocabulary has 1300 rows"), "\(error)")
        }
    }

    // MARK: - Oriented images

    /// The fixtures store one picture, with a bright block in its top-left corner, under each
    /// EXIF orientation. Shown upright, the block lands where the orientation sends that corner.
    func testOrientedImageAppliesEXIFOrientation() throws {
        let folder = Fixtures.repositoryRoot.appendingPathComponent("Tests/Fixtures/dataset/images")
        let stored = try OrientedImage.load(path: folder.appendingPathComponent("exif-orientation-1.jpg").path)
        let corners = [1: "top-left", 2: "top-right", 3: "bottom-right", 4: "bottom-left",
                       5: "top-left", 6: "top-right", 7: "bottom-right", 8: "bottom-left"]
        for orientation in 1...8 {
            let image = try OrientedImage.load(path: folder.appendingPathComponent("exif-orientation-\(orientation).jpg").path)
            let swaps = orientation >= 5
            XCTAssertEqual(image.width, swaps ? stored.height : stored.width, "orientation \(orientation)")
            XCTAssertEqual(image.height, swaps ? stored.width : stored.height, "orientation \(orientation)")
            XCTAssertEqual(Self.brightCorner(image), corners[orientation], "orientation \(orientation)")
        }
    }

    /// The corner whose pixel is the fixture's yellow block (250, 250, 30).
    private static func brightCorner(_ image: OrientedImage) -> String? {
        let points = [("top-left", 1, 1), ("top-right", image.width - 2, 1),
                      ("bottom-left", 1, image.height - 2), ("bottom-right", image.width - 2, image.height - 2)]
        return points.first { _, x, y in
            let index = (y * image.width + x) * 3
            return image.pixels[index] > 200 && image.pixels[index + 1] > 200 && image.pixels[index + 2] < 100
        }?.0
    }
}

/// Three validation records in a temporary Roboflow-layout folder, with JPEGs written by
/// `JPEGEncoder` and the committed test tokenizer.
struct ValidationDataset {
    let root: URL
    let tokenizer: Tokenizer

    static let records: [(image: String, prefix: String, suffix: String)] = [
        ("a.jpg", "detect cat ; dog", "<loc0100><loc0100><loc0300><loc0400> cat"),
        ("b.jpg", "detect cat ; dog", "<loc0200><loc0050><loc0900><loc0500> dog ; <loc0500><loc0600><loc0800><loc0950> dog"),
        ("c.jpg", "detect dog", ""),
    ]

    init() throws {
        root = try Fixtures.temporaryDirectory()
        tokenizer = try Tokenizer(
            modelPath: Fixtures.repositoryRoot.appendingPathComponent("Tests/Fixtures/dataset/tokenizer/test-tokenizer.model").path)
        var lines: [String] = []
        for record in Self.records {
            let jpeg = try JPEGEncoder.encode(pixels: TestImages.gradient(width: 64, height: 48), width: 64, height: 48)
            try jpeg.write(to: root.appendingPathComponent(record.image))
            let object = ["image": record.image, "prefix": record.prefix, "suffix": record.suffix]
            lines.append(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        }
        try (lines.joined(separator: "\n") + "\n").write(
            to: root.appendingPathComponent("_annotations.valid.jsonl"), atomically: true, encoding: .utf8)
    }

    func remove() {
        try? FileManager.default.removeItem(at: root)
    }

    /// The records as the data pipeline reads them.
    func examples() throws -> [Example] {
        let source = try DatasetSource.discover(directory: root.path)
        let records = try RecordReader.read(try source.split("valid"), boundary: source.boundary, limits: DatasetLimits())
        XCTAssertEqual(records.problems, [])
        return records.examples
    }

    /// A randomly initialised `tiny` model (28-pixel images) with the given vocabulary.
    static func randomModel(vocabSize: Int) throws -> PaliGemma {
        let config = try PaliGemmaInit.variant(named: "tiny", vocabSize: vocabSize)
        let arrays = PaliGemmaInit.arrays(for: config, seed: 3)
        return PaliGemma(parameters: try ParameterStore(config: config, arrays: arrays, trainable: "^$"))
    }
}
