import CDNNL
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How bf16 matrix products are computed.
public enum BF16Backend: String, Sendable, CaseIterable {
    /// oneDNN's `dnnl_gemm_bf16bf16f32` with AVX512-BF16 dot products.
    case onednn
    /// Both operands widened to f32 (exactly) and multiplied by OpenBLAS. The same numbers
    /// up to the order of f32 additions, at f32 speed; used where the CPU lacks AVX512-BF16.
    case widenToF32 = "widen-to-f32"

    /// The backend chosen for this CPU: oneDNN when its effective ISA includes AVX512-BF16,
    /// unless the environment sets `PALITRAIN_BF16_BACKEND=widen-to-f32`.
    public static let detected: BF16Backend = {
        if let value = getenv("PALITRAIN_BF16_BACKEND"), String(cString: value) == widenToF32.rawValue {
            return .widenToF32
        }
        let isa = dnnl_get_effective_cpu_isa().rawValue
        let bf16 = dnnl_cpu_isa_avx512_core_bf16.rawValue
        return isa & bf16 == bf16 ? .onednn : .widenToF32
    }()

    private static let override = Atomic<Int>(-1)

    /// The backend in use: `detected`, unless a test or benchmark chose another one.
    public static var current: BF16Backend {
        let chosen = override.load(ordering: .relaxed)
        return chosen < 0 ? detected : allCases[chosen]
    }

    /// Selects a backend; nil returns to the detected one. `.onednn` on a CPU without
    /// AVX512-BF16 falls back to `.widenToF32` in each product.
    public static func use(_ backend: BF16Backend?) {
        override.store(backend.map { allCases.firstIndex(of: $0)! } ?? -1, ordering: .relaxed)
    }
}

/// Matrix products with bf16 operands, f32 accumulation and an f32 result.
///
/// Threads are TensorCore's: each block of C runs oneDNN on one thread (its OpenMP team is set
/// to one thread), so oneDNN's workers never spin on cores the elementwise kernels need.
extension CPUKernels {
    /// y = x·w for x: f32[..., K] and w: [K, N]; returns f32[..., N].
    ///
    /// A bf16 weight rounds x to bf16 for the product; an f32 weight runs sgemm.
    public static func matmul(_ x: Tensor, _ w: Weight) -> Tensor {
        switch w.values {
        case .f32(let tensor):
            return matmul(x, tensor)
        case .bf16(let array):
            return matmul(BF16Matrix(x), bf16: array, leadingShape: Array(x.shape.dropLast()))
        }
    }

    /// y = x·w for an x already rounded to bf16 ([R, K]) and a bf16 w [K, N]: f32[leadingShape..., N].
    public static func matmul(_ x: BF16Matrix, bf16 w: StoredArray, leadingShape: [Int]) -> Tensor {
        if w.shape.count != 2 || w.shape[0] != x.columns {
            fatalError("matmul: x [\(x.rows), \(x.columns)] needs a bf16 w of shape [\(x.columns), N], got \(w.shape)")
        }
        let outer = w.shape[1]
        var y = Tensor(uninitialized: leadingShape + [outer])
        if y.count != x.rows * outer { fatalError("matmul: leading shape \(leadingShape) does not hold \(x.rows) rows") }
        let c = y.mutablePointer()
        withExtendedLifetime((x, w.lifetimeOwner)) {
            rawBF16GEMM(m: x.rows, n: outer, k: x.columns, alpha: 1, a: x.words, lda: x.columns, transposeA: false,
                        b: w.bf16Words, ldb: outer, transposeB: false, beta: 0, c: c, ldc: outer)
        }
        return y
    }

    /// dx = dy·wᵀ for dy: f32[..., N] and w: [K, N]; returns f32[..., K].
    public static func matmul(_ dy: Tensor, transposed w: Weight) -> Tensor {
        switch w.values {
        case .f32(let tensor):
            return matmul(dy, transposed: tensor)
        case .bf16(let array):
            let (rows, outer) = flattenRows(dy, "matmul(transposed:) dy")
            if array.shape.count != 2 || array.shape[1] != outer {
                fatalError("matmul(transposed:): dy \(dy.shape) needs w of shape [K, \(outer)], got \(array.shape)")
            }
            let inner = array.shape[0]
            let rounded = BF16Matrix(dy)
            var dx = Tensor(uninitialized: Array(dy.shape.dropLast()) + [inner])
            let c = dx.mutablePointer()
            withExtendedLifetime((rounded, array.lifetimeOwner)) {
                rawBF16GEMM(m: rows, n: inner, k: outer, alpha: 1, a: rounded.words, lda: outer, transposeA: false,
                            b: array.bf16Words, ldb: outer, transposeB: true, beta: 0, c: c, ldc: inner)
            }
            return dx
        }
    }

