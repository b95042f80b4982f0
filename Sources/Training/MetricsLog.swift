import Checkpoint
import Foundation

/// Appends one JSON object per line to `metrics.jsonl` (rank 0 only).
///
/// The file is opened in append mode, so a resumed run continues the same file. Keys are
/// slash-namespaced (`train/loss`, `val/map50`) and written sorted after `step`.
public final class MetricsLog {
    public let path: String
    private let handle: FileHandle

    public init(path: String) throws {
        self.path = path
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw RunOutputError.writeFailed(path: path, reason: errnoDescription())
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw RunOutputError.writeFailed(path: path, reason: "cannot open for appending")
        }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    deinit {
        try? handle.close()
    }

    /// Appends `values` for `step`. Non-finite numbers are written as JSON null.
    public func append(step: Int, _ values: [String: Double]) throws {
        do {
            try handle.write(contentsOf: Data((Self.line(step: step, values) + "\n").utf8))
        } catch {
            throw RunOutputError.writeFailed(path: path, reason: "append of step \(step): \(error.localizedDescription)")
        }
    }

    /// Drops the lines of steps after `step` from the file at `path`, and any line that is not a
    /// complete JSON object with an integer `step` (a process killed while appending leaves a
    /// torn last line). Returns the number of lines dropped; a missing file drops none.
    ///
    /// A run resumed from the checkpoint of `step` calls this before it appends, so that steps
    /// the killed run logged after its last checkpoint do not appear twice.
    @discardableResult
    public static func truncate(path: String, afterStep step: Int) throws -> Int {
        guard let data = FileManager.default.contents(atPath: path) else { return 0 }
        var kept: [Substring] = []
        var dropped = 0
        let text = String(decoding: data, as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        for (index, line) in lines.enumerated() {
            let isTorn = index == lines.count - 1 && !text.hasSuffix("\n")
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            guard !isTorn, let lineStep = object?["step"] as? Int, lineStep <= step else {
                dropped += 1
                continue
            }
            kept.append(line)
        }
        guard dropped > 0 else { return 0 }
        let bytes = Array(kept.map { $0 + "\n" }.joined().utf8)
        try writeFileAtomically(path: path, bytes: bytes)
        return dropped
    }

    static func line(step: Int, _ values: [String: Double]) -> String {
        var parts = ["\"step\": \(step)"]
        for key in values.keys.sorted() {
            let value = values[key]!
            let text = value.isFinite ? formatNumber(value) : "null"
            parts.append("\(jsonString(key)): \(text)")
        }
        return "{" + parts.joined(separator: ", ") + "}"
    }

    static func formatNumber(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(format: "%.9g", value)
    }
}

/// A JSON string literal for `text`, with the escapes JSON requires.
public func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 {
                out += String(format: "\\u%04x", scalar.value)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}
