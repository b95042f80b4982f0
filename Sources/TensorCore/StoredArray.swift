#if canImport(Glibc)
import Glibc
#endif

/// A parameter array kept in its stored dtype (f32, f16 or bf16).
///
/// The bytes are either owned by this value or borrowed from an `owner` object, such as a
/// memory-mapped checkpoint file, that is kept alive as long as any `StoredArray` refers to it.
/// Compute is f32, so layers call `toTensor()` or `expand(into:)` just before they need the
/// values: f32 data that is 4-byte aligned is borrowed without a copy, anything else is
/// converted into an f32 buffer.
public struct StoredArray: @unchecked Sendable {
    /// Element type of the stored bytes.
    public let dtype: DType
    /// Extent of each axis, outermost first.
    public let shape: [Int]
    /// Number of elements.
    public let count: Int
    /// True when the bytes lie in a read-only file mapping, so that `releaseResidentPages()`
    /// may drop them from memory and the kernel reads them back from the file on the next access.
    public let isFileMapped: Bool

    private let bytes: UnsafeRawBufferPointer
    private let owner: AnyObject

    /// Wraps `bytes` (row-major, little-endian) without copying; `owner` keeps them valid.
    ///
    /// Pass `fileMapped: true` only for bytes inside a read-only (`PROT_READ`) mapping of a
    /// regular file: releasing the pages of any other memory would lose its values.
    public init(
        dtype: DType, shape: [Int], unsafeBytes bytes: UnsafeRawBufferPointer, owner: AnyObject, fileMapped: Bool = false
    ) throws(TensorCoreError) {
        let count = Tensor.elementCount(shape)
        if bytes.count != count * dtype.byteSize {
            throw .byteCountMismatch(shape: shape, dtype: dtype, expected: count * dtype.byteSize, found: bytes.count)
        }
        self.dtype = dtype
        self.shape = shape
        self.count = count
        self.isFileMapped = fileMapped
        self.bytes = bytes
        self.owner = owner
    }

    /// Copies raw little-endian bytes into an array that owns them.
    public init(dtype: DType, shape: [Int], bytes source: [UInt8]) throws(TensorCoreError) {
        let count = Tensor.elementCount(shape)
        if source.count != count * dtype.byteSize {
            throw .byteCountMismatch(shape: shape, dtype: dtype, expected: count * dtype.byteSize, found: source.count)
        }
        let buffer = OwnedBytes(byteCount: source.count)
        source.withUnsafeBytes { buffer.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        self.dtype = dtype
        self.shape = shape
        self.count = count
        self.isFileMapped = false
        self.bytes = UnsafeRawBufferPointer(start: buffer.pointer, count: source.count)
        self.owner = buffer
    }

    /// Stores `tensor` as `dtype` (rounding to nearest even for f16 and bf16).
    public init(_ tensor: Tensor, dtype: DType) {
        let buffer = OwnedBytes(byteCount: tensor.count * dtype.byteSize)
        convertFromFloat(tensor.pointer, count: tensor.count, to: dtype, into: buffer.pointer)
        self.dtype = dtype
        self.shape = tensor.shape
        self.count = tensor.count
        self.isFileMapped = false
        self.bytes = UnsafeRawBufferPointer(start: buffer.pointer, count: tensor.count * dtype.byteSize)
        self.owner = buffer
    }

    private init(dtype: DType, shape: [Int], bytes: UnsafeRawBufferPointer, owner: AnyObject, fileMapped: Bool) {
        self.dtype = dtype
        self.shape = shape
        self.count = Tensor.elementCount(shape)
        self.isFileMapped = fileMapped
        self.bytes = bytes
        self.owner = owner
    }

    // MARK: - Slicing

    /// Returns element `index` of the leading axis, without copying.
    public func slice(_ index: Int) -> StoredArray {
        if shape.isEmpty || index < 0 || index >= shape[0] {
            fatalError("StoredArray.slice: index \(index) out of range for shape \(shape)")
        }
        let inner = Array(shape.dropFirst())
        let byteStride = Tensor.elementCount(inner) * dtype.byteSize
        let start = bytes.baseAddress! + index * byteStride
        return StoredArray(dtype: dtype, shape: inner, bytes: UnsafeRawBufferPointer(start: start, count: byteStride), owner: owner,
                           fileMapped: isFileMapped)
    }

    /// Returns a range of the leading axis, without copying.
    public func rows(_ range: Range<Int>) -> StoredArray {
        if shape.isEmpty || range.lowerBound < 0 || range.upperBound > shape[0] {
            fatalError("StoredArray.rows: range \(range) out of range for shape \(shape)")
        }
        var newShape = shape
        newShape[0] = range.count
        let rowBytes = Tensor.elementCount(Array(shape.dropFirst())) * dtype.byteSize
        let start = bytes.baseAddress! + range.lowerBound * rowBytes
        return StoredArray(dtype: dtype, shape: newShape, bytes: UnsafeRawBufferPointer(start: start, count: range.count * rowBytes), owner: owner,
                           fileMapped: isFileMapped)
    }

    /// The same bytes viewed with another shape of equal element count, without copying.
    public func reshaped(_ newShape: [Int]) -> StoredArray {
        if Tensor.elementCount(newShape) != count {
            fatalError("StoredArray.reshaped: cannot view shape \(shape) as \(newShape)")
        }
        return StoredArray(dtype: dtype, shape: newShape, bytes: bytes, owner: owner, fileMapped: isFileMapped)
    }

    /// Address of the first byte, for kernels in this module; valid while `self` is alive.
    var baseAddress: UnsafeRawPointer { bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 64)! }

