import TensorCore

/// Gemma's token embedding for the text tokens: table[id]·√D.
///
/// As in big_vision, the factor √D is first cast to the table's dtype and the product is
/// evaluated in that dtype, so an f16 or bf16 table gives table[id]·45.25 rounded to f16/bf16
/// at D = 2048, while an f32 table gives the exact f32 product. Image tokens are not scaled.
/// Backward accumulates (+=) √D·dy into the rows of the table gradient when it is present.
public enum TokenEmbedding {
    /// The embedding table: kept in its stored dtype when frozen, f32 when trainable.
    public enum Table {
        case stored(StoredArray)  // [V, D]
        case float(Tensor)  // [V, D]

        var width: Int {
            switch self {
            case .stored(let array): return array.shape[1]
            case .float(let tensor): return tensor.shape[1]
            }
        }
    }

    public struct Gradients {
        public var table: GradientSlice?  // [V, D]

        public init(table: GradientSlice?) { self.table = table }
    }

    /// √D as an f32 value (sqrt is correctly rounded, as in JAX).
    static func factor(width: Int) -> Float { Float(width).squareRoot() }

    /// - ids: [n] token ids
    /// - Returns: f32[n, D]
    public static func forward(ids: [Int32], _ table: Table) -> Tensor {
        let factor = factor(width: table.width)
        switch table {
        case .float(let tensor):
            return Kernels.gatherRows(tensor, ids: ids, factor: factor)
        case .stored(let array):
            let rounded = Kernels.roundToDType(factor, array.dtype)
            return Kernels.gatherRows(array, ids: ids, factor: rounded, roundToStoredDType: array.dtype != .f32)
        }
    }

    /// - dy: f32[n, D]
    public static func backward(_ dy: Tensor, ids: [Int32], width: Int, _ g: Gradients) {
        guard let dTable = g.table else { return }
        // A trainable table is f32, so the forward factor was the exact f32 √D.
        Kernels.scatterAddRows(dy, ids: ids, factor: factor(width: width), into: dTable)
    }
}
