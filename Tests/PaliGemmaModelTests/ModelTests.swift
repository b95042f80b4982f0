@testable import PaliGemmaModel
import TensorCore
import XCTest

/// Model-level behaviour on the golden batch: equivalences between modes of the same pass.
final class ModelTests: XCTestCase {
    private func gradients(_ model: PaliGemma) -> [String: [Float]] {
        var result: [String: [Float]] = [:]
        for name in model.gradients.names { result[name] = model.gradients[name]!.snapshot().scalars }
        return result
    }

    func testSupervisedRowsMatchAllRows() throws {
        let batch = try Golden.batch()
        let model = try Golden.model(trainable: "^llm/")
        let all = try model.forwardBackward(batch, logits: .allText)
        let allGradients = gradients(model)
        let supervised = try model.forwardBackward(batch, logits: .supervised)
        XCTAssertEqual(supervised.logits.shape, [10, 1300], "5 suffix tokens + EOS and 3 + EOS")
        XCTAssertEqual(supervised.loss, all.loss, accuracy: 1e-6)
        // With `.supervised` the last decoder block runs only on the positions that get logits,
        // so its products have other shapes and round differently (by about 1e-7 here).
        for (name, values) in gradients(model) {
            assertClose(values, allGradients[name]!, tolerance: 1e-6, name)
        }
    }

    func testRematerializationGivesSameGradients() throws {
        let batch = try Golden.batch()
        let model = try Golden.model(trainable: ".*")
        try model.forwardBackward(batch)
        let stored = gradients(model)
        model.rematerialize = true
        try model.forwardBackward(batch)
        for (name, values) in gradients(model) {
            assertClose(values, stored[name]!, tolerance: 0, name)
        }
    }

    func testAccumulateAddsAndLossScaleScales() throws {
        let batch = try Golden.batch()
        let model = try Golden.model(trainable: "^llm/layers/attn/|^img/head/")
        try model.forwardBackward(batch)
        let once = gradients(model)
        try model.forwardBackward(batch, accumulate: true, lossScale: 0.5)
        for (name, values) in gradients(model) {
            assertClose(values, once[name]!.map { $0 * 1.5 }, tolerance: 1e-6, name)
        }
        try model.forwardBackward(batch)
        for (name, values) in gradients(model) {
            assertClose(values, once[name]!, tolerance: 0, "\(name) after a fresh pass")
        }
    }

    /// Padding comes last with mask_ar 1, so masking it as keys changes no supervised position.
    func testInputMaskLeavesTheLossUnchanged() throws {
        let model = try Golden.model(trainable: "^$")
        let plain = try Golden.batch()
        let inputs = try Golden.reader("inputs.npz")
        let masked = try PaliGemmaBatch(
            images: plain.images, text: plain.text, maskAR: plain.maskAR, maskLoss: plain.maskLoss,
            maskInput: inputs.array("mask_input").int32s())
        XCTAssertTrue(masked.maskInput!.contains(0), "the golden batch has padding")
        let expected = try Golden.reader("expected.npz")
        let output = try model.forward(masked, logits: .supervised)
        assertClose([output.loss], try expected.array("loss").floats(), tolerance: 1e-5, "loss with mask_input")
        assertClose(output.exampleLoss, try expected.array("example_loss").floats(), tolerance: 1e-5, "example_loss with mask_input")
    }

    func testFrozenTowersGetNoGradientBuffers() throws {
        let model = try Golden.model(trainable: "^llm/layers/attn/")
        XCTAssertNil(model.gradients["img/head/kernel"])
        XCTAssertNil(model.gradients["llm/embedder/input_embedding"])
        XCTAssertFalse(model.parameters.anyTrainable(prefix: "img/"))
        XCTAssertEqual(model.parameters.dtype(of: "img/head/kernel"), .f32)
    }

    func testPrefixMaskFollowsCumulativeMaskAR() {
        // Two prefix tokens (mask_ar 0), then three causal ones (mask_ar 1), the last of them padding.
        let mask = PrefixLMMask.make(maskAR: [0, 0, 1, 1, 1], valid: [true, true, true, true, false], batch: 1, length: 5)
        let expected: [[Bool]] = [
            [true, true, false, false, false],
            [true, true, false, false, false],
            [true, true, true, false, false],
            [true, true, true, true, false],
            [false, false, false, false, false],
        ]
        for i in 0..<5 {
            for j in 0..<5 {
                XCTAssertEqual(mask.isAllowed(example: 0, query: i, key: j), expected[i][j], "query \(i) key \(j)")
            }
        }
    }

