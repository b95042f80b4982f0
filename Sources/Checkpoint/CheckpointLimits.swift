/// Upper bounds that the NPY and NPZ readers enforce before they trust a size read from a file.
///
/// A file that exceeds a limit is rejected with `CheckpointError.limitExceeded`, naming the
/// setting. The defaults accept every released PaliGemma-3B checkpoint: its largest member,
/// `llm/layers/mlp/gating_einsum` in f32, is 18·2·2048·16384·4 bytes, about 4.8 GB.
public struct CheckpointLimits: Sendable, Equatable {
    /// Maximum uncompressed size of one member or `.npy` file, in bytes. Default 32 GiB.
    /// A deflated member is never inflated into a buffer larger than this.
    public var maxMemberBytes: Int

    /// Maximum length of an NPY header dict, in bytes. Default 10,000, the same bound that
    /// numpy's `np.load` applies by default (`max_header_size`).
    public var maxHeaderBytes: Int

    /// Maximum number of members in one archive. Default 100,000.
    public var maxMembers: Int

    /// Maximum number of dimensions of one array. Default 64, numpy 2's `NPY_MAXDIMS`.
    public var maxDimensions: Int

    public init(
        maxMemberBytes: Int = 32 << 30,
        maxHeaderBytes: Int = 10_000,
        maxMembers: Int = 100_000,
        maxDimensions: Int = 64
    ) {
        self.maxMemberBytes = maxMemberBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxMembers = maxMembers
        self.maxDimensions = maxDimensions
    }

    /// The documented defaults.
    public static let `default` = CheckpointLimits()
}
