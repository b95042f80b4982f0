import Checkpoint
@testable import PaliGemmaModel
import TensorCore
import XCTest

/// Cached decoding against recomputation, stopping rules, padding and input checks.
final class DecodeBehaviourTests: XCTestCase {
    // MARK: - Cached equals recomputed

    /// A random model with grouped-query attention (4 query heads over 2 kv heads) and three
    /// prompts of different lengths, one with a suffix start that is causal.
    func testCachedEqualsRecomputedWithGroupedHeads() throws {
        let model = try Self.randomModel(numHeads: 4, kvHeads: 2)
        let prompt = try Self.raggedPrompt(model)
        let options = DecodeOptions(maxNewTokens: 10, stopAtEOS: false, keepLogits: true)

        let cached = try model.decode(prompt, options: options)
        let recomputed = try model.decodeByRecomputing(prompt, options: options)

        XCTAssertEqual(cached.tokens, recomputed.tokens)
        XCTAssertEqual(cached.tokens.map(\.count), [10, 10, 10])
        assertClose(try XCTUnwrap(cached.logits).scalars, try XCTUnwrap(recomputed.logits).scalars, tolerance: 1e-5, "logits")
        for b in 0..<3 {
            assertClose(cached.logProbs[b], recomputed.logProbs[b], tolerance: 1e-5, "log-probabilities of example \(b)")
        }
    }

    func testCachedEqualsRecomputedWithMultiQueryHeads() throws {
        let model = try Self.randomModel(numHeads: 3, kvHeads: 1)
        let prompt = try Self.raggedPrompt(model)
        let options = DecodeOptions(maxNewTokens: 6, stopAtEOS: false, keepLogits: true)

        let cached = try model.decode(prompt, options: options)
        let recomputed = try model.decodeByRecomputing(prompt, options: options)

        XCTAssertEqual(cached.tokens, recomputed.tokens)
        assertClose(try XCTUnwrap(cached.logits).scalars, try XCTUnwrap(recomputed.logits).scalars, tolerance: 1e-5, "logits")
    }

    /// Padding is never computed, so the same prompt padded to another length decodes to
    /// bit-identical logits.
    func testPaddingLengthDoesNotChangeResults() throws {
        let model = try Golden.model(trainable: "^$")
        let padded = try Golden.decodePrompt("decode")
        let trimmed = try DecodePrompt(
            images: padded.images, text: Array(padded.text.prefix(5)), maskAR: Array(padded.maskAR.prefix(5)),
            maskInput: Array(padded.maskInput.prefix(5)))

        let fromPadded = try model.decode(padded, options: Golden.decodeOptions())
        let fromTrimmed = try model.decode(trimmed, options: Golden.decodeOptions())

        XCTAssertEqual(fromPadded.tokens, fromTrimmed.tokens)
        XCTAssertEqual(try XCTUnwrap(fromPadded.logits).scalars, try XCTUnwrap(fromTrimmed.logits).scalars)
    }

    /// A frozen f16 checkpoint keeps its token table in f16: the cached decode reads it in
    /// place for the logits, the recomputing decode expands it in chunks. Both widen the same
    /// f16 values, so they agree to f32 rounding.
    func testFrozenFloat16TableDecodesLikeRecomputing() throws {
        let model = try Golden.model(file: "params_f16.npz", trainable: "^$")
        XCTAssertEqual(model.parameters.dtype(of: "llm/embedder/input_embedding"), .f16)
        let prompt = try Golden.decodePrompt("decode_batch")

        let cached = try model.decode(prompt, options: Golden.decodeOptions())
        let recomputed = try model.decodeByRecomputing(prompt, options: Golden.decodeOptions())

        XCTAssertEqual(cached.tokens, recomputed.tokens)
        assertClose(try XCTUnwrap(cached.logits).scalars, try XCTUnwrap(recomputed.logits).scalars, tolerance: 1e-5, "logits")
    }

    // MARK: - Stopping

    /// In the golden batch example 0 produces 503 first and example 1 never does. With 503 as
    /// EOS, example 0 stops after one token while example 1 runs to the limit unchanged.
    func testEachExampleStopsAtItsOwnEOS() throws {
        let model = try Golden.model(trainable: "^$")
        let expected = try Golden.reader("expected.npz")
        let goldenTokens = try expected.array("decode_batch/tokens").int32s()
        let goldenLogits = try expected.array("decode_batch/logits").floats()
        var options = Golden.decodeOptions()
        options.stopAtEOS = true
        options.eosID = 503

        for recompute in [false, true] {
            let prompt = try Golden.decodePrompt("decode_batch")
            let result = try recompute
                ? model.decodeByRecomputing(prompt, options: options) : model.decode(prompt, options: options)
            let label = recompute ? "recomputing" : "cached"

            XCTAssertEqual(result.tokens, [[503], Array(goldenTokens[8..<16])], label)
            XCTAssertEqual(result.reachedEOS, [true, false], label)
            XCTAssertEqual(result.logProbs.map(\.count), [1, 8], label)
            XCTAssertEqual(result.timing.steps, 7, label)

            let logits = try XCTUnwrap(result.logits).scalars
            assertClose(Array(logits[0..<1300]), Array(goldenLogits[0..<1300]), tolerance: 1e-4, "\(label): example 0 step 0")
            XCTAssertTrue(logits[1300..<(8 * 1300)].allSatisfy { $0 == 0 }, "\(label): rows after EOS stay zero")
            assertClose(Array(logits[(8 * 1300)...]), Array(goldenLogits[(8 * 1300)...]), tolerance: 1e-4, "\(label): example 1")
        }
    }

