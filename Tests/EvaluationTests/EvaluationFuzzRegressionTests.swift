import Dataset
import Foundation
import XCTest
@testable import Evaluation

/// Inputs that the fuzz targets (scripts/fuzz) found in the Evaluation module. The fuzzer's own
/// inputs are in Tests/Fixtures/fuzz-regressions/.
final class EvaluationFuzzRegressionTests: XCTestCase {
    /// Asserts that `ImageHeaderSize` and the training decoder (libjpeg through Dataset) read the
    /// same size from `data`.
    private func assertReadersAgree(
        _ data: Data, width: Int, height: Int, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let size = try ImageHeaderSize.read(data, path: "fuzz.jpg")
        XCTAssertEqual(size.width, width, "ImageHeaderSize width", file: file, line: line)
        XCTAssertEqual(size.height, height, "ImageHeaderSize height", file: file, line: line)

        let info = try ImageDecoder.info(data: data, path: "fuzz.jpg")
        XCTAssertEqual(info.storedWidth, width, "libjpeg width", file: file, line: line)
        XCTAssertEqual(info.storedHeight, height, "libjpeg height", file: file, line: line)
    }

    /// The `jpeg` target's input has `FF 00` right after SOI. `ImageHeaderSize` read it as a
    /// marker with a length, skipped 256 bytes into the file and took `FF CE CE CE CE` there
    /// for a frame header of 52942x52942, where libjpeg skips the stuffed zero and finds 40x24.
    func testStuffedZeroAfterSOIFromFuzzer() throws {
        let url = Fixtures.repositoryRoot.appendingPathComponent("Tests/Fixtures/fuzz-regressions/jpeg/stuffed-zero-after-soi.jpg")
        try assertReadersAgree(try Data(contentsOf: url), width: 40, height: 24)
    }

    /// A stuffed zero whose next two bytes look like a segment length must not move the reader.
    func testStuffedZeroIsNotASegment() throws {
        let jpeg = try JPEGEncoder.encode(pixels: TestImages.gradient(width: 300, height: 20), width: 300, height: 20)
        let patched = jpeg.prefix(2) + Data([0xFF, 0x00, 0x00, 0x10]) + jpeg.dropFirst(2)
        try assertReadersAgree(patched, width: 300, height: 20)
    }

    /// libjpeg skips bytes other than 0xFF between segments with a warning, so the header
    /// reader skips them too instead of rejecting an image the training path accepts.
    func testGarbageBetweenSegmentsIsSkipped() throws {
        let jpeg = [UInt8](try JPEGEncoder.encode(pixels: TestImages.gradient(width: 64, height: 48), width: 64, height: 48))
        XCTAssertEqual(jpeg[2], 0xFF)

        // After the first segment: the decoder detects the format from the first three bytes.
        let firstSegmentEnd = 4 + (Int(jpeg[4]) << 8 | Int(jpeg[5]))
        let patched = jpeg.prefix(firstSegmentEnd) + [0x12, 0x34, 0x56] + jpeg.dropFirst(firstSegmentEnd)
        try assertReadersAgree(Data(patched), width: 64, height: 48)
    }

    func testTruncatedJPEGStillRejected() throws {
        let jpeg = try JPEGEncoder.encode(pixels: TestImages.gradient(width: 8, height: 8), width: 8, height: 8)
        XCTAssertThrowsError(try ImageHeaderSize.read(jpeg.prefix(40), path: "cut.jpg")) { error in
            XCTAssertTrue("\(error)".hasPrefix("cut.jpg: JPEG ends before its start-of-frame marker"), "\(error)")
        }
    }
}
