/// Reading the ZIP central directory of an NPZ archive (PKWARE APPNOTE 6.3, single-disk
/// archives, with ZIP64 extensions).
///
/// Layout, in file order:
///
/// 1. per member: a local file header (signature `PK\x03\x04`, 30 bytes + name + extra
///    field), then the member's stored or deflated bytes;
/// 2. the central directory: one entry per member (`PK\x01\x02`, 46 bytes + name + extra +
///    comment) with the authoritative sizes, CRC and local header offset;
/// 3. with ZIP64: the ZIP64 end of central directory record (`PK\x06\x06`) and its locator
///    (`PK\x06\x07`);
/// 4. the end of central directory record (`PK\x05\x06`, 22 bytes + comment).
///
/// A size or offset that does not fit in 32 bits is written as 0xFFFFFFFF, and the real value
/// sits in the ZIP64 extra field (tag 0x0001). numpy writes every local header this way.
/// Sizes and offsets are read from the central directory. The local header is used only to
/// find where the data starts (its name and extra lengths differ from the central ones) and is
/// checked against the central entry.

/// Compression method of a member.
public enum NPZCompression: Sendable, Equatable {
    /// Method 0: the bytes are stored as they are, and can be memory-mapped.
    case stored
    /// Method 8: raw deflate at the given zlib level (1 fastest ... 9 smallest).
    case deflated(level: Int)

    /// Deflate at zlib's default level 6.
    public static let deflated = NPZCompression.deflated(level: 6)
}

/// One member of an NPZ archive, as described by its central directory entry.
public struct NPZMember: Sendable, Equatable {
    /// The member's file name in the archive, e.g. `params/img/embedding/kernel.npy`.
    public let name: String
    /// The key: the name without `.npy` and without a leading `params/`.
    public let key: String
    public let compression: NPZCompression
    /// Size of the member's bytes in the archive.
    public let compressedSize: Int
    /// Size of the NPY file in the member, uncompressed.
    public let size: Int
    public let crc32: UInt32
    /// Offset of the local file header in the archive.
    public let localHeaderOffset: Int
    /// Offset of the member's first (compressed) byte in the archive.
    public let dataOffset: Int
}

/// Maps a member name to its key: drops the `.npy` suffix, then a leading `params/`.
///
/// Released PaliGemma checkpoints prefix every name with `params/`; files written by
/// big_vision's colab do not. Both spellings resolve to the same key.
public func normalizedKey(_ name: String) -> String {
    var key = Substring(name)
    if key.hasSuffix(".npy") {
        key = key.dropLast(4)
    }
    if key.hasPrefix("params/") {
        key = key.dropFirst(7)
    }
    return String(key)
}

enum ZipSignature {
    static let localHeader: UInt32 = 0x0403_4B50
    static let centralEntry: UInt32 = 0x0201_4B50
    static let zip64EndRecord: UInt32 = 0x0606_4B50
    static let zip64Locator: UInt32 = 0x0706_4B50
    static let endRecord: UInt32 = 0x0605_4B50
}

