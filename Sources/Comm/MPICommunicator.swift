import CMPI
import Foundation

/// A log sink for one line of text.
public typealias CommLog = @Sendable (String) -> Void

/// Writes a line to standard output and flushes it, so that lines of different ranks
/// interleave whole under mpirun.
public let standardOutputLog: CommLog = { line in
    print(line)
    fflush(nil)
}

/// The communicator of a job launched by mpirun or srun: one process per rank, over
/// `MPI_COMM_WORLD`.
///
/// Waits do not block inside MPI: every operation is posted non-blocking (`MPI_Isend`,
/// `MPI_Improbe` + `MPI_Imrecv`, `MPI_Ibarrier`, `MPI_Iallreduce`, `MPI_Ibcast`,
/// `MPI_Iallgather`) and polled with `MPI_Test` between sleeps that back off from
/// `CommLimits.minPollInterval` to `maxPollInterval`. The exceptions are `MPI_Init_thread`,
/// `MPI_Finalize` and the benchmark-only `blockingAllReduceSum`.
///
/// What ends the job when a rank dies (verified with Open MPI 4.1.4, see `comm-check --inject`):
/// - A rank that catches an error calls `abort(code:)`, so `MPI_Abort` ends every rank.
/// - A rank that dies (a signal, an exit without `MPI_Finalize`) is noticed by mpirun, which
///   by default kills the other ranks and exits non-zero.
/// - Where the launcher does not do that (`mpirun --enable-recovery`, some srun setups), every
///   wait gives up after `CommLimits.waitTimeout` with `CommError.timedOut`, and the caller
///   aborts.
/// MPI errors are returned, not fatal (`MPI_ERRORS_RETURN`), and become `CommError.mpiFailed`.
public final class MPICommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    public private(set) var localRank: Int
    public private(set) var localSize: Int
    public let limits: CommLimits
    public let launcher: LauncherInfo
    /// Host of every rank, gathered at start.
    public private(set) var layout: RankLayout
    /// Thread support level that MPI provided (`MPI_THREAD_*`). This class makes one MPI call at a
    /// time from the calling thread in any case.
    public let threadLevel: Int32

    private var world: MPI_Comm { cmpi_comm_world() }

    /// Starts MPI when a launcher started this process, and returns a
    /// `SingleProcessCommunicator` otherwise (or an `MPICommunicator` of size 1 when
    /// `forceMPI` is set: Open MPI runs a singleton `MPI_Init` without mpirun, also as root).
    ///
    /// Rank 0 logs the launcher it detected and the rank layout.
    public static func initialize(
        limits: CommLimits = CommLimits(),
        environment: [String: String] = ProcessInfo.processInfo.environment,
        forceMPI: Bool = false,
        log: CommLog? = standardOutputLog
    ) throws -> any Communicator {
        try limits.validate()
        let launcher = LauncherInfo.detect(environment: environment)
        guard launcher.isLaunched || forceMPI else {
            log?("[comm] \(launcher); running as a single process without MPI")
            return SingleProcessCommunicator(limits: limits)
        }

        let communicator = try MPICommunicator(limits: limits, launcher: launcher)
        if communicator.rank == 0, let log {
            log("[comm] \(launcher)")
            log("[comm] \(libraryVersion()), thread level \(communicator.threadLevel), world size \(communicator.size)")
            log("[comm] " + communicator.layout.description)
        }
        return communicator
    }

    private init(limits: CommLimits, launcher: LauncherInfo) throws {
        self.limits = limits
        self.launcher = launcher

        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        var provided: Int32 = 0
        if initialized == 0 {
            try Self.check(MPI_Init_thread(nil, nil, Int32(MPI_THREAD_MULTIPLE), &provided), "MPI_Init_thread")
        } else {
            MPI_Query_thread(&provided)
        }
        threadLevel = provided
        try Self.check(MPI_Comm_set_errhandler(cmpi_comm_world(), cmpi_errors_return()), "MPI_Comm_set_errhandler")

        var rank: Int32 = 0
        var size: Int32 = 0
        try Self.check(MPI_Comm_rank(cmpi_comm_world(), &rank), "MPI_Comm_rank")
        try Self.check(MPI_Comm_size(cmpi_comm_world(), &size), "MPI_Comm_size")
        self.rank = Int(rank)
        self.size = Int(size)

        if let expected = launcher.size, expected != self.size {
            throw CommError.invalidArgument(
                "the \(launcher.kind.rawValue) launcher started \(expected) ranks but MPI_Init found a world of \(self.size); "
                    + "palitrain is linked against a different MPI than the launcher's (with srun, try --mpi=pmix)"
            )
        }

        // The layout needs the collective calls of a complete communicator, so it is gathered
        // after the placeholders below, which it then replaces.
        self.localRank = 0
        self.localSize = 1
        self.layout = RankLayout(hosts: [])
        let layout = try gatherLayout(hostName: Self.processorName())
        self.layout = layout
        self.localRank = layout.localRank(of: self.rank)
        self.localSize = layout.localSize(of: self.rank)
    }

    // MARK: - Collectives

    public func barrier() throws {
        var request: MPI_Request? = nil
        try Self.check(MPI_Ibarrier(world, &request), "MPI_Ibarrier")
        try wait(for: &request, operation: "barrier (rank \(rank) of \(size))")
    }

    public func allReduce(_ values: [Double], operation: ReduceOperation) throws -> [Double] {
        var result = [Double](repeating: 0, count: values.count)
        let op = operation == .sum ? cmpi_op_sum() : cmpi_op_max()
        try values.withUnsafeBufferPointer { input in
            try result.withUnsafeMutableBufferPointer { output in
                var request: MPI_Request? = nil
                try Self.check(
                    MPI_Iallreduce(input.baseAddress, output.baseAddress, Int32(values.count), cmpi_double(), op, world, &request),
                    "MPI_Iallreduce"
                )
                try wait(for: &request, operation: "all-reduce \(operation.rawValue) of \(values.count) values")
            }
        }
        return result
    }

    public func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8] {
        try validatePeer(root, role: "broadcast root")

        var count = [Int64(bytes.count)]
        try count.withUnsafeMutableBytes { buffer in
            var request: MPI_Request? = nil
            try Self.check(MPI_Ibcast(buffer.baseAddress, 8, cmpi_byte(), Int32(root), world, &request), "MPI_Ibcast")
            try wait(for: &request, operation: "broadcast of the byte count from rank \(root)")
        }
        let total = Int(count[0])
        guard total >= 0, total <= limits.maxMessageBytes else {
            throw CommError.messageTooLarge(peer: root, tag: -1, bytes: total, limit: limits.maxMessageBytes)
        }

        var result = rank == root ? bytes : [UInt8](repeating: 0, count: total)
        try result.withUnsafeMutableBytes { buffer in
            var request: MPI_Request? = nil
            try Self.check(MPI_Ibcast(buffer.baseAddress, Int32(total), cmpi_byte(), Int32(root), world, &request), "MPI_Ibcast")
            try wait(for: &request, operation: "broadcast of \(total) bytes from rank \(root)")
        }
        return result
    }

    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        let lengths = try allGatherFixed(withUnsafeBytes(of: Int64(bytes.count)) { Array($0) })
            .map { $0.withUnsafeBytes { $0.loadUnaligned(as: Int64.self) } }
        guard lengths.allSatisfy({ $0 == lengths[0] }) else {
            throw CommError.invalidArgument(
                "allGather needs byte strings of one length on every rank, found lengths \(lengths) by rank"
            )
        }
        return try allGatherFixed(bytes)
    }

    private func allGatherFixed(_ bytes: [UInt8]) throws -> [[UInt8]] {
        let width = bytes.count
        var gathered = [UInt8](repeating: 0, count: width * size)
        try bytes.withUnsafeBytes { input in
            try gathered.withUnsafeMutableBytes { output in
                var request: MPI_Request? = nil
                try Self.check(
                    MPI_Iallgather(input.baseAddress, Int32(width), cmpi_byte(), output.baseAddress, Int32(width), cmpi_byte(), world, &request),
                    "MPI_Iallgather"
                )
                try wait(for: &request, operation: "all-gather of \(width) bytes per rank")
            }
        }
        return (0..<size).map { Array(gathered[$0 * width..<($0 + 1) * width]) }
    }

    /// Sums `values` over all ranks in place with the blocking `MPI_Allreduce`, Open MPI's own
    /// algorithm. For benchmarks only: a rank waiting inside it spins on its core.
    public func blockingAllReduceSum(_ values: UnsafeMutableBufferPointer<Float>) throws {
        guard values.count <= Int(Int32.max) else {
            throw CommError.invalidArgument("MPI_Allreduce counts are Int32; \(values.count) values is too many for one call")
        }
        try Self.check(
            MPI_Allreduce(cmpi_in_place(), values.baseAddress, Int32(values.count), cmpi_float(), cmpi_op_sum(), world),
            "MPI_Allreduce"
        )
    }

    // MARK: - Point to point

    public func send(_ message: MessageBuffer, to destination: Int, tag: Int) throws {
        try validatePeer(destination, role: "destination")
        try validateTag(tag)
        var request: MPI_Request? = nil
        try Self.check(
            MPI_Isend(message.baseAddress, Int32(message.count), cmpi_byte(), Int32(destination), Int32(tag), world, &request),
            "MPI_Isend"
        )
        do {
            try wait(for: &request, operation: "send of \(message.count) bytes to rank \(destination) (tag \(tag))")
        } catch {
            message.retainForever()
            throw error
        }
    }

    public func receive(from source: Int, tag: Int) throws -> MessageBuffer {
        try exchange(nil, to: nil, from: source, tag: tag, reusing: nil)
    }

    public func sendReceive(
        _ message: MessageBuffer, to destination: Int, from source: Int, tag: Int, reusing spare: MessageBuffer?
    ) throws -> MessageBuffer {
        try exchange(message, to: destination, from: source, tag: tag, reusing: spare)
    }

    /// Posts the send (if any), then polls for the matching incoming message, receives it into
    /// `spare` or a new buffer of the probed size, and waits for both requests, sleeping
    /// between polls.
    private func exchange(
        _ outgoing: MessageBuffer?, to destination: Int?, from source: Int, tag: Int, reusing spare: MessageBuffer?
    ) throws -> MessageBuffer {
        try validatePeer(source, role: "source")
        try validateTag(tag)

        var sendRequest: MPI_Request? = nil
        if let outgoing, let destination {
            try validatePeer(destination, role: "destination")
            try Self.check(
                MPI_Isend(outgoing.baseAddress, Int32(outgoing.count), cmpi_byte(), Int32(destination), Int32(tag), world, &sendRequest),
                "MPI_Isend"
            )
        }
        var sendDone = outgoing == nil
        var incoming: MessageBuffer?
        var receiveRequest: MPI_Request? = nil
        var receiveDone = false

        var polling = PollingWait(limits: limits)
        do {
            while !(sendDone && receiveDone) {
                var progressed = false

                if !sendDone {
                    var flag: Int32 = 0
                    try Self.check(MPI_Test(&sendRequest, &flag, cmpi_status_ignore()), "MPI_Test (send)")
                    if flag != 0 {
                        sendDone = true
                        progressed = true
                    }
                }

                if incoming == nil {
                    var flag: Int32 = 0
                    var probed: MPI_Message? = nil
                    var status = MPI_Status()
                    try Self.check(MPI_Improbe(Int32(source), Int32(tag), world, &flag, &probed, &status), "MPI_Improbe")
                    if flag != 0 {
                        var count: Int32 = 0
                        try Self.check(MPI_Get_count(&status, cmpi_byte(), &count), "MPI_Get_count")
                        guard Int(count) <= limits.maxMessageBytes else {
                            throw CommError.messageTooLarge(peer: source, tag: tag, bytes: Int(count), limit: limits.maxMessageBytes)
                        }
                        let buffer: MessageBuffer
                        if let spare, spare.capacity >= Int(count), spare !== outgoing {
                            buffer = spare
                            buffer.count = Int(count)
                        } else {
                            buffer = MessageBuffer(count: Int(count))
                        }
                        incoming = buffer
                        try Self.check(MPI_Imrecv(buffer.baseAddress, count, cmpi_byte(), &probed, &receiveRequest), "MPI_Imrecv")
                        progressed = true
                    }
                }

                if incoming != nil && !receiveDone {
                    var flag: Int32 = 0
                    try Self.check(MPI_Test(&receiveRequest, &flag, cmpi_status_ignore()), "MPI_Test (receive)")
                    if flag != 0 {
                        receiveDone = true
                        progressed = true
                    }
                }

                if progressed {
                    polling.progressed()
                } else {
                    try polling.sleep(waitingFor: self.describeExchange(destination: sendDone ? nil : destination, source: receiveDone ? nil : source, tag: tag))
                }
            }
        } catch {
            if !sendDone { outgoing?.retainForever() }
            if !receiveDone { incoming?.retainForever() }
            throw error
        }

        guard let incoming else { fatalError("receive loop ended without a message") }
        return incoming
    }

    private func describeExchange(destination: Int?, source: Int?, tag: Int) -> String {
        var parts: [String] = []
        if let destination { parts.append("a send to rank \(destination)") }
        if let source { parts.append("a message from rank \(source)") }
        return parts.joined(separator: " and ") + " (tag \(tag), rank \(rank) waiting)"
    }

    // MARK: - Ending the job

    public func abort(code: Int32) -> Never {
        fflush(nil)
        MPI_Abort(world, code)
        exit(code)
    }

    public func finalize() {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if finalized == 0 { MPI_Finalize() }
    }

    // MARK: - Helpers

    /// Polls `request` with `MPI_Test`, sleeping between polls, until it completes.
    private func wait(for request: inout MPI_Request?, operation: @autoclosure () -> String) throws {
        var polling = PollingWait(limits: limits)
        while true {
            var flag: Int32 = 0
            try Self.check(MPI_Test(&request, &flag, cmpi_status_ignore()), "MPI_Test")
            if flag != 0 { return }
            try polling.sleep(waitingFor: operation())
        }
    }

    /// Tags up to 32767 are valid in every MPI (the standard's minimum `MPI_TAG_UB`).
    private func validateTag(_ tag: Int) throws {
        guard (0...32767).contains(tag) else {
            throw CommError.invalidArgument("MPI tag \(tag) is outside 0...32767, the range every MPI library accepts")
        }
    }

    private static func check(_ code: Int32, _ function: String) throws {
        guard code == MPI_SUCCESS else {
            throw CommError.mpiFailed(function: function, code: code, message: errorString(code))
        }
    }

    private static func errorString(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &buffer, &length)
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func processorName() throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(MPI_MAX_PROCESSOR_NAME) + 1)
        var length: Int32 = 0
        try check(MPI_Get_processor_name(&buffer, &length), "MPI_Get_processor_name")
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The MPI library's version line, such as "Open MPI v4.1.4, package: Debian ...".
    public static func libraryVersion() -> String {
        var buffer = [CChar](repeating: 0, count: Int(MPI_MAX_LIBRARY_VERSION_STRING) + 1)
        var length: Int32 = 0
        MPI_Get_library_version(&buffer, &length)
        // Open MPI counts the terminating NUL in `length`.
        let bytes = buffer.prefix(Int(length)).prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }
        let text = String(decoding: bytes, as: UTF8.self)
        return text.split(separator: "\n").first.map(String.init) ?? text
    }
}
