/// A dense, row-major f32 tensor with value semantics.
///
/// Storage is copy-on-write: copies share one buffer until one of them is written. Slices along
/// the leading axis (`slice(_:)`, `rows(_:)`) and reshapes share the buffer too, so taking one
/// layer of a stacked `[depth, ...]` parameter costs nothing. A tensor may also borrow memory
/// that another object owns (a memory-mapped checkpoint); such a tensor is read-only in place
/// and is copied on its first write.
public struct Tensor {
    /// Extent of each axis, outermost first.
    public private(set) var shape: [Int]
    /// Number of elements (the product of `shape`).
    public let count: Int

    var storage: TensorStorage
    var offset: Int

    // MARK: - Creation

    /// Creates a tensor filled with zeros.
    public init(zeros shape: [Int]) {
        self.init(uninitialized: shape)
        storage.base.advanced(by: offset).update(repeating: 0, count: count)
    }

    /// Creates a tensor with every element equal to `value`.
    public init(shape: [Int], repeating value: Float) {
        self.init(uninitialized: shape)
        storage.base.advanced(by: offset).update(repeating: value, count: count)
    }

    /// Creates a tensor from row-major values; `values.count` must equal the product of `shape`.
    public init(shape: [Int], values: [Float]) {
        self.init(uninitialized: shape)
        if values.count != count {
            fatalError("Tensor(shape: \(shape), values:): expected \(count) values, got \(values.count)")
        }
        values.withUnsafeBufferPointer { source in
            storage.base.update(from: source.baseAddress!, count: count)
        }
    }

    /// Creates a tensor whose elements are not initialised; the caller must write all of them.
    public init(uninitialized shape: [Int]) {
        let count = Tensor.elementCount(shape)
        self.shape = shape
        self.count = count
        self.storage = TensorStorage(capacity: count)
        self.offset = 0
    }

    /// Wraps f32 memory owned by `owner` without copying.
    ///
    /// The memory must stay valid and unchanged while `owner` is alive; the tensor keeps `owner`
    /// alive. Writing to the tensor copies the values first, so the borrowed memory is never
    /// modified.
    public init(unsafeBorrowing values: UnsafeBufferPointer<Float>, shape: [Int], owner: AnyObject) {
        let count = Tensor.elementCount(shape)
        if values.count != count {
            fatalError("Tensor(unsafeBorrowing:): shape \(shape) needs \(count) values, buffer has \(values.count)")
        }
        self.shape = shape
        self.count = count
        self.storage = TensorStorage(borrowing: UnsafeMutablePointer(mutating: values.baseAddress!), capacity: count, owner: owner)
        self.offset = 0
    }

    init(storage: TensorStorage, offset: Int, shape: [Int]) {
        self.storage = storage
        self.offset = offset
        self.shape = shape
        self.count = Tensor.elementCount(shape)
    }

    static func elementCount(_ shape: [Int]) -> Int {
        var product = 1
        for extent in shape {
            if extent < 0 { fatalError("Tensor: negative extent in shape \(shape)") }
            product *= extent
        }
        return product
    }

    // MARK: - Shape

    /// Number of axes.
    public var rank: Int { shape.count }

    /// Returns the same values with another shape of equal element count, without copying.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        let newCount = Tensor.elementCount(newShape)
        if newCount != count {
            fatalError("Tensor.reshaped: cannot view shape \(shape) (\(count) elements) as \(newShape) (\(newCount))")
        }
        return Tensor(storage: storage, offset: offset, shape: newShape)
    }

    /// Returns element `index` of the leading axis (shape `shape.dropFirst()`), without copying.
    public func slice(_ index: Int) -> Tensor {
        if rank == 0 || index < 0 || index >= shape[0] {
            fatalError("Tensor.slice: index \(index) out of range for shape \(shape)")
        }
        let inner = Array(shape.dropFirst())
        let stride = Tensor.elementCount(inner)
        return Tensor(storage: storage, offset: offset + index * stride, shape: inner)
    }

    /// Returns a range of the leading axis, without copying.
    public func rows(_ range: Range<Int>) -> Tensor {
        if rank == 0 || range.lowerBound < 0 || range.upperBound > shape[0] {
            fatalError("Tensor.rows: range \(range) out of range for shape \(shape)")
        }
        var newShape = shape
        newShape[0] = range.count
        let stride = rank == 1 ? 1 : Tensor.elementCount(Array(shape.dropFirst()))
        return Tensor(storage: storage, offset: offset + range.lowerBound * stride, shape: newShape)
    }

    // MARK: - Element access

    /// The values in row-major order (a copy).
    public var scalars: [Float] {
        Array(UnsafeBufferPointer(start: storage.base + offset, count: count))
    }

    /// Element at a flat row-major index. Meant for tests and small bookkeeping, not hot loops.
    public subscript(flat index: Int) -> Float {
        get {
            if index < 0 || index >= count { fatalError("Tensor[flat: \(index)] out of range for \(count) elements") }
            return storage.base[offset + index]
        }
        set {
            if index < 0 || index >= count { fatalError("Tensor[flat: \(index)] out of range for \(count) elements") }
            makeUniqueAndWritable()
            storage.base[offset + index] = newValue
        }
    }

    /// Calls `body` with the values; the pointer is valid only inside `body`.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.base + offset, count: count))
    }

    /// Calls `body` with writable values, copying the storage first if it is shared or borrowed.
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        makeUniqueAndWritable()
        return try body(UnsafeMutableBufferPointer(start: storage.base + offset, count: count))
    }

    /// Read pointer for kernels in this module; valid while `self` is alive.
    var pointer: UnsafePointer<Float> { UnsafePointer(storage.base + offset) }

    /// Write pointer for kernels in this module; makes the storage unique first.
    mutating func mutablePointer() -> UnsafeMutablePointer<Float> {
        makeUniqueAndWritable()
        return storage.base + offset
    }

    private mutating func makeUniqueAndWritable() {
        if isKnownUniquelyReferenced(&storage) && storage.owner == nil { return }
        let fresh = TensorStorage(capacity: count)
        fresh.base.update(from: storage.base + offset, count: count)
        storage = fresh
        offset = 0
    }
}

/// An aligned f32 buffer, either allocated here or borrowed from `owner`.
final class TensorStorage {
    let base: UnsafeMutablePointer<Float>
    let capacity: Int
    /// The object that owns borrowed memory; nil when this storage allocated `base`.
    let owner: AnyObject?

    init(capacity: Int) {
        let raw = BufferPool.allocate(byteCount: max(1, capacity) * 4)
        self.base = raw.bindMemory(to: Float.self, capacity: max(1, capacity))
        self.capacity = capacity
        self.owner = nil
    }

    init(borrowing base: UnsafeMutablePointer<Float>, capacity: Int, owner: AnyObject) {
        self.base = base
        self.capacity = capacity
        self.owner = owner
    }

    deinit {
        if owner == nil { BufferPool.release(UnsafeMutableRawPointer(base), byteCount: max(1, capacity) * 4) }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let preview = scalars.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(shape: \(shape), values: [\(preview)\(count > 8 ? ", ..." : "")])"
    }
}

extension Tensor: @unchecked Sendable {}
