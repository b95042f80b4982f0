import Foundation

/// Invalid input to `palitrain score`: the data split, the ground truth or the predictions.
public enum EvaluationInputError: Error, CustomStringConvertible, Equatable {
    /// No annotations file for `split` under `directory`; `tried` lists the paths looked at.
    case splitNotFound(directory: String, split: String, tried: [String])
    /// Both dataset layouts hold an annotations file for the split.
    case ambiguousSplit(split: String, paths: [String])
    case unreadableFile(path: String, reason: String)
    /// A file with no non-blank line.
    case emptyFile(path: String)
    /// A line that is not valid JSON or lacks a required key; `line` is 1-based.
    case invalidLine(path: String, line: Int, reason: String)
    case duplicateImage(path: String, line: Int, image: String, firstLine: Int)
    case unknownImage(path: String, line: Int, image: String, annotationsPath: String)
    case scoreCountMismatch(path: String, line: Int, scores: Int, objects: Int)
    /// Some lines carry `scores` and others do not.
    case mixedScores(path: String, lineWithScores: Int, lineWithout: Int)

    public var description: String {
        switch self {
        case .splitNotFound(let directory, let split, let tried):
            return "no annotations for split '\(split)' in \(directory); looked for \(tried.joined(separator: " and ")). "
                + "Check --data and --split (a Roboflow PaliGemma export or a maestro-style folder)."
        case .ambiguousSplit(let split, let paths):
            return "split '\(split)' has annotations in both layouts: \(paths.joined(separator: " and ")); remove one of them"
        case .unreadableFile(let path, let reason):
            return "\(path): \(reason)"
        case .emptyFile(let path):
            return "\(path): the file has no JSON lines"
        case .invalidLine(let path, let line, let reason):
            return "\(path):\(line): \(reason)"
        case .duplicateImage(let path, let line, let image, let firstLine):
            return "\(path):\(line): image '\(image)' already appeared on line \(firstLine); give one line per image"
        case .unknownImage(let path, let line, let image, let annotationsPath):
            return "\(path):\(line): image '\(image)' is not in the ground truth \(annotationsPath); "
                + "use the 'image' value of the annotations file"
        case .scoreCountMismatch(let path, let line, let scores, let objects):
            return "\(path):\(line): 'scores' has \(count(scores, "number")) but the suffix has \(count(objects, "object")) "
                + "(parts separated by ' ; '); give one score per object, in suffix order"
        case .mixedScores(let path, let lineWithScores, let lineWithout):
            return "\(path): line \(lineWithScores) has 'scores' but line \(lineWithout) does not; "
                + "give scores on every line or on none"
        }
    }
}

/// "1 object", "2 objects".
private func count(_ value: Int, _ noun: String) -> String {
    value == 1 ? "1 \(noun)" : "\(value) \(noun)s"
}

/// Reads the non-blank lines of a JSON Lines file with their 1-based line numbers.
func readJSONLines(_ url: URL) throws(EvaluationInputError) -> [(line: Int, data: Data)] {
    let data: Data
    do {
        data = try Data(contentsOf: url)
    } catch {
        throw .unreadableFile(path: url.path, reason: "cannot read the file (\(error.localizedDescription))")
    }

    var lines: [(line: Int, data: Data)] = []
    for (index, slice) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
        let trimmed = slice.filter { $0 != UInt8(ascii: "\r") }
        if trimmed.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
        lines.append((index + 1, Data(trimmed)))
    }
    if lines.isEmpty { throw .emptyFile(path: url.path) }
    return lines
}

/// Decodes one JSON line, turning decoding errors into a message that names the key.
func decodeLine<T: Decodable>(_ type: T.Type, _ data: Data, path: String, line: Int) throws(EvaluationInputError) -> T {
    do {
        return try JSONDecoder().decode(type, from: data)
    } catch let error as DecodingError {
        throw .invalidLine(path: path, line: line, reason: describe(error))
    } catch {
        throw .invalidLine(path: path, line: line, reason: "invalid JSON (\(error))")
    }
}

private func describe(_ error: DecodingError) -> String {
    switch error {
    case .keyNotFound(let key, _):
        return "missing key '\(key.stringValue)'"
    case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
        let key = keyPath(context.codingPath)
        return key.isEmpty ? "expected a JSON object" : "key '\(key)' must be \(jsonTypeName(type))"
    case .dataCorrupted(let context):
        let detail = context.underlyingError.map { "\($0)" } ?? context.debugDescription
        return "invalid JSON (\(detail))"
    @unknown default:
        return "invalid JSON (\(error))"
    }
}

/// Spells a coding path as in JSON tools: `scores[1]`, `a.b`.
private func keyPath(_ path: [CodingKey]) -> String {
    var text = ""
    for key in path {
        if let index = key.intValue {
            text += "[\(index)]"
        } else {
            text += text.isEmpty ? key.stringValue : "." + key.stringValue
        }
    }
    return text
}

private func jsonTypeName(_ type: Any.Type) -> String {
    switch type {
    case is String.Type: return "a string"
    case is Double.Type: return "a number"
    case is Bool.Type: return "true or false"
    case is [Double].Type: return "an array of numbers"
    default: return "of type \(type)"
    }
}
