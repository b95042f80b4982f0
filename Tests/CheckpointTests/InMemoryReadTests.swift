import Foundation
import XCTest
@testable import Checkpoint

/// `NPZReader(bytes:)` and `readNPY(bytes:)` read the same arrays as the path-based entry
/// points, and name the caller's label in errors.
final class InMemoryReadTests: XCTestCase {
    private var directory: TemporaryDirectory!

    override func setUpWithError() throws {
        directory = try TemporaryDirectory()
    }

    override func tearDown() {
        directory.remove()
    }

    private func writeArchive(compression: NPZCompression) throws -> String {
        let path = directory.path("a.npz")
        let writer = try NPZWriter(path: path, compression: compression)
        try writer.write(key: "img/w", floats: [1.5, -2, 3.25, 4, 5, 6], shape: [2, 3], as: .f32)
        try writer.write(key: "llm/ids", int32s: [7, -8, 9], shape: [3])
        try writer.finish()
        return path
    }

    func testArchiveFromBytesMatchesFile() throws {
        for compression in [NPZCompression.stored, .deflated] {
            let path = try writeArchive(compression: compression)
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            let fromFile = try NPZReader(path: path)
            let fromBytes = try bytes.withUnsafeBytes { try NPZReader(bytes: $0, name: "upload.npz") }

            XCTAssertEqual(fromBytes.path, "upload.npz")
            XCTAssertEqual(fromBytes.keys, ["img/w", "llm/ids"])
            XCTAssertEqual(fromBytes.members, fromFile.members)
            XCTAssertEqual(try fromBytes.array("img/w").floats(), [1.5, -2, 3.25, 4, 5, 6])
            XCTAssertEqual(try fromBytes.array("img/w").shape, [2, 3])
            XCTAssertEqual(try fromBytes.array("llm/ids").int32s(), [7, -8, 9])
            XCTAssertEqual(try fromBytes.header("llm/ids").shape, [3])
            XCTAssertNoThrow(try fromBytes.verifyChecksum("img/w"))
        }
    }

    func testArchiveOutlivesCallerBuffer() throws {
        let path = try writeArchive(compression: .stored)
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let reader = try bytes.withUnsafeBytes { try NPZReader(bytes: $0) }

        // Overwriting the caller's buffer must not change what the reader returns.
        for index in bytes.indices { bytes[index] = 0 }
        XCTAssertEqual(try reader.array("img/w").floats(), [1.5, -2, 3.25, 4, 5, 6])
        XCTAssertEqual(reader.path, "<memory>")
    }

    func testArchiveErrorNamesLabel() {
        let garbage = [UInt8](repeating: 0x41, count: 100)
        XCTAssertThrowsError(try garbage.withUnsafeBytes { try NPZReader(bytes: $0, name: "upload.npz") }) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("upload.npz"), message)
            XCTAssertTrue(message.contains("end of central directory"), message)
        }
    }

    func testEmptyArchiveIsTruncated() {
        XCTAssertThrowsError(try [UInt8]().withUnsafeBytes { try NPZReader(bytes: $0) }) { error in
            guard case let .truncated(file, _, structure, _, found)? = error as? CheckpointError else {
                return XCTFail("expected truncated, got \(error)")
            }
            XCTAssertEqual(file, "<memory>")
            XCTAssertEqual(structure, "ZIP end of central directory record")
            XCTAssertEqual(found, 0)
        }
    }

    func testNPYFromBytes() throws {
        let npy = float32NPY(shape: [2, 2])
        let array = try npy.withUnsafeBytes { try readNPY(bytes: $0, name: "dir/bias.npy") }
        XCTAssertEqual(array.key, "bias")
        XCTAssertEqual(array.file, "dir/bias.npy")
        XCTAssertEqual(array.shape, [2, 2])
        XCTAssertEqual(array.floats(), [0, 1, 2, 3])
    }

    func testNPYFromBytesRejectsTruncatedData() {
        let npy = Array(float32NPY(shape: [2, 2]).dropLast(3))
        XCTAssertThrowsError(try npy.withUnsafeBytes { try readNPY(bytes: $0, name: "bias.npy") }) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("bias.npy"), message)
            XCTAssertTrue(message.contains("16 bytes for shape (2, 2)"), message)
            XCTAssertTrue(message.contains("found 13 bytes"), message)
        }
    }
}
