import Dataset
import Foundation

/// `palitrain make-tokenizer`: trains a small sentencepiece model on a dataset's text, so that
/// a small model can be trained from scratch on any export without PaliGemma's 257,152-piece
/// tokenizer.
struct MakeTokenizerCommand: Command {
    static let name = "make-tokenizer"
    static let summary = "train a small sentencepiece tokenizer with all <locNNNN> and <segNNN> pieces on a dataset's prefixes and suffixes"
    static let options: [OptionSpec] = [
        .value("data", "DIR", help: "dataset folder: Roboflow PaliGemma export or train/valid/test folders; every split is read"),
        .value("out", "FILE.model", help: "where to write the sentencepiece model"),
        .value("vocab-size", "N", default: "1500", help: "pieces at most, including 4 special, 1152 loc/seg and 256 byte pieces "
            + "(at least \(TokenizerTraining.minimumVocabularySize)); a small dataset gives fewer"),
        .flag("skip-bad-records", help: "leave out records with errors instead of stopping"),
        .value("max-line-bytes", "N", default: "1048576", help: "longest JSONL line in bytes"),
    ]

    static func run(_ arguments: ParsedArguments) throws {
        let directory = try arguments.required("data")
        let output = try arguments.required("out")
        let vocabularySize = try arguments.int("vocab-size") ?? 1500
        guard vocabularySize >= TokenizerTraining.minimumVocabularySize else {
            throw UsageError("option '--vocab-size' must be at least \(TokenizerTraining.minimumVocabularySize) "
                + "(4 special, 1152 loc/seg and 256 byte pieces, plus one), found \(vocabularySize)")
        }
        var limits = DatasetLimits()
        limits.maxLineBytes = try arguments.int("max-line-bytes") ?? limits.maxLineBytes
        guard limits.maxLineBytes > 0 else {
            throw UsageError("option '--max-line-bytes' must be positive, found \(limits.maxLineBytes)")
        }

        // 1. Every record of every split. Images are only located here, never decoded.
        let source = try DatasetSource.discover(directory: directory)
        var examples: [Example] = []
        var problems: [RecordProblem] = []
        var splitCounts: [String] = []
        for split in source.splits {
            let records = try RecordReader.read(split, boundary: source.boundary, limits: limits)
            examples += records.examples
            problems += records.problems
            splitCounts.append("\(split.name) \(records.examples.count)")
        }
        let badLines = Set(problems.map { "\($0.file):\($0.line)" }).count
        if badLines > 0 && !arguments.flag("skip-bad-records") {
            throw DatasetError.badRecords(errorCount: badLines, listed: Array(problems.prefix(limits.maxProblemsListed)))
        }
        guard !examples.isEmpty else {
            throw DatasetError.noUsableRecords(
                split: source.splits.map(\.name).joined(separator: ", "), file: directory, skipped: badLines)
        }

        // 2. The model, trained on the prefixes and suffixes and checked to round-trip each one.
        let texts = examples.flatMap { [$0.prefix, $0.suffix] }
        let tokenizer = try TokenizerTraining.trainTokenizer(texts: texts, outputPath: output, vocabularySize: vocabularySize)

        // 3. Facts for choosing train's --max-len and for judging the vocabulary.
        var longest = 0
        for example in examples {
            let prefixTokens = try tokenizer.encode(example.prefix).count
            let suffixTokens = try tokenizer.encode(example.suffix).count
            longest = max(longest, prefixTokens + suffixTokens + 3)
        }
        let words = Set(texts.flatMap { TokenizerTraining.words(of: $0) })
        var singlePieceWords = 0
        for word in words {
            if try tokenizer.encode(word).count == 1 { singlePieceWords += 1 }
        }

        print("make-tokenizer: read \(examples.count) records (\(splitCounts.joined(separator: ", "))) in \(directory)"
            + (badLines > 0 ? "; skipped \(badLines) with errors" : ""))
        print("make-tokenizer: wrote \(output): \(tokenizer.modelSummary)")
        if tokenizer.vocabularySize < vocabularySize {
            // sentencepiece logs "No valid symbol found" when it stops early for this reason.
            print("make-tokenizer: \(tokenizer.vocabularySize) of the \(vocabularySize) pieces of --vocab-size: "
                + "the text has no more pairs of pieces to merge")
        }
        print("make-tokenizer: every prefix and suffix decodes back to itself; \(singlePieceWords) of the \(words.count) "
            + "distinct words are single pieces")
        print("make-tokenizer: the longest training sequence is \(longest) tokens (BOS, prefix, separator, suffix, EOS); "
            + "train with --max-len \(longest - 1) or more")
    }
}
