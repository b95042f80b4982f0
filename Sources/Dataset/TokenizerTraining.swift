import CSentencePieceShim
import Foundation

/// Trains SentencePiece models through libsentencepiece_train, so that palitrain can build a
/// demo tokenizer without the `spm_train` program.
public enum TokenizerTraining {
    /// The `<loc0000>`…`<loc1023>` then `<seg000>`…`<seg127>` pieces, in PaliGemma's order.
    public static var locAndSegPieces: [String] {
        (0..<1024).map { "<loc" + zeroPadded($0, 4) + ">" } + (0..<128).map { "<seg" + zeroPadded($0, 3) + ">" }
    }

    /// Options for a small model laid out like PaliGemma's: BPE, byte fallback, split digits,
    /// no dummy prefix, identity normalisation, PAD 0, EOS 1, BOS 2, UNK 3, then the loc and
    /// seg pieces as user-defined symbols (at 4…1155, not at 256000 as in PaliGemma's model).
    ///
    /// `vocabularySize` counts every piece, including the 4 special, 1152 loc/seg and 256 byte
    /// pieces, so it must be above 1412. It is a soft limit: a small corpus gives fewer pieces.
    public static func paliGemmaStyleOptions(corpus: String, modelPrefix: String, vocabularySize: Int) -> [String] {
        [
            "--input=\(corpus)", "--model_prefix=\(modelPrefix)", "--model_type=bpe",
            "--vocab_size=\(vocabularySize)", "--hard_vocab_limit=false", "--character_coverage=1.0",
            "--pad_id=0", "--eos_id=1", "--bos_id=2", "--unk_id=3",
            "--pad_piece=<pad>", "--eos_piece=<eos>", "--bos_piece=<bos>", "--unk_piece=<unk>",
            "--byte_fallback=true", "--split_digits=true", "--add_dummy_prefix=false",
            "--normalization_rule_name=identity", "--remove_extra_whitespaces=false",
            "--num_threads=1", "--minloglevel=1",
            "--user_defined_symbols=" + locAndSegPieces.joined(separator: ","),
        ]
    }

    /// Runs SentencePieceTrainer::Train with spm_train-style options (`--name=value`).
    /// It writes `<model_prefix>.model` and `<model_prefix>.vocab`.
    ///
    /// Values must not contain spaces: sentencepiece splits the options string at spaces.
    /// With `quiet`, sentencepiece logs only warnings and errors (to standard error).
    public static func train(options: [String], quiet: Bool = true) throws {
        if let spaced = options.first(where: { $0.contains(" ") }) {
            throw TokenizerError.trainingFailed(
                reason: "option '\(spaced.prefix(80))' contains a space; sentencepiece splits options at spaces")
        }
        var message = [CChar](repeating: 0, count: 2048)
        let status = cspshim_train(options.joined(separator: " "), quiet ? 1 : -1, &message, message.count)
        guard status == 0 else {
            throw TokenizerError.trainingFailed(reason: String(cString: message, encoding: .utf8) ?? "")
        }
    }

    private static func zeroPadded(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
}

extension TokenizerTraining {
    /// The smallest `vocabularySize` for `paliGemmaStyleOptions`: 4 special, 1152 loc/seg and
    /// 256 byte pieces, plus at least one piece learned from the text.
    public static let minimumVocabularySize = 4 + 1152 + 256 + 1

