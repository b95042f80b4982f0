import Foundation
import XCTest

@testable import TensorCore

final class LogSumExpTests: XCTestCase {
    /// The vectorised exp against f64 exp on a fine grid of [−87, 0].
    func testExp8RelativeErrorIsBelowThreeTenMillionths() {
        var worst = 0.0
        var x: Float = -87
        while x <= 0 {
            let lanes = SIMD8<Float>((0..<8).map { x + Float($0) * 0.001 })
            let result = Kernels.exp8(lanes)
            for lane in 0..<8 {
                let exact = exp(Double(lanes[lane]))
                worst = max(worst, abs(Double(result[lane]) - exact) / exact)
            }
            x += 0.0137
        }
        XCTAssertLessThan(worst, 3e-7)
        XCTAssertEqual(Kernels.exp8(SIMD8(repeating: -200))[0], 0, "below −87 is 0")
        XCTAssertEqual(Kernels.exp8(SIMD8(repeating: 0))[0], 1)
    }

    func testRowLogSumExpMatchesDoubleReference() {
        var random = TestRandom(seed: 7)
        for (rows, columns) in [(1, 1), (2, 7), (3, 64), (2, 100_003)] {
            let values = (0..<(rows * columns)).map { _ in random.uniform() * 30 }
            let logits = Tensor(shape: [rows, columns], values: values)

            let fast = Kernels.rowLogSumExp(logits)

            for row in 0..<rows {
                let line = values[(row * columns)..<((row + 1) * columns)].map(Double.init)
                let top = line.max()!
                let exact = top + log(line.reduce(0) { $0 + exp($1 - top) })
                XCTAssertEqual(Double(fast[row]), exact, accuracy: 2e-6 * max(1, abs(exact)), "rows=\(rows) columns=\(columns) row=\(row)")
            }
        }
    }

    /// Logits far below the maximum add nothing, and a row of equal values gives max + log V.
    func testRowLogSumExpHandlesExtremeRows() {
        let logits = Tensor(shape: [2, 70], values: [0] + Array(repeating: -1000, count: 69) + Array(repeating: 5, count: 70))
        let result = Kernels.rowLogSumExp(logits)
        XCTAssertEqual(result[0], 0)
        XCTAssertEqual(result[1], 5 + Float(log(70.0)), accuracy: 2e-6)
    }
}
