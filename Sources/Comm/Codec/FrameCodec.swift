/// Encodes chunks of f32 values into gradient frames and validates and decodes received ones.
///
/// One instance per rank, used from one thread: it reuses a zstd context and a scratch buffer.
/// Decoding checks every header field against a `FrameExpectation` before it touches the
/// payload, so a malformed frame ends in `CommError.malformedFrame` naming the sender and the
/// bucket, never in a read or write out of bounds.
final class FrameCodec {
    /// This rank, named in compression errors.
    let rank: Int
    private let zstd: ZstdContext
    private var scratch: UnsafeMutableRawBufferPointer

    init(rank: Int, zstdLevel: Int32) throws {
        self.rank = rank
        self.zstd = try ZstdContext(level: zstdLevel)
        self.scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 0, alignment: 64)
    }

    deinit {
        scratch.deallocate()
    }

    /// Returns the size of the largest frame `encode` produces for `elementCount` values.
    static func maxFrameBytes(elementCount: Int, codec: WireCodec) -> Int {
        switch codec {
        case .f32: return FrameHeader.byteCount + 4 * elementCount
        case .f16Shuffled: return FrameHeader.byteCount + 2 * elementCount
        case .f16ShuffledZstd: return FrameHeader.byteCount + max(ZstdContext.compressBound(2 * elementCount), 2 * elementCount)
        }
    }

    /// A frame ready to send, and whether its values became infinite or NaN in the cast.
    struct EncodedFrame {
        let message: MessageBuffer
        /// For fp16 codecs: a value is infinite or NaN after the cast to fp16 (an overflow
        /// above 65504 or a NaN input). For `f32`: an input value is infinite or NaN.
        let nonFinite: Bool
    }

    /// Encodes `values` with `codec`, into `reusing` when its capacity suffices. A zstd chunk
    /// that does not shrink is sent as `f16Shuffled`, so that noise never costs more than fp16.
    func encode(
        _ values: UnsafeBufferPointer<Float>, codec: WireCodec, phase: FramePhase, bucket: UInt32, chunk: UInt32, step: UInt32,
        reusing spare: MessageBuffer? = nil
    ) throws -> EncodedFrame {
        let count = values.count
        let needed = Self.maxFrameBytes(elementCount: count, codec: codec)
        let message = spare.flatMap { $0.capacity >= needed ? $0 : nil } ?? MessageBuffer(capacity: needed)
        let payload = UnsafeMutableRawBufferPointer(start: message.baseAddress + FrameHeader.byteCount, count: needed - FrameHeader.byteCount)
        let source = values.baseAddress ?? UnsafePointer(emptyFloats)

        var sentCodec = codec
        var payloadBytes: Int
        var nonFinite: Bool
        switch codec {
        case .f32:
            payload.baseAddress!.copyMemory(from: source, byteCount: 4 * count)
            payloadBytes = 4 * count
            nonFinite = containsNonFinite(source, count: count)

        case .f16Shuffled:
            let planes = payload.baseAddress!.assumingMemoryBound(to: UInt8.self)
            nonFinite = HalfPacking.encodeShuffled(source, count: count, into: planes)
            payloadBytes = 2 * count

        case .f16ShuffledZstd:
            let planes = scratchBytes(2 * count)
            nonFinite = HalfPacking.encodeShuffled(source, count: count, into: planes.baseAddress!.assumingMemoryBound(to: UInt8.self))
            do {
                payloadBytes = try zstd.compress(UnsafeRawBufferPointer(planes), into: payload)
            } catch let failure as ZstdFailure {
                throw CommError.compressionFailed(rank: rank, bucket: bucket, message: failure.message)
            }
            if payloadBytes >= 2 * count {
                payload.baseAddress!.copyMemory(from: planes.baseAddress!, byteCount: 2 * count)
                payloadBytes = 2 * count
                sentCodec = .f16Shuffled
            }
        }

        let checksum = XXHash64.hash(UnsafeRawBufferPointer(rebasing: payload[..<payloadBytes]))
        let header = FrameHeader(
            codec: sentCodec, phase: phase, bucket: bucket, chunk: chunk, step: step,
            elementCount: UInt32(count), payloadByteCount: UInt32(payloadBytes), payloadChecksum: checksum
        )
        message.withUnsafeMutableBytes { header.write(to: $0) }
        message.count = FrameHeader.byteCount + payloadBytes
        return EncodedFrame(message: message, nonFinite: nonFinite)
    }

    /// Rewrites the phase step of a received frame so it can be forwarded unchanged otherwise
    /// (the payload and its checksum stay the same bytes).
    static func restamp(_ message: MessageBuffer, step: UInt32) {
        message.withUnsafeMutableBytes { $0.storeBytes(of: step.littleEndian, toByteOffset: 16, as: UInt32.self) }
    }

    /// Validates `message` against `expected` and decodes its values into `destination`
    /// (`destination[i] = decoded[i] + addend[i]` when `addend` is given).
    func decode(
        _ message: MessageBuffer, expecting expected: FrameExpectation,
        into destination: UnsafeMutableBufferPointer<Float>, adding addend: UnsafeBufferPointer<Float>?
    ) throws {
        let (codec, payload) = try validate(message, expecting: expected)
        let count = expected.elementCount
        let output = destination.baseAddress ?? emptyFloats
        let addendBase = addend?.baseAddress

        switch codec {
        case .f32:
            let received = payload.baseAddress!
            if let addendBase {
                for i in 0..<count {
                    output[i] = received.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) + addendBase[i]
                }
            } else {
                UnsafeMutableRawPointer(output).copyMemory(from: received, byteCount: 4 * count)
            }

        case .f16Shuffled:
            let planes = payload.baseAddress!.assumingMemoryBound(to: UInt8.self)
            HalfPacking.decodeShuffled(planes, count: count, into: output, adding: addendBase)

        case .f16ShuffledZstd:
            let planes = scratchBytes(2 * count)
            let decompressed: Int
            do {
                decompressed = try zstd.decompress(payload, into: planes)
            } catch let failure as ZstdFailure {
                throw malformed(expected, "zstd decompression failed: \(failure.message)")
            }
            guard decompressed == 2 * count else {
                throw malformed(expected, "zstd payload decompressed to \(decompressed) bytes, expected \(2 * count) (\(count) fp16 values)")
            }
            HalfPacking.decodeShuffled(planes.baseAddress!.assumingMemoryBound(to: UInt8.self), count: count, into: output, adding: addendBase)
        }
    }

    /// Checks the frame's length, header fields and checksum, in that order, and returns the
    /// codec and the payload.
    func validate(_ message: MessageBuffer, expecting expected: FrameExpectation) throws -> (WireCodec, UnsafeRawBufferPointer) {
        let bytes = UnsafeRawBufferPointer(start: message.baseAddress, count: message.count)
        guard bytes.count >= FrameHeader.byteCount else {
            throw malformed(expected, "frame of \(bytes.count) bytes is shorter than the \(FrameHeader.byteCount)-byte header (truncated)")
        }
        let header = FrameHeader(reading: bytes)

        guard header.magic == FrameHeader.magic else {
            throw malformed(expected, "magic \(hex32(header.magic)) is not the frame magic \(hex32(FrameHeader.magic)) (\"PGRF\")")
        }
        guard header.version == FrameHeader.version else {
            throw malformed(expected, "frame format version \(header.version), expected \(FrameHeader.version)")
        }
        guard header.reserved1 == 0, header.reserved2 == 0 else {
            throw malformed(expected, "reserved header fields are \(header.reserved1) and \(header.reserved2), expected 0")
        }
        guard header.bucket == expected.bucket else {
            throw malformed(expected, "frame is for bucket \(header.bucket), expected bucket \(expected.bucket)")
        }
        guard header.phase == expected.phase.rawValue, header.step == expected.step, header.chunk == expected.chunk else {
            let phase = FramePhase(rawValue: header.phase).map(String.init(describing:)) ?? "unknown phase \(header.phase)"
            throw malformed(
                expected,
                "frame carries chunk \(header.chunk) at \(phase) step \(header.step), expected chunk \(expected.chunk) at \(expected.phase) step \(expected.step)"
            )
        }
        guard let codec = WireCodec(rawValue: header.codec), expected.allowedCodecs.contains(codec) else {
            let found = WireCodec(rawValue: header.codec).map(String.init(describing:)) ?? "unknown codec \(header.codec)"
            throw malformed(expected, "codec \(found), expected one of \(expected.allowedCodecs.map(String.init(describing:)).joined(separator: ", "))")
        }
        guard Int(header.elementCount) == expected.elementCount else {
            throw malformed(expected, "frame contains \(header.elementCount) elements, expected \(expected.elementCount)")
        }

        let payloadBytes = bytes.count - FrameHeader.byteCount
        guard Int(header.payloadByteCount) == payloadBytes else {
            let kind = Int(header.payloadByteCount) > payloadBytes ? "truncated" : "overlong"
            throw malformed(expected, "header declares \(header.payloadByteCount) payload bytes but the message carries \(payloadBytes) (\(kind))")
        }
        let count = expected.elementCount
        switch codec {
        case .f32, .f16Shuffled:
            let exact = (codec == .f32 ? 4 : 2) * count
            guard payloadBytes == exact else {
                throw malformed(expected, "\(codec) payload of \(payloadBytes) bytes, expected \(exact) for \(count) elements")
            }
        case .f16ShuffledZstd:
            let bound = ZstdContext.compressBound(2 * count)
            guard payloadBytes > 0, payloadBytes <= bound else {
                throw malformed(expected, "zstd payload of \(payloadBytes) bytes, expected 1...\(bound) for \(count) elements (overlong)")
            }
        }

        let payload = UnsafeRawBufferPointer(rebasing: bytes[FrameHeader.byteCount...])
        let checksum = XXHash64.hash(payload)
        guard checksum == header.payloadChecksum else {
            throw malformed(expected, "payload checksum \(hex(checksum)) does not match the header's \(hex(header.payloadChecksum))")
        }
        return (codec, payload)
    }

    private func malformed(_ expected: FrameExpectation, _ reason: String) -> CommError {
        .malformedFrame(peer: expected.peer, bucket: expected.bucket, reason: reason)
    }

    /// Returns a scratch area of at least `byteCount` bytes, growing it on demand.
    private func scratchBytes(_ byteCount: Int) -> UnsafeMutableRawBufferPointer {
        if scratch.count < byteCount {
            scratch.deallocate()
            scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: 64)
        }
        return UnsafeMutableRawBufferPointer(rebasing: scratch[..<max(byteCount, 0)])
    }
}

/// A valid address for the empty buffers of zero-element chunks, which have no base address.
/// Nothing is read or written through it: every loop runs zero times.
nonisolated(unsafe) private let emptyFloats = UnsafeMutablePointer<Float>.allocate(capacity: 1)

private func hex32(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
}
