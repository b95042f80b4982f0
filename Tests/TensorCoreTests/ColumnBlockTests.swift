import TensorCore
import XCTest

final class ColumnBlockTests: XCTestCase {
    func testHeadsAsColumnsPlacesEveryHead() {
        var random = TestRandom(seed: 31)
        let query = random.tensor([3, 4, 2])  // [A, D, H]
        let keyValue = random.tensor([2, 4, 2])
        let matrix = Kernels.headsAsColumns([query, keyValue])
        XCTAssertEqual(matrix.shape, [4, 10])
        for d in 0..<4 {
            for h in 0..<2 {
                for a in 0..<3 { XCTAssertEqual(matrix[flat: d * 10 + a * 2 + h], query[flat: (a * 4 + d) * 2 + h]) }
                for a in 0..<2 { XCTAssertEqual(matrix[flat: d * 10 + 6 + a * 2 + h], keyValue[flat: (a * 4 + d) * 2 + h]) }
            }
        }

        // The gradient scatter is its exact inverse, added to what is there; nil skips a block.
        let queryGradient = GradientBuffer(zeros: [3, 4, 2])
        let keyValueGradient = GradientBuffer(zeros: [2, 4, 2])
        Kernels.accumulateColumnsAsHeads(matrix, into: [(3, queryGradient.whole), (2, keyValueGradient.whole)])
        Kernels.accumulateColumnsAsHeads(matrix, into: [(3, queryGradient.whole), (2, nil)])
        XCTAssertEqual(queryGradient.snapshot().scalars, query.scalars.map { 2 * $0 })
        XCTAssertEqual(keyValueGradient.snapshot().scalars, keyValue.scalars)
    }

    func testSplitUndoesConcatenate() {
        var random = TestRandom(seed: 32)
        let parts = [random.tensor([2, 5, 3]), random.tensor([2, 5, 1]), random.tensor([2, 5, 4])]
        let joined = Kernels.concatenateColumns(parts)
        XCTAssertEqual(joined.shape, [2, 5, 8])
        XCTAssertEqual(joined[flat: 8 + 3], parts[1][flat: 1])
        let split = Kernels.splitColumns(joined, widths: [3, 1, 4])
        for (original, recovered) in zip(parts, split) {
            XCTAssertEqual(recovered.shape, original.shape)
            XCTAssertEqual(recovered.scalars, original.scalars)
        }
    }
}
