import Checkpoint
import PaliGemmaModel
import TensorCore
import XCTest

/// Greedy decoding with a KV cache against big_vision's prefill/extend on the golden model.
final class DecodingTests: XCTestCase {
    private struct Prompt {
        let images: Tensor
        let text: [Int32]
        let maskAR: [Int32]
        let maskInput: [Int32]
    }

    /// The prompt arrays `<prefix>_text`, `_mask_ar`, `_mask_input` with the first `count` images.
    private func prompt(_ prefix: String, images count: Int) throws -> Prompt {
        let inputs = try Golden.reader("inputs.npz")
        let image = try inputs.array("image")
        let perImage = image.count / image.shape[0]
        let pixels = Array(image.floats().prefix(count * perImage))
        return Prompt(
            images: Tensor(shape: [count] + Array(image.shape.dropFirst()), values: pixels),
            text: try inputs.array(prefix + "_text").int32s(),
            maskAR: try inputs.array(prefix + "_mask_ar").int32s(),
            maskInput: try inputs.array(prefix + "_mask_input").int32s())
    }

    private func decode(_ prompt: Prompt, cacheDType: DType) throws -> GreedyDecodeResult {
        let model = try Golden.model(trainable: "^$")
        return try model.greedyDecode(
            images: prompt.images, text: prompt.text, maskAR: prompt.maskAR, maskInput: prompt.maskInput,
            steps: 8, cacheDType: cacheDType, stopToken: nil)
    }

    func testSinglePromptMatchesGolden() throws {
        let expected = try Golden.reader("expected.npz")
        let result = try decode(prompt("decode", images: 1), cacheDType: .f32)
        XCTAssertEqual(result.tokens, [try expected.array("decode/tokens").int32s()])
        assertClose(result.logits.scalars, try expected.array("decode/logits").floats(), tolerance: 1e-4, "decode/logits")
        assertClose(result.logits.scalars, try expected.array("decode/recompute_logits").floats(), tolerance: 1e-4,
                    "decode/recompute_logits")
    }

    func testBatchOfUnequalPromptsMatchesGolden() throws {
        let expected = try Golden.reader("expected.npz")
        let result = try decode(prompt("decode_batch", images: 2), cacheDType: .f32)
        let tokens = try expected.array("decode_batch/tokens").int32s()
        XCTAssertEqual(result.tokens, [Array(tokens[0..<8]), Array(tokens[8..<16])])
        assertClose(result.logits.scalars, try expected.array("decode_batch/logits").floats(), tolerance: 1e-4,
                    "decode_batch/logits")
    }

    func testBFloat16CacheMatchesGolden() throws {
        let expected = try Golden.reader("expected.npz")
        let result = try decode(prompt("decode", images: 1), cacheDType: .bf16)
        XCTAssertEqual(result.tokens, [try expected.array("decode_bf16cache/tokens").int32s()])
        assertClose(result.logits.scalars, try expected.array("decode_bf16cache/logits").floats(), tolerance: 1e-4,
                    "decode_bf16cache/logits")
    }

    func testPromptValidationNamesTheProblem() throws {
        let model = try Golden.model(trainable: "^$")
        let images = Tensor(zeros: [1, 28, 28, 3])
        XCTAssertThrowsError(try model.prefill(images: images, text: [2, 5, 108], maskAR: [0, 0, 0], maskInput: [1, 0, 1],
                                               maxNewTokens: 2)) { error in
            XCTAssertTrue("\(error)".contains("maskInput"), "\(error)")
        }
        var (_, cache) = try model.prefill(images: images, text: [2, 5, 108], maskAR: [0, 0, 0], maskInput: [1, 1, 1],
                                           maxNewTokens: 1)
        XCTAssertEqual(cache.lengths, [4 + 3])
        _ = try model.extend([7], cache: &cache)
        XCTAssertThrowsError(try model.extend([7], cache: &cache)) { error in
            XCTAssertTrue("\(error)".contains("slots"), "\(error)")
        }
    }
}
