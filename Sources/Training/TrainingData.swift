import PaliGemmaModel

/// The training examples of one rank, addressed by global step.
///
/// The order of examples depends only on the seed and the global step, never on the number of
/// ranks, so a run resumed from step k (with any world size that divides the global batch)
/// sees exactly the batches an uninterrupted run would have seen.
public protocol TrainingDataSource: AnyObject {
    /// Examples in one pass over the training split.
    var examplesPerEpoch: Int { get }

    /// Micro-batch `microStep` of this rank's share of global step `step` (0-based).
    ///
    /// Each global batch of `globalBatchSize` examples is split into `worldSize` rank shares,
    /// and each share into `gradientAccumulation` micro-batches of equal size.
    func batch(step: Int, microStep: Int) throws -> PaliGemmaBatch

    /// The position of the next batch, as JSON, saved in `state.npz` for an exact resume.
    func encodedCursor() throws -> [UInt8]
}

/// What rank 0's validation pass produced.
public struct ValidationOutcome {
    /// Values for metrics.jsonl, keyed like `val/map50`.
    public var metrics: [String: Double]
    /// Writes what depends on the updated metrics.jsonl (the report); called after the
    /// trainer appended `metrics`.
    public var publish: () throws -> Void

    public init(metrics: [String: Double], publish: @escaping () throws -> Void = {}) {
        self.metrics = metrics
        self.publish = publish
    }
}

/// Rank 0's validation pass over the validation split at `step`.
public typealias Validation = (_ model: PaliGemma, _ step: Int) throws -> ValidationOutcome
