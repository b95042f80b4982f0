import Checkpoint
@testable import PaliGemmaModel
import TensorCore
import XCTest

/// The vision-feature cache on the golden model: a step with cached features against the same
/// step without the cache, on the same weights.
final class VisionFeatureCacheTests: XCTestCase {
    /// The head trains, so the cached path's head backward is checked too.
    private let headAndAttention = "^llm/layers/attn/|^img/head/"

    /// What the comparisons look at: loss, vision outputs and every trainable gradient.
    private struct StepResult {
        let loss: Float
        let imgEncoded: [Float]
        let zimg: [Float]
        let gradients: [String: [Float]]
    }

    private func step(_ model: PaliGemma, _ batch: PaliGemmaBatch) throws -> StepResult {
        let output = try model.forwardBackward(batch)
        var gradients: [String: [Float]] = [:]
        for name in model.gradients.names { gradients[name] = model.gradients[name]!.snapshot().scalars }
        return StepResult(loss: output.loss, imgEncoded: output.imgEncoded.scalars, zimg: output.zimg.scalars, gradients: gradients)
    }

    private func assertIdentical(_ found: StepResult, _ expected: StepResult, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(found.loss.bitPattern, expected.loss.bitPattern, "\(label): loss \(found.loss) vs \(expected.loss)", file: file, line: line)
        XCTAssertTrue(found.imgEncoded == expected.imgEncoded, "\(label): imgEncoded differs", file: file, line: line)
        XCTAssertTrue(found.zimg == expected.zimg, "\(label): zimg differs", file: file, line: line)
        XCTAssertEqual(Set(found.gradients.keys), Set(expected.gradients.keys), label, file: file, line: line)
        for (name, values) in expected.gradients {
            XCTAssertTrue(found.gradients[name] == values, "\(label): gradient of \(name) differs", file: file, line: line)
        }
    }

    /// Returns the golden images a and b, and c: a mirrored left to right (other pixels, same range).
    private func images() throws -> (a: Tensor, b: Tensor, c: Tensor) {
        let golden = try Golden.batch().images
        let (a, b) = (golden.slice(0), golden.slice(1))
        let (height, width, channels) = (a.shape[0], a.shape[1], a.shape[2])
        var mirrored = [Float](repeating: 0, count: a.count)
        let values = a.scalars
        for y in 0..<height {
            for x in 0..<width {
                for k in 0..<channels {
                    mirrored[(y * width + x) * channels + k] = values[(y * width + (width - 1 - x)) * channels + k]
                }
            }
        }
        return (a, b, Tensor(shape: a.shape, values: mirrored))
    }

    /// Builds a batch of the golden text rows with two chosen images and keys.
    private func batch(_ first: Tensor, _ second: Tensor, keys: [String]?) throws -> PaliGemmaBatch {
        let golden = try Golden.batch()
        let images = Tensor(shape: [2] + first.shape, values: first.scalars + second.scalars)
        return try PaliGemmaBatch(
            images: images, text: golden.text, maskAR: golden.maskAR, maskLoss: golden.maskLoss, imageKeys: keys)
    }

    private func relativeError(_ found: [Float], _ expected: [Float]) -> Double {
        var (difference, norm) = (0.0, 0.0)
        for (x, y) in zip(found, expected) {
            difference += Double(x - y) * Double(x - y)
            norm += Double(y) * Double(y)
        }
        return (difference / max(norm, 1e-300)).squareRoot()
    }

    // MARK: - Equality with the uncached step

    func testF32CacheReproducesUncachedStep() throws {
        let (a, b, _) = try images()
        let model = try Golden.model(trainable: headAndAttention)
        let reference = try step(model, batch(a, b, keys: nil))

        let cache = try model.enableVisionFeatureCache(budgetBytes: 1 << 20, dtype: .f32)
        let keyed = try batch(a, b, keys: ["a", "b"])
        assertIdentical(try step(model, keyed), reference, "first step (misses)")
        XCTAssertEqual(cache.statistics.misses, 2)
        XCTAssertEqual(cache.entryCount, 2)
        assertIdentical(try step(model, keyed), reference, "second step (hits)")
        XCTAssertEqual(cache.statistics.hits, 2)
        XCTAssertEqual(cache.statistics.misses, 2)
        XCTAssertNotNil(reference.gradients["img/head/kernel"], "the head must train in this test")
    }

