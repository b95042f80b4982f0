import COpenBLAS

/// Matrix products on OpenBLAS `cblas_sgemm` (row-major), plus a naive reference for tests.
///
/// Every matrix is a row-major window of a tensor: it starts at an element offset and its rows
/// are `ld` (leading dimension) elements apart, so one head of a `[B*L, N*H]` activation is
/// addressed in place without a copy. `transposeA`/`transposeB` describe how the stored matrix
/// is read: with `transposeA`, A is stored as k×m and used as its transpose.
extension CPUKernels {
    /// c = alpha·op(A)·op(B) + beta·c, where op(A) is m×k and op(B) is k×n.
    public static func gemm(
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: Tensor, offsetA: Int = 0, lda: Int, transposeA: Bool = false,
        b: Tensor, offsetB: Int = 0, ldb: Int, transposeB: Bool = false,
        beta: Float = 0, c: inout Tensor, offsetC: Int = 0, ldc: Int
    ) {
        checkOperand("A", a.count, offsetA, rows: transposeA ? k : m, columns: transposeA ? m : k, ld: lda)
        checkOperand("B", b.count, offsetB, rows: transposeB ? n : k, columns: transposeB ? k : n, ld: ldb)
        checkOperand("C", c.count, offsetC, rows: m, columns: n, ld: ldc)
        let cPointer = c.mutablePointer() + offsetC
        rawGEMM(
            m: m, n: n, k: k, alpha: alpha,
            a: a.pointer + offsetA, lda: lda, transposeA: transposeA,
            b: b.pointer + offsetB, ldb: ldb, transposeB: transposeB,
            beta: beta, c: cPointer, ldc: ldc)
    }

    /// c += alpha·op(A)·op(B) for a gradient window c (m×n, rows `ldc` apart).
    public static func gemm(
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: Tensor, offsetA: Int = 0, lda: Int, transposeA: Bool = false,
        b: Tensor, offsetB: Int = 0, ldb: Int, transposeB: Bool = false,
        accumulateInto c: GradientSlice, offsetC: Int = 0, ldc: Int
    ) {
        checkOperand("A", a.count, offsetA, rows: transposeA ? k : m, columns: transposeA ? m : k, ld: lda)
        checkOperand("B", b.count, offsetB, rows: transposeB ? n : k, columns: transposeB ? k : n, ld: ldb)
        checkOperand("C", c.count, offsetC, rows: m, columns: n, ld: ldc)
        withExtendedLifetime(c.buffer) {
            rawGEMM(
                m: m, n: n, k: k, alpha: alpha,
                a: a.pointer + offsetA, lda: lda, transposeA: transposeA,
                b: b.pointer + offsetB, ldb: ldb, transposeB: transposeB,
                beta: 1, c: c.pointer + offsetC, ldc: ldc)
        }
    }

    // MARK: - Whole-tensor products

    /// y = x·w for x: f32[..., K] and w: f32[K, N]; returns f32[..., N].
    public static func matmul(_ x: Tensor, _ w: Tensor) -> Tensor {
        let (rows, inner) = flattenRows(x, "matmul x")
        if w.rank != 2 || w.shape[0] != inner {
            fatalError("matmul: x \(x.shape) needs w of shape [\(inner), N], got \(w.shape)")
        }
        let outer = w.shape[1]
        var y = Tensor(uninitialized: Array(x.shape.dropLast()) + [outer])
        gemm(m: rows, n: outer, k: inner, a: x, lda: inner, b: w, ldb: outer, c: &y, ldc: outer)
        return y
    }

    /// dx = dy·wᵀ for dy: f32[..., N] and w: f32[K, N]; returns f32[..., K].
    public static func matmul(_ dy: Tensor, transposed w: Tensor) -> Tensor {
        let (rows, outer) = flattenRows(dy, "matmul(transposed:) dy")
        if w.rank != 2 || w.shape[1] != outer {
            fatalError("matmul(transposed:): dy \(dy.shape) needs w of shape [K, \(outer)], got \(w.shape)")
        }
        let inner = w.shape[0]
        var dx = Tensor(uninitialized: Array(dy.shape.dropLast()) + [inner])
        gemm(m: rows, n: inner, k: outer, a: dy, lda: outer, b: w, ldb: outer, transposeB: true, c: &dx, ldc: inner)
        return dx
    }

    /// dw += xᵀ·dy for x: f32[..., K], dy: f32[..., N] and a gradient window of K·N elements.
    public static func accumulateWeightGradient(_ x: Tensor, _ dy: Tensor, into dw: GradientSlice) {
        let (rows, inner) = flattenRows(x, "accumulateWeightGradient x")
        let (dyRows, outer) = flattenRows(dy, "accumulateWeightGradient dy")
        if dyRows != rows || dw.count != inner * outer {
            fatalError("accumulateWeightGradient: x \(x.shape), dy \(dy.shape) and dw \(dw.shape) do not agree")
        }
        gemm(m: inner, n: outer, k: rows, a: x, lda: inner, transposeA: true, b: dy, ldb: outer, accumulateInto: dw, ldc: outer)
    }

