import Dataset
import Evaluation
import Foundation

/// `palitrain make-demo-data`: writes the demo detection dataset and its tokenizer.
struct MakeDemoDataCommand: Command {
    static let name = "make-demo-data"
    static let summary = "compose the demo dataset of handwritten digits (Roboflow PaliGemma layout) and its tokenizer"
    static let options: [OptionSpec] = [
        .value("out", "DIR", help: "folder for _annotations.{train,valid}.jsonl, the JPEG files and tokenizer.model"),
        .value("train", "N", default: "800", help: "training scenes"),
        .value("valid", "N", default: "100", help: "validation scenes"),
        .value("size", "PIXELS", default: "224", help: "side of each square scene"),
        .value("seed", "N", default: "0", help: "seed; the same seed gives the same files"),
        .value(
            "digit-scale", "MIN,MAX", default: "0.3,0.6",
            help: "range of each digit's height as a fraction of the scene side, drawn uniformly per digit"),
        .value("digits", "FILE", help: "optdigits.csv to read (default: the copy built into palitrain)"),
    ]

    static func run(_ arguments: ParsedArguments) throws {
        let output = try arguments.required("out")
        let trainCount = try arguments.int("train") ?? 800
        let validCount = try arguments.int("valid") ?? 100
        let size = try arguments.int("size") ?? 224
        guard trainCount > 0, validCount > 0 else {
            throw UsageError("--train and --valid must be positive, found \(trainCount) and \(validCount)")
        }
        guard (56...2048).contains(size) else {
            throw UsageError("--size must be between 56 and 2048 pixels, found \(size)")
        }
        guard let seed = UInt64(arguments.string("seed") ?? "0") else {
            throw UsageError("option '--seed' expects a non-negative integer, found '\(arguments.string("seed") ?? "")'")
        }

        let digitScale = try parseDigitScale(arguments.string("digit-scale") ?? "0.3,0.6")

        // 1. Scenes and annotations.
        let digitsPath = try arguments.string("digits") ?? bundledDigitsPath()
        let digits = try loadHandwrittenDigits(path: digitsPath)
        var writer = DemoDatasetWriter(outputDirectory: output, sceneSize: size, seed: seed)
        writer.digitScale = digitScale
        let counts = try writer.write(digits: digits, trainCount: trainCount, validCount: validCount) { pixels, width, height in
            Array(try JPEGEncoder.encode(pixels: pixels, width: width, height: height, quality: 92))
        }

        // 2. A tokenizer trained on the annotation text, with all loc and seg pieces.
        let tokenizerPath = try writeDemoTokenizer(outputDirectory: output)
        let tokenizer = try Tokenizer(modelPath: tokenizerPath)

        print("make-demo-data: wrote \(counts.train) training and \(counts.valid) validation scenes (\(counts.objects) digits) to \(output)")
        print("make-demo-data: tokenizer \(tokenizerPath): \(tokenizer.vocabularySize) pieces")
    }

    /// Reads `MIN,MAX` with 0.05 <= MIN <= MAX <= 0.9.
    static func parseDigitScale(_ text: String) throws -> ClosedRange<Double> {
        let parts = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let low = parts[0], let high = parts[1], 0.05 <= low, low <= high, high <= 0.9 else {
            throw UsageError(
                "option '--digit-scale' expects MIN,MAX with 0.05 <= MIN <= MAX <= 0.9 (fractions of the scene side), found '\(text)'")
        }
        return low...high
    }

    /// The optdigits file copied next to the binary as a SwiftPM resource.
    static func bundledDigitsPath() throws -> String {
        guard let path = Bundle.module.path(forResource: "optdigits", ofType: "csv") else {
            throw DemoDataError.digitsNotFound(path: "optdigits.csv in the palitrain resource bundle")
        }
        return path
    }

    /// Trains `OUT/tokenizer.model` on the dataset's prefixes and suffixes.
    static func writeDemoTokenizer(outputDirectory: String) throws -> String {
        var corpus: [String] = []
        for split in ["train", "valid"] {
            let path = (outputDirectory as NSString).appendingPathComponent("_annotations.\(split).jsonl")
            let text = try String(contentsOfFile: path, encoding: .utf8)
            for line in text.split(separator: "\n") {
                guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String] else { continue }
                corpus.append(object["prefix"] ?? "")
                corpus.append(object["suffix"] ?? "")
            }
        }
        // A few common prompt words, so that other prompts do not fall back to bytes entirely.
        corpus += ["detect", "caption en", "answer en", "segment", "digit", "number", "one two three four five six seven eight nine zero"]

        let scratch = NSTemporaryDirectory() + "palitrain-demo-tokenizer-\(getpid())"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let corpusPath = scratch + "/corpus.txt"
        try corpus.joined(separator: "\n").write(toFile: corpusPath, atomically: true, encoding: .utf8)

        let prefix = scratch + "/tokenizer"
        try TokenizerTraining.train(options: TokenizerTraining.paliGemmaStyleOptions(corpus: corpusPath, modelPrefix: prefix, vocabularySize: 1500))
        let destination = (outputDirectory as NSString).appendingPathComponent("tokenizer.model")
        try? FileManager.default.removeItem(atPath: destination)
        try FileManager.default.copyItem(atPath: prefix + ".model", toPath: destination)
        return destination
    }
}
