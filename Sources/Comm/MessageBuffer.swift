/// A heap block of bytes with a stable address, used for point-to-point messages.
///
/// MPI reads and writes a message's memory while a non-blocking request is pending, so the
/// memory must not move or be freed under it. A Swift array gives no such guarantee outside a
/// `withUnsafeBytes` closure, but this class owns its block for its whole lifetime. If an
/// error leaves a request pending on a buffer, `MPICommunicator` keeps that buffer alive
/// until the process exits (`retainForever()`).
public final class MessageBuffer: @unchecked Sendable {
    /// Number of bytes in the message, at most `capacity`.
    public internal(set) var count: Int
    /// Number of bytes allocated.
    public let capacity: Int
    let baseAddress: UnsafeMutableRawPointer

    /// Allocates `count` uninitialized bytes.
    public convenience init(count: Int) {
        self.init(capacity: count)
    }

    /// Allocates `capacity` uninitialized bytes. The message spans all of them until `count`
    /// is lowered.
    init(capacity: Int) {
        self.count = capacity
        self.capacity = capacity
        self.baseAddress = UnsafeMutableRawPointer.allocate(byteCount: max(capacity, 1), alignment: 64)
    }

    /// Copies `bytes` into a new buffer.
    public convenience init(_ bytes: [UInt8]) {
        self.init(count: bytes.count)
        bytes.withUnsafeBytes { source in
            if let address = source.baseAddress { baseAddress.copyMemory(from: address, byteCount: bytes.count) }
        }
    }

    deinit {
        baseAddress.deallocate()
    }

    /// The bytes as an array (a copy).
    public var bytes: [UInt8] {
        Array(UnsafeRawBufferPointer(start: baseAddress, count: count))
    }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: baseAddress, count: count))
    }

    public func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeMutableRawBufferPointer(start: baseAddress, count: count))
    }

    /// Keeps this buffer allocated until the process exits, for a buffer that a pending MPI
    /// request may still read or write after an error.
    func retainForever() {
        _ = Unmanaged.passRetained(self)
    }
}
