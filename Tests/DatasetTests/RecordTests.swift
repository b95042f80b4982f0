import Foundation
import XCTest

@testable import Dataset

final class RecordTests: XCTestCase {
    private var dataset: DatasetBuilder!

    override func setUpWithError() throws {
        dataset = try DatasetBuilder()
    }

    override func tearDown() {
        dataset.remove()
    }

    private func readTrain(limits: DatasetLimits = DatasetLimits()) throws -> SplitRecords {
        let source = try DatasetSource.discover(directory: dataset.root.path)
        return try RecordReader.read(try source.split("train"), boundary: source.boundary, limits: limits)
    }

    func testValidRecordsBecomeExamples() throws {
        try dataset.copyImage("rgb-baseline.jpg", to: "a.jpg")
        try dataset.copyImage("rgb.png", to: "sub/b.png")
        try dataset.write("_annotations.train.jsonl", lines: [
            DatasetBuilder.record("a.jpg", "detect cat", "<loc0001><loc0002><loc0003><loc0004> cat"),
            "",
            #"{"image": "sub/b.png", "prefix": "detect dog", "suffix": "", "extra": [1, 2]}"#,
        ])
        let records = try readTrain()
        XCTAssertEqual(records.problems, [])
        XCTAssertEqual(records.recordCount, 2)
        XCTAssertEqual(records.examples.map(\.line), [1, 3])
        XCTAssertEqual(records.examples[1].image, "sub/b.png")
        XCTAssertEqual(records.examples[1].imagePath, dataset.root.appendingPathComponent("sub/b.png").standardizedFileURL.path)
        XCTAssertEqual(records.examples[1].suffix, "")
        XCTAssertEqual(records.examples[0].split, "train")
    }

    func testLineThatIsNotJSON() throws {
        try dataset.copyImage("rgb-baseline.jpg", to: "a.jpg")
        let file = try dataset.write("_annotations.train.jsonl", lines: [
            DatasetBuilder.record("a.jpg", "detect cat", ""),
            #"{"image": "a.jpg", "prefix": "detect cat", "suffix": "" "#,
            "not json at all",
            DatasetBuilder.record("a.jpg", "detect cat", ""),
        ])
        let records = try readTrain()
        XCTAssertEqual(records.examples.map(\.line), [1, 4])
        XCTAssertEqual(records.problems.map(\.line), [2, 3])
        XCTAssertEqual(records.problems.map(\.kind), [.invalidJSON, .invalidJSON])
        XCTAssertEqual(records.problems[0].file, file)
        XCTAssertTrue(records.problems[1].description.hasPrefix("\(file):3: not valid JSON"), records.problems[1].description)
    }

    func testMissingAndMistypedFields() throws {
        try dataset.write("_annotations.train.jsonl", lines: [
            #"{"image": "a.jpg", "prefix": "detect cat"}"#,
            #"{"image": 7, "prefix": null, "suffix": true}"#,
            #"["a.jpg", "detect cat", ""]"#,
        ])
        let records = try readTrain()
        XCTAssertEqual(records.examples, [])
        let described = records.problems.map { "\($0.line) \($0.field ?? "-") \($0.kind) \($0.message)" }
        XCTAssertEqual(described, [
            "1 suffix missingField missing",
            "2 image fieldNotString expected a string, found a number",
            "2 prefix fieldNotString expected a string, found null",
            "2 suffix fieldNotString expected a string, found a boolean",
            "3 - notAnObject expected a JSON object with \"image\", \"prefix\" and \"suffix\", found an array",
        ])
    }

    func testPathEscapingDatasetIsRejectedUnread() throws {
        // A real image just outside the dataset folder: rejected although it exists.
        let outside = try DatasetBuilder()
        defer { outside.remove() }
        try outside.copyImage("rgb-baseline.jpg", to: "secret.jpg")
        let relativeToOutside = "../" + outside.root.lastPathComponent + "/secret.jpg"

        try dataset.copyImage("rgb-baseline.jpg", to: "inside/ok.jpg")
        try dataset.write("_annotations.train.jsonl", lines: [
            DatasetBuilder.record("../../etc/hosts", "detect cat", ""),
            DatasetBuilder.record("/etc/hosts", "detect cat", ""),
            DatasetBuilder.record(relativeToOutside, "detect cat", ""),
            DatasetBuilder.record("inside/../inside/ok.jpg", "detect cat", ""),
            DatasetBuilder.record("", "detect cat", ""),
        ])
        let records = try readTrain()
        XCTAssertEqual(records.examples.map(\.line), [4])
        XCTAssertEqual(records.problems.map(\.line), [1, 2, 3, 5])
        XCTAssertEqual(Set(records.problems.map(\.kind)), [.imagePathRejected])
        XCTAssertTrue(records.problems[0].message.contains("'..' leads outside the dataset folder"), records.problems[0].message)
        XCTAssertTrue(records.problems[1].message.contains("absolute paths are not allowed"), records.problems[1].message)
        XCTAssertEqual(records.problems[0].field, "image")
    }

    func testSymlinkOutsideIsRejected() throws {
        let outside = try DatasetBuilder()
        defer { outside.remove() }
        let target = try outside.copyImage("rgb-baseline.jpg", to: "secret.jpg")
        try FileManager.default.createSymbolicLink(
            atPath: dataset.root.appendingPathComponent("link.jpg").path, withDestinationPath: target)
        try dataset.copyImage("rgb-baseline.jpg", to: "real.jpg")
        try FileManager.default.createSymbolicLink(
            atPath: dataset.root.appendingPathComponent("inner-link.jpg").path,
            withDestinationPath: dataset.root.appendingPathComponent("real.jpg").path)
        try dataset.write("_annotations.train.jsonl", lines: [
            DatasetBuilder.record("link.jpg", "detect cat", ""),
            DatasetBuilder.record("inner-link.jpg", "detect cat", ""),
            DatasetBuilder.record("absent.jpg", "detect cat", ""),
        ])
        let records = try readTrain()
        XCTAssertEqual(records.examples.map(\.line), [2])
        XCTAssertEqual(records.problems.map(\.kind), [.imagePathRejected, .imageNotFound])
        XCTAssertTrue(records.problems[0].message.contains("symlink"), records.problems[0].message)
    }

