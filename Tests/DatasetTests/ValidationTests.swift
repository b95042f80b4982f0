import Foundation
import XCTest

@testable import Dataset

final class ValidationTests: XCTestCase {
    private var dataset: DatasetBuilder!

    override func setUpWithError() throws {
        dataset = try DatasetBuilder()
        try dataset.copyImage("rgb-baseline.jpg", to: "a.jpg")
        try dataset.copyImage("rgb.png", to: "b.png")
    }

    override func tearDown() {
        dataset.remove()
    }

    private func validate(
        train: [String], valid: [String]? = nil, options: ValidationOptions = ValidationOptions(threads: 2)
    ) throws -> ValidationReport {
        try dataset.write("_annotations.train.jsonl", lines: train)
        if let valid { try dataset.write("_annotations.valid.jsonl", lines: valid) }
        return try DatasetValidator.validate(DatasetSource.discover(directory: dataset.root.path), options: options)
    }

    private func kinds(_ report: ValidationReport) -> [RecordProblem.Kind] {
        report.problems.map(\.kind)
    }

    func testCleanDatasetPasses() throws {
        let report = try validate(train: [
            DatasetBuilder.record("a.jpg", "detect cat ; dog", "<loc0100><loc0200><loc0300><loc0400> cat ; <loc0000><loc0000><loc1023><loc1023> dog"),
            DatasetBuilder.record("b.png", "detect cat ; dog", ""),
        ])
        XCTAssertEqual(report.problems, [])
        XCTAssertFalse(report.trainingWouldFail)
        XCTAssertEqual(report.objectCount, 2)
        XCTAssertEqual(report.emptySuffixes, 1)
        XCTAssertEqual(report.labelCounts, ["cat": 1, "dog": 1])
        XCTAssertEqual(report.imagesChecked, 2)
        XCTAssertEqual(report.formats, ["JPEG": 1, "PNG": 1])
        XCTAssertTrue(report.render().contains("1 empty of 2 records (50.0%)"), report.render())
        XCTAssertTrue(report.render().hasSuffix("OK: 2 records usable"), report.render())
    }

    func testThreeLocsIsFlagged() throws {
        let report = try validate(train: [DatasetBuilder.record("a.jpg", "detect fracture", "<loc0100><loc0200><loc0300> fracture")])
        XCTAssertEqual(kinds(report), [.malformedSuffix])
        XCTAssertEqual(report.problems[0].line, 1)
        XCTAssertEqual(report.problems[0].field, "suffix")
        XCTAssertTrue(report.problems[0].message.contains("expected 4 <locNNNN> tokens before the label, found 3"))
        XCTAssertFalse(report.trainingWouldFail)
    }

    func testLocRangeAndInvertedBoxAreFlagged() throws {
        let report = try validate(train: [
            DatasetBuilder.record("a.jpg", "detect fracture", "<loc1024><loc0000><loc1023><loc0100> fracture"),
            DatasetBuilder.record("a.jpg", "detect fracture", "<loc0500><loc0500><loc0400><loc0400> fracture"),
            DatasetBuilder.record("a.jpg", "detect fracture", "<loc0500><loc0100><loc0500><loc0200> fracture"),
        ])
        let byLine = report.problems.filter { $0.kind != .duplicateWithinSplit }.map { "\($0.line) \($0.kind)" }
        XCTAssertEqual(byLine, ["1 locOutOfRange", "1 boxInverted", "2 boxInverted", "2 boxInverted", "3 emptyBox"])
        XCTAssertTrue(report.problems[0].message.contains("<loc1024> is outside 0..1023"), report.problems[0].message)
    }

    func testLabelNotInPrefixIsFlagged() throws {
        let report = try validate(train: [DatasetBuilder.record("a.jpg", "detect fracture", "<loc0100><loc0200><loc0300><loc0400> Fracture")])
        XCTAssertEqual(kinds(report), [.labelNotInPrefix])
        XCTAssertTrue(report.problems[0].message.contains("\"fracture\" differs only in case"), report.problems[0].message)
    }

