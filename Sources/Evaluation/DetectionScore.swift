import Foundation

/// A generated token and its log-probability under the model (natural log).
public struct GeneratedToken: Equatable, Sendable {
    public var id: Int
    public var logProb: Float

    public init(id: Int, logProb: Float) {
        self.id = id
        self.logProb = logProb
    }
}

/// Confidence of a detected object from the log-probabilities of its tokens.
///
/// The score is the geometric mean of the token probabilities, `exp(mean log p)`, over the
/// four loc tokens and the tokens of the label. Unlike the product, the mean does not depend
/// on how many tokens a label needs ("traffic light" takes more than "cat"). So a two-token
/// label is not ranked below a one-token label for its length alone, and the score stays in
/// (0, 1]. Separators (` ;`) and EOS are not part of any object.
public enum DetectionScore {
    /// `exp(mean(logProbs))`; nil for an empty sequence.
    public static func confidence<S: Sequence>(logProbs: S) -> Double? where S.Element == Float {
        var sum = 0.0
        var count = 0
        for value in logProbs {
            sum += Double(value)
            count += 1
        }
        guard count > 0 else { return nil }
        return exp(sum / Double(count))
    }
}

extension DetectionParser {
    /// Parses generated tokens and scores each object from its tokens' log-probabilities.
    ///
    /// - tokens: the generated tokens after the prompt, in order, possibly continuing past
    ///   EOS (batched decoding keeps generating for finished rows).
    /// - eosID: the end-of-sequence id (1 for Gemma). Parsing stops at the first EOS. Tokens
    ///   after it other than `eosID` and `padID` are a `textAfterEOS` issue. With no EOS at
    ///   all, `reachedTokenLimit` is true.
    /// - padID: the padding id (0 for Gemma), or nil when padding is not expected.
    /// - piece: the text a single token decodes to, for any tokenizer. SentencePiece's word
    ///   marker U+2581 is turned into a space here, so the raw piece may be returned; control
    ///   tokens should return "". NOTE: byte-fallback tokens (`<0xE2>`) cannot be decoded one
    ///   at a time; labels that need them are read as their piece text.
    public func parse(tokens: [GeneratedToken], eosID: Int, padID: Int?, piece: (Int) -> String) -> ParsedOutput {
        let eosIndex = tokens.firstIndex { $0.id == eosID }
        let kept = tokens[..<(eosIndex ?? tokens.count)]

        // Concatenate the pieces and remember where each token starts in the UTF-8 bytes.
        var bytes: [UInt8] = []
        var tokenStarts: [Int] = []
        for token in kept {
            tokenStarts.append(bytes.count)
            bytes.append(contentsOf: piece(token.id).replacingOccurrences(of: "\u{2581}", with: " ").utf8)
        }
        tokenStarts.append(bytes.count)

        var output = parse(bytes: bytes)
        output.reachedTokenLimit = eosIndex == nil

        for index in output.objects.indices {
            let logProbs = tokenIndices(overlapping: output.objects[index].byteRanges, tokenStarts: tokenStarts)
                .map { kept[kept.startIndex + $0].logProb }
            output.objects[index].score = DetectionScore.confidence(logProbs: logProbs)
        }

        if let eosIndex {
            let trailing = tokens[(eosIndex + 1)...].filter { $0.id != eosID && $0.id != padID }
            if !trailing.isEmpty {
                let text = trailing.map { piece($0.id) }.joined()
                output.issues.append(ParseIssue(kind: .textAfterEOS, text: text))
            }
        }
        return output
    }

    /// Indices of the tokens whose bytes overlap any of `ranges`, each index once, ascending.
    ///
    /// - tokenStarts: [tokenCount + 1] byte offsets; token i covers tokenStarts[i]..<tokenStarts[i+1].
    private func tokenIndices(overlapping ranges: [Range<Int>], tokenStarts: [Int]) -> [Int] {
        var selected: [Int] = []
        for token in 0..<(tokenStarts.count - 1) {
            let tokenRange = tokenStarts[token]..<tokenStarts[token + 1]
            if !tokenRange.isEmpty, ranges.contains(where: { $0.overlaps(tokenRange) }) {
                selected.append(token)
            }
        }
        return selected
    }
}
