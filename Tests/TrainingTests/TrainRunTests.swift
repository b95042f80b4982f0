import Checkpoint
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Runs `palitrain train` as a user does, alone and under a real `mpirun`, on the tiny model
/// and a 48-example demo dataset, with faults planted through `--inject`. Every run has a
/// wall-clock limit, so a hang fails its test instead of blocking the suite.
///
/// Needs Open MPI's `mpirun` and `.build/debug/palitrain` (built by `scripts/test`).
final class TrainRunTests: XCTestCase {
    /// Wall-clock limit of one run. A 10-step run of 4 ranks takes about 5 s on 2 busy cores.
    private let limit: Double = 240

    override class func tearDown() {
        TrainFixture.removeShared()
        super.tearDown()
    }

    private func train(
        ranks: Int?, _ name: String, steps: Int, _ extra: [String] = []
    ) throws -> (output: String, result: TrainRun.Result) {
        let fixture = try TrainFixture.shared()
        let output = fixture.outputFolder(name)
        let run = try TrainRun.start(
            ranks: ranks, command: fixture.trainArguments(output: output, steps: steps, extra), logPath: output + ".log")
        let result = run.wait(limit: limit)
        XCTAssertFalse(result.timedOut, "\(name) hung:\n\(result.output)")
        return (output, result)
    }

    private func assertSucceeded(_ result: TrainRun.Result, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(result.timedOut, "the run hung:\n\(result.output)", file: file, line: line)
        XCTAssertEqual(result.status, 0, "the run failed:\n\(result.output)", file: file, line: line)
    }

    /// Reads the arrays of `params.npz` in the checkpoint folder of `step`, as raw bytes by key.
    private func parameterBytes(output: String, step: Int) throws -> [String: [UInt8]] {
        let path = output + "/checkpoints/" + String(format: "step_%08d", step) + "/params.npz"
        let reader = try NPZReader(path: path)
        var arrays: [String: [UInt8]] = [:]
        for key in reader.keys {
            arrays[key] = try reader.array(key).withUnsafeBytes { Array($0) }
        }
        return arrays
    }

