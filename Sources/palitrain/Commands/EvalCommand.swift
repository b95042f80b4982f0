import Checkpoint
import Dataset
import Evaluation
import Foundation
import PaliGemmaModel
import TensorCore

/// `palitrain eval`: decodes a dataset split with a checkpoint and reports COCO mAP.
struct EvalCommand: Command {
    static let name = "eval"
    static let summary = "decode a dataset split with a checkpoint and report COCO mAP, runaway and parse-failure rates"
    static let options: [OptionSpec] = [
        .value("checkpoint", "FILE.npz", help: "parameters in big_vision NPZ layout"),
        .value("data", "DIR", help: "dataset folder: Roboflow export or train/valid/test folders"),
        .value("tokenizer", "FILE.model", help: "the SentencePiece model the checkpoint was trained with"),
        .value("split", "NAME", default: "valid", help: "split to evaluate"),
        .value("max-new-tokens", "N", default: "128", help: "tokens generated at most per image; outputs without EOS by then count as runaway"),
        .value("batch-size", "N", default: "8", help: "images decoded together"),
        .value("cache-dtype", "f32|bf16", default: "f32", help: "precision of the key/value cache (big_vision's default is bf16)"),
        .value("limit", "N", help: "evaluate only the first N examples of the split"),
        .value("predictions", "FILE.jsonl", help: "also write one line per image in the format 'palitrain score' reads"),
        .value("report", "DIR", help: "also write DIR/report.html with the first --gallery images and their boxes"),
        .value("gallery", "N", default: "8", help: "images in the --report gallery"),
        .value("threads", "N", default: "0", help: "kernel threads; 0 uses every processor"),
        .flag("json", help: "print one JSON object instead of the table"),
    ]

    static func run(_ arguments: ParsedArguments) throws {
        let checkpointPath = try arguments.required("checkpoint")
        let dataPath = try arguments.required("data")
        let tokenizerPath = try arguments.required("tokenizer")
        let splitName = try arguments.required("split")
        let settings = ValidationSettings(
            batchSize: try positive("batch-size", arguments) ?? 8,
            maxNewTokens: try positive("max-new-tokens", arguments) ?? 128,
            cachePrecision: KVCachePrecision(rawValue: try arguments.choice("cache-dtype", ["f32", "bf16"]) ?? "f32")!,
            galleryCount: arguments.string("report") == nil ? 0 : try positive("gallery", arguments) ?? 8)
        let limit = try positive("limit", arguments)
        let threads = try arguments.int("threads") ?? 0
        guard threads >= 0 else { throw UsageError("option '--threads' must be 0 or more, found \(threads)") }
        Threading.setThreadCount(threads)

        // 1. Examples of the split; records that cannot be used are reported and skipped
        let source = try DatasetSource.discover(directory: dataPath)
        let records = try RecordReader.read(try source.split(splitName), boundary: source.boundary, limits: settings.limits)
        if !records.problems.isEmpty {
            let first = records.problems[0]
            writeError("eval: skipped \(records.problems.count) problem\(records.problems.count == 1 ? "" : "s") in "
                + "\(records.recordCount) records of split '\(splitName)'; first: \(first); run 'palitrain validate' for the full list")
        }
        let examples = limit.map { Array(records.examples.prefix($0)) } ?? records.examples

        // 2. Model, tokenizer, validator
        let tokenizer = try Tokenizer(modelPath: tokenizerPath)
        let validator = try Validator(examples: examples, tokenizer: tokenizer, settings: settings)
        let model = PaliGemma(parameters: try ParameterStore(npz: NPZReader(path: checkpointPath), trainable: "^$"))
        writeError("eval: \(validator.exampleCount) examples of split '\(splitName)', \(validator.classes.count) classes, "
            + "batch \(settings.batchSize), at most \(settings.maxNewTokens) new tokens, \(settings.cachePrecision.rawValue) cache, "
            + "\(Threading.threadCount) thread\(Threading.threadCount == 1 ? "" : "s")")

        // 3. Decode and score
        let result = try validator.run(model) { done, total in
            writeError("eval: decoded \(done) of \(total)")
        }
        writeError(String(format: "eval: %.1f s, %.1f s of it decoding", result.totalSeconds, result.decodeSeconds))

        // 4. Optional files, then the report on stdout
        if let path = arguments.string("predictions") {
            let lines = try result.predictions.map { try $0.scoreLine() }
            try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            writeError("eval: wrote \(lines.count) predictions to \(path)")
        }
        if let directory = arguments.string("report") {
            let url = URL(fileURLWithPath: directory)
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            let page = try ReportWriter(outputDirectory: url).write(gallery: result.gallery)
            writeError("eval: wrote \(page.path)")
        }
        if arguments.flag("json") {
            print(try ScoreReport.json(result.score))
        } else {
            print(ScoreReport.table(result.score, source: "split '\(splitName)' of \(dataPath), decoded with \(checkpointPath)"))
        }
    }

    private static func positive(_ name: String, _ arguments: ParsedArguments) throws -> Int? {
        guard let value = try arguments.int(name) else { return nil }
        guard value >= 1 else { throw UsageError("option '--\(name)' must be at least 1, found \(value)") }
        return value
    }
}
