import Foundation
import XCTest
import TensorCore
@testable import Checkpoint

/// NPZWriter round trips through NPZReader, streaming, and atomic replacement.
final class WriterTests: XCTestCase {
    private var directory: TemporaryDirectory!

    override func setUpWithError() throws {
        directory = try TemporaryDirectory()
    }

    override func tearDown() {
        directory.remove()
    }

    /// Values that are exact in f16 and bf16, so every dtype round trips exactly.
    private let values: [Float] = (0..<24).map { Float($0 - 12) * 0.25 }

    private func writeSample(to path: String, compression: NPZCompression, forceZip64: Bool) throws {
        let writer = try NPZWriter(path: path, compression: compression, forceZip64: forceZip64)
        try writer.write(key: "params/img/head/kernel", floats: values, shape: [2, 3, 4], as: .f32)
        try writer.write(key: "half", floats: values, shape: [24], as: .f16)
        try writer.write(key: "brain", floats: values, shape: [4, 6], as: .bf16)
        try writer.write(key: "tokens", int32s: [2, 108, -7, Int32.max], shape: [2, 2])
        try writer.write(key: "loss", floats: [1.5], shape: [], as: .f32)
        try writer.write(key: "empty", floats: [], shape: [0, 3], as: .f32)
        try writer.finish()
    }

    private func checkSample(at path: String) throws {
        let reader = try NPZReader(path: path)
        XCTAssertEqual(reader.keys, ["brain", "empty", "half", "img/head/kernel", "loss", "tokens"])
        XCTAssertEqual(try reader.member("img/head/kernel").name, "params/img/head/kernel.npy")

        let kernel = try reader.array("img/head/kernel")
        XCTAssertEqual(kernel.shape, [2, 3, 4])
        XCTAssertEqual(kernel.dtype, .f32)
        XCTAssertEqual(kernel.floats(), values)

        let half = try reader.array("half")
        XCTAssertEqual(half.elementType, .float16)
        XCTAssertEqual(half.floats(), values)

        let brain = try reader.array("brain")
        XCTAssertEqual(brain.elementType, .bfloat16)
        XCTAssertEqual(brain.shape, [4, 6])
        XCTAssertEqual(brain.floats(), values)

        XCTAssertEqual(try reader.array("tokens").int32s(), [2, 108, -7, Int32.max])
        XCTAssertEqual(try reader.array("loss").shape, [])
        XCTAssertEqual(try reader.array("loss").floats(), [1.5])
        XCTAssertEqual(try reader.array("empty").shape, [0, 3])
        XCTAssertEqual(try reader.array("empty").count, 0)

        for key in reader.keys {
            XCTAssertNoThrow(try reader.verifyChecksum(key), key)
        }
    }

    func testStoredRoundTrip() throws {
        let path = directory.path("stored.npz")
        try writeSample(to: path, compression: .stored, forceZip64: false)
        try checkSample(at: path)
    }

    func testDeflatedRoundTrip() throws {
        let path = directory.path("deflated.npz")
        try writeSample(to: path, compression: .deflated, forceZip64: false)
        let reader = try NPZReader(path: path)
        XCTAssertTrue(reader.members.allSatisfy { $0.compression == .deflated })
        try checkSample(at: path)
    }

    func testForcedZip64RoundTrip() throws {
        let path = directory.path("zip64.npz")
        try writeSample(to: path, compression: .stored, forceZip64: true)
        try checkSample(at: path)

        // The end of central directory record is saturated and a ZIP64 locator precedes it.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let end = bytes.count - 22
        XCTAssertEqual(Array(bytes[end..<end + 4]), [0x50, 0x4B, 0x05, 0x06])
        XCTAssertEqual(Array(bytes[end + 16..<end + 20]), [0xFF, 0xFF, 0xFF, 0xFF])
        XCTAssertEqual(Array(bytes[end - 20..<end - 16]), [0x50, 0x4B, 0x06, 0x07])
    }

    func testStoredDataIsAligned() throws {
        let path = directory.path("aligned.npz")
        try writeSample(to: path, compression: .stored, forceZip64: false)
        let reader = try NPZReader(path: path)
        for member in reader.members {
            let header = try reader.header(member.key)
            XCTAssertEqual((member.dataOffset + header.headerByteCount) % 64, 0, "data of '\(member.key)' is not 64-byte aligned")
            XCTAssertTrue(try reader.array(member.key).isAligned, member.key)
        }
    }