    func testRiskyClassNamesAreFlaggedOnce() throws {
        let report = try validate(train: [
            DatasetBuilder.record("a.jpg", "detect broken<bone> ; cat ", ""),
            DatasetBuilder.record("b.png", "detect broken<bone> ; cat ", ""),
        ])
        XCTAssertEqual(kinds(report), [.riskyClassName, .riskyClassName])
        XCTAssertEqual(report.problems.map(\.line), [1, 1])
        XCTAssertTrue(report.problems[1].message.contains("trailing whitespace"), report.problems[1].message)
    }

    func testEmptySuffixIsCountedNotFlagged() throws {
        let report = try validate(train: [DatasetBuilder.record("a.jpg", "detect fracture", "")])
        XCTAssertEqual(report.problems, [])
        XCTAssertEqual(report.emptySuffixes, 1)
    }

    func testTruncatedJPEGAndBombAreErrors() throws {
        try dataset.copyImage("truncated.jpg", to: "truncated.jpg")
        try dataset.copyImage("bomb-30000.png", to: "bomb.png")
        let report = try validate(train: [
            DatasetBuilder.record("a.jpg", "detect cat", ""),
            DatasetBuilder.record("truncated.jpg", "detect cat", ""),
            DatasetBuilder.record("bomb.png", "detect cat", ""),
            DatasetBuilder.record("missing.jpg", "detect cat", ""),
            "{not json",
        ])
        XCTAssertEqual(Set(kinds(report)), [.imageUnreadable, .imageTooLarge, .imageNotFound, .invalidJSON])
        let truncated = try XCTUnwrap(report.problems.first { $0.kind == .imageUnreadable })
        XCTAssertEqual(truncated.line, 2)
        XCTAssertTrue(truncated.message.contains("truncated.jpg"), truncated.message)
        XCTAssertTrue(truncated.message.contains("truncated JPEG data"), truncated.message)
        XCTAssertTrue(report.trainingWouldFail)
        XCTAssertEqual(report.usableExamples(split: "train").map(\.line), [1])
        XCTAssertTrue(report.render().contains("FAILED: 4 errors in 4 records"), report.render())
    }

    func testPreflightStopsOrSkips() throws {
        try dataset.copyImage("truncated.jpg", to: "truncated.jpg")
        try dataset.write("_annotations.train.jsonl", lines: [
            DatasetBuilder.record("a.jpg", "detect cat", ""),
            DatasetBuilder.record("truncated.jpg", "detect cat", ""),
            DatasetBuilder.record("b.png", "detect cat", ""),
        ])
        let source = try DatasetSource.discover(directory: dataset.root.path)

        XCTAssertThrowsError(try DatasetPreflight.run(source, options: ValidationOptions(), skipBadRecords: false)) { error in
            guard case DatasetError.badRecords(let count, let listed) = error else { return XCTFail("got \(error)") }
            XCTAssertEqual(count, 1)
            XCTAssertEqual(listed.first?.line, 2)
            XCTAssertTrue("\(error)".contains("--skip-bad-records"), "\(error)")
            XCTAssertTrue("\(error)".contains("_annotations.train.jsonl:2: field \"image\""), "\(error)")
        }

        let prepared = try DatasetPreflight.run(source, options: ValidationOptions(), skipBadRecords: true)
        XCTAssertEqual(prepared.examples["train"]?.map(\.line), [1, 3])
        XCTAssertEqual(prepared.skipSummary, "skipped 1 of 3 records: 1 image unreadable")
    }

    func testSameImageInTrainAndValidIsFlagged() throws {
        try dataset.copyImage("rgb-baseline.jpg", to: "copy-of-a.jpg")
        let report = try validate(
            train: [DatasetBuilder.record("a.jpg", "detect cat", "")],
            valid: [DatasetBuilder.record("copy-of-a.jpg", "detect cat", ""), DatasetBuilder.record("b.png", "detect cat", "")])
        XCTAssertEqual(kinds(report), [.duplicateAcrossSplits])
        let problem = report.problems[0]
        XCTAssertTrue(problem.file.hasSuffix("_annotations.valid.jsonl"))
        XCTAssertEqual(problem.line, 1)
        XCTAssertTrue(problem.message.contains("same content (SHA-256"), problem.message)
        XCTAssertTrue(problem.message.contains("'a.jpg' (train"), problem.message)
        XCTAssertFalse(report.trainingWouldFail)
    }

