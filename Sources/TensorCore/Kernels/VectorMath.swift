import Foundation

/// exp over sixteen f32 lanes at a time, for the softmax, cross-entropy and GELU loops.
///
/// libm's `expf` is a call per element, so loops that use it do not vectorise. This version
/// splits x = n·ln2 + r with |r| ≤ ln2/2, evaluates a degree-6 polynomial for e^r (the
/// classic minimax coefficients of single-precision exp), and builds 2^n from its exponent
/// bits. The result is within 2 ulp of `expf` for x in [−87.3, 88.7]; below that it is 0,
/// above it +∞, and a NaN stays NaN. Every step is lane-wise integer or float arithmetic,
/// because Swift's SIMD masks and selects do not vectorise.
public enum VectorMath {
    public typealias Lanes = SIMD16<Float>

    private static let log2e: Float = 1.442_695_04
    /// ln 2 split in two so that n·ln2 is subtracted without rounding error.
    private static let ln2High: Float = 0.693_359_375
    private static let ln2Low: Float = -2.121_944_4e-4
    /// 1.5·2^23: adding it rounds to the nearest integer and leaves it in the low mantissa bits.
    private static let roundingMagic: Float = 12_582_912
    private static let lowest: Float = -87.336_54
    private static let highest: Float = 88.722_83

    @inline(__always)
    public static func exp(_ x: Lanes) -> Lanes {
        // n = round(x·log2(e)), read back as an integer from the low mantissa bits. Lanes
        // outside [lowest, highest] compute garbage here and are overwritten below (a clamp
        // would be a call: SIMD's clamped(lowerBound:upperBound:) is not inlined).
        let shifted = x * log2e + roundingMagic
        let n = shifted - roundingMagic
        let r = x - n * ln2High - n * ln2Low

        var p = Lanes(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_95e-3
        p = p * r + 8.333_451_9e-3
        p = p * r + 4.166_579_59e-2
        p = p * r + 1.666_666_55e-1
        p = p * r + 5.000_000_1e-1
        let er = p * (r * r) + r + 1

        // 2^n as exponent bits, in two halves: n is in [−126, 128] for lanes in range, and 2^128
        // itself is not a float although e^r·2^128 can be.
        let integer = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- unsafeBitCast(Lanes(repeating: roundingMagic), to: SIMD16<Int32>.self)
        let half = integer &>> 1
        let firstScale = unsafeBitCast((half &+ 127) &<< 23, to: Lanes.self)
        let secondScale = unsafeBitCast((integer &- half &+ 127) &<< 23, to: Lanes.self)
        var bits = unsafeBitCast(er * firstScale * secondScale, to: SIMD16<UInt32>.self)

        // Lanes below the range become +0, lanes above it +∞, NaN lanes NaN: masks of all ones
        // or zeros from the sign bit of a difference, applied with integer AND and OR.
        let xBits = unsafeBitCast(x, to: SIMD16<UInt32>.self)
        let below = 0 &- (unsafeBitCast(x - lowest, to: SIMD16<UInt32>.self) &>> 31)
        let above = 0 &- (unsafeBitCast(highest - x, to: SIMD16<UInt32>.self) &>> 31)
        let isNaN = 0 &- ((0x7F80_0000 &- (xBits & 0x7FFF_FFFF)) &>> 31)
        bits = (bits & ~below & ~above) | (0x7F80_0000 & above)
        bits = (bits & ~isNaN) | (xBits & isNaN)
        return unsafeBitCast(bits, to: Lanes.self)
    }

    /// exp of one value with the same formula, for loop tails.
    @inline(__always)
    public static func exp(_ x: Float) -> Float {
        exp(Lanes(repeating: x))[0]
    }

    @inline(__always)
    static func load(_ pointer: UnsafePointer<Float>) -> Lanes {
        UnsafeRawPointer(pointer).loadUnaligned(as: Lanes.self)
    }

    @inline(__always)
    static func store(_ value: Lanes, _ pointer: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: Lanes.self)
    }

    /// The larger of a and b in each lane (for values whose difference is not NaN), selected
    /// with integer arithmetic on the sign of b − a; `pointwiseMax` is a call per lane.
    @inline(__always)
    static func larger(_ a: Lanes, _ b: Lanes) -> Lanes {
        let aWins = 0 &- (unsafeBitCast(b - a, to: SIMD16<UInt32>.self) &>> 31)
        let bits = (unsafeBitCast(a, to: SIMD16<UInt32>.self) & aWins) | (unsafeBitCast(b, to: SIMD16<UInt32>.self) & ~aWins)
        return unsafeBitCast(bits, to: Lanes.self)
    }

    /// The largest of `count` values (−∞ for none).
    @inline(__always)
    static func maximum(_ values: UnsafePointer<Float>, count: Int) -> Float {
        var lanes = Lanes(repeating: -.infinity)
        var i = 0
        while i + 16 <= count {
            lanes = larger(lanes, load(values + i))
            i += 16
        }
        var result = lanes.max()
        while i < count {
            result = Swift.max(result, values[i])
            i += 1
        }
        return result
    }

    /// values[i] = exp(values[i] − shift)·factor for every i; returns Σ exp(values[i] − shift)
    /// accumulated in f32 lanes per block of 1024 and in f64 across blocks.
    @inline(__always)
    @discardableResult
    static func exponentiate(_ values: UnsafeMutablePointer<Float>, count: Int, shift: Float, factor: Float = 1) -> Double {
        exponentiate(UnsafePointer(values), into: values, count: count, shift: shift, factor: factor)
    }

    /// target[i] = exp(source[i] − shift)·factor; returns the sum as `exponentiate` does.
    @inline(__always)
    @discardableResult
    static func exponentiate(
        _ source: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>, count: Int, shift: Float, factor: Float = 1
    ) -> Double {
        var total = 0.0
        var start = 0
        while start < count {
            let end = Swift.min(count, start + 1024)
            var lanes = Lanes()
            var i = start
            while i + 16 <= end {
                let e = exp(load(source + i) - shift)
                lanes += e
                store(e * factor, target + i)
                i += 16
            }
            var sum = Double(lanes.sum())
            while i < end {
                let e = exp(source[i] - shift)
                sum += Double(e)
                target[i] = e * factor
                i += 1
            }
            total += sum
            start = end
        }
        return total
    }

    /// Σ exp(values[i] − shift), accumulated as in `exponentiate`, without writing.
    @inline(__always)
    static func sumOfExponentials(_ values: UnsafePointer<Float>, count: Int, shift: Float) -> Double {
        var total = 0.0
        var start = 0
        while start < count {
            let end = Swift.min(count, start + 1024)
            var lanes = Lanes()
            var i = start
            while i + 16 <= end {
                lanes += exp(load(values + i) - shift)
                i += 16
            }
            var sum = Double(lanes.sum())
            while i < end {
                sum += Double(exp(values[i] - shift))
                i += 1
            }
            total += sum
            start = end
        }
        return total
    }
}
