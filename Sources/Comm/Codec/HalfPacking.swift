/// Conversion of f32 values to byte-shuffled fp16 and back.
///
/// The shuffled layout stores the high byte of every fp16 value first, then every low byte:
/// `[hi_0, hi_1, ..., hi_{n-1}, lo_0, lo_1, ..., lo_{n-1}]`. The high bytes (sign, exponent,
/// two mantissa bits) of gradient values repeat a lot, while the low bytes are close to
/// random, so zstd compresses the shuffled planes better than interleaved values. On 8 M
/// values of N(0, 1e-3), zstd 1.5.4 at level 1 measured 1.19x over fp16, where the entropy
/// of the values bounds it at 1.197x.
///
/// fp16 keeps 11 significant bits. With round to nearest even (F16C), magnitudes of 65520
/// and above become infinity (65504 is the largest finite value), and magnitudes below
/// 2^-25 (about 3e-8) become zero.
enum HalfPacking {
    /// Converts `count` floats to fp16 and writes the shuffled planes to `destination`
    /// (`2 * count` bytes). Returns whether any converted value is infinite or NaN.
    static func encodeShuffled(
        _ source: UnsafePointer<Float>, count: Int, into destination: UnsafeMutablePointer<UInt8>
    ) -> Bool {
        let high = destination
        let low = destination + count
        var maxExponent: UInt16 = 0
        for i in 0..<count {
            let bits = Float16(source[i]).bitPattern
            high[i] = UInt8(truncatingIfNeeded: bits >> 8)
            low[i] = UInt8(truncatingIfNeeded: bits)
            maxExponent = max(maxExponent, bits & 0x7C00)
        }
        // All exponent bits set is the fp16 encoding of infinity and NaN.
        return maxExponent == 0x7C00
    }

    /// Reads `count` fp16 values from shuffled planes at `source` and writes them as f32 to
    /// `destination`, adding `addend[i]` when an addend is given (`decoded + addend`).
    static func decodeShuffled(
        _ source: UnsafePointer<UInt8>, count: Int, into destination: UnsafeMutablePointer<Float>,
        adding addend: UnsafePointer<Float>?
    ) {
        let high = source
        let low = source + count
        if let addend {
            for i in 0..<count {
                let bits = UInt16(high[i]) << 8 | UInt16(low[i])
                destination[i] = Float(Float16(bitPattern: bits)) + addend[i]
            }
        } else {
            for i in 0..<count {
                let bits = UInt16(high[i]) << 8 | UInt16(low[i])
                destination[i] = Float(Float16(bitPattern: bits))
            }
        }
    }

    /// Splits interleaved little-endian 2-byte values into the high-byte and low-byte planes.
    static func shuffle(_ interleaved: [UInt8]) -> [UInt8] {
        let count = interleaved.count / 2
        var planes = [UInt8](repeating: 0, count: 2 * count)
        for i in 0..<count {
            planes[i] = interleaved[2 * i + 1]
            planes[count + i] = interleaved[2 * i]
        }
        return planes
    }

    /// Inverse of `shuffle`.
    static func unshuffle(_ planes: [UInt8]) -> [UInt8] {
        let count = planes.count / 2
        var interleaved = [UInt8](repeating: 0, count: 2 * count)
        for i in 0..<count {
            interleaved[2 * i + 1] = planes[i]
            interleaved[2 * i] = planes[count + i]
        }
        return interleaved
    }
}

/// Returns whether any of `count` floats is infinite or NaN.
func containsNonFinite(_ values: UnsafePointer<Float>, count: Int) -> Bool {
    var maxExponent: UInt32 = 0
    for i in 0..<count {
        maxExponent = max(maxExponent, values[i].bitPattern & 0x7F80_0000)
    }
    return maxExponent == 0x7F80_0000
}
