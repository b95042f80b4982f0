import Checkpoint
import Foundation
import XCTest
@testable import Training

final class CheckpointStoreTests: XCTestCase {
    private var output: String!

    override func setUpWithError() throws {
        output = NSTemporaryDirectory() + "palitrain-store-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: output)
    }

    private func save(_ store: CheckpointStore, step: Int) throws {
        _ = try store.save(step: step) { folder in
            try writeFileAtomically(path: folder + "/params.npz", bytes: Array("params \(step)".utf8))
        }
    }

    func testSaveWritesMarkerAndLatest() throws {
        let store = CheckpointStore(outputDirectory: output)
        try save(store, step: 3)
        XCTAssertTrue(store.isComplete(step: 3))
        XCTAssertEqual(store.pointer("latest"), 3)
        let latest = try String(contentsOfFile: store.root + "/latest", encoding: .utf8)
        XCTAssertEqual(latest, "step_00000003\n")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: store.path(step: 3)).filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [], "no temporary files stay behind")
    }

    func testIncompleteFolderIsIgnoredAndPruned() throws {
        let store = CheckpointStore(outputDirectory: output)
        try save(store, step: 2)
        // A crash after the folder was created but before the marker.
        try FileManager.default.createDirectory(atPath: store.path(step: 4), withIntermediateDirectories: true)
        XCTAssertEqual(store.latestComplete(), 2)
        store.prune(keepLast: 5)
        XCTAssertFalse(FileManager.default.fileExists(atPath: store.path(step: 4)))
        XCTAssertTrue(store.isComplete(step: 2))
    }

    func testPruneKeepsLastBestAndProtected() throws {
        let store = CheckpointStore(outputDirectory: output)
        for step in [1, 2, 3, 4, 5] { try save(store, step: step) }
        try store.setPointer("best", to: 1)
        store.prune(keepLast: 2, protectedSteps: [2])
        XCTAssertEqual(store.completeSteps(), [1, 2, 4, 5])
    }

    func testLatestPointerToMissingFolderFallsBack() throws {
        let store = CheckpointStore(outputDirectory: output)
        try save(store, step: 7)
        try save(store, step: 8)
        try FileManager.default.removeItem(atPath: store.path(step: 8))
        XCTAssertNil(store.pointer("latest"))
        XCTAssertEqual(store.latestComplete(), 7)
    }

    func testFailedSaveKeepsPreviousLatest() throws {
        let store = CheckpointStore(outputDirectory: output)
        try save(store, step: 1)
        struct Injected: Error {}
        XCTAssertThrowsError(try store.save(step: 2) { _ in throw Injected() })
        XCTAssertEqual(store.pointer("latest"), 1)
        XCTAssertFalse(store.isComplete(step: 2))
    }
}

final class MetricsLogTests: XCTestCase {
    func testLinesAreJSONWithStepFirstAndAppendOnReopen() throws {
        let path = NSTemporaryDirectory() + "palitrain-metrics-\(UUID().uuidString).jsonl"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try MetricsLog(path: path).append(step: 1, ["train/loss": 2.5, "train/lr": 0.001])
        try MetricsLog(path: path).append(step: 2, ["train/loss": .nan])

        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        XCTAssertEqual(String(lines[0]), "{\"step\": 1, \"train/loss\": 2.5, \"train/lr\": 0.001}")
        let second = try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any]
        XCTAssertEqual(second?["step"] as? Int, 2)
        XCTAssertTrue(second?["train/loss"] is NSNull, "NaN is written as null, keeping the line valid JSON")
    }
}