    func testInvalidUTF8() throws {
        var bytes = Data(#"{"image": "a.jpg", "prefix": "detect "#.utf8)
        bytes.append(contentsOf: [0xC3, 0x28])
        bytes.append(contentsOf: Data(#"", "suffix": ""}"#.utf8))
        bytes.append(0x0A)
        try dataset.write("_annotations.train.jsonl", data: bytes)
        let records = try readTrain()
        XCTAssertEqual(records.problems.map(\.kind), [.invalidUTF8])
        XCTAssertTrue(records.problems[0].message.contains("byte 38"), records.problems[0].message)
    }

    func testLongLineIsBoundedAndSkipped() throws {
        try dataset.copyImage("rgb-baseline.jpg", to: "a.jpg")
        let long = DatasetBuilder.record("a.jpg", "detect cat", String(repeating: "x", count: 300_000))
        try dataset.write("_annotations.train.jsonl", lines: [long, DatasetBuilder.record("a.jpg", "detect cat", "")])
        var limits = DatasetLimits()
        limits.maxLineBytes = 100_000
        let records = try readTrain(limits: limits)
        XCTAssertEqual(records.examples.map(\.line), [2])
        XCTAssertEqual(records.problems.map(\.kind), [.lineTooLong])
        XCTAssertTrue(records.problems[0].message.contains("maxLineBytes = 100000"), records.problems[0].message)
        XCTAssertTrue(records.problems[0].message.contains("\(long.utf8.count) bytes"), records.problems[0].message)
    }

    func testBOMCarriageReturnsAndMissingFinalNewline() throws {
        try dataset.copyImage("rgb-baseline.jpg", to: "a.jpg")
        let text = "\u{FEFF}" + DatasetBuilder.record("a.jpg", "detect cat", "") + "\r\n"
            + DatasetBuilder.record("a.jpg", "detect dog", "")
        try dataset.write("_annotations.train.jsonl", data: Data(text.utf8))
        let records = try readTrain()
        XCTAssertEqual(records.problems, [])
        XCTAssertEqual(records.examples.map(\.prefix), ["detect cat", "detect dog"])
    }

    // MARK: - Layouts

    func testRoboflowLayoutInsideDatasetFolder() throws {
        try dataset.write("dataset/_annotations.train.jsonl", lines: [])
        try dataset.write("dataset/_annotations.valid.jsonl", lines: [])
        try dataset.write("dataset/_annotations.test.jsonl", lines: [])
        let source = try DatasetSource.discover(directory: dataset.root.path)
        XCTAssertEqual(source.layout, .roboflow)
        XCTAssertEqual(source.splits.map(\.name), ["train", "valid", "test"])
        XCTAssertEqual(source.splits[0].imageRoot, dataset.root.appendingPathComponent("dataset").standardizedFileURL.path)
        XCTAssertEqual(source.boundary, dataset.root.standardizedFileURL.path)
    }

    func testPerSplitLayout() throws {
        try dataset.write("train/annotations.jsonl", lines: [])
        try dataset.write("valid/annotations.jsonl", lines: [])
        let source = try DatasetSource.discover(directory: dataset.root.path)
        XCTAssertEqual(source.layout, .perSplit)
        XCTAssertEqual(source.splits.map(\.name), ["train", "valid"])
        XCTAssertEqual(source.splits[1].imageRoot, dataset.root.appendingPathComponent("valid").standardizedFileURL.path)
        XCTAssertThrowsError(try source.split("test")) { error in
            XCTAssertEqual("\(error)", "the dataset has no 'test' split (found: train, valid)")
        }
    }

    func testAmbiguousAndEmptyLayouts() throws {
        XCTAssertThrowsError(try DatasetSource.discover(directory: dataset.root.path)) { error in
            guard case DatasetError.noAnnotations = error else { return XCTFail("got \(error)") }
            XCTAssertTrue("\(error)".contains("_annotations.train.jsonl"), "\(error)")
        }
        try dataset.write("_annotations.train.jsonl", lines: [])
        try dataset.write("train/annotations.jsonl", lines: [])
        XCTAssertThrowsError(try DatasetSource.discover(directory: dataset.root.path)) { error in
            guard case DatasetError.ambiguousLayout = error else { return XCTFail("got \(error)") }
        }
        XCTAssertThrowsError(try DatasetSource.discover(directory: dataset.root.appendingPathComponent("nope").path)) { error in
            guard case DatasetError.directoryNotFound = error else { return XCTFail("got \(error)") }
        }
    }

    func testExplicitFilesWithImageRoot() throws {
        try dataset.copyImage("rgb-baseline.jpg", to: "images/a.jpg")
        let train = try dataset.write("labels/train.jsonl", lines: [DatasetBuilder.record("a.jpg", "detect cat", "")])
        let imageRoot = dataset.root.appendingPathComponent("images").path
        let source = try DatasetSource.explicit(files: [("train", train)], imageRoot: imageRoot)
        XCTAssertEqual(source.boundary, imageRoot)
        let records = try RecordReader.read(try source.split("train"), boundary: source.boundary, limits: DatasetLimits())
        XCTAssertEqual(records.examples.count, 1)
        XCTAssertEqual(records.problems, [])
    }
}
