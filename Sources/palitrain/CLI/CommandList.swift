/// Every subcommand, in the order `palitrain --help` lists them.
enum CommandList {
    static let all: [CommandEntry] = [
        MakeDemoDataCommand.entry,
        MakeTokenizerCommand.entry,
        ValidateCommand.entry,
        InitCommand.entry,
        TrainCommand.entry,
        StepCommand.entry,
        DecodeCommand.entry,
        EvalCommand.entry,
        PredictCommand.entry,
        ScoreCommand.entry,
        VersionCommand.entry,
        CommCheckCommand.entry,
        BenchAllreduceCommand.entry,
        BenchDataCommand.entry,
        BenchCommand.entry,
    ]
}
