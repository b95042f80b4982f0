/// Column blocks of row-major matrices: joining and splitting them, and laying out per-head
/// projection weights [A, D, H] side by side as one [D, A·H] matrix.
///
/// Attention multiplies one input by the query, key and value weights of every head. As one
/// matrix [D, (N + 2K)·H] they need one large GEMM instead of N + 2K narrow ones (n = H);
/// the copies here cost a few hundred thousand floats per layer against millions of
/// multiply-adds.
extension CPUKernels {
    /// Lays out weight blocks [A_i, D, H] as columns of one matrix: f32[D, Σ A_i·H], where
    /// head a of block i fills columns (Σ_{j<i} A_j·H) + a·H ..< + H.
    public static func headsAsColumns(_ blocks: [Tensor]) -> Tensor {
        guard let first = blocks.first, first.rank == 3 else { fatalError("headsAsColumns: expected blocks [A, D, H]") }
        let (rows, headDim) = (first.shape[1], first.shape[2])
        if blocks.contains(where: { $0.rank != 3 || $0.shape[1] != rows || $0.shape[2] != headDim }) {
            fatalError("headsAsColumns: blocks \(blocks.map(\.shape)) do not share D and H")
        }
        let width = blocks.reduce(0) { $0 + $1.shape[0] * headDim }
        var matrix = Tensor(uninitialized: [rows, width])
        let out = matrix.mutablePointer()
        var column = 0
        for block in blocks {
            let source = block.pointer
            for a in 0..<block.shape[0] {
                for d in 0..<rows {
                    (out + d * width + column + a * headDim).update(from: source + (a * rows + d) * headDim, count: headDim)
                }
            }
            column += block.shape[0] * headDim
        }
        return matrix
    }

    /// The inverse of `headsAsColumns` for gradients: slice i [A_i, D, H] += its columns of
    /// `matrix` [D, Σ A_i·H]; nil slices (frozen weights) are skipped but keep their columns.
    public static func accumulateColumnsAsHeads(_ matrix: Tensor, into slices: [(heads: Int, gradient: GradientSlice?)]) {
        let (rows, width) = (matrix.shape[0], matrix.shape[1])
        let totalHeads = slices.reduce(0) { $0 + $1.heads }
        if matrix.rank != 2 || totalHeads == 0 || width % totalHeads != 0 {
            fatalError("accumulateColumnsAsHeads: matrix \(matrix.shape) does not hold \(totalHeads) heads")
        }
        let headDim = width / totalHeads
        let source = matrix.pointer
        var column = 0
        for (heads, gradient) in slices {
            defer { column += heads * headDim }
            guard let gradient else { continue }
            if gradient.count != heads * rows * headDim {
                fatalError("accumulateColumnsAsHeads: gradient \(gradient.shape) is not [\(heads), \(rows), \(headDim)]")
            }
            let out = gradient.pointer
            withExtendedLifetime(gradient.buffer) {
                for a in 0..<heads {
                    for d in 0..<rows {
                        let target = out + (a * rows + d) * headDim
                        let from = source + d * width + column + a * headDim
                        for h in 0..<headDim { target[h] += from[h] }
                    }
                }
            }
        }
    }

    /// Splits x [..., W] into column blocks of the given widths: f32[..., w_i] each.
    public static func splitColumns(_ x: Tensor, widths: [Int]) -> [Tensor] {
        let (rows, width) = flattenRows(x, "splitColumns x")
        if widths.reduce(0, +) != width { fatalError("splitColumns: widths \(widths) do not add up to \(width)") }
        let leading = Array(x.shape.dropLast())
        let source = x.pointer
        var column = 0
        return widths.map { part in
            var block = Tensor(uninitialized: leading + [part])
            let out = block.mutablePointer()
            let offset = column
            Threading.parallelFor(rows, minimumChunk: max(1, elementwiseChunk / max(1, part))) { range in
                for row in range { (out + row * part).update(from: source + row * width + offset, count: part) }
            }
            column += part
            return block
        }
    }

    /// Joins blocks [..., w_i] with equal leading axes side by side: f32[..., Σ w_i].
    public static func concatenateColumns(_ blocks: [Tensor]) -> Tensor {
        guard let first = blocks.first else { fatalError("concatenateColumns: no blocks") }
        let (rows, _) = flattenRows(first, "concatenateColumns block")
        let widths = blocks.map { flattenRows($0, "concatenateColumns block").columns }
        if blocks.contains(where: { flattenRows($0, "concatenateColumns block").rows != rows }) {
            fatalError("concatenateColumns: blocks \(blocks.map(\.shape)) have different row counts")
        }
        let width = widths.reduce(0, +)
        var joined = Tensor(uninitialized: Array(first.shape.dropLast()) + [width])
        let out = joined.mutablePointer()
        var column = 0
        for (block, part) in zip(blocks, widths) {
            let source = block.pointer
            let offset = column
            Threading.parallelFor(rows, minimumChunk: max(1, elementwiseChunk / max(1, part))) { range in
                for row in range { (out + row * width + offset).update(from: source + row * part, count: part) }
            }
            column += part
        }
        return joined
    }
}
