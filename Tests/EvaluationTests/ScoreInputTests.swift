import Foundation
import XCTest

@testable import Evaluation

/// Input handling of `palitrain score`: ground truth layouts, prediction lines and their errors.
final class ScoreInputTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = try Fixtures.temporaryDirectory()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Builds the first 24 bytes of a PNG, which is all the header reader reads.
    private func pngHeader(width: Int, height: Int) -> Data {
        var bytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]
        bytes += Array("IHDR".utf8)
        for value in [width, height] {
            bytes += [UInt8(value >> 24 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
        }
        return Data(bytes)
    }

    private func write(_ lines: [String], to name: String) throws -> URL {
        let url = directory.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// Two images, 200x100 and 100x100, with one cat and one dog, read back.
    private func makeSplit(folder: String = "") throws -> GroundTruthSplit {
        try writeSplit(folder: folder)
        return try GroundTruthReader.load(dataDirectory: directory, split: "valid")
    }

    /// Writes the split of `makeSplit` in the Roboflow layout, or in maestro's under `folder`.
    private func writeSplit(folder: String = "") throws {
        let base = folder.isEmpty ? directory! : directory.appendingPathComponent(folder)
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        try pngHeader(width: 200, height: 100).write(to: base.appendingPathComponent("a.png"))
        try pngHeader(width: 100, height: 100).write(to: base.appendingPathComponent("b.png"))
        let name = folder.isEmpty ? "_annotations.valid.jsonl" : "\(folder)/annotations.jsonl"
        _ = try write([
            #"{"image": "a.png", "prefix": "detect cat ; dog", "suffix": "<loc0000><loc0000><loc0511><loc0511> cat"}"#,
            #"{"image": "b.png", "prefix": "detect cat ; dog", "suffix": "<loc0100><loc0100><loc0900><loc0900> dog"}"#,
        ], to: name)
    }

    private func score(_ lines: [String], split: GroundTruthSplit) throws -> ScoreResult {
        try PredictionScoring.score(predictionsURL: try write(lines, to: "predictions.jsonl"), groundTruth: split)
    }

    /// Asserts that scoring `lines` throws an error whose message contains `fragments`.
    private func assertRejected(_ lines: [String], _ fragments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let split = try makeSplit()
        XCTAssertThrowsError(try score(lines, split: split), file: file, line: line) { error in
            let message = "\(error)"
            for fragment in fragments {
                XCTAssertTrue(message.contains(fragment), "'\(fragment)' not in: \(message)", file: file, line: line)
            }
        }
    }

    func testGroundTruthInRoboflowLayout() throws {
        let split = try makeSplit()

        XCTAssertEqual(split.images.map(\.image), ["a.png", "b.png"])
        XCTAssertEqual(split.classes, ["cat", "dog"])
        XCTAssertEqual(split.images[0].width, 200)
        XCTAssertEqual(split.images[0].boxes.first?.box.xMax ?? 0, 511.0 * 200 / 1023, accuracy: 1e-9)
        XCTAssertEqual(split.images[0].boxes.first?.box.yMax ?? 0, 511.0 * 100 / 1023, accuracy: 1e-9)
        XCTAssertEqual(split.images[1].line, 2)
    }

    func testGroundTruthInMaestroLayout() throws {
        let split = try makeSplit(folder: "valid")
        XCTAssertEqual(split.images.count, 2)
        XCTAssertTrue(split.annotationsURL.path.hasSuffix("valid/annotations.jsonl"))
    }

    func testMissingAndAmbiguousSplits() throws {
        XCTAssertThrowsError(try GroundTruthReader.load(dataDirectory: directory, split: "test")) { error in
            XCTAssertTrue("\(error)".contains("no annotations for split 'test'"), "\(error)")
            XCTAssertTrue("\(error)".contains("_annotations.test.jsonl"), "\(error)")
        }
        try writeSplit()
        try writeSplit(folder: "valid")
        XCTAssertThrowsError(try GroundTruthReader.load(dataDirectory: directory, split: "valid")) { error in
            XCTAssertEqual(error as? EvaluationInputError, .ambiguousSplit(split: "valid", paths: [
                directory.appendingPathComponent("_annotations.valid.jsonl").path,
                directory.appendingPathComponent("valid/annotations.jsonl").path,
            ]))
        }
    }

    func testMalformedGroundTruthNamesTheLine() throws {
        try pngHeader(width: 10, height: 10).write(to: directory.appendingPathComponent("a.png"))
        try pngHeader(width: 10, height: 10).write(to: directory.appendingPathComponent("a2.png"))
        let url = try write([
            #"{"image": "a.png", "prefix": "detect cat", "suffix": ""}"#,
            #"{"image": "a2.png", "prefix": "detect cat", "suffix": "<loc0001><loc0002><loc0003> cat"}"#,
        ], to: "_annotations.valid.jsonl")
        XCTAssertThrowsError(try GroundTruthReader.load(annotationsURL: url)) { error in
            XCTAssertTrue("\(error)".hasPrefix(url.path + ":2: "), "\(error)")
            XCTAssertTrue("\(error)".contains("too_few_locs"), "\(error)")
        }

        let missingImage = try write([#"{"image": "nope.png", "prefix": "detect cat", "suffix": ""}"#], to: "missing.jsonl")
        XCTAssertThrowsError(try GroundTruthReader.load(annotationsURL: missingImage)) { error in
            XCTAssertTrue("\(error)".hasPrefix(missingImage.path + ":1: image 'nope.png': file not found"), "\(error)")
        }

        let notDetection = try write([#"{"image": "a.png", "prefix": "caption en", "suffix": "a cat"}"#], to: "caption.jsonl")
        XCTAssertThrowsError(try GroundTruthReader.load(annotationsURL: notDetection)) { error in
            XCTAssertTrue("\(error)".contains(":1: prefix 'caption en' is not a detection prompt"), "\(error)")
        }
    }

    func testScoredPredictions() throws {
        let split = try makeSplit()
        let result = try score([
            #"{"image": "a.png", "suffix": "<loc0000><loc0000><loc0511><loc0511> cat ; <loc0600><loc0600><loc0700><loc0700> cat", "scores": [0.9, 0.4]}"#,
            #"{"image": "b.png", "suffix": "<loc0100><loc0100><loc0900><loc0900> dog", "scores": [0.7], "truncated": true}"#,
        ], split: split)

        XCTAssertTrue(result.scored)
        XCTAssertEqual(try XCTUnwrap(result.metrics.map50), 1, accuracy: 1e-12)
        XCTAssertEqual(result.statistics.runawayCount, 1)
        XCTAssertEqual(result.statistics.runawayRate, 0.5)
        XCTAssertEqual(result.statistics.parseFailureRate, 0)
        XCTAssertEqual(result.imagesWithoutPrediction, 0)
    }

    func testParseIssuesAreCountedNotFatal() throws {
        let split = try makeSplit()
        let result = try score([
            #"{"image": "a.png", "suffix": "<loc0000><loc0000><loc0511> cat ; <loc0000><loc0000><loc0511><loc0511> bird"}"#,
            #"{"image": "b.png", "suffix": "<loc0100><loc0100><loc0900><loc0900> dog"}"#,
        ], split: split)

        XCTAssertFalse(result.scored)
        XCTAssertEqual(result.statistics.failedCount, 1)
        XCTAssertEqual(result.statistics.parseFailureRate, 0.5)
        XCTAssertEqual(result.statistics.issueCounts, [.tooFewLocs: 1, .unknownLabel: 1])
        XCTAssertEqual(try XCTUnwrap(result.metrics.perClass[0].ap50), 0)
        XCTAssertEqual(try XCTUnwrap(result.metrics.perClass[1].ap50), 1, accuracy: 1e-12)
    }

    func testMissingPredictionLineCountsAsNoDetections() throws {
        let split = try makeSplit()
        let result = try score([#"{"image": "b.png", "suffix": "<loc0100><loc0100><loc0900><loc0900> dog"}"#], split: split)

        XCTAssertEqual(result.imagesWithoutPrediction, 1)
        XCTAssertEqual(try XCTUnwrap(result.metrics.perClass[0].ap50), 0)
        XCTAssertTrue(ScoreReport.table(result, source: "test").contains("1 ground-truth image has no prediction line"))
    }

    func testInvalidJSONNamesFileAndLine() throws {
        try assertRejected([
            #"{"image": "a.png", "suffix": ""}"#,
            "",
            #"{"image": "b.png", "suffix": "#,
        ], ["predictions.jsonl:3: invalid JSON"])
    }

    func testMissingKeyNamesTheKey() throws {
        try assertRejected([#"{"image": "a.png"}"#], ["predictions.jsonl:1: missing key 'suffix'"])
        try assertRejected([#"{"image": 3, "suffix": ""}"#], ["predictions.jsonl:1: key 'image' must be a string"])
        try assertRejected([#"{"image": "a.png", "suffix": "", "scores": "high"}"#], ["predictions.jsonl:1: key 'scores' must be"])
        try assertRejected([#"["a.png"]"#], ["predictions.jsonl:1: expected a JSON object"])
        try assertRejected([#"{"image": "a.png", "suffix": "", "scores": [1, null]}"#], ["predictions.jsonl:1: key 'scores[1]' must be a number"])
    }

    func testScoreCountMismatchNamesTheLine() throws {
        try assertRejected([
            #"{"image": "a.png", "suffix": "<loc0000><loc0000><loc0511><loc0511> cat", "scores": [0.5]}"#,
            #"{"image": "b.png", "suffix": "<loc0000><loc0000><loc0511><loc0511> cat ; <loc0001><loc0001><loc0002><loc0002> dog", "scores": [0.5]}"#,
        ], ["predictions.jsonl:2: 'scores' has 1 number but the suffix has 2 objects"])
    }

    func testUnknownDuplicateAndMixedLines() throws {
        try assertRejected([#"{"image": "c.png", "suffix": ""}"#], ["predictions.jsonl:1: image 'c.png' is not in the ground truth"])
        try assertRejected([#"{"image": "a.png", "suffix": ""}"#, #"{"image": "a.png", "suffix": ""}"#],
                           ["predictions.jsonl:2: image 'a.png' already appeared on line 1"])
        try assertRejected([#"{"image": "a.png", "suffix": "", "scores": []}"#, #"{"image": "b.png", "suffix": ""}"#],
                           ["line 1 has 'scores' but line 2 does not"])
    }

    func testEmptyPredictionsFile() throws {
        try assertRejected(["", "  "], ["predictions.jsonl: the file has no JSON lines"])
    }

    func testJSONReport() throws {
        let split = try makeSplit()
        let result = try score([#"{"image": "a.png", "suffix": "<loc0000><loc0000><loc0511><loc0511> cat"}"#], split: split)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(try ScoreReport.json(result).utf8)) as? [String: Any])

        XCTAssertEqual(object["map50"] as? Double ?? -1, 0.5, accuracy: 1e-12, "cat AP 1, dog AP 0")
        XCTAssertEqual(object["runaway_rate"] as? Double, 0)
        XCTAssertEqual(object["parse_failure_rate"] as? Double, 0)
        XCTAssertEqual(object["scored"] as? Bool, false)
        let perClass = try XCTUnwrap(object["per_class"] as? [String: [String: Any]])
        XCTAssertEqual(Set(perClass.keys), ["cat", "dog"])
        XCTAssertEqual(perClass["dog"]?["ground_truth"] as? Int, 1)
    }
}