    func testStreamingAppendsMatchWholeWrite() throws {
        let path = directory.path("streamed.npz")
        let rows = 300
        let columns = 70
        let all = (0..<(rows * columns)).map { Float($0 % 1000) / 8 }

        let writer = try NPZWriter(path: path, compression: .deflated(level: 1))
        try writer.beginMember(key: "llm/embedder/input_embedding", elementType: .float16, shape: [rows, columns])
        try all.withUnsafeBufferPointer { buffer in
            var start = 0
            for size in [1, 999, 5000, 15000] {
                try writer.append(floats: UnsafeBufferPointer(rebasing: buffer[start..<start + size]), as: .f16)
                start += size
            }
        }
        try writer.endMember()
        try writer.finish()

        let array = try NPZReader(path: path).array("llm/embedder/input_embedding")
        XCTAssertEqual(array.shape, [rows, columns])
        XCTAssertEqual(array.floats(), all)
    }

    func testShortMemberIsRejectedAndNothingIsLeft() throws {
        let path = directory.path("short.npz")
        let writer = try NPZWriter(path: path)
        try writer.beginMember(key: "x", elementType: .float32, shape: [4])
        try [Float(1), 2].withUnsafeBytes { try writer.append($0) }
        XCTAssertThrowsError(try writer.endMember()) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("short.npz key 'x'"), message)
            XCTAssertTrue(message.contains("expected 16 data bytes, found 8"), message)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.url.path), [])
        XCTAssertThrowsError(try writer.finish())
    }

    func testOverlongAppendIsRejected() throws {
        let writer = try NPZWriter(path: directory.path("long.npz"))
        try writer.beginMember(key: "x", elementType: .int32, shape: [1])
        XCTAssertThrowsError(try [Int32(1), 2].withUnsafeBytes { try writer.append($0) }) { error in
            XCTAssertTrue("\(error)".contains("expected 4 data bytes in total, found 8 after this append"), "\(error)")
        }
    }

    func testDuplicateKeyAfterPrefixIsRejected() throws {
        let writer = try NPZWriter(path: directory.path("dup.npz"))
        try writer.write(key: "params/a/b", floats: [1], shape: [1], as: .f32)
        XCTAssertThrowsError(try writer.write(key: "a/b", floats: [1], shape: [1], as: .f32)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("key 'a/b' appears more than once"), message)
            XCTAssertTrue(message.contains("'params/a/b.npy', 'a/b.npy'"), message)
        }
    }

    func testFailedWriteKeepsPreviousFile() throws {
        let path = directory.path("params.npz")
        try writeSample(to: path, compression: .stored, forceZip64: false)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))

        let writer = try NPZWriter(path: path)
        try writer.write(key: "new", floats: [1, 2], shape: [2], as: .f32)
        XCTAssertThrowsError(try writer.write(key: "bad", floats: [1, 2, 3], shape: [2], as: .f32))

        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.url.path), ["params.npz"])
    }

    func testAbandonedWriterRemovesTemporaryFile() throws {
        let path = directory.path("abandoned.npz")
        do {
            let writer = try NPZWriter(path: path)
            try writer.write(key: "x", floats: [1], shape: [1], as: .f32)
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(path).tmp-\(getpid())"))
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.url.path), [])
    }

    func testNPYFileRoundTrip() throws {
        let path = directory.path("image.npy")
        let array = try NPYArray(key: "image", floats: values, shape: [2, 12], as: .bf16)
        try writeNPY(path: path, array: array)
        let read = try readNPY(path: path)
        XCTAssertEqual(read.key, "image")
        XCTAssertEqual(read.elementType, .bfloat16)
        XCTAssertEqual(read.shape, [2, 12])
        XCTAssertEqual(read.floats(), values)
        XCTAssertTrue(read.isAligned)
    }

    func testAtomicFileReplacesExistingFile() throws {
        let path = directory.path("state.json")
        try writeFileAtomically(path: path, bytes: Array("old".utf8))
        try writeFileAtomically(path: path, bytes: Array("new".utf8))
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "new")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.url.path), ["state.json"])
    }
}
