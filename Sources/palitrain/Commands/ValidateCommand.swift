import Checkpoint
import Dataset
import Foundation
import PaliGemmaModel

/// Checks a dataset the way training would read it and prints a report.
struct ValidateCommand: Command {
    static let name = "validate"
    static let summary = "check a PaliGemma JSONL dataset and print a report"
    static let options: [OptionSpec] = [
        .value("data", "DIR", help: "dataset folder: Roboflow export or train/valid/test folders"),
        .value("train-jsonl", "FILE", help: "training annotations, instead of --data"),
        .value("valid-jsonl", "FILE", help: "validation annotations, instead of --data"),
        .value("test-jsonl", "FILE", help: "test annotations, instead of --data"),
        .value("image-root", "DIR", help: "folder the image paths of --*-jsonl files are relative to"),
        .value("tokenizer", "FILE", help: "SentencePiece .model; enables the sequence length check"),
        .value("checkpoint", "FILE", help: "model checkpoint to take the image size and vocabulary from (with --max-len, default 128, as train uses)"),
        .value("image-size", "N", help: "preprocess every image to N x N (224, 448 or 896)"),
        .value("max-len", "N", help: "model text length L; training rows hold L + 1 tokens"),
        .value("max-problems", "N", default: "50", help: "problems listed per severity before only counting"),
        .value("max-image-pixels", "N", default: "100000000", help: "largest image, width x height"),
        .value("max-image-bytes", "N", default: "268435456", help: "largest image file in bytes"),
        .value("max-line-bytes", "N", default: "1048576", help: "longest JSONL line in bytes"),
        .value("threads", "N", help: "threads that decode images (default: all processors)"),
        .flag("strict", help: "exit with status 1 on warnings too"),
    ]

    static func run(_ arguments: ParsedArguments) throws {
        let source = try datasetSource(arguments)
        var options = ValidationOptions(limits: try limits(arguments))
        if let threads = try arguments.int("threads") { options.threads = max(1, threads) }

        options.imageSize = try positive(arguments, "image-size")
        options.maxTextLength = try positive(arguments, "max-len")
        if let path = arguments.string("tokenizer") {
            options.tokenizer = try Tokenizer(modelPath: path)
        }

        // A checkpoint fixes the image size and the vocabulary; the text length is a training
        // setting (train's --max-len, default 128), since checkpoints do not store it.
        if let checkpoint = arguments.string("checkpoint") {
            let config = try modelConfig(checkpoint: checkpoint)
            if let size = options.imageSize, size != config.vision.imageSize {
                throw UsageError("--image-size \(size) disagrees with the checkpoint's \(config.vision.imageSize); drop one of them")
            }
            options.imageSize = config.vision.imageSize
            if options.tokenizer != nil && options.maxTextLength == nil { options.maxTextLength = 128 }
            if let tokenizer = options.tokenizer, tokenizer.vocabularySize > config.llm.vocabSize {
                throw UsageError(
                    "the tokenizer has \(tokenizer.vocabularySize) pieces but the checkpoint's vocabulary has \(config.llm.vocabSize) rows; "
                        + "use the tokenizer the checkpoint was made for")
            }
        }
        if options.maxTextLength != nil && options.tokenizer == nil {
            throw UsageError("--max-len needs --tokenizer to count tokens")
        }

        let report = try DatasetValidator.validate(source, options: options)
        print(report.render())
        if report.trainingWouldFail || (arguments.flag("strict") && report.warningCount > 0) {
            throw ExitCode(status: 1)
        }
    }

    /// Infers the model sizes from the checkpoint's array shapes, reading headers only.
    static func modelConfig(checkpoint: String) throws -> PaliGemmaConfig {
        let reader = try NPZReader(path: checkpoint)
        var shapes: [String: [Int]] = [:]
        for key in reader.keys { shapes[key] = try reader.header(key).shape }
        return try PaliGemmaConfig.infer(from: shapes)
    }

    static func datasetSource(_ arguments: ParsedArguments) throws -> DatasetSource {
        let files = [("train", "train-jsonl"), ("valid", "valid-jsonl"), ("test", "test-jsonl")].compactMap { split, option in
            arguments.string(option).map { (split: split, path: $0) }
        }
        if let directory = arguments.string("data") {
            guard files.isEmpty else { throw UsageError("pass either --data or --train-jsonl/--valid-jsonl, not both") }
            return try DatasetSource.discover(directory: directory)
        }
        guard !files.isEmpty else { throw UsageError("pass --data DIR, or --train-jsonl FILE (with --valid-jsonl)") }
        return try DatasetSource.explicit(files: files, imageRoot: arguments.string("image-root"))
    }

    static func limits(_ arguments: ParsedArguments) throws -> DatasetLimits {
        var limits = DatasetLimits()
        if let value = try positive(arguments, "max-problems") { limits.maxProblemsListed = value }
        if let value = try positive(arguments, "max-image-pixels") { limits.maxImagePixels = value }
        if let value = try positive(arguments, "max-image-bytes") { limits.maxImageFileBytes = value }
        if let value = try positive(arguments, "max-line-bytes") { limits.maxLineBytes = value }
        return limits
    }

    private static func positive(_ arguments: ParsedArguments, _ name: String) throws -> Int? {
        guard let value = try arguments.int(name) else { return nil }
        guard value > 0 else { throw UsageError("option '--\(name)' must be positive, found \(value)") }
        return value
    }
}
