import Foundation

/// One usable record: an image and its prefix and suffix text.
public struct Example: Sendable, Hashable {
    /// The `image` field as written in the record.
    public let image: String
    /// The resolved path of the image file (inside the dataset folder).
    public let imagePath: String
    public let prefix: String
    public let suffix: String
    public let split: String
    /// The annotation file and 1-based line the record came from.
    public let sourceFile: String
    public let line: Int

    public init(image: String, imagePath: String, prefix: String, suffix: String, split: String, sourceFile: String, line: Int) {
        self.image = image
        self.imagePath = imagePath
        self.prefix = prefix
        self.suffix = suffix
        self.split = split
        self.sourceFile = sourceFile
        self.line = line
    }
}

/// The records of one split after parsing and path checks (images not yet decoded).
public struct SplitRecords: Sendable {
    public let split: SplitSource
    public var examples: [Example]
    /// Lines that could not become an example; one line may have several problems.
    public var problems: [RecordProblem]
    /// Non-blank lines read.
    public var recordCount: Int
}

public enum RecordReader {
    /// Reads every line of a split's JSONL file. Each line must be a JSON object with string
    /// fields `image`, `prefix` and `suffix`; other keys are ignored and blank lines skipped.
    public static func read(_ split: SplitSource, boundary: String, limits: DatasetLimits) throws -> SplitRecords {
        var reader = try JSONLLineReader(path: split.annotations, maxLineBytes: limits.maxLineBytes)
        var result = SplitRecords(split: split, examples: [], problems: [], recordCount: 0)
        let file = split.annotations

        while let line = try reader.next() {
            switch line {
            case .tooLong(let number, let bytes):
                result.recordCount += 1
                result.problems.append(RecordProblem(
                    file: file, line: number, field: nil, kind: .lineTooLong,
                    message: "the line is \(bytes) bytes, above maxLineBytes = \(limits.maxLineBytes); "
                        + "raise it with --max-line-bytes if the record is genuine"))
            case .content(let number, let bytes):
                if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
                result.recordCount += 1
                switch parse(bytes, file: file, line: number, split: split, boundary: boundary) {
                case .success(let example): result.examples.append(example)
                case .failure(let problems): result.problems += problems.problems
                }
            }
        }
        return result
    }

    struct Problems: Error {
        let problems: [RecordProblem]
    }

    static func parse(
        _ bytes: [UInt8], file: String, line: Int, split: SplitSource, boundary: String
    ) -> Result<Example, Problems> {
        func problem(_ field: String?, _ kind: RecordProblem.Kind, _ message: String) -> Result<Example, Problems> {
            .failure(Problems(problems: [RecordProblem(file: file, line: line, field: field, kind: kind, message: message)]))
        }

        // 1. UTF-8, then JSON, then an object.
        if let offset = firstInvalidUTF8Offset(bytes) {
            return problem(nil, .invalidUTF8, "invalid UTF-8 at byte \(offset + 1) of the line; save the file as UTF-8")
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(bytes))
        } catch {
            let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
            let start = String(decoding: bytes.prefix(60), as: UTF8.self)
            return problem(nil, .invalidJSON, "not valid JSON (\(detail)); the line starts with \(start.debugDescription)")
        }
        guard let record = object as? [String: Any] else {
            return problem(nil, .notAnObject, "expected a JSON object with \"image\", \"prefix\" and \"suffix\", found \(jsonKind(object))")
        }

        // 2. The three string fields; every missing or mistyped one is reported.
        var problems: [RecordProblem] = []
        var values: [String: String] = [:]
        for field in ["image", "prefix", "suffix"] {
            guard let value = record[field] else {
                problems.append(RecordProblem(file: file, line: line, field: field, kind: .missingField, message: "missing"))
                continue
            }
            guard let text = value as? String else {
                problems.append(RecordProblem(
                    file: file, line: line, field: field, kind: .fieldNotString,
                    message: "expected a string, found \(jsonKind(value))"))
                continue
            }
            values[field] = text
        }
        guard problems.isEmpty, let image = values["image"], let prefix = values["prefix"], let suffix = values["suffix"] else {
            return .failure(Problems(problems: problems))
        }

        // 3. The image path.
        switch ImagePath.resolve(image, imageRoot: split.imageRoot, boundary: boundary) {
        case .rejected(let reason):
            return problem("image", .imagePathRejected, "'\(image)' rejected: \(reason)")
        case .notFound(let path):
            return problem("image", .imageNotFound, "'\(image)' not found (looked for '\(path)')")
        case .resolved(let path):
            return .success(Example(
                image: image, imagePath: path, prefix: prefix, suffix: suffix, split: split.name, sourceFile: file,
                line: line))
        }
    }

    private static func jsonKind(_ value: Any) -> String {
        switch value {
        case is NSNull: return "null"
        case is String: return "a string"
        case let number as NSNumber:
            // swift-corelibs-foundation stores JSON booleans as NSNumber of type "c" (char).
            return String(cString: number.objCType) == "c" ? "a boolean" : "a number"
        case is [Any]: return "an array"
        case is [String: Any]: return "an object"
        default: return "\(type(of: value))"
        }
    }
}
