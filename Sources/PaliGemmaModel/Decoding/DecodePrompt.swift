import TensorCore

/// Prompts to decode from, in big_vision's eval layout: images plus text rows
/// `[BOS, prefix…, SEP=108, (suffix start…), PAD…]` with their masks.
///
/// Unlike `PaliGemmaBatch`, every text column is model input: there is no target column. Each
/// row needs at least one real token. Real tokens come first and padding last, as big_vision's
/// eval preprocessing writes them, and rows may have different numbers of real tokens.
public struct DecodePrompt: Sendable {
    /// Images f32[B, height, width, C] in [-1, 1].
    public let images: Tensor
    /// Token ids [B, T], row-major.
    public let text: [Int32]
    /// 0 = same attention block as the previous token, 1 = new causal step: [B, T].
    public let maskAR: [Int32]
    /// 1 on real tokens, 0 on padding: [B, T].
    public let maskInput: [Int32]
    /// Number of examples B.
    public let batchSize: Int
    /// Text columns T, padding included.
    public let textLength: Int

    public init(images: Tensor, text: [Int32], maskAR: [Int32], maskInput: [Int32]) throws(PaliGemmaError) {
        guard images.rank == 4, images.shape[0] > 0 else {
            throw .invalidBatch(field: "images", reason: "expected shape [B, height, width, channels] with B > 0, got \(images.shape)")
        }
        let batchSize = images.shape[0]
        if text.count % batchSize != 0 || text.isEmpty {
            throw .invalidBatch(field: "text", reason: "\(text.count) ids do not form \(batchSize) non-empty rows, one per image")
        }
        let length = text.count / batchSize
        for (field, values) in [("maskAR", maskAR), ("maskInput", maskInput)] {
            if values.count != text.count {
                throw .invalidBatch(field: field, reason: "has \(values.count) values but text has \(text.count) ([\(batchSize), \(length)])")
            }
            if let bad = values.first(where: { $0 != 0 && $0 != 1 }) {
                throw .invalidBatch(field: field, reason: "values must be 0 or 1, found \(bad)")
            }
        }
        if let bad = text.first(where: { $0 < 0 }) {
            throw .invalidBatch(field: "text", reason: "token ids must be non-negative, found \(bad)")
        }

        // Padding must follow the real tokens: the decoder appends new tokens after the last one.
        for b in 0..<batchSize {
            let row = maskInput[(b * length)..<((b + 1) * length)]
            let realCount = row.reduce(0) { $0 + Int($1) }
            if realCount == 0 {
                throw .invalidBatch(field: "maskInput", reason: "row \(b) has no real token; a prompt starts with BOS")
            }
            if row.prefix(realCount).contains(0) {
                throw .invalidBatch(
                    field: "maskInput",
                    reason: "row \(b) is \(Array(row)): real tokens (1) must come first and padding (0) last")
            }
        }

        self.images = images
        self.text = text
        self.maskAR = maskAR
        self.maskInput = maskInput
        self.batchSize = batchSize
        self.textLength = length
    }

    /// Number of real text tokens of example `b`.
    public func realTokenCount(_ b: Int) -> Int {
        maskInput[(b * textLength)..<((b + 1) * textLength)].reduce(0) { $0 + Int($1) }
    }

    /// Returns the real text tokens of example `b`.
    public func realTokens(_ b: Int) -> ArraySlice<Int32> {
        text[(b * textLength)..<(b * textLength + realTokenCount(b))]
    }

    /// Returns the mask_ar values of the real text tokens of example `b`.
    func realMaskAR(_ b: Int) -> ArraySlice<Int32> {
        maskAR[(b * textLength)..<(b * textLength + realTokenCount(b))]
    }
}
