import XCTest
import TensorCore
@testable import Checkpoint

/// Reading the golden files that numpy wrote for big_vision's tiny PaliGemma.
final class GoldenReadTests: XCTestCase {
    func testParamsKeysDropPrefix() throws {
        let reader = try NPZReader(path: Fixtures.golden("params.npz"))
        XCTAssertEqual(reader.keys.count, 32)
        XCTAssertEqual(reader.keys, reader.keys.sorted())
        XCTAssertTrue(reader.keys.contains("llm/layers/attn/q_einsum/w"))
        XCTAssertFalse(reader.keys.contains { $0.hasPrefix("params/") })
        XCTAssertEqual(reader.members.first?.name, "params/img/Transformer/encoder_norm/bias.npy")
    }

    func testParamsShapesAndDTypes() throws {
        let reader = try NPZReader(path: Fixtures.golden("params.npz"))
        let kv = try reader.array("llm/layers/attn/kv_einsum/w")
        XCTAssertEqual(kv.shape, [2, 2, 1, 32, 16])
        XCTAssertEqual(kv.elementType, .float32)
        XCTAssertEqual(kv.dtype, .f32)
        XCTAssertEqual(kv.count, 2 * 2 * 32 * 16)

        let embedding = try reader.array("params/llm/embedder/input_embedding")
        XCTAssertEqual(embedding.shape, [1300, 32])
        XCTAssertEqual(embedding.key, "llm/embedder/input_embedding")

        let header = try reader.header("img/embedding/kernel")
        XCTAssertEqual(header.shape, [14, 14, 3, 32])
        XCTAssertEqual(header.dtype, .float32)
    }

    func testStoredArrayIsMappedNotCopied() throws {
        let reader = try NPZReader(path: Fixtures.golden("params.npz"))
        let first = try reader.array("img/head/kernel")
        let second = try reader.array("img/head/kernel")
        let firstAddress = first.withUnsafeBytes { $0.baseAddress }
        let secondAddress = second.withUnsafeBytes { $0.baseAddress }
        XCTAssertNotNil(firstAddress)
        XCTAssertEqual(firstAddress, secondAddress, "two reads of a stored member must share the mapping")
    }

    func testF16AndDeflateMatchF32() throws {
        let f32 = try NPZReader(path: Fixtures.golden("params.npz"))
        let f16 = try NPZReader(path: Fixtures.golden("params_f16.npz"))
        let deflated = try NPZReader(path: Fixtures.golden("params_deflate.npz"))
        XCTAssertEqual(f32.keys, f16.keys)
        XCTAssertEqual(f32.keys, deflated.keys)
        XCTAssertTrue(deflated.members.allSatisfy { $0.compression == .deflated })

        for key in f32.keys {
            let reference = try f32.array(key)
            let half = try f16.array(key)
            let inflated = try deflated.array(key)
            XCTAssertEqual(half.dtype, .f16, key)
            XCTAssertEqual(half.shape, reference.shape, key)
            XCTAssertEqual(inflated.shape, reference.shape, key)

            let expected = reference.floats()
            XCTAssertEqual(inflated.floats(), expected, "deflated '\(key)' differs from the stored f32 file")

            // Round to f16 the way numpy's astype(float16) does, then compare exactly.
            let rounded = expected.map { Float(Float16($0)) }
            XCTAssertEqual(half.floats(), rounded, "f16 '\(key)' is not the f32 value rounded to f16")
        }
    }

