import Foundation

/// Builds small datasets in a temporary folder from the committed image fixtures.
struct DatasetBuilder {
    let root: URL

    init() throws {
        root = try Fixtures.temporaryDirectory()
    }

    func remove() {
        try? FileManager.default.removeItem(at: root)
    }

    /// Writes `lines` (joined with "\n") to `relative` under the root, creating folders.
    @discardableResult
    func write(_ relative: String, lines: [String]) throws -> String {
        try write(relative, data: Data((lines.joined(separator: "\n") + "\n").utf8))
    }

    @discardableResult
    func write(_ relative: String, data: Data) throws -> String {
        let url = root.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url)
        return url.path
    }

    /// Copies an image fixture to `relative` under the root.
    @discardableResult
    func copyImage(_ fixture: String, to relative: String) throws -> String {
        try write(relative, data: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("images/" + fixture))))
    }

    /// A JSONL line with the three fields.
    static func record(_ image: String, _ prefix: String, _ suffix: String) -> String {
        let object: [String: String] = ["image": image, "prefix": prefix, "suffix": suffix]
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
