/// Vectorised f32 → bf16 rounding for the operands of bf16 matrix products.
///
/// The result equals `bf16Bits(from:)` element by element (round to nearest, ties to even; a
/// NaN stays a NaN), sixteen lanes at a time.
extension CPUKernels {
    /// Converts `count` f32 values to bf16 words, split across threads.
    public static func roundToBF16(
        _ source: UnsafePointer<Float>, count: Int, into destination: UnsafeMutablePointer<UInt16>
    ) {
        Threading.parallelFor(count, minimumChunk: 1 << 16) { range in
            roundChunkToBF16(source + range.lowerBound, count: range.count, into: destination + range.lowerBound)
        }
    }

    /// Converts a rows×columns window (rows `ld` apart) to a packed bf16 matrix (rows `columns` apart).
    static func roundWindowToBF16(
        _ source: UnsafePointer<Float>, rows: Int, columns: Int, ld: Int, into destination: UnsafeMutablePointer<UInt16>
    ) {
        if ld == columns {
            roundToBF16(source, count: rows * columns, into: destination)
            return
        }
        Threading.parallelFor(rows, minimumChunk: max(1, (1 << 16) / max(1, columns))) { range in
            for row in range {
                roundChunkToBF16(source + row * ld, count: columns, into: destination + row * columns)
            }
        }
    }

    /// The values of a bf16 matrix widened to f32 exactly: f32[rows, columns].
    public static func widen(_ matrix: BF16Matrix) -> Tensor {
        var tensor = Tensor(uninitialized: [matrix.rows, matrix.columns])
        withExtendedLifetime(matrix) {
            expandBF16(matrix.words, count: matrix.rows * matrix.columns, into: tensor.mutablePointer())
        }
        return tensor
    }

    /// Expands `count` bf16 words to f32 exactly, split across threads.
    static func expandBF16(_ source: UnsafePointer<UInt16>, count: Int, into destination: UnsafeMutablePointer<Float>) {
        Threading.parallelFor(count, minimumChunk: 1 << 16) { range in
            for i in range { destination[i] = float(fromBF16: source[i]) }
        }
    }

    @inline(__always)
    static func roundChunkToBF16(_ source: UnsafePointer<Float>, count: Int, into destination: UnsafeMutablePointer<UInt16>) {
        let lanes = 16
        let vectorCount = count / lanes
        let from = UnsafeRawPointer(source)
        let to = UnsafeMutableRawPointer(destination)
        for block in 0..<vectorCount {
            let bits = from.loadUnaligned(fromByteOffset: block * lanes * 4, as: SIMD16<UInt32>.self)
            let rounded = (bits &+ 0x7FFF &+ ((bits &>> 16) & 1)) &>> 16
            // A NaN keeps its sign and gets a set quiet bit instead of rounding towards infinity.
            // The lane select is done with integer arithmetic (mask = all ones on NaN lanes),
            // which vectorises; SIMD masks do not.
            let quietNaN = (bits &>> 16) | 0x0040
            let nanMask = 0 &- ((0x7F80_0000 &- (bits & 0x7FFF_FFFF)) &>> 31)
            let words = SIMD16<UInt16>(truncatingIfNeeded: (rounded & ~nanMask) | (quietNaN & nanMask))
            to.storeBytes(of: words, toByteOffset: block * lanes * 2, as: SIMD16<UInt16>.self)
        }
        for i in (vectorCount * lanes)..<count { destination[i] = bf16Bits(from: source[i]) }
    }
}

/// A packed bf16 matrix in a pooled buffer: an activation rounded for a bf16 product.
public final class BF16Matrix: @unchecked Sendable {
    public let rows: Int
    public let columns: Int
    let words: UnsafeMutablePointer<UInt16>
    private let byteCount: Int

    /// Rounds x, viewed as [x.count / last axis, last axis], to bf16.
    public convenience init(_ x: Tensor) {
        let columns = x.shape.last ?? 1
        let rows = columns == 0 ? 0 : x.count / columns
        self.init(rows: rows, columns: columns)
        Kernels.roundToBF16(x.pointer, count: x.count, into: words)
    }

    init(rows: Int, columns: Int) {
        self.rows = rows
        self.columns = columns
        byteCount = max(2, rows * columns * 2)
        words = BufferPool.allocate(byteCount: byteCount).bindMemory(to: UInt16.self, capacity: max(1, rows * columns))
    }

    deinit { BufferPool.release(UnsafeMutableRawPointer(words), byteCount: byteCount) }
}
