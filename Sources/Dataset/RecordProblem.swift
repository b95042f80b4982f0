/// One problem found in a dataset record, located by file, line and field.
public struct RecordProblem: Sendable, Equatable, CustomStringConvertible {
    public enum Severity: String, Sendable {
        /// The record cannot be trained on: training stops unless `--skip-bad-records`.
        case error
        /// The record can be trained on, but its content is probably not what the user meant.
        case warning
    }

    public enum Kind: String, Sendable, CaseIterable {
        // Errors.
        case lineTooLong = "line too long"
        case invalidUTF8 = "invalid UTF-8"
        case invalidJSON = "invalid JSON"
        case notAnObject = "not a JSON object"
        case missingField = "missing field"
        case fieldNotString = "field not a string"
        case imagePathRejected = "image path outside the dataset"
        case imageNotFound = "image not found"
        case imageUnreadable = "image unreadable"
        case imageTooLarge = "image too large"
        case sequenceTooLong = "sequence too long"

        // Warnings.
        case malformedSuffix = "suffix not <loc>x4 + label groups"
        case locOutOfRange = "loc value outside 0..1023"
        case boxInverted = "box with max < min"
        case emptyBox = "box with max = min"
        case labelNotInPrefix = "label not among the prefix classes"
        case riskyClassName = "class name that parsers mangle"
        case duplicateAcrossSplits = "same image in two splits"
        case duplicateWithinSplit = "same image twice in a split"
        case decoderWarning = "decoder warning"

        public var severity: Severity {
            switch self {
            case .lineTooLong, .invalidUTF8, .invalidJSON, .notAnObject, .missingField, .fieldNotString,
                .imagePathRejected, .imageNotFound, .imageUnreadable, .imageTooLarge, .sequenceTooLong:
                return .error
            default:
                return .warning
            }
        }
    }

    /// The annotation file, as the user named it or as discovered.
    public let file: String
    /// 1-based line number in `file`.
    public let line: Int
    /// "image", "prefix" or "suffix" when the problem is in one field.
    public let field: String?
    public let kind: Kind
    public let message: String

    public init(file: String, line: Int, field: String?, kind: Kind, message: String) {
        self.file = file
        self.line = line
        self.field = field
        self.kind = kind
        self.message = message
    }

    public var severity: Severity { kind.severity }

    /// `file:line: field "image": message`, the format compilers use so editors can jump to it.
    public var description: String {
        let location = "\(file):\(line)"
        guard let field else { return "\(location): \(message)" }
        return "\(location): field \"\(field)\": \(message)"
    }
}
