import Foundation

/// Paths of the committed fixtures, found from this file's location.
enum Fixtures {
    /// Tests/Fixtures/dataset
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("Fixtures/dataset")

    static var tokenizerModel: String { root.appendingPathComponent("tokenizer/test-tokenizer.model").path }

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    /// A fresh empty directory under the system temporary directory.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("palitrain-dataset-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
