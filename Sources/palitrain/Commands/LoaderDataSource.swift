import Dataset
import Foundation
import PaliGemmaModel
import TensorCore
import Training

/// Adapts the dataset's `ShardedLoader` to the trainer's step-addressed `TrainingDataSource`.
///
/// With gradient accumulation A, the loader runs with a global batch of G / A examples: global
/// step k, micro-step m is the loader's batch k·A + m. The union of the A micro-batches of step
/// k is then the same G examples whatever the number of ranks.
final class LoaderDataSource: TrainingDataSource {
    let loader: ShardedLoader
    let gradientAccumulation: Int
    let examplesPerEpoch: Int
    /// The settings besides the image file that decide an image's pixels, part of each image key.
    let preprocessing: String
    /// The loader batch the next `batch(step:microStep:)` call must ask for.
    private var nextKey: Int

    /// - startStep: optimizer steps already done (the resume point).
    /// - cursor: the loader cursor saved with that checkpoint, which the loader checks against
    ///   the examples, seed and batch before it resumes.
    init(
        examples: [Example], preparer: ExamplePreparer, globalBatchSize: Int, gradientAccumulation: Int,
        rank: Int, worldSize: Int, seed: UInt64, startStep: Int, cursor: LoaderCursor?
    ) throws {
        self.gradientAccumulation = gradientAccumulation
        self.examplesPerEpoch = examples.count
        self.preprocessing = Self.preprocessing(preparer.images)
        self.nextKey = startStep * gradientAccumulation
        loader = try ShardedLoader(
            examples: examples, preparer: preparer, globalBatch: globalBatchSize / gradientAccumulation,
            rank: rank, worldSize: worldSize, seed: seed, resumeFrom: cursor)

        let position = loader.cursor.epoch * loader.stepsPerEpoch + loader.cursor.step
        guard position == nextKey else {
            throw TrainingCheckpointError.invalidState(
                path: "state", key: "data cursor",
                reason: "the loader resumes at batch \(position) but step \(startStep) needs batch \(nextKey)")
        }
    }

    func encodedCursor() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return Array(try encoder.encode(loader.cursor))
    }

    func batch(step: Int, microStep: Int) throws -> PaliGemmaBatch {
        let key = step * gradientAccumulation + microStep
        guard key == nextKey else {
            fatalError("LoaderDataSource: batches are read in order; expected batch \(nextKey), asked for \(key)")
        }
        nextKey += 1

        let batch = try loader.next()
        let images = Tensor(shape: [batch.batchSize, batch.imageSize, batch.imageSize, 3], values: batch.image)
        let keys = batch.examples.map { "\(preprocessing) \($0.imagePath)" }
        return try PaliGemmaBatch(images: images, text: batch.text, maskAR: batch.maskAR, maskLoss: batch.maskLoss, imageKeys: keys)
    }

    /// Describes the preprocessing settings that change an image's pixels, for the image keys
    /// of the vision-feature cache.
    /// NOTE: the loader applies no augmentation. With one that changes pixels every epoch, each
    /// lookup would find other pixels under the key. The cache's pixel hash would then recompute
    /// the features, so they stay correct, but nothing would be reused and the cache should be off.
    static func preprocessing(_ images: ImagePreprocessor) -> String {
        "size=\(images.size) dct=\(images.dctScaling)"
    }
}
