/// The header of an NPY file: what precedes the raw array bytes.
///
/// Layout (numpy's `numpy/lib/format.py`, format versions 1.0 to 3.0):
///
/// 1. magic: the 6 bytes `\x93NUMPY`;
/// 2. version: major and minor byte, 1.0, 2.0 or 3.0;
/// 3. header length: little-endian UInt16 (1.0) or UInt32 (2.0, 3.0);
/// 4. header dict: a Python literal such as
///    `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`, padded with spaces and
///    ended by `\n` (ASCII in 1.0 and 2.0, UTF-8 in 3.0);
/// 5. data: `prod(shape)` elements of `descr`, in C order.
///
/// numpy pads the dict so that magic + version + length + dict is a multiple of 64 bytes.
public struct NPYHeader: Sendable, Equatable {
    public var dtype: NPYDType
    public var shape: [Int]

    /// Bytes from the start of the magic string to the first data byte.
    public var headerByteCount: Int

    /// Number of elements, 1 for a scalar (shape `()`).
    public var count: Int { shape.reduce(1, *) }

    /// Size of the data that follows the header, in bytes.
    public var dataByteCount: Int { count * dtype.byteSize }

    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]

    public init(dtype: NPYDType, shape: [Int], headerByteCount: Int) {
        self.dtype = dtype
        self.shape = shape
        self.headerByteCount = headerByteCount
    }
}

// MARK: - Reading

extension NPYHeader {
    /// Parses and validates the header at the start of `bytes`, which hold a whole NPY file or
    /// member. The checks run in file order: magic, version, header length, header dict, dtype,
    /// memory order, shape, then the data byte count against the bytes that follow the header.
    /// `file` and `key` name the source in errors.
    ///
    /// When `bytes` contains only the start of the file, `memberByteCount` gives the full size.
    static func parse(
        _ bytes: UnsafeRawBufferPointer, file: String, key: String, limits: CheckpointLimits,
        memberByteCount: Int? = nil
    ) throws -> NPYHeader {
        func invalid(_ field: String, expected: String, found: String) -> CheckpointError {
            .invalidNPY(file: file, key: key, field: field, expected: expected, found: found)
        }

        // 1. Magic string.
        guard bytes.count >= 8 else {
            throw CheckpointError.truncated(
                file: file, key: key, structure: "NPY magic and version", expectedBytes: 8, foundBytes: bytes.count)
        }
        let foundMagic = Array(bytes[0..<6])
        if foundMagic != magic {
            throw invalid("magic", expected: "\\x93NUMPY", found: escaped(foundMagic))
        }

        // 2. Format version.
        let major = bytes[6]
        let minor = bytes[7]
        guard (1...3).contains(major), minor == 0 else {
            throw invalid("format version", expected: "1.0, 2.0 or 3.0", found: "\(major).\(minor)")
        }

        // 3. Header length, bounded by the limit and by the bytes present.
        let lengthFieldSize = major == 1 ? 2 : 4
        let prefixSize = 8 + lengthFieldSize
        guard bytes.count >= prefixSize else {
            throw CheckpointError.truncated(
                file: file, key: key, structure: "NPY header length", expectedBytes: prefixSize, foundBytes: bytes.count)
        }
        var dictLength = 0
        for i in 0..<lengthFieldSize {
            dictLength |= Int(bytes[8 + i]) << (8 * i)
        }
        if dictLength > limits.maxHeaderBytes {
            throw CheckpointError.limitExceeded(
                file: file, key: key, setting: "maxHeaderBytes", limit: limits.maxHeaderBytes, found: dictLength)
        }
        let headerByteCount = prefixSize + dictLength
        guard bytes.count >= headerByteCount else {
            throw CheckpointError.truncated(
                file: file, key: key, structure: "NPY header dict", expectedBytes: headerByteCount,
                foundBytes: bytes.count)
        }

        // 4. Header dict: ASCII text (UTF-8 allowed in 3.0) holding exactly the three keys.
        let dictBytes = Array(bytes[prefixSize..<headerByteCount])
        if major < 3, let index = dictBytes.firstIndex(where: { $0 >= 0x80 || ($0 < 0x20 && $0 != 0x0A && $0 != 0x09) }) {
            throw invalid(
                "header dict", expected: "printable ASCII text",
                found: "byte 0x\(String(dictBytes[index], radix: 16)) at offset \(index) in \(escaped(dictBytes))")
        }
        let literal: PythonLiteral
        do {
            literal = try PythonLiteral.parse(dictBytes)
        } catch {
            throw invalid(
                "header dict", expected: "a Python dict literal",
                found: "\(error.message) at offset \(error.offset) in \(escaped(dictBytes))")
        }
        guard case let .dict(entries) = literal else {
            throw invalid("header dict", expected: "a dict", found: literal.summary)
        }
        let keys = entries.map(\.key)
        guard keys.sorted() == ["descr", "fortran_order", "shape"] else {
            throw invalid(
                "header dict keys", expected: "'descr', 'fortran_order', 'shape'",
                found: keys.map { "'\($0)'" }.joined(separator: ", "))
        }
        let values = Dictionary(entries.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })

