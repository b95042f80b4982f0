@testable import PaliGemmaModel
import TensorCore
import XCTest

final class FromScratchInitTests: XCTestCase {
    private func dot(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

    func testRowsHaveUnitNormAndNearbyBinsAreSimilar() {
        let width = 256
        for bin in [0, 1, 511, 1023] {
            let row = LocationEmbeddingInit.row(bin: bin, width: width)
            XCTAssertEqual(dot(row, row).squareRoot(), 1, accuracy: 1e-5, "norm of bin \(bin)")
        }

        let centre = LocationEmbeddingInit.row(bin: 500, width: width)
        let near = dot(centre, LocationEmbeddingInit.row(bin: 502, width: width))
        let middle = dot(centre, LocationEmbeddingInit.row(bin: 530, width: width))
        let far = dot(centre, LocationEmbeddingInit.row(bin: 900, width: width))
        XCTAssertGreaterThan(near, 0.7, "bins 2 apart")
        XCTAssertGreaterThan(near, middle, "bins 2 apart against 30 apart")
        XCTAssertGreaterThan(middle, far, "bins 30 apart against 400 apart")
        XCTAssertLessThan(far, 0.3, "bins 400 apart")
    }

    func testPatchReplacesOnlyLocationRowsAcrossChunks() throws {
        // A [20, 6] table whose <loc0000> is row 3, written in chunks of 7 elements so that rows
        // are split between chunks; the rows after 3 + 1024 do not exist here, so only rows 3...19
        // are location rows.
        let (vocab, width, locBase, chunk) = (20, 6, 3, 7)
        let original = (0..<(vocab * width)).map { Float($0) }
        var bytes = [UInt8](repeating: 0, count: original.count * 2)
        original.withUnsafeBufferPointer { source in
            bytes.withUnsafeMutableBytes { convertFromFloat(source.baseAddress!, count: original.count, to: .bf16, into: $0.baseAddress!) }
        }

        var first = 0
        while first < original.count {
            let count = min(chunk, original.count - first)
            bytes.withUnsafeMutableBytes { buffer in
                let part = UnsafeMutableRawBufferPointer(rebasing: buffer[(first * 2)..<((first + count) * 2)])
                LocationEmbeddingInit.patch(part, dtype: .bf16, first: first, count: count, width: width, locBase: locBase)
            }
            first += count
        }

        let table = try StoredArray(dtype: .bf16, shape: [vocab, width], bytes: bytes).toTensor().scalars
        for row in 0..<vocab {
            let values = Array(table[(row * width)..<((row + 1) * width)])
            let expected = row < locBase
                ? Array(original[(row * width)..<((row + 1) * width)])
                : LocationEmbeddingInit.row(bin: row - locBase, width: width)
            XCTAssertEqual(values, expected.map { Kernels.roundToDType($0, .bf16) }, "row \(row)")
        }
    }

    func testVisionPositionsEncodeRowAndColumn() {
        let (side, width) = (6, 16)
        let values = VisionPositionInit.values(side: side, width: width)
        XCTAssertEqual(values.count, side * side * width)
        func token(_ y: Int, _ x: Int) -> [Float] { Array(values[((y * side + x) * width)..<((y * side + x + 1) * width)]) }

        // Patch (0, 0): every sine is 0 and every cosine 1.
        XCTAssertEqual(token(0, 0), [Float](repeating: 0, count: 4) + [Float](repeating: 1, count: 4)
            + [Float](repeating: 0, count: 4) + [Float](repeating: 1, count: 4))

        // The first half depends on the row only, the second half on the column only.
        XCTAssertEqual(Array(token(2, 1)[0..<8]), Array(token(2, 5)[0..<8]))
        XCTAssertEqual(Array(token(1, 3)[8..<16]), Array(token(4, 3)[8..<16]))
        XCTAssertNotEqual(Array(token(1, 3)[0..<8]), Array(token(4, 3)[0..<8]))

        // The highest frequency is one radian per patch.
        XCTAssertEqual(token(3, 0)[0], Float(sin(3.0)), accuracy: 1e-6)
        XCTAssertEqual(token(0, 2)[12], Float(cos(2.0)), accuracy: 1e-6)
    }
}
