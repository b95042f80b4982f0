import Foundation
import XCTest
@testable import Checkpoint

/// Malformed or hostile ZIP structure: truncation, lying directories, overlaps, duplicates,
/// deflate bombs and limits.
final class HostileArchiveTests: XCTestCase {
    private var directory: TemporaryDirectory!

    override func setUpWithError() throws {
        directory = try TemporaryDirectory()
    }

    override func tearDown() {
        directory.remove()
    }

    private func save(_ bytes: [UInt8], as name: String = "bad.npz") throws -> String {
        let path = directory.path(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Asserts that opening `path` (and reading `key`, if given) fails with a message containing
    /// the path and every fragment.
    private func assertRejected(
        _ path: String, key: String? = nil, limits: CheckpointLimits = .default, _ fragments: [String],
        file: StaticString = #filePath, line: UInt = #line
    ) {
        do {
            let reader = try NPZReader(path: path, limits: limits)
            if let key {
                _ = try reader.array(key)
            }
            XCTFail("expected an error", file: file, line: line)
        } catch {
            let message = "\(error)"
            XCTAssertTrue(error is CheckpointError, "not a CheckpointError: \(message)", file: file, line: line)
            XCTAssertTrue(message.contains(path), "message does not name the file: \(message)", file: file, line: line)
            for fragment in fragments {
                XCTAssertTrue(message.contains(fragment), "missing '\(fragment)' in: \(message)", file: file, line: line)
            }
        }
    }

    private func twoMembers() -> HostileArchive {
        HostileArchive(members: [.stored("a.npy", float32NPY(shape: [2, 3])), .stored("b.npy", float32NPY(shape: [4]))])
    }

    // MARK: - Truncation and end records

    func testTinyFile() throws {
        let path = try save(Array("PK\u{5}\u{6}".utf8))
        assertRejected(path, ["truncated ZIP end of central directory record", "expected 22 bytes, found 4"])
    }

    func testTruncatedArchive() throws {
        let bytes = twoMembers().build().bytes
        let path = try save(Array(bytes.prefix(bytes.count / 2)))
        assertRejected(path, ["invalid ZIP end of central directory record", "expected signature PK\\x05\\x06", "found none"])
    }

    func testEveryTruncationIsRejected() throws {
        let bytes = twoMembers().build().bytes
        for length in 0..<bytes.count {
            let path = try save(Array(bytes.prefix(length)), as: "cut-\(length).npz")
            XCTAssertThrowsError(try NPZReader(path: path), "archive cut to \(length) bytes was accepted")
        }
    }

    func testEveryFlippedByteFailsCleanly() throws {
        // Each damaged copy must either read or throw CheckpointError, never crash.
        let original = twoMembers().build().bytes
        var accepted = 0
        for position in 0..<original.count {
            var bytes = original
            bytes[position] ^= 0xA5
            let path = try save(bytes, as: "flip.npz")
            do {
                let reader = try NPZReader(path: path)
                for key in reader.keys {
                    _ = try reader.array(key).floats()
                }
                accepted += 1
            } catch is CheckpointError {
                continue
            }
        }
        // Only bytes that no check covers (data values, dates, attributes) may flip unnoticed.
        XCTAssertLessThan(accepted, original.count / 2)
    }

    func testNPYFileGivenToNPZReader() throws {
        let path = try save(float32NPY(shape: [2, 3]), as: "weights.npy")
        assertRejected(path, ["end of central directory record", "found none; the file starts with '\\x93NUMPY", "use readNPY"])
    }

    func testDirectoryOffsetPastEndOfFile() throws {
        let built = twoMembers().build()
        var bytes = built.bytes
        bytes.patchU32(at: built.endRecordOffset + 16, 1_000_000)
        assertRejected(
            try save(bytes),
            ["invalid ZIP central directory location", "expected offset + size <= \(built.endRecordOffset)", "found offset 1000000"])
    }

    func testEntryCountLargerThanDirectory() throws {
        let built = twoMembers().build()
        var bytes = built.bytes
        bytes.patchU16(at: built.endRecordOffset + 8, 900)
        bytes.patchU16(at: built.endRecordOffset + 10, 900)
        assertRejected(try save(bytes), ["invalid ZIP central directory size", "at least 46 bytes per entry (900 entries)"])
    }

    func testMultiDiskArchive() throws {
        let built = twoMembers().build()
        var bytes = built.bytes
        bytes.patchU16(at: built.endRecordOffset + 4, 1)
        assertRejected(try save(bytes), ["invalid ZIP disk numbers", "expected a single-disk archive", "found disk 1"])
    }

    func testTooManyMembers() throws {
        var archive = twoMembers()
        archive.members.append(.stored("c.npy", float32NPY(shape: [1])))
        assertRejected(
            try save(archive.build().bytes), limits: CheckpointLimits(maxMembers: 2),
            ["3 exceeds CheckpointLimits.maxMembers = 2"])
    }

    // MARK: - Central directory entries that lie

    func testLocalHeaderOffsetPastDirectory() throws {
        let built = twoMembers().build()
        var bytes = built.bytes
        bytes.patchU32(at: built.centralEntryOffsets[1] + 42, 0x7FFF_0000)
        assertRejected(
            try save(bytes), ["member 'b.npy'", "invalid ZIP local header offset", "found \(0x7FFF_0000)"])
    }

    func testLocalHeaderPointsAtWrongPlace() throws {
        let built = twoMembers().build()
        var bytes = built.bytes
        bytes.patchU32(at: built.centralEntryOffsets[1] + 42, 7)
        assertRejected(
            try save(bytes), ["member 'b.npy'", "invalid ZIP local header signature", "expected PK\\x03\\x04 at offset 7"])
    }

    func testLocalHeaderNameMismatch() throws {
        let built = twoMembers().build()
        var bytes = built.bytes
        bytes[built.localHeaderOffsets[1] + 30] = UInt8(ascii: "x")
        assertRejected(try save(bytes), ["member 'b.npy'", "invalid ZIP local header name", "expected 'b.npy'", "found 'x.npy'"])
    }

    func testLocalHeaderSizeMismatch() throws {
        let built = twoMembers().build()
        var bytes = built.bytes
        bytes.patchU32(at: built.localHeaderOffsets[0] + 22, 3)
        assertRejected(try save(bytes), ["member 'a.npy'", "invalid ZIP local header sizes", "found size 3"])
    }

    func testLocalHeaderCRCMismatch() throws {
        let built = twoMembers().build()
        var bytes = built.bytes
        bytes.patchU32(at: built.localHeaderOffsets[0] + 14, 12345)
        assertRejected(try save(bytes), ["member 'a.npy'", "invalid ZIP local header CRC-32", "found 12345"])
    }

    func testDataRunsIntoCentralDirectory() throws {
        let built = twoMembers().build()
        var bytes = built.bytes
        let size = float32NPY(shape: [4]).count + 500
        for offset in [built.centralEntryOffsets[1] + 20, built.centralEntryOffsets[1] + 24] {
            bytes.patchU32(at: offset, size)
        }
        assertRejected(
            try save(bytes), ["member 'b.npy'", "invalid ZIP data range", "expected data ending at or before the central directory"])
    }

    func testOverlappingMembers() throws {
        // Grow member a so that it covers member b; local and central sizes agree.
        let built = twoMembers().build()
        var bytes = built.bytes
        let grown = built.localHeaderOffsets[1] + 40 - (built.localHeaderOffsets[0] + 30 + 5)
        for offset in [
            built.localHeaderOffsets[0] + 18, built.localHeaderOffsets[0] + 22,
            built.centralEntryOffsets[0] + 20, built.centralEntryOffsets[0] + 24,
        ] {
            bytes.patchU32(at: offset, grown)
        }
        assertRejected(
            try save(bytes),
            ["members 'a.npy' (bytes 0..<\(built.localHeaderOffsets[1] + 40))", "'b.npy' (bytes \(built.localHeaderOffsets[1])..<", "overlap"])
    }

    func testTwoEntriesShareOneLocalHeader() throws {
        // The classic overlapping-file zip bomb: many central entries, one body.
        let built = twoMembers().build()
        var bytes = built.bytes
        bytes.patchU32(at: built.centralEntryOffsets[1] + 42, 0)
        assertRejected(try save(bytes), ["member 'b.npy'", "invalid ZIP local header name", "expected 'b.npy'", "found 'a.npy'"])
    }

    func testDuplicateKeys() throws {
        let archive = HostileArchive(members: [
            .stored("params/w.npy", float32NPY(shape: [2])), .stored("w.npy", float32NPY(shape: [3])),
        ])
        assertRejected(try save(archive.build().bytes), ["key 'w' appears more than once", "'params/w.npy', 'w.npy'"])
    }

    func testEncryptedMember() throws {
        var archive = twoMembers()
        archive.members[0].flags = 1
        assertRejected(try save(archive.build().bytes), ["member 'a.npy'", "invalid ZIP flags", "expected no encryption", "found 0x1"])
    }

    func testUnknownCompressionMethod() throws {
        var archive = twoMembers()
        archive.members[1].method = 12
        assertRejected(
            try save(archive.build().bytes), ["member 'b.npy'", "compression method", "expected 0 (stored) or 8 (deflated)", "found 12"])
    }

    func testStoredSizesDisagree() throws {
        var archive = twoMembers()
        archive.members[0].size += 4
        assertRejected(try save(archive.build().bytes), ["member 'a.npy'", "stored sizes", "compressed 152, size 156"])
    }

    func testMemberOverSizeLimit() throws {
        let path = try save(twoMembers().build().bytes)
        assertRejected(path, limits: CheckpointLimits(maxMemberBytes: 100), ["key 'a'", "152 exceeds CheckpointLimits.maxMemberBytes = 100"])
    }

    func testStoredChecksumMismatch() throws {
        var archive = twoMembers()
        archive.members[1].crc ^= 1
        let path = try save(archive.build().bytes)
        let reader = try NPZReader(path: path)
        XCTAssertEqual(try reader.array("b").floats(), [0, 1, 2, 3], "stored members are not checksummed on read")
        XCTAssertThrowsError(try reader.verifyChecksum("b")) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("\(path) key 'b': CRC-32 mismatch"), message)
        }
    }

