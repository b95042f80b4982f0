import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Errors from writing run outputs (checkpoints, pointers, metrics).
public enum RunOutputError: Error, CustomStringConvertible {
    case writeFailed(path: String, reason: String)
    case renameFailed(from: String, to: String, reason: String)
    case invalidCheckpoint(path: String, reason: String)
    case noCheckpoint(directory: String)

    public var description: String {
        switch self {
        case .writeFailed(let path, let reason):
            return "failed to write '\(path)': \(reason); check free disk space and permissions of the output directory"
        case .renameFailed(let from, let to, let reason):
            return "failed to rename '\(from)' to '\(to)': \(reason); the previous file is unchanged"
        case .invalidCheckpoint(let path, let reason):
            return "checkpoint '\(path)' is not usable: \(reason); pass another one with --resume PATH"
        case .noCheckpoint(let directory):
            return "no complete checkpoint found under '\(directory)'; start without --resume or point --resume at a step directory"
        }
    }
}

/// Formats the C `errno` value for error messages.
func errnoDescription(_ code: Int32 = errno) -> String {
    String(cString: strerror(code)) + " (errno \(code))"
}

/// Flushes a file or directory to stable storage.
func fsyncPath(_ path: String) throws {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw RunOutputError.writeFailed(path: path, reason: "open for fsync: \(errnoDescription())") }
    defer { close(fd) }
    if fsync(fd) != 0 {
        throw RunOutputError.writeFailed(path: path, reason: "fsync: \(errnoDescription())")
    }
}
