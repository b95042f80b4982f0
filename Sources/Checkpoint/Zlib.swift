import CZlib

/// CRC-32 (the ZIP polynomial) of `bytes`, continuing from `crc` (0 for a fresh checksum).
func crc32(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
    guard let base = bytes.baseAddress, !bytes.isEmpty else { return crc }
    let result = crc32_z(UInt(crc), base.assumingMemoryBound(to: Bytef.self), z_size_t(bytes.count))
    return UInt32(truncatingIfNeeded: result)
}

/// zlib's avail_in and avail_out are 32-bit, so large buffers are fed in pieces of at most 1 GiB.
private let zlibPiece = 1 << 30

/// End-of-output rule for `inflateRaw`.
enum InflateMode {
    /// The stream must end exactly when the buffer is full.
    case whole
    /// Stop once the buffer is full (used to read only an NPY header).
    case prefix
}

/// Inflates a raw deflate stream (ZIP method 8, no zlib header) into `destination`.
///
/// Never writes past `destination`, so a member that claims a small size but inflates to a huge
/// one (a deflate bomb) costs at most the declared size. In `.whole` mode, a stream that goes on
/// past the buffer, a stream that ends early, and input that ends before the stream are errors.
/// Returns the number of bytes written. Errors carry `file` and `key`.
@discardableResult
func inflateRaw(
    _ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer,
    mode: InflateMode, file: String, key: String
) throws -> Int {
    func failure(_ reason: String) -> CheckpointError {
        .decompressionFailed(file: file, key: key, reason: reason)
    }

    // zlib stores the stream's address in its state and checks it on every call, so the stream
    // lives at one fixed heap address.
    let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    stream.initialize(to: z_stream())
    defer { stream.deallocate() }
    let status = inflateInit2_(stream, -MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
    if status != Z_OK {
        throw failure("inflateInit2 returned \(status)")
    }
    defer { inflateEnd(stream) }

    // Once `destination` is full, inflate writes into this byte: any output there means the
    // stream is longer than declared.
    let overflowByte = UnsafeMutablePointer<Bytef>.allocate(capacity: 1)
    defer { overflowByte.deallocate() }

    let input = source.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: Bytef.self)) }
    let output = destination.baseAddress?.assumingMemoryBound(to: Bytef.self)
    var consumed = 0
    var produced = 0

    while true {
        // Refill zlib's 32-bit windows onto the input and output buffers.
        if stream.pointee.avail_in == 0, let input, consumed < source.count {
            let piece = min(zlibPiece, source.count - consumed)
            stream.pointee.next_in = input + consumed
            stream.pointee.avail_in = uInt(piece)
            consumed += piece
        }
        let full = produced == destination.count
        if full && mode == .prefix {
            return produced
        }
        if full {
            stream.pointee.next_out = overflowByte
            stream.pointee.avail_out = 1
        } else if stream.pointee.avail_out == 0, let output {
            let piece = min(zlibPiece, destination.count - produced)
            stream.pointee.next_out = output + produced
            stream.pointee.avail_out = uInt(piece)
        }

        let before = stream.pointee.avail_out
        let result = inflate(stream, Z_NO_FLUSH)
        let written = Int(before - stream.pointee.avail_out)
        if full && written > 0 {
            throw failure("member inflates past its declared size of \(produced) bytes")
        }
        produced += written

        switch result {
        case Z_STREAM_END:
            if mode == .whole && produced != destination.count {
                throw failure("stream ended after \(produced) bytes, expected the declared \(destination.count)")
            }
            return produced
        case Z_OK, Z_BUF_ERROR:
            break
        case Z_DATA_ERROR:
            let message = stream.pointee.msg.map { String(cString: $0) } ?? "invalid deflate data"
            throw failure("\(message) after \(produced) bytes")
        default:
            throw failure("zlib inflate returned \(result) after \(produced) bytes")
        }

        // Z_BUF_ERROR with all input consumed: the stream needs bytes the member does not have.
        if result == Z_BUF_ERROR && stream.pointee.avail_in == 0 && consumed == source.count {
            throw failure("compressed data ended after \(produced) of \(destination.count) bytes")
        }
    }
}

/// A raw deflate compressor that streams its output through `sink`.
final class DeflateStream {
    /// Heap-allocated because zlib checks that the stream never moves.
    private let stream: UnsafeMutablePointer<z_stream>
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)

    private let file: String
    private let key: String

    /// Starts a stream at zlib `level`; `file` and `key` name the member in errors.
    init(level: Int32, file: String, key: String) throws {
        self.file = file
        self.key = key
        stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let status = deflateInit2_(
            stream, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY, zlibVersion(),
            Int32(MemoryLayout<z_stream>.size))
        if status != Z_OK {
            stream.deallocate()
            throw CheckpointError.compressionFailed(file: file, key: key, reason: "deflateInit2 returned \(status)")
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
    }

    /// Compresses `bytes`; with `finish`, also flushes the end of the stream.
    func compress(
        _ bytes: UnsafeRawBufferPointer, finish: Bool, sink: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        var offset = 0
        repeat {
            let piece = min(zlibPiece, bytes.count - offset)
            let isLastPiece = offset + piece == bytes.count
            stream.pointee.next_in = bytes.baseAddress.map {
                UnsafeMutablePointer(mutating: ($0 + offset).assumingMemoryBound(to: Bytef.self))
            }
            stream.pointee.avail_in = uInt(piece)
            offset += piece
            let flush = finish && isLastPiece ? Z_FINISH : Z_NO_FLUSH

            // Drain the output until zlib has consumed the piece (or finished the stream).
            while true {
                let (result, written) = buffer.withUnsafeMutableBytes { out -> (Int32, Int) in
                    stream.pointee.next_out = out.baseAddress?.assumingMemoryBound(to: Bytef.self)
                    stream.pointee.avail_out = uInt(out.count)
                    let result = deflate(stream, flush)
                    return (result, out.count - Int(stream.pointee.avail_out))
                }
                if written > 0 {
                    try buffer.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[0..<written])) }
                }
                if result == Z_STREAM_END { break }
                if result != Z_OK && result != Z_BUF_ERROR {
                    throw CheckpointError.compressionFailed(file: file, key: key, reason: "deflate returned \(result)")
                }
                if flush == Z_NO_FLUSH && stream.pointee.avail_in == 0 && written < buffer.count { break }
            }
        } while offset < bytes.count
    }
}
