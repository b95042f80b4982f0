import TensorCore

/// Writes an `.npz` archive that `np.load` reads, streaming each member to disk.
///
/// Members are written one at a time, either whole (`write(key:...)`) or in pieces
/// (`beginMember`, `append`, `endMember`), so a 5.8 GB checkpoint never sits in memory twice.
/// Only the central directory (about 100 bytes per member) is kept until `finish()`.
///
/// Format, as numpy writes it: every local header carries a ZIP64 extra field with both sizes
/// (the 32-bit fields hold 0xFFFFFFFF). Central entries and the end records use ZIP64 only where
/// a value needs it, or everywhere with `forceZip64`. Each NPY header is padded so that the
/// array data of a stored member starts at a multiple of 64 bytes in the file, which keeps
/// memory-mapped arrays aligned. The CRC and compressed size are patched into the local header
/// once a member is complete.
///
/// The file is written through `AtomicFile`: it appears at `path` only after `finish()`, and
/// any error, `abort()`, or deinit before `finish()` leaves a previous file at `path` intact.
public final class NPZWriter {
    public let path: String
    public let compression: NPZCompression
    public let forceZip64: Bool

    private let output: AtomicFile
    private var centralDirectory: [UInt8] = []
    private var memberCount = 0
    private var keys: [String: String] = [:]
    private var current: OpenMember?
    private var finished = false

    /// The member being written.
    private struct OpenMember {
        let key: String
        let name: [UInt8]
        let localHeaderOffset: Int
        let dataStart: Int
        let expectedDataBytes: Int
        let size: Int
        var appendedDataBytes = 0
        var crc: UInt32 = 0
        let deflate: DeflateStream?
    }

    /// Creates the output file. `atomic: false` writes `path` directly (see `AtomicFile`).
    /// `forceZip64` writes ZIP64 central entries and end records even for small archives.
    public init(
        path: String, compression: NPZCompression = .stored, atomic: Bool = true, forceZip64: Bool = false
    ) throws {
        if case let .deflated(level) = compression, !(1...9).contains(level) {
            throw CheckpointError.invalidWrite(
                file: path, key: nil, expected: "a deflate level from 1 to 9", found: "\(level)")
        }
        self.path = path
        self.compression = compression
        self.forceZip64 = forceZip64
        output = try AtomicFile(path: path, atomic: atomic)
    }

    /// Removes the partly written file. The writer cannot be used afterwards.
    public func abort() {
        finished = true
        current = nil
        output.abort()
    }

    // MARK: - Whole arrays

    /// Writes one array from raw little-endian bytes.
    public func write(key: String, elementType: NPYDType, shape: [Int], bytes: UnsafeRawBufferPointer) throws {
        try beginMember(key: key, elementType: elementType, shape: shape)
        try append(bytes)
        try endMember()
    }

    /// Writes one floating-point array from raw bytes already in `dtype`'s layout.
    public func write(key: String, dtype: DType, shape: [Int], bytes: UnsafeRawBufferPointer) throws {
        try write(key: key, elementType: NPYDType(dtype), shape: shape, bytes: bytes)
    }

    /// Writes f32 values, converted to `dtype` (f16 and bf16 round to nearest even).
    public func write(key: String, floats: [Float], shape: [Int], as dtype: DType) throws {
        try beginMember(key: key, elementType: NPYDType(dtype), shape: shape)
        try floats.withUnsafeBufferPointer { try append(floats: $0, as: dtype) }
        try endMember()
    }

    /// Writes an int32 array.
    public func write(key: String, int32s: [Int32], shape: [Int]) throws {
        try int32s.withUnsafeBytes { try write(key: key, elementType: .int32, shape: shape, bytes: $0) }
    }

    /// Writes an array read from another file, under `key` (default: the array's own key).
    public func write(_ array: NPYArray, key: String? = nil) throws {
        try array.withUnsafeBytes {
            try write(key: key ?? array.key, elementType: array.elementType, shape: array.shape, bytes: $0)
        }
    }

