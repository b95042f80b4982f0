/// Cross-checks of the central directory against the rest of the archive: local headers,
/// byte ranges, and keys.
extension ZipDirectory {
    /// Checks the member's local header against its central entry and returns the member with
    /// `dataOffset` set. The data must end before the central directory starts.
    func checkLocalHeader(of member: NPZMember, directoryOffset: Int) throws -> NPZMember {
        func invalid(_ field: String, expected: String, found: String) -> CheckpointError {
            .invalidArchive(file: file, member: member.name, field: field, expected: expected, found: found)
        }

        let offset = member.localHeaderOffset
        guard offset <= directoryOffset - 30 else {
            throw invalid(
                "local header offset", expected: "an offset <= \(directoryOffset - 30) (before the central directory)",
                found: "\(offset)")
        }
        let signature = bytes.u32(offset)
        if signature != Int(ZipSignature.localHeader) {
            throw invalid(
                "local header signature", expected: "PK\\x03\\x04 at offset \(offset)", found: "0x\(String(signature, radix: 16))")
        }

        let flags = bytes.u16(offset + 6)
        let method = bytes.u16(offset + 8)
        let crc = UInt32(bytes.u32(offset + 14))
        let compressedSize = bytes.u32(offset + 18)
        let size = bytes.u32(offset + 22)
        let nameLength = bytes.u16(offset + 26)
        let extraLength = bytes.u16(offset + 28)

        // The name and extra field, then the data, must all end before the central directory.
        let dataOffset = offset + 30 + nameLength + extraLength
        guard dataOffset <= directoryOffset, member.compressedSize <= directoryOffset - dataOffset else {
            throw invalid(
                "data range", expected: "data ending at or before the central directory (offset \(directoryOffset))",
                found: "\(member.compressedSize) bytes starting at \(dataOffset)")
        }

        let nameBytes = Array(UnsafeRawBufferPointer(rebasing: bytes[(offset + 30)..<(offset + 30 + nameLength)]))
        if nameBytes != Array(member.name.utf8) {
            throw invalid("local header name", expected: "'\(member.name)'", found: escaped(nameBytes))
        }
        let centralMethod = member.compression == .stored ? 0 : 8
        if method != centralMethod {
            throw invalid("local header compression method", expected: "\(centralMethod)", found: "\(method)")
        }

        // With bit 3 set, CRC and sizes follow the data in a descriptor and the local fields are 0.
        if flags & 0x08 == 0 {
            if crc != member.crc32 {
                throw invalid("local header CRC-32", expected: "\(member.crc32) as in the central directory", found: "\(crc)")
            }
            var localSizes = (size: size, compressed: compressedSize)
            if size == 0xFFFF_FFFF || compressedSize == 0xFFFF_FFFF {
                let extra = UnsafeRawBufferPointer(
                    rebasing: bytes[(offset + 30 + nameLength)..<(offset + 30 + nameLength + extraLength)])
                let values = try localZip64Sizes(extra, saturatedSize: size == 0xFFFF_FFFF, member: member.name)
                localSizes = (values.size ?? size, values.compressedSize ?? compressedSize)
            }
            if localSizes.size != member.size || localSizes.compressed != member.compressedSize {
                throw invalid(
                    "local header sizes",
                    expected: "size \(member.size), compressed \(member.compressedSize) as in the central directory",
                    found: "size \(localSizes.size), compressed \(localSizes.compressed)")
            }
        }

        return NPZMember(
            name: member.name, key: member.key, compression: member.compression, compressedSize: member.compressedSize,
            size: member.size, crc32: member.crc32, localHeaderOffset: offset, dataOffset: dataOffset)
    }

    /// Reads the local ZIP64 extra block. Unlike the central one it contains both sizes whenever
    /// either is saturated (APPNOTE 4.5.3), size first.
    private func localZip64Sizes(
        _ extra: UnsafeRawBufferPointer, saturatedSize: Bool, member: String
    ) throws -> (size: Int?, compressedSize: Int?) {
        var position = 0
        while extra.count - position >= 4 {
            let tag = extra.u16(position)
            let length = extra.u16(position + 2)
            guard length <= extra.count - position - 4 else { break }
            if tag == 0x0001 && length >= 16 {
                return (extra.u64(position + 4), extra.u64(position + 12))
            }
            if tag == 0x0001 && length >= 8 {
                // Some writers store only the saturated value.
                let value = extra.u64(position + 4)
                return saturatedSize ? (value, nil) : (nil, value)
            }
            position += 4 + length
        }
        throw CheckpointError.invalidArchive(
            file: file, member: member, field: "local header ZIP64 extra field",
            expected: "a tag 0x0001 block, because a size is 0xFFFFFFFF", found: "none")
    }

    /// Rejects members whose header-plus-data ranges intersect.
    func checkOverlaps(_ members: [NPZMember]) throws {
        let sorted = members.sorted { $0.localHeaderOffset < $1.localHeaderOffset }
        for (first, second) in zip(sorted, sorted.dropFirst()) {
            let firstEnd = first.dataOffset + first.compressedSize
            if firstEnd > second.localHeaderOffset {
                throw CheckpointError.overlappingMembers(
                    file: file, first: first.name, firstRange: first.localHeaderOffset..<firstEnd,
                    second: second.name,
                    secondRange: second.localHeaderOffset..<(second.dataOffset + second.compressedSize))
            }
        }
    }

    /// Rejects two members that map to one key.
    func checkDuplicateKeys(_ members: [NPZMember]) throws {
        var seen: [String: String] = [:]
        for member in members {
            if let previous = seen[member.key] {
                throw CheckpointError.duplicateKey(file: file, key: member.key, members: [previous, member.name])
            }
            seen[member.key] = member.name
        }
    }
}
