/// Names of the phases `PhaseTimer` splits a training step into.
///
/// The model measures the first eight; the trainer or benchmark measures the optimizer and
/// the all-reduce. Time no phase covers is reported as `other`.
public enum StepPhase {
    /// The SigLIP tower and the projection to the decoder width, forward and backward.
    public static let vision = "vision"
    /// Token embedding, the joint sequence, the attention mask and RoPE table, final_norm.
    public static let embedding = "embedding"
    /// Expanding or rounding frozen decoder weights before a block runs.
    public static let weights = "weights"
    /// Releasing the pages of a memory-mapped checkpoint after each block. Only the madvise
    /// calls count here: faulting the pages in again counts in the phase that reads them.
    public static let pageRelease = "page-release"
    /// Decoder attention with its RMSNorm and residual, forward and backward.
    public static let attention = "attention"
    /// Decoder gated MLP with its RMSNorm and residual, forward and backward.
    public static let mlp = "mlp"
    /// Selecting the rows that get logits, the tied output projection and its backward.
    public static let logits = "logits"
    /// Softmax cross-entropy and its gradient.
    public static let loss = "loss"
    public static let optimizer = "optimizer"
    public static let allReduce = "all-reduce"
    public static let other = "other"

    /// Every phase, in the order a report lists them.
    public static let all = [vision, embedding, weights, pageRelease, attention, mlp, logits, loss, optimizer, allReduce, other]
}
