import TensorCore

/// One training or evaluation batch in big_vision's layout.
///
/// `text` is `[BOS, prefix…, SEP=108, suffix…, EOS, PAD…]` of stored length T+1 per example.
/// The model reads `text[:, :-1]` (T tokens after the image tokens) and predicts `text[:, 1:]`,
/// weighted by `maskLoss[:, 1:]`.
public struct PaliGemmaBatch: Sendable {
    /// Images f32[B, height, width, C] in [-1, 1].
    public let images: Tensor
    /// Token ids [B, T+1], row-major.
    public let text: [Int32]
    /// 0 = same attention block as the previous token, 1 = new causal step: [B, T+1].
    public let maskAR: [Int32]
    /// 1 on supervised tokens (suffix and EOS): [B, T+1].
    public let maskLoss: [Int32]
    /// 1 on real tokens, 0 on padding: [B, T+1]; nil means all tokens are valid, as in
    /// big_vision's training forward pass.
    public let maskInput: [Int32]?
    /// Number of examples B.
    public let batchSize: Int
    /// Stored text length T+1.
    public let storedTextLength: Int
    /// The identity of each example's image in the dataset, [B], which keys the vision-feature
    /// cache. Nil means the images have no identity, and the cache is not used for them. Two
    /// images with the same key must have the same pixels after the same preprocessing.
    public let imageKeys: [String]?

    /// Tokens the model reads per example, T.
    public var modelTextLength: Int { storedTextLength - 1 }

    public init(
        images: Tensor, text: [Int32], maskAR: [Int32], maskLoss: [Int32], maskInput: [Int32]? = nil, imageKeys: [String]? = nil
    ) throws(PaliGemmaError) {
        guard images.rank == 4, images.shape[0] > 0 else {
            throw .invalidBatch(field: "images", reason: "expected shape [B, height, width, channels] with B > 0, got \(images.shape)")
        }
        let batchSize = images.shape[0]
        if text.count % batchSize != 0 || text.count / batchSize < 2 {
            throw .invalidBatch(field: "text", reason: "\(text.count) ids do not form \(batchSize) rows of at least 2 tokens")
        }
        let length = text.count / batchSize
        for (field, values) in [("maskAR", maskAR), ("maskLoss", maskLoss), ("maskInput", maskInput ?? [])] {
            if field == "maskInput" && maskInput == nil { continue }
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
        if let imageKeys, imageKeys.count != batchSize {
            throw .invalidBatch(field: "imageKeys", reason: "has \(imageKeys.count) keys but the batch has \(batchSize) images")
        }
        self.images = images
        self.text = text
        self.maskAR = maskAR
        self.maskLoss = maskLoss
        self.maskInput = maskInput
        self.batchSize = batchSize
        self.storedTextLength = length
        self.imageKeys = imageKeys
    }

    /// Model input ids `text[:, :-1]`, flattened [B·T].
    var inputIDs: [Int32] { dropColumn(text, last: true) }
    /// Targets `text[:, 1:]`, flattened [B·T].
    var targetIDs: [Int32] { dropColumn(text, last: false) }
    /// `maskLoss[:, 1:]`, flattened [B·T].
    var targetMask: [Int32] { dropColumn(maskLoss, last: false) }

    private func dropColumn(_ values: [Int32], last: Bool) -> [Int32] {
        var result: [Int32] = []
        result.reserveCapacity(batchSize * modelTextLength)
        for b in 0..<batchSize {
            let start = b * storedTextLength + (last ? 0 : 1)
            result.append(contentsOf: values[start..<(start + modelTextLength)])
        }
        return result
    }
}

/// big_vision's `make_attn_mask`: query i may attend key j iff cumsum(mask_ar)[j] ≤
/// cumsum(mask_ar)[i] and both positions are valid.
public enum PrefixLMMask {
    /// - maskAR: [B, L] over the whole sequence (image tokens included, with 0)
    /// - valid: [B, L], or nil when every position is valid
    public static func make(maskAR: [Int32], valid: [Bool]?, batch: Int, length: Int) -> AttentionMask {
        if maskAR.count != batch * length || (valid.map { $0.count != batch * length } ?? false) {
            fatalError("PrefixLMMask.make: masks do not have \(batch) x \(length) entries")
        }
        var allowed = [Bool](repeating: false, count: batch * length * length)
        for b in 0..<batch {
            var cumulative = [Int](repeating: 0, count: length)
            var running = 0
            for position in 0..<length {
                running += Int(maskAR[b * length + position])
                cumulative[position] = running
            }
            for i in 0..<length {
                let queryValid = valid?[b * length + i] ?? true
                for j in 0..<length {
                    let keyValid = valid?[b * length + j] ?? true
                    allowed[(b * length + i) * length + j] = queryValid && keyValid && cumulative[j] <= cumulative[i]
                }
            }
        }
        return AttentionMask(batch: batch, queries: length, keys: length, allowed: allowed)
    }
}