    func testBatchStopsWhenEveryExampleHasEOS() throws {
        let model = try Golden.model(trainable: "^$")
        var options = Golden.decodeOptions()
        options.stopAtEOS = true
        options.eosID = 134  // example 1's first token; example 0 reaches it never
        options.maxNewTokens = 20

        let result = try model.decode(try Golden.decodePrompt("decode_batch"), options: options)

        XCTAssertEqual(result.tokens[1], [134])
        XCTAssertEqual(result.tokens[0].count, 20, "example 0 has no EOS and runs to the limit")
        XCTAssertEqual(result.reachedEOS, [false, true])
    }

    func testMaxNewTokensCutsEveryExample() throws {
        let model = try Golden.model(trainable: "^$")
        let goldenTokens = try Golden.reader("expected.npz").array("decode_batch/tokens").int32s()
        var options = Golden.decodeOptions()
        options.maxNewTokens = 3

        let result = try model.decode(try Golden.decodePrompt("decode_batch"), options: options)

        XCTAssertEqual(result.tokens, [Array(goldenTokens[0..<3]), Array(goldenTokens[8..<11])])
        XCTAssertEqual(result.reachedEOS, [false, false])
        XCTAssertEqual(result.timing.steps, 2)
        XCTAssertEqual(try XCTUnwrap(result.logits).shape, [2, 3, 1300])
    }

    func testLogitsAreNotKeptUnlessRequested() throws {
        let model = try Golden.model(trainable: "^$")
        let result = try model.decode(try Golden.decodePrompt("decode"), options: DecodeOptions(maxNewTokens: 2))
        XCTAssertNil(result.logits)
        XCTAssertEqual(result.tokens[0].count, 2)
    }

    // MARK: - The cache

    /// Every step writes into the storage allocated before the prefill: no layer of the cache
    /// is ever copied.
    func testCacheIsWrittenInPlace() throws {
        let model = try Golden.model(trainable: "^$")
        let prompt = try Golden.decodePrompt("decode_batch")
        let llm = model.config.llm
        let prefill = DecodeStep.prefill(prompt, imageTokens: model.config.vision.numTokens)
        let cache = KVCache(precision: .f32, layers: llm.depth, batchSize: 2, capacity: 20, kvHeads: llm.numKVHeads, headDim: llm.headDim)
        var stack = CachedDecoderStack(store: model.parameters, cache: cache, scratch: CachedAttention.Scratch(rows: 20, slots: 20))
        let addresses = cache.storageAddresses

        _ = stack.run(Tensor(zeros: [prefill.rowCount, llm.width]), prefill)
        for segment in prefill.segments { cache.setCount(segment.count, example: segment.example) }
        XCTAssertEqual(cache.counts, [9, 11])
        for _ in 0..<5 {
            let step = DecodeStep.extend(examples: [0, 1], cached: cache.counts)
            _ = stack.run(Tensor(zeros: [2, llm.width]), step)
            for segment in step.segments { cache.setCount(segment.start + 1, example: segment.example) }
        }

        XCTAssertEqual(cache.counts, [14, 16])
        XCTAssertEqual(cache.storageAddresses, addresses)
    }

    func testBFloat16CacheHoldsRoundedValues() throws {
        let cache = KVCache(precision: .bf16, layers: 1, batchSize: 1, capacity: 2, kvHeads: 1, headDim: 2)
        let k = Tensor(shape: [1, 1, 2], values: [1.00390625, -3.1415927])  // 1 + 2⁻⁸ is a tie: rounds to even, 1.0
        let v = Tensor(shape: [1, 1, 2], values: [0.1, 65504])
        cache.write(layer: 0, k: k, v: v, slots: [(example: 0, slot: 1)])

        XCTAssertEqual(Array(cache.keys(layer: 0).scalars[2...]), [1.0, -3.140625])
        XCTAssertEqual(Array(cache.values(layer: 0).scalars[2...]), [0.10009765625, 65536])
        XCTAssertEqual(Array(cache.keys(layer: 0).scalars[0..<2]), [0, 0], "slot 0 is untouched")
    }

