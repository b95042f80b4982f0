import CZstd

/// A zstd compression and decompression context pair, reused across frames of one rank.
///
/// Contexts keep their tables and buffers between calls, which saves an allocation of about
/// 1 MiB per frame. Not thread-safe: one instance per rank.
final class ZstdContext {
    let level: Int32
    private let compression: OpaquePointer
    private let decompression: OpaquePointer

    init(level: Int32) throws {
        guard let compression = ZSTD_createCCtx(), let decompression = ZSTD_createDCtx() else {
            throw CommError.invalidArgument("zstd could not allocate its contexts (out of memory)")
        }
        self.level = level
        self.compression = compression
        self.decompression = decompression
    }

    deinit {
        ZSTD_freeCCtx(compression)
        ZSTD_freeDCtx(decompression)
    }

    /// Returns the largest compressed size of `byteCount` input bytes.
    static func compressBound(_ byteCount: Int) -> Int {
        ZSTD_compressBound(byteCount)
    }

    /// Compresses `source` into `destination` and returns the compressed size, or throws the
    /// zstd error text.
    func compress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) throws -> Int {
        let result = ZSTD_compressCCtx(compression, destination.baseAddress, destination.count, source.baseAddress, source.count, level)
        if ZSTD_isError(result) != 0 {
            throw ZstdFailure(message: String(cString: ZSTD_getErrorName(result)))
        }
        return result
    }

    /// Decompresses `source` into `destination` and returns the decompressed size, or throws
    /// the zstd error text (corrupt input, or output larger than `destination`).
    func decompress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) throws -> Int {
        let result = ZSTD_decompressDCtx(decompression, destination.baseAddress, destination.count, source.baseAddress, source.count)
        if ZSTD_isError(result) != 0 {
            throw ZstdFailure(message: String(cString: ZSTD_getErrorName(result)))
        }
        return result
    }
}

/// A zstd error text. The caller turns it into a `CommError` with the rank and bucket.
struct ZstdFailure: Error {
    let message: String
}
