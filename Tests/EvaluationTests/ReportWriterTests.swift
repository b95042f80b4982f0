import Foundation
import XCTest

@testable import Evaluation

final class ReportWriterTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = try Fixtures.temporaryDirectory()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func writeMetrics(_ text: String) throws -> URL {
        let url = directory.appendingPathComponent("metrics.jsonl")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    private func count(_ needle: String, in text: String) -> Int {
        text.components(separatedBy: needle).count - 1
    }

    func testMetricsHistoryReadsNumbersByStep() throws {
        let url = try writeMetrics("""
        {"step": 0, "train/loss": 2.5, "train/lr": 0, "note": "warmup", "ok": true, "extra": null}
        {"step": 10, "train/loss": 2.0, "train/lr": 1e-5}

        {"step": 10, "train/loss": 1.9, "val/map50": 0.25, "nested": {"a": 1}}
        {"step": 5, "train/loss": 2.2}
        {"step": 20, "train/lo
        """)
        let history = try MetricsHistory.load(contentsOf: url)

        XCTAssertEqual(history.names, ["train/loss", "train/lr", "val/map50"])
        XCTAssertEqual(history.series("train/loss").map(\.step), [0, 5, 10])
        XCTAssertEqual(history.series("train/loss").map(\.value), [2.5, 2.2, 1.9], "the later line for step 10 wins")
        XCTAssertEqual(history.series("train/lr").map(\.value), [0, 1e-5])
        XCTAssertEqual(history.latest("val/map50")?.step, 10)
        XCTAssertTrue(history.series("missing").isEmpty)
    }

    func testMetricsHistoryErrorsNameTheLine() throws {
        let badJSON = try writeMetrics("{\"step\": 0, \"train/loss\": 1}\n{\"step\": 1, \"train/loss\": \n{\"step\": 2}\n")
        XCTAssertThrowsError(try MetricsHistory.load(contentsOf: badJSON)) { error in
            XCTAssertTrue("\(error)".hasPrefix(badJSON.path + ":2: invalid JSON"), "\(error)")
        }

        let noStep = try writeMetrics("{\"train/loss\": 1}\n")
        XCTAssertThrowsError(try MetricsHistory.load(contentsOf: noStep)) { error in
            XCTAssertEqual("\(error)", noStep.path + ":1: missing numeric key 'step'")
        }

        let fractionalStep = try writeMetrics("{\"step\": 1.5}\n")
        XCTAssertThrowsError(try MetricsHistory.load(contentsOf: fractionalStep)) { error in
            XCTAssertEqual("\(error)", fractionalStep.path + ":1: 'step' must be a non-negative integer, found 1.5")
        }
    }

    func testReportHasCurvesAndGallery() throws {
        _ = try writeMetrics(SyntheticRun.metricsJSONL())
        let gallery = SyntheticRun.gallery()
        let reportURL = try ReportWriter(outputDirectory: directory, runName: "synthetic run").write(gallery: gallery)
        let html = try String(contentsOf: reportURL, encoding: .utf8)

        XCTAssertEqual(reportURL.lastPathComponent, "report.html")
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertTrue(html.contains("<title>synthetic run - palitrain report</title>"))

        // Six curves: loss, learning rate, two mAP series, two failure rates.
        XCTAssertEqual(count("<svg class=\"chart\"", in: html), 4)
        XCTAssertEqual(count("<path class=\"series\"", in: html), 6)
        let lossPath = try XCTUnwrap(html.components(separatedBy: "<path class=\"series\" d=\"").dropFirst().first?.components(separatedBy: "\"").first)
        XCTAssertEqual(lossPath.filter { $0 == "L" }.count, SyntheticRun.history().series("train/loss").count - 1)
        XCTAssertTrue(lossPath.hasPrefix("M64.0,"), "the first loss point sits on the left edge of the plot")

        // Gallery: one image per item, each a JPEG on disk no larger than maxImageSide.
        for index in gallery.indices {
            let path = String(format: "report-gallery/step-%08d-%03d.jpg", SyntheticRun.steps, index)
            XCTAssertTrue(html.contains("<img src=\"\(path)\""), path)
            let size = try ImageHeaderSize.read(contentsOf: directory.appendingPathComponent(path))
            XCTAssertEqual(size.width, gallery[index].width)
        }
        XCTAssertTrue(html.contains("ball 0.94"))
        XCTAssertTrue(html.contains("ball, crate"))
        XCTAssertTrue(html.contains(RGBColor.groundTruth.hex))
        XCTAssertTrue(html.contains(RGBColor.prediction.hex))
        XCTAssertTrue(html.contains("best mAP@0.5:0.95"))

        // Offline: nothing is fetched from the network.
        XCTAssertFalse(html.contains("src=\"http"))
        XCTAssertFalse(html.contains("href=\"http"))
        XCTAssertFalse(html.contains("<script"))
    }