    func testUnalignedStoredArraysConvert() throws {
        // numpy does not align member data within the ZIP, so some f32 arrays start at an
        // address that is not a multiple of 4. They must convert to the same values as the
        // deflated copy, which is inflated into an aligned buffer.
        let stored = try NPZReader(path: Fixtures.golden("params.npz"))
        let deflated = try NPZReader(path: Fixtures.golden("params_deflate.npz"))
        let unaligned = try stored.keys.filter { try !stored.array($0).isAligned }
        XCTAssertFalse(unaligned.isEmpty, "expected numpy to leave some f32 arrays unaligned")
        for key in unaligned {
            XCTAssertTrue(try deflated.array(key).isAligned, key)
            XCTAssertEqual(try stored.array(key).floats(), try deflated.array(key).floats(), key)

            let array = try stored.array(key)
            var copy = [Float](repeating: .nan, count: array.count)
            copy.withUnsafeMutableBufferPointer { array.copyFloats(into: $0) }
            XCTAssertEqual(copy, try deflated.array(key).floats(), key)
        }
    }

    func testInputsIntegerArrays() throws {
        let reader = try NPZReader(path: Fixtures.golden("inputs.npz"))
        let text = try reader.array("text")
        XCTAssertEqual(text.elementType, .int32)
        XCTAssertNil(text.dtype)
        XCTAssertEqual(text.shape, [2, 12])
        let tokens = try text.int32s()
        XCTAssertEqual(tokens.count, 24)
        XCTAssertEqual(tokens[0], 2, "each example starts with BOS = 2")
        XCTAssertEqual(tokens[12], 2)
        XCTAssertTrue(tokens.contains(108), "the prefix ends with SEP = 108")

        let maskAR = try reader.array("mask_ar").int32s()
        XCTAssertEqual(maskAR[0], 0, "mask_ar is 0 on the prefix")
        XCTAssertEqual(maskAR[11], 1, "mask_ar is 1 on padding")

        let image = try reader.array("image")
        XCTAssertEqual(image.shape, [2, 28, 28, 3])
        let pixels = image.floats()
        XCTAssertTrue(pixels.allSatisfy { $0 >= -1 && $0 <= 1 })
        XCTAssertThrowsError(try image.int32s()) { error in
            XCTAssertTrue("\(error)".contains("cannot read elements of type <f4 as int32"), "\(error)")
        }
    }

    func testExpectedScalarsAndInt8Mask() throws {
        let reader = try NPZReader(path: Fixtures.golden("expected.npz"))
        let loss = try reader.array("loss")
        XCTAssertEqual(loss.shape, [])
        XCTAssertEqual(loss.count, 1)
        let example = try reader.array("example_loss").floats()
        XCTAssertEqual(loss.floats()[0], (example[0] + example[1]) / 2, accuracy: 1e-5)

        let mask = try reader.array("attn_mask")
        XCTAssertEqual(mask.elementType, .int8)
        XCTAssertEqual(mask.shape, [2, 15, 15])
        let allowed = try mask.bools()
        // Every position attends to itself.
        for b in 0..<2 {
            for i in 0..<15 {
                XCTAssertTrue(allowed[b * 225 + i * 15 + i], "attn_mask[\(b), \(i), \(i)]")
            }
        }

        let tokens = try reader.array("decode/tokens")
        XCTAssertEqual(tokens.elementType, .int32)
        XCTAssertEqual(tokens.shape, [8])
    }

    func testExpectedShapeMismatch() throws {
        let reader = try NPZReader(path: Fixtures.golden("params.npz"))
        XCTAssertEqual(try reader.array("img/pos_embedding", expectedShape: [1, 4, 32]).count, 128)
        XCTAssertThrowsError(try reader.array("img/pos_embedding", expectedShape: [1, 256, 32])) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("params.npz key 'img/pos_embedding': shape mismatch"), message)
            XCTAssertTrue(message.contains("expected (1, 256, 32), found (1, 4, 32)"), message)
        }
    }

    func testMissingKeyListsCloseNames() throws {
        let reader = try NPZReader(path: Fixtures.golden("params.npz"))
        XCTAssertThrowsError(try reader.array("llm/layers/attn/q_einsum/W")) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("params.npz"), message)
            XCTAssertTrue(message.contains("key 'llm/layers/attn/q_einsum/W' not found among 32 keys"), message)
            XCTAssertTrue(message.contains("'llm/layers/attn/q_einsum/w'"), message)
        }
    }
}
