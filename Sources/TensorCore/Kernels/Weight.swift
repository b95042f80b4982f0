/// The weight operand of a linear layer: f32 values, or bf16 values for the bf16 compute mode.
///
/// Trainable weights are always f32. A frozen weight is handed out as bf16 when the model runs
/// with `--compute bf16`; the products that read it then round the other operand to bf16 too
/// and accumulate in f32 (`Kernels.matmul(_:_:)` and `matmul(_:transposed:)`).
public struct Weight {
    public enum Values {
        case f32(Tensor)
        /// Row-major bf16 words, 2-byte aligned.
        case bf16(StoredArray)
    }

    public let values: Values

    /// An f32 weight.
    public init(_ tensor: Tensor) {
        values = .f32(tensor)
    }

    /// A bf16 weight; `array` must hold bf16 values at an even address.
    public init(bf16 array: StoredArray) {
        if array.dtype != .bf16 {
            fatalError("Weight(bf16:): the array holds \(array.dtype) values, expected bf16")
        }
        if Int(bitPattern: array.baseAddress) % 2 != 0 {
            fatalError("Weight(bf16:): the bf16 values start at an odd address; copy them into aligned memory first")
        }
        values = .bf16(array)
    }

    /// Extent of each axis.
    public var shape: [Int] {
        switch values {
        case .f32(let tensor): return tensor.shape
        case .bf16(let array): return array.shape
        }
    }

    /// True when the values are bf16.
    public var isBF16: Bool {
        if case .bf16 = values { return true }
        return false
    }

    /// The f32 values, or nil for a bf16 weight.
    public var f32: Tensor? {
        if case .f32(let tensor) = values { return tensor }
        return nil
    }

    /// Element `index` of the leading axis, without copying.
    public func slice(_ index: Int) -> Weight {
        switch values {
        case .f32(let tensor): return Weight(tensor.slice(index))
        case .bf16(let array): return Weight(bf16: array.slice(index))
        }
    }

    /// The same values with another shape of equal element count, without copying.
    public func reshaped(_ shape: [Int]) -> Weight {
        switch values {
        case .f32(let tensor): return Weight(tensor.reshaped(shape))
        case .bf16(let array): return Weight(bf16: array.reshaped(shape))
        }
    }
}
