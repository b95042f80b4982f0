import Foundation
import XCTest

/// Runs the built `palitrain score` on the pycocotools fixture, end to end.
final class ScoreCommandTests: XCTestCase {
    /// Finds the palitrain executable that `swift test` builds next to the test bundle.
    private func palitrain() throws -> String {
        let productsFolder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let executable = productsFolder.appendingPathComponent("palitrain").path
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw XCTSkip("\(executable) not built; run 'swift build --product palitrain' first")
        }
        return executable
    }

    func testJSONOutputMatchesPycocotools() throws {
        let output = try TestImages.run(try palitrain(), [
            "score", "--predictions", Fixtures.cocoParity.appendingPathComponent("predictions-scored.jsonl").path,
            "--data", Fixtures.cocoParity.path, "--json",
        ])
        let actual = try XCTUnwrap(JSONSerialization.jsonObject(with: output) as? [String: Any])
        let expectedFile = try Data(contentsOf: Fixtures.cocoParity.appendingPathComponent("expected.json"))
        let expected = try XCTUnwrap((JSONSerialization.jsonObject(with: expectedFile) as? [String: Any])?["scored"] as? [String: Any])

        for key in ["map50", "map75", "map50_95"] {
            XCTAssertEqual(try XCTUnwrap(actual[key] as? Double, key), try XCTUnwrap(expected[key] as? Double, key), accuracy: 1e-4, key)
        }
        let actualClasses = try XCTUnwrap(actual["per_class"] as? [String: [String: Any]])
        let expectedClasses = try XCTUnwrap(expected["per_class"] as? [String: [String: Any]])
        XCTAssertEqual(Set(actualClasses.keys), Set(expectedClasses.keys))
        for (name, values) in expectedClasses {
            for (key, value) in values {
                if let reference = value as? Double {
                    XCTAssertEqual(actualClasses[name]?[key] as? Double ?? -1, reference, accuracy: 1e-4, "\(name) \(key)")
                } else {
                    XCTAssertTrue(actualClasses[name]?[key] is NSNull, "\(name) \(key) should be null")
                }
            }
        }
        XCTAssertEqual(actual["runaway_rate"] as? Double, 0)
        XCTAssertEqual(actual["parse_failure_rate"] as? Double, 0)
        XCTAssertEqual(actual["scored"] as? Bool, true)
    }

    func testTableSaysWhenScoresAreMissing() throws {
        let output = try TestImages.run(try palitrain(), [
            "score", "--predictions", Fixtures.cocoParity.appendingPathComponent("predictions-unscored.jsonl").path,
            "--data", Fixtures.cocoParity.path,
        ])
        let text = String(decoding: output, as: UTF8.self)

        XCTAssertTrue(text.contains("every box scores 1.0"), text)
        XCTAssertTrue(text.contains("mean (4 classes)"), text)
        XCTAssertTrue(text.contains("(no ground truth, left out of the mean)"), text)
    }

    func testBadLineExitsWithItsLocation() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let predictions = directory.appendingPathComponent("predictions.jsonl")
        try "{\"image\": \"image_00.jpg\", \"suffix\": \"\"}\nnot json\n".write(to: predictions, atomically: true, encoding: .utf8)

        XCTAssertThrowsError(try TestImages.run(try palitrain(), ["score", "--predictions", predictions.path, "--data", Fixtures.cocoParity.path])) { error in
            XCTAssertTrue("\(error)".contains("exited with status 1"), "\(error)")
            XCTAssertTrue("\(error)".contains("palitrain score: error: \(predictions.path):2: invalid JSON"), "\(error)")
        }
    }
}
