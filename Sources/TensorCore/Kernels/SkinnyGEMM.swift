import COpenBLAS

/// Matrix products with only a few rows on the left, as in a decoding step with one row per
/// example: the tied logits x·Eᵀ, and x·W for the layers.
///
/// With few rows, `cblas_sgemm` (OpenBLAS 0.3.21) spends most of the time in `sgemm_incopy`
/// packing the large operand and in a kernel tuned for wide blocks. `skinnyGEMMTransposedB`
/// streams each row of the large operand once and dots it with every left row while the row is
/// in L1. With 4
/// rows against the 257152 × 512 bench-small table it took 0.6 to 0.9 times the time of
/// `cblas_sgemm` in a C harness with the same loop (gcc -O2, SSE only, one thread). For x·W,
/// `rowMatmul` calls `cblas_sgemv` once per row, which streams W without packing it.
extension CPUKernels {
    /// Rows above which callers should use `gemm` instead, whose blocking pays off with more rows.
    public static let skinnyRowLimit = 8

    /// Rows up to which `rowMatmul` beats `gemm` for x·W with W [k, n]: one matrix-vector product
    /// per row streams W without packing it. With a C harness on the bench-small layer shapes
    /// (OpenBLAS 0.3.21, one thread), m cblas_sgemv calls took 0.3 to 0.9 times the time of one
    /// cblas_sgemm for m = 1 to 4, and up to 1.4 times at m = 8.
    public static let gemvRowLimit = 4

    /// y = x·w for x: f32[m, k] and w: f32[k, n] (`matmul`), as one `cblas_sgemv` per row of x.
    public static func rowMatmul(_ x: Tensor, _ w: Tensor) -> Tensor {
        let (m, k) = flattenRows(x, "rowMatmul x")
        if w.rank != 2 || w.shape[0] != k {
            fatalError("rowMatmul: x \(x.shape) needs w of shape [\(k), N], got \(w.shape)")
        }
        let n = w.shape[1]
        var y = Tensor(uninitialized: Array(x.shape.dropLast()) + [n])
        for row in 0..<m {
            rowTimesMatrix(k: k, n: n, x: x, offsetX: row * k, w: w, ldw: n, y: &y, offsetY: row * n)
        }
        return y
    }

    /// y[offsetY ..< offsetY + n] = x[offsetX ..< offsetX + k]·W for W, k rows of n values `ldw`
    /// apart from `offsetW` (`cblas_sgemv`, no packing).
    public static func rowTimesMatrix(
        k: Int, n: Int, x: Tensor, offsetX: Int, w: Tensor, offsetW: Int = 0, ldw: Int, y: inout Tensor, offsetY: Int
    ) {
        checkOperand("x", x.count, offsetX, rows: 1, columns: k, ld: k)
        checkOperand("W", w.count, offsetW, rows: k, columns: n, ld: ldw)
        checkOperand("y", y.count, offsetY, rows: 1, columns: n, ld: n)
        if n == 0 { return }
        let target = y.mutablePointer() + offsetY
        if k == 0 {
            target.update(repeating: 0, count: n)
            return
        }
        cblas_sgemv(
            CblasRowMajor, CblasTrans, blasint(k), blasint(n), 1, w.pointer + offsetW, blasint(ldw),
            x.pointer + offsetX, 1, 0, target, 1)
    }

    /// c[i, j] = Σₚ a[i, p]·b[j, p] for a: f32[m, k] and b: f32[n, k] (a product with bᵀ, as the
    /// tied logits x·Eᵀ), writing rows of c `ldc` apart starting at `offsetC`.
    public static func skinnyGEMMTransposedB(
        m: Int, n: Int, k: Int, a: Tensor, b: Tensor, offsetB: Int = 0, c: inout Tensor, offsetC: Int = 0, ldc: Int
    ) {
        checkOperand("A", a.count, 0, rows: m, columns: k, ld: k)
        checkOperand("B", b.count, offsetB, rows: n, columns: k, ld: k)
        checkOperand("C", c.count, offsetC, rows: m, columns: n, ld: ldc)
        if m == 0 || n == 0 { return }
        let left = a.pointer
        let right = b.pointer + offsetB
        let out = c.mutablePointer() + offsetC

        // Each thread streams its own range of b's rows. Every row is read once and dotted
        // with all m rows of a while it is in L1.
        Threading.parallelFor(n, minimumChunk: max(1, (1 << 16) / max(1, k))) { columns in
            for j in columns {
                let row = right + j * k
                var i = 0
                while i + 4 <= m {
                    let sums = dot4(left + i * k, k, row, k)
                    out[i * ldc + j] = sums[0]
                    out[(i + 1) * ldc + j] = sums[1]
                    out[(i + 2) * ldc + j] = sums[2]
                    out[(i + 3) * ldc + j] = sums[3]
                    i += 4
                }
                while i < m {
                    out[i * ldc + j] = dot1(left + i * k, row, k)
                    i += 1
                }
            }
        }
    }