    func testRewriteReplacesGalleryFiles() throws {
        var history = MetricsHistory()
        history.record("val/map50", step: 100, value: 0.1)
        let writer = ReportWriter(outputDirectory: directory)
        try writer.write(history: history, gallery: SyntheticRun.gallery())

        history.record("val/map50", step: 200, value: 0.2)
        try writer.write(history: history, gallery: Array(SyntheticRun.gallery().prefix(2)))

        let files = try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("report-gallery").path).sorted()
        XCTAssertEqual(files, ["step-00000200-000.jpg", "step-00000200-001.jpg"])
        let topLevel = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        XCTAssertEqual(topLevel, ["report-gallery", "report.html"], "no temporary files left behind")
    }

    func testEmptyReport() throws {
        let reportURL = try ReportWriter(outputDirectory: directory).write(gallery: [])
        let html = try String(contentsOf: reportURL, encoding: .utf8)

        XCTAssertEqual(count("no data yet", in: html), 3)
        XCTAssertTrue(html.contains("No validation images yet."))
        XCTAssertTrue(html.contains("none yet"))
    }

    func testLabelsAreEscaped() throws {
        let item = GalleryItem(
            title: "a<b>.jpg", pixels: [UInt8](repeating: 9, count: 4 * 4 * 3), width: 4, height: 4,
            groundTruth: [LabeledBox(label: "fish & \"chips\"", box: PixelBox(xMin: 0, yMin: 0, xMax: 2, yMax: 2))], predictions: []
        )
        let html = try String(contentsOf: try ReportWriter(outputDirectory: directory, runName: "<run>").write(history: MetricsHistory(), gallery: [item]), encoding: .utf8)

        XCTAssertTrue(html.contains("a&lt;b&gt;.jpg"))
        XCTAssertTrue(html.contains("fish &amp; &quot;chips&quot;"))
        XCTAssertTrue(html.contains("<h1>&lt;run&gt;</h1>"))
        XCTAssertFalse(html.contains("a<b>"))
    }

    func testBadGalleryImageIsAnError() {
        let item = GalleryItem(title: "x", pixels: [1, 2, 3], width: 2, height: 2, groundTruth: [], predictions: [])
        XCTAssertThrowsError(try ReportWriter(outputDirectory: directory).write(history: MetricsHistory(), gallery: [item])) { error in
            XCTAssertTrue("\(error)".contains("cannot render gallery image 0: gallery image 'x': expected 2 x 2 x 3"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent("report.html").path))
    }

    /// Writes the synthetic run to PALITRAIN_SYNTHETIC_REPORT_DIR; scripts/render-report uses it
    /// for the screenshot in Docs/.
    func testWriteSyntheticReportForScreenshot() throws {
        guard let target = ProcessInfo.processInfo.environment["PALITRAIN_SYNTHETIC_REPORT_DIR"] else {
            throw XCTSkip("set PALITRAIN_SYNTHETIC_REPORT_DIR to write the synthetic report (scripts/render-report --synthetic does)")
        }
        let output = URL(fileURLWithPath: target)
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        try SyntheticRun.metricsJSONL().write(to: output.appendingPathComponent("metrics.jsonl"), atomically: true, encoding: .utf8)
        try ReportWriter(outputDirectory: output, runName: "synthetic run (made-up metrics and images)").write(gallery: SyntheticRun.gallery())
    }
}
