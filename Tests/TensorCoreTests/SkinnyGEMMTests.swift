import TensorCore
import XCTest

final class SkinnyGEMMTests: XCTestCase {
    /// Row counts around the 4-row blocks, widths around the 8-wide vectors, and a right operand
    /// and output window that start at an offset.
    func testSkinnyGEMMMatchesReference() {
        var random = TestRandom(seed: 3)
        for m in [1, 2, 3, 4, 5, 8] {
            for (n, k) in [(1, 1), (5, 7), (9, 8), (33, 17), (20_000, 24)] {
                let a = random.tensor([m, k])
                let b = random.tensor([3 + n * k])
                let ldc = n + 2
                let start = random.tensor([5 + m * ldc])
                var fast = start
                var slow = start
                Kernels.skinnyGEMMTransposedB(m: m, n: n, k: k, a: a, b: b, offsetB: 3, c: &fast, offsetC: 5, ldc: ldc)
                Kernels.referenceGEMM(m: m, n: n, k: k, a: a, lda: k, b: b, offsetB: 3, ldb: k, transposeB: true,
                                      c: &slow, offsetC: 5, ldc: ldc)

                XCTAssertLessThan(maxAbsDifference(fast, slow), 1e-5, "m=\(m) n=\(n) k=\(k)")
                XCTAssertEqual(fast[flat: 0], start[flat: 0], "elements before the window are untouched")
                XCTAssertEqual(fast[flat: 5 + n], start[flat: 5 + n], "the gap between rows is untouched")
            }
        }
    }
}