    /// The object that keeps the bytes valid.
    var lifetimeOwner: AnyObject { owner }

    // MARK: - Expansion to f32

    /// True when the values can be used as f32 in place, without conversion or copy.
    public var isBorrowableAsFloat: Bool {
        dtype == .f32 && Int(bitPattern: bytes.baseAddress) % MemoryLayout<Float>.alignment == 0
    }

    /// Returns the values as an f32 tensor: borrowed when `isBorrowableAsFloat`, else converted.
    public func toTensor() -> Tensor {
        if isBorrowableAsFloat {
            let floats = bytes.assumingMemoryBound(to: Float.self)
            return Tensor(unsafeBorrowing: floats, shape: shape, owner: owner)
        }
        var tensor = Tensor(uninitialized: shape)
        convertToFloat(bytes.baseAddress!, dtype: dtype, count: count, into: tensor.mutablePointer())
        return tensor
    }

    /// Converts the values to f32 into `scratch`, reusing its buffer when the shape matches and
    /// nobody else holds it; otherwise `scratch` is replaced by a new tensor.
    public func expand(into scratch: inout Tensor) {
        if scratch.shape != shape { scratch = Tensor(uninitialized: shape) }
        convertToFloat(bytes.baseAddress!, dtype: dtype, count: count, into: scratch.mutablePointer())
    }

    /// True when the values are bf16 at an even address, usable by the bf16 products in place.
    public var isUsableAsBF16: Bool {
        dtype == .bf16 && Int(bitPattern: baseAddress) % 2 == 0
    }

    /// Returns the values rounded to bf16 in new memory (round to nearest even), or `self`
    /// when they are bf16 already at an even address.
    ///
    /// The memory comes from `BufferPool`, so converting layers of one size again and again
    /// reuses the same buffers instead of faulting in fresh pages each time.
    public func roundedToBF16() -> StoredArray {
        if isUsableAsBF16 { return self }
        let buffer = PooledBytes(byteCount: count * 2)
        let words = buffer.pointer.bindMemory(to: UInt16.self, capacity: max(1, count))
        let source = baseAddress
        let sourceType = dtype
        withExtendedLifetime(owner) {
            Threading.parallelFor(count, minimumChunk: 1 << 16) { range in
                // Through a small f32 buffer, so both steps stay vectorised and in cache.
                let block = 4096
                var wide = [Float](repeating: 0, count: block)
                wide.withUnsafeMutableBufferPointer { wide in
                    var start = range.lowerBound
                    while start < range.upperBound {
                        let length = min(block, range.upperBound - start)
                        convertToFloat(source + start * sourceType.byteSize, dtype: sourceType, count: length, into: wide.baseAddress!)
                        Kernels.roundChunkToBF16(wide.baseAddress!, count: length, into: words + start)
                        start += length
                    }
                }
            }
        }
        return StoredArray(dtype: .bf16, shape: shape, bytes: UnsafeRawBufferPointer(start: buffer.pointer, count: count * 2), owner: buffer,
                           fileMapped: false)
    }

    // MARK: - Resident pages

    /// Drops the pages that hold this array from the process's resident set, with
    /// `madvise(MADV_DONTNEED)`, when the bytes are a read-only file mapping
    /// (`isFileMapped`). Returns whether pages were released.
    ///
    /// The values do not change: the next read faults each page in again from the kernel's
    /// page cache, or from the file when the cache no longer contains it. The range is widened to
    /// whole pages, so a page shared with a neighbouring array of the same mapping is dropped
    /// as well and comes back the same way. Memory that the array owns, or borrows from anything
    /// other than a file mapping, is left alone and the call returns false, because there
    /// MADV_DONTNEED would replace the values with zeros.
    @discardableResult
    public func releaseResidentPages() -> Bool {
        guard isFileMapped, let base = bytes.baseAddress, bytes.count > 0 else { return false }
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: base) & ~(pageSize - 1)
        let end = (Int(bitPattern: base) + bytes.count + pageSize - 1) & ~(pageSize - 1)
        // A mapping covers whole pages, so [start, end) stays inside the mapping of `base`.
        return withExtendedLifetime(owner) {
            madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_DONTNEED) == 0
        }
    }

    /// Calls `body` with the stored bytes; the pointer is valid only inside `body`.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(owner) { try body(bytes) }
    }
}

/// A heap byte buffer that frees itself.
final class OwnedBytes {
    let pointer: UnsafeMutableRawPointer

    init(byteCount: Int) {
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(1, byteCount), alignment: 64)
    }

    deinit { pointer.deallocate() }
}

/// A byte buffer from `BufferPool` that returns itself to the pool.
final class PooledBytes {
    let pointer: UnsafeMutableRawPointer
    private let byteCount: Int

    init(byteCount: Int) {
        self.byteCount = max(1, byteCount)
        pointer = BufferPool.allocate(byteCount: self.byteCount)
    }

    deinit { BufferPool.release(pointer, byteCount: byteCount) }
}

/// Errors raised by TensorCore when data handed to it does not match its description.
public enum TensorCoreError: Error, CustomStringConvertible, Equatable {
    /// A raw byte buffer is not the size that its shape and dtype need.
    case byteCountMismatch(shape: [Int], dtype: DType, expected: Int, found: Int)

    public var description: String {
        switch self {
        case .byteCountMismatch(let shape, let dtype, let expected, let found):
            return "array of shape \(shape) and dtype \(dtype) needs \(expected) bytes, but \(found) were given; "
                + "check that the dtype and shape were read from the same array header as the data"
        }
    }
}
