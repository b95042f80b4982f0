import Foundation

/// The numeric metrics of a run by step, read from `OUTPUT/metrics.jsonl`: one JSON object
/// per line with an integer `step` and slash-namespaced values (`train/loss`, `train/lr`,
/// `val/map50`, `val/map50_95`, ...).
public struct MetricsHistory: Equatable, Sendable {
    /// Values by metric name, then by step.
    private var values: [String: [Int: Double]] = [:]

    public init() {}

    /// Records `value` for `name` at `step`, replacing an earlier value at that step.
    public mutating func record(_ name: String, step: Int, value: Double) {
        values[name, default: [:]][step] = value
    }

    /// Names of the metrics with at least one value, sorted.
    public var names: [String] { values.keys.sorted() }

    /// Returns the values of `name` in step order, or nothing when it was never recorded.
    public func series(_ name: String) -> [(step: Int, value: Double)] {
        (values[name] ?? [:]).sorted { $0.key < $1.key }.map { (step: $0.key, value: $0.value) }
    }

    /// Returns the value of `name` at the highest step that has one.
    public func latest(_ name: String) -> (step: Int, value: Double)? {
        series(name).last
    }

    /// Reads a metrics file. Non-numeric values (strings, booleans, null, arrays, objects)
    /// are skipped. When a step appears again (a run resumed from an earlier checkpoint),
    /// the later line wins. A last line without a newline that does not parse is skipped,
    /// because the training process may still be writing it. Any other bad line is an error.
    public static func load(contentsOf url: URL) throws(MetricsHistoryError) -> MetricsHistory {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw .unreadable(path: url.path, reason: error.localizedDescription)
        }

        var history = MetricsHistory()
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        for (index, line) in lines.enumerated() {
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            let isUnfinishedLastLine = index == lines.count - 1
            do {
                try history.add(line: Data(line))
            } catch let reason as LineError {
                if isUnfinishedLastLine { continue }
                throw .invalidLine(path: url.path, line: index + 1, reason: reason.text)
            } catch {
                if isUnfinishedLastLine { continue }
                throw .invalidLine(path: url.path, line: index + 1, reason: "invalid JSON (\(error))")
            }
        }
        return history
    }

    private struct LineError: Error {
        var text: String
    }

    private mutating func add(line: Data) throws {
        let object = try JSONDecoder().decode([String: JSONScalar].self, from: line)
        guard case .number(let stepValue)? = object["step"] else {
            throw LineError(text: "missing numeric key 'step'")
        }
        guard stepValue >= 0, stepValue == stepValue.rounded(), stepValue < 1e15 else {
            throw LineError(text: "'step' must be a non-negative integer, found \(stepValue)")
        }
        let step = Int(stepValue)
        for (name, value) in object where name != "step" {
            if case .number(let number) = value { record(name, step: step, value: number) }
        }
    }
}

/// A JSON value of a metrics line: a number, or anything else (which is skipped).
private enum JSONScalar: Decodable {
    case number(Double)
    case other

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Double.self) {
            self = .number(number)
        } else {
            self = .other
        }
    }
}

/// A metrics file that cannot be read.
public enum MetricsHistoryError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case invalidLine(path: String, line: Int, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason):
            return "\(path): cannot read the metrics file (\(reason))"
        case .invalidLine(let path, let line, let reason):
            return "\(path):\(line): \(reason)"
        }
    }
}
