import Foundation

/// Paths of the committed test fixtures, found from this file's location.
enum Fixtures {
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // EvaluationTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    static let evaluation = repositoryRoot.appendingPathComponent("Tests/Fixtures/evaluation")
    static let cocoParity = evaluation.appendingPathComponent("coco-parity")

    /// Creates a fresh temporary directory, which the caller removes.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("palitrain-eval-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
