#if canImport(Glibc)
import Glibc
#endif

/// Errors raised while reading or writing NPY and NPZ files.
///
/// Every case names the file, the array key or archive member where one applies, what was
/// expected and what was found. `description` ends with a hint on what to do.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    /// A system call failed (`operation` is the call, `errno` its error number).
    case ioFailed(file: String, operation: String, errno: Int32)

    /// The file or member ends before a structure that must be there.
    case truncated(file: String, key: String?, structure: String, expectedBytes: Int, foundBytes: Int)

    /// A ZIP structure (end record, central directory, local header) contains a value that is
    /// invalid or that contradicts another part of the archive.
    case invalidArchive(file: String, member: String?, field: String, expected: String, found: String)

    /// An NPY header (magic, version, header dict, shape, byte count) is invalid.
    case invalidNPY(file: String, key: String, field: String, expected: String, found: String)

    /// The NPY `descr` names an element type that palitrain does not read.
    case unsupportedDType(file: String, key: String, descr: String, reason: String)

    /// A value exceeds one of the `CheckpointLimits` settings.
    case limitExceeded(file: String, key: String?, setting: String, limit: Int, found: Int)

    /// A deflated member could not be inflated to its declared size.
    case decompressionFailed(file: String, key: String, reason: String)

    /// zlib failed while compressing a member for writing.
    case compressionFailed(file: String, key: String, reason: String)

    /// The CRC-32 of a member's bytes differs from the one in the central directory.
    case checksumMismatch(file: String, key: String, expected: UInt32, found: UInt32)

    /// Two members map to the same key once `.npy` and a leading `params/` are removed.
    case duplicateKey(file: String, key: String, members: [String])

    /// Two members claim overlapping byte ranges of the archive.
    case overlappingMembers(file: String, first: String, firstRange: Range<Int>, second: String, secondRange: Range<Int>)

    /// `array(_:)` was asked for a key the archive does not contain.
    case keyNotFound(file: String, key: String, closeMatches: [String], keyCount: Int)

    /// An array's shape differs from the one the caller requires.
    case shapeMismatch(file: String, key: String, expected: [Int], found: [Int])

    /// An accessor was asked for an element type the array cannot be converted to.
    case elementTypeMismatch(file: String, key: String, requested: String, found: String)

    /// A write request is inconsistent (wrong byte count, duplicate key, writer already
    /// finished) or the value cannot be stored in the format.
    case invalidWrite(file: String, key: String?, expected: String, found: String)

    public var description: String {
        switch self {
        case let .ioFailed(file, operation, code):
            let reason = String(cString: strerror(code))
            return "\(file): \(operation) failed: \(reason) (errno \(code)). "
                + "Check that the path exists and is accessible, and that the disk has space."

        case let .truncated(file, key, structure, expectedBytes, foundBytes):
            return "\(file)\(Self.keySuffix(key)): truncated \(structure): expected \(expectedBytes) bytes, "
                + "found \(foundBytes). The file is incomplete; copy or download it again."

        case let .invalidArchive(file, member, field, expected, found):
            return "\(file)\(Self.memberSuffix(member)): invalid ZIP \(field): expected \(expected), "
                + "found \(found). The archive is damaged or was not written as an NPZ; "
                + "re-create it with numpy.savez or palitrain."

        case let .invalidNPY(file, key, field, expected, found):
            return "\(file) key '\(key)': invalid NPY \(field): expected \(expected), found \(found). "
                + "Re-save the array with numpy.save or numpy.savez."

        case let .unsupportedDType(file, key, descr, reason):
            return "\(file) key '\(key)': unsupported dtype '\(descr)': \(reason). "
                + "Supported dtypes: \(NPYDType.supportedDescriptions). "
                + "Convert the array with numpy's astype before saving."

        case let .limitExceeded(file, key, setting, limit, found):
            return "\(file)\(Self.keySuffix(key)): \(found) exceeds CheckpointLimits.\(setting) = \(limit). "
                + "If the file is trusted, raise CheckpointLimits.\(setting)."

        case let .decompressionFailed(file, key, reason):
            return "\(file) key '\(key)': inflating the deflated member failed: \(reason). "
                + "The archive is damaged; re-create it."

        case let .compressionFailed(file, key, reason):
            return "\(file) key '\(key)': deflating the member failed: \(reason). "
                + "Write the archive with NPZCompression.stored instead."

        case let .checksumMismatch(file, key, expected, found):
            return "\(file) key '\(key)': CRC-32 mismatch: expected \(Self.hex(expected)) from the central "
                + "directory, found \(Self.hex(found)). The member's bytes are damaged; re-create the file."

        case let .duplicateKey(file, key, members):
            let names = members.map { "'\($0)'" }.joined(separator: ", ")
            return "\(file): key '\(key)' appears more than once (members \(names)). "
                + "Keys are compared without '.npy' and without a leading 'params/'; keep one copy."

        case let .overlappingMembers(file, first, firstRange, second, secondRange):
            return "\(file): members '\(first)' (bytes \(firstRange.lowerBound)..<\(firstRange.upperBound)) and "
                + "'\(second)' (bytes \(secondRange.lowerBound)..<\(secondRange.upperBound)) overlap: "
                + "expected disjoint byte ranges. The archive is damaged or crafted; re-create it."

        case let .keyNotFound(file, key, closeMatches, keyCount):
            let hint = closeMatches.isEmpty
                ? "List the keys with NPZReader.keys."
                : "Close matches: " + closeMatches.map { "'\($0)'" }.joined(separator: ", ") + "."
            return "\(file): key '\(key)' not found among \(keyCount) keys. \(hint)"

        case let .shapeMismatch(file, key, expected, found):
            return "\(file) key '\(key)': shape mismatch: expected \(shapeText(expected)), found \(shapeText(found)). "
                + "The checkpoint was saved for a different model configuration; check the model variant and resolution."

        case let .elementTypeMismatch(file, key, requested, found):
            return "\(file) key '\(key)': cannot read elements of type \(found) as \(requested). "
                + "Use the accessor that matches the stored dtype."

        case let .invalidWrite(file, key, expected, found):
            return "\(file)\(Self.keySuffix(key)): invalid write: expected \(expected), found \(found)."
        }
    }

    private static func keySuffix(_ key: String?) -> String {
        key.map { " key '\($0)'" } ?? ""
    }

    private static func memberSuffix(_ member: String?) -> String {
        member.map { " member '\($0)'" } ?? ""
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
    }
}
