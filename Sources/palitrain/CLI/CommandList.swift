/// Every subcommand, in the order `palitrain --help` lists them.
enum CommandList {
    static let all: [CommandEntry] = [
        VersionCommand.entry,
        ValidateCommand.entry,
        BenchDataCommand.entry,
    ]
}