    /// Trains a tokenizer laid out like PaliGemma's on `texts` (one sentence each, for example
    /// every prefix and suffix of a dataset) and writes it to `outputPath`.
    ///
    /// The written model is then loaded with `Tokenizer`, which checks the special ids and that
    /// the loc and seg pieces are contiguous single tokens. Each distinct text must also decode
    /// back to itself without the unknown piece, so that no record is changed by the tokenizer.
    /// An existing file at `outputPath` is replaced only after these checks pass.
    public static func trainTokenizer(texts: [String], outputPath: String, vocabularySize: Int) throws -> Tokenizer {
        guard vocabularySize >= minimumVocabularySize else {
            throw TokenizerError.trainingFailed(
                reason: "vocabulary size \(vocabularySize) is too small: the 4 special, 1152 loc/seg and 256 byte pieces "
                    + "need \(minimumVocabularySize - 1), so pass at least \(minimumVocabularySize)")
        }
        let plainText = texts.map(removingLocAndSegPieces)
        guard plainText.contains(where: { !$0.allSatisfy(\.isWhitespace) }) else {
            throw TokenizerError.trainingFailed(
                reason: "the \(texts.count) texts contain no characters besides <loc>/<seg> pieces and whitespace, "
                    + "so there is nothing to learn pieces from")
        }

        // 1. The corpus, one text per line. Texts with a newline become several lines.
        let scratch = NSTemporaryDirectory() + "palitrain-tokenizer-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let corpusPath = scratch + "/corpus.txt"
        try texts.joined(separator: "\n").write(toFile: corpusPath, atomically: true, encoding: .utf8)

        // 2. Training. sentencepiece skips lines longer than --max_sentence_length (default 4192
        // bytes) with only a log message, so the limit is raised to the longest text.
        let longest = texts.map { $0.utf8.count }.max() ?? 0
        let prefix = scratch + "/tokenizer"
        var options = paliGemmaStyleOptions(corpus: corpusPath, modelPrefix: prefix, vocabularySize: vocabularySize)
        options.append("--max_sentence_length=\(max(4192, longest + 1))")
        try train(options: options)

        // 3. Checks on the trained model, before it replaces anything at the destination.
        let tokenizer = try Tokenizer(modelPath: prefix + ".model")
        try checkRoundTrip(tokenizer, texts: texts)

        let destination = URL(fileURLWithPath: outputPath)
        try FileManager.default.createDirectory(
            at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        let staged = destination.path + ".partial-\(getpid())"
        try? FileManager.default.removeItem(atPath: staged)
        try FileManager.default.copyItem(atPath: prefix + ".model", toPath: staged)
        guard rename(staged, destination.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: staged)
            throw TokenizerError.trainingFailed(reason: "cannot move the model to '\(destination.path)': \(reason)")
        }
        return try Tokenizer(modelPath: destination.path)
    }

    /// Checks that every distinct text encodes without the unknown piece and decodes to itself.
    /// Throws for the first text that does not, naming it and what it became.
    public static func checkRoundTrip(_ tokenizer: Tokenizer, texts: [String]) throws {
        var seen = Set<String>()
        for text in texts where seen.insert(text).inserted {
            let ids = try tokenizer.encode(text)
            if let unknown = tokenizer.unknownID, ids.contains(unknown) {
                throw TokenizerError.trainingFailed(
                    reason: "the trained model encodes \(String(text.prefix(80)).debugDescription) with the unknown piece "
                        + "(id \(unknown)); the text has a character that byte fallback does not cover")
            }
            let decoded = try tokenizer.decode(ids)
            if decoded != text {
                throw TokenizerError.trainingFailed(
                    reason: "the trained model does not round-trip \(String(text.prefix(80)).debugDescription): it "
                        + "decodes to \(String(decoded.prefix(80)).debugDescription); sentencepiece changes this text "
                        + "(for example U+2581 '▁' decodes to a space)")
            }
        }
    }

    /// Splits a text into words as sentencepiece splits it before merging: a cut at each loc or
    /// seg piece (which is dropped) and before each space, so a word keeps its leading space
    /// (" fracture").
    public static func words(of text: String) -> [String] {
        text.split(separator: locOrSegPiece).flatMap { part in
            part.matches(of: #/ ?[^ \t\n\r]+/#).map { String($0.output) }
        }
    }

    private static var locOrSegPiece: Regex<Substring> { #/<loc\d{4}>|<seg\d{3}>/# }

    /// Removes every `<locNNNN>` and `<segNNN>` piece from the text.
    static func removingLocAndSegPieces(_ text: String) -> String {
        text.replacing(locOrSegPiece, with: "")
    }
}
