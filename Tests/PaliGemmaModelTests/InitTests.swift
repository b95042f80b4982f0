@testable import PaliGemmaModel
import TensorCore
import XCTest

final class InitTests: XCTestCase {
    func testValuesDoNotDependOnChunkingOrDType() throws {
        let config = try PaliGemmaInit.variant(named: "tiny")
        let spec = ParameterTable.specs(for: config).first { $0.name == ParameterTable.Name.gating }!
        var chunks = 0
        var streamed: [UInt8] = []
        PaliGemmaInit.generate(spec, seed: 5, dtype: .f32) { bytes in
            chunks += 1
            streamed.append(contentsOf: bytes)
        }
        XCTAssertEqual(chunks, 2, "one chunk per layer of a stacked array")
        let whole = PaliGemmaInit.array(spec, seed: 5, dtype: .f32).toTensor().scalars
        let fromStream = try StoredArray(dtype: .f32, shape: spec.shape, bytes: streamed).toTensor().scalars
        XCTAssertEqual(whole, fromStream)

        let half = PaliGemmaInit.array(spec, seed: 5, dtype: .bf16).toTensor().scalars
        XCTAssertEqual(half, whole.map { Kernels.roundToDType($0, .bf16) })
        XCTAssertNotEqual(PaliGemmaInit.array(spec, seed: 6, dtype: .f32).toTensor().scalars, whole)
    }

    func testInitialisersHaveTheDocumentedStatistics() throws {
        let config = try PaliGemmaInit.variant(named: "demo", vocabSize: 2000)
        let arrays = PaliGemmaInit.arrays(for: config, seed: 3)
        let embedding = arrays[ParameterTable.Name.embedding]!.toTensor().scalars
        let mean = embedding.reduce(0, +) / Float(embedding.count)
        let std = (embedding.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(embedding.count)).squareRoot()
        XCTAssertEqual(mean, 0, accuracy: 0.002)
        XCTAssertEqual(std, 1 / Float(256).squareRoot(), accuracy: 0.002)
        XCTAssertEqual(Set(arrays[ParameterTable.Name.layerNorm0Scale]!.toTensor().scalars), [1])
        XCTAssertEqual(Set(arrays[ParameterTable.Name.finalNorm]!.toTensor().scalars), [0])
    }

    func testDemoModelLearnsOneBatch() throws {
        // A freshly initialised tiny model must be able to fit one batch: the loss falls steadily.
        let config = try PaliGemmaInit.variant(named: "tiny", vocabSize: 300)
        let model = PaliGemma(parameters: try ParameterStore(
            config: config, arrays: PaliGemmaInit.arrays(for: config, seed: 9), trainable: ".*"))
        var random = TestRandom(seed: 4)
        let batch = try PaliGemmaBatch(
            images: random.tensor([2, 28, 28, 3]),
            text: [2, 7, 108, 40, 41, 1, 2, 9, 108, 50, 1, 0],
            maskAR: [0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1],
            maskLoss: [0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0])
        let first = try model.forwardBackward(batch).loss
        var last = first
        for _ in 0..<30 {
            model.parameters.applySGD(model.gradients, learningRate: 0.5)
            last = try model.forwardBackward(batch).loss
        }
        XCTAssertLessThan(last, first * 0.2, "loss went from \(first) to \(last)")
    }
}
