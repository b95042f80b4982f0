import Foundation
import XCTest

@testable import Evaluation

/// `palitrain eval` and `palitrain predict` run end to end on a random tiny model.
final class EvalCommandTests: XCTestCase {
    private var dataset: ValidationDataset!
    private var checkpoint: String!

    override func setUpWithError() throws {
        dataset = try ValidationDataset()
        checkpoint = dataset.root.appendingPathComponent("tiny.npz").path
        _ = try TestImages.run(try palitrain(), [
            "init", "--variant", "tiny", "--tokenizer", dataset.tokenizer.source, "--out", checkpoint, "--seed", "5",
        ])
    }

    override func tearDown() {
        dataset?.remove()
    }

    /// Finds the palitrain executable that `swift test` builds next to the test bundle.
    private func palitrain() throws -> String {
        let productsFolder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let executable = productsFolder.appendingPathComponent("palitrain").path
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw XCTSkip("\(executable) not built; run 'swift build --product palitrain' first")
        }
        return executable
    }

    func testEvalPrintsScoreReportJSON() throws {
        let predictions = dataset.root.appendingPathComponent("predictions.jsonl")
        let report = dataset.root.appendingPathComponent("report")
        let output = try TestImages.run(try palitrain(), [
            "eval", "--checkpoint", checkpoint, "--data", dataset.root.path, "--tokenizer", dataset.tokenizer.source,
            "--max-new-tokens", "5", "--batch-size", "2", "--json", "--predictions", predictions.path,
            "--report", report.path, "--gallery", "2",
        ])

        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: output) as? [String: Any])
        XCTAssertEqual(json["outputs"] as? Int, 3)
        XCTAssertEqual(json["images"] as? Int, 3)
        XCTAssertEqual(json["scored"] as? Bool, true)
        for key in ["map50", "map75", "map50_95", "runaway_rate", "parse_failure_rate"] {
            let value = try XCTUnwrap(json[key] as? Double, key)
            XCTAssertTrue((0...1).contains(value), "\(key) = \(value)")
        }
        let perClass = try XCTUnwrap(json["per_class"] as? [String: [String: Any]])
        XCTAssertEqual(Set(perClass.keys), ["cat", "dog"])
        XCTAssertEqual(perClass["dog"]?["ground_truth"] as? Int, 2)

        // The predictions file rescores to the same JSON with `palitrain score`.
        let rescored = try TestImages.run(try palitrain(), [
            "score", "--predictions", predictions.path, "--data", dataset.root.path, "--json",
        ])
        XCTAssertEqual(
            try XCTUnwrap(JSONSerialization.jsonObject(with: rescored) as? NSDictionary),
            try XCTUnwrap(JSONSerialization.jsonObject(with: output) as? NSDictionary))

        let gallery = try FileManager.default.contentsOfDirectory(atPath: report.appendingPathComponent(ReportWriter.galleryFolder).path)
        XCTAssertEqual(gallery.filter { $0.hasSuffix(".jpg") }.count, 2)
        XCTAssertTrue(FileManager.default.fileExists(atPath: report.appendingPathComponent(ReportWriter.fileName).path))
    }

    func testEvalPrintsTableByDefault() throws {
        let output = try TestImages.run(try palitrain(), [
            "eval", "--checkpoint", checkpoint, "--data", dataset.root.path, "--tokenizer", dataset.tokenizer.source,
            "--max-new-tokens", "3", "--limit", "2",
        ])
        let text = String(decoding: output, as: UTF8.self)
        XCTAssertTrue(text.contains("Scored 2 outputs against 2 ground-truth images"), text)
        XCTAssertTrue(text.contains("runaway (token limit reached without EOS)"), text)
    }

    func testPredictWritesJSONAndAnnotatedJPEG() throws {
        let annotated = dataset.root.appendingPathComponent("annotated.jpg")
        let output = try TestImages.run(try palitrain(), [
            "predict", "--checkpoint", checkpoint, "--tokenizer", dataset.tokenizer.source,
            "--image", dataset.root.appendingPathComponent("a.jpg").path, "--prompt", "detect cat ; dog",
            "--max-new-tokens", "9", "--annotate", annotated.path,
        ])

        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: output) as? [String: Any])
        XCTAssertEqual(json["width"] as? Int, 64)
        XCTAssertEqual(json["height"] as? Int, 48)
        XCTAssertEqual(json["prompt"] as? String, "detect cat ; dog")
        XCTAssertNotNil(json["text"] as? String)
        XCTAssertNotNil(json["detections"] as? [Any])
        XCTAssertNotNil(json["issues"] as? [Any])
        let newTokens = try XCTUnwrap(json["new_tokens"] as? Int)
        XCTAssertTrue((1...9).contains(newTokens), "\(newTokens)")
        if try XCTUnwrap(json["reached_token_limit"] as? Bool) {
            XCTAssertEqual(newTokens, 9, "an output without EOS has all its tokens")
        }

        let jpeg = try Data(contentsOf: annotated)
        XCTAssertEqual(Array(jpeg.prefix(2)), [0xFF, 0xD8], "a JPEG file")
        let size = try ImageHeaderSize.read(contentsOf: annotated)
        XCTAssertEqual([size.width, size.height], [64, 48], "annotated at the original size")
    }

    func testPredictRejectsMissingImage() throws {
        XCTAssertThrowsError(try TestImages.run(try palitrain(), [
            "predict", "--checkpoint", checkpoint, "--tokenizer", dataset.tokenizer.source,
            "--image", dataset.root.appendingPathComponent("missing.jpg").path, "--prompt", "detect cat",
        ])) { error in
            XCTAssertTrue("\(error)".contains("exited with status 1"), "\(error)")
            XCTAssertTrue("\(error)".contains("missing.jpg"), "\(error)")
        }
    }
}
