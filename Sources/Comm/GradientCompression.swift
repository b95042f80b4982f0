/// Encoding of gradient frames on the wire (`--grad-compression`).
public enum GradientCompression: String, Sendable, CaseIterable, CustomStringConvertible {
    /// fp16, byte-shuffled, compressed with zstd: the smallest frames (about 2.4x smaller than
    /// f32 on N(0, 1e-3) gradients), at the cost of fp16 rounding per ring hop.
    case zstdFP16 = "zstd-fp16"
    /// fp16, byte-shuffled, not compressed: 2x smaller than f32, no zstd time.
    case fp16 = "fp16"
    /// Raw f32 frames: exact f32 sums in a fixed order.
    case none = "none"

    public var description: String { rawValue }

    /// The codec a sender uses.
    var wireCodec: WireCodec {
        switch self {
        case .zstdFP16: return .f16ShuffledZstd
        case .fp16: return .f16Shuffled
        case .none: return .f32
        }
    }

    /// Codecs a receiver accepts: a zstd sender ships an incompressible chunk uncompressed.
    var allowedCodecs: [WireCodec] {
        switch self {
        case .zstdFP16: return [.f16ShuffledZstd, .f16Shuffled]
        case .fp16: return [.f16Shuffled]
        case .none: return [.f32]
        }
    }

    /// Whether values pass through fp16, which overflows above 65504.
    var castsToFP16: Bool { self != .none }
}

/// Action of the all-reducer when the fp16 cast of a bucket produces infinity or NaN.
public enum OverflowPolicy: String, Sendable {
    /// Redo that bucket with f32 frames, and go on.
    case fallbackF32 = "fallback-f32"
    /// Stop reducing and report the step as skipped, so the trainer drops this update.
    case skipStep = "skip-step"
}
