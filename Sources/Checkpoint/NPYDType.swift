import TensorCore

/// Element type of an array stored in an NPY file, identified by the header's `descr` string.
///
/// Only little-endian data is read. bf16 has no numpy dtype of its own: big_vision stores it as
/// a 2-byte void (`|V2`) and reinterprets the bytes, so every 2-byte void is read as bf16.
public enum NPYDType: String, Sendable, CaseIterable, CustomStringConvertible {
    case float32
    case float16
    case bfloat16
    case int32
    case int64
    case int8
    case uint8
    case bool

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .float32, .int32: return 4
        case .float16, .bfloat16: return 2
        case .int64: return 8
        case .int8, .uint8, .bool: return 1
        }
    }

    /// The `descr` string palitrain writes, the same one numpy writes for this type.
    public var descr: String {
        switch self {
        case .float32: return "<f4"
        case .float16: return "<f2"
        case .bfloat16: return "|V2"
        case .int32: return "<i4"
        case .int64: return "<i8"
        case .int8: return "|i1"
        case .uint8: return "|u1"
        case .bool: return "|b1"
        }
    }

    /// The TensorCore storage type for a floating-point element type, nil for integers and bool.
    public var floatDType: DType? {
        switch self {
        case .float32: return .f32
        case .float16: return .f16
        case .bfloat16: return .bf16
        case .int32, .int64, .int8, .uint8, .bool: return nil
        }
    }

    /// True for the integer and bool types.
    public var isInteger: Bool { floatDType == nil }

    public init(_ dtype: DType) {
        switch dtype {
        case .f32: self = .float32
        case .f16: self = .float16
        case .bf16: self = .bfloat16
        }
    }

    public var description: String { "\(rawValue) ('\(descr)')" }

    /// The accepted `descr` strings, listed in error messages.
    static let supportedDescriptions =
        "'<f4', '<f2', any 2-byte void ('|V2', '<V2') as bf16, '<i4', '<i8', '|i1', '|u1', '|b1'"

    /// Parses a `descr` string, or returns why it cannot be read.
    ///
    /// A missing or `=` byte-order character means native order, which is little-endian on
    /// every machine palitrain runs on.
    static func parse(descr: String) -> Result<NPYDType, UnsupportedReason> {
        var code = Substring(descr)
        var order: Character = "="
        if let first = code.first, "<>=|".contains(first) {
            order = first
            code = code.dropFirst()
        }

        let parsed: NPYDType
        switch code {
        case "f4": parsed = .float32
        case "f2": parsed = .float16
        case "V2": parsed = .bfloat16
        case "i4": parsed = .int32
        case "i8": parsed = .int64
        case "i1": parsed = .int8
        case "u1": parsed = .uint8
        case "b1": parsed = .bool
        case "O", "O8", "O4":
            return .failure(UnsupportedReason("object arrays hold pickled Python objects, which palitrain never loads"))
        case "f8":
            return .failure(UnsupportedReason("float64 is not read; store float32 instead"))
        default:
            if code.first == "V" {
                return .failure(UnsupportedReason("only 2-byte voids (bf16) are read"))
            }
            return .failure(UnsupportedReason("not one of the element types palitrain reads"))
        }

        // A byte order matters only for multi-byte numbers; a void is raw bytes.
        if order == ">" && parsed.byteSize > 1 && parsed != .bfloat16 {
            return .failure(UnsupportedReason("big-endian data is not read; save it as little-endian ('<')"))
        }
        return .success(parsed)
    }

    struct UnsupportedReason: Error {
        let text: String
        init(_ text: String) { self.text = text }
    }
}
