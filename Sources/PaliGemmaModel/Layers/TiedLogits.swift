import TensorCore

/// The output projection with the tied token table: logits = x·Eᵀ (no bias, no softcap).
///
/// The table is read in chunks of vocabulary rows, so a frozen f16 or bf16 table is expanded to
/// f32 one chunk at a time instead of all at once (the pt-224 table is 257152 × 2048).
/// Backward returns dx and accumulates (+=) dE when its window is present.
public enum TiedLogits {
    public struct Parameters {
        /// Rows V of the table.
        public let vocabSize: Int
        /// Rows read per chunk.
        public let chunkSize: Int
        /// Returns rows of the table as an f32 or bf16 operand, [range.count, D].
        let rows: (Range<Int>) -> Weight
        /// Called after each chunk's products, when the chunk's rows are no longer read.
        let afterChunk: (() -> Void)?

        /// A table held in one f32 tensor [V, D], read in one chunk.
        public init(table: Tensor) {
            vocabSize = table.shape[0]
            chunkSize = max(1, table.shape[0])
            rows = { Weight(table.rows($0)) }
            afterChunk = nil
        }

        init(vocabSize: Int, chunkSize: Int, rows: @escaping (Range<Int>) -> Tensor) {
            self.init(vocabSize: vocabSize, chunkSize: chunkSize, weightRows: { Weight(rows($0)) })
        }

        init(
            vocabSize: Int, chunkSize: Int, weightRows: @escaping (Range<Int>) -> Weight, afterChunk: (() -> Void)? = nil
        ) {
            self.vocabSize = vocabSize
            self.chunkSize = max(1, chunkSize)
            self.rows = weightRows
            self.afterChunk = afterChunk
        }

        func forEachChunk(_ body: (Range<Int>, Weight) -> Void) {
            var start = 0
            while start < vocabSize {
                let range = start..<min(vocabSize, start + chunkSize)
                body(range, rows(range))
                afterChunk?()
                start = range.upperBound
            }
        }
    }

    public struct Gradients {
        public var table: GradientSlice?  // [V, D]

        public init(table: GradientSlice?) { self.table = table }
    }

    /// - x: f32[R, D], the final-normed rows whose next token is predicted
    /// - Returns: logits f32[R, V]
    public static func forward(_ x: Tensor, _ p: Parameters) -> Tensor {
        let (R, D) = (x.shape[0], x.shape[1])
        let V = p.vocabSize
        var logits = Tensor(uninitialized: [R, V])
        var roundedX: BF16Matrix?  // x rounded once, for bf16 chunks
        p.forEachChunk { range, table in
            // logits[:, range] = x·E[range]ᵀ
            switch table.values {
            case .f32(let rows):
                Kernels.gemm(m: R, n: range.count, k: D, a: x, lda: D, b: rows, ldb: D, transposeB: true,
                             c: &logits, offsetC: range.lowerBound, ldc: V)
            case .bf16(let rows):
                if roundedX == nil { roundedX = BF16Matrix(x) }
                Kernels.gemm(m: R, n: range.count, k: D, a: roundedX!, lda: D, b: rows, ldb: D, transposeB: true,
                             c: &logits, offsetC: range.lowerBound, ldc: V)
            }
        }
        return logits
    }

    /// - dLogits: f32[R, V]
    /// - x: f32[R, D], the forward input
    /// - Returns: dx f32[R, D]
    public static func backward(_ dLogits: Tensor, x: Tensor, _ p: Parameters, _ g: Gradients) -> Tensor {
        let (R, D) = (x.shape[0], x.shape[1])
        let V = p.vocabSize
        var dx = Tensor(zeros: [R, D])
        var roundedDLogits: BF16Matrix?  // rounded once, for bf16 chunks
        p.forEachChunk { range, table in
            switch table.values {
            case .f32(let rows):
                // dx += dLogits[:, range]·E[range]
                Kernels.gemm(m: R, n: D, k: range.count, a: dLogits, offsetA: range.lowerBound, lda: V,
                             b: rows, ldb: D, beta: 1, c: &dx, ldc: D)
                // dE[range] += dLogits[:, range]ᵀ·x
                if let dTable = g.table {
                    Kernels.gemm(m: range.count, n: D, k: R, a: dLogits, offsetA: range.lowerBound, lda: V, transposeA: true,
                                 b: x, ldb: D, accumulateInto: dTable, offsetC: range.lowerBound * D, ldc: D)
                }
            case .bf16(let rows):
                if g.table != nil { fatalError("TiedLogits.backward: a trainable table must be f32, not bf16") }
                if roundedDLogits == nil { roundedDLogits = BF16Matrix(dLogits) }
                Kernels.gemm(m: R, n: D, k: range.count, a: roundedDLogits!, offsetA: range.lowerBound, lda: V,
                             b: rows, ldb: D, beta: 1, c: &dx, ldc: D)
            }
        }
        return dx
    }
}
