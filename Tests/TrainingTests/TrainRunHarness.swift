import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The small dataset and model that the end-to-end training tests share: made once per test
/// process with `palitrain make-demo-data` and `palitrain init --variant tiny` in a temporary
/// folder.
struct TrainFixture {
    let folder: String
    let data: String
    let tokenizer: String
    let checkpoint: String

    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// `.build/debug/palitrain`, which `scripts/test` builds before `swift test`.
    static let binary = repositoryRoot + "/.build/debug/palitrain"

    nonisolated(unsafe) private static var made: Result<TrainFixture, Error>?
    private static let lock = NSLock()

    /// The shared fixture, made on first use.
    static func shared() throws -> TrainFixture {
        lock.lock()
        defer { lock.unlock() }
        if made == nil { made = Result { try make() } }
        return try made!.get()
    }

    /// Removes the shared fixture's folder (called when the test class finishes).
    static func removeShared() {
        lock.lock()
        defer { lock.unlock() }
        if case .success(let fixture) = made { try? FileManager.default.removeItem(atPath: fixture.folder) }
        made = nil
    }

    private static func make() throws -> TrainFixture {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw HarnessError("palitrain binary not found at \(binary); run 'swift build --product palitrain' before 'swift test'")
        }
        let folder = NSTemporaryDirectory() + "palitrain-train-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let fixture = TrainFixture(
            folder: folder, data: folder + "/data", tokenizer: folder + "/data/tokenizer.model", checkpoint: folder + "/tiny.npz")

        let steps: [[String]] = [
            ["make-demo-data", "--out", fixture.data, "--train", "48", "--valid", "8"],
            ["init", "--variant", "tiny", "--tokenizer", fixture.tokenizer, "--out", fixture.checkpoint],
        ]
        for arguments in steps {
            let run = try TrainRun.start(ranks: nil, command: arguments, logPath: folder + "/setup.log")
            let result = run.wait(limit: 300)
            guard result.status == 0, !result.timedOut else {
                throw HarnessError("'palitrain \(arguments.joined(separator: " "))' failed (status \(result.status)):\n\(result.output)")
            }
        }
        return fixture
    }

    /// Returns a new folder path for one run's outputs.
    func outputFolder(_ name: String) -> String {
        folder + "/\(name)-\(UUID().uuidString.prefix(8))"
    }

    /// `train` arguments for the tiny model: every parameter trains, text length 48, one
    /// kernel thread per rank, and `extra` appended (later options win).
    func trainArguments(output: String, steps: Int, _ extra: [String] = []) -> [String] {
        [
            "train", "--data", data, "--checkpoint", checkpoint, "--tokenizer", tokenizer, "--output-dir", output,
            "--max-steps", "\(steps)", "--batch-size", "8", "--trainable", ".", "--max-len", "48", "--threads", "1",
            "--comm-timeout", "60",
        ] + extra
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One `palitrain` process, under `mpirun` or alone, whose standard output and error go to a
/// log file, so that a test can watch progress and signal it while it runs.
final class TrainRun {
    struct Result {
        let status: Int32
        let output: String
        let seconds: Double
        let timedOut: Bool
    }

    let process: Process
    let logPath: String
    let started = Date()

    private init(process: Process, logPath: String) {
        self.process = process
        self.logPath = logPath
    }

    /// Starts `palitrain COMMAND...` on `ranks` ranks with mpirun, or directly when `ranks` is nil.
    static func start(ranks: Int?, command: [String], logPath: String) throws -> TrainRun {
        let process = Process()
        if let ranks {
            guard let mpirun = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first(where: FileManager.default.isExecutableFile) else {
                throw HarnessError("mpirun not found in /usr/bin or /usr/local/bin; install openmpi-bin")
            }
            process.executableURL = URL(fileURLWithPath: mpirun)
            process.arguments = [
                "-n", "\(ranks)", "--oversubscribe", "--allow-run-as-root", "--mca", "btl", "self,vader",
                "--mca", "oob_tcp_if_include", "lo", "-x", "OPENBLAS_NUM_THREADS=1", TrainFixture.binary,
            ] + command
        } else {
            process.executableURL = URL(fileURLWithPath: TrainFixture.binary)
            process.arguments = command
        }

        var environment = ProcessInfo.processInfo.environment
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        environment["OPENBLAS_NUM_THREADS"] = "1"
        // Variables of an outer launcher would make a direct run look like an MPI rank.
        for name in ["OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"] {
            environment[name] = nil
        }
        process.environment = environment

        guard FileManager.default.createFile(atPath: logPath, contents: nil), let log = FileHandle(forWritingAtPath: logPath) else {
            throw HarnessError("cannot create the log file \(logPath)")
        }
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try log.close()
        return TrainRun(process: process, logPath: logPath)
    }

    var output: String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    /// Waits until `condition` holds, the process ends, or `limit` seconds pass since the start.
    /// Returns whether the condition held.
    func waitUntil(limit: Double, _ condition: () -> Bool) -> Bool {
        while process.isRunning && Date().timeIntervalSince(started) < limit {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return condition()
    }

    /// Waits for the process to end. After `limit` seconds from the start it kills the process
    /// and its children, and marks the result as timed out.
    func wait(limit: Double) -> Result {
        var timedOut = false
        while process.isRunning {
            if Date().timeIntervalSince(started) > limit {
                timedOut = true
                killTree()
                break
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: output, seconds: Date().timeIntervalSince(started), timedOut: timedOut)
    }

    /// Sends `signal` to the launched process (mpirun, or palitrain itself).
    func send(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// Process ids of the palitrain ranks that mpirun started (its children running palitrain).
    func rankProcesses() -> [pid_t] {
        Self.children(of: process.processIdentifier).filter { pid in
            let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")) ?? ""
            return link.hasSuffix("/palitrain")
        }
    }

    private func killTree() {
        let children = Self.children(of: process.processIdentifier)
        kill(process.processIdentifier, SIGKILL)
        for child in children { kill(child, SIGKILL) }
    }

    /// Direct children of `parent`, from the fourth field of /proc/PID/stat.
    static func children(of parent: pid_t) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { name -> pid_t? in
            guard let pid = pid_t(name), let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8) else { return nil }
            // The command name (field 2) is in parentheses and may contain spaces.
            guard let close = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, pid_t(fields[1]) == parent else { return nil }
            return pid
        }
    }
}

/// One line of `metrics.jsonl`.
struct MetricsLine {
    let step: Int
    let values: [String: Any]

    var loss: Double? { values["train/loss"] as? Double }
    var skipped: Bool { (values["train/skipped"] as? Int ?? 0) != 0 }
    var fallbackBuckets: Int { values["comm/fallback_buckets"] as? Int ?? 0 }

    /// Reads `OUTPUT/metrics.jsonl`; a missing file reads as no lines.
    static func read(output: String) throws -> [MetricsLine] {
        guard let text = try? String(contentsOfFile: output + "/metrics.jsonl", encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let step = object["step"] as? Int else {
                throw HarnessError("metrics.jsonl line is not a JSON object with an integer step: \(line)")
            }
            return MetricsLine(step: step, values: object)
        }
    }
}