/// Little-endian loads from a byte buffer. Callers check bounds first.
extension UnsafeRawBufferPointer {
    func u16(_ offset: Int) -> Int {
        Int(UInt16(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }

    func u32(_ offset: Int) -> Int {
        Int(UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
    }

    /// Returns nil when the value does not fit in Int.
    func u64(_ offset: Int) -> Int? {
        Int(exactly: UInt64(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
    }
}

/// Parses and cross-checks the central directory of the archive in `bytes`.
struct ZipDirectory {
    let file: String
    let bytes: UnsafeRawBufferPointer
    let limits: CheckpointLimits

    /// The end of central directory values, with the ZIP64 ones substituted where present.
    private struct End {
        var entryCount: Int
        var directoryOffset: Int
        var directorySize: Int
        /// Offset of the first record after the central directory.
        var recordsStart: Int
    }

    private func invalid(_ member: String?, _ field: String, expected: String, found: String) -> CheckpointError {
        .invalidArchive(file: file, member: member, field: field, expected: expected, found: found)
    }

    /// Returns every member, in central directory order, after checking that each one lies
    /// inside the file, agrees with its local header, and overlaps no other member.
    func readMembers() throws -> [NPZMember] {
        let end = try readEnd()
        var members: [NPZMember] = []
        members.reserveCapacity(end.entryCount)

        var position = end.directoryOffset
        let directoryEnd = end.directoryOffset + end.directorySize
        for index in 0..<end.entryCount {
            let (member, next) = try readCentralEntry(at: position, index: index, directoryEnd: directoryEnd)
            members.append(try checkLocalHeader(of: member, directoryOffset: end.directoryOffset))
            position = next
        }

        try checkOverlaps(members)
        try checkDuplicateKeys(members)
        return members
    }

    // MARK: - End of central directory

    private func readEnd() throws -> End {
        let size = bytes.count
        guard size >= 22 else {
            throw CheckpointError.truncated(
                file: file, key: nil, structure: "ZIP end of central directory record", expectedBytes: 22,
                foundBytes: size)
        }

        // The record is the last 22 bytes plus a comment of at most 65,535 bytes. Scan backwards
        // for a signature whose comment length reaches exactly the end of the file.
        var endOffset: Int?
        var candidate = size - 22
        while candidate >= max(0, size - 22 - 0xFFFF) {
            if bytes.u32(candidate) == Int(ZipSignature.endRecord), candidate + 22 + bytes.u16(candidate + 20) == size {
                endOffset = candidate
                break
            }
            candidate -= 1
        }
        guard let endOffset else {
            let start = Array(bytes.prefix(8))
            let guess = start.starts(with: NPYHeader.magic) ? " (this looks like a single .npy file; use readNPY)" : ""
            throw invalid(
                nil, "end of central directory record",
                expected: "signature PK\\x05\\x06 in the last 65,557 bytes",
                found: "none; the file starts with \(escaped(start))\(guess)")
        }

        var end = End(
            entryCount: bytes.u16(endOffset + 10), directoryOffset: bytes.u32(endOffset + 16),
            directorySize: bytes.u32(endOffset + 12), recordsStart: endOffset)
        let disk = bytes.u16(endOffset + 4)
        let directoryDisk = bytes.u16(endOffset + 6)
        let entriesOnDisk = bytes.u16(endOffset + 8)

        if endOffset >= 20 && bytes.u32(endOffset - 20) == Int(ZipSignature.zip64Locator) {
            end = try readZip64End(locatorOffset: endOffset - 20)
        } else if disk != 0 || directoryDisk != 0 || entriesOnDisk != end.entryCount {
            throw invalid(
                nil, "disk numbers", expected: "a single-disk archive (disk 0, all entries on it)",
                found: "disk \(disk), central directory on disk \(directoryDisk), "
                    + "\(entriesOnDisk) of \(end.entryCount) entries on this disk")
        }

        if end.entryCount > limits.maxMembers {
            throw CheckpointError.limitExceeded(
                file: file, key: nil, setting: "maxMembers", limit: limits.maxMembers, found: end.entryCount)
        }
        if end.directoryOffset > end.recordsStart || end.directorySize > end.recordsStart - end.directoryOffset {
            throw invalid(
                nil, "central directory location",
                expected: "offset + size <= \(end.recordsStart) (where the end records start)",
                found: "offset \(end.directoryOffset), size \(end.directorySize)")
        }
        // Each central entry takes at least 46 bytes.
        if end.entryCount > end.directorySize / 46 {
            throw invalid(
                nil, "central directory size",
                expected: "at least 46 bytes per entry (\(end.entryCount) entries)",
                found: "\(end.directorySize) bytes")
        }
        return end
    }

    private func readZip64End(locatorOffset: Int) throws -> End {
        let locatorDisk = bytes.u32(locatorOffset + 4)
        let diskCount = bytes.u32(locatorOffset + 16)
        if locatorDisk != 0 || diskCount > 1 {
            throw invalid(
                nil, "ZIP64 locator disk numbers", expected: "a single-disk archive",
                found: "record on disk \(locatorDisk), \(diskCount) disks")
        }

        guard let recordOffset = bytes.u64(locatorOffset + 8), recordOffset <= locatorOffset - 56 else {
            throw invalid(
                nil, "ZIP64 end record offset", expected: "an offset <= \(locatorOffset - 56) (before the locator)",
                found: "\(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: locatorOffset + 8, as: UInt64.self)))")
        }
        let signature = bytes.u32(recordOffset)
        if signature != Int(ZipSignature.zip64EndRecord) {
            throw invalid(
                nil, "ZIP64 end record signature", expected: "PK\\x06\\x06 at offset \(recordOffset)",
                found: "0x\(String(signature, radix: 16))")
        }

        let disk = bytes.u32(recordOffset + 16)
        let directoryDisk = bytes.u32(recordOffset + 20)
        guard
            let entriesOnDisk = bytes.u64(recordOffset + 24),
            let entryCount = bytes.u64(recordOffset + 32),
            let directorySize = bytes.u64(recordOffset + 40),
            let directoryOffset = bytes.u64(recordOffset + 48)
        else {
            throw invalid(nil, "ZIP64 end record", expected: "counts and offsets below 2^63", found: "larger values")
        }
        if disk != 0 || directoryDisk != 0 || entriesOnDisk != entryCount {
            throw invalid(
                nil, "ZIP64 disk numbers", expected: "a single-disk archive (disk 0, all entries on it)",
                found: "disk \(disk), central directory on disk \(directoryDisk), "
                    + "\(entriesOnDisk) of \(entryCount) entries on this disk")
        }
        return End(
            entryCount: entryCount, directoryOffset: directoryOffset, directorySize: directorySize,
            recordsStart: recordOffset)
    }

    // MARK: - Central directory entries

    private func readCentralEntry(at position: Int, index: Int, directoryEnd: Int) throws -> (NPZMember, Int) {
        guard directoryEnd - position >= 46 else {
            throw invalid(
                nil, "central directory entry \(index)", expected: "46 bytes before offset \(directoryEnd)",
                found: "\(max(0, directoryEnd - position)) bytes")
        }
        let signature = bytes.u32(position)
        if signature != Int(ZipSignature.centralEntry) {
            throw invalid(
                nil, "central directory entry \(index) signature", expected: "PK\\x01\\x02 at offset \(position)",
                found: "0x\(String(signature, radix: 16))")
        }

        let flags = bytes.u16(position + 8)
        let method = bytes.u16(position + 10)
        let crc = UInt32(bytes.u32(position + 16))
        var compressedSize = bytes.u32(position + 20)
        var size = bytes.u32(position + 24)
        let nameLength = bytes.u16(position + 28)
        let extraLength = bytes.u16(position + 30)
        let commentLength = bytes.u16(position + 32)
        let disk = bytes.u16(position + 34)
        var localOffset = bytes.u32(position + 42)

        let next = position + 46 + nameLength + extraLength + commentLength
        guard next <= directoryEnd else {
            throw invalid(
                nil, "central directory entry \(index)", expected: "name, extra field and comment before offset \(directoryEnd)",
                found: "they end at \(next)")
        }
        let nameBytes = UnsafeRawBufferPointer(rebasing: bytes[(position + 46)..<(position + 46 + nameLength)])
        guard let name = String(validating: nameBytes, as: UTF8.self), !name.contains("\0") else {
            throw invalid(
                nil, "central directory entry \(index) name", expected: "UTF-8 text", found: escaped(Array(nameBytes)))
        }

        // Values saturated at 0xFFFFFFFF live in the ZIP64 extra field, in this order.
        let extra = UnsafeRawBufferPointer(
            rebasing: bytes[(position + 46 + nameLength)..<(position + 46 + nameLength + extraLength)])
        var saturatedFields: [WritableKeyPath<Zip64Values, Int?>] = []
        if size == 0xFFFF_FFFF { saturatedFields.append(\.size) }
        if compressedSize == 0xFFFF_FFFF { saturatedFields.append(\.compressedSize) }
        if localOffset == 0xFFFF_FFFF { saturatedFields.append(\.offset) }
        if !saturatedFields.isEmpty {
            let values = try readZip64Extra(extra, saturatedFields: saturatedFields, member: name, where: "central directory")
            size = values.size ?? size
            compressedSize = values.compressedSize ?? compressedSize
            localOffset = values.offset ?? localOffset
        }

        // Only plain stored or deflated, unencrypted, single-disk members are read.
        if flags & 0x41 != 0 {
            throw invalid(name, "flags", expected: "no encryption (bits 0 and 6 clear)", found: "0x\(String(flags, radix: 16))")
        }
        let compression: NPZCompression
        switch method {
        case 0: compression = .stored
        case 8: compression = .deflated
        default:
            throw invalid(name, "compression method", expected: "0 (stored) or 8 (deflated)", found: "\(method)")
        }
        if disk != 0 {
            throw invalid(name, "disk number", expected: "0 (single-disk archive)", found: "\(disk)")
        }
        if compression == .stored && compressedSize != size {
            throw invalid(
                name, "stored sizes", expected: "compressed size == size for a stored member",
                found: "compressed \(compressedSize), size \(size)")
        }
        if size > limits.maxMemberBytes {
            throw CheckpointError.limitExceeded(
                file: file, key: normalizedKey(name), setting: "maxMemberBytes", limit: limits.maxMemberBytes,
                found: size)
        }
        // One deflate length/distance pair takes at least 2 bits and yields at most 258 bytes, so
        // n compressed bytes inflate to at most 1032 * n (zlib's "Technical Details" page). A
        // larger declared size is false, and reading the member would allocate it before
        // inflating: a 500-byte file could request 4 GiB.
        let (inflateBound, boundOverflow) = compressedSize.multipliedReportingOverflow(by: 1032)
        if case .deflated = compression, !boundOverflow, size > inflateBound {
            throw invalid(
                name, "deflated size",
                expected: "at most 1032 times the compressed size (\(inflateBound) bytes), deflate's maximum ratio",
                found: "size \(size) for \(compressedSize) compressed bytes")
        }

        let member = NPZMember(
            name: name, key: normalizedKey(name), compression: compression, compressedSize: compressedSize,
            size: size, crc32: crc, localHeaderOffset: localOffset, dataOffset: -1)
        return (member, next)
    }

    // MARK: - ZIP64 extra field

    struct Zip64Values {
        var size: Int?
        var compressedSize: Int?
        var offset: Int?
    }

    /// Reads the 8-byte values of the ZIP64 extra block (tag 0x0001) listed in `saturatedFields`.
    private func readZip64Extra(
        _ extra: UnsafeRawBufferPointer, saturatedFields: [WritableKeyPath<Zip64Values, Int?>], member: String, where place: String
    ) throws -> Zip64Values {
        var position = 0
        while extra.count - position >= 4 {
            let tag = extra.u16(position)
            let length = extra.u16(position + 2)
            guard length <= extra.count - position - 4 else { break }
            if tag == 0x0001 {
                guard length >= 8 * saturatedFields.count else {
                    throw invalid(
                        member, "\(place) ZIP64 extra field", expected: "\(8 * saturatedFields.count) bytes",
                        found: "\(length) bytes")
                }
                var values = Zip64Values()
                for (slot, path) in saturatedFields.enumerated() {
                    guard let value = extra.u64(position + 4 + 8 * slot) else {
                        throw invalid(member, "\(place) ZIP64 extra field", expected: "values below 2^63", found: "a larger value")
                    }
                    values[keyPath: path] = value
                }
                return values
            }
            position += 4 + length
        }
        throw invalid(
            member, "\(place) ZIP64 extra field",
            expected: "a tag 0x0001 block, because a size or offset is 0xFFFFFFFF", found: "none")
    }
}
