import TensorCore
import XCTest

final class ConversionTests: XCTestCase {
    func testBF16RoundsToNearestEven() {
        // 1 + 2^-8 lies exactly between two bf16 values (1 and 1 + 2^-7): ties go to even (1).
        XCTAssertEqual(bf16Bits(from: 1 + 0x1p-8), 0x3F80)
        // 1 + 3·2^-8 is a tie between 1 + 2^-7 (odd) and 1 + 2^-6 (even): rounds up.
        XCTAssertEqual(bf16Bits(from: 1 + 3 * 0x1p-8), 0x3F82)
        // Just above the tie rounds up.
        XCTAssertEqual(bf16Bits(from: Float(bitPattern: 0x3F80_8001)), 0x3F81)
        XCTAssertEqual(bf16Bits(from: -2.0), 0xC000)
        XCTAssertEqual(bf16Bits(from: .infinity), 0x7F80)
    }

    func testNaNStaysNaN() {
        // A NaN whose payload lies only in the low 16 bits would become infinity if truncated.
        let quietLowPayload = Float(bitPattern: 0x7F80_0001)
        XCTAssertTrue(quietLowPayload.isNaN)
        XCTAssertTrue(float(fromBF16: bf16Bits(from: quietLowPayload)).isNaN)
        XCTAssertTrue(float(fromBF16: bf16Bits(from: .nan)).isNaN)

        var half = [Float16](repeating: 0, count: 1)
        let nan: [Float] = [.nan]
        nan.withUnsafeBufferPointer { source in
            half.withUnsafeMutableBytes { convertFromFloat(source.baseAddress!, count: 1, to: .f16, into: $0.baseAddress!) }
        }
        XCTAssertTrue(half[0].isNaN)
    }

    func testRoundTripsAndBulkAgreesWithScalar() {
        var random = TestRandom(seed: 4)
        let count = 300_001  // large enough to be split across threads, odd to leave a remainder
        let values = (0..<count).map { _ in random.uniform() * 1000 }
        for dtype in DType.allCases {
            var bytes = [UInt8](repeating: 0, count: count * dtype.byteSize + 1)
            var back = [Float](repeating: 0, count: count)
            values.withUnsafeBufferPointer { source in
                bytes.withUnsafeMutableBytes { raw in
                    // Offset by one byte to exercise the unaligned path used for NPZ members.
                    convertFromFloat(source.baseAddress!, count: count, to: dtype, into: raw.baseAddress! + 1)
                    back.withUnsafeMutableBufferPointer { target in
                        convertToFloat(UnsafeRawPointer(raw.baseAddress! + 1), dtype: dtype, count: count, into: target.baseAddress!)
                    }
                }
            }
            for i in stride(from: 0, to: count, by: 997) {
                let expected: Float
                switch dtype {
                case .f32: expected = values[i]
                case .f16: expected = Float(Float16(values[i]))
                case .bf16: expected = float(fromBF16: bf16Bits(from: values[i]))
                }
                XCTAssertEqual(back[i], expected, "\(dtype) element \(i)")
            }
            // Values already representable survive a second round trip unchanged.
            let again = back.map { Kernels.roundToDType($0, dtype) }
            XCTAssertEqual(again, back, "\(dtype)")
        }
    }

    func testStoredArrayExpandsAndSlices() throws {
        let tensor = Tensor(shape: [3, 2], values: [1, 2, 3, 4, 5, 6.5])
        let stored = StoredArray(tensor, dtype: .bf16)
        XCTAssertEqual(stored.slice(1).toTensor().scalars, [3, 4])
        XCTAssertEqual(stored.rows(1..<3).toTensor().scalars, [3, 4, 5, 6.5])
        var scratch = Tensor(zeros: [1])
        stored.expand(into: &scratch)
        XCTAssertEqual(scratch.shape, [3, 2])
        XCTAssertEqual(scratch.scalars, tensor.scalars)

        XCTAssertThrowsError(try StoredArray(dtype: .f16, shape: [2, 2], bytes: [0, 0, 0])) { error in
            XCTAssertEqual(error as? TensorCoreError, .byteCountMismatch(shape: [2, 2], dtype: .f16, expected: 8, found: 3))
        }
    }
}
