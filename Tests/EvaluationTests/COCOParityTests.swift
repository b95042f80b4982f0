import Foundation
import XCTest

@testable import Evaluation

/// `palitrain score` against pycocotools on the fixture written by scripts/make-coco-fixture.py.
final class COCOParityTests: XCTestCase {
    private struct Expected: Decodable {
        struct Metrics: Decodable {
            var map50: Double
            var map75: Double
            var map50_95: Double
            var per_class: [String: ClassValues]
        }
        struct ClassValues: Decodable {
            var ap50: Double?
            var ap75: Double?
            var ap50_95: Double?
        }
        var scored: Metrics
        var unscored: Metrics
    }

    private func expected() throws -> Expected {
        let data = try Data(contentsOf: Fixtures.cocoParity.appendingPathComponent("expected.json"))
        return try JSONDecoder().decode(Expected.self, from: data)
    }

    private func check(_ result: ScoreResult, against expected: Expected.Metrics, file: StaticString = #filePath, line: UInt = #line) throws {
        let metrics = result.metrics
        XCTAssertEqual(try XCTUnwrap(metrics.map50), expected.map50, accuracy: 1e-4, "map50", file: file, line: line)
        XCTAssertEqual(try XCTUnwrap(metrics.map75), expected.map75, accuracy: 1e-4, "map75", file: file, line: line)
        XCTAssertEqual(try XCTUnwrap(metrics.map50_95), expected.map50_95, accuracy: 1e-4, "map50_95", file: file, line: line)

        XCTAssertEqual(Set(metrics.perClass.map(\.name)), Set(expected.per_class.keys), file: file, line: line)
        for entry in metrics.perClass {
            let values = try XCTUnwrap(expected.per_class[entry.name])
            for (name, actual, reference) in [("ap50", entry.ap50, values.ap50), ("ap75", entry.ap75, values.ap75), ("ap50_95", entry.ap50_95, values.ap50_95)] {
                if let reference {
                    XCTAssertEqual(try XCTUnwrap(actual, "\(entry.name) \(name)"), reference, accuracy: 1e-4, "\(entry.name) \(name)", file: file, line: line)
                } else {
                    XCTAssertNil(actual, "\(entry.name) \(name) should be nil (no ground truth)", file: file, line: line)
                }
            }
        }
    }

    func testScoredPredictionsMatchPycocotools() throws {
        let truth = try GroundTruthReader.load(dataDirectory: Fixtures.cocoParity, split: "valid")
        let result = try PredictionScoring.score(predictionsURL: Fixtures.cocoParity.appendingPathComponent("predictions-scored.jsonl"), groundTruth: truth)

        try check(result, against: try expected().scored)
        XCTAssertTrue(result.scored)
        XCTAssertEqual(result.imageCount, 18)
        XCTAssertEqual(result.imagesWithoutPrediction, 1)
        XCTAssertEqual(result.statistics.outputCount, 17)
        XCTAssertEqual(result.statistics.failedCount, 0)
    }

    func testUnscoredPredictionsMatchPycocotools() throws {
        let truth = try GroundTruthReader.load(dataDirectory: Fixtures.cocoParity, split: "valid")
        let result = try PredictionScoring.score(predictionsURL: Fixtures.cocoParity.appendingPathComponent("predictions-unscored.jsonl"), groundTruth: truth)

        try check(result, against: try expected().unscored)
        XCTAssertFalse(result.scored)
    }

    func testGroundTruthSizesComeFromImageHeaders() throws {
        let truth = try GroundTruthReader.load(dataDirectory: Fixtures.cocoParity, split: "valid")
        let sizes = truth.images.prefix(3).map { [$0.width, $0.height] }
        XCTAssertEqual(sizes, [[640, 480], [480, 640], [500, 375]])
        XCTAssertEqual(truth.classes, ["cat", "dog", "person", "traffic light", "bicycle"])
        XCTAssertEqual(truth.images[5].boxes, [])
    }
}
