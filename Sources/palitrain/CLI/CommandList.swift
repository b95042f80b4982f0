/// Every subcommand, in the order `palitrain --help` lists them.
enum CommandList {
    static let all: [CommandEntry] = [
        InitCommand.entry,
        StepCommand.entry,
        DecodeCommand.entry,
        ScoreCommand.entry,
        VersionCommand.entry,
    ]
}
