import Foundation
import XCTest
@testable import Checkpoint

/// A member that starts past 4 GiB, so its offset exists only in ZIP64 fields. The file is
/// sparse: the gap before the member is a hole, so the test writes a few hundred bytes.
final class Zip64OffsetTests: XCTestCase {
    func testMemberPastFourGiB() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path("far.npz")

        let gap = 0x1_2000_0000  // 4.5 GiB
        let npy = float32NPY(shape: [3, 2])
        let name = Array("params/llm/final_norm/scale.npy".utf8)
        let crc = npy.withUnsafeBytes { crc32($0) }

        // Local header as numpy writes it: saturated sizes, both real sizes in the extra field.
        var local = ZipRecord()
        local.u32(ZipSignature.localHeader)
        local.u16(45)
        local.u16(0)
        local.u16(0)
        local.u16(0)
        local.u16(0x21)
        local.u32(crc)
        local.u32(0xFFFF_FFFF)
        local.u32(0xFFFF_FFFF)
        local.u16(name.count)
        local.u16(20)
        local.bytes += name
        local.u16(1)
        local.u16(16)
        local.u64(npy.count)
        local.u64(npy.count)
        local.bytes += npy

        // Central entry: only the offset is saturated, so the extra field holds only the offset.
        let directoryOffset = gap + local.bytes.count
        var tail = ZipRecord()
        tail.u32(ZipSignature.centralEntry)
        tail.u16(3 << 8 | 45)
        tail.u16(45)
        tail.u16(0)
        tail.u16(0)
        tail.u16(0)
        tail.u16(0x21)
        tail.u32(crc)
        tail.u32(UInt32(npy.count))
        tail.u32(UInt32(npy.count))
        tail.u16(name.count)
        tail.u16(12)
        tail.u16(0)
        tail.u16(0)
        tail.u16(0)
        tail.u32(0)
        tail.u32(0xFFFF_FFFF)
        tail.bytes += name
        tail.u16(1)
        tail.u16(8)
        tail.u64(gap)
        let directorySize = tail.bytes.count

        // ZIP64 end record, locator, and a saturated end record.
        let recordOffset = directoryOffset + directorySize
        tail.u32(ZipSignature.zip64EndRecord)
        tail.u64(44)
        tail.u16(3 << 8 | 45)
        tail.u16(45)
        tail.u32(0)
        tail.u32(0)
        tail.u64(1)
        tail.u64(1)
        tail.u64(directorySize)
        tail.u64(directoryOffset)
        tail.u32(ZipSignature.zip64Locator)
        tail.u32(0)
        tail.u64(recordOffset)
        tail.u32(1)
        tail.u32(ZipSignature.endRecord)
        tail.u16(0)
        tail.u16(0)
        tail.u16(1)
        tail.u16(1)
        tail.u32(UInt32(directorySize))
        tail.u32(0xFFFF_FFFF)
        tail.u16(0)

        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: nil))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seek(toOffset: UInt64(gap))
        try handle.write(contentsOf: Data(local.bytes + tail.bytes))
        try handle.close()

        let reader = try NPZReader(path: path)
        XCTAssertEqual(reader.keys, ["llm/final_norm/scale"])
        let member = try reader.member("llm/final_norm/scale")
        XCTAssertEqual(member.localHeaderOffset, gap)
        XCTAssertEqual(member.dataOffset, gap + 30 + name.count + 20)
        let array = try reader.array("llm/final_norm/scale")
        XCTAssertEqual(array.shape, [3, 2])
        XCTAssertEqual(array.floats(), [0, 1, 2, 3, 4, 5])
        XCTAssertNoThrow(try reader.verifyChecksum("llm/final_norm/scale"))

        // Python's zipfile must read the hand-built layout the same way.
        let script = """
            import sys, zipfile
            with zipfile.ZipFile(sys.argv[1]) as z:
                info = z.infolist()[0]
                print(info.filename, info.header_offset, len(z.read(info.filename)))
            """
        let result = try Python.run(script, arguments: [path])
        if result.status == 127 {
            throw XCTSkip("python3 is not available (\(result.output))")
        }
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertEqual(
            result.output.trimmingCharacters(in: .whitespacesAndNewlines),
            "params/llm/final_norm/scale.npy \(gap) \(npy.count)")
    }
}