    private func latestPointer(output: String) -> String? {
        (try? String(contentsOfFile: output + "/checkpoints/latest", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: - Numerics across world sizes and resumes

    func testLossSameOnOneAndFourRanks() throws {
        let single = try train(ranks: nil, "single", steps: 10, ["--grad-compression", "none"])
        assertSucceeded(single.result)
        let four = try train(ranks: 4, "four", steps: 10, ["--grad-compression", "none"])
        assertSucceeded(four.result)

        let expected = try MetricsLine.read(output: single.output)
        let found = try MetricsLine.read(output: four.output)
        XCTAssertEqual(expected.map(\.step), Array(1...10))
        XCTAssertEqual(found.map(\.step), Array(1...10))
        for (one, other) in zip(expected, found) {
            let a = try XCTUnwrap(one.loss, "step \(one.step) has no loss on 1 rank")
            let b = try XCTUnwrap(other.loss, "step \(other.step) has no loss on 4 ranks")
            XCTAssertEqual(a, b, accuracy: 1e-5 * abs(a), "step \(one.step): loss \(a) on 1 rank, \(b) on 4 ranks")
        }
        // The loss must move, or equal losses would prove nothing about the updates.
        XCTAssertNotEqual(expected.first?.loss, expected.last?.loss)
    }

    func testResumeIsBitExactAndAcceptsTwoRanks() throws {
        let settings = ["--grad-compression", "zstd-fp16", "--save-every", "3", "--optimizer", "adamw", "--lr", "0.001"]
        let whole = try train(ranks: 4, "whole", steps: 6, settings)
        assertSucceeded(whole.result)

        let fixture = try TrainFixture.shared()
        let split = fixture.outputFolder("split")
        let arguments = fixture.trainArguments(output: split, steps: 6, settings)
        let first = try TrainRun.start(ranks: 4, command: arguments + ["--stop-after", "3"], logPath: split + "-1.log").wait(limit: limit)
        assertSucceeded(first)
        XCTAssertTrue(first.output.contains("[train] stopped at step 3 of 6"), first.output)
        // A stop at a scheduled checkpoint writes that checkpoint once.
        XCTAssertEqual(first.output.components(separatedBy: "[checkpoint] step 3 written").count - 1, 1, first.output)
        XCTAssertEqual(latestPointer(output: split), "step_00000003")

        let second = try TrainRun.start(ranks: 4, command: arguments + ["--resume", "auto"], logPath: split + "-2.log").wait(limit: limit)
        assertSucceeded(second)
        XCTAssertTrue(second.output.contains("[resume] from \(split)/checkpoints/step_00000003 at step 3"), second.output)

        let expected = try parameterBytes(output: whole.output, step: 6)
        let resumed = try parameterBytes(output: split, step: 6)
        XCTAssertEqual(Set(expected.keys), Set(resumed.keys))
        XCTAssertFalse(expected.isEmpty)
        for key in expected.keys.sorted() {
            XCTAssertTrue(expected[key] == resumed[key], "'\(key)' differs between the whole run and the resumed one")
        }
        XCTAssertEqual(try MetricsLine.read(output: split).map(\.step), Array(1...6))

        // The same checkpoint resumed by 2 ranks: same global batch, 4 examples per rank.
        let twoRanks = try train(
            ranks: 2, "two-ranks", steps: 6, settings + ["--resume", split + "/checkpoints/step_00000003"])
        assertSucceeded(twoRanks.result)
        XCTAssertTrue(twoRanks.result.output.contains("(written by 4 ranks)"), twoRanks.result.output)
        let losses = try MetricsLine.read(output: twoRanks.output)
        XCTAssertEqual(losses.map(\.step), [4, 5, 6])
        for line in losses {
            XCTAssertTrue(line.loss?.isFinite == true, "step \(line.step) of the 2-rank resume has loss \(String(describing: line.loss))")
        }
    }

    // MARK: - Replicas

    func testReplicaCheckEveryStepPasses() throws {
        let run = try train(ranks: 4, "replicas", steps: 4, ["--check-replicas-every", "1"])
        assertSucceeded(run.result)
        XCTAssertFalse(run.result.output.contains("diverged"), run.result.output)
        XCTAssertTrue(run.result.output.contains("[train] done: 4 steps"), run.result.output)
    }

    func testPerturbedReplicaStopsRunNamingRank() throws {
        let run = try train(ranks: 4, "perturbed", steps: 5, ["--check-replicas-every", "1", "--inject", "perturb-params:2@2"])
        XCTAssertNotEqual(run.result.status, 0, run.result.output)
        XCTAssertTrue(run.result.output.contains("[fault] rank 2 raised parameter"), run.result.output)
        XCTAssertTrue(
            run.result.output.contains("the replicas diverged after step 2: rank 2 holds parameters different from the 3 agreeing ranks (ranks 0, 1, 3)"),
            run.result.output)
        XCTAssertFalse(run.result.output.contains("step 3/5"), "the run went on after the check failed:\n\(run.result.output)")
        XCTAssertFalse(run.result.output.contains("[train] done"), run.result.output)
    }

    // MARK: - Numerical faults

    func testOverflowFallsBackToF32AndContinues() throws {
        let run = try train(ranks: 4, "overflow", steps: 4, [
            "--grad-compression", "zstd-fp16", "--check-replicas-every", "1", "--max-grad-norm", "1",
            "--inject", "overflow-grad:1@2",
        ])
        assertSucceeded(run.result)
        let output = run.result.output
        XCTAssertTrue(output.contains("[fault] rank 1 set gradient"), output)
        XCTAssertTrue(output.contains("the fp16 cast overflowed or hit NaN on some rank; redoing the bucket in f32"), output)
        XCTAssertTrue(output.contains("[train] done: 4 steps"), output)

        let lines = try MetricsLine.read(output: run.output)
        XCTAssertEqual(lines.map(\.step), [1, 2, 3, 4])
        XCTAssertEqual(lines.map(\.fallbackBuckets).map { $0 > 0 }, [false, true, false, false])
        XCTAssertEqual(lines.map(\.skipped), [false, false, false, false], "the f32 fallback must apply the update")
        // The injected value is 1e6 after the mean over ranks, so the norm shows it arrived whole.
        let norm = try XCTUnwrap(lines[1].values["train/grad_norm"] as? Double)
        XCTAssertGreaterThan(norm, 9e5)
    }

    func testNaNGradientSkipsStepOnEveryRank() throws {
        let run = try train(ranks: 4, "nan", steps: 4, ["--check-replicas-every", "1", "--inject", "nan-grad:3@2"])
        assertSucceeded(run.result)
        let output = run.result.output
        XCTAssertTrue(output.contains("[fault] rank 3 set gradient"), output)
        XCTAssertTrue(output.contains("[train] step 2: non-finite gradients"), output)
        XCTAssertTrue(output.contains("the update is skipped on every rank"), output)
        // Had any rank applied the update, the replica check after step 2 would have failed.
        XCTAssertTrue(output.contains("[train] done: 4 steps"), output)

        let lines = try MetricsLine.read(output: run.output)
        XCTAssertEqual(lines.map(\.skipped), [false, true, false, false])
        for line in lines {
            XCTAssertTrue(line.loss?.isFinite == true, "step \(line.step): loss \(String(describing: line.loss))")
        }
    }

    // MARK: - Communication faults

    func testCorruptFrameStopsRunNamingRankAndBucket() throws {
        let run = try train(ranks: 4, "corrupt", steps: 4, ["--inject", "corrupt-frame:2"])
        XCTAssertNotEqual(run.result.status, 0, run.result.output)
        XCTAssertLessThan(run.result.seconds, 60, "a corrupted frame must stop the run at once:\n\(run.result.output)")
        // Rank 2 sends its first ring frame to rank 3.
        XCTAssertTrue(
            run.result.output.contains("rank 3: error: invalid gradient frame from rank 2 in bucket 0: payload checksum"),
            run.result.output)
        XCTAssertFalse(run.result.output.contains("step 1/4"), run.result.output)
    }

    func testKilledRankEndsRunAndResumes() throws {
        let fixture = try TrainFixture.shared()
        let output = fixture.outputFolder("killed")
        let arguments = fixture.trainArguments(output: output, steps: 6, ["--save-every", "3"])
        let killed = try TrainRun.start(ranks: 4, command: arguments + ["--inject", "die:1@5"], logPath: output + "-1.log")
            .wait(limit: limit)
        XCTAssertFalse(killed.timedOut, killed.output)
        XCTAssertNotEqual(killed.status, 0, killed.output)
        XCTAssertTrue(killed.output.contains("[fault] rank 1 (pid"), killed.output)
        // mpirun notices the dead rank and ends the others; the 60 s --comm-timeout would end
        // them later if it did not.
        XCTAssertLessThan(killed.seconds, 60, killed.output)
        XCTAssertEqual(latestPointer(output: output), "step_00000003")
        XCTAssertEqual(try MetricsLine.read(output: output).map(\.step), [1, 2, 3, 4])

        let resumed = try TrainRun.start(ranks: 4, command: arguments + ["--resume", "auto"], logPath: output + "-2.log")
            .wait(limit: limit)
        assertSucceeded(resumed)
        XCTAssertTrue(resumed.output.contains("[metrics] removed 1 line after step 3"), resumed.output)
        XCTAssertEqual(try MetricsLine.read(output: output).map(\.step), Array(1...6), "each step must be logged once")
    }

    // MARK: - Stop signals

    /// Starts a long run, waits until it logged step 2, lets `stop` signal it, and checks that
    /// every rank exits 0 after checkpointing the step it reached.
    private func checkStopsCleanly(_ name: String, stop: (TrainRun) -> Void) throws {
        let fixture = try TrainFixture.shared()
        let output = fixture.outputFolder(name)
        let run = try TrainRun.start(
            ranks: 4, command: fixture.trainArguments(output: output, steps: 1000), logPath: output + ".log")
        let reachedStep2 = run.waitUntil(limit: limit) { ((try? MetricsLine.read(output: output)) ?? []).count >= 2 }
        XCTAssertTrue(reachedStep2, "the run did not reach step 2:\n\(run.output)")
        stop(run)
        let result = run.wait(limit: limit)
        assertSucceeded(result)

        let lines = try MetricsLine.read(output: output)
        let reached = try XCTUnwrap(lines.last?.step)
        XCTAssertLessThan(reached, 1000, "the run finished before the signal arrived")
        XCTAssertTrue(result.output.contains("[train] stop requested after step \(reached)"), result.output)
        XCTAssertTrue(result.output.contains("[train] stopped at step \(reached) of 1000"), result.output)
        let folder = String(format: "step_%08d", reached)
        XCTAssertEqual(latestPointer(output: output), folder)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(output)/checkpoints/\(folder)/COMPLETE"))
        XCTAssertEqual(try parameterBytes(output: output, step: reached).count, try NPZReader(path: fixture.checkpoint).keys.count)
    }

    func testSIGUSR1ToMpirunCheckpointsAndExitsZero() throws {
        try checkStopsCleanly("sigusr1") { run in run.send(SIGUSR1) }
    }

    func testSIGTERMToEveryRankCheckpointsAndExitsZero() throws {
        try checkStopsCleanly("sigterm") { run in
            // srun delivers SIGTERM to every task itself, not through mpirun.
            let ranks = run.rankProcesses()
            XCTAssertEqual(ranks.count, 4, "expected 4 palitrain processes under mpirun, found \(ranks)")
            for pid in ranks { kill(pid, SIGTERM) }
        }
    }
}
