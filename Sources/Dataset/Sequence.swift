/// One text row with its three masks, all of the same length.
///
/// Training rows hold `textLength + 1` tokens: the trainer feeds `text[:-1]` to the model and
/// predicts `text[1:]`, as big_vision's `combine_and_keep_train` lays them out.
public struct TextRow: Equatable, Sendable {
    /// Token ids, padding included: `[length]`.
    public var text: [Int32]
    /// 0 = attends to the whole prefix block (BOS, prefix, separator), 1 = causal step.
    public var maskAR: [Int32]
    /// 1 where the token is a training target (suffix and EOS).
    public var maskLoss: [Int32]
    /// 1 on real tokens, 0 on padding.
    public var maskInput: [Int32]

    public var count: Int { text.count }
    /// Number of tokens before the padding.
    public var realTokenCount: Int { maskInput.reduce(0) { $0 + Int($1) } }
}

/// A sequence that does not fit in its row.
public enum SequenceError: Error, CustomStringConvertible, Equatable {
    /// `needed` = BOS + prefix + separator + suffix + EOS tokens.
    case trainingRowTooLong(needed: Int, rowLength: Int, prefixTokens: Int, suffixTokens: Int)
    case promptTooLong(needed: Int, rowLength: Int, prefixTokens: Int)
    case invalidLength(Int)

    public var description: String {
        switch self {
        case .trainingRowTooLong(let needed, let rowLength, let prefixTokens, let suffixTokens):
            return "the sequence needs \(needed) tokens (BOS + \(prefixTokens) prefix + separator + \(suffixTokens) "
                + "suffix + EOS) but a training row holds \(rowLength) (max text length \(rowLength - 1) + 1); "
                + "the EOS would be cut off, so raise --max-len or shorten the record"
        case .promptTooLong(let needed, let rowLength, let prefixTokens):
            return "the prompt needs \(needed) tokens (BOS + \(prefixTokens) prefix + separator) but the row holds "
                + "\(rowLength); raise --max-len or shorten the prefix"
        case .invalidLength(let length):
            return "text length must be at least 3 (BOS, separator, EOS), found \(length)"
        }
    }
}

/// The token layout of spec section 2: `[BOS] prefix ["\n"] suffix [EOS] [PAD…]`.
///
/// Two deliberate differences from the big_vision fine-tuning colab. First, an empty suffix
/// still gets an EOS with loss, because an image without objects must teach the model to stop
/// (the colab's `preprocess_tokens` adds suffix and EOS only `if suffix`). Second, a sequence
/// whose EOS would fall past the row is an error, where the colab and big_vision's `tolen`
/// cut it silently.
public struct SequenceLayout: Sendable, Equatable {
    public let bos: Int32
    public let eos: Int32
    public let pad: Int32
    /// The id of "\n" between prefix and suffix (108 in PaliGemma's tokenizer).
    public let separator: Int32
    /// The model's text length L; training rows have L + 1 tokens.
    public let textLength: Int

    public init(bos: Int32, eos: Int32, pad: Int32, separator: Int32, textLength: Int) throws {
        guard textLength >= 2 else { throw SequenceError.invalidLength(textLength + 1) }
        self.bos = bos
        self.eos = eos
        self.pad = pad
        self.separator = separator
        self.textLength = textLength
    }

    /// Number of tokens of a training sequence before padding.
    public func trainingTokenCount(prefixTokens: Int, suffixTokens: Int) -> Int {
        prefixTokens + suffixTokens + 3
    }

    /// Builds a training row of `textLength + 1` tokens.
    ///
    /// - text: `[BOS, prefix…, sep, suffix…, EOS, PAD…]`
    /// - maskAR: 0 on BOS, prefix and sep; 1 on suffix, EOS and padding (big_vision pads with 1)
    /// - maskLoss: 1 on suffix and EOS
    /// - maskInput: 1 on every token before the padding
    public func trainingRow(prefixIDs: [Int32], suffixIDs: [Int32]) throws -> TextRow {
        let rowLength = textLength + 1
        let needed = trainingTokenCount(prefixTokens: prefixIDs.count, suffixTokens: suffixIDs.count)
        guard needed <= rowLength else {
            throw SequenceError.trainingRowTooLong(
                needed: needed, rowLength: rowLength, prefixTokens: prefixIDs.count, suffixTokens: suffixIDs.count)
        }

        let head = [bos] + prefixIDs + [separator]
        let tail = suffixIDs + [eos]
        let padding = rowLength - needed
        return TextRow(
            text: head + tail + Array(repeating: pad, count: padding),
            maskAR: Array(repeating: 0, count: head.count) + Array(repeating: 1, count: tail.count + padding),
            maskLoss: Array(repeating: 0, count: head.count) + Array(repeating: 1, count: tail.count)
                + Array(repeating: 0, count: padding),
            maskInput: Array(repeating: 1, count: needed) + Array(repeating: 0, count: padding))
    }

    /// Builds a decoding prompt in big_vision's eval layout: `[BOS, prefix…, sep]`, then
    /// optionally a suffix start to continue from (no EOS), padded to `length`.
    ///
    /// - maskAR: 0 on BOS, prefix and sep; 1 on the given suffix tokens and padding
    /// - maskLoss: all 0
    /// - maskInput: 1 on real tokens, 0 on padding
    public func promptRow(prefixIDs: [Int32], suffixIDs: [Int32] = [], length: Int) throws -> TextRow {
        let head = [bos] + prefixIDs + [separator]
        let needed = head.count + suffixIDs.count
        guard needed <= length else {
            throw SequenceError.promptTooLong(needed: needed, rowLength: length, prefixTokens: prefixIDs.count)
        }
        let padding = length - needed
        return TextRow(
            text: head + suffixIDs + Array(repeating: pad, count: padding),
            maskAR: Array(repeating: 0, count: head.count) + Array(repeating: 1, count: suffixIDs.count + padding),
            maskLoss: Array(repeating: 0, count: length),
            maskInput: Array(repeating: 1, count: needed) + Array(repeating: 0, count: padding))
    }
}

/// Tokenizes prefix and suffix strings into rows of a `SequenceLayout`.
public struct SequenceBuilder: Sendable {
    public let tokenizer: Tokenizer
    public let layout: SequenceLayout

    /// - textLength: the model's text length L (128 for pt-224); training rows have L + 1 tokens.
    public init(tokenizer: Tokenizer, textLength: Int) throws {
        self.tokenizer = tokenizer
        self.layout = try SequenceLayout(
            bos: tokenizer.bosID, eos: tokenizer.eosID, pad: tokenizer.padID, separator: tokenizer.newlineID,
            textLength: textLength)
    }

    /// Prefix and suffix are encoded separately, as big_vision does; an empty string encodes
    /// to no tokens.
    public func trainingRow(prefix: String, suffix: String) throws -> TextRow {
        try layout.trainingRow(prefixIDs: tokenizer.encode(prefix), suffixIDs: tokenizer.encode(suffix))
    }

    /// Builds a decoding prompt padded to `length` (default: the training row length L + 1).
    public func promptRow(prefix: String, length: Int? = nil) throws -> TextRow {
        try layout.promptRow(prefixIDs: tokenizer.encode(prefix), length: length ?? layout.textLength + 1)
    }

    /// Tokens a training sequence needs before padding, for length checks.
    public func trainingTokenCount(prefix: String, suffix: String) throws -> Int {
        try layout.trainingTokenCount(
            prefixTokens: tokenizer.encode(prefix).count, suffixTokens: tokenizer.encode(suffix).count)
    }
}