    /// c = alpha·op(A)·op(B) + beta·c with bf16 A and B, on windows of packed bf16 matrices
    /// and an f32 tensor c (the same conventions as `gemm`).
    public static func gemm(
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: BF16Matrix, offsetA: Int = 0, lda: Int, transposeA: Bool = false,
        b: StoredArray, offsetB: Int = 0, ldb: Int, transposeB: Bool = false,
        beta: Float = 0, c: inout Tensor, offsetC: Int = 0, ldc: Int
    ) {
        if b.dtype != .bf16 { fatalError("gemm: operand B holds \(b.dtype) values, expected bf16") }
        checkOperand("A", a.rows * a.columns, offsetA, rows: transposeA ? k : m, columns: transposeA ? m : k, ld: lda)
        checkOperand("B", b.count, offsetB, rows: transposeB ? n : k, columns: transposeB ? k : n, ld: ldb)
        checkOperand("C", c.count, offsetC, rows: m, columns: n, ld: ldc)
        let cPointer = c.mutablePointer() + offsetC
        withExtendedLifetime((a, b.lifetimeOwner)) {
            rawBF16GEMM(m: m, n: n, k: k, alpha: alpha, a: a.words + offsetA, lda: lda, transposeA: transposeA,
                        b: b.bf16Words + offsetB, ldb: ldb, transposeB: transposeB, beta: beta, c: cPointer, ldc: ldc)
        }
    }

    /// Row-major bf16 GEMM on raw pointers, split across threads like `rawGEMM`.
    static func rawBF16GEMM(
        m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<UInt16>, lda: Int, transposeA: Bool,
        b: UnsafePointer<UInt16>, ldb: Int, transposeB: Bool,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, record: Bool = true
    ) {
        if m == 0 || n == 0 { return }
        if record && GEMMLog.isRecording {
            GEMMLog.record(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB, precision: .bf16)
        }
        let useOneDNN = BF16Backend.current == .onednn && BF16Backend.detected == .onednn
        forEachGEMMBlock(m: m, n: n, k: k) { rows, columns in
            let blockA = transposeA ? a + rows.lowerBound : a + rows.lowerBound * lda
            let blockB = transposeB ? b + columns.lowerBound * ldb : b + columns.lowerBound
            let blockC = c + rows.lowerBound * ldc + columns.lowerBound
            if useOneDNN {
                oneDNNBlock(m: rows.count, n: columns.count, k: k, alpha: alpha, a: blockA, lda: lda, transposeA: transposeA,
                            b: blockB, ldb: ldb, transposeB: transposeB, beta: beta, c: blockC, ldc: ldc)
            } else {
                widenedBlock(m: rows.count, n: columns.count, k: k, alpha: alpha, a: blockA, lda: lda, transposeA: transposeA,
                             b: blockB, ldb: ldb, transposeB: transposeB, beta: beta, c: blockC, ldc: ldc)
            }
        }
    }

    /// One oneDNN call on the current thread.
    private static func oneDNNBlock(
        m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<UInt16>, lda: Int, transposeA: Bool,
        b: UnsafePointer<UInt16>, ldb: Int, transposeB: Bool,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        // The OpenMP thread count is per calling thread; oneDNN reads it on every call.
        omp_set_num_threads(1)
        let status = dnnl_gemm_bf16bf16f32(
            transposeA ? transposeCode : plainCode, transposeB ? transposeCode : plainCode,
            dnnl_dim_t(m), dnnl_dim_t(n), dnnl_dim_t(k), alpha, a, dnnl_dim_t(lda), b, dnnl_dim_t(ldb),
            beta, c, dnnl_dim_t(ldc))
        if status != dnnl_success {
            fatalError("dnnl_gemm_bf16bf16f32 failed with status \(status.rawValue) for \(m)x\(k)x\(n); "
                + "set PALITRAIN_BF16_BACKEND=widen-to-f32 to compute bf16 products without oneDNN")
        }
    }

    private static let plainCode = CChar(UInt8(ascii: "N"))
    private static let transposeCode = CChar(UInt8(ascii: "T"))

    /// Widens both windows to f32 and runs OpenBLAS on the current thread.
    private static func widenedBlock(
        m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<UInt16>, lda: Int, transposeA: Bool,
        b: UnsafePointer<UInt16>, ldb: Int, transposeB: Bool,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        let (aRows, aColumns) = transposeA ? (k, m) : (m, k)
        let (bRows, bColumns) = transposeB ? (n, k) : (k, n)
        let wideA = UnsafeMutablePointer<Float>.allocate(capacity: max(1, aRows * aColumns))
        let wideB = UnsafeMutablePointer<Float>.allocate(capacity: max(1, bRows * bColumns))
        defer {
            wideA.deallocate()
            wideB.deallocate()
        }
        for row in 0..<aRows {
            for column in 0..<aColumns { wideA[row * aColumns + column] = float(fromBF16: a[row * lda + column]) }
        }
        for row in 0..<bRows {
            for column in 0..<bColumns { wideB[row * bColumns + column] = float(fromBF16: b[row * ldb + column]) }
        }
        rawGEMM(m: m, n: n, k: k, alpha: alpha, a: wideA, lda: aColumns, transposeA: transposeA,
                b: wideB, ldb: bColumns, transposeB: transposeB, beta: beta, c: c, ldc: ldc, record: false)
    }
}

extension StoredArray {
    /// The values as bf16 words; the array must be bf16 at an even address.
    var bf16Words: UnsafePointer<UInt16> {
        baseAddress.assumingMemoryBound(to: UInt16.self)
    }
}