    func testImageKindCounts() throws {
        for name in ["exif-orientation-6.jpg", "gray16.png", "rgba.png", "gray.jpg", "cmyk.jpg"] {
            try dataset.copyImage(name, to: name)
        }
        let report = try validate(
            train: ["exif-orientation-6.jpg", "gray16.png", "rgba.png", "gray.jpg", "cmyk.jpg"].map {
                DatasetBuilder.record($0, "caption en", "a picture")
            },
            options: ValidationOptions(imageSize: 32, threads: 2))
        XCTAssertEqual(report.problems, [])
        XCTAssertEqual(report.exifRotated, 1)
        XCTAssertEqual(report.sixteenBit, 1)
        XCTAssertEqual(report.withAlpha, 1)
        XCTAssertEqual(report.grayscale, 2)
        XCTAssertEqual(report.cmyk, 1)
        XCTAssertEqual(report.nonDetectionPrompts, 5)
    }

    func testSequenceTooLongIsAnError() throws {
        let tokenizer = try Tokenizer(modelPath: Fixtures.tokenizerModel)
        let suffix = "<loc0001><loc0002><loc0003><loc0004> fracture ; <loc0005><loc0006><loc0007><loc0008> fracture"
        let options = ValidationOptions(tokenizer: tokenizer, maxTextLength: 15, threads: 2)
        let report = try validate(
            train: [DatasetBuilder.record("a.jpg", "detect fracture", suffix), DatasetBuilder.record("b.png", "detect fracture", "")],
            options: options)
        XCTAssertEqual(kinds(report), [.sequenceTooLong])
        XCTAssertEqual(report.problems[0].line, 1)
        XCTAssertTrue(report.problems[0].message.contains("needs 17 tokens"), report.problems[0].message)
        XCTAssertEqual(report.tokenCounts.sorted(), [5, 17])
        XCTAssertTrue(report.trainingWouldFail)
    }

    func testDetectionParser() {
        let parsed = DetectionText.parse(suffix: "<loc0001><loc0002><loc0003><loc0004> a b ; <loc0010><loc0020><loc0030><loc0040> c")
        XCTAssertEqual(parsed.issues, [])
        XCTAssertEqual(parsed.objects.map(\.label), ["a b", "c"])
        XCTAssertEqual(parsed.objects[1].box, [10, 20, 30, 40])

        let segments = (0..<16).map { "<seg\(String(format: "%03d", $0))>" }.joined()
        let withMask = DetectionText.parse(suffix: "<loc0001><loc0002><loc0003><loc0004>" + segments + " cat")
        XCTAssertEqual(withMask.issues, [])
        XCTAssertEqual(withMask.objects.first?.segments, Array(0..<16))

        XCTAssertEqual(DetectionText.parse(suffix: "<loc0001><loc0002><loc0003><loc0004>cat").issues.map(\.kind), [.malformedSuffix])
        XCTAssertEqual(DetectionText.parse(suffix: "<loc0001><loc0002><loc0003><loc0004> cat;<loc0001><loc0002><loc0003><loc0004> dog").issues.map(\.kind), [.malformedSuffix])
        XCTAssertEqual(DetectionText.parse(suffix: "<loc001><loc0002><loc0003><loc0004> cat").issues.map(\.kind), [.malformedSuffix])
        XCTAssertEqual(DetectionText.classes(inPrefix: "detect a ; b"), ["a", "b"])
        XCTAssertNil(DetectionText.classes(inPrefix: "caption en"))
    }

    func testSHA256KnownVectors() {
        XCTAssertEqual(SHA256.hex([UInt8]()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(
            SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }
}
