// Fuzz target `jsonl`: a split's annotation file through `palitrain validate`'s path:
// `RecordReader` (the chunked line reader, UTF-8 and JSON checks, the three string fields,
// image-path resolution), then `DatasetValidator` (image checks, detection prompt and suffix
// parsing with `DetectionText`) and the rendered report.
//
// Each input is written to `train.jsonl` in a scratch dataset folder. The folder contains a
// real JPEG `a.jpg`, a real PNG `img/b.png` and a symlink `outside.jpg` that leads out of it,
// so image paths can resolve, be missing, climb out with `..` or escape through the symlink.
import Foundation
@testable import Dataset

private let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

private struct Scratch {
    let root: String
    let source: DatasetSource
    var split: SplitSource { source.splits[0] }

    init() {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        root = "\(base)/palitrain-fuzz-jsonl-\(getpid())"
        let fileManager = FileManager.default
        let images = repositoryRoot.appendingPathComponent("Tests/Fixtures/dataset/images")
        try? fileManager.removeItem(atPath: root)
        try! fileManager.createDirectory(atPath: "\(root)/data/img", withIntermediateDirectories: true)
        try! fileManager.copyItem(atPath: images.appendingPathComponent("gray.jpg").path, toPath: "\(root)/data/a.jpg")
        try! fileManager.copyItem(atPath: images.appendingPathComponent("palette.png").path, toPath: "\(root)/data/img/b.png")
        fileManager.createFile(atPath: "\(root)/secret.jpg", contents: Data([0xFF, 0xD8, 0xFF]))
        try! fileManager.createSymbolicLink(atPath: "\(root)/data/outside.jpg", withDestinationPath: "\(root)/secret.jpg")
        let split = SplitSource(name: "train", annotations: "\(root)/data/train.jsonl", imageRoot: "\(root)/data")
        source = DatasetSource(layout: .explicit, boundary: "\(root)/data", splits: [split])
    }
}

nonisolated(unsafe) private let scratch = Scratch()

/// A small line limit, so that inputs of a few KiB reach the too-long path.
private let limits = DatasetLimits(maxImagePixels: 1 << 20, maxImageFileBytes: 1 << 20, maxLineBytes: 2048, maxProblemsListed: 50)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSONL(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    try! bytes.write(to: URL(fileURLWithPath: scratch.split.annotations))

    let report: ValidationReport
    do {
        report = try DatasetValidator.validate(scratch.source, options: ValidationOptions(limits: limits, threads: 1))
    } catch {
        // The file exists and is readable, so no error is expected.
        fatalError("DatasetValidator.validate threw for a readable file: \(error)")
    }
    checkInvariants(report.splits[0], bytes: bytes)
    keep(report.render().utf8.count)
    return 0
}

/// Checks that every non-blank line became exactly one example or at least one problem, at a
/// line number that exists, and that every example's image lies inside the dataset folder.
private func checkInvariants(_ records: SplitRecords, bytes: Data) {
    let lineCount = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).count
    let problemLines = Set(records.problems.map(\.line))
    let exampleLines = Set(records.examples.map(\.line))

    if !problemLines.isDisjoint(with: exampleLines) {
        fatalError("lines \(problemLines.intersection(exampleLines).sorted()) gave both an example and a problem")
    }
    if records.examples.count + problemLines.count != records.recordCount {
        fatalError(
            "\(records.recordCount) records, but \(records.examples.count) examples and problems on \(problemLines.count) lines")
    }
    for line in problemLines.union(exampleLines) where line < 1 || line > lineCount {
        fatalError("line number \(line) outside 1...\(lineCount)")
    }
    for problem in records.problems {
        let message = problem.description
        if !message.hasPrefix("\(scratch.split.annotations):\(problem.line):") {
            fatalError("problem does not start with file:line: \(message)")
        }
        keep(message.utf8.count)
    }
    let realRoot = URL(fileURLWithPath: "\(scratch.root)/data").resolvingSymlinksInPath().path + "/"
    for example in records.examples {
        let real = URL(fileURLWithPath: example.imagePath).resolvingSymlinksInPath().path
        if !real.hasPrefix(realRoot) {
            fatalError("example on line \(example.line) resolves to \(real), outside \(realRoot)")
        }
        keep(example.prefix.utf8.count + example.suffix.utf8.count)
    }
}
