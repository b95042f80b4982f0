import Foundation

/// SplitMix64 (Steele, Lea and Flood, 2014): a small, fast generator whose sequence depends
/// only on the seed, so every rank can regenerate any other rank's data.
public struct SplitMix64: Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Returns a uniform value in (0, 1) from 53 random bits. It is never exactly 0.
    public mutating func nextUnit() -> Double {
        (Double(next() >> 11) + 0.5) / 9_007_199_254_740_992
    }
}

/// Deterministic gradient-like data for tests and benchmarks of the all-reduce.
///
/// Values are `sigma * rowScale[row] * z` with z ~ N(0, 1) (Box-Muller) and rows of
/// `rowWidth` consecutive values, like the rows of a weight gradient. The row scales are
/// log-normal, `exp(0.5 * z')`, and drawn from `structureSeed` alone, so all ranks share the
/// same structure (the same layers have large or small gradients on every rank) while the
/// values themselves depend on `seed`.
public enum SyntheticGradients {
    public static func fill(
        _ buffer: UnsafeMutableBufferPointer<Float>, seed: UInt64, structureSeed: UInt64 = 0x5EED,
        sigma: Double = 1e-3, rowWidth: Int = 2048
    ) {
        var values = SplitMix64(seed: seed)
        var structure = SplitMix64(seed: structureSeed)
        var rowScale = 1.0
        var pending: Double?
        for i in 0..<buffer.count {
            if i % rowWidth == 0 {
                rowScale = exp(0.5 * gaussian(&structure).0)
            }
            let z: Double
            if let next = pending {
                z = next
                pending = nil
            } else {
                let pair = gaussian(&values)
                z = pair.0
                pending = pair.1
            }
            buffer[i] = Float(sigma * rowScale * z)
        }
    }

    /// Two independent N(0, 1) values (Box-Muller).
    private static func gaussian(_ generator: inout SplitMix64) -> (Double, Double) {
        let radius = (-2 * log(generator.nextUnit())).squareRoot()
        let angle = 2 * Double.pi * generator.nextUnit()
        return (radius * cos(angle), radius * sin(angle))
    }
}