    // MARK: - Streaming one member

    /// Starts the member `<key>.npy` holding an array of `shape` and `elementType`. Its data
    /// follows through `append` calls, and `endMember()` closes it.
    public func beginMember(key: String, elementType: NPYDType, shape: [Int]) throws {
        try checkUsable(key: key)
        if let open = current {
            throw fail(CheckpointError.invalidWrite(
                file: path, key: key, expected: "endMember() for '\(open.key)' first", found: "beginMember"))
        }
        try checkKey(key)
        let dataBytes: Int
        do {
            dataBytes = try checkedSizes(shape: shape, elementType: elementType, file: path, key: key).bytes
        } catch {
            throw fail(error)
        }

        let name = Array((key + ".npy").utf8)
        let offset = output.position
        let localHeaderSize = 30 + name.count + 20
        let npyHeader: [UInt8]
        var deflate: DeflateStream?
        switch compression {
        case .stored:
            npyHeader = NPYHeader.encode(dtype: elementType, shape: shape, alignmentOrigin: offset + localHeaderSize)
        case let .deflated(level):
            npyHeader = NPYHeader.encode(dtype: elementType, shape: shape)
            do {
                deflate = try DeflateStream(level: Int32(level), file: path, key: key)
            } catch {
                throw fail(error)
            }
        }
        let size = npyHeader.count + dataBytes

        // Sizes are patched in endMember: the CRC for every member, the compressed size for
        // a deflated one.
        var header = ZipRecord()
        header.u32(ZipSignature.localHeader)
        header.u16(45)  // version needed: 4.5, ZIP64
        header.u16(nameFlags(name))
        header.u16(compression == .stored ? 0 : 8)
        header.u16(0)  // time 00:00
        header.u16(dosDate1980)
        header.u32(0)  // CRC-32, patched
        header.u32(0xFFFF_FFFF)
        header.u32(0xFFFF_FFFF)
        header.u16(name.count)
        header.u16(20)
        header.bytes += name
        header.u16(0x0001)
        header.u16(16)
        header.u64(size)
        header.u64(compression == .stored ? size : 0)  // compressed size, patched when deflated

        current = OpenMember(
            key: key, name: name, localHeaderOffset: offset, dataStart: offset + localHeaderSize,
            expectedDataBytes: dataBytes, size: size, deflate: deflate)
        do {
            try output.write(header.bytes)
            try npyHeader.withUnsafeBytes { try emit($0) }
        } catch {
            throw fail(error)
        }
    }

