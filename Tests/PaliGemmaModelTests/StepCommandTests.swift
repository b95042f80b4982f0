import Checkpoint
import Foundation
import XCTest

/// Runs the built `palitrain step` and `palitrain init` end to end against the golden files.
final class StepCommandTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("palitrain-step-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    /// The palitrain executable that `swift build` puts next to the test bundle.
    private func palitrain() throws -> String {
        let products = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let executable = products.appendingPathComponent("palitrain").path
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw XCTSkip("\(executable) not built; run 'swift build --product palitrain' first")
        }
        return executable
    }

    /// Runs palitrain and returns its exit status and combined output.
    private func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try palitrain())
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    private func assertStepMatchesGolden(checkpoint: String, logitTolerance: Float, lossTolerance: Float, gradientTolerance: Float) throws {
        let out = scratch.appendingPathComponent("step-\(checkpoint)").path
        let result = try run([
            "step", "--checkpoint", Golden.directory.appendingPathComponent(checkpoint).path,
            "--batch", Golden.directory.appendingPathComponent("inputs.npz").path,
            "--out", out, "--lr", "0.1", "--trainable", "^llm/layers/attn/", "--grads", "all",
        ])
        XCTAssertEqual(result.status, 0, result.output)

        let actual = try NPZReader(path: out)
        let expected = try Golden.reader("expected.npz")
        assertClose(try actual.array("logits").floats(), try expected.array("logits").floats(), tolerance: logitTolerance, "logits")
        assertClose(try actual.array("loss").floats(), try expected.array("loss").floats(), tolerance: lossTolerance, "loss")
        assertClose(
            try actual.array("example_loss").floats(), try expected.array("example_loss").floats(), tolerance: lossTolerance,
            "example_loss")

        let gradientKeys = expected.keys.filter { $0.hasPrefix("grad/") }
        let sgdKeys = expected.keys.filter { $0.hasPrefix("sgd/") }
        XCTAssertEqual(gradientKeys.count, 32)
        XCTAssertEqual(sgdKeys.count, 32)
        for key in gradientKeys {
            assertClose(try actual.array(key).floats(), try expected.array(key).floats(), tolerance: gradientTolerance, key)
        }
        for key in sgdKeys {
            assertClose(try actual.array(key).floats(), try expected.array(key).floats(), tolerance: gradientTolerance, key)
        }
    }

    func testStepReproducesGoldenTensors() throws {
        try assertStepMatchesGolden(checkpoint: "params.npz", logitTolerance: 1e-4, lossTolerance: 1e-5, gradientTolerance: 2e-5)
    }

    func testStepOnDeflatedCheckpointMatchesGolden() throws {
        try assertStepMatchesGolden(
            checkpoint: "params_deflate.npz", logitTolerance: 1e-4, lossTolerance: 1e-5, gradientTolerance: 2e-5)
    }

    /// big_vision's f16 golden upcasts the f16 values to f32 first. `--grads all` makes every
    /// parameter trainable, and trainable parameters are held in f32, so the step sees the same
    /// values; a frozen f16 table would round the embedding scale to f16 as big_vision does.
    func testStepOnF16CheckpointMatchesF16Golden() throws {
        let out = scratch.appendingPathComponent("step-f16.npz").path
        let result = try run([
            "step", "--checkpoint", Golden.directory.appendingPathComponent("params_f16.npz").path,
            "--batch", Golden.directory.appendingPathComponent("inputs.npz").path, "--out", out, "--grads", "all",
        ])
        XCTAssertEqual(result.status, 0, result.output)
        let actual = try NPZReader(path: out)
        let expected = try Golden.reader("expected.npz")
        assertClose(try actual.array("logits").floats(), try expected.array("f16/logits").floats(), tolerance: 1e-4, "f16 logits")
        assertClose(try actual.array("loss").floats(), try expected.array("f16/loss").floats(), tolerance: 1e-5, "f16 loss")
    }

    func testInitWritesTinyCheckpointThatStepLoads() throws {
        let checkpoint = scratch.appendingPathComponent("tiny.npz").path
        let initResult = try run(["init", "--variant", "tiny", "--dtype", "bf16", "--out", checkpoint, "--seed", "3"])
        XCTAssertEqual(initResult.status, 0, initResult.output)
        XCTAssertTrue(initResult.output.contains("97376 parameters"), initResult.output)

        let reader = try NPZReader(path: checkpoint)
        XCTAssertEqual(reader.keys.count, 32)
        XCTAssertEqual(try reader.header("llm/layers/attn/q_einsum/w").dtype, .bfloat16)

        let out = scratch.appendingPathComponent("tiny-step.npz").path
        let stepResult = try run([
            "step", "--checkpoint", checkpoint, "--batch", Golden.directory.appendingPathComponent("inputs.npz").path,
            "--out", out, "--sgd-params", "trainable",
        ])
        XCTAssertEqual(stepResult.status, 0, stepResult.output)
        let loss = try NPZReader(path: out).array("loss").floats()[0]
        XCTAssertTrue(loss.isFinite && loss > 0, "loss \(loss)")
    }

    func testInitRejectsUnknownVariant() throws {
        let result = try run(["init", "--variant", "huge", "--out", scratch.appendingPathComponent("x.npz").path])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.output.contains("unknown model variant 'huge'"), result.output)
        XCTAssertTrue(result.output.contains("pt-224"), result.output)
    }
}