    // MARK: - Reference

    /// Computes the same product as `gemm` with plain loops in f64, as the reference for tests.
    public static func referenceGEMM(
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: Tensor, offsetA: Int = 0, lda: Int, transposeA: Bool = false,
        b: Tensor, offsetB: Int = 0, ldb: Int, transposeB: Bool = false,
        beta: Float = 0, c: inout Tensor, offsetC: Int = 0, ldc: Int
    ) {
        checkOperand("A", a.count, offsetA, rows: transposeA ? k : m, columns: transposeA ? m : k, ld: lda)
        checkOperand("B", b.count, offsetB, rows: transposeB ? n : k, columns: transposeB ? k : n, ld: ldb)
        checkOperand("C", c.count, offsetC, rows: m, columns: n, ld: ldc)
        let aValues = a.pointer + offsetA
        let bValues = b.pointer + offsetB
        let cValues = c.mutablePointer() + offsetC
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for p in 0..<k {
                    let left = transposeA ? aValues[p * lda + i] : aValues[i * lda + p]
                    let right = transposeB ? bValues[j * ldb + p] : bValues[p * ldb + j]
                    sum += Double(left) * Double(right)
                }
                let previous = beta == 0 ? 0 : Double(beta) * Double(cValues[i * ldc + j])
                cValues[i * ldc + j] = Float(Double(alpha) * sum + previous)
            }
        }
    }

    // MARK: - Helpers

    /// Products below this many multiply-adds run on one thread.
    static let parallelGEMMThreshold = 1 << 21

    /// Row-major sgemm on raw pointers, split across threads by rows or columns of C.
    ///
    /// `record: false` keeps a product out of `GEMMLog` (work that a pass repeats, such as the
    /// attention scores the backward pass recomputes).
    static func rawGEMM(
        m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, transposeA: Bool,
        b: UnsafePointer<Float>, ldb: Int, transposeB: Bool,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, record: Bool = true
    ) {
        if m == 0 || n == 0 { return }
        if record && GEMMLog.isRecording {
            GEMMLog.record(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB, precision: .f32)
        }
        if k == 0 {
            for i in 0..<m {
                for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] }
            }
            return
        }
        forEachGEMMBlock(m: m, n: n, k: k) { rows, columns in
            blockGEMM(m: rows.count, n: columns.count, k: k, alpha: alpha,
                      a: transposeA ? a + rows.lowerBound : a + rows.lowerBound * lda, lda: lda, transposeA: transposeA,
                      b: transposeB ? b + columns.lowerBound * ldb : b + columns.lowerBound, ldb: ldb, transposeB: transposeB,
                      beta: beta, c: c + rows.lowerBound * ldc + columns.lowerBound, ldc: ldc)
        }
    }

    /// Splits an m×n product into one block of C per thread and calls `body` with each block's
    /// rows and columns: the longer side is cut into runs of whole 16-element panels. Small
    /// products, one thread, or a caller already inside a parallel region get one block.
    static func forEachGEMMBlock(m: Int, n: Int, k: Int, _ body: (Range<Int>, Range<Int>) -> Void) {
        let threads = Threading.threadCount
        if threads == 1 || m * n * k < parallelGEMMThreshold || Threading.isInsideParallelRegion {
            body(0..<m, 0..<n)
            return
        }
        let splitRows = m >= n
        let panels = ((splitRows ? m : n) + 15) / 16
        Threading.parallelFor(panels, minimumChunk: 1) { range in
            let start = range.lowerBound * 16
            let end = min(splitRows ? m : n, range.upperBound * 16)
            if splitRows {
                body(start..<end, 0..<n)
            } else {
                body(0..<m, start..<end)
            }
        }
    }

    /// Calls OpenBLAS once, on the current thread.
    private static func blockGEMM(
        m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, transposeA: Bool,
        b: UnsafePointer<Float>, ldb: Int, transposeB: Bool,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        Threading.singleThreadedBLAS
        cblas_sgemm(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }

    /// Checks that a rows×columns window with leading dimension `ld` fits inside `count` elements.
    static func checkOperand(_ name: String, _ count: Int, _ offset: Int, rows: Int, columns: Int, ld: Int) {
        if rows == 0 || columns == 0 { return }
        if ld < columns || offset < 0 || offset + (rows - 1) * ld + columns > count {
            fatalError(
                "gemm: operand \(name) of \(rows)x\(columns) at offset \(offset) with leading dimension \(ld) "
                    + "does not fit in a tensor of \(count) elements")
        }
    }

    /// Views `x` as a matrix [product of leading axes, last axis].
    static func flattenRows(_ x: Tensor, _ what: String) -> (rows: Int, columns: Int) {
        guard let last = x.shape.last else { fatalError("\(what): expected rank >= 1, got a scalar") }
        return (last == 0 ? 0 : x.count / last, last)
    }
}
