import XCTest

@testable import Comm

final class CodecTests: XCTestCase {
    // MARK: - XXH64

    /// Vectors from the reference implementation (python-xxhash 3, xxHash 0.8) for bytes
    /// `(7 * i + 3) % 256`, covering the short path, the byte, 4-byte and 8-byte tails and
    /// the 32-byte stripes.
    func testXXHash64MatchesReferenceVectors() {
        let vectors: [(count: Int, seed0: UInt64, seed12345: UInt64)] = [
            (0, 0xEF46_DB37_51D8_E999, 0x9558_4AF7_701F_808D),
            (1, 0x1F25_C8D0_BC1F_4BB6, 0x9102_786A_712F_F044),
            (3, 0x31D2_363F_52E5_64C9, 0xC627_0EC9_7F03_4479),
            (45, 0x86FA_EE00_897C_4B41, 0x66B4_F745_7E77_36B8),
            (100, 0xA61F_8D4C_170F_E531, 0xACB8_A028_91FE_A7D2),
            (1000, 0x5F23_5FA0_33F1_A3FB, 0x365C_39A0_C5A4_C88E),
        ]
        for vector in vectors {
            let bytes = (0..<vector.count).map { UInt8((7 * $0 + 3) % 256) }
            XCTAssertEqual(XXHash64.hash(bytes), vector.seed0, "length \(vector.count), seed 0")
            XCTAssertEqual(XXHash64.hash(bytes, seed: 12345), vector.seed12345, "length \(vector.count), seed 12345")
        }
        XCTAssertEqual(XXHash64.hash(Array("abc".utf8)), 0x44BC_2CF5_AD77_0999)
    }

    // MARK: - fp16 and byte shuffle

    func testShufflePutsHighBytesFirst() {
        let interleaved: [UInt8] = [0x01, 0xA1, 0x02, 0xA2, 0x03, 0xA3]
        let planes = HalfPacking.shuffle(interleaved)
        XCTAssertEqual(planes, [0xA1, 0xA2, 0xA3, 0x01, 0x02, 0x03])
        XCTAssertEqual(HalfPacking.unshuffle(planes), interleaved)
    }

    func testEncodeShuffledMatchesFloat16Bits() {
        let values: [Float] = [0, -0.0, 1, -2.5, 1e-3, 3e-7, 6e-8, 65504, -65504, 0.1, 1234.567]
        var planes = [UInt8](repeating: 0, count: 2 * values.count)
        let nonFinite = values.withUnsafeBufferPointer { source in
            planes.withUnsafeMutableBufferPointer { HalfPacking.encodeShuffled(source.baseAddress!, count: values.count, into: $0.baseAddress!) }
        }
        XCTAssertFalse(nonFinite)

        var interleaved: [UInt8] = []
        for value in values {
            let bits = Float16(value).bitPattern
            interleaved += [UInt8(bits & 0xFF), UInt8(bits >> 8)]
        }
        XCTAssertEqual(planes, HalfPacking.shuffle(interleaved))

        var decoded = [Float](repeating: .nan, count: values.count)
        planes.withUnsafeBufferPointer { source in
            decoded.withUnsafeMutableBufferPointer { HalfPacking.decodeShuffled(source.baseAddress!, count: values.count, into: $0.baseAddress!, adding: nil) }
        }
        for (value, result) in zip(values, decoded) {
            XCTAssertEqual(result.bitPattern, Float(Float16(value)).bitPattern, "decoding fp16 of \(value)")
        }
    }

    func testDecodeShuffledAddsAddendAfterRounding() {
        let values: [Float] = [0.1, -3.3, 1e-4]
        let addend: [Float] = [1e-9, 2, -7]
        var planes = [UInt8](repeating: 0, count: 6)
        _ = values.withUnsafeBufferPointer { source in
            planes.withUnsafeMutableBufferPointer { HalfPacking.encodeShuffled(source.baseAddress!, count: 3, into: $0.baseAddress!) }
        }
        var decoded = [Float](repeating: 0, count: 3)
        planes.withUnsafeBufferPointer { source in
            addend.withUnsafeBufferPointer { add in
                decoded.withUnsafeMutableBufferPointer {
                    HalfPacking.decodeShuffled(source.baseAddress!, count: 3, into: $0.baseAddress!, adding: add.baseAddress!)
                }
            }
        }
        for i in 0..<3 {
            XCTAssertEqual(decoded[i], Float(Float16(values[i])) + addend[i])
        }
    }

