import TensorCore

/// The precision of the matrix products that read frozen weights.
public enum ComputePrecision: String, Sendable, CaseIterable {
    /// Everything in f32: the exact path the golden tests check.
    case f32
    /// Frozen weights and the activations they multiply rounded to bf16, accumulated in f32
    /// (oneDNN with AVX512-BF16, or widened to f32 where the CPU lacks it). Trainable weights,
    /// attention scores, norms, the loss and all gradients stay f32.
    case bf16
}

extension ParameterStore {
    /// The weight operand of `name` (its layer `layer` when stacked) for a matrix product.
    ///
    /// Trainable weights, and every weight in f32 mode, come as f32 (see `weights`). In bf16
    /// mode a frozen weight comes as bf16: borrowed when the checkpoint stores bf16, otherwise
    /// from a copy rounded once and kept (within `bf16CacheLimitBytes`), or rounded for this
    /// use only.
    func weight(_ name: String, layer: Int? = nil) -> Weight {
        guard compute == .bf16, case .frozen(let array) = entry(name) else {
            return Weight(weights(name, layer: layer))
        }
        let whole = bf16Array(name, array)
        if let whole { return Weight(bf16: layer.map { whole.slice($0) } ?? whole) }
        return Weight(bf16: (layer.map { array.slice($0) } ?? array).roundedToBF16())
    }

    /// Rows `range` of the 2-D array `name` as a weight operand (the token table for the logits).
    func weightRows(_ name: String, _ range: Range<Int>) -> Weight {
        guard compute == .bf16, case .frozen(let array) = entry(name) else {
            return Weight(weightRows(name, range) as Tensor)
        }
        if let whole = bf16Array(name, array) { return Weight(bf16: whole.rows(range)) }
        return Weight(bf16: array.rows(range).roundedToBF16())
    }

    /// True when `name` is multiplied in bf16 (a frozen weight in bf16 mode).
    func isBF16Operand(_ name: String) -> Bool {
        guard compute == .bf16, case .frozen = entry(name) else { return false }
        return true
    }

    /// The whole array as bf16 when that costs no conversion per use: the stored values, or a
    /// kept copy (made now if it fits the cache limit). Nil when it must be rounded per use.
    private func bf16Array(_ name: String, _ array: StoredArray) -> StoredArray? {
        if array.isUsableAsBF16 { return array }
        if let copy = bf16Copies[name] { return copy }
        let used = bf16Copies.values.reduce(0) { $0 + $1.count * 2 }
        if used + array.count * 2 > bf16CacheLimitBytes { return nil }
        let copy = array.roundedToBF16()
        bf16Copies[name] = copy
        return copy
    }
}
