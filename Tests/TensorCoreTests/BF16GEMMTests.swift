import Foundation
import TensorCore
import XCTest

/// The bf16 products must equal an f64 product of the bf16-rounded operands up to f32
/// accumulation error, on every backend this CPU can run.
final class BF16GEMMTests: XCTestCase {
    override func tearDown() {
        BF16Backend.use(nil)
        Threading.setThreadCount(0)
    }

    /// The backends to check here: widening always, oneDNN when the CPU has AVX512-BF16.
    private var backends: [BF16Backend] {
        BF16Backend.detected == .onednn ? [.onednn, .widenToF32] : [.widenToF32]
    }

    func testRoundingMatchesScalarConversion() {
        var random = TestRandom(seed: 21)
        var values = (0..<1000).map { _ in random.uniform() * 1000 }
        // Ties in both directions, the largest finite values, infinities, NaNs and subnormals.
        values += [1.00390625, 1.01171875, -1.00390625, Float.greatestFiniteMagnitude, -Float.greatestFiniteMagnitude,
                   .infinity, -.infinity, .nan, -Float.nan, Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0x0001_0001), -Float(bitPattern: 0x0001_8000), 0, -0.0]
        let x = Tensor(shape: [values.count], values: values)
        let matrix = BF16Matrix(x)
        let widened = Kernels.widen(matrix)
        for (i, value) in values.enumerated() {
            let expected = float(fromBF16: bf16Bits(from: value))
            let found = widened[flat: i]
            if expected.isNaN {
                XCTAssertTrue(found.isNaN, "element \(i) (\(value)) should stay NaN")
            } else {
                XCTAssertEqual(found.bitPattern, expected.bitPattern, "element \(i): \(value)")
            }
        }
    }

    func testBF16GEMMMatchesReferenceForAllTransposes() {
        var random = TestRandom(seed: 22)
        for backend in backends {
            BF16Backend.use(backend)
            for (m, n, k) in [(1, 1, 1), (7, 5, 3), (13, 17, 31), (64, 3, 129)] {
                for transposeA in [false, true] {
                    for transposeB in [false, true] {
                        let lda = (transposeA ? m : k) + 2
                        let ldb = (transposeB ? k : n) + 1
                        let ldc = n + 3
                        let a = rounded(random.tensor([5 + (transposeA ? k : m) * lda]))
                        let b = rounded(random.tensor([3 + (transposeB ? n : k) * ldb]))
                        let start = random.tensor([7 + m * ldc])
                        var fast = start
                        var slow = start
                        Kernels.gemm(m: m, n: n, k: k, alpha: 0.75, a: BF16Matrix(a), offsetA: 5, lda: lda, transposeA: transposeA,
                                     b: StoredArray(b, dtype: .bf16), offsetB: 3, ldb: ldb, transposeB: transposeB,
                                     beta: 0.5, c: &fast, offsetC: 7, ldc: ldc)
                        Kernels.referenceGEMM(m: m, n: n, k: k, alpha: 0.75, a: a, offsetA: 5, lda: lda, transposeA: transposeA,
                                              b: b, offsetB: 3, ldb: ldb, transposeB: transposeB, beta: 0.5, c: &slow, offsetC: 7, ldc: ldc)
                        XCTAssertLessThan(maxAbsDifference(fast, slow), 1e-4,
                                          "\(backend) m=\(m) n=\(n) k=\(k) tA=\(transposeA) tB=\(transposeB)")
                        XCTAssertEqual(fast[flat: 0], start[flat: 0], "elements outside the C window must be untouched")
                    }
                }
            }
        }
    }

    /// Products above the threading threshold are split into blocks, each its own oneDNN call.
    func testThreadedBF16MatmulMatchesReference() {
        var random = TestRandom(seed: 23)
        Threading.setThreadCount(3)
        for backend in backends {
            BF16Backend.use(backend)
            for (rows, inner, outer) in [(157, 300, 61), (45, 260, 203)] {
                let x = random.tensor([rows, inner])
                let w = random.tensor([inner, outer])
                let weight = Weight(bf16: StoredArray(w, dtype: .bf16))
                var expected = Tensor(zeros: [rows, outer])
                Kernels.referenceGEMM(m: rows, n: outer, k: inner, a: rounded(x), lda: inner, b: rounded(w), ldb: outer,
                                      c: &expected, ldc: outer)
                XCTAssertLessThan(maxAbsDifference(Kernels.matmul(x, weight), expected), 1e-3, "\(backend) forward \(rows)x\(inner)x\(outer)")

                // dx = dy·wᵀ reads the same bf16 weight transposed.
                let dy = random.tensor([rows, outer])
                var expectedDX = Tensor(zeros: [rows, inner])
                Kernels.referenceGEMM(m: rows, n: inner, k: outer, a: rounded(dy), lda: outer, b: rounded(w), ldb: outer,
                                      transposeB: true, c: &expectedDX, ldc: inner)
                XCTAssertLessThan(maxAbsDifference(Kernels.matmul(dy, transposed: weight), expectedDX), 1e-3, "\(backend) dx")
            }
        }
    }

    /// An f32 weight keeps the exact f32 path.
    func testF32WeightIsUnchanged() {
        var random = TestRandom(seed: 24)
        let x = random.tensor([3, 6, 5])
        let w = random.tensor([5, 4])
        XCTAssertEqual(Kernels.matmul(x, Weight(w)).scalars, Kernels.matmul(x, w).scalars)
        let dy = random.tensor([3, 6, 4])
        XCTAssertEqual(Kernels.matmul(dy, transposed: Weight(w)).scalars, Kernels.matmul(dy, transposed: w).scalars)
    }

    private func rounded(_ x: Tensor) -> Tensor {
        Tensor(shape: x.shape, values: x.scalars.map { float(fromBF16: bf16Bits(from: $0)) })
    }
}