    func testEncodeShuffledFlagsOverflowAndNaN() {
        for bad: Float in [65520, -65520, 1e6, .infinity, -.infinity, .nan] {
            let values: [Float] = [1, bad, 2]
            var planes = [UInt8](repeating: 0, count: 6)
            let nonFinite = values.withUnsafeBufferPointer { source in
                planes.withUnsafeMutableBufferPointer { HalfPacking.encodeShuffled(source.baseAddress!, count: 3, into: $0.baseAddress!) }
            }
            XCTAssertTrue(nonFinite, "value \(bad) must be reported")
        }
    }

    /// The pre-scale check compares magnitudes with `fp16OverflowThreshold` instead of
    /// casting; it must agree with the hardware cast on both sides of the threshold.
    func testOverflowThresholdAgreesWithFloat16Cast() {
        let threshold = fp16OverflowThreshold
        XCTAssertTrue(Float(Float16(threshold)).isInfinite)
        XCTAssertFalse(Float(Float16(threshold.nextDown)).isInfinite)
        XCTAssertEqual(Float(Float16(threshold.nextDown)), 65504)
        XCTAssertTrue(Float(Float16(-threshold)).isInfinite)
    }

    // MARK: - Frames

    private func makeValues(_ count: Int, seed: UInt64) -> [Float] {
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBufferPointer { SyntheticGradients.fill($0, seed: seed) }
        return values
    }

    private func encode(
        _ values: [Float], codec: WireCodec, bucket: UInt32 = 7, chunk: UInt32 = 2, step: UInt32 = 1
    ) throws -> MessageBuffer {
        let frameCodec = try FrameCodec(rank: 3, zstdLevel: 1)
        return try values.withUnsafeBufferPointer {
            try frameCodec.encode($0, codec: codec, phase: .reduceScatter, bucket: bucket, chunk: chunk, step: step).message
        }
    }

    private func expectation(count: Int, codecs: [WireCodec], bucket: UInt32 = 7) -> FrameExpectation {
        FrameExpectation(peer: 3, bucket: bucket, phase: .reduceScatter, step: 1, chunk: 2, elementCount: count, allowedCodecs: codecs)
    }

    private func decode(_ message: MessageBuffer, _ expected: FrameExpectation) throws -> [Float] {
        let frameCodec = try FrameCodec(rank: 4, zstdLevel: 1)
        var output = [Float](repeating: .nan, count: expected.elementCount)
        try output.withUnsafeMutableBufferPointer { try frameCodec.decode(message, expecting: expected, into: $0, adding: nil) }
        return output
    }

    func testFrameRoundTripForEveryCodec() throws {
        let values = makeValues(5000, seed: 1)
        for codec in [WireCodec.f32, .f16Shuffled, .f16ShuffledZstd] {
            let message = try encode(values, codec: codec)
            let decoded = try decode(message, expectation(count: values.count, codecs: [codec]))
            for i in values.indices {
                let expected = codec == .f32 ? values[i] : Float(Float16(values[i]))
                XCTAssertEqual(decoded[i].bitPattern, expected.bitPattern, "\(codec) element \(i)")
            }
        }
    }

    func testZstdFrameIsSmallerThanFP16() throws {
        let values = makeValues(100_000, seed: 2)
        let message = try encode(values, codec: .f16ShuffledZstd)
        let header = message.withUnsafeBytes { FrameHeader(reading: $0) }
        XCTAssertEqual(header.codec, WireCodec.f16ShuffledZstd.rawValue)
        // Measured on this data: about 1.2x below fp16, the entropy bound of N(0, 1e-3) in fp16.
        XCTAssertLessThan(message.count, 2 * values.count * 100 / 110, "zstd frame of \(message.count) bytes")
    }