    /// A hit for b (cached beside a) and a miss for c in one batch: the encoder runs on c alone.
    func testMixedHitsAndMissesReproduceUncachedStep() throws {
        let (a, b, c) = try images()
        for pattern in [headAndAttention, "^llm/layers/attn/"] {
            let model = try Golden.model(trainable: pattern)
            let reference = try step(model, batch(b, c, keys: nil))
            let cache = try model.enableVisionFeatureCache(budgetBytes: 1 << 20, dtype: .f32)
            _ = try step(model, batch(a, b, keys: ["a", "b"]))
            let mixed = try step(model, batch(b, c, keys: ["b", "c"]))
            assertIdentical(mixed, reference, "batch [b, c] after [a, b], trainable '\(pattern)'")
            XCTAssertEqual(cache.statistics.hits, 1)
            XCTAssertEqual(cache.statistics.misses, 3)
        }
    }

    /// Features computed in a pass are rounded like stored ones, so a hit step equals the miss
    /// step bit for bit. Both stay close to the f32 step.
    func testHalfPrecisionStaysNearF32() throws {
        let (a, b, _) = try images()
        let model = try Golden.model(trainable: headAndAttention)
        let reference = try step(model, batch(a, b, keys: nil))
        // Loss and worst gradient relative errors allowed for each storage dtype, about 30 times
        // what this test measured: f16 1.0e-6 and 2.0e-4, bf16 1.4e-5 and 1.2e-3.
        for (dtype, lossTolerance, gradientTolerance) in [(DType.f16, 3e-5, 6e-3), (.bf16, 4e-4, 3e-2)] {
            model.disableVisionFeatureCache()
            let cache = try model.enableVisionFeatureCache(budgetBytes: 1 << 20, dtype: dtype)
            let keyed = try batch(a, b, keys: ["a", "b"])
            let miss = try step(model, keyed)
            let hit = try step(model, keyed)
            XCTAssertEqual(cache.statistics.hits, 2, "\(dtype)")
            assertIdentical(hit, miss, "\(dtype): hit step against miss step")

            let lossError = Double(abs(miss.loss - reference.loss)) / Double(abs(reference.loss))
            XCTAssertGreaterThan(relativeError(miss.imgEncoded, reference.imgEncoded), 0, "\(dtype) must round the features")
            XCTAssertLessThan(lossError, lossTolerance, "\(dtype): loss \(miss.loss) vs \(reference.loss)")
            var worst = (0.0, "")
            for (name, values) in reference.gradients {
                let error = relativeError(miss.gradients[name]!, values)
                if error > worst.0 { worst = (error, name) }
                XCTAssertLessThan(error, gradientTolerance, "\(dtype): gradient of \(name)")
            }
            print(String(format: "vision cache %@ vs f32 features: loss relative error %.2e, worst gradient relative error %.2e (%@)",
                         dtype.rawValue, lossError, worst.0, worst.1))
        }
    }

