/// Element type of a stored tensor. Compute is always f32; f16 and bf16 are storage formats.
public enum DType: String, Sendable, CaseIterable, CustomStringConvertible {
    case f32
    case f16
    case bf16

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        }
    }

    public var description: String { rawValue }
}
