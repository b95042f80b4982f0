/// A command-line option: its long name, the value it takes, its default and its help text.
///
/// palitrain uses no outside Swift packages, so this small parser follows
/// swift-argument-parser's rules by hand: kebab-case long options, the snake_case
/// spelling accepted as an alias, unknown options rejected with the list of accepted ones.
public struct OptionSpec: Sendable {
    public enum Kind: Sendable {
        /// `--name VALUE` or `--name=VALUE`.
        case value(placeholder: String)
        /// `--name` alone sets it; `--name=false` clears it.
        case flag
    }

    public let name: String
    public let kind: Kind
    public let defaultValue: String?
    public let help: String
    public let aliases: [String]

    public init(_ name: String, _ kind: Kind, default defaultValue: String? = nil, help: String, aliases: [String] = []) {
        self.name = name
        self.kind = kind
        self.defaultValue = defaultValue
        self.help = help
        self.aliases = aliases
    }

    public static func value(
        _ name: String, _ placeholder: String, default defaultValue: String? = nil, help: String, aliases: [String] = []
    ) -> OptionSpec {
        OptionSpec(name, .value(placeholder: placeholder), default: defaultValue, help: help, aliases: aliases)
    }

    public static func flag(_ name: String, help: String, aliases: [String] = []) -> OptionSpec {
        OptionSpec(name, .flag, default: nil, help: help, aliases: aliases)
    }

    /// Every spelling that selects this option, without the leading dashes.
    var spellings: [String] {
        let snake = name.replacingOccurrences(of: "-", with: "_")
        return [name] + (snake == name ? [] : [snake]) + aliases
    }
}

/// A usage error: printed with the command's usage line, exit status 2.
public struct UsageError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
