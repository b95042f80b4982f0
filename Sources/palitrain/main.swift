import Foundation

func printTopLevelHelp() {
    print("usage: palitrain COMMAND [options]\n\nPaliGemma fine-tuning for object detection, data-parallel with MPI.\n\ncommands:")
    let width = (CommandList.all.map(\.name.count).max() ?? 0) + 2
    for command in CommandList.all {
        let padded = command.name.padding(toLength: width, withPad: " ", startingAt: 0)
        print("  \(padded)\(command.summary)")
    }
    print("\nRun 'palitrain COMMAND --help' for the options of one command.")
}

func writeError(_ text: String) {
    FileHandle.standardError.write((text + "\n").data(using: .utf8)!)
}

func runMain() -> Int32 {
    var arguments = Array(CommandLine.arguments.dropFirst())
    guard let commandName = arguments.first, commandName != "--help", commandName != "-h", commandName != "help" else {
        printTopLevelHelp()
        return arguments.isEmpty ? 2 : 0
    }
    arguments.removeFirst()

    guard let command = CommandList.all.first(where: { $0.name == commandName }) else {
        writeError("palitrain: unknown command '\(commandName)'; commands: \(CommandList.all.map(\.name).joined(separator: ", "))")
        return 2
    }
    if arguments.contains("--help") || arguments.contains("-h") {
        print(command.help)
        return 0
    }

    do {
        let parsed = try ParsedArguments(arguments, specs: command.options, allowsPositional: command.allowsPositional)
        try command.run(parsed)
        return 0
    } catch let error as UsageError {
        writeError("palitrain \(command.name): \(error.message)\nusage: palitrain \(command.name) [options]; see 'palitrain \(command.name) --help'")
        return 2
    } catch let error as ExitCode {
        return error.status
    } catch {
        writeError("palitrain \(command.name): error: \(error)")
        return 1
    }
}

/// Thrown by a command that has already printed its outcome and only needs a status.
struct ExitCode: Error {
    let status: Int32
}

exit(runMain())
