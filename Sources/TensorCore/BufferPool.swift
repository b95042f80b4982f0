import Synchronization

/// Reuses large f32 buffers between tensors of the same size.
///
/// A training step allocates the same activation sizes every time. Large allocations come
/// from fresh `mmap` pages, which the kernel zeroes on first touch; recycling freed buffers of
/// the exact same size avoids that cost. Buffers smaller than `minimumBytes` go straight to
/// malloc. At most `limitBytes` of idle buffers are kept; beyond that, freed buffers are
/// released to the system.
public enum BufferPool {
    /// Buffers below this size are not pooled.
    static let minimumBytes = 256 * 1024

    private struct State {
        var idle: [Int: [UInt]] = [:]  // byte count → addresses of idle buffers
        var idleBytes = 0
        var limitBytes = 2 << 30
    }

    private static let state = Mutex(State())

    /// Sets the maximum bytes of idle buffers kept for reuse (default 2 GiB); 0 disables pooling.
    public static func setLimit(bytes: Int) {
        let released: [UInt] = state.withLock { state in
            state.limitBytes = max(0, bytes)
            var released: [UInt] = []
            while state.idleBytes > state.limitBytes, let (size, addresses) = state.idle.first {
                released.append(contentsOf: addresses)
                state.idleBytes -= size * addresses.count
                state.idle[size] = nil
            }
            return released
        }
        for address in released { UnsafeMutableRawPointer(bitPattern: address)?.deallocate() }
    }

    /// Bytes currently held by idle buffers.
    public static var idleBytes: Int { state.withLock { $0.idleBytes } }

    static func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        if byteCount >= minimumBytes {
            let reused: UInt? = state.withLock { state in
                guard let address = state.idle[byteCount]?.popLast() else { return nil }
                state.idleBytes -= byteCount
                return address
            }
            if let reused, let pointer = UnsafeMutableRawPointer(bitPattern: reused) { return pointer }
        }
        return UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64)
    }

    static func release(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        if byteCount >= minimumBytes {
            let kept = state.withLock { state in
                guard state.idleBytes + byteCount <= state.limitBytes else { return false }
                state.idle[byteCount, default: []].append(UInt(bitPattern: pointer))
                state.idleBytes += byteCount
                return true
            }
            if kept { return }
        }
        pointer.deallocate()
    }
}
