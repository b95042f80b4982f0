import Foundation

/// Paths of the repository's test fixtures, found from this file's location.
enum Fixtures {
    /// The repository root: two levels above Tests/CheckpointTests.
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .deletingLastPathComponent()
        .deletingLastPathComponent()

    static func golden(_ name: String) -> String {
        repositoryRoot.appendingPathComponent("Tests/Fixtures/golden/\(name)").path
    }

    static func hostile(_ name: String) -> String {
        repositoryRoot.appendingPathComponent("Tests/Fixtures/hostile/\(name)").path
    }
}

/// A fresh directory under the system temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("palitrain-checkpoint-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String {
        url.appendingPathComponent(name).path
    }

    func remove() {
        try? FileManager.default.removeItem(at: url)
    }
}

/// Runs python3 for interoperability checks.
enum Python {
    /// Runs `python3 -c script arguments...` and returns its exit status and combined output.
    static func run(_ script: String, arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do {
            try process.run()
        } catch {
            return (127, "cannot start python3: \(error)")
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