    /// Eight random images in two orders: each image's features must not depend on its place
    /// in the batch, and must match the batched tower's up to rounding.
    func testFrozenEncoderIgnoresBatchPosition() throws {
        let model = try Golden.model(trainable: "^llm/")
        var random = SystemRandomNumberGenerator()
        let count = 28 * 28 * 3
        let images = (0..<8).map { _ in (0..<count).map { _ in Float.random(in: -1...1, using: &random) } }
        func encode(_ order: [Int]) -> Tensor {
            VisionTower.encodeEachImage(Tensor(shape: [order.count, 28, 28, 3], values: order.flatMap { images[$0] }), model.parameters)
        }

        let inOrder = encode(Array(0..<8))
        let order = [3, 1, 7, 0, 2, 6, 5, 4]
        let shuffled = encode(order)
        for (row, image) in order.enumerated() {
            XCTAssertTrue(shuffled.slice(row).scalars == inOrder.slice(image).scalars, "image \(image) at row \(row)")
        }
        XCTAssertTrue(encode([5]).slice(0).scalars == inOrder.slice(5).scalars, "image 5 alone")

        let batched = VisionTower.forward(
            Tensor(shape: [8, 28, 28, 3], values: images.flatMap { $0 }), model.parameters, keepCache: false, rematerialize: false)
        assertClose(inOrder.scalars, batched.imgEncoded.scalars, tolerance: 1e-5, "one image at a time against the batched tower")
    }

    // MARK: - Keys, pixels and budget

    func testChangedPixelsUnderSameKeyAreRecomputed() throws {
        let (a, b, c) = try images()
        let model = try Golden.model(trainable: headAndAttention)
        let reference = try step(model, batch(c, b, keys: nil))
        let cache = try model.enableVisionFeatureCache(budgetBytes: 1 << 20, dtype: .f32)
        _ = try step(model, batch(a, b, keys: ["x", "y"]))
        let reused = try step(model, batch(c, b, keys: ["x", "y"]))
        assertIdentical(reused, reference, "key x with other pixels")
        XCTAssertEqual(cache.statistics.contentMismatches, 1)
        XCTAssertEqual(cache.statistics.hits, 1)
        XCTAssertEqual(cache.statistics.misses, 3)
        XCTAssertEqual(cache.entryCount, 2)
    }

    func testBudgetLimitsStoredImages() throws {
        let (a, b, _) = try images()
        let model = try Golden.model(trainable: headAndAttention)
        let reference = try step(model, batch(a, b, keys: nil))
        let oneImage = VisionFeatureCache.bytesPerImage(model.config, dtype: .f32)
        XCTAssertEqual(oneImage, 4 * 32 * 4, "4 tokens of width 32 in f32")
        let cache = try model.enableVisionFeatureCache(budgetBytes: oneImage, dtype: .f32)
        let keyed = try batch(a, b, keys: ["a", "b"])
        assertIdentical(try step(model, keyed), reference, "first step")
        XCTAssertEqual(cache.entryCount, 1)
        XCTAssertEqual(cache.storedBytes, oneImage)
        XCTAssertEqual(cache.statistics.notStored, 1)
        assertIdentical(try step(model, keyed), reference, "second step")
        XCTAssertEqual(cache.statistics.hits, 1)
        XCTAssertEqual(cache.statistics.misses, 3)
    }

    /// An encoder_norm scale of 1e5 puts the features beyond the f16 range: those images are
    /// stored in f32, so the step equals the uncached one.
    func testFeaturesBeyondF16RangeStayF32() throws {
        let (a, b, _) = try images()
        let npz = try Golden.reader("params.npz")
        var arrays: [String: StoredArray] = [:]
        for key in npz.keys { arrays[key] = try StoredArray(npz.array(key)) }
        let scaleKey = try XCTUnwrap(arrays.keys.first { $0.hasSuffix(ParameterTable.Name.encoderNormScale) })
        let scale = try XCTUnwrap(arrays[scaleKey]).toTensor()
        arrays[scaleKey] = StoredArray(Tensor(shape: scale.shape, values: scale.scalars.map { $0 * 1e5 }), dtype: .f32)
        let model = PaliGemma(parameters: try ParameterStore(arrays: arrays, trainable: headAndAttention))

        let reference = try step(model, batch(a, b, keys: nil))
        XCTAssertGreaterThan(reference.imgEncoded.map(abs).max() ?? 0, 65504, "the features must exceed the f16 range")
        let cache = try model.enableVisionFeatureCache(budgetBytes: 1 << 20, dtype: .f16)
        let keyed = try batch(a, b, keys: ["a", "b"])
        assertIdentical(try step(model, keyed), reference, "miss step")
        assertIdentical(try step(model, keyed), reference, "hit step")
        XCTAssertEqual(cache.statistics.keptAsF32, 2)
        XCTAssertEqual(cache.statistics.hits, 2)
        XCTAssertEqual(cache.storedBytes, 2 * VisionFeatureCache.bytesPerImage(model.config, dtype: .f32))
    }

