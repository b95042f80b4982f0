import Foundation
@testable import Checkpoint

/// Builds ZIP archives byte by byte, so tests can write members and directories that lie.
///
/// Unlike NPZWriter, nothing is checked: names may repeat, sizes and CRCs are whatever the test
/// sets, and the result uses plain 32-bit fields (no ZIP64).
struct HostileArchive {
    struct Member {
        var name: String
        /// The bytes placed in the archive (compressed for method 8).
        var data: [UInt8]
        /// Uncompressed size written to both headers.
        var size: Int
        var crc: UInt32
        var method: Int = 0
        var flags: Int = 0

        /// Makes a stored member that contains `npy`.
        static func stored(_ name: String, _ npy: [UInt8]) -> Member {
            Member(name: name, data: npy, size: npy.count, crc: npy.withUnsafeBytes { crc32($0) })
        }

        /// Makes a deflated member that contains `npy`.
        static func deflated(_ name: String, _ npy: [UInt8]) throws -> Member {
            Member(
                name: name, data: try rawDeflate(npy), size: npy.count, crc: npy.withUnsafeBytes { crc32($0) },
                method: 8)
        }
    }

    var members: [Member] = []

    /// The serialised archive and where its parts start.
    struct Built {
        var bytes: [UInt8]
        var localHeaderOffsets: [Int]
        var centralEntryOffsets: [Int]
        var endRecordOffset: Int
    }

    func build() -> Built {
        var out = ZipRecord()
        var locals: [Int] = []
        for member in members {
            locals.append(out.bytes.count)
            let name = Array(member.name.utf8)
            out.u32(ZipSignature.localHeader)
            out.u16(20)
            out.u16(member.flags)
            out.u16(member.method)
            out.u16(0)
            out.u16(0x21)
            out.u32(member.crc)
            out.u32(UInt32(member.data.count))
            out.u32(UInt32(truncatingIfNeeded: member.size))
            out.u16(name.count)
            out.u16(0)
            out.bytes += name
            out.bytes += member.data
        }

        let directoryOffset = out.bytes.count
        var centrals: [Int] = []
        for (member, offset) in zip(members, locals) {
            centrals.append(out.bytes.count)
            let name = Array(member.name.utf8)
            out.u32(ZipSignature.centralEntry)
            out.u16(20)
            out.u16(20)
            out.u16(member.flags)
            out.u16(member.method)
            out.u16(0)
            out.u16(0x21)
            out.u32(member.crc)
            out.u32(UInt32(member.data.count))
            out.u32(UInt32(truncatingIfNeeded: member.size))
            out.u16(name.count)
            out.u16(0)
            out.u16(0)
            out.u16(0)
            out.u16(0)
            out.u32(0)
            out.u32(UInt32(offset))
            out.bytes += name
        }

        let endOffset = out.bytes.count
        out.u32(ZipSignature.endRecord)
        out.u16(0)
        out.u16(0)
        out.u16(members.count)
        out.u16(members.count)
        out.u32(UInt32(endOffset - directoryOffset))
        out.u32(UInt32(directoryOffset))
        out.u16(0)
        return Built(
            bytes: out.bytes, localHeaderOffsets: locals, centralEntryOffsets: centrals, endRecordOffset: endOffset)
    }
}

/// Encodes an NPY file from header dict text (padded as numpy pads it) and data bytes.
func npyBytes(dict: String, data: [UInt8], major: UInt8 = 1) -> [UInt8] {
    var text = Array(dict.utf8)
    let prefix = major == 1 ? 10 : 12
    while (prefix + text.count + 1) % 64 != 0 {
        text.append(0x20)
    }
    text.append(0x0A)
    var bytes = NPYHeader.magic + [major, 0]
    let lengthBytes = major == 1 ? 2 : 4
    for i in 0..<lengthBytes {
        bytes.append(UInt8(truncatingIfNeeded: text.count >> (8 * i)))
    }
    return bytes + text + data
}

/// Encodes a valid float32 NPY file of `shape` holding the values 0, 1, 2, ...
func float32NPY(shape: [Int]) -> [UInt8] {
    let count = shape.reduce(1, *)
    let values = (0..<count).map { Float($0) }
    let data = values.withUnsafeBytes { Array($0) }
    return npyBytes(dict: "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText(shape)), }", data: data)
}

/// Compresses `bytes` as a raw deflate stream (ZIP method 8).
func rawDeflate(_ bytes: [UInt8]) throws -> [UInt8] {
    var output: [UInt8] = []
    let stream = try DeflateStream(level: 6, file: "<test>", key: "<test>")
    try bytes.withUnsafeBytes { source in
        try stream.compress(source, finish: true) { output += $0 }
    }
    return output
}

/// Little-endian field overwrites in a built archive.
extension Array where Element == UInt8 {
    mutating func patchU16(at offset: Int, _ value: Int) {
        for i in 0..<2 { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }

    mutating func patchU32(at offset: Int, _ value: Int) {
        for i in 0..<4 { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }
}