        // 5. dtype.
        let dtype: NPYDType
        switch values["descr"] {
        case let .string(descr)?:
            switch NPYDType.parse(descr: descr) {
            case let .success(parsed): dtype = parsed
            case let .failure(reason):
                throw CheckpointError.unsupportedDType(file: file, key: key, descr: descr, reason: reason.text)
            }
        case let other?:
            throw CheckpointError.unsupportedDType(
                file: file, key: key, descr: other.summary,
                reason: "structured dtypes (a list of fields) are not read")
        case nil:
            throw invalid("descr", expected: "a dtype string", found: "nothing")
        }

        // 6. Memory order and shape.
        guard case let .tuple(dims)? = values["shape"] else {
            throw invalid("shape", expected: "a tuple of integers", found: values["shape"]?.summary ?? "nothing")
        }
        if dims.count > limits.maxDimensions {
            throw CheckpointError.limitExceeded(
                file: file, key: key, setting: "maxDimensions", limit: limits.maxDimensions, found: dims.count)
        }
        var shape: [Int] = []
        for (axis, dim) in dims.enumerated() {
            guard case let .integer(size) = dim else {
                throw invalid("shape", expected: "integers", found: "\(dim.summary) at axis \(axis)")
            }
            if size < 0 {
                throw invalid("shape", expected: "non-negative dimensions", found: "\(size) at axis \(axis)")
            }
            shape.append(size)
        }
        guard case let .bool(fortranOrder)? = values["fortran_order"] else {
            throw invalid("fortran_order", expected: "True or False", found: values["fortran_order"]?.summary ?? "nothing")
        }
        // Fortran and C order store the same bytes when at most one axis is longer than 1.
        if fortranOrder && shape.filter({ $0 > 1 }).count > 1 {
            throw invalid(
                "fortran_order", expected: "False (C order); save with np.ascontiguousarray",
                found: "True with shape \(shapeText(shape))")
        }

        // 7. Byte count: must not overflow, and must match the bytes after the header.
        var count = 1
        for size in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: size)
            if overflow {
                throw invalid("shape", expected: "an element count that fits in Int", found: shapeText(shape))
            }
            count = product
        }
        let (dataBytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        if overflow {
            throw invalid("shape", expected: "a byte count that fits in Int", found: "\(shapeText(shape)) of \(dtype.descr)")
        }
        let available = (memberByteCount ?? bytes.count) - headerByteCount
        if dataBytes != available {
            throw invalid(
                "data size",
                expected: "\(dataBytes) bytes for shape \(shapeText(shape)) of \(dtype.descr)",
                found: "\(available) bytes after the \(headerByteCount)-byte header")
        }

        return NPYHeader(dtype: dtype, shape: shape, headerByteCount: headerByteCount)
    }
}

// MARK: - Writing

extension NPYHeader {
    /// Encodes a version 1.0 header (2.0 if the dict exceeds 65,535 bytes) for C-order data.
    ///
    /// The dict is padded with spaces so that the data starts at a multiple of 64 bytes from
    /// `alignmentOrigin` bytes before the header. Pass the header's own offset in the output file
    /// to make the data start 64-byte aligned in the file, so memory-mapped arrays are aligned.
    static func encode(dtype: NPYDType, shape: [Int], alignmentOrigin: Int = 0) -> [UInt8] {
        let dict = Array("{'descr': '\(dtype.descr)', 'fortran_order': False, 'shape': \(shapeText(shape)), }".utf8)

        // Magic (6) + version (2) + length (2 or 4) + dict + at least the final newline.
        var major: UInt8 = 1
        var lengthFieldSize = 2
        var unpadded = 10 + dict.count + 1
        if unpadded - 10 > 0xFFFF {
            major = 2
            lengthFieldSize = 4
            unpadded = 12 + dict.count + 1
        }
        let misalignment = (alignmentOrigin + unpadded) % 64
        let padding = misalignment == 0 ? 0 : 64 - misalignment
        let dictLength = dict.count + padding + 1

        var header = magic + [major, 0]
        for i in 0..<lengthFieldSize {
            header.append(UInt8(truncatingIfNeeded: dictLength >> (8 * i)))
        }
        header += dict
        header += [UInt8](repeating: 0x20, count: padding)
        header.append(0x0A)
        return header
    }
}

// MARK: - Formatting for messages

/// Formats a shape the way numpy prints it: `(2, 3)`, `(5,)`, `()`.
func shapeText(_ shape: [Int]) -> String {
    shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
}

/// Shows bytes as text with non-printable bytes escaped, cut to 80 bytes.
func escaped(_ bytes: [UInt8]) -> String {
    var text = "'"
    for byte in bytes.prefix(80) {
        switch byte {
        case 0x20..<0x7F where byte != UInt8(ascii: "\\") && byte != UInt8(ascii: "'"):
            text.append(Character(Unicode.Scalar(byte)))
        case 0x0A:
            text += "\\n"
        default:
            let digits = String(byte, radix: 16)
            text += "\\x" + (digits.count == 1 ? "0" : "") + digits
        }
    }
    text += bytes.count > 80 ? "'..." : "'"
    return text
}
