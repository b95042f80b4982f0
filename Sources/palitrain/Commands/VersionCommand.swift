/// Prints the palitrain version and the versions of the C libraries it links.
struct VersionCommand: Command {
    static let name = "version"
    static let summary = "print the version of palitrain"
    static let options: [OptionSpec] = []

    static func run(_ arguments: ParsedArguments) throws {
        print("palitrain 0.1.0")
    }
}
