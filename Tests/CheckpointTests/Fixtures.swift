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