    /// Appends raw little-endian element bytes to the open member.
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        try checkUsable(key: current?.key)
        guard let open = current else {
            throw fail(CheckpointError.invalidWrite(file: path, key: nil, expected: "beginMember first", found: "append"))
        }
        if bytes.count > open.expectedDataBytes - open.appendedDataBytes {
            throw fail(CheckpointError.invalidWrite(
                file: path, key: open.key, expected: "\(open.expectedDataBytes) data bytes in total",
                found: "\(open.appendedDataBytes + bytes.count) after this append"))
        }
        current?.appendedDataBytes += bytes.count
        do {
            try emit(bytes)
        } catch {
            throw fail(error)
        }
    }

    /// Appends f32 values converted to `dtype`, in chunks of 1 Mi elements, to the open member.
    public func append(floats: UnsafeBufferPointer<Float>, as dtype: DType) throws {
        guard let source = floats.baseAddress else { return }
        if dtype == .f32 {
            try append(UnsafeRawBufferPointer(floats))
            return
        }
        let chunk = 1 << 20
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: chunk * dtype.byteSize, alignment: 64)
        defer { scratch.deallocate() }
        var start = 0
        while start < floats.count {
            let count = min(chunk, floats.count - start)
            convertFromFloat(source + start, count: count, to: dtype, into: scratch)
            try append(UnsafeRawBufferPointer(start: scratch, count: count * dtype.byteSize))
            start += count
        }
    }

    /// Closes the open member after checking that all of its data arrived.
    public func endMember() throws {
        try checkUsable(key: current?.key)
        guard let open = current else {
            throw fail(CheckpointError.invalidWrite(file: path, key: nil, expected: "beginMember first", found: "endMember"))
        }
        if open.appendedDataBytes != open.expectedDataBytes {
            throw fail(CheckpointError.invalidWrite(
                file: path, key: open.key, expected: "\(open.expectedDataBytes) data bytes",
                found: "\(open.appendedDataBytes)"))
        }

        do {
            if let deflate = open.deflate {
                try deflate.compress(UnsafeRawBufferPointer(start: nil, count: 0), finish: true) { try output.write($0) }
            }
            let compressedSize = output.position - open.dataStart
            var crcField = ZipRecord()
            crcField.u32(current?.crc ?? 0)
            try output.overwrite(crcField.bytes, at: open.localHeaderOffset + 14)
            if open.deflate != nil {
                var sizeField = ZipRecord()
                sizeField.u64(compressedSize)
                try output.overwrite(sizeField.bytes, at: open.localHeaderOffset + 30 + open.name.count + 12)
            }
            appendCentralEntry(for: open, crc: current?.crc ?? 0, compressedSize: compressedSize)
        } catch {
            throw fail(error)
        }
        current = nil
    }

    // MARK: - Finishing

    /// Writes the central directory and end records, then commits the file to `path`.
    public func finish() throws {
        try checkUsable(key: nil)
        if let open = current {
            throw fail(CheckpointError.invalidWrite(
                file: path, key: open.key, expected: "endMember() before finish()", found: "an open member"))
        }
        do {
            let directoryOffset = output.position
            try output.write(centralDirectory)
            try output.write(endRecords(directoryOffset: directoryOffset, directorySize: centralDirectory.count))
            try output.commit()
        } catch {
            throw fail(error)
        }
        finished = true
    }

    // MARK: - Private

    /// Sends member bytes (NPY header or data) through the CRC and, if deflating, the compressor.
    private func emit(_ bytes: UnsafeRawBufferPointer) throws {
        guard var open = current else { return }
        open.crc = crc32(bytes, continuing: open.crc)
        current = open
        if let deflate = open.deflate {
            try deflate.compress(bytes, finish: false) { try output.write($0) }
        } else {
            try output.write(bytes)
        }
    }

    private func appendCentralEntry(for member: OpenMember, crc: UInt32, compressedSize: Int) {
        // Each value that does not fit (or every value with forceZip64) moves to the extra field.
        let saturateSize = forceZip64 || member.size >= 0xFFFF_FFFF
        let saturateCompressed = forceZip64 || compressedSize >= 0xFFFF_FFFF
        let saturateOffset = forceZip64 || member.localHeaderOffset >= 0xFFFF_FFFF
        var extra = ZipRecord()
        if saturateSize { extra.u64(member.size) }
        if saturateCompressed { extra.u64(compressedSize) }
        if saturateOffset { extra.u64(member.localHeaderOffset) }
        let needsZip64 = !extra.bytes.isEmpty

        var entry = ZipRecord()
        entry.u32(ZipSignature.centralEntry)
        entry.u16(3 << 8 | 45)  // made by: Unix, version 4.5
        entry.u16(needsZip64 ? 45 : 20)
        entry.u16(nameFlags(member.name))
        entry.u16(compression == .stored ? 0 : 8)
        entry.u16(0)
        entry.u16(dosDate1980)
        entry.u32(crc)
        entry.u32(saturateCompressed ? 0xFFFF_FFFF : UInt32(compressedSize))
        entry.u32(saturateSize ? 0xFFFF_FFFF : UInt32(member.size))
        entry.u16(member.name.count)
        entry.u16(needsZip64 ? 4 + extra.bytes.count : 0)
        entry.u16(0)  // comment length
        entry.u16(0)  // disk number
        entry.u16(0)  // internal attributes
        entry.u32(0o100644 << 16)  // external attributes: regular file, rw-r--r--
        entry.u32(saturateOffset ? 0xFFFF_FFFF : UInt32(member.localHeaderOffset))
        entry.bytes += member.name
        if needsZip64 {
            entry.u16(0x0001)
            entry.u16(extra.bytes.count)
            entry.bytes += extra.bytes
        }
        centralDirectory += entry.bytes
        memberCount += 1
    }

    private func endRecords(directoryOffset: Int, directorySize: Int) -> [UInt8] {
        let needsZip64 = forceZip64 || memberCount >= 0xFFFF || directoryOffset >= 0xFFFF_FFFF
            || directorySize >= 0xFFFF_FFFF
        var records = ZipRecord()

        if needsZip64 {
            let recordOffset = directoryOffset + directorySize
            records.u32(ZipSignature.zip64EndRecord)
            records.u64(44)  // size of the rest of this record
            records.u16(3 << 8 | 45)
            records.u16(45)
            records.u32(0)  // this disk
            records.u32(0)  // disk with the central directory
            records.u64(memberCount)
            records.u64(memberCount)
            records.u64(directorySize)
            records.u64(directoryOffset)

            records.u32(ZipSignature.zip64Locator)
            records.u32(0)
            records.u64(recordOffset)
            records.u32(1)  // total disks
        }

        records.u32(ZipSignature.endRecord)
        records.u16(0)
        records.u16(0)
        records.u16(needsZip64 ? 0xFFFF : memberCount)
        records.u16(needsZip64 ? 0xFFFF : memberCount)
        records.u32(needsZip64 ? 0xFFFF_FFFF : UInt32(directorySize))
        records.u32(needsZip64 ? 0xFFFF_FFFF : UInt32(directoryOffset))
        records.u16(0)  // comment length
        return records.bytes
    }

    /// Rejects an empty, oversized or duplicate key. Keys are compared as the reader compares
    /// them, without a leading `params/`.
    private func checkKey(_ key: String) throws {
        let name = key + ".npy"
        if key.isEmpty || key.hasSuffix("/") || key.contains("\0") || name.utf8.count > 0xFFFF {
            throw fail(CheckpointError.invalidWrite(
                file: path, key: key, expected: "a non-empty key without NUL or trailing '/', under 64 KiB",
                found: "'\(key)'"))
        }
        let normalized = normalizedKey(name)
        if let previous = keys[normalized] {
            throw fail(CheckpointError.duplicateKey(file: path, key: normalized, members: [previous, name]))
        }
        keys[normalized] = name
    }

    private func checkUsable(key: String?) throws {
        if finished {
            throw CheckpointError.invalidWrite(
                file: path, key: key, expected: "an open writer", found: "a writer that finished or was aborted")
        }
    }

    /// Aborts the archive and returns `error` for rethrowing.
    private func fail(_ error: Error) -> Error {
        abort()
        return error
    }

    /// Bit 11 marks a UTF-8 name.
    private func nameFlags(_ name: [UInt8]) -> Int {
        name.allSatisfy { $0 < 0x80 } ? 0 : 1 << 11
    }
}

/// MS-DOS date 1980-01-01, the earliest representable. numpy writes the same fixed date, which
/// keeps archives with equal contents byte-identical.
private let dosDate1980 = (0 << 9) | (1 << 5) | 1

/// Little-endian serialisation of ZIP header fields.
struct ZipRecord {
    var bytes: [UInt8] = []

    mutating func u16(_ value: Int) {
        for i in 0..<2 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
    }

    mutating func u32(_ value: UInt32) {
        for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
    }

    mutating func u64(_ value: Int) {
        for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
    }
}
