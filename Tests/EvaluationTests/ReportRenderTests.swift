import CPNG
import Foundation
import XCTest

@testable import Evaluation

/// Renders the synthetic report in headless Chromium and checks the screenshot's pixels for
/// the curve colours and the box colours.
final class ReportRenderTests: XCTestCase {
    func testReportRendersInChromium() throws {
        guard let chromium = TestImages.findExecutable("chromium") ?? TestImages.findExecutable("chromium-browser") else {
            throw XCTSkip("chromium not found; install the Debian package 'chromium' to render the report")
        }
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try SyntheticRun.metricsJSONL().write(to: directory.appendingPathComponent("metrics.jsonl"), atomically: true, encoding: .utf8)
        let report = try ReportWriter(outputDirectory: directory, runName: "synthetic run").write(gallery: SyntheticRun.gallery())

        let screenshot = directory.appendingPathComponent("screenshot.png")
        _ = try TestImages.run(chromium, [
            "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,1500",
            "--virtual-time-budget=5000", "--screenshot=\(screenshot.path)", report.absoluteString,
        ])
        let image = try readPNG(screenshot)
        XCTAssertEqual(image.width, 1280)
        XCTAssertEqual(image.height, 1500)

        // Curves: the chart colours of the loss (blue) and learning-rate (purple) lines.
        XCTAssertGreaterThan(image.count(near: (0x1F, 0x77, 0xB4), tolerance: 12), 300, "loss and mAP@0.5 curves")
        XCTAssertGreaterThan(image.count(near: (0x94, 0x67, 0xBD), tolerance: 12), 300, "learning-rate curve")
        // Boxes: gallery JPEGs with green and orange-red outlines (JPEG shifts colours a little).
        // Outside the gallery, legends, captions and the orange mAP curve match these colours
        // in about 250 and 700 pixels. The synthetic gallery adds about 3300 and 4900.
        let green = RGBColor.groundTruth
        let orange = RGBColor.prediction
        XCTAssertGreaterThan(image.count(near: (Int(green.red), Int(green.green), Int(green.blue)), tolerance: 40), 1500, "ground-truth boxes")
        XCTAssertGreaterThan(image.count(near: (Int(orange.red), Int(orange.green), Int(orange.blue)), tolerance: 40), 2500, "predicted boxes")
    }

    private struct RGBAImage {
        var pixels: [UInt8]
        var width: Int
        var height: Int

        /// Counts the pixels whose channels are each within `tolerance` of `color`.
        func count(near color: (Int, Int, Int), tolerance: Int) -> Int {
            var total = 0
            for index in stride(from: 0, to: pixels.count, by: 4) {
                if abs(Int(pixels[index]) - color.0) <= tolerance, abs(Int(pixels[index + 1]) - color.1) <= tolerance,
                   abs(Int(pixels[index + 2]) - color.2) <= tolerance {
                    total += 1
                }
            }
            return total
        }
    }

    /// Decodes a PNG with libpng's simplified API, which reports errors without longjmp.
    private func readPNG(_ url: URL) throws -> RGBAImage {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_file(&image, url.path) != 0 else {
            throw TestImages.ToolError(message: "cannot read \(url.path) as PNG")
        }
        image.format = UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)  // PNG_FORMAT_RGBA, a macro Swift cannot import
        let width = Int(image.width)
        let height = Int(image.height)
        var pixels = [UInt8](repeating: 0, count: width * height * 4)
        let ok = pixels.withUnsafeMutableBytes { buffer in
            png_image_finish_read(&image, nil, buffer.baseAddress, Int32(width * 4), nil)
        }
        guard ok != 0 else {
            throw TestImages.ToolError(message: "cannot decode \(url.path)")
        }
        return RGBAImage(pixels: pixels, width: width, height: height)
    }
}
