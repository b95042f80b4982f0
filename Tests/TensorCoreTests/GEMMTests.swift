import TensorCore
import XCTest

final class GEMMTests: XCTestCase {
    /// Every transpose combination on odd shapes, with padded leading dimensions, offsets and beta.
    func testGEMMMatchesReferenceForAllTransposes() {
        var random = TestRandom(seed: 1)
        for (m, n, k) in [(1, 1, 1), (7, 5, 3), (13, 17, 31), (64, 3, 129)] {
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    let lda = (transposeA ? m : k) + 2
                    let ldb = (transposeB ? k : n) + 1
                    let ldc = n + 3
                    let a = random.tensor([5 + (transposeA ? k : m) * lda])
                    let b = random.tensor([3 + (transposeB ? n : k) * ldb])
                    let start = random.tensor([7 + m * ldc])
                    var fast = start
                    var slow = start
                    Kernels.gemm(m: m, n: n, k: k, alpha: 0.75, a: a, offsetA: 5, lda: lda, transposeA: transposeA,
                                 b: b, offsetB: 3, ldb: ldb, transposeB: transposeB, beta: 0.5, c: &fast, offsetC: 7, ldc: ldc)
                    Kernels.referenceGEMM(m: m, n: n, k: k, alpha: 0.75, a: a, offsetA: 5, lda: lda, transposeA: transposeA,
                                          b: b, offsetB: 3, ldb: ldb, transposeB: transposeB, beta: 0.5, c: &slow, offsetC: 7, ldc: ldc)
                    let difference = maxAbsDifference(fast, slow)
                    XCTAssertLessThan(difference, 1e-4, "m=\(m) n=\(n) k=\(k) transposeA=\(transposeA) transposeB=\(transposeB)")
                    // Elements outside the C window must be untouched.
                    XCTAssertEqual(fast[flat: 0], start[flat: 0])
                }
            }
        }
    }

    /// Products above the threading threshold are split by rows (m ≥ n) or columns (n > m).
    func testThreadedGEMMMatchesReference() {
        var random = TestRandom(seed: 6)
        Threading.setThreadCount(3)
        defer { Threading.setThreadCount(0) }
        for (m, n, k) in [(157, 61, 300), (45, 203, 260)] {
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    let a = random.tensor([m * k])
                    let b = random.tensor([k * n])
                    let start = random.tensor([m * n])
                    var fast = start
                    var slow = start
                    let (lda, ldb) = (transposeA ? m : k, transposeB ? k : n)
                    Kernels.gemm(m: m, n: n, k: k, a: a, lda: lda, transposeA: transposeA,
                                 b: b, ldb: ldb, transposeB: transposeB, beta: 1, c: &fast, ldc: n)
                    Kernels.referenceGEMM(m: m, n: n, k: k, a: a, lda: lda, transposeA: transposeA,
                                          b: b, ldb: ldb, transposeB: transposeB, beta: 1, c: &slow, ldc: n)
                    XCTAssertLessThan(maxAbsDifference(fast, slow), 1e-3, "m=\(m) n=\(n) k=\(k) tA=\(transposeA) tB=\(transposeB)")
                }
            }
        }
    }

    func testMatmulHelpersAgreeWithReference() {
        var random = TestRandom(seed: 2)
        let x = random.tensor([2, 3, 5])
        let w = random.tensor([5, 4])
        let y = Kernels.matmul(x, w)
        XCTAssertEqual(y.shape, [2, 3, 4])
        var expected = Tensor(zeros: [6, 4])
        Kernels.referenceGEMM(m: 6, n: 4, k: 5, a: x, lda: 5, b: w, ldb: 4, c: &expected, ldc: 4)
        XCTAssertLessThan(maxAbsDifference(y, expected), 1e-5)

        let dy = random.tensor([2, 3, 4])
        let dx = Kernels.matmul(dy, transposed: w)
        XCTAssertEqual(dx.shape, [2, 3, 5])
        var expectedDX = Tensor(zeros: [6, 5])
        Kernels.referenceGEMM(m: 6, n: 5, k: 4, a: dy, lda: 4, b: w, ldb: 4, transposeB: true, c: &expectedDX, ldc: 5)
        XCTAssertLessThan(maxAbsDifference(dx, expectedDX), 1e-5)

        let gradient = GradientBuffer(zeros: [5, 4])
        Kernels.accumulateWeightGradient(x, dy, into: gradient.whole)
        Kernels.accumulateWeightGradient(x, dy, into: gradient.whole)
        var expectedDW = Tensor(zeros: [5, 4])
        Kernels.referenceGEMM(m: 5, n: 4, k: 6, alpha: 2, a: x, lda: 5, transposeA: true, b: dy, ldb: 4, c: &expectedDW, ldc: 4)
        XCTAssertLessThan(maxAbsDifference(gradient.snapshot(), expectedDW), 1e-5)
    }

    func testGEMMWritesThroughCopyOnWriteOnly() {
        var random = TestRandom(seed: 3)
        let a = random.tensor([2, 2])
        let original = Tensor(zeros: [2, 2])
        var c = original
        Kernels.gemm(m: 2, n: 2, k: 2, a: a, lda: 2, b: a, ldb: 2, c: &c, ldc: 2)
        XCTAssertEqual(original.scalars, [0, 0, 0, 0], "a copy sharing storage must not change")
        XCTAssertNotEqual(c.scalars, [0, 0, 0, 0])
    }
}
