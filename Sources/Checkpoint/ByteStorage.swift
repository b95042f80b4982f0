#if canImport(Glibc)
import Glibc
#endif

/// Read-only bytes that outlive the reader that produced them: a whole file mapped into memory,
/// or a heap buffer (an inflated member, or an array built in memory).
///
/// Arrays hold a reference to their storage, so a mapping stays alive while any array that points
/// into it exists. The bytes are never written after initialisation, which makes sharing them
/// between threads safe.
final class ByteStorage: @unchecked Sendable {
    let base: UnsafeRawPointer?
    let count: Int
    private let release: Release

    private enum Release {
        case unmap
        case deallocate
        case none
    }

    /// Maps the whole file read-only. An empty file gets no mapping (`base` is nil).
    static func map(path: String) throws -> ByteStorage {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            throw CheckpointError.ioFailed(file: path, operation: "open", errno: errno)
        }
        defer { close(fd) }

        var info = stat()
        if fstat(fd, &info) != 0 {
            throw CheckpointError.ioFailed(file: path, operation: "fstat", errno: errno)
        }
        if (info.st_mode & S_IFMT) != S_IFREG {
            throw CheckpointError.invalidArchive(
                file: path, member: nil, field: "file type", expected: "a regular file", found: "a directory or device")
        }

        let size = Int(info.st_size)
        if size == 0 {
            return ByteStorage(base: nil, count: 0, release: .none)
        }

        // MAP_PRIVATE: the reader never writes, and a private mapping is unaffected by writers
        // that replace the file through rename (the mapping keeps the old inode).
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), address != MAP_FAILED else {
            throw CheckpointError.ioFailed(file: path, operation: "mmap of \(size) bytes", errno: errno)
        }
        return ByteStorage(base: UnsafeRawPointer(address), count: size, release: .unmap)
    }

    /// Allocates `count` bytes aligned to 64 and lets `fill` initialise them.
    static func allocate(count: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows -> ByteStorage {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
        do {
            try fill(UnsafeMutableRawBufferPointer(start: memory, count: count))
        } catch {
            memory.deallocate()
            throw error
        }
        return ByteStorage(base: UnsafeRawPointer(memory), count: count, release: .deallocate)
    }

    /// Copies `bytes` into a new heap buffer.
    static func copy(of bytes: UnsafeRawBufferPointer) -> ByteStorage {
        allocate(count: bytes.count) { destination in
            destination.copyMemory(from: bytes)
        }
    }

    private init(base: UnsafeRawPointer?, count: Int, release: Release) {
        self.base = base
        self.count = count
        self.release = release
    }

    deinit {
        guard let base else { return }
        switch release {
        case .unmap: munmap(UnsafeMutableRawPointer(mutating: base), count)
        case .deallocate: base.deallocate()
        case .none: break
        }
    }

    var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base, count: count)
    }

    /// True for a read-only mapping of a file, made by `map(path:)`.
    var isFileMapping: Bool {
        if case .unmap = release { return true }
        return false
    }
}