    func testBatchValidationNamesTheField() throws {
        let images = Tensor(zeros: [2, 28, 28, 3])
        XCTAssertThrowsError(try PaliGemmaBatch(images: images, text: [2, 5, 1], maskAR: [0, 0, 1], maskLoss: [0, 1, 1])) { error in
            XCTAssertTrue("\(error)".contains("'text'"), "\(error)")
        }
        XCTAssertThrowsError(try PaliGemmaBatch(images: images, text: [2, 5, 2, 5], maskAR: [0, 2, 0, 0], maskLoss: [0, 1, 0, 1])) { error in
            XCTAssertEqual(error as? PaliGemmaError, .invalidBatch(field: "maskAR", reason: "values must be 0 or 1, found 2"))
        }
        let model = try Golden.model(trainable: "^$")
        let outside = try PaliGemmaBatch(images: images, text: [2, 1300, 2, 5], maskAR: [0, 1, 0, 1], maskLoss: [0, 1, 0, 1])
        XCTAssertThrowsError(try model.forward(outside)) { error in
            XCTAssertTrue("\(error)".contains("1300"), "\(error)")
        }
        let wrongSize = try PaliGemmaBatch(images: Tensor(zeros: [2, 14, 14, 3]), text: [2, 5, 2, 5], maskAR: [0, 1, 0, 1], maskLoss: [0, 1, 0, 1])
        XCTAssertThrowsError(try model.forward(wrongSize))
    }
}

/// The gradient-ready hook that lets an all-reduce overlap the backward pass.
final class GradientReadyTests: XCTestCase {
    func testEverySliceIsReportedOnceAndFinal() throws {
        let model = try Golden.model(trainable: ".*")
        let depth = (vision: model.config.vision.depth, llm: model.config.llm.depth)
        var reported: [GradientReady] = []
        var valuesAtReport: [String: [Float]] = [:]
        model.onGradientReady = { ready in
            reported.append(ready)
            let buffer = model.gradients[ready.name]!
            let values = ready.layer.map { buffer.slice($0).snapshot() } ?? buffer.snapshot()
            valuesAtReport["\(ready.name)#\(ready.layer ?? -1)"] = values.scalars
        }
        try model.forwardBackward(Golden.batch())
        model.onGradientReady = nil

        var expected: Set<String> = []
        for spec in ParameterTable.specs(for: model.config) {
            if spec.isStacked {
                let layers = spec.name.hasPrefix("img/") ? depth.vision : depth.llm
                for layer in 0..<layers { expected.insert("\(spec.name)#\(layer)") }
            } else {
                expected.insert("\(spec.name)#-1")
            }
        }
        let keys = reported.map { "\($0.name)#\($0.layer ?? -1)" }
        XCTAssertEqual(keys.count, Set(keys).count, "a slice was reported twice")
        XCTAssertEqual(Set(keys), expected)
        XCTAssertEqual(reported.first, GradientReady(name: "llm/final_norm/scale", layer: nil))
        XCTAssertEqual(reported.last?.name, "img/embedding/bias")

        for (key, values) in valuesAtReport {
            let parts = key.split(separator: "#")
            let buffer = model.gradients[String(parts[0])]!
            let layer = Int(parts[1])!
            let final = layer >= 0 ? buffer.slice(layer).snapshot() : buffer.snapshot()
            XCTAssertEqual(values, final.scalars, "\(key) changed after it was reported ready")
        }
    }

    func testFrozenParametersAreNotReported() throws {
        let model = try Golden.model(trainable: "^llm/layers/attn/")
        var names: Set<String> = []
        model.onGradientReady = { names.insert($0.name) }
        try model.forwardBackward(Golden.batch())
        XCTAssertEqual(names, ["llm/layers/attn/q_einsum/w", "llm/layers/attn/kv_einsum/w", "llm/layers/attn/attn_vec_einsum/w"])
    }
}
