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

    /// A right operand kept as f16 or bf16, or as f32 at an address that is not 4-byte aligned,
    /// gives the product with its values widened to f32.
    func testStoredRightOperandMatchesReference() throws {
        var random = TestRandom(seed: 4)
        for dtype in [DType.f16, .bf16, .f32] {
            for (m, n, k) in [(1, 3, 5), (4, 300, 19), (6, 1000, 64)] {
                let a = random.tensor([m, k])
                let values = random.tensor([n, k])
                let stored = try misaligned(StoredArray(values, dtype: dtype))
                XCTAssertFalse(stored.array.isBorrowableAsFloat)

                var fast = Tensor(zeros: [m, n])
                var slow = Tensor(zeros: [m, n])
                Kernels.skinnyGEMMTransposedB(m: m, n: n, k: k, a: a, b: stored.array, c: &fast, ldc: n)
                Kernels.referenceGEMM(m: m, n: n, k: k, a: a, lda: k, b: stored.array.toTensor(), ldb: k, transposeB: true, c: &slow, ldc: n)

                XCTAssertLessThan(maxAbsDifference(fast, slow), 1e-5, "\(dtype) m=\(m) n=\(n) k=\(k)")
            }
        }
    }

    func testRowMatmulMatchesReference() {
        var random = TestRandom(seed: 5)
        for m in 1...5 {
            for (k, n) in [(1, 1), (7, 5), (64, 33), (300, 17)] {
                let x = random.tensor([m, k])
                let w = random.tensor([k, n])
                var expected = Tensor(zeros: [m, n])
                Kernels.referenceGEMM(m: m, n: n, k: k, a: x, lda: k, b: w, ldb: n, c: &expected, ldc: n)

                let y = Kernels.rowMatmul(x, w)

                XCTAssertEqual(y.shape, [m, n])
                XCTAssertLessThan(maxAbsDifference(y, expected), 1e-4, "m=\(m) k=\(k) n=\(n)")
            }
        }
    }

    /// One row against a window of a larger matrix, written into the middle of y.
    func testRowTimesMatrixReadsAndWritesWindows() {
        var random = TestRandom(seed: 6)
        let (k, n, ldw) = (9, 4, 7)
        let x = random.tensor([2 + k])
        let w = random.tensor([3 + k * ldw])
        var y = Tensor(shape: [n + 2], repeating: 42)

        Kernels.rowTimesMatrix(k: k, n: n, x: x, offsetX: 2, w: w, offsetW: 3, ldw: ldw, y: &y, offsetY: 1)

        var expected = Tensor(zeros: [1, n])
        Kernels.referenceGEMM(m: 1, n: n, k: k, a: x, offsetA: 2, lda: k, b: w, offsetB: 3, ldb: ldw, c: &expected, ldc: n)
        XCTAssertLessThan(maxAbsDifference(Tensor(shape: [n], values: Array(y.scalars[1...n])), expected), 1e-5)
        XCTAssertEqual(y[flat: 0], 42, "y before the window is untouched")
        XCTAssertEqual(y[flat: n + 1], 42, "y after the window is untouched")
    }

    /// Copies `array` to bytes that start one byte past an aligned address.
    private func misaligned(_ array: StoredArray) throws -> (array: StoredArray, owner: ByteBox) {
        let byteCount = array.count * array.dtype.byteSize
        let box = ByteBox(byteCount: byteCount + 1)
        array.withUnsafeBytes { box.pointer.advanced(by: 1).copyMemory(from: $0.baseAddress!, byteCount: byteCount) }
        let bytes = UnsafeRawBufferPointer(start: box.pointer.advanced(by: 1), count: byteCount)
        return (try StoredArray(dtype: array.dtype, shape: array.shape, unsafeBytes: bytes, owner: box), box)
    }
}

/// Heap bytes that live as long as the arrays pointing into them.
private final class ByteBox {
    let pointer: UnsafeMutableRawPointer

    init(byteCount: Int) {
        pointer = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64)
    }

    deinit { pointer.deallocate() }
}