/// The benchmark's instruments: the GEMM log and the phase timer.
final class InstrumentTests: XCTestCase {
    func testGEMMLogCountsShapesAndSkipsUnrecordedWork() {
        var random = TestRandom(seed: 25)
        let x = random.tensor([6, 5])
        let w = random.tensor([5, 4])
        GEMMLog.start()
        _ = Kernels.matmul(x, w)
        _ = Kernels.matmul(x, w)
        _ = Kernels.matmul(random.tensor([6, 4]), transposed: w)
        let log = GEMMLog.stop()
        _ = Kernels.matmul(x, w)  // after stop: not recorded

        let forward = GEMMShape(m: 6, n: 4, k: 5, transposeA: false, transposeB: false, precision: .f32, concurrent: false)
        let backward = GEMMShape(m: 6, n: 5, k: 4, transposeA: false, transposeB: true, precision: .f32, concurrent: false)
        XCTAssertEqual(log, [forward: 2, backward: 1])
        let replay = GEMMLog.replay(log)
        XCTAssertEqual(replay.flops, 3 * 2 * 6 * 4 * 5)
        XCTAssertGreaterThan(replay.seconds, 0)
    }

    func testPhaseTimerSplitsNestedPhases() {
        let start = Date()
        PhaseTimer.start()
        PhaseTimer.measure("outer") {
            usleep(20_000)
            PhaseTimer.measure("inner") { usleep(30_000) }
        }
        let totals = PhaseTimer.stop()
        let wall = Date().timeIntervalSince(start)
        XCTAssertEqual(Set(totals.keys), ["outer", "inner"])
        XCTAssertGreaterThanOrEqual(totals["inner"]!, 0.03)
        XCTAssertGreaterThanOrEqual(totals["outer"]!, 0.02)
        // The inner phase is not counted in the outer one, so the phases add up to the wall time.
        XCTAssertLessThanOrEqual(totals["outer"]! + totals["inner"]!, wall)
        PhaseTimer.measure("after") {}
        XCTAssertNil(PhaseTimer.stop()["after"], "nothing is measured while stopped")
    }
}
