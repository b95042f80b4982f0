import Foundation

/// A group of ranks running as threads of one process, for tests of code that communicates.
///
/// Messages are copied into per-(source, destination, tag) queues, so the ranks exercise the
/// same point-to-point protocol as under MPI. When one rank's body throws, the group is marked
/// failed and every rank waiting for a message throws `CommError.peerFailed`, which models
/// `MPI_Abort` ending a job.
public final class LocalGroup: @unchecked Sendable {
    public let size: Int
    public let limits: CommLimits
    private let condition = NSCondition()
    private var queues: [QueueKey: [MessageBuffer]] = [:]
    private var failure: (rank: Int, message: String)?

    private struct QueueKey: Hashable {
        let source: Int
        let destination: Int
        let tag: Int
    }

    public init(size: Int, limits: CommLimits = CommLimits()) {
        self.size = size
        self.limits = limits
    }

    /// Creates one communicator per rank.
    public func communicators() -> [LocalCommunicator] {
        (0..<size).map { LocalCommunicator(group: self, rank: $0) }
    }

    /// Runs `body` on `size` threads, one per rank, and returns each rank's result by rank.
    /// A rank that throws fails the group, so the others stop waiting instead of hanging.
    public static func run<T: Sendable>(
        size: Int, limits: CommLimits = CommLimits(), _ body: @escaping @Sendable (LocalCommunicator) throws -> T
    ) -> [Result<T, Error>] {
        let group = LocalGroup(size: size, limits: limits)
        let results = ResultSlots<T>(count: size)
        let finished = DispatchSemaphore(value: 0)
        for communicator in group.communicators() {
            let thread = Thread {
                let result = Result { try body(communicator) }
                if case .failure(let error) = result {
                    group.fail(rank: communicator.rank, message: "\(error)")
                }
                results.set(communicator.rank, result)
                finished.signal()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        for _ in 0..<size { finished.wait() }
        return results.values()
    }

    /// Marks the group failed by `rank`, so that waiting ranks throw `CommError.peerFailed`.
    public func fail(rank: Int, message: String) {
        condition.lock()
        if failure == nil { failure = (rank, message) }
        condition.broadcast()
        condition.unlock()
    }

    func post(_ message: MessageBuffer, from source: Int, to destination: Int, tag: Int) {
        let copy = MessageBuffer(count: message.count)
        copy.baseAddress.copyMemory(from: message.baseAddress, byteCount: message.count)
        condition.lock()
        queues[QueueKey(source: source, destination: destination, tag: tag), default: []].append(copy)
        condition.broadcast()
        condition.unlock()
    }

    func take(from source: Int, to destination: Int, tag: Int) throws -> MessageBuffer {
        let key = QueueKey(source: source, destination: destination, tag: tag)
        let deadline = Date(timeIntervalSinceNow: limits.waitTimeout)
        condition.lock()
        defer { condition.unlock() }
        while true {
            // A message already delivered is taken even after a failure, as MPI would have
            // received it before the abort arrived.
            if var queue = queues[key], !queue.isEmpty {
                let message = queue.removeFirst()
                queues[key] = queue
                guard message.count <= limits.maxMessageBytes else {
                    throw CommError.messageTooLarge(peer: source, tag: tag, bytes: message.count, limit: limits.maxMessageBytes)
                }
                return message
            }
            if let failure, failure.rank != destination {
                throw CommError.peerFailed(rank: failure.rank, message: failure.message)
            }
            if !condition.wait(until: deadline) {
                throw CommError.timedOut(
                    operation: "a message from rank \(source) (tag \(tag), rank \(destination) waiting)", seconds: limits.waitTimeout
                )
            }
        }
    }
}

/// One rank of a `LocalGroup`.
///
/// Collectives go through rank 0 on negative tags, which user code cannot use. Rank 0
/// reduces the values in rank order, so every rank gets the same result.
public final class LocalCommunicator: Communicator, @unchecked Sendable {
    public let group: LocalGroup
    public let rank: Int
    public var size: Int { group.size }
    public var localRank: Int { rank }
    public var localSize: Int { group.size }
    public var limits: CommLimits { group.limits }

    private static let gatherTag = -1
    private static let scatterTag = -2
    private static let broadcastTag = -3

    init(group: LocalGroup, rank: Int) {
        self.group = group
        self.rank = rank
    }

    public func barrier() throws {
        _ = try allGather([])
    }

    public func allReduce(_ values: [Double], operation: ReduceOperation) throws -> [Double] {
        let gathered = try allGather(values.withUnsafeBytes { Array($0) })
        let perRank = gathered.map { bytes in bytes.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) } }
        guard perRank.allSatisfy({ $0.count == values.count }) else {
            throw CommError.invalidArgument("allReduce needs arrays of one length on every rank, found \(perRank.map(\.count)) by rank")
        }
        var result = perRank[0]
        for other in perRank.dropFirst() {
            for i in result.indices {
                result[i] = operation == .sum ? result[i] + other[i] : Swift.max(result[i], other[i])
            }
        }
        return result
    }

