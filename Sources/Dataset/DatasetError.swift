/// A dataset that cannot be used as given.
public enum DatasetError: Error, CustomStringConvertible {
    case directoryNotFound(path: String)
    case noAnnotations(directory: String, searched: [String])
    case ambiguousLayout(directory: String, roboflow: String, perSplit: String)
    case fileNotReadable(path: String, reason: String)
    case missingSplit(name: String, available: [String])
    /// Records with errors, and skipping them was not requested.
    case badRecords(errorCount: Int, listed: [RecordProblem])
    /// A split has no usable record left.
    case noUsableRecords(split: String, file: String, skipped: Int)
    case invalidLoaderSetting(name: String, value: Int, reason: String)
    case cursorMismatch(field: String, saved: String, current: String)
    /// `next()` was called after `stop()`, or after a failure was already reported.
    case loaderStopped
    /// An example failed while the loader prepared it.
    case exampleFailed(file: String, line: Int, image: String, cause: any Error)

    public var description: String {
        switch self {
        case .directoryNotFound(let path):
            return "dataset directory '\(path)' not found"
        case .noAnnotations(let directory, let searched):
            return "no annotation files in '\(directory)'; looked for \(searched.joined(separator: ", ")). "
                + "Expected Roboflow's PaliGemma export (_annotations.train.jsonl, _annotations.valid.jsonl, "
                + "optionally inside dataset/) or train/annotations.jsonl, valid/annotations.jsonl; or pass the "
                + "JSONL files with --train-jsonl/--valid-jsonl and --image-root"
        case .ambiguousLayout(let directory, let roboflow, let perSplit):
            return "'\(directory)' holds two dataset layouts: Roboflow files in '\(roboflow)' and per-split "
                + "folders in '\(perSplit)'; pass the JSONL files explicitly with --train-jsonl and --valid-jsonl"
        case .fileNotReadable(let path, let reason):
            return "cannot read '\(path)': \(reason)"
        case .missingSplit(let name, let available):
            return "the dataset has no '\(name)' split (found: \(available.joined(separator: ", ")))"
        case .badRecords(let errorCount, let listed):
            var lines = ["\(errorCount) record\(errorCount == 1 ? "" : "s") cannot be used:"]
            lines += listed.map { "  \($0)" }
            if errorCount > listed.count { lines.append("  … and \(errorCount - listed.count) more") }
            lines.append("Fix them, or pass --skip-bad-records to train without them; "
                + "'palitrain validate' prints the full report.")
            return lines.joined(separator: "\n")
        case .noUsableRecords(let split, let file, let skipped):
            return "split '\(split)' (\(file)) has no usable record (\(skipped) skipped); see 'palitrain validate'"
        case .invalidLoaderSetting(let name, let value, let reason):
            return "invalid \(name) = \(value): \(reason)"
        case .cursorMismatch(let field, let saved, let current):
            return "cannot resume the data loader: the saved \(field) is \(saved) but the current one is \(current); "
                + "resume with the same dataset, seed and global batch size, or start a new run"
        case .loaderStopped:
            return "the data loader has stopped (after stop() or an earlier error); create a new loader"
        case .exampleFailed(let file, let line, let image, let cause):
            return "\(file):\(line): image '\(image)': \(cause)"
        }
    }
}
