/// Options given on the command line, resolved against a command's `OptionSpec`s.
public struct ParsedArguments {
    /// Values by canonical option name, defaults filled in.
    public private(set) var values: [String: String]
    /// Canonical names the user gave explicitly (defaults excluded).
    public private(set) var explicit: Set<String>
    /// Arguments that are not options, in order.
    public let positional: [String]

    /// Parses `arguments` (without the program and command names) against `specs`.
    public init(_ arguments: [String], specs: [OptionSpec], allowsPositional: Bool = false) throws {
        var bySpelling: [String: OptionSpec] = [:]
        for spec in specs {
            for spelling in spec.spellings { bySpelling[spelling] = spec }
        }

        var values: [String: String] = [:]
        for spec in specs {
            if let value = spec.defaultValue { values[spec.name] = value }
        }
        var explicit = Set<String>()
        var positional: [String] = []

        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1

            guard argument.hasPrefix("--"), argument.count > 2 else {
                if argument.hasPrefix("-") && argument != "-" {
                    throw UsageError("unknown option '\(argument)'; options are long and start with '--'")
                }
                guard allowsPositional else {
                    throw UsageError("unexpected argument '\(argument)'; this command takes only '--name value' options")
                }
                positional.append(argument)
                continue
            }

            let body = argument.dropFirst(2)
            let name: String
            var inlineValue: String?
            if let equals = body.firstIndex(of: "=") {
                name = String(body[..<equals])
                inlineValue = String(body[body.index(after: equals)...])
            } else {
                name = String(body)
            }

            guard let spec = bySpelling[name] else {
                let accepted = specs.map { "--" + $0.name }.sorted().joined(separator: ", ")
                throw UsageError("unknown option '--\(name)'; accepted options: \(accepted)")
            }

            switch spec.kind {
            case .flag:
                let value = inlineValue ?? "true"
                guard value == "true" || value == "false" else {
                    throw UsageError("option '--\(spec.name)' is a switch; use '--\(spec.name)' or '--\(spec.name)=false', not '\(value)'")
                }
                values[spec.name] = value
            case .value(let placeholder):
                if let inlineValue {
                    values[spec.name] = inlineValue
                } else {
                    guard index < arguments.count else {
                        throw UsageError("option '--\(spec.name)' requires a value (\(placeholder))")
                    }
                    values[spec.name] = arguments[index]
                    index += 1
                }
            }
            explicit.insert(spec.name)
        }

        self.values = values
        self.explicit = explicit
        self.positional = positional
    }

    /// The string value of `name`, or nil when neither given nor defaulted.
    public func string(_ name: String) -> String? { values[name] }

    /// The value of `name`; throws a usage error naming the option when it is missing.
    public func required(_ name: String) throws -> String {
        guard let value = values[name], !value.isEmpty else {
            throw UsageError("missing required option '--\(name)'")
        }
        return value
    }

    public func flag(_ name: String) -> Bool { values[name] == "true" }

    public func int(_ name: String) throws -> Int? {
        guard let text = values[name] else { return nil }
        guard let value = Int(text) else {
            throw UsageError("option '--\(name)' expects an integer, found '\(text)'")
        }
        return value
    }

    public func double(_ name: String) throws -> Double? {
        guard let text = values[name] else { return nil }
        guard let value = Double(text), value.isFinite else {
            throw UsageError("option '--\(name)' expects a finite number, found '\(text)'")
        }
        return value
    }

    /// The value of `name` if it is one of `choices`; throws listing the accepted values otherwise.
    public func choice(_ name: String, _ choices: [String]) throws -> String? {
        guard let text = values[name] else { return nil }
        guard choices.contains(text) else {
            throw UsageError("option '--\(name)' accepts \(choices.joined(separator: "|")), found '\(text)'")
        }
        return text
    }

    /// Sets a value as if the user had not given it (used to apply config files under flags).
    public mutating func setDefault(_ name: String, _ value: String) {
        if !explicit.contains(name) { values[name] = value }
    }
}
