/// A palitrain subcommand.
///
/// Each command lists its options once; the same list drives parsing, `--help` and the
/// error for an unknown option.
public protocol Command: SendableMetatype {
    static var name: String { get }
    /// One line for the command list.
    static var summary: String { get }
    static var options: [OptionSpec] { get }
    static var allowsPositional: Bool { get }
    static func run(_ arguments: ParsedArguments) throws
}

extension Command {
    public static var allowsPositional: Bool { false }

    /// The `--help` text: usage, summary and one line per option with its default.
    public static var help: String {
        var lines = ["usage: palitrain \(name) [options]", "", summary, "", "options:"]
        for spec in options {
            var left = "  --\(spec.name)"
            if case .value(let placeholder) = spec.kind { left += " \(placeholder)" }
            var right = spec.help
            if let value = spec.defaultValue { right += " (default: \(value))" }
            let padded = left.count < 30 ? left + String(repeating: " ", count: 30 - left.count) : left + "  "
            lines.append(padded + right)
        }
        lines.append("  --help                      print this help and exit")
        return lines.joined(separator: "\n")
    }
}

/// A command as a value, so the command list holds no existential metatypes.
public struct CommandEntry: Sendable {
    public let name: String
    public let summary: String
    public let options: [OptionSpec]
    public let allowsPositional: Bool
    public let help: String
    public let run: @Sendable (ParsedArguments) throws -> Void
}

extension Command {
    public static var entry: CommandEntry {
        CommandEntry(
            name: name, summary: summary, options: options, allowsPositional: allowsPositional, help: help,
            run: { try run($0) }
        )
    }
}
