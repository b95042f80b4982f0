import Dispatch
import Synchronization

/// The precision a matrix product runs at.
public enum GEMMPrecision: String, Sendable, Hashable {
    /// OpenBLAS sgemm.
    case f32
    /// bf16 operands, f32 accumulation and result.
    case bf16
}

/// The shape of one matrix product, as `GEMMLog` records it.
public struct GEMMShape: Hashable, Sendable, CustomStringConvertible {
    public let m: Int
    public let n: Int
    public let k: Int
    public let transposeA: Bool
    public let transposeB: Bool
    public let precision: GEMMPrecision
    /// True when the product ran inside a parallel region, one of several running at once on
    /// different threads (the per-head products of attention).
    public let concurrent: Bool

    public init(m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool, precision: GEMMPrecision, concurrent: Bool) {
        self.m = m
        self.n = n
        self.k = k
        self.transposeA = transposeA
        self.transposeB = transposeB
        self.precision = precision
        self.concurrent = concurrent
    }

    /// Multiply-adds times two.
    public var flops: Double { 2 * Double(m) * Double(n) * Double(k) }

    public var description: String {
        "\(m)x\(k)x\(n) \(transposeA ? "T" : "N")\(transposeB ? "T" : "N") \(precision.rawValue)\(concurrent ? " (per thread)" : "")"
    }
}

/// Records the matrix products a pass runs, and times the same products alone.
///
/// The benchmark records one training step, then replays every recorded shape on scratch
/// operands with the same kernels and thread count. The replay's rate is what this machine's
/// GEMMs reach on exactly the step's shapes, the denominator of the step's MFU.
public enum GEMMLog {
    private static let recording = Atomic<Bool>(false)
    private static let entries = Mutex<[GEMMShape: Int]>([:])

    private static let suspensions = Atomic<Int>(0)

    static var isRecording: Bool {
        recording.load(ordering: .relaxed) && suspensions.load(ordering: .relaxed) == 0
    }

    /// Runs `body` without recording its products: work a pass repeats, such as the forward
    /// pass of a rematerialised block.
    public static func withoutRecording<R>(_ body: () throws -> R) rethrows -> R {
        suspensions.add(1, ordering: .relaxed)
        defer { suspensions.subtract(1, ordering: .relaxed) }
        return try body()
    }

    /// Clears the log and starts recording.
    public static func start() {
        entries.withLock { $0 = [:] }
        recording.store(true, ordering: .relaxed)
    }

    /// Stops recording and returns how many times each shape ran.
    public static func stop() -> [GEMMShape: Int] {
        recording.store(false, ordering: .relaxed)
        return entries.withLock { $0 }
    }

    static func record(m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool, precision: GEMMPrecision) {
        let shape = GEMMShape(
            m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB, precision: precision,
            concurrent: Threading.isInsideParallelRegion)
        entries.withLock { $0[shape, default: 0] += 1 }
    }

    /// Runs every product of `log` (each shape as many times as it was recorded) on scratch
    /// operands and returns the total flops and seconds.
    ///
    /// Products that ran concurrently in the pass are replayed the same way: their copies are
    /// spread over the threads, each thread with its own operands.
    public static func replay(_ log: [GEMMShape: Int]) -> (flops: Double, seconds: Double) {
        let shapes = replayByShape(log)
        return (shapes.reduce(0) { $0 + $1.flops }, shapes.reduce(0) { $0 + $1.seconds })
    }

    /// The same replay, with the flops and seconds of each shape (all its copies together),
    /// largest total flops first.
    public static func replayByShape(_ log: [GEMMShape: Int]) -> [(shape: GEMMShape, count: Int, flops: Double, seconds: Double)] {
        log.sorted { $0.key.flops * Double($0.value) > $1.key.flops * Double($1.value) }.map { shape, count in
            (shape, count, shape.flops * Double(count), time(shape, count: count))
        }
    }

    private static func time(_ shape: GEMMShape, count: Int) -> Double {
        if shape.concurrent {
            let operands = (0..<Threading.threadCount).map { _ in ReplayOperands(shape) }
            operands.forEach { $0.run() }  // warm-up: first touch of every page
            let start = DispatchTime.now().uptimeNanoseconds
            Threading.parallelFor(count, minimumChunk: 1) { range in
                let thread = range.lowerBound * operands.count / count
                for _ in range { operands[thread].run() }
            }
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        let operands = ReplayOperands(shape)
        operands.run()
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<count { operands.run() }
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
}

/// Scratch operands for one replayed shape, filled with small nonzero values.
private final class ReplayOperands: @unchecked Sendable {
    let shape: GEMMShape
    let a: UnsafeMutablePointer<Float>
    let b: UnsafeMutablePointer<Float>
    let c: UnsafeMutablePointer<Float>
    let a16: UnsafeMutablePointer<UInt16>
    let b16: UnsafeMutablePointer<UInt16>
    private let sizes: (a: Int, b: Int, c: Int)

    init(_ shape: GEMMShape) {
        self.shape = shape
        let isBF16 = shape.precision == .bf16
        sizes = (shape.m * shape.k, shape.k * shape.n, shape.m * shape.n)
        a = .allocate(capacity: isBF16 ? 1 : max(1, sizes.a))
        b = .allocate(capacity: isBF16 ? 1 : max(1, sizes.b))
        c = .allocate(capacity: max(1, sizes.c))
        a16 = .allocate(capacity: isBF16 ? max(1, sizes.a) : 1)
        b16 = .allocate(capacity: isBF16 ? max(1, sizes.b) : 1)
        c.update(repeating: 0, count: max(1, sizes.c))
        if isBF16 {
            for i in 0..<sizes.a { a16[i] = bf16Bits(from: Self.value(i)) }
            for i in 0..<sizes.b { b16[i] = bf16Bits(from: Self.value(i + 7)) }
        } else {
            for i in 0..<sizes.a { a[i] = Self.value(i) }
            for i in 0..<sizes.b { b[i] = Self.value(i + 7) }
        }
    }

    private static func value(_ i: Int) -> Float { Float(i % 17 - 8) * 0.01 }

    func run() {
        let s = shape
        let lda = s.transposeA ? s.m : s.k
        let ldb = s.transposeB ? s.k : s.n
        switch s.precision {
        case .f32:
            Kernels.rawGEMM(m: s.m, n: s.n, k: s.k, alpha: 1, a: a, lda: lda, transposeA: s.transposeA,
                            b: b, ldb: ldb, transposeB: s.transposeB, beta: 0, c: c, ldc: s.n, record: false)
        case .bf16:
            Kernels.rawBF16GEMM(m: s.m, n: s.n, k: s.k, alpha: 1, a: a16, lda: lda, transposeA: s.transposeA,
                                b: b16, ldb: ldb, transposeB: s.transposeB, beta: 0, c: c, ldc: s.n, record: false)
        }
    }

    deinit {
        a.deallocate()
        b.deallocate()
        c.deallocate()
        a16.deallocate()
        b16.deallocate()
    }
}
