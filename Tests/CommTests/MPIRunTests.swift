import Foundation
import XCTest

/// Runs `palitrain comm-check` under a real `mpirun` with 2 and 4 ranks, with and without
/// injected faults. Every run has a wall-clock limit, so a hang fails the test instead of
/// blocking the suite.
///
/// Needs Open MPI's `mpirun` and the built binary `.build/debug/palitrain` (`swift test` builds
/// it with the tests).
final class MPIRunTests: XCTestCase {
    struct RunResult {
        let status: Int32
        let output: String
        let seconds: Double
        let timedOut: Bool
    }

    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private func binary() throws -> URL {
        let url = Self.repositoryRoot.appendingPathComponent(".build/debug/palitrain")
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            XCTFail("palitrain binary not found at \(url.path); run 'swift build --product palitrain' before 'swift test'")
            throw CocoaError(.fileNoSuchFile)
        }
        return url
    }

    private func mpirun() throws -> URL {
        for path in ["/usr/bin/mpirun", "/usr/local/bin/mpirun"] where FileManager.default.isExecutableFile(atPath: path) {
            return URL(fileURLWithPath: path)
        }
        XCTFail("mpirun not found in /usr/bin or /usr/local/bin; install openmpi-bin")
        throw CocoaError(.fileNoSuchFile)
    }

    /// Runs `palitrain comm-check` on `ranks` ranks (or without mpirun when `ranks` is nil)
    /// and kills the run after `limit` seconds.
    private func commCheck(
        ranks: Int?, _ arguments: [String], mpirunOptions: [String] = [], limit: Double = 180
    ) throws -> RunResult {
        let process = Process()
        let palitrain = try binary()
        if let ranks {
            process.executableURL = try mpirun()
            process.arguments = [
                "-n", "\(ranks)", "--oversubscribe", "--allow-run-as-root",
                "--mca", "btl", "self,vader", "--mca", "oob_tcp_if_include", "lo",
                "-x", "OPENBLAS_NUM_THREADS=1",
            ] + mpirunOptions + [palitrain.path, "comm-check"] + arguments
        } else {
            process.executableURL = palitrain
            process.arguments = ["comm-check"] + arguments
        }
        var environment = ProcessInfo.processInfo.environment
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        // Variables of an outer launcher would make a direct run look like an MPI rank.
        for name in ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"] { environment[name] = nil }
        process.environment = environment

        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let collected = OutputCollector()
        pipe.fileHandleForReading.readabilityHandler = { handle in collected.append(handle.availableData) }

        let start = Date()
        try process.run()
        var timedOut = false
        while process.isRunning {
            if Date().timeIntervalSince(start) > limit {
                timedOut = true
                process.terminate()
                Thread.sleep(forTimeInterval: 2)
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                break
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        process.waitUntilExit()
        pipe.fileHandleForReading.readabilityHandler = nil
        collected.append(pipe.fileHandleForReading.readDataToEndOfFile())
        return RunResult(status: process.terminationStatus, output: collected.text, seconds: Date().timeIntervalSince(start), timedOut: timedOut)
    }

    private func assertPassed(_ result: RunResult, ranks: Int, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(result.timedOut, "comm-check hung:\n\(result.output)", file: file, line: line)
        XCTAssertEqual(result.status, 0, "comm-check failed:\n\(result.output)", file: file, line: line)
        XCTAssertTrue(result.output.contains("[comm-check] passed on \(ranks) rank"), result.output, file: file, line: line)
        for mode in ["zstd-fp16", "fp16", "none"] {
            XCTAssertTrue(result.output.contains("[comm-check] \(mode): max error"), "\(mode) missing:\n\(result.output)", file: file, line: line)
        }
    }

    // MARK: - Passing runs

    func testCommCheckPassesOnTwoRanks() throws {
        let result = try commCheck(ranks: 2, [])
        assertPassed(result, ranks: 2)
        XCTAssertTrue(result.output.contains("launcher: Open MPI (mpirun)"), result.output)
        XCTAssertTrue(result.output.contains("rank layout: 2 ranks on 1 host"), result.output)
        XCTAssertTrue(result.output.contains("overflow, fallback-f32: every rank decided fallback 1, non-finite 0, skipped false"), result.output)
    }

    func testCommCheckPassesOnFourRanks() throws {
        let result = try commCheck(ranks: 4, ["--elements", "30011", "--bucket-bytes", "40000"])
        assertPassed(result, ranks: 4)
        XCTAssertTrue(result.output.contains("NaN, fallback-f32: every rank decided fallback 1, non-finite 1, skipped false"), result.output)
        XCTAssertTrue(result.output.contains("NaN, skip-step: every rank decided fallback 0, non-finite 0, skipped true"), result.output)
        XCTAssertTrue(result.output.contains("replica check names rank 3 when its parameters differ: ok"), result.output)
        for rank in 0..<4 {
            XCTAssertTrue(result.output.contains("  rank \(rank) sent "), "bytes of rank \(rank) missing:\n\(result.output)")
        }
    }

    func testCommCheckWithoutLauncherRunsSingleProcess() throws {
        let result = try commCheck(ranks: nil, ["--elements", "5000"])
        assertPassed(result, ranks: 1)
        XCTAssertTrue(result.output.contains("running as a single process without MPI"), result.output)
    }

    // MARK: - Faults

    func testCorruptFrameStopsRunNamingSenderAndBucket() throws {
        let result = try commCheck(ranks: 4, ["--inject", "corrupt-frame", "--inject-rank", "2", "--comm-timeout", "60"], limit: 120)
        XCTAssertFalse(result.timedOut, "the run hung:\n\(result.output)")
        XCTAssertNotEqual(result.status, 0, result.output)
        // Rank 2 sends its first ring frame to rank 3.
        XCTAssertTrue(
            result.output.contains("rank 3: error: invalid gradient frame from rank 2 in bucket 0: payload checksum"), result.output
        )
        XCTAssertFalse(result.output.contains("[comm-check] passed"), result.output)
    }

    func testKilledRankEndsRunQuickly() throws {
        let result = try commCheck(ranks: 4, ["--inject", "die-at", "5", "--comm-timeout", "60"], limit: 120)
        XCTAssertFalse(result.timedOut, "the run hung:\n\(result.output)")
        XCTAssertNotEqual(result.status, 0, result.output)
        // Open MPI's mpirun notices the killed process and ends the others; the 60 s wait
        // timeout would end them later if it did not.
        XCTAssertLessThan(result.seconds, 60, result.output)
        XCTAssertTrue(result.output.contains("process rank 1 with PID"), "mpirun did not report the killed rank:\n\(result.output)")
        XCTAssertTrue(result.output.contains("signal 9"), result.output)
        XCTAssertFalse(result.output.contains("[comm-check] passed"), result.output)
    }

    /// With `--enable-recovery` mpirun keeps the job running after a rank dies, so only the
    /// wait timeout ends the surviving ranks. (mpirun then exits 0 even after MPI_Abort, so
    /// the check is on the ranks' messages.)
    func testWaitTimeoutEndsRanksWhenLauncherKeepsJob() throws {
        let result = try commCheck(
            ranks: 4, ["--inject", "die-at", "5", "--comm-timeout", "4"], mpirunOptions: ["--enable-recovery"], limit: 120
        )
        XCTAssertFalse(result.timedOut, "the run hung:\n\(result.output)")
        XCTAssertTrue(result.output.contains("error: timed out after 4.00 s waiting for"), result.output)
        XCTAssertTrue(result.output.contains("in gradient bucket"), result.output)
        XCTAssertLessThan(result.seconds, 60, result.output)
        XCTAssertFalse(result.output.contains("[comm-check] passed"), result.output)
    }
}

/// Output bytes gathered from a pipe's reader thread.
private final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()

    func append(_ chunk: Data) {
        lock.lock()
        data.append(chunk)
        lock.unlock()
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }
}
