import Foundation

/// Message passing between the ranks of a data-parallel job.
///
/// Implementations: `MPICommunicator` (one process per rank under mpirun or srun),
/// `SingleProcessCommunicator` (a run without a launcher) and `LocalCommunicator` (N ranks as
/// threads of one process, for tests).
///
/// Every wait sleeps between polls instead of spinning, because ranks often share cores, and
/// every wait ends with `CommError.timedOut` after `limits.waitTimeout` seconds.
/// Calls must not overlap: use one communicator from one thread at a time. Every rank must
/// make the same sequence of collective calls (`barrier`, `allReduce`, `broadcast`,
/// `allGather`), as in MPI.
public protocol Communicator: AnyObject, Sendable {
    /// This process's rank, 0..<size.
    var rank: Int { get }
    /// Number of ranks in the job.
    var size: Int { get }
    /// Rank among the ranks on the same host, 0..<localSize.
    var localRank: Int { get }
    /// Number of ranks on this rank's host.
    var localSize: Int { get }
    var limits: CommLimits { get }

    /// Waits until every rank has reached the barrier.
    func barrier() throws

    /// Reduces a few doubles element-wise over all ranks, and every rank gets the result.
    /// All ranks must pass arrays of the same length.
    func allReduce(_ values: [Double], operation: ReduceOperation) throws -> [Double]

    /// Sends `bytes` from `root` to every rank. The argument is ignored on the other ranks,
    /// which receive the root's bytes whatever their length.
    func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8]

    /// Gathers one byte string from every rank, indexed by rank, on every rank. All ranks must
    /// pass strings of the same length.
    func allGather(_ bytes: [UInt8]) throws -> [[UInt8]]

    /// Sends a message and waits until its buffer may be reused.
    func send(_ message: MessageBuffer, to destination: Int, tag: Int) throws

    /// Receives the next message from `source` with `tag`. Messages between one pair of ranks
    /// with one tag arrive in the order they were sent.
    func receive(from source: Int, tag: Int) throws -> MessageBuffer

    /// Sends `message` to `destination` and receives one from `source` at the same time, so
    /// that a ring of ranks cannot deadlock. The incoming message is written into `spare` when
    /// its capacity suffices (saving an allocation and its page faults per message), and into a
    /// new buffer otherwise. Implementations may always allocate.
    func sendReceive(
        _ message: MessageBuffer, to destination: Int, from source: Int, tag: Int, reusing spare: MessageBuffer?
    ) throws -> MessageBuffer

    /// Ends every rank of the job with exit status `code`, for a rank that hit an error the
    /// others cannot know about.
    func abort(code: Int32) -> Never

    /// Releases the communicator at the end of a successful run (`MPI_Finalize`).
    func finalize()
}

/// Element-wise operation of `Communicator.allReduce`.
public enum ReduceOperation: String, Sendable {
    case sum
    case max
}

extension Communicator {
    /// Element-wise maximum of `values` over all ranks.
    public func allReduceMax(_ values: [Double]) throws -> [Double] {
        try allReduce(values, operation: .max)
    }

    /// Element-wise sum of `values` over all ranks.
    public func allReduceSum(_ values: [Double]) throws -> [Double] {
        try allReduce(values, operation: .sum)
    }

    /// Sends `message` to `destination` while receiving from `source` into a new buffer.
    public func sendReceive(_ message: MessageBuffer, to destination: Int, from source: Int, tag: Int) throws -> MessageBuffer {
        try sendReceive(message, to: destination, from: source, tag: tag, reusing: nil)
    }

    /// Sends `bytes` to `destination` (a copy into a `MessageBuffer`).
    public func send(_ bytes: [UInt8], to destination: Int, tag: Int) throws {
        try send(MessageBuffer(bytes), to: destination, tag: tag)
    }

    /// Receives the next message from `source` with `tag` as an array.
    public func receiveBytes(from source: Int, tag: Int) throws -> [UInt8] {
        try receive(from: source, tag: tag).bytes
    }

    /// Throws `CommError.invalidArgument` unless `peer` is a rank of this job.
    func validatePeer(_ peer: Int, role: String) throws {
        guard (0..<size).contains(peer) else {
            throw CommError.invalidArgument("\(role) rank \(peer) is outside 0..<\(size) (world size \(size))")
        }
    }
}

/// The communicator of a run without a launcher: one rank, every collective returns its input.
public final class SingleProcessCommunicator: Communicator {
    public let limits: CommLimits
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public var localRank: Int { 0 }
    public var localSize: Int { 1 }

    public init(limits: CommLimits = CommLimits()) {
        self.limits = limits
    }

    public func barrier() throws {}

    public func allReduce(_ values: [Double], operation: ReduceOperation) throws -> [Double] {
        values
    }

    public func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8] {
        try validatePeer(root, role: "broadcast root")
        return bytes
    }

    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        [bytes]
    }

    public func send(_ message: MessageBuffer, to destination: Int, tag: Int) throws {
        throw CommError.invalidArgument("send to rank \(destination) in a single-process run: there is no other rank")
    }

    public func receive(from source: Int, tag: Int) throws -> MessageBuffer {
        throw CommError.invalidArgument("receive from rank \(source) in a single-process run: there is no other rank")
    }

    public func sendReceive(
        _ message: MessageBuffer, to destination: Int, from source: Int, tag: Int, reusing spare: MessageBuffer?
    ) throws -> MessageBuffer {
        throw CommError.invalidArgument("send-receive with rank \(destination) in a single-process run: there is no other rank")
    }

    public func abort(code: Int32) -> Never {
        exit(code)
    }

    public func finalize() {}
}
