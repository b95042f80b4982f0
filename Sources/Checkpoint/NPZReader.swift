/// Reads arrays from an `.npz` archive (numpy's `savez` format: a ZIP of `.npy` members).
///
/// The whole file is memory-mapped read-only when the reader opens it (or copied, for
/// `init(bytes:name:limits:)`), and the central directory is checked then (see `ZipDirectory`). Arrays in stored members point into the
/// mapping, so opening a 5.8 GB checkpoint copies nothing. A deflated member is inflated into
/// a buffer of exactly its declared size when `array(_:)` is called.
///
/// Keys drop the `.npy` suffix and a leading `params/`, so released checkpoints
/// (`params/llm/...`) and colab-saved ones (`llm/...`) read the same way. Lookups accept
/// either spelling.
///
/// NOTE: the mapping reflects later changes to the file. A file replaced by rename (as
/// `NPZWriter` does) is safe to read on; one truncated in place makes reading it crash (SIGBUS).
public final class NPZReader: Sendable {
    public let path: String
    public let limits: CheckpointLimits

    /// All members, sorted by key.
    public let members: [NPZMember]

    private let storage: ByteStorage
    private let indexByKey: [String: Int]

    /// Opens the archive at `path` and validates its directory. Throws `CheckpointError`.
    public convenience init(path: String, limits: CheckpointLimits = .default) throws {
        try self.init(path: path, storage: try ByteStorage.map(path: path), limits: limits)
    }

    /// Opens an archive held in memory (a download, a test fixture, a fuzzer input) and
    /// validates its directory. The bytes are copied, so the caller's buffer may go away.
    /// `name` replaces the path in `path` and in error messages.
    public convenience init(bytes: UnsafeRawBufferPointer, name: String = "<memory>", limits: CheckpointLimits = .default) throws {
        try self.init(path: name, storage: ByteStorage.copy(of: bytes), limits: limits)
    }

    private init(path: String, storage: ByteStorage, limits: CheckpointLimits) throws {
        self.path = path
        self.limits = limits
        self.storage = storage

        let directory = ZipDirectory(file: path, bytes: storage.bytes, limits: limits)
        members = try directory.readMembers().sorted { $0.key < $1.key }
        indexByKey = Dictionary(uniqueKeysWithValues: members.enumerated().map { ($1.key, $0) })
    }

    /// Keys of all arrays, sorted.
    public var keys: [String] { members.map(\.key) }

    public func contains(_ key: String) -> Bool {
        indexByKey[normalizedKey(key)] != nil
    }

    /// Returns the member that contains `key`, or throws `keyNotFound` listing close matches.
    public func member(_ key: String) throws -> NPZMember {
        guard let index = indexByKey[normalizedKey(key)] else {
            throw CheckpointError.keyNotFound(
                file: path, key: key, closeMatches: closeMatches(for: normalizedKey(key), among: keys),
                keyCount: members.count)
        }
        return members[index]
    }

    /// Reads the NPY header of `key` (dtype and shape) without reading its data. For a deflated
    /// member only the first bytes are inflated.
    public func header(_ key: String) throws -> NPYHeader {
        let member = try member(key)
        let memberBytes = bytes(of: member)
        switch member.compression {
        case .stored:
            return try NPYHeader.parse(memberBytes, file: path, key: member.key, limits: limits)

        case .deflated:
            // Magic, version and a 4-byte length, then the dict.
            let prefixLength = min(member.size, 12 + limits.maxHeaderBytes)
            let prefix = try ByteStorage.allocate(count: prefixLength) { buffer in
                try inflateRaw(memberBytes, into: buffer, mode: .prefix, file: path, key: member.key)
            }
            return try NPYHeader.parse(
                prefix.bytes, file: path, key: member.key, limits: limits, memberByteCount: member.size)
        }
    }

    /// Reads the array stored under `key` (with or without the `params/` prefix).
    ///
    /// A stored member is not copied and its CRC is not checked (that would read every byte;
    /// call `verifyChecksum(_:)` for that). A deflated member is inflated and its CRC checked.
    public func array(_ key: String) throws -> NPYArray {
        let member = try member(key)
        let memberBytes = bytes(of: member)

        let source: ByteStorage
        let memberStart: Int
        switch member.compression {
        case .stored:
            source = storage
            memberStart = member.dataOffset

        case .deflated:
            source = try ByteStorage.allocate(count: member.size) { buffer in
                try inflateRaw(memberBytes, into: buffer, mode: .whole, file: path, key: member.key)
            }
            memberStart = 0
            let found = crc32(source.bytes)
            if found != member.crc32 {
                throw CheckpointError.checksumMismatch(file: path, key: member.key, expected: member.crc32, found: found)
            }
        }

        let npyBytes = UnsafeRawBufferPointer(rebasing: source.bytes[memberStart..<(memberStart + member.size)])
        let header = try NPYHeader.parse(npyBytes, file: path, key: member.key, limits: limits)
        return NPYArray(
            key: member.key, file: path, elementType: header.dtype, shape: header.shape, storage: source,
            offset: memberStart + header.headerByteCount)
    }

    /// Reads `key` and checks that its shape is `expectedShape`, throwing `shapeMismatch` if not.
    public func array(_ key: String, expectedShape: [Int]) throws -> NPYArray {
        let array = try array(key)
        if array.shape != expectedShape {
            throw CheckpointError.shapeMismatch(file: path, key: array.key, expected: expectedShape, found: array.shape)
        }
        return array
    }

    /// Computes the CRC-32 of a member's bytes and compares it with the central directory.
    public func verifyChecksum(_ key: String) throws {
        let member = try member(key)
        switch member.compression {
        case .stored:
            let found = crc32(bytes(of: member))
            if found != member.crc32 {
                throw CheckpointError.checksumMismatch(file: path, key: member.key, expected: member.crc32, found: found)
            }
        case .deflated:
            // Inflating checks the CRC.
            _ = try array(key)
        }
    }

    /// Returns the member's bytes in the archive, as stored (compressed for a deflated member).
    private func bytes(of member: NPZMember) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: storage.bytes[member.dataOffset..<(member.dataOffset + member.compressedSize)])
    }
}

/// Up to five keys closest to `key` by edit distance, best first, for "not found" messages.
/// A key that shares the last path component always counts as close.
func closeMatches(for key: String, among keys: [String]) -> [String] {
    let target = Array(key.utf8)
    let lastComponent = key.split(separator: "/").last.map(String.init) ?? key
    let scored = keys.map { candidate -> (String, Int) in
        var distance = editDistance(target, Array(candidate.utf8))
        if candidate.split(separator: "/").last.map(String.init) == lastComponent {
            distance = min(distance, target.count / 3)
        }
        return (candidate, distance)
    }
    let threshold = max(3, target.count / 3)
    return scored.filter { $0.1 <= threshold }.sorted { ($0.1, $0.0) < ($1.1, $1.0) }.prefix(5).map(\.0)
}

/// Levenshtein distance between two byte strings.
private func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
    if a.isEmpty { return b.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in stride(from: 1, through: b.count, by: 1) {
            let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
            current[j] = min(substitution, previous[j] + 1, current[j - 1] + 1)
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
