import Foundation

/// Every setting of a training run, resolved from defaults, `--config FILE.json` and flags.
///
/// Defaults follow the PaliGemma fine-tuning colab: only the decoder's attention weights
/// train, plain SGD at learning rate 0.03, global batch 8, cosine decay after a 10% warmup.
/// `config.json` in the output directory records the resolved values.
public struct TrainSettings: Sendable, Equatable {
    // MARK: Inputs and outputs
    public var data: String?
    public var trainJSONL: String?
    public var validJSONL: String?
    public var imageRoot: String?
    public var checkpoint: String = ""
    public var tokenizer: String = ""
    public var outputDirectory: String = ""

    // MARK: Length of the run
    /// Examples per optimizer step, summed over all ranks and micro-steps.
    public var globalBatchSize: Int = 8
    /// Micro-steps per optimizer step on each rank.
    public var gradientAccumulation: Int = 1
    public var maxSteps: Int?
    public var epochs: Double?

    // MARK: Optimizer
    public var optimizer: String = "sgd"
    public var learningRate: Double = 0.03
    public var momentum: Double = 0
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var epsilon: Double = 1e-8
    public var weightDecay: Double = 0
    /// Fraction of the steps spent in linear warmup.
    public var warmupFraction: Double = 0.1
    /// Global gradient norm clip; 0 turns clipping off.
    public var maxGradNorm: Double = 0
    public var trainable: String = "^llm/layers/attn/"

    // MARK: Data
    public var seed: UInt64 = 0
    /// Text tokens per example (prefix + separator + suffix + EOS), excluding the image tokens.
    public var maxLength: Int = 128
    public var skipBadRecords: Bool = false
    /// Input limits of the dataset reader (`DatasetLimits`), settable like `palitrain validate`'s.
    public var maxLineBytes: Int = 1 << 20
    public var maxImagePixels: Int = 100_000_000
    public var maxImageBytes: Int = 256 << 20

    // MARK: Distribution and numerics
    public var gradientCompression: String = "zstd-fp16"
    /// What a non-finite fp16 gradient bucket triggers: `fallback-f32` or `skip-step`.
    public var onOverflow: String = "fallback-f32"
    public var compute: String = "f32"
    /// MiB of vision-encoder outputs kept in memory per machine, shared equally by its ranks.
    /// 0 turns the vision-feature cache off. The cache is off anyway when `img/` parameters
    /// other than `img/head/` train.
    public var visionCacheMB: Int = 2048
    /// Storage of the cached features: `f16`, `bf16` or `f32`.
    public var visionCacheDType: String = "f16"
    /// Threads per rank for kernels; 0 picks the cores available to this rank.
    public var threads: Int = 0
    public var checkReplicasEvery: Int = 50
    /// Seconds a rank waits for its peers before it gives up with an error.
    public var commTimeout: Double = 1800

    // MARK: Validation and checkpoints
    public var evalEvery: Int = 0
    public var maxNewTokens: Int = 64
    public var evalBatchSize: Int = 8
    public var gallerySize: Int = 12
    public var saveEvery: Int = 0
    public var keepLast: Int = 3
    public var resume: String = "none"
    /// Stop after this step as a SIGTERM would (checkpoint, exit 0); for preemption drills.
    public var stopAfter: Int?

    public init() {}
}
