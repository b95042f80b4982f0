// Fuzz target `frame`: the gradient frame decoder of the ring all-reduce, fed a frame as a
// peer would send it.
//
// Input layout: one control byte, then the frame (40-byte header and payload).
// - Bit 0 of the control byte rewrites the header's XXH64 with the payload's real checksum.
//   Mutated payloads then reach the decoders instead of failing the checksum.
// - Bit 1 decodes with an addend, as the reduce-scatter phase does.
// The receiver's expectation copies the header's bucket, chunk, step, phase and element
// count, so the validation passes whenever the frame is self-consistent, as a frame from a
// confused or hostile peer can be.
import Foundation
@testable import Comm

/// Largest element count the target decodes; frames above it are checked against this count.
private let maxElements = 1 << 16

nonisolated(unsafe) private let codec = try! FrameCodec(rank: 0, zstdLevel: 1)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrame(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let control = data[0]
    let message = MessageBuffer(Array(UnsafeBufferPointer(start: data + 1, count: size - 1)))

    if control & 1 != 0 && message.count >= FrameHeader.byteCount {
        message.withUnsafeMutableBytes { bytes in
            let payload = UnsafeRawBufferPointer(rebasing: bytes[FrameHeader.byteCount...])
            bytes.storeBytes(of: XXHash64.hash(payload).littleEndian, toByteOffset: 32, as: UInt64.self)
        }
    }

    let expected = expectation(for: message)
    let addend = [Float](repeating: 0.5, count: expected.elementCount)
    let useAddend = control & 2 != 0

    // Decode twice into outputs prefilled with two different NaN patterns. A decoder that left
    // a value unwritten would show the prefill, so the two results would differ.
    let first: [Float]
    let second: [Float]
    do {
        first = try decode(message, expected, prefill: Float(bitPattern: 0x7FC0_1234), addend: useAddend ? addend : nil)
        second = try decode(message, expected, prefill: Float(bitPattern: 0x7FC0_5678), addend: useAddend ? addend : nil)
    } catch {
        checkRejection(error, expectedType: CommError.self, label: "rank \(expected.peer)")
        return 0
    }
    for index in first.indices where first[index].bitPattern != second[index].bitPattern {
        fatalError("value \(index) of \(first.count) depends on the output's previous contents: the decoder did not write it")
    }
    keep(first.count)
    return 0
}

private func decode(_ message: MessageBuffer, _ expected: FrameExpectation, prefill: Float, addend: [Float]?) throws -> [Float] {
    var output = [Float](repeating: prefill, count: expected.elementCount)
    try output.withUnsafeMutableBufferPointer { destination in
        if let addend {
            try addend.withUnsafeBufferPointer { addend in
                try codec.decode(message, expecting: expected, into: destination, adding: addend)
            }
        } else {
            try codec.decode(message, expecting: expected, into: destination, adding: nil)
        }
    }
    return output
}

/// Builds what a receiver expects from the header's own fields, where the header is readable.
private func expectation(for message: MessageBuffer) -> FrameExpectation {
    var expected = FrameExpectation(
        peer: 3, bucket: 0, phase: .reduceScatter, step: 0, chunk: 0, elementCount: 0,
        allowedCodecs: [.f32, .f16Shuffled, .f16ShuffledZstd])
    guard message.count >= FrameHeader.byteCount else { return expected }

    let header = message.withUnsafeBytes { FrameHeader(reading: $0) }
    expected.bucket = header.bucket
    expected.chunk = header.chunk
    expected.step = header.step
    expected.phase = FramePhase(rawValue: header.phase) ?? .reduceScatter
    expected.elementCount = min(Int(header.elementCount), maxElements)
    return expected
}
