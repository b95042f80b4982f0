/// Conversions between f32 and the 2-byte storage formats.
///
/// f16 uses the hardware conversion (F16C, enabled by `-mf16c` in Package.swift).
/// bf16 is the upper half of an f32; conversion to bf16 rounds to nearest even,
/// as numpy's ml_dtypes and JAX do, and keeps NaN a NaN.

/// Rounds an f32 to bf16 bits (round to nearest, ties to even).
@inlinable
public func bf16Bits(from value: Float) -> UInt16 {
    let bits = value.bitPattern
    if value.isNaN {
        return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040
    }
    let roundingBias: UInt32 = 0x7FFF + ((bits >> 16) & 1)
    return UInt16(truncatingIfNeeded: (bits &+ roundingBias) >> 16)
}

/// Expands bf16 bits to f32 exactly.
@inlinable
public func float(fromBF16 bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

/// Converts `count` elements stored as `dtype` at `source` to f32 at `destination`.
public func convertToFloat(
    _ source: UnsafeRawPointer, dtype: DType, count: Int, into destination: UnsafeMutablePointer<Float>
) {
    switch dtype {
    case .f32:
        destination.update(from: source.assumingMemoryBound(to: Float.self), count: count)
    case .f16:
        let halves = source.assumingMemoryBound(to: Float16.self)
        for i in 0..<count { destination[i] = Float(halves[i]) }
    case .bf16:
        let words = source.assumingMemoryBound(to: UInt16.self)
        for i in 0..<count { destination[i] = float(fromBF16: words[i]) }
    }
}

/// Converts `count` f32 values at `source` to `dtype` at `destination`.
public func convertFromFloat(
    _ source: UnsafePointer<Float>, count: Int, to dtype: DType, into destination: UnsafeMutableRawPointer
) {
    switch dtype {
    case .f32:
        destination.assumingMemoryBound(to: Float.self).update(from: source, count: count)
    case .f16:
        let halves = destination.assumingMemoryBound(to: Float16.self)
        for i in 0..<count { halves[i] = Float16(source[i]) }
    case .bf16:
        let words = destination.assumingMemoryBound(to: UInt16.self)
        for i in 0..<count { words[i] = bf16Bits(from: source[i]) }
    }
}
