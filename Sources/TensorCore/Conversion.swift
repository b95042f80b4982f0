/// Conversions between f32 and the 2-byte storage formats.
///
/// f16 uses the hardware conversion (F16C, enabled by `-mf16c` in Package.swift).
/// bf16 is the upper half of an f32; conversion to bf16 rounds to nearest even,
/// as numpy's ml_dtypes and JAX do, and keeps NaN a NaN.
/// The bulk conversions split large arrays across `Threading.threadCount` threads and accept
/// sources at any byte alignment, because arrays inside an NPZ file start at arbitrary offsets.

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
    Threading.parallelFor(count, minimumChunk: 1 << 16) { range in
        let from = source + range.lowerBound * dtype.byteSize
        let to = destination + range.lowerBound
        convertChunkToFloat(from, dtype: dtype, count: range.count, into: to)
    }
}

/// Converts `count` f32 values at `source` to `dtype` at `destination`.
public func convertFromFloat(
    _ source: UnsafePointer<Float>, count: Int, to dtype: DType, into destination: UnsafeMutableRawPointer
) {
    Threading.parallelFor(count, minimumChunk: 1 << 16) { range in
        let from = source + range.lowerBound
        let to = destination + range.lowerBound * dtype.byteSize
        convertChunkFromFloat(from, count: range.count, to: dtype, into: to)
    }
}

private func convertChunkToFloat(
    _ source: UnsafeRawPointer, dtype: DType, count: Int, into destination: UnsafeMutablePointer<Float>
) {
    let aligned = Int(bitPattern: source) % dtype.byteSize == 0
    switch (dtype, aligned) {
    case (.f32, _):
        UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * 4)
    case (.f16, true):
        let halves = source.assumingMemoryBound(to: Float16.self)
        for i in 0..<count { destination[i] = Float(halves[i]) }
    case (.f16, false):
        for i in 0..<count { destination[i] = Float(source.loadUnaligned(fromByteOffset: 2 * i, as: Float16.self)) }
    case (.bf16, true):
        let words = source.assumingMemoryBound(to: UInt16.self)
        for i in 0..<count { destination[i] = float(fromBF16: words[i]) }
    case (.bf16, false):
        for i in 0..<count { destination[i] = float(fromBF16: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
    }
}

private func convertChunkFromFloat(
    _ source: UnsafePointer<Float>, count: Int, to dtype: DType, into destination: UnsafeMutableRawPointer
) {
    switch dtype {
    case .f32:
        destination.copyMemory(from: source, byteCount: count * 4)
    case .f16:
        if Int(bitPattern: destination) % 2 == 0 {
            let halves = destination.assumingMemoryBound(to: Float16.self)
            for i in 0..<count { halves[i] = Float16(source[i]) }
        } else {
            for i in 0..<count { destination.storeBytes(of: Float16(source[i]), toByteOffset: 2 * i, as: Float16.self) }
        }
    case .bf16:
        if Int(bitPattern: destination) % 2 == 0 {
            let words = destination.assumingMemoryBound(to: UInt16.self)
            for i in 0..<count { words[i] = bf16Bits(from: source[i]) }
        } else {
            for i in 0..<count { destination.storeBytes(of: bf16Bits(from: source[i]), toByteOffset: 2 * i, as: UInt16.self) }
        }
    }
}
