import TensorCore

/// A small deterministic generator (SplitMix64) so that test inputs are the same on every run.
struct TestRandom {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    mutating func uniform() -> Float {
        Float(next() >> 40) / Float(1 << 24) * 2 - 1
    }

    mutating func tensor(_ shape: [Int]) -> Tensor {
        let count = shape.reduce(1, *)
        return Tensor(shape: shape, values: (0..<count).map { _ in uniform() })
    }
}

func maxAbsDifference(_ a: Tensor, _ b: Tensor) -> Float {
    precondition(a.count == b.count)
    var worst: Float = 0
    let (x, y) = (a.scalars, b.scalars)
    for i in 0..<x.count { worst = max(worst, abs(x[i] - y[i])) }
    return worst
}
