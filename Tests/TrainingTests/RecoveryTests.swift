import Checkpoint
import Foundation
import XCTest
@testable import Training

/// What a run finds on disk after a crash, and the error that names diverged replicas.
final class RecoveryTests: XCTestCase {
    private var output: String!

    override func setUpWithError() throws {
        output = NSTemporaryDirectory() + "palitrain-recovery-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: output)
    }

    // MARK: - Checkpoint folders left by a crash

    func testSaveClearsFolderOfInterruptedWrite() throws {
        let store = CheckpointStore(outputDirectory: output)
        // A process killed while writing params.npz leaves its temporary file behind.
        let folder = store.path(step: 4)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Data("partial".utf8).write(to: URL(fileURLWithPath: folder + "/params.npz.tmp-99999"))

        _ = try store.save(step: 4) { folder in
            try writeFileAtomically(path: folder + "/params.npz", bytes: Array("new".utf8))
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        XCTAssertEqual(files, ["COMPLETE", "params.npz"])
        XCTAssertEqual(store.pointer("latest"), 4)
    }

    func testSaveOverCompleteFolderDropsOldFiles() throws {
        let store = CheckpointStore(outputDirectory: output)
        _ = try store.save(step: 2) { folder in
            try writeFileAtomically(path: folder + "/params.npz", bytes: Array("old".utf8))
            try writeFileAtomically(path: folder + "/extra.bin", bytes: Array("old".utf8))
        }

        // A failing rewrite must not leave the old marker vouching for the old files.
        struct WriteFailure: Error {}
        XCTAssertThrowsError(try store.save(step: 2) { _ in throw WriteFailure() })
        XCTAssertFalse(store.isComplete(step: 2))
        XCTAssertFalse(FileManager.default.fileExists(atPath: store.path(step: 2) + "/extra.bin"))
        XCTAssertNil(store.latestComplete())
    }

    // MARK: - metrics.jsonl after a crash

    private func writeMetrics(_ text: String) throws -> String {
        let path = output + "/metrics.jsonl"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testTruncateDropsStepsAfterCheckpoint() throws {
        let path = try writeMetrics(
            "{\"step\": 1, \"train/loss\": 3}\n{\"step\": 2, \"train/loss\": 2}\n{\"step\": 3, \"train/loss\": 1}\n")
        XCTAssertEqual(try MetricsLog.truncate(path: path, afterStep: 2), 1)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "{\"step\": 1, \"train/loss\": 3}\n{\"step\": 2, \"train/loss\": 2}\n")

        let log = try MetricsLog(path: path)
        try log.append(step: 3, ["train/loss": 0.5])
        let steps = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").count
        XCTAssertEqual(steps, 3)
    }

    func testTruncateDropsTornLastLine() throws {
        let path = try writeMetrics("{\"step\": 1, \"train/loss\": 3}\n{\"step\": 2, \"train/lo")
        XCTAssertEqual(try MetricsLog.truncate(path: path, afterStep: 5), 1)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "{\"step\": 1, \"train/loss\": 3}\n")
    }

    func testTruncateKeepsCompleteFileUntouched() throws {
        let text = "{\"step\": 1, \"train/loss\": 3}\n{\"step\": 2, \"val/map50\": 0.5}\n"
        let path = try writeMetrics(text)
        XCTAssertEqual(try MetricsLog.truncate(path: path, afterStep: 2), 0)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), text)
        XCTAssertEqual(try MetricsLog.truncate(path: output + "/missing.jsonl", afterStep: 0), 0)
    }

    func testTruncateToStepZeroEmptiesFile() throws {
        let path = try writeMetrics("{\"step\": 1, \"train/loss\": 3}\n")
        XCTAssertEqual(try MetricsLog.truncate(path: path, afterStep: 0), 1)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "")
    }

    // MARK: - Diverged replicas

    func testDivergenceNamesMinorityRank() {
        XCTAssertEqual(
            TrainingError.describeDivergence([7, 7, 9, 7]),
            "rank 2 holds parameters different from the 3 agreeing ranks (ranks 0, 1, 3)")
        XCTAssertEqual(
            TrainingError.describeDivergence([9, 7, 7, 7]),
            "rank 0 holds parameters different from the 3 agreeing ranks (ranks 1, 2, 3)")
        XCTAssertEqual(
            TrainingError.describeDivergence([1, 2, 7, 7, 7]),
            "ranks 0, 1 hold parameters different from the 3 agreeing ranks (ranks 2, 3, 4)")
    }

    func testDivergenceWithoutMajority() {
        XCTAssertEqual(
            TrainingError.describeDivergence([1, 2]),
            "ranks 0, 1 hold different parameters and no majority shows which diverged")
        XCTAssertEqual(
            TrainingError.describeDivergence([1, 1, 2, 2]),
            "ranks 0, 1, 2, 3 hold different parameters and no majority shows which diverged")
    }

    func testDivergenceErrorNamesStepAndHashes() {
        let message = TrainingError.replicasDiverged(step: 12, hashes: [0xA, 0xA, 0xB]).description
        XCTAssertTrue(message.hasPrefix("the replicas diverged after step 12: rank 2 holds parameters"), message)
        XCTAssertTrue(message.contains("rank 2 000000000000000b"), message)
        XCTAssertTrue(message.contains("--resume auto"), message)
    }
}
