import Foundation
import XCTest

/// Runs `palitrain train` under `mpirun` with validation on rank 0, and checks what the run
/// leaves: validation values in the step's metrics line, report.html, and the `best` pointer.
final class TrainValidationTests: XCTestCase {
    override class func tearDown() {
        TrainFixture.removeShared()
        super.tearDown()
    }

    private func metricsLines(_ output: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: output + "/metrics.jsonl", encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
    }

    func testValidationWritesMetricsReportAndBest() throws {
        let fixture = try TrainFixture.shared()
        let output = fixture.outputFolder("validation")
        let run = try TrainRun.start(
            ranks: 2,
            command: fixture.trainArguments(output: output, steps: 4, ["--eval-every", "2", "--max-new-tokens", "12"]),
            logPath: output + ".log")
        let result = run.wait(limit: 240)
        XCTAssertFalse(result.timedOut, "the run hung:\n\(result.output)")
        XCTAssertEqual(result.status, 0, "the run failed:\n\(result.output)")

        // One line per step; steps 2 and 4 carry the validation values next to the loss.
        let lines = try metricsLines(output)
        XCTAssertEqual(lines.map { $0["step"] as? Int }, [1, 2, 3, 4])
        for line in lines {
            let step = try XCTUnwrap(line["step"] as? Int)
            XCTAssertNotNil(line["train/loss"] as? Double, "step \(step) has no loss")
            let validated = step % 2 == 0
            XCTAssertEqual(line["val/runaway_rate"] != nil, validated, "step \(step)")
            XCTAssertEqual(line["val/parse_failure_rate"] != nil, validated, "step \(step)")
            XCTAssertEqual(line["val/map50"] != nil, validated, "step \(step)")
        }
        XCTAssertTrue(result.output.contains("[val] step 2 |"), result.output)
        XCTAssertTrue(result.output.contains("[val] step 4 |"), result.output)

        // The report and the best checkpoint, which must be a complete folder.
        let report = try String(contentsOfFile: output + "/report.html", encoding: .utf8)
        XCTAssertTrue(report.contains("<svg"), "report.html has no chart")
        XCTAssertTrue(report.contains(".jpg"), "report.html has no gallery image")
        let best = try String(contentsOfFile: output + "/checkpoints/best", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(["step_00000002", "step_00000004"].contains(best), "best is \(best)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: output + "/checkpoints/\(best)/COMPLETE"))
    }
}
