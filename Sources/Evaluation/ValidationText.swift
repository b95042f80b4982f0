import Dataset
import Foundation

/// Generated ids as text, through a tokenizer: for the detection parser and for people.
public struct GeneratedText: Sendable {
    public let tokenizer: Tokenizer

    public init(tokenizer: Tokenizer) { self.tokenizer = tokenizer }

    /// Returns the text of one token for the parser: empty for control tokens (BOS, EOS, PAD)
    /// and ids beyond the tokenizer, the SentencePiece piece for other ids.
    public func piece(_ id: Int) -> String {
        guard let token = Int32(exactly: id) else { return "" }
        if token == tokenizer.bosID || token == tokenizer.eosID || token == tokenizer.padID { return "" }
        return tokenizer.piece(ofID: token) ?? ""
    }

    /// SentencePiece decode of the tokens before the first EOS; ids beyond the tokenizer are
    /// left out.
    public func decoded(_ tokens: [Int32]) -> String {
        let known = tokens.prefix { $0 != tokenizer.eosID }.filter { Int($0) < tokenizer.vocabularySize }
        return (try? tokenizer.decode(Array(known))) ?? ""
    }

    /// Joins the pieces before the first EOS, "▁" read as a space: the text `parse` reads.
    public func parserText(_ tokens: [Int32]) -> String {
        tokens.prefix { $0 != tokenizer.eosID }.map { piece(Int($0)) }.joined()
            .replacingOccurrences(of: "\u{2581}", with: " ")
    }

    /// Detection objects with scores from the tokens' log-probabilities; `classes` nil accepts
    /// any label.
    public func parse(tokens: [Int32], logProbs: [Float], classes: [String]?) -> ParsedOutput {
        let generated = zip(tokens, logProbs).map { GeneratedToken(id: Int($0), logProb: $1) }
        return DetectionParser(classes: classes).parse(
            tokens: generated, eosID: Int(tokenizer.eosID), padID: Int(tokenizer.padID), piece: piece)
    }
}
