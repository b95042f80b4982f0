/// Gradient storage for one parameter, with reference semantics.
///
/// Layer backward passes accumulate (`+=`) into slices of these buffers, so a buffer must be
/// shared, not copied: that is why this is a class and not a `Tensor`. Zero it with `zero()`
/// before the first micro-batch of a step.
public final class GradientBuffer: @unchecked Sendable {
    /// Extent of each axis, as in the parameter this buffer belongs to.
    public let shape: [Int]
    /// Number of elements.
    public let count: Int

    let base: UnsafeMutablePointer<Float>

    /// Creates a buffer of zeros.
    public init(zeros shape: [Int]) {
        self.shape = shape
        self.count = Tensor.elementCount(shape)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * 4, alignment: 64)
        self.base = raw.bindMemory(to: Float.self, capacity: max(1, count))
        zero()
    }

    deinit { UnsafeMutableRawPointer(base).deallocate() }

    /// Sets every element to zero.
    public func zero() {
        let base = self.base
        Threading.parallelFor(count, minimumChunk: 1 << 18) { range in
            (base + range.lowerBound).update(repeating: 0, count: range.count)
        }
    }

    /// The whole buffer as an accumulation target.
    public var whole: GradientSlice {
        GradientSlice(buffer: self, offset: 0, shape: shape)
    }

    /// Element `index` of the leading axis (one layer of a stacked parameter).
    public func slice(_ index: Int) -> GradientSlice {
        if shape.isEmpty || index < 0 || index >= shape[0] {
            fatalError("GradientBuffer.slice: index \(index) out of range for shape \(shape)")
        }
        let inner = Array(shape.dropFirst())
        return GradientSlice(buffer: self, offset: index * Tensor.elementCount(inner), shape: inner)
    }

    /// A copy of the current values.
    public func snapshot() -> Tensor {
        var tensor = Tensor(uninitialized: shape)
        tensor.mutablePointer().update(from: base, count: count)
        return tensor
    }

    /// Calls `body` with the values; the pointer is valid only inside `body`.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(UnsafeBufferPointer(start: base, count: count)) }
    }

    /// Calls `body` with writable values (for all-reduce, clipping and scaling in place).
    public func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(UnsafeMutableBufferPointer(start: base, count: count)) }
    }
}

/// A window of a `GradientBuffer` that kernels accumulate into; writes go to the buffer.
public struct GradientSlice {
    let buffer: GradientBuffer
    let offset: Int
    /// Extent of each axis of the window.
    public let shape: [Int]
    /// Number of elements in the window.
    public var count: Int { Tensor.elementCount(shape) }

    var pointer: UnsafeMutablePointer<Float> { buffer.base + offset }

    /// The same window viewed with another shape of equal element count.
    public func reshaped(_ newShape: [Int]) -> GradientSlice {
        if Tensor.elementCount(newShape) != count {
            fatalError("GradientSlice.reshaped: cannot view \(shape) as \(newShape)")
        }
        return GradientSlice(buffer: buffer, offset: offset, shape: newShape)
    }

    /// Element `index` of the leading axis of the window.
    public func slice(_ index: Int) -> GradientSlice {
        if shape.isEmpty || index < 0 || index >= shape[0] {
            fatalError("GradientSlice.slice: index \(index) out of range for shape \(shape)")
        }
        let inner = Array(shape.dropFirst())
        return GradientSlice(buffer: buffer, offset: offset + index * Tensor.elementCount(inner), shape: inner)
    }

    /// A copy of the values in the window.
    public func snapshot() -> Tensor {
        var tensor = Tensor(uninitialized: shape)
        tensor.mutablePointer().update(from: pointer, count: count)
        return withExtendedLifetime(buffer) { tensor }
    }
}
