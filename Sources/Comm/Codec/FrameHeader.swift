/// Encoding of the values in a frame's payload.
public enum WireCodec: UInt8, Sendable, CustomStringConvertible {
    /// Little-endian f32, `4 * n` bytes.
    case f32 = 1
    /// fp16 in shuffled byte planes (`HalfPacking`), `2 * n` bytes.
    case f16Shuffled = 2
    /// The `f16Shuffled` planes compressed with zstd, one zstd frame.
    case f16ShuffledZstd = 3

    public var description: String {
        switch self {
        case .f32: return "f32"
        case .f16Shuffled: return "f16-shuffled"
        case .f16ShuffledZstd: return "f16-shuffled-zstd"
        }
    }
}

/// The part of the ring a frame belongs to.
public enum FramePhase: UInt8, Sendable, CustomStringConvertible {
    /// Partial sums travelling towards a chunk's owner.
    case reduceScatter = 1
    /// Final chunks travelling from their owner to every rank.
    case allGather = 2

    public var description: String {
        self == .reduceScatter ? "reduce-scatter" : "all-gather"
    }
}

/// The 40-byte header in front of every gradient frame. All fields are little-endian.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | magic `PGRF` (bytes 0x50 0x47 0x52 0x46) |
/// | 4 | 1 | format version, 1 |
/// | 5 | 1 | codec (`WireCodec`) |
/// | 6 | 1 | phase (`FramePhase`) |
/// | 7 | 1 | reserved, 0 |
/// | 8 | 4 | bucket id (a sequence number per all-reducer) |
/// | 12 | 4 | chunk index within the bucket |
/// | 16 | 4 | step within the phase, 0..<size-1 |
/// | 20 | 4 | element count of the chunk |
/// | 24 | 4 | payload byte count |
/// | 28 | 4 | reserved, 0 |
/// | 32 | 8 | XXH64 (seed 0) of the payload |
public struct FrameHeader: Equatable, Sendable {
    public static let byteCount = 40
    public static let magic: UInt32 = 0x4652_4750  // "PGRF" read as little-endian UInt32
    public static let version: UInt8 = 1

    public var magic: UInt32 = FrameHeader.magic
    public var version: UInt8 = FrameHeader.version
    public var codec: UInt8
    public var phase: UInt8
    public var reserved1: UInt8 = 0
    public var bucket: UInt32
    public var chunk: UInt32
    public var step: UInt32
    public var elementCount: UInt32
    public var payloadByteCount: UInt32
    public var reserved2: UInt32 = 0
    public var payloadChecksum: UInt64

    public init(
        codec: WireCodec, phase: FramePhase, bucket: UInt32, chunk: UInt32, step: UInt32,
        elementCount: UInt32, payloadByteCount: UInt32, payloadChecksum: UInt64
    ) {
        self.codec = codec.rawValue
        self.phase = phase.rawValue
        self.bucket = bucket
        self.chunk = chunk
        self.step = step
        self.elementCount = elementCount
        self.payloadByteCount = payloadByteCount
        self.payloadChecksum = payloadChecksum
    }

    /// Reads a header from the first 40 bytes of `bytes`. The caller checks the length.
    init(reading bytes: UnsafeRawBufferPointer) {
        func load<T: FixedWidthInteger>(_ offset: Int, _ type: T.Type) -> T {
            T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        }
        magic = load(0, UInt32.self)
        version = bytes[4]
        codec = bytes[5]
        phase = bytes[6]
        reserved1 = bytes[7]
        bucket = load(8, UInt32.self)
        chunk = load(12, UInt32.self)
        step = load(16, UInt32.self)
        elementCount = load(20, UInt32.self)
        payloadByteCount = load(24, UInt32.self)
        reserved2 = load(28, UInt32.self)
        payloadChecksum = load(32, UInt64.self)
    }

    /// Writes the header to the first 40 bytes of `bytes`.
    func write(to bytes: UnsafeMutableRawBufferPointer) {
        func store<T: FixedWidthInteger>(_ value: T, _ offset: Int) {
            bytes.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
        }
        store(magic, 0)
        bytes[4] = version
        bytes[5] = codec
        bytes[6] = phase
        bytes[7] = reserved1
        store(bucket, 8)
        store(chunk, 12)
        store(step, 16)
        store(elementCount, 20)
        store(payloadByteCount, 24)
        store(reserved2, 28)
        store(payloadChecksum, 32)
    }
}

/// The header values a receiver expects in a frame. Every header field is checked against it.
public struct FrameExpectation: Sendable {
    /// The sending rank, named in errors.
    public var peer: Int
    public var bucket: UInt32
    public var phase: FramePhase
    public var step: UInt32
    public var chunk: UInt32
    public var elementCount: Int
    /// Codecs the sender may have chosen in the current compression mode.
    public var allowedCodecs: [WireCodec]

    public init(
        peer: Int, bucket: UInt32, phase: FramePhase, step: UInt32, chunk: UInt32, elementCount: Int,
        allowedCodecs: [WireCodec]
    ) {
        self.peer = peer
        self.bucket = bucket
        self.phase = phase
        self.step = step
        self.chunk = chunk
        self.elementCount = elementCount
        self.allowedCodecs = allowedCodecs
    }
}
