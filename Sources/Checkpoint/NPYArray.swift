import TensorCore

/// One array read from an NPY file or an NPZ member.
///
/// The bytes of a stored NPZ member or an `.npy` file point into the file's read-only memory
/// mapping, which stays alive while the array (or a copy of it) exists. Nothing is copied until
/// an accessor such as `floats()` converts the elements.
///
/// Alignment: inside a ZIP archive a member's data can start at any byte offset, so the raw
/// bytes of an array from a file palitrain did not write may be unaligned for its element type.
/// `withUnsafeBytes` hands out the raw bytes as they are. The typed accessors handle any
/// alignment. `isAligned` is true when the raw bytes may be bound to the element type directly.
/// Files written by `NPZWriter` and `writeNPY` align every array's data to 64 bytes.
public struct NPYArray: @unchecked Sendable {
    /// The array's key: the member name without `.npy` and without a leading `params/`.
    public let key: String

    /// The file the array was read from, for error messages.
    public let file: String

    /// Element type as stored.
    public let elementType: NPYDType

    public let shape: [Int]

    private let storage: ByteStorage
    private let offset: Int
    private let byteCount: Int

    /// The TensorCore storage type of a floating-point array, nil for integer and bool arrays.
    public var dtype: DType? { elementType.floatDType }

    /// Number of elements, 1 for a scalar (shape `()`).
    public var count: Int { shape.reduce(1, *) }

    /// True when the bytes lie in the read-only memory mapping of the file: an `.npy` file, or a
    /// stored member of an archive, opened by path. False for a heap copy, such as a deflated
    /// member or a file read from memory.
    public var isMemoryMapped: Bool { storage.isFileMapping }

    /// True when the data's address is a multiple of the element size.
    public var isAligned: Bool {
        storage.base.map { Int(bitPattern: $0 + offset) % elementType.byteSize == 0 } ?? true
    }

    init(key: String, file: String, elementType: NPYDType, shape: [Int], storage: ByteStorage, offset: Int) {
        self.key = key
        self.file = file
        self.elementType = elementType
        self.shape = shape
        self.storage = storage
        self.offset = offset
        self.byteCount = shape.reduce(1, *) * elementType.byteSize
    }

    /// Creates an array that owns a copy of `bytes`, which must hold exactly
    /// `prod(shape) * elementType.byteSize` little-endian bytes.
    public init(key: String, elementType: NPYDType, shape: [Int], bytes: UnsafeRawBufferPointer) throws {
        let expected = try checkedSizes(shape: shape, elementType: elementType, file: "<memory>", key: key).bytes
        if bytes.count != expected {
            throw CheckpointError.invalidWrite(
                file: "<memory>", key: key,
                expected: "\(expected) bytes for shape \(shapeText(shape)) of \(elementType.descr)",
                found: "\(bytes.count) bytes")
        }
        let storage = ByteStorage.allocate(count: expected) { destination in
            destination.copyMemory(from: bytes)
        }
        self.init(key: key, file: "<memory>", elementType: elementType, shape: shape, storage: storage, offset: 0)
    }

    /// Creates an array of floats stored as `dtype` (rounded to nearest even for f16 and bf16).
    public init(key: String, floats: [Float], shape: [Int], as dtype: DType) throws {
        let count = try checkedSizes(shape: shape, elementType: NPYDType(dtype), file: "<memory>", key: key).count
        if floats.count != count {
            throw CheckpointError.invalidWrite(
                file: "<memory>", key: key, expected: "\(count) values for shape \(shapeText(shape))",
                found: "\(floats.count) values")
        }
        let storage = ByteStorage.allocate(count: count * dtype.byteSize) { destination in
            floats.withUnsafeBufferPointer { source in
                if let base = source.baseAddress, let target = destination.baseAddress {
                    convertFromFloat(base, count: count, to: dtype, into: target)
                }
            }
        }
        self.init(key: key, file: "<memory>", elementType: NPYDType(dtype), shape: shape, storage: storage, offset: 0)
    }

    /// Creates an int32 array.
    public init(key: String, int32s: [Int32], shape: [Int]) throws {
        self = try int32s.withUnsafeBytes { bytes in
            try NPYArray(key: key, elementType: .int32, shape: shape, bytes: bytes)
        }
    }

    /// Calls `body` with the raw little-endian element bytes, which may be unaligned
    /// (see `isAligned`). The pointer is valid only inside `body`.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let start = storage.base.map { $0 + offset }
        return try withExtendedLifetime(storage) {
            try body(UnsafeRawBufferPointer(start: start, count: byteCount))
        }
    }
}

/// Multiplies the dimensions and the element size, rejecting negative sizes and overflow.
/// Returns the element count and the byte count.
func checkedSizes(shape: [Int], elementType: NPYDType, file: String, key: String) throws -> (count: Int, bytes: Int) {
    var count = 1
    var overflow = false
    for size in shape {
        let product = count.multipliedReportingOverflow(by: size)
        overflow = overflow || size < 0 || product.overflow
        count = product.partialValue
    }
    let bytes = count.multipliedReportingOverflow(by: elementType.byteSize)
    if overflow || bytes.overflow {
        throw CheckpointError.invalidWrite(
            file: file, key: key, expected: "non-negative dimensions whose byte count fits in Int",
            found: "shape \(shapeText(shape)) of \(elementType.descr)")
    }
    return (count, bytes.partialValue)
}
