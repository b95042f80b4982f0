import Checkpoint
import Foundation
import XCTest

/// `palitrain decode` run on the golden inputs, compared with big_vision's decode.
final class DecodeCommandTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("palitrain-decode-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    func testDecodeCommandMatchesGolden() throws {
        let expected = try Golden.reader("expected.npz")
        let cases: [(arguments: [String], golden: String, tolerance: Float)] = [
            ([], "decode", 1e-4),
            (["--prefix", "decode_batch"], "decode_batch", 1e-4),
            (["--cache-dtype", "bf16"], "decode_bf16cache", 1e-3),
            (["--recompute"], "decode", 1e-4),
        ]
        for (arguments, golden, tolerance) in cases {
            let out = directory.appendingPathComponent("\(golden).npz").path
            try run(["--max-new-tokens", "8", "--out", out] + arguments)
            let result = try NPZReader(path: out)
            let tokens = try expected.array(golden + "/tokens")
            let label = arguments.joined(separator: " ")

            let batchSize = tokens.shape.count == 1 ? 1 : tokens.shape[0]
            XCTAssertEqual(try result.array("tokens").shape, [batchSize, 8], label)
            XCTAssertEqual(try result.array("tokens").int32s(), try tokens.int32s(), label)
            XCTAssertEqual(try result.array("lengths").int32s(), Array(repeating: 8, count: batchSize), label)
            XCTAssertEqual(try result.array("logits").shape, [batchSize, 8, 1300], label)
            let logitsKey = arguments == ["--recompute"] ? "decode/recompute_logits" : golden + "/logits"
            assertClose(try result.array("logits").floats(), try expected.array(logitsKey).floats(), tolerance: tolerance, label)
        }
    }

    /// 503 is example 0's first token: as EOS it ends that row after one token, whose later
    /// columns are zero, while example 1 keeps its 8 golden tokens.
    func testStopAtEOSPadsFinishedRows() throws {
        let out = directory.appendingPathComponent("stopped.npz").path
        try run(["--prefix", "decode_batch", "--max-new-tokens", "8", "--out", out, "--stop-at-eos", "--eos-id", "503"])
        let result = try NPZReader(path: out)
        let golden = try Golden.reader("expected.npz").array("decode_batch/tokens").int32s()

        XCTAssertEqual(try result.array("lengths").int32s(), [1, 8])
        XCTAssertEqual(try result.array("tokens").int32s(), [503] + Array(repeating: 0, count: 7) + Array(golden[8..<16]))
        let logProbs = try result.array("log_probs").floats()
        XCTAssertLessThan(logProbs[0], 0)
        XCTAssertEqual(Array(logProbs[1..<8]), Array(repeating: 0, count: 7))
    }

    func testMissingPromptArraysNameThePrefixOption() throws {
        XCTAssertThrowsError(try run(["--prefix", "nothing", "--max-new-tokens", "2", "--out", directory.appendingPathComponent("x.npz").path])) { error in
            XCTAssertTrue("\(error)".contains("has no array 'nothing_text'"), "\(error)")
            XCTAssertTrue("\(error)".contains("--prefix decode_batch"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent("x.npz").path))
    }

    // MARK: - Helpers

    /// Runs `palitrain decode` on the golden checkpoint and inputs; throws with stderr on failure.
    private func run(_ arguments: [String]) throws {
        let productsFolder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let executable = productsFolder.appendingPathComponent("palitrain").path
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw XCTSkip("\(executable) not built; run 'swift build --product palitrain' first")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [
            "decode", "--checkpoint", Golden.directory.appendingPathComponent("params.npz").path,
            "--batch", Golden.directory.appendingPathComponent("inputs.npz").path,
        ] + arguments
        let errors = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CommandFailure(message: "palitrain decode \(arguments.joined(separator: " ")) exited with status \(process.terminationStatus): \(errorText)")
        }
    }

    private struct CommandFailure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}
