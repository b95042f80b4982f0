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