    // MARK: - Input checks

    func testPromptRejectsPaddingBeforeTokens() {
        XCTAssertThrowsError(try DecodePrompt(
            images: Tensor(zeros: [1, 28, 28, 3]), text: [2, 0, 5], maskAR: [0, 1, 0], maskInput: [1, 0, 1])
        ) { error in
            XCTAssertTrue("\(error)".contains("row 0 is [1, 0, 1]"), "\(error)")
            XCTAssertTrue("\(error)".contains("padding (0) last"), "\(error)")
        }
    }

    func testPromptRejectsRowWithoutTokens() {
        XCTAssertThrowsError(try DecodePrompt(
            images: Tensor(zeros: [2, 28, 28, 3]), text: [2, 5, 0, 0], maskAR: [0, 0, 1, 1], maskInput: [1, 1, 0, 0])
        ) { error in
            XCTAssertTrue("\(error)".contains("row 1 has no real token"), "\(error)")
        }
    }

    func testPromptRejectsMismatchedMasks() {
        XCTAssertThrowsError(try DecodePrompt(
            images: Tensor(zeros: [1, 28, 28, 3]), text: [2, 5, 0], maskAR: [0, 0], maskInput: [1, 1, 0])
        ) { error in
            XCTAssertTrue("\(error)".contains("maskAR"), "\(error)")
        }
    }

    func testDecodeRejectsMismatchedInputs() throws {
        let model = try Golden.model(trainable: "^$")
        let wrongImage = try DecodePrompt(images: Tensor(zeros: [1, 56, 56, 3]), text: [2, 5], maskAR: [0, 0], maskInput: [1, 1])
        XCTAssertThrowsError(try model.decode(wrongImage, options: DecodeOptions(maxNewTokens: 2))) { error in
            XCTAssertTrue("\(error)".contains("[1, 28, 28, 3]"), "\(error)")
        }

        let outsideVocabulary = try DecodePrompt(images: Tensor(zeros: [1, 28, 28, 3]), text: [2, 1300], maskAR: [0, 0], maskInput: [1, 1])
        XCTAssertThrowsError(try model.decode(outsideVocabulary, options: DecodeOptions(maxNewTokens: 2))) { error in
            XCTAssertTrue("\(error)".contains("token id 1300"), "\(error)")
        }

        let prompt = try Golden.decodePrompt("decode")
        XCTAssertThrowsError(try model.decode(prompt, options: DecodeOptions(maxNewTokens: 0))) { error in
            XCTAssertTrue("\(error)".contains("maxNewTokens"), "\(error)")
        }
        XCTAssertThrowsError(try model.decodeByRecomputing(prompt, options: DecodeOptions(maxNewTokens: 2, cachePrecision: .bf16))) { error in
            XCTAssertTrue("\(error)".contains("use f32"), "\(error)")
        }
    }

    // MARK: - Helpers

    /// Makes a randomly initialised model with 28-pixel images, width 48, 3 layers.
    static func randomModel(numHeads: Int, kvHeads: Int) throws -> PaliGemma {
        let config = PaliGemmaConfig(
            vision: .init(imageSize: 28, patchSize: 14, width: 32, depth: 2, numHeads: 2, headDim: 16, mlpDim: 64),
            llm: .init(width: 48, depth: 3, numHeads: numHeads, numKVHeads: kvHeads, headDim: 16, mlpDim: 96, vocabSize: 300))
        let arrays = PaliGemmaInit.arrays(for: config, seed: 7)
        return PaliGemma(parameters: try ParameterStore(config: config, arrays: arrays, trainable: "^$"))
    }

    /// Three prompts padded to 8 columns: 4 tokens; 6 tokens whose last three are a causal suffix
    /// start (mask_ar 1); BOS alone.
    static func raggedPrompt(_ model: PaliGemma) throws -> DecodePrompt {
        let size = model.config.vision.imageSize
        var pixels = [Float](repeating: 0, count: 3 * size * size * 3)
        for i in pixels.indices { pixels[i] = Float((i * 37) % 101) / 50 - 1 }
        return try DecodePrompt(
            images: Tensor(shape: [3, size, size, 3], values: pixels),
            text: [
                2, 40, 41, 108, 0, 0, 0, 0,
                2, 50, 108, 77, 78, 79, 0, 0,
                2, 0, 0, 0, 0, 0, 0, 0,
            ],
            maskAR: [
                0, 0, 0, 0, 1, 1, 1, 1,
                0, 0, 0, 1, 1, 1, 1, 1,
                0, 1, 1, 1, 1, 1, 1, 1,
            ],
            maskInput: [
                1, 1, 1, 1, 0, 0, 0, 0,
                1, 1, 1, 1, 1, 1, 0, 0,
                1, 0, 0, 0, 0, 0, 0, 0,
            ])
    }
}
