#if canImport(Glibc)
import Glibc
#endif

/// A buffered output file that appears at its final path only when it is complete.
///
/// With `atomic: true` (the default) the bytes go to `<path>.tmp-<pid>`. `commit()` flushes,
/// fsyncs the file, renames it over `path` and fsyncs the directory, so after a crash `path`
/// is either the previous file or the new one, never a mix. `abort()`, any failed write, and
/// deinit without `commit()` remove the temporary file and leave `path` untouched.
///
/// With `atomic: false` the bytes go straight to `path` (truncating it). A failure or `abort()`
/// then removes `path`, so no half-written file is left, but a previous file is lost.
public final class AtomicFile {
    /// The final path.
    public let path: String
    /// The path written until `commit()`: the temporary path, or `path` itself.
    public let writingPath: String
    public let atomic: Bool

    /// Bytes handed to `write` so far, including those still buffered.
    public private(set) var position = 0

    private var descriptor: Int32
    private var buffer: UnsafeMutableRawBufferPointer
    private var buffered = 0
    private var state = State.open

    private enum State {
        case open
        case committed
        case aborted
    }

    /// Bytes collected before one `write(2)` call.
    private static let bufferSize = 4 << 20

    /// Opens the temporary file (or `path` itself when not atomic).
    ///
    /// A leftover temporary file with this process id can only come from an earlier process that
    /// crashed, so it is replaced.
    public init(path: String, atomic: Bool = true) throws {
        self.path = path
        self.atomic = atomic
        writingPath = atomic ? "\(path).tmp-\(getpid())" : path

        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (atomic ? O_EXCL : O_TRUNC)
        var fd = open(writingPath, flags, 0o644)
        if fd < 0 && errno == EEXIST {
            unlink(writingPath)
            fd = open(writingPath, flags, 0o644)
        }
        if fd < 0 {
            throw CheckpointError.ioFailed(file: writingPath, operation: "open for writing", errno: errno)
        }
        descriptor = fd
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: AtomicFile.bufferSize, alignment: 64)
    }

    deinit {
        abort()
        buffer.deallocate()
    }

    /// Appends `bytes`. On failure the file is aborted and the error rethrown.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try checkOpen()
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }

        if buffered + bytes.count <= buffer.count {
            (buffer.baseAddress! + buffered).copyMemory(from: source, byteCount: bytes.count)
            buffered += bytes.count
        } else {
            // Large writes skip the buffer after flushing what it holds.
            try flush()
            try writeFully(bytes)
        }
        position += bytes.count
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Overwrites bytes already written at `offset` (used to patch sizes and checksums into
    /// headers once they are known). The range must lie before `position`.
    public func overwrite(_ bytes: [UInt8], at offset: Int) throws {
        try checkOpen()
        precondition(offset >= 0 && offset + bytes.count <= position, "overwrite range outside the written bytes")
        try flush()
        try bytes.withUnsafeBytes { source in
            var done = 0
            while done < source.count {
                let result = pwrite(descriptor, source.baseAddress! + done, source.count - done, off_t(offset + done))
                if result < 0 && errno == EINTR { continue }
                if result <= 0 {
                    throw fail(operation: "pwrite at offset \(offset + done)", code: errno)
                }
                done += result
            }
        }
    }

    /// Flushes, fsyncs and moves the file into place (see the type's documentation).
    public func commit() throws {
        try checkOpen()
        try flush()
        if fsync(descriptor) != 0 {
            throw fail(operation: "fsync", code: errno)
        }
        let closeResult = close(descriptor)
        descriptor = -1
        if closeResult != 0 {
            throw fail(operation: "close", code: errno)
        }

        if atomic {
            if rename(writingPath, path) != 0 {
                throw fail(operation: "rename to \(path)", code: errno)
            }
        }
        state = .committed

        // The rename is durable only once the directory entry is on disk.
        try syncDirectory(of: path)
    }

    /// Closes and removes the file being written. Does nothing after `commit()`.
    public func abort() {
        guard state == .open else { return }
        state = .aborted
        if descriptor >= 0 {
            close(descriptor)
            descriptor = -1
        }
        unlink(writingPath)
    }

    // MARK: - Private

    private func checkOpen() throws {
        switch state {
        case .open: return
        case .committed:
            throw CheckpointError.invalidWrite(file: path, key: nil, expected: "an open file", found: "a committed file")
        case .aborted:
            throw CheckpointError.invalidWrite(
                file: path, key: nil, expected: "an open file", found: "a file aborted after an earlier error")
        }
    }

    private func flush() throws {
        guard buffered > 0 else { return }
        try writeFully(UnsafeRawBufferPointer(rebasing: buffer[0..<buffered]))
        buffered = 0
    }

    private func writeFully(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let result = Glibc.write(descriptor, base + done, bytes.count - done)
            if result < 0 && errno == EINTR { continue }
            if result <= 0 {
                throw fail(operation: "write of \(bytes.count - done) bytes", code: result < 0 ? errno : EIO)
            }
            done += result
        }
    }

    /// Aborts and returns the error to throw.
    private func fail(operation: String, code: Int32) -> CheckpointError {
        abort()
        return CheckpointError.ioFailed(file: writingPath, operation: operation, errno: code)
    }
}

/// Writes `bytes` to `path` atomically: a temporary file, fsync, rename, directory fsync.
public func writeFileAtomically(path: String, bytes: [UInt8]) throws {
    let file = try AtomicFile(path: path)
    try file.write(bytes)
    try file.commit()
}

/// Fsyncs the directory that contains `path`.
private func syncDirectory(of path: String) throws {
    let directory: String
    if let slash = path.lastIndex(of: "/") {
        directory = slash == path.startIndex ? "/" : String(path[..<slash])
    } else {
        directory = "."
    }
    let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if fd < 0 {
        throw CheckpointError.ioFailed(file: directory, operation: "open directory for fsync", errno: errno)
    }
    defer { close(fd) }
    if fsync(fd) != 0 {
        throw CheckpointError.ioFailed(file: directory, operation: "fsync of the directory", errno: errno)
    }
}