    func testBatchWithoutKeysBypassesCache() throws {
        let (a, b, _) = try images()
        let model = try Golden.model(trainable: headAndAttention)
        let cache = try model.enableVisionFeatureCache(budgetBytes: 1 << 20, dtype: .f16)
        _ = try step(model, batch(a, b, keys: nil))
        XCTAssertEqual(cache.statistics, VisionFeatureCache.Statistics())
        XCTAssertEqual(cache.entryCount, 0)
    }

    func testComputePrecisionChangeDropsEntries() throws {
        let (a, b, _) = try images()
        let model = try Golden.model(trainable: headAndAttention)
        let cache = try model.enableVisionFeatureCache(budgetBytes: 1 << 20, dtype: .f32)
        let keyed = try batch(a, b, keys: ["a", "b"])
        _ = try step(model, keyed)
        model.parameters.compute = .bf16
        let bf16Cached = try step(model, keyed)
        XCTAssertEqual(cache.statistics.invalidations, 1)
        XCTAssertEqual(cache.statistics.misses, 4)
        XCTAssertEqual(cache.statistics.hits, 0)
        model.disableVisionFeatureCache()
        assertIdentical(bf16Cached, try step(model, batch(a, b, keys: nil)), "bf16 compute")
    }

    func testBatchRejectsWrongKeyCount() throws {
        let (a, b, _) = try images()
        XCTAssertThrowsError(try batch(a, b, keys: ["a"])) { error in
            XCTAssertEqual(
                error as? PaliGemmaError,
                .invalidBatch(field: "imageKeys", reason: "has 1 keys but the batch has 2 images"))
        }
    }

    // MARK: - Trainable vision encoder

    func testEnableRejectsTrainableEncoder() throws {
        for pattern in [".", "^img/", "img/Transformer/encoder_norm/scale", "^img/embedding/kernel"] {
            let model = try Golden.model(trainable: pattern)
            XCTAssertThrowsError(try model.enableVisionFeatureCache(budgetBytes: 1 << 20), "pattern '\(pattern)'") { error in
                guard case .encoderTrains(let parameters, let found)? = error as? VisionFeatureCacheError else {
                    return XCTFail("pattern '\(pattern)': unexpected error \(error)")
                }
                XCTAssertEqual(found, pattern)
                XCTAssertFalse(parameters.isEmpty)
                XCTAssertFalse(parameters.contains { $0.hasPrefix("img/head/") || !$0.hasPrefix("img/") }, "\(parameters)")
            }
            XCTAssertNil(model.visionFeatureCache, "pattern '\(pattern)'")
        }
        for pattern in ["^img/head/", "^llm/", "^$"] {
            let model = try Golden.model(trainable: pattern)
            XCTAssertNoThrow(try model.enableVisionFeatureCache(budgetBytes: 1 << 20), "pattern '\(pattern)'")
        }
        let model = try Golden.model(trainable: "^llm/")
        XCTAssertThrowsError(try model.enableVisionFeatureCache(budgetBytes: 0)) { error in
            XCTAssertEqual(error as? VisionFeatureCacheError, .invalidBudget(bytes: 0))
        }
    }

    func testPixelHashSeesOneChangedValue() throws {
        var values = [Float](repeating: 0.25, count: 1000)
        let before = values.withUnsafeBufferPointer(VisionFeatureCache.pixelHash)
        values[500] = values[500].nextUp
        let after = values.withUnsafeBufferPointer(VisionFeatureCache.pixelHash)
        XCTAssertNotEqual(before, after)
        values[500] = 0.25
        XCTAssertEqual(values.withUnsafeBufferPointer(VisionFeatureCache.pixelHash), before)
    }
}
