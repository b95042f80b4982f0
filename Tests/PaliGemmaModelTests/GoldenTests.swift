import Checkpoint
import PaliGemmaModel
import TensorCore
import XCTest

/// Parity with tensors computed by big_vision itself on the tiny golden model.
///
/// Tolerances are those an f32 reimplementation meets: logits 1e-4 absolute, losses 1e-5,
/// gradients 2e-5 absolute.
final class GoldenTests: XCTestCase {
    func testForwardMatchesGolden() throws {
        let model = try Golden.model(trainable: "^$")
        let expected = try Golden.reader("expected.npz")
        let output = try model.forward(Golden.batch(), logits: .allText)

        XCTAssertEqual(output.logits.shape, [2, 11, 1300])
        assertClose(output.logits.scalars, try expected.array("logits").floats(), tolerance: 1e-4, "logits")
        assertClose([output.loss], try expected.array("loss").floats(), tolerance: 1e-5, "loss")
        assertClose(output.exampleLoss, try expected.array("example_loss").floats(), tolerance: 1e-5, "example_loss")
        assertClose(output.tokenNLL.scalars, try expected.array("token_nll").floats(), tolerance: 1e-5, "token_nll")
        assertClose(output.imgEncoded.scalars, try expected.array("img_encoded").floats(), tolerance: 1e-4, "img_encoded")
        assertClose(output.zimg.scalars, try expected.array("zimg").floats(), tolerance: 1e-4, "zimg")
        assertClose(output.preLogits.scalars, try expected.array("llm_pre_logits").floats(), tolerance: 1e-4, "llm_pre_logits")

        let mask = try expected.array("attn_mask")
        XCTAssertEqual(mask.shape, [output.attentionMask.batch, output.attentionMask.queries, output.attentionMask.keys])
        XCTAssertEqual(output.attentionMask.allowed, try mask.floats().map { $0 != 0 }, "attn_mask")
    }

    func testEveryGradientMatchesGolden() throws {
        let model = try Golden.model(trainable: ".*")
        let expected = try Golden.reader("expected.npz")
        let output = try model.forwardBackward(Golden.batch())

        assertClose([output.loss], try expected.array("loss").floats(), tolerance: 1e-5, "loss")
        XCTAssertEqual(model.gradients.names.count, 32)
        for name in model.parameters.names {
            guard let gradient = model.gradients[name] else {
                XCTFail("no gradient for \(name) although every parameter is trainable")
                continue
            }
            let golden = try expected.array("grad/" + name)
            XCTAssertEqual(gradient.shape, golden.shape, name)
            assertClose(gradient.snapshot().scalars, golden.floats(), tolerance: 2e-5, "grad/\(name)")
        }
    }

    func testSGDStepMatchesGolden() throws {
        let model = try Golden.model(trainable: "^llm/layers/attn/")
        let expected = try Golden.reader("expected.npz")
        XCTAssertEqual(model.parameters.trainableNames, [
            "llm/layers/attn/attn_vec_einsum/w", "llm/layers/attn/kv_einsum/w", "llm/layers/attn/q_einsum/w",
        ])
        let batch = try Golden.batch()
        try model.forwardBackward(batch)
        model.parameters.applySGD(model.gradients, learningRate: 0.1)

        for name in model.parameters.names {
            assertClose(model.parameters.values(name).scalars, try expected.array("sgd/" + name).floats(),
                        tolerance: 1e-6, "sgd/\(name)")
        }
        let after = try model.forward(batch, logits: .supervised)
        assertClose([after.loss], try expected.array("loss_after_sgd").floats(), tolerance: 1e-5, "loss_after_sgd")
    }

    func testFloat16CheckpointUpcastMatchesGolden() throws {
        let model = try Golden.model(file: "params_f16.npz", trainable: "^$", upcastToFloat: true)
        let expected = try Golden.reader("expected.npz")
        let output = try model.forward(Golden.batch(), logits: .allText)
        assertClose(output.logits.scalars, try expected.array("f16/logits").floats(), tolerance: 1e-4, "f16/logits")
        assertClose([output.loss], try expected.array("f16/loss").floats(), tolerance: 1e-5, "f16/loss")
    }

    /// Frozen f16 arrays are used in place and expanded per layer; only the token scale differs
    /// from the upcast run (√32 rounded to f16 and the product rounded), so logits stay close.
    func testFloat16CheckpointKeptInStoredDType() throws {
        let model = try Golden.model(file: "params_f16.npz", trainable: "^llm/layers/attn/")
        model.vocabularyChunk = 100  // exercise the chunked expansion of the token table
        XCTAssertEqual(model.parameters.dtype(of: "llm/layers/mlp/linear"), .f16)
        XCTAssertEqual(model.parameters.dtype(of: "llm/layers/attn/q_einsum/w"), .f32)
        let expected = try Golden.reader("expected.npz")
        let output = try model.forwardBackward(Golden.batch(), logits: .allText)
        assertClose(output.logits.scalars, try expected.array("f16/logits").floats(), tolerance: 5e-3, "f16/logits (stored f16)")
    }
}
