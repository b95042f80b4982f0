import Foundation
import XCTest

@testable import Evaluation

/// JPEG encoding, header sizes and box drawing.
final class ImageOutputTests: XCTestCase {
    func testJPEGRoundTripThroughDjpeg() throws {
        guard let djpeg = TestImages.findExecutable("djpeg") else {
            throw XCTSkip("djpeg not found; install libjpeg-turbo-progs to run the JPEG round trip")
        }
        let (width, height) = (97, 61)
        let pixels = TestImages.gradient(width: width, height: height)
        let jpeg = try JPEGEncoder.encode(pixels: pixels, width: width, height: height, quality: 95)

        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("round-trip.jpg")
        try jpeg.write(to: file)
        let decoded = try TestImages.parsePPM(try TestImages.run(djpeg, ["-pnm", file.path]))

        XCTAssertEqual(decoded.width, width)
        XCTAssertEqual(decoded.height, height)
        let totalError = zip(decoded.pixels, pixels).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }
        let meanError = Double(totalError) / Double(pixels.count)
        XCTAssertLessThan(meanError, 2.5, "mean absolute error per channel at quality 95")
        XCTAssertGreaterThan(meanError, 0, "JPEG is lossy; identical output would mean the test compared the wrong data")
    }

    func testJPEGHeaderSize() throws {
        let jpeg = try JPEGEncoder.encode(pixels: TestImages.gradient(width: 300, height: 20), width: 300, height: 20)
        XCTAssertEqual(jpeg.prefix(2), Data([0xFF, 0xD8]))
        let size = try ImageHeaderSize.read(jpeg, path: "memory.jpg")
        XCTAssertEqual(size.width, 300)
        XCTAssertEqual(size.height, 20)
    }

    func testHeaderErrors() throws {
        XCTAssertThrowsError(try ImageHeaderSize.read(Data("GIF89a".utf8), path: "x.gif")) { error in
            XCTAssertTrue("\(error)".hasPrefix("x.gif: not a JPEG or PNG file"), "\(error)")
        }
        let jpeg = try JPEGEncoder.encode(pixels: TestImages.gradient(width: 8, height: 8), width: 8, height: 8)
        XCTAssertThrowsError(try ImageHeaderSize.read(jpeg.prefix(40), path: "cut.jpg")) { error in
            XCTAssertTrue("\(error)".contains("truncated"), "\(error)")
        }
        XCTAssertThrowsError(try ImageHeaderSize.read(Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0]), path: "cut.png"))
    }

    func testEncoderRejectsBadInput() {
        XCTAssertThrowsError(try JPEGEncoder.encode(pixels: [0, 0, 0], width: 2, height: 1)) { error in
            XCTAssertEqual("\(error)", "expected 2 x 1 x 3 = 6 bytes of RGB8 pixels, found 3")
        }
        XCTAssertThrowsError(try JPEGEncoder.encode(pixels: [0, 0, 0], width: 1, height: 1, quality: 0)) { error in
            XCTAssertEqual("\(error)", "JPEG encoding failed: JPEG quality 0 is outside 1...100")
        }
    }

    func testRectangleOutline() {
        let (width, height) = (10, 8)
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        let box = PixelBox(xMin: 1.5, yMin: 1, xMax: 8, yMax: 7)
        BoxDrawing.drawRectangle(box, into: &pixels, width: width, height: height, color: .groundTruth, lineWidth: 2, dashed: false)

        func isPainted(_ x: Int, _ y: Int) -> Bool { pixels[(y * width + x) * 3 + 1] == RGBColor.groundTruth.green }
        // Columns 1..<8 and rows 1..<7; lines 2 px wide inside the box.
        XCTAssertTrue(isPainted(1, 1))
        XCTAssertTrue(isPainted(7, 6))
        XCTAssertTrue(isPainted(2, 4), "left band is two columns")
        XCTAssertTrue(isPainted(6, 4), "right band is two columns")
        XCTAssertFalse(isPainted(4, 4), "interior stays untouched")
        XCTAssertFalse(isPainted(3, 3))
        XCTAssertFalse(isPainted(0, 0), "outside the box")
        XCTAssertFalse(isPainted(8, 4), "xMax = 8 is exclusive")
        XCTAssertFalse(isPainted(4, 7), "yMax = 7 is exclusive")
    }

    func testDashedOutlineAndClipping() {
        let (width, height) = (40, 10)
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        let box = PixelBox(xMin: -5, yMin: 0, xMax: 100, yMax: 10)
        BoxDrawing.drawRectangle(box, into: &pixels, width: width, height: height, color: .prediction, lineWidth: 2, dashed: true)

        let topRow = (0..<width).map { pixels[$0 * 3] == RGBColor.prediction.red }
        // Dashes 8 on, 4 off from the clipped left edge.
        XCTAssertEqual(Array(topRow[0..<12]), Array(repeating: true, count: 8) + Array(repeating: false, count: 4))
        XCTAssertTrue(topRow[12])
    }

    func testAnnotateDrawsBothColours() throws {
        let (width, height) = (64, 48)
        let pixels = [UInt8](repeating: 128, count: width * height * 3)
        let box = PixelBox(xMin: 10, yMin: 10, xMax: 40, yMax: 30)
        var canvas = pixels
        BoxDrawing.drawBoxes(into: &canvas, width: width, height: height,
                             groundTruth: [LabeledBox(label: "cat", box: box)],
                             predictions: [ScoredBox(label: "cat", box: box, score: 0.9)])

        // Same box: dashes of the prediction over the solid ground truth leave both visible.
        let topEdge = (10..<40).map { x in Array(canvas[((10 * width + x) * 3)..<((10 * width + x) * 3 + 3)]) }
        let green = [RGBColor.groundTruth.red, RGBColor.groundTruth.green, RGBColor.groundTruth.blue]
        let orange = [RGBColor.prediction.red, RGBColor.prediction.green, RGBColor.prediction.blue]
        XCTAssertTrue(topEdge.contains(green))
        XCTAssertTrue(topEdge.contains(orange))

        let jpeg = try BoxDrawing.annotate(pixels: pixels, width: width, height: height, predictions: [ScoredBox(label: "cat", box: box, score: 0.9)])
        XCTAssertEqual(try ImageHeaderSize.read(jpeg, path: "annotated.jpg").width, width)
    }

    func testDownscaleAveragesBlocks() {
        // 4x2 image, left half black, right half white; scaled to 2x1.
        var pixels = [UInt8](repeating: 0, count: 4 * 2 * 3)
        for y in 0..<2 {
            for x in 2..<4 {
                for channel in 0..<3 { pixels[(y * 4 + x) * 3 + channel] = 255 }
            }
        }
        let item = GalleryItem(title: "t", pixels: pixels, width: 4, height: 2, groundTruth: [], predictions: [])
        let scaled = item.downscaled(maxSide: 2)

        XCTAssertEqual(scaled.width, 2)
        XCTAssertEqual(scaled.height, 1)
        XCTAssertEqual(scaled.pixels, [0, 0, 0, 255, 255, 255])
        XCTAssertEqual(item.downscaled(maxSide: 10).width, 4, "never enlarged")
    }
}
