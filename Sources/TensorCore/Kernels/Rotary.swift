import Foundation

/// Rotary position embedding (RoPE) angles for a set of token positions.
///
/// Half-split layout as in big_vision's Gemma: the pairs are (i, i + H/2), not interleaved.
/// The timescale of pair i is base^(2i/H), computed in f32 like `apply_rope`.
public struct RotaryTable: Sendable {
    /// Number of positions (tokens) covered, in the order given at creation.
    public let count: Int
    /// Head dimension H (even).
    public let headDim: Int
    let cosines: [Float]
    let sines: [Float]

    /// Builds cos/sin of position / timescale for every position: tables of [count, H/2].
    public init(positions: [Int32], headDim: Int, base: Float = 10_000) {
        if headDim % 2 != 0 { fatalError("RotaryTable: head dimension \(headDim) must be even") }
        let half = headDim / 2
        var timescales = [Float](repeating: 0, count: half)
        for i in 0..<half {
            let exponent = Float(2 * i) / Float(headDim)
            timescales[i] = powf(base, exponent)
        }
        var cosines = [Float](repeating: 0, count: positions.count * half)
        var sines = [Float](repeating: 0, count: positions.count * half)
        for (t, position) in positions.enumerated() {
            for i in 0..<half {
                let radians = Float(position) / timescales[i]
                cosines[t * half + i] = cos(radians)
                sines[t * half + i] = sin(radians)
            }
        }
        self.count = positions.count
        self.headDim = headDim
        self.cosines = cosines
        self.sines = sines
    }

    private init(count: Int, headDim: Int, cosines: [Float], sines: [Float]) {
        self.count = count
        self.headDim = headDim
        self.cosines = cosines
        self.sines = sines
    }

    /// The angles of the tokens at `indices`, in that order.
    public func rows(_ indices: [Int]) -> RotaryTable {
        let half = headDim / 2
        var newCosines: [Float] = []
        var newSines: [Float] = []
        newCosines.reserveCapacity(indices.count * half)
        newSines.reserveCapacity(indices.count * half)
        for index in indices {
            if index < 0 || index >= count { fatalError("RotaryTable.rows: token \(index) outside 0..<\(count)") }
            newCosines += cosines[(index * half)..<((index + 1) * half)]
            newSines += sines[(index * half)..<((index + 1) * half)]
        }
        return RotaryTable(count: indices.count, headDim: headDim, cosines: newCosines, sines: newSines)
    }
}

extension CPUKernels {
    /// Rotates every head of x in place: x f32[T, heads, H] with one table row per token t.
    ///
    /// Forward: [x1·cos − x2·sin, x2·cos + x1·sin]. With `inverse`, rotates by −angle, which is
    /// the backward pass (the rotation is orthogonal, so its transpose is its inverse).
    public static func applyRotary(_ x: inout Tensor, table: RotaryTable, heads: Int, inverse: Bool = false) {
        let H = table.headDim
        let half = H / 2
        if x.count != table.count * heads * H {
            fatalError("applyRotary: x \(x.shape) does not match \(table.count) tokens x \(heads) heads x \(H)")
        }
        let values = x.mutablePointer()
        let sign: Float = inverse ? -1 : 1
        let tokens = table.count
        table.cosines.withUnsafeBufferPointer { cosines in
            table.sines.withUnsafeBufferPointer { sines in
                Threading.parallelFor(tokens, minimumChunk: max(1, elementwiseChunk / max(1, heads * H))) { range in
                    for t in range {
                        let c = cosines.baseAddress! + t * half
                        let s = sines.baseAddress! + t * half
                        for head in 0..<heads {
                            let first = values + (t * heads + head) * H
                            let second = first + half
                            for i in 0..<half {
                                let x1 = first[i]
                                let x2 = second[i]
                                let sine = sign * s[i]
                                first[i] = x1 * c[i] - x2 * sine
                                second[i] = x2 * c[i] + x1 * sine
                            }
                        }
                    }
                }
            }
        }
    }
}
