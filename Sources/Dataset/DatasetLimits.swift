/// Bounds on untrusted dataset input. Each error a limit triggers names the setting and the
/// command-line option that raises it.
public struct DatasetLimits: Sendable, Equatable {
    /// Largest image accepted, in pixels (width × height), read from the file header before any
    /// pixel buffer is allocated: a guard against decompression bombs. Default 100,000,000
    /// (10,000 × 10,000; 300 MB as 8-bit RGB). Option `--max-image-pixels`.
    public var maxImagePixels: Int = 100_000_000

    /// Largest image file read into memory, in bytes. Default 256 MiB. Option `--max-image-bytes`.
    public var maxImageFileBytes: Int = 256 << 20

    /// Longest JSONL line, in bytes, enforced while reading so that a file without newlines is
    /// never read whole. Default 1 MiB; a record with a few hundred boxes is under 20 KB.
    /// Option `--max-line-bytes`.
    public var maxLineBytes: Int = 1 << 20

    /// How many problems a report lists before it only counts them. Default 50.
    /// Option `--max-problems`.
    public var maxProblemsListed: Int = 50

    public init() {}

    public init(maxImagePixels: Int, maxImageFileBytes: Int, maxLineBytes: Int, maxProblemsListed: Int) {
        self.maxImagePixels = maxImagePixels
        self.maxImageFileBytes = maxImageFileBytes
        self.maxLineBytes = maxLineBytes
        self.maxProblemsListed = maxProblemsListed
    }
}