    public func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8] {
        try validatePeer(root, role: "broadcast root")
        if rank == root {
            for destination in 0..<size where destination != root {
                group.post(MessageBuffer(bytes), from: root, to: destination, tag: Self.broadcastTag)
            }
            return bytes
        }
        return try group.take(from: root, to: rank, tag: Self.broadcastTag).bytes
    }

    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        if rank != 0 {
            group.post(MessageBuffer(bytes), from: rank, to: 0, tag: Self.gatherTag)
            return try Self.split(group.take(from: 0, to: rank, tag: Self.scatterTag).bytes)
        }
        var gathered = [bytes]
        for source in 1..<size {
            gathered.append(try group.take(from: source, to: 0, tag: Self.gatherTag).bytes)
        }
        guard gathered.allSatisfy({ $0.count == bytes.count }) else {
            throw CommError.invalidArgument("allGather needs byte strings of one length on every rank, found \(gathered.map(\.count)) by rank")
        }
        let joined = MessageBuffer(Self.join(gathered))
        for destination in 1..<size {
            group.post(joined, from: 0, to: destination, tag: Self.scatterTag)
        }
        return gathered
    }

    public func send(_ message: MessageBuffer, to destination: Int, tag: Int) throws {
        try validatePeer(destination, role: "destination")
        try validateUserTag(tag)
        group.post(message, from: rank, to: destination, tag: tag)
    }

    public func receive(from source: Int, tag: Int) throws -> MessageBuffer {
        try validatePeer(source, role: "source")
        try validateUserTag(tag)
        return try group.take(from: source, to: rank, tag: tag)
    }

    /// Ignores `spare`: the queued copy of the message is returned.
    public func sendReceive(
        _ message: MessageBuffer, to destination: Int, from source: Int, tag: Int, reusing spare: MessageBuffer?
    ) throws -> MessageBuffer {
        try send(message, to: destination, tag: tag)
        return try receive(from: source, tag: tag)
    }

    /// Fails the group, then ends the whole process, because one thread cannot end alone.
    /// Tests let errors propagate to `LocalGroup.run` instead of calling this.
    public func abort(code: Int32) -> Never {
        group.fail(rank: rank, message: "rank \(rank) aborted with code \(code)")
        exit(code)
    }

    public func finalize() {}

    private func validateUserTag(_ tag: Int) throws {
        guard (0...32767).contains(tag) else {
            throw CommError.invalidArgument("tag \(tag) is outside 0...32767, the range every MPI library accepts")
        }
    }

    /// Length-prefixed concatenation (UInt64 little-endian lengths).
    private static func join(_ parts: [[UInt8]]) -> [UInt8] {
        var joined: [UInt8] = []
        for part in parts {
            withUnsafeBytes(of: UInt64(part.count).littleEndian) { joined.append(contentsOf: $0) }
            joined.append(contentsOf: part)
        }
        return joined
    }

    private static func split(_ joined: [UInt8]) -> [[UInt8]] {
        var parts: [[UInt8]] = []
        var offset = 0
        while offset < joined.count {
            let length = joined.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self))) }
            offset += 8
            parts.append(Array(joined[offset..<(offset + length)]))
            offset += length
        }
        return parts
    }
}

/// Per-rank result slots written by the rank threads.
private final class ResultSlots<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Result<T, Error>?]

    init(count: Int) {
        slots = Array(repeating: nil, count: count)
    }

    func set(_ index: Int, _ result: Result<T, Error>) {
        lock.lock()
        slots[index] = result
        lock.unlock()
    }

    func values() -> [Result<T, Error>] {
        lock.lock()
        defer { lock.unlock() }
        return slots.map { $0 ?? .failure(CommError.invalidArgument("rank thread ended without a result")) }
    }
}
