import Comm
import PaliGemmaModel
import TensorCore

/// `palitrain bench --vision-cache`: training steps whose vision features come from the
/// vision-feature cache, and how far cached features move a step from f32 features.
public enum VisionCacheBench {
    /// The difference between a step on cached features stored in `dtype` and a step on the f32
    /// features the encoder computes, on the same weights and batch.
    public struct FeaturePrecision: Sendable {
        public let dtype: DType
        public let lossReference: Float
        public let loss: Float
        public let gradients: GradientDifference

        /// |loss − loss_ref| / |loss_ref|.
        public var lossRelativeDifference: Double {
            Double(abs(loss - lossReference)) / max(1e-30, Double(abs(lossReference)))
        }
    }

    public struct Result {
        /// Storage of the features in the timed steps.
        public var dtype: DType
        /// The timed steps. Every image of the batch is cached before the first one.
        public var training: TrainingBench.Result
        /// The cache's counts after the timed steps.
        public var statistics: VisionFeatureCache.Statistics
        /// One comparison per storage dtype: f16, bf16 and f32.
        public var precision: [FeaturePrecision]
    }

    public enum Outcome {
        case measured(Result)
        /// The cache cannot be used with this model (the vision encoder trains).
        case unavailable(String)
    }

    /// Compares each storage dtype against f32 features, then times `options.steps` steps with
    /// the batch's features cached in `dtype`. Turns the cache off again before returning.
    /// The model's trainable parameters change as in `TrainingBench.run()`.
    public static func measure(
        _ model: PaliGemma, _ batch: PaliGemmaBatch, reducer: GradientAllReducer, options: TrainingBench.Options,
        dtype: DType = .f16
    ) throws -> Outcome {
        defer { model.disableVisionFeatureCache() }
        let budget = VisionFeatureCache.bytesPerImage(model.config, dtype: .f32) * batch.batchSize

        // 1. The reference step on f32 features from the encoder, then one step per storage
        //    dtype on the same weights (features computed in a pass are rounded like cached ones).
        model.disableVisionFeatureCache()
        let names = model.parameters.trainableNames
        let reference = try model.forwardBackward(batch, logits: .supervised)
        let referenceGradients = names.map { model.gradients[$0]!.snapshot().scalars }
        var precision: [FeaturePrecision] = []
        for storage in [DType.f16, .bf16, .f32] {
            do {
                try model.enableVisionFeatureCache(budgetBytes: budget, dtype: storage)
            } catch {
                return .unavailable("\(error)")
            }
            let output = try model.forwardBackward(batch, logits: .supervised)
            precision.append(FeaturePrecision(
                dtype: storage, lossReference: reference.loss, loss: output.loss,
                gradients: GradientDifference(model, reference: referenceGradients)))
        }

        // 2. Timed steps with every image cached.
        let cache = try model.enableVisionFeatureCache(budgetBytes: budget, dtype: dtype)
        _ = try model.forwardBackward(batch, logits: .supervised)
        var timing = options
        timing.gemmReplays = 1
        let training = try TrainingBench(model: model, batch: batch, reducer: reducer, options: timing).run()
        return .measured(Result(dtype: dtype, training: training, statistics: cache.statistics, precision: precision))
    }
}
