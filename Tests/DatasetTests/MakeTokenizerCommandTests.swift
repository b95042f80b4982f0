import Foundation
import XCTest

@testable import Dataset

/// `palitrain make-tokenizer` run as a process on a small Roboflow-style export.
final class MakeTokenizerCommandTests: XCTestCase {
    private var builder: DatasetBuilder!

    /// `.build/debug/palitrain`, which `scripts/test` builds before `swift test`.
    private static let binary = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/debug/palitrain").path

    private let trainLines = [
        DatasetBuilder.record("a.png", "detect fracture ; cast", "<loc0100><loc0200><loc0300><loc0400> fracture"),
        DatasetBuilder.record(
            "b.jpg", "detect fracture ; cast",
            "<loc0010><loc0020><loc0030><loc0040> cast ; <loc0011><loc0021><loc0031><loc0041> fracture ; "
                + "<loc0012><loc0022><loc0032><loc0042> fracture"),
        DatasetBuilder.record("a.png", "detect fracture ; cast", ""),
    ]
    private let validLines = [
        DatasetBuilder.record("b.jpg", "detect fracture ; cast", "<loc0500><loc0500><loc0600><loc0600> cast"),
    ]

    override func setUpWithError() throws {
        builder = try DatasetBuilder()
        try builder.copyImage("rgb.png", to: "dataset/a.png")
        try builder.copyImage("gray.jpg", to: "dataset/b.jpg")
        try builder.write("dataset/_annotations.train.jsonl", lines: trainLines)
        try builder.write("dataset/_annotations.valid.jsonl", lines: validLines)
    }

    override func tearDown() {
        builder?.remove()
    }

    private struct ProcessOutput {
        let status: Int32
        let output: String
        let errors: String
    }

    private func palitrain(_ arguments: [String]) throws -> ProcessOutput {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            XCTFail("palitrain not found at \(Self.binary); run 'swift build --product palitrain' before 'swift test'")
            throw CocoaError(.fileNoSuchFile)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        let errorsPath = builder.root.appendingPathComponent("stderr-\(UUID().uuidString).txt")
        FileManager.default.createFile(atPath: errorsPath.path, contents: nil)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = try FileHandle(forWritingTo: errorsPath)
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return ProcessOutput(
            status: process.terminationStatus, output: String(decoding: data, as: UTF8.self),
            errors: try String(contentsOf: errorsPath, encoding: .utf8))
    }

    func testWritesModelThatEncodesEveryRecord() throws {
        let model = builder.root.appendingPathComponent("tok/export.model").path
        let result = try palitrain(["make-tokenizer", "--data", builder.root.path, "--out", model])
        XCTAssertEqual(result.status, 0, result.errors)
        XCTAssertTrue(result.output.contains("read 4 records (train 3, valid 1)"), result.output)
        XCTAssertTrue(result.output.contains("every prefix and suffix decodes back to itself"), result.output)

        let tokenizer = try Tokenizer(modelPath: model)
        XCTAssertEqual(tokenizer.locBase, 4)
        XCTAssertEqual(tokenizer.segBase, 1028)

        // The longest sequence the command reports is the one computed here from the records.
        var longest = 0
        for line in trainLines + validLines {
            let record = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
            let prefix = try tokenizer.encode(record["prefix"]!)
            let suffix = try tokenizer.encode(record["suffix"]!)
            XCTAssertEqual(try tokenizer.decode(suffix), record["suffix"])
            longest = max(longest, prefix.count + suffix.count + 3)
        }
        XCTAssertTrue(
            result.output.contains("the longest training sequence is \(longest) tokens"), "expected \(longest): \(result.output)")
        XCTAssertTrue(result.output.contains("train with --max-len \(longest - 1) or more"), result.output)
    }

    func testBadRecordStopsUnlessSkipped() throws {
        try builder.write(
            "dataset/_annotations.valid.jsonl",
            lines: validLines + [DatasetBuilder.record("missing.jpg", "detect fracture", "")])
        let model = builder.root.appendingPathComponent("bad.model").path

        let stopped = try palitrain(["make-tokenizer", "--data", builder.root.path, "--out", model])
        XCTAssertNotEqual(stopped.status, 0)
        XCTAssertTrue(stopped.errors.contains("_annotations.valid.jsonl:2"), stopped.errors)
        XCTAssertTrue(stopped.errors.contains("missing.jpg"), stopped.errors)
        XCTAssertTrue(stopped.errors.contains("--skip-bad-records"), stopped.errors)
        XCTAssertFalse(FileManager.default.fileExists(atPath: model))

        let skipped = try palitrain(["make-tokenizer", "--data", builder.root.path, "--out", model, "--skip-bad-records"])
        XCTAssertEqual(skipped.status, 0, skipped.errors)
        XCTAssertTrue(skipped.output.contains("read 4 records (train 3, valid 1)"), skipped.output)
        XCTAssertTrue(skipped.output.contains("skipped 1 with errors"), skipped.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: model))
    }

    func testSmallVocabularyIsAUsageError() throws {
        let result = try palitrain([
            "make-tokenizer", "--data", builder.root.path, "--out", builder.root.appendingPathComponent("x.model").path,
            "--vocab-size", "1000",
        ])
        XCTAssertEqual(result.status, 2, result.errors)
        XCTAssertTrue(result.errors.contains("'--vocab-size' must be at least \(TokenizerTraining.minimumVocabularySize)"), result.errors)
    }

    func testCommandIsListedInHelp() throws {
        let result = try palitrain(["--help"])
        XCTAssertTrue((result.output + result.errors).contains("make-tokenizer"), result.output + result.errors)
        let help = try palitrain(["make-tokenizer", "--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.output.contains("--vocab-size N"), help.output)
    }
}