    // MARK: - Deflated members

    func testDeflateBombStopsAtDeclaredSize() throws {
        // A valid NPY of 24 data bytes, followed by 64 MiB of zeros inside the same deflate stream.
        let npy = float32NPY(shape: [2, 3])
        var member = try HostileArchive.Member.deflated("w.npy", npy + [UInt8](repeating: 0, count: 64 << 20))
        member.size = npy.count
        member.crc = npy.withUnsafeBytes { crc32($0) }
        XCTAssertLessThan(member.data.count, 1 << 20)
        assertRejected(
            try save(HostileArchive(members: [member]).build().bytes), key: "w",
            ["key 'w'", "inflating the deflated member failed", "inflates past its declared size of \(npy.count) bytes"])
    }

    func testDeflatedMemberShorterThanDeclared() throws {
        let npy = float32NPY(shape: [2, 3])
        var member = try HostileArchive.Member.deflated("w.npy", npy)
        member.size = npy.count + 100
        assertRejected(
            try save(HostileArchive(members: [member]).build().bytes), key: "w",
            ["key 'w'", "stream ended after \(npy.count) bytes, expected the declared \(npy.count + 100)"])
    }

    func testDeflatedChecksumMismatch() throws {
        let npy = float32NPY(shape: [2, 3])
        var member = try HostileArchive.Member.deflated("w.npy", npy)
        let good = member.crc
        member.crc ^= 0x10
        let path = try save(HostileArchive(members: [member]).build().bytes)
        let expected = String(good ^ 0x10, radix: 16)
        assertRejected(path, key: "w", ["key 'w'", "CRC-32 mismatch: expected 0x", expected, "found 0x\(String(good, radix: 16))"])
    }

    func testCorruptDeflateData() throws {
        var member = try HostileArchive.Member.deflated("w.npy", float32NPY(shape: [2, 3]))
        member.data = [0xFF, 0xFF, 0xFF, 0xFF] + member.data
        assertRejected(try save(HostileArchive(members: [member]).build().bytes), key: "w", ["key 'w'", "inflating the deflated member failed"])
    }

    func testTruncatedDeflateData() throws {
        var member = try HostileArchive.Member.deflated("w.npy", float32NPY(shape: [64]))
        member.data = Array(member.data.prefix(member.data.count / 2))
        assertRejected(try save(HostileArchive(members: [member]).build().bytes), key: "w", ["key 'w'", "inflating the deflated member failed"])
    }

    func testDeflatedHeaderReadsWithoutWholeMember() throws {
        let member = try HostileArchive.Member.deflated("w.npy", float32NPY(shape: [300, 7]))
        let reader = try NPZReader(path: try save(HostileArchive(members: [member]).build().bytes))
        let header = try reader.header("w")
        XCTAssertEqual(header.shape, [300, 7])
        XCTAssertEqual(header.dtype, .float32)
    }
}
