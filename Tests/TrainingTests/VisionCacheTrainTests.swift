import Checkpoint
import Foundation
import XCTest

/// `palitrain train` with the vision-feature cache on the tiny model and the 48-example demo
/// dataset (6 steps per epoch at batch 8), against the same runs without the cache.
///
/// Needs Open MPI's `mpirun` and `.build/debug/palitrain` (built by `scripts/test`).
final class VisionCacheTrainTests: XCTestCase {
    private let limit: Double = 240
    /// The decoder attention and the vision head train; the vision encoder is frozen.
    private let frozenEncoder = ["--trainable", "^llm/layers/attn/|^img/head/"]

    override class func tearDown() {
        TrainFixture.removeShared()
        super.tearDown()
    }

    private func train(
        ranks: Int?, _ name: String, steps: Int, _ extra: [String], output: String? = nil,
        file: StaticString = #filePath, line: UInt = #line
    ) throws -> (output: String, log: String) {
        let fixture = try TrainFixture.shared()
        let folder = output ?? fixture.outputFolder(name)
        let run = try TrainRun.start(
            ranks: ranks, command: fixture.trainArguments(output: folder, steps: steps, extra), logPath: folder + "-\(name).log")
        let result = run.wait(limit: limit)
        XCTAssertFalse(result.timedOut, "\(name) hung:\n\(result.output)", file: file, line: line)
        XCTAssertEqual(result.status, 0, "\(name) failed:\n\(result.output)", file: file, line: line)
        return (folder, result.output)
    }

    /// Reads the arrays of `params.npz` at `step`, as raw bytes by key.
    private func parameterBytes(output: String, step: Int) throws -> [String: [UInt8]] {
        let reader = try NPZReader(path: output + "/checkpoints/" + String(format: "step_%08d", step) + "/params.npz")
        var arrays: [String: [UInt8]] = [:]
        for key in reader.keys { arrays[key] = try reader.array(key).withUnsafeBytes { Array($0) } }
        return arrays
    }

    private func assertSameParameters(_ first: String, _ second: String, step: Int, _ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try parameterBytes(output: first, step: step)
        let found = try parameterBytes(output: second, step: step)
        XCTAssertFalse(expected.isEmpty, label, file: file, line: line)
        XCTAssertEqual(Set(expected.keys), Set(found.keys), label, file: file, line: line)
        for key in expected.keys.sorted() {
            XCTAssertTrue(expected[key] == found[key], "\(label): '\(key)' differs", file: file, line: line)
        }
    }

    private func cacheCounts(_ output: String) throws -> [(hits: Int, misses: Int)] {
        try MetricsLine.read(output: output).map { line in
            (line.values["vision_cache/hits"] as? Int ?? -1, line.values["vision_cache/misses"] as? Int ?? -1)
        }
    }

    func testF32CacheReproducesUncachedRun() throws {
        let plain = try train(ranks: nil, "plain", steps: 12, frozenEncoder + ["--vision-cache-mb", "0"])
        XCTAssertTrue(plain.log.contains("vision-feature cache | off (--vision-cache-mb 0)"), plain.log)
        XCTAssertFalse(plain.log.contains("[vision-cache]"), plain.log)

        let cached = try train(ranks: nil, "cached-f32", steps: 12, frozenEncoder + ["--vision-cache-dtype", "f32"])
        XCTAssertTrue(cached.log.contains("vision-feature cache | f32, 2048 MiB per rank"), cached.log)
        XCTAssertTrue(cached.log.contains("[vision-cache] 48 hits and 48 misses over all ranks (50.0% hits)"), cached.log)
        XCTAssertTrue(cached.log.contains("| vision cache 8/8 hits |"), cached.log)
        let counts = try cacheCounts(cached.output)
        XCTAssertEqual(counts.map(\.hits), [0, 0, 0, 0, 0, 0, 8, 8, 8, 8, 8, 8], "the second epoch reuses every image")
        XCTAssertEqual(counts.map(\.misses), [8, 8, 8, 8, 8, 8, 0, 0, 0, 0, 0, 0])

        try assertSameParameters(plain.output, cached.output, step: 12, "f32 cache against no cache")
    }

    /// With 2 ranks each rank caches the images it saw, so the second epoch hits only part of
    /// the time. An f16 run stays close to the uncached one, and a run resumed with an empty
    /// cache ends bit for bit where an uninterrupted one does.
    func testF16CacheOnTwoRanksResumesExactly() throws {
        let plain = try train(ranks: 2, "plain-2", steps: 12, frozenEncoder + ["--vision-cache-mb", "0"])
        let whole = try train(ranks: 2, "whole-2", steps: 12, frozenEncoder)
        XCTAssertTrue(whole.log.contains("vision-feature cache | f16, 1024 MiB per rank (2048 MiB shared by 2 ranks"), whole.log)

        let counts = try cacheCounts(whole.output)
        XCTAssertEqual(counts.map { $0.hits + $0.misses }, Array(repeating: 8, count: 12), "8 lookups per step over both ranks")
        XCTAssertEqual(counts.prefix(6).map(\.hits), Array(repeating: 0, count: 6))
        XCTAssertGreaterThan(counts.suffix(6).reduce(0) { $0 + $1.hits }, 0, "\(counts)")

        let expected = try MetricsLine.read(output: plain.output)
        let found = try MetricsLine.read(output: whole.output)
        XCTAssertEqual(found.map(\.step), Array(1...12))
        for (one, other) in zip(expected, found) {
            let a = try XCTUnwrap(one.loss)
            let b = try XCTUnwrap(other.loss)
            XCTAssertEqual(b, a, accuracy: 1e-3 * abs(a), "step \(one.step): loss \(b) with the f16 cache, \(a) without")
        }

        let fixture = try TrainFixture.shared()
        let split = fixture.outputFolder("split-2")
        _ = try train(ranks: 2, "first", steps: 12, frozenEncoder + ["--stop-after", "8"], output: split)
        let second = try train(ranks: 2, "second", steps: 12, frozenEncoder + ["--resume", "auto"], output: split)
        XCTAssertTrue(second.log.contains("[resume] from \(split)/checkpoints/step_00000008 at step 8"), second.log)
        try assertSameParameters(whole.output, split, step: 12, "resumed f16 run against the uninterrupted one")
    }

    func testTrainableEncoderTurnsCacheOff() throws {
        let run = try train(ranks: nil, "encoder-trains", steps: 2, ["--trainable", "^img/", "--vision-cache-mb", "64"])
        XCTAssertTrue(
            run.log.contains("vision-feature cache | off: --trainable '^img/' trains 21 vision encoder parameters"), run.log)
        XCTAssertFalse(run.log.contains("[vision-cache]"), run.log)
        XCTAssertFalse(run.log.contains("| vision cache"), run.log)
        for line in try MetricsLine.read(output: run.output) {
            XCTAssertNil(line.values["vision_cache/hits"], "step \(line.step)")
        }
    }
}