    func testIncompressibleZstdChunkIsSentAsFP16() throws {
        var generator = SplitMix64(seed: 9)
        // Random bit patterns of finite fp16 values: nothing for zstd to find.
        let values = (0..<64).map { _ in Float(Float16(bitPattern: UInt16(truncatingIfNeeded: generator.next()) & 0x7BFF)) }
        let message = try encode(values, codec: .f16ShuffledZstd)
        let header = message.withUnsafeBytes { FrameHeader(reading: $0) }
        XCTAssertEqual(header.codec, WireCodec.f16Shuffled.rawValue)
        XCTAssertEqual(message.count, FrameHeader.byteCount + 2 * values.count)
        let decoded = try decode(message, expectation(count: values.count, codecs: GradientCompression.zstdFP16.allowedCodecs))
        XCTAssertEqual(decoded, values)
    }

    func testEmptyChunkRoundTrips() throws {
        for codec in [WireCodec.f32, .f16Shuffled, .f16ShuffledZstd] {
            let message = try encode([], codec: codec)
            let decoded = try decode(message, expectation(count: 0, codecs: [codec, .f16Shuffled]))
            XCTAssertEqual(decoded, [])
        }
    }

    /// Applies `damage` to a valid zstd frame and checks that decoding fails with a frame
    /// error naming rank 3 and bucket 7 whose reason contains `reasonFragment`.
    private func assertRejected(
        _ name: String, reasonFragment: String, codecs: [WireCodec] = [.f16ShuffledZstd, .f16Shuffled],
        elementCount: Int = 4096, file: StaticString = #filePath, line: UInt = #line,
        damage: (MessageBuffer) -> MessageBuffer
    ) throws {
        let values = makeValues(4096, seed: 5)
        let valid = try encode(values, codec: .f16ShuffledZstd)
        XCTAssertEqual(valid.withUnsafeBytes { FrameHeader(reading: $0) }.codec, WireCodec.f16ShuffledZstd.rawValue, file: file, line: line)
        let message = damage(valid)
        XCTAssertThrowsError(try decode(message, expectation(count: elementCount, codecs: codecs)), name, file: file, line: line) { error in
            guard case CommError.malformedFrame(let peer, let bucket, let reason) = error else {
                return XCTFail("\(name): expected malformedFrame, got \(error)", file: file, line: line)
            }
            XCTAssertEqual(peer, 3, name, file: file, line: line)
            XCTAssertEqual(bucket, 7, name, file: file, line: line)
            XCTAssertTrue(reason.contains(reasonFragment), "\(name): reason '\(reason)' lacks '\(reasonFragment)'", file: file, line: line)
            XCTAssertTrue("\(error)".contains("from rank 3 in bucket 7"), "\(name): \(error)", file: file, line: line)
        }
    }

    private func copy(_ message: MessageBuffer, count: Int? = nil, edit: (UnsafeMutableRawBufferPointer) -> Void = { _ in }) -> MessageBuffer {
        let length = count ?? message.count
        let result = MessageBuffer(count: length)
        result.withUnsafeMutableBytes { target in
            message.withUnsafeBytes { source in
                for i in 0..<min(length, source.count) { target[i] = source[i] }
            }
            edit(target)
        }
        return result
    }

