import Foundation
import XCTest

@testable import Dataset

/// Hostile inputs that are too large to commit as fixtures: made at run time, each checked to
/// give its clear error without reading or allocating past the stated limit.
final class HostileInputTests: XCTestCase {
    private var dataset: DatasetBuilder!

    override func setUpWithError() throws {
        dataset = try DatasetBuilder()
    }

    override func tearDown() {
        dataset.remove()
    }

    /// A 100 MB JSONL line is reported under `maxLineBytes` (1 MiB by default) and skipped;
    /// the reader keeps reading the file after it.
    func testHundredMegabyteLineIsRejectedAndSkipped() throws {
        try dataset.copyImage("rgb-baseline.jpg", to: "a.jpg")
        var file = Data(DatasetBuilder.record("a.jpg", "detect cat", "").utf8) + Data([10])
        file.append(Data("{\"image\": \"a.jpg\", \"prefix\": \"detect cat\", \"suffix\": \"".utf8))
        file.append(Data(repeating: UInt8(ascii: "x"), count: 100_000_000))
        file.append(Data("\"}\n".utf8))
        file.append(Data(DatasetBuilder.record("a.jpg", "detect dog", "").utf8) + Data([10]))
        try dataset.write("_annotations.train.jsonl", data: file)

        let source = try DatasetSource.discover(directory: dataset.root.path)
        let records = try RecordReader.read(try source.split("train"), boundary: source.boundary, limits: DatasetLimits())

        XCTAssertEqual(records.examples.map(\.line), [1, 3])
        XCTAssertEqual(records.problems.map(\.kind), [.lineTooLong])
        XCTAssertEqual(records.problems.first?.line, 2)
        let message = records.problems.first?.message ?? ""
        XCTAssertTrue(message.contains("maxLineBytes = 1048576"), message)
    }

    /// A JPEG whose frame header claims 65000 x 65000 pixels is rejected from the header,
    /// before any pixel buffer is allocated.
    func testGigapixelJPEGHeaderIsRejectedBeforeDecoding() throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("images/rgb-baseline.jpg"))))
        // Rewrite the height and width of the first start-of-frame marker (SOF0..SOF2).
        var index = 2
        var patched = false
        while index + 9 < bytes.count {
            guard bytes[index] == 0xFF else { break }
            let marker = bytes[index + 1]
            let length = Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])
            if (0xC0...0xC2).contains(marker) {
                for offset in [index + 5, index + 7] {
                    bytes[offset] = UInt8(65_000 >> 8)
                    bytes[offset + 1] = UInt8(65_000 & 0xFF)
                }
                patched = true
                break
            }
            index += 2 + length
        }
        XCTAssertTrue(patched, "the fixture has no baseline or progressive frame header")
        let path = try dataset.write("huge.jpg", data: Data(bytes))

        XCTAssertThrowsError(try ImagePreprocessor(size: 24).load(path: path)) { error in
            XCTAssertEqual(
                error as? ImageError, .tooManyPixels(path: path, width: 65_000, height: 65_000, limit: 100_000_000))
            XCTAssertTrue("\(error)".contains("maxImagePixels"), "\(error)")
        }
    }
}
