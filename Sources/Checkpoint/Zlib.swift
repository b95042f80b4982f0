import CZlib

/// CRC-32 (the ZIP polynomial) of `bytes`, continuing from `crc` (0 for a fresh checksum).
func crc32(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
    guard let base = bytes.baseAddress, !bytes.isEmpty else { return crc }
    let result = crc32_z(UInt(crc), base.assumingMemoryBound(to: Bytef.self), z_size_t(bytes.count))
    return UInt32(truncatingIfNeeded: result)
}

/// zlib's avail_in and avail_out are 32-bit, so large buffers are fed in pieces of at most 1 GiB.
private let zlibPiece = 1 << 30

/// How `inflateRaw` treats the end of the output buffer.
enum InflateMode {
    /// The stream must end exactly when the buffer is full.
    case whole
    /// Stop once the buffer is full (used to read only an NPY header).
    case prefix
}

/// Inflates a raw deflate stream (ZIP method 8, no zlib header) into `destination`.
///
/// Never writes past `destination`, so a member that claims a small size but inflates to a huge
/// one (a deflate bomb) costs at most the declared size. In `.whole` mode, output beyond the
/// buffer, a stream that ends early, and input that ends before the stream are all errors.
/// Returns the number of bytes written. Errors carry `file` and `key`.
@discardableResult
func inflateRaw(
    _ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer,
    mode: InflateMode, file: String, key: String
) throws -> Int {
    func failure(_ reason: String) -> CheckpointError {
        .decompressionFailed(file: file, key: key, reason: reason)
    }

    var stream = z_stream()
    let status = inflateInit2_(&stream, -MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
    if status != Z_OK {
        throw failure("inflateInit2 returned \(status)")
    }
    defer { inflateEnd(&stream) }

    let input = source.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: Bytef.self)) }
    let output = destination.baseAddress?.assumingMemoryBound(to: Bytef.self)
    var consumed = 0
    var produced = 0

    while true {
        // Refill zlib's 32-bit windows onto the input and output buffers.
        if stream.avail_in == 0, let input {
            let piece = min(zlibPiece, source.count - consumed)
            stream.next_in = input + consumed
            stream.avail_in = uInt(piece)
            consumed += piece
        }
        if stream.avail_out == 0, let output, produced < destination.count {
            let piece = min(zlibPiece, destination.count - produced)
            stream.next_out = output + produced
            stream.avail_out = uInt(piece)
        }

        let before = stream.avail_out
        let result = inflate(&stream, Z_NO_FLUSH)
        produced += Int(before - stream.avail_out)

        switch result {
        case Z_STREAM_END:
            if mode == .whole && produced != destination.count {
                throw failure("stream ended after \(produced) bytes, expected the declared \(destination.count)")
            }
            return produced
        case Z_OK, Z_BUF_ERROR:
            break
        case Z_DATA_ERROR:
            let message = stream.msg.map { String(cString: $0) } ?? "invalid deflate data"
            throw failure("\(message) after \(produced) bytes")
        default:
            throw failure("zlib inflate returned \(result) after \(produced) bytes")
        }

        if produced == destination.count {
            if mode == .prefix {
                return produced
            }
            // The buffer is full: the stream must end without producing another byte.
            try expectEndOfStream(&stream, produced: produced, failure: failure)
            return produced
        }
        if stream.avail_in == 0 && consumed == source.count && result == Z_BUF_ERROR {
            throw failure("compressed data ended after \(produced) of \(destination.count) bytes")
        }
    }
}

/// Runs inflate with a one-byte output window and requires the stream to end there.
private func expectEndOfStream(
    _ stream: inout z_stream, produced: Int, failure: (String) -> CheckpointError
) throws {
    var extra: UInt8 = 0
    try withUnsafeMutablePointer(to: &extra) { pointer in
        stream.next_out = pointer
        stream.avail_out = 1
        let result = inflate(&stream, Z_NO_FLUSH)
        if stream.avail_out == 0 {
            throw failure("member inflates past its declared size of \(produced) bytes")
        }
        if result != Z_STREAM_END {
            throw failure("stream does not end at the declared size of \(produced) bytes (zlib status \(result))")
        }
    }
}

/// A raw deflate compressor that streams its output through `sink`.
final class DeflateStream {
    private var stream = z_stream()
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)
    private var open = false

    private let file: String
    private let key: String

    /// Starts a stream at zlib `level`; `file` and `key` name the member in errors.
    init(level: Int32, file: String, key: String) throws {
        self.file = file
        self.key = key
        let status = deflateInit2_(
            &stream, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY, zlibVersion(),
            Int32(MemoryLayout<z_stream>.size))
        if status != Z_OK {
            throw CheckpointError.compressionFailed(file: file, key: key, reason: "deflateInit2 returned \(status)")
        }
        open = true
    }

    deinit {
        if open {
            deflateEnd(&stream)
        }
    }

    /// Compresses `bytes`; with `finish`, also flushes the end of the stream.
    func compress(
        _ bytes: UnsafeRawBufferPointer, finish: Bool, sink: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        var offset = 0
        repeat {
            let piece = min(zlibPiece, bytes.count - offset)
            let isLastPiece = offset + piece == bytes.count
            stream.next_in = bytes.baseAddress.map {
                UnsafeMutablePointer(mutating: ($0 + offset).assumingMemoryBound(to: Bytef.self))
            }
            stream.avail_in = uInt(piece)
            offset += piece
            let flush = finish && isLastPiece ? Z_FINISH : Z_NO_FLUSH

            // Drain the output until zlib has consumed the piece (or finished the stream).
            while true {
                let (result, written) = buffer.withUnsafeMutableBytes { out -> (Int32, Int) in
                    stream.next_out = out.baseAddress?.assumingMemoryBound(to: Bytef.self)
                    stream.avail_out = uInt(out.count)
                    let result = deflate(&stream, flush)
                    return (result, out.count - Int(stream.avail_out))
                }
                if written > 0 {
                    try buffer.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[0..<written])) }
                }
                if result == Z_STREAM_END { break }
                if result != Z_OK && result != Z_BUF_ERROR {
                    throw CheckpointError.compressionFailed(file: file, key: key, reason: "deflate returned \(result)")
                }
                if flush == Z_NO_FLUSH && stream.avail_in == 0 && written < buffer.count { break }
            }
        } while offset < bytes.count
    }
}
