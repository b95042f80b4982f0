/// XXH64, the 64-bit xxHash of Yann Collet, written from the algorithm's specification
/// (xxhash_spec.md in the xxHash repository).
///
/// It checksums gradient frames and hashes parameters for the replica check. It runs at
/// several GB/s because four independent lanes consume 32 bytes per round, which keeps it
/// far below the cost of compressing a frame. It detects corruption, not tampering.
public enum XXHash64 {
    private static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let prime3: UInt64 = 0x1656_67B1_9E37_79F9
    private static let prime4: UInt64 = 0x85EB_CA77_C2B2_AE63
    private static let prime5: UInt64 = 0x27D4_EB2F_1656_67C5

    /// Hashes `bytes` with `seed`.
    public static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        let count = bytes.count
        guard let base = bytes.baseAddress else { return finish(seed &+ prime5, tail: bytes, totalCount: 0) }
        var offset = 0
        var accumulator: UInt64

        if count >= 32 {
            var lane1 = seed &+ prime1 &+ prime2
            var lane2 = seed &+ prime2
            var lane3 = seed
            var lane4 = seed &- prime1
            while offset + 32 <= count {
                lane1 = round(lane1, base.loadUnaligned(fromByteOffset: offset, as: UInt64.self).littleEndian)
                lane2 = round(lane2, base.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self).littleEndian)
                lane3 = round(lane3, base.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self).littleEndian)
                lane4 = round(lane4, base.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self).littleEndian)
                offset += 32
            }
            accumulator = rotateLeft(lane1, 1) &+ rotateLeft(lane2, 7) &+ rotateLeft(lane3, 12) &+ rotateLeft(lane4, 18)
            accumulator = merge(accumulator, lane1)
            accumulator = merge(accumulator, lane2)
            accumulator = merge(accumulator, lane3)
            accumulator = merge(accumulator, lane4)
        } else {
            accumulator = seed &+ prime5
        }

        let tail = UnsafeRawBufferPointer(rebasing: bytes[offset...])
        return finish(accumulator, tail: tail, totalCount: count)
    }

    /// Hashes the bytes of an array.
    public static func hash(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { hash($0, seed: seed) }
    }

    /// Adds the length, consumes the last 0 to 31 bytes and mixes the bits (the avalanche).
    private static func finish(_ start: UInt64, tail: UnsafeRawBufferPointer, totalCount: Int) -> UInt64 {
        var accumulator = start &+ UInt64(totalCount)
        var offset = 0
        if let base = tail.baseAddress {
            while offset + 8 <= tail.count {
                let lane = base.loadUnaligned(fromByteOffset: offset, as: UInt64.self).littleEndian
                accumulator ^= round(0, lane)
                accumulator = rotateLeft(accumulator, 27) &* prime1 &+ prime4
                offset += 8
            }
            if offset + 4 <= tail.count {
                let word = UInt64(base.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian)
                accumulator ^= word &* prime1
                accumulator = rotateLeft(accumulator, 23) &* prime2 &+ prime3
                offset += 4
            }
            while offset < tail.count {
                accumulator ^= UInt64(tail[offset]) &* prime5
                accumulator = rotateLeft(accumulator, 11) &* prime1
                offset += 1
            }
        }

        accumulator ^= accumulator >> 33
        accumulator = accumulator &* prime2
        accumulator ^= accumulator >> 29
        accumulator = accumulator &* prime3
        accumulator ^= accumulator >> 32
        return accumulator
    }

    @inline(__always)
    private static func round(_ accumulator: UInt64, _ lane: UInt64) -> UInt64 {
        rotateLeft(accumulator &+ lane &* prime2, 31) &* prime1
    }

    @inline(__always)
    private static func merge(_ accumulator: UInt64, _ lane: UInt64) -> UInt64 {
        (accumulator ^ round(0, lane)) &* prime1 &+ prime4
    }

    @inline(__always)
    private static func rotateLeft(_ value: UInt64, _ bits: UInt64) -> UInt64 {
        (value << bits) | (value >> (64 - bits))
    }
}
