/// Errors raised by the communicators and the gradient all-reduce.
///
/// Every case names the rank it concerns and, for frames, the bucket, so that a failure in a
/// multi-rank job points at one message. After any `CommError` the ranks no longer agree on
/// which message comes next, so the caller should end the job with `Communicator.abort(code:)`.
public enum CommError: Error, CustomStringConvertible, Equatable {
    /// A gradient frame from `peer` failed validation (size, magic, bucket, codec, checksum or
    /// decompression). `reason` states the field, the expected value and the value found.
    case malformedFrame(peer: Int, bucket: UInt32, reason: String)

    /// A message from `peer` is larger than `CommLimits.maxMessageBytes`.
    case messageTooLarge(peer: Int, tag: Int, bytes: Int, limit: Int)

    /// A wait for `operation` ran past `CommLimits.waitTimeout`.
    case timedOut(operation: String, seconds: Double)

    /// An MPI function returned an error code.
    case mpiFailed(function: String, code: Int32, message: String)

    /// Ranks hold different parameters: `hashes[r]` is rank r's parameter hash, and
    /// `differingRanks` lists the ranks whose hash differs from rank 0's.
    case replicaMismatch(hashes: [UInt64], differingRanks: [Int])

    /// Another rank of an in-process group failed, so this rank stopped waiting for it.
    case peerFailed(rank: Int, message: String)

    /// zstd failed to compress a chunk on this rank (out of memory or an invalid level).
    case compressionFailed(rank: Int, bucket: UInt32, message: String)

    /// A caller passed a value this module cannot use (a rank out of range, a bucket size
    /// smaller than one element, buffers of different lengths on different ranks).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .malformedFrame(let peer, let bucket, let reason):
            return "invalid gradient frame from rank \(peer) in bucket \(bucket): \(reason). "
                + "The message was corrupted or the ranks run different palitrain builds or settings; "
                + "check that every rank runs the same binary with the same --grad-compression."

        case .messageTooLarge(let peer, let tag, let bytes, let limit):
            return "message of \(bytes) bytes from rank \(peer) (tag \(tag)) exceeds CommLimits.maxMessageBytes "
                + "(\(limit) bytes); the sender is corrupt or uses a larger bucket size, so use the same "
                + "settings on every rank or raise CommLimits.maxMessageBytes."

        case .timedOut(let operation, let seconds):
            return "timed out after \(formatSeconds(seconds)) s waiting for \(operation); a rank has probably "
                + "died or stalled. Check the other ranks' output, or raise CommLimits.waitTimeout "
                + "(--comm-timeout) if a rank legitimately works that long alone."

        case .mpiFailed(let function, let code, let message):
            return "\(function) failed with MPI error \(code): \(message)"

        case .replicaMismatch(let hashes, let differingRanks):
            let listed = hashes.enumerated().map { "rank \($0.offset): \(hex($0.element))" }.joined(separator: ", ")
            return "parameters differ across ranks: ranks \(differingRanks.map(String.init).joined(separator: ", ")) "
                + "hold parameters different from rank 0 (\(listed)); the replicas diverged, so restart from "
                + "a checkpoint and check that every rank loads the same one."

        case .peerFailed(let rank, let message):
            return "rank \(rank) failed, so this rank stopped: \(message)"

        case .compressionFailed(let rank, let bucket, let message):
            return "zstd compression failed on rank \(rank) in bucket \(bucket): \(message)"

        case .invalidArgument(let message):
            return message
        }
    }
}

func hex(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 16 - digits.count) + digits
}

func formatSeconds(_ seconds: Double) -> String {
    seconds >= 10 ? String(Int(seconds.rounded())) : String(format: "%.2f", seconds)
}
