import Dataset
import Foundation

/// Measures image decoding and preprocessing throughput on one thread.
struct BenchDataCommand: Command {
    static let name = "bench-data"
    static let summary = "measure JPEG/PNG decode and resize throughput on one core"
    static let options: [OptionSpec] = [
        .value("images", "DIR", help: "folder of .jpg/.jpeg/.png files to decode"),
        .value("size", "N", default: "224", help: "output width and height in pixels"),
        .value("seconds", "S", default: "3", help: "minimum time per measurement"),
    ]

    static func run(_ arguments: ParsedArguments) throws {
        let directory = try arguments.required("images")
        let size = try arguments.int("size") ?? 224
        let seconds = try arguments.double("seconds") ?? 3
        guard size > 0 else { throw UsageError("option '--size' must be positive, found \(size)") }

        let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        let files = names.filter { name in
            let lower = name.lowercased()
            return lower.hasSuffix(".jpg") || lower.hasSuffix(".jpeg") || lower.hasSuffix(".png")
        }.map { URL(fileURLWithPath: directory).appendingPathComponent($0).path }
        guard !files.isEmpty else { throw UsageError("no .jpg, .jpeg or .png files in '\(directory)'") }

        let result = try DataBenchmark.run(files: files, size: size, minimumSeconds: seconds)
        print(result.description)
    }
}