    /// Computes the same product with b stored as f32, f16 or bf16, such as a frozen token table
    /// kept in its checkpoint dtype. Each row of b is widened to f32 in L1 just before its dot
    /// products, so the table is read once at its stored size instead of being expanded in memory.
    public static func skinnyGEMMTransposedB(
        m: Int, n: Int, k: Int, a: Tensor, b: StoredArray, c: inout Tensor, offsetC: Int = 0, ldc: Int
    ) {
        if b.count != n * k { fatalError("skinnyGEMMTransposedB: b \(b.shape) is not \(n) rows of \(k)") }
        if b.isBorrowableAsFloat {
            return skinnyGEMMTransposedB(m: m, n: n, k: k, a: a, b: b.toTensor(), c: &c, offsetC: offsetC, ldc: ldc)
        }
        checkOperand("A", a.count, 0, rows: m, columns: k, ld: k)
        checkOperand("C", c.count, offsetC, rows: m, columns: n, ld: ldc)
        if m == 0 || n == 0 { return }
        let left = a.pointer
        let out = c.mutablePointer() + offsetC
        let dtype = b.dtype
        let rowBytes = k * dtype.byteSize

        b.withUnsafeBytes { stored in
            let base = stored.baseAddress!
            Threading.parallelFor(n, minimumChunk: max(1, (1 << 16) / max(1, k))) { columns in
                let row = UnsafeMutablePointer<Float>.allocate(capacity: max(1, k))
                defer { row.deallocate() }
                for j in columns {
                    widenRow(base + j * rowBytes, dtype: dtype, count: k, into: row)
                    var i = 0
                    while i + 4 <= m {
                        let sums = dot4(left + i * k, k, row, k)
                        out[i * ldc + j] = sums[0]
                        out[(i + 1) * ldc + j] = sums[1]
                        out[(i + 2) * ldc + j] = sums[2]
                        out[(i + 3) * ldc + j] = sums[3]
                        i += 4
                    }
                    while i < m {
                        out[i * ldc + j] = dot1(left + i * k, row, k)
                        i += 1
                    }
                }
            }
        }
    }

    /// Converts `count` values of `dtype` at any byte alignment to f32.
    @inline(__always)
    private static func widenRow(_ source: UnsafeRawPointer, dtype: DType, count: Int, into row: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .f32:
            UnsafeMutableRawPointer(row).copyMemory(from: source, byteCount: count * 4)
        case .f16:
            for p in 0..<count { row[p] = Float(source.loadUnaligned(fromByteOffset: 2 * p, as: Float16.self)) }
        case .bf16:
            for p in 0..<count { row[p] = float(fromBF16: source.loadUnaligned(fromByteOffset: 2 * p, as: UInt16.self)) }
        }
    }

    // MARK: - Vector pieces

    /// Four dot products of length k: rows a, a + lda, a + 2·lda, a + 3·lda against b.
    @inline(__always)
    private static func dot4(_ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ k: Int) -> SIMD4<Float> {
        var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
        var p = 0
        while p + 8 <= k {
            let bv = load8(b + p)
            s0 += load8(a + p) * bv
            s1 += load8(a + lda + p) * bv
            s2 += load8(a + 2 * lda + p) * bv
            s3 += load8(a + 3 * lda + p) * bv
            p += 8
        }
        var result = SIMD4<Float>(s0.sum(), s1.sum(), s2.sum(), s3.sum())
        while p < k {
            let bp = b[p]
            result += SIMD4<Float>(a[p], a[lda + p], a[2 * lda + p], a[3 * lda + p]) * bp
            p += 1
        }
        return result
    }

    @inline(__always)
    private static func dot1(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ k: Int) -> Float {
        var s0 = SIMD8<Float>(), s1 = SIMD8<Float>()
        var p = 0
        while p + 16 <= k {
            s0 += load8(a + p) * load8(b + p)
            s1 += load8(a + p + 8) * load8(b + p + 8)
            p += 16
        }
        var result = (s0 + s1).sum()
        while p < k {
            result += a[p] * b[p]
            p += 1
        }
        return result
    }

    @inline(__always)
    private static func load8(_ pointer: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(pointer).loadUnaligned(as: SIMD8<Float>.self)
    }
}
