import Foundation
import TensorCore
import XCTest

final class VectorMathTests: XCTestCase {
    /// Within 2 ulp of libm's expf across the whole finite range, lane by lane.
    func testExpMatchesLibm() {
        var worstULP: Float = 0
        var x: Float = -87.3
        while x < 88.7 {
            var lanes = VectorMath.Lanes()
            for lane in 0..<16 { lanes[lane] = x + Float(lane) * 0.000_37 }
            let result = VectorMath.exp(lanes)
            for lane in 0..<16 {
                let expected = Foundation.exp(lanes[lane])
                worstULP = max(worstULP, abs(result[lane] - expected) / expected.ulp)
            }
            x += 0.0173
        }
        XCTAssertLessThanOrEqual(worstULP, 2, "worst error \(worstULP) ulp")
    }

    func testExpOutsideTheRange() {
        let inputs: [Float] = [-2.3819763e38, -Float.infinity, -88, 89, .infinity, .nan, 0, -0.0, 1, -1, 88.7, -87.3, 0.5, 3, 7, 11]
        var lanes = VectorMath.Lanes()
        for (lane, value) in inputs.enumerated() { lanes[lane] = value }
        let result = VectorMath.exp(lanes)
        XCTAssertEqual(result[0], 0, "a masked attention logit gives exactly 0")
        XCTAssertEqual(result[1], 0)
        XCTAssertEqual(result[2], 0)
        XCTAssertEqual(result[3], .infinity)
        XCTAssertEqual(result[4], .infinity)
        XCTAssertTrue(result[5].isNaN)
        XCTAssertEqual(result[6], 1)
        XCTAssertEqual(result[7], 1)
        for lane in 8..<16 {
            XCTAssertEqual(result[lane], Foundation.exp(inputs[lane]), accuracy: 2 * Foundation.exp(inputs[lane]).ulp, "exp(\(inputs[lane]))")
        }
    }
}