    private func setUInt32(_ value: UInt32, at offset: Int) -> (UnsafeMutableRawBufferPointer) -> Void {
        { $0.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self) }
    }

    func testFrameRejectsWrongMagic() throws {
        try assertRejected("magic", reasonFragment: "magic") { self.copy($0, edit: self.setUInt32(0xDEAD_BEEF, at: 0)) }
    }

    func testFrameRejectsShortMessage() throws {
        try assertRejected("short", reasonFragment: "shorter than the 40-byte header") { self.copy($0, count: 12) }
    }

    func testFrameRejectsWrongVersion() throws {
        try assertRejected("version", reasonFragment: "version 9") { self.copy($0) { $0[4] = 9 } }
    }

    func testFrameRejectsWrongBucket() throws {
        try assertRejected("bucket", reasonFragment: "bucket 8, expected bucket 7") { self.copy($0, edit: self.setUInt32(8, at: 8)) }
    }

    func testFrameRejectsWrongChunkAndStep() throws {
        try assertRejected("chunk", reasonFragment: "chunk 5 at reduce-scatter step 1, expected chunk 2") {
            self.copy($0, edit: self.setUInt32(5, at: 12))
        }
        try assertRejected("step", reasonFragment: "step 4") { self.copy($0, edit: self.setUInt32(4, at: 16)) }
        try assertRejected("phase", reasonFragment: "all-gather step 1") { self.copy($0) { $0[6] = FramePhase.allGather.rawValue } }
    }

    func testFrameRejectsCodecOutsideTheMode() throws {
        try assertRejected("codec not allowed", reasonFragment: "codec f16-shuffled-zstd, expected one of f32", codecs: [.f32]) { $0 }
        try assertRejected("unknown codec", reasonFragment: "unknown codec 77") { self.copy($0) { $0[5] = 77 } }
    }

    func testFrameRejectsWrongElementCount() throws {
        try assertRejected("element count", reasonFragment: "contains 4096 elements, expected 4097", elementCount: 4097) { $0 }
    }

    func testFrameRejectsTruncatedPayload() throws {
        try assertRejected("truncated", reasonFragment: "(truncated)") { self.copy($0, count: $0.count - 5) }
    }

    func testFrameRejectsOverlongPayload() throws {
        try assertRejected("overlong message", reasonFragment: "(overlong)") { self.copy($0, count: $0.count + 3) }
        try assertRejected("overlong zstd payload", reasonFragment: "expected 1...") { message in
            let padded = ZstdContext.compressBound(2 * 4096) + 10
            return self.copy(message, count: FrameHeader.byteCount + padded, edit: self.setUInt32(UInt32(padded), at: 24))
        }
    }

    func testFrameRejectsChecksumMismatch() throws {
        try assertRejected("checksum", reasonFragment: "checksum") { self.copy($0) { $0[FrameHeader.byteCount + 10] ^= 0x01 } }
    }

    func testFrameRejectsCorruptZstdWithValidChecksum() throws {
        try assertRejected("zstd", reasonFragment: "zstd decompression failed") { message in
            self.copy(message) { bytes in
                // Break the zstd magic number, then make the checksum match the damaged payload.
                bytes[FrameHeader.byteCount] ^= 0xFF
                let payload = UnsafeRawBufferPointer(rebasing: bytes[FrameHeader.byteCount...])
                bytes.storeBytes(of: XXHash64.hash(payload).littleEndian, toByteOffset: 32, as: UInt64.self)
            }
        }
    }

    func testFrameRejectsZstdOfWrongDecompressedSize() throws {
        // A valid zstd frame of 3000 values declared as a frame of 4000 values.
        let frameCodec = try FrameCodec(rank: 3, zstdLevel: 1)
        let values = makeValues(3000, seed: 6)
        let message = try values.withUnsafeBufferPointer {
            try frameCodec.encode($0, codec: .f16ShuffledZstd, phase: .reduceScatter, bucket: 7, chunk: 2, step: 1).message
        }
        message.withUnsafeMutableBytes { $0.storeBytes(of: UInt32(4000).littleEndian, toByteOffset: 20, as: UInt32.self) }
        XCTAssertThrowsError(try decode(message, expectation(count: 4000, codecs: [.f16ShuffledZstd]))) { error in
            XCTAssertTrue("\(error)".contains("decompressed to 6000 bytes, expected 8000"), "\(error)")
        }
    }

    func testHeaderWriteReadRoundTrip() {
        let header = FrameHeader(
            codec: .f16ShuffledZstd, phase: .allGather, bucket: 0xFFFF_FFFE, chunk: 3, step: 2,
            elementCount: 123_456, payloadByteCount: 99_999, payloadChecksum: 0x0123_4567_89AB_CDEF
        )
        var bytes = [UInt8](repeating: 0, count: FrameHeader.byteCount)
        bytes.withUnsafeMutableBytes { header.write(to: $0) }
        XCTAssertEqual(Array(bytes[0..<4]), Array("PGRF".utf8))
        let read = bytes.withUnsafeBytes { FrameHeader(reading: $0) }
        XCTAssertEqual(read, header)
    }
}
