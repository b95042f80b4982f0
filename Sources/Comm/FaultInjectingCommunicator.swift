import Foundation

/// A fault that `FaultInjectingCommunicator` injects into one outgoing point-to-point message.
public enum InjectedFault: Sendable, Equatable, CustomStringConvertible {
    /// Flip one payload byte of the message, so its checksum no longer matches.
    case corruptPayload
    /// Add one to the bucket id in the frame header.
    case wrongBucket
    /// Drop the last byte of the message.
    case truncate
    /// Kill this process with SIGKILL instead of sending, like a crashed rank.
    case kill

    public var description: String {
        switch self {
        case .corruptPayload: return "corrupt payload"
        case .wrongBucket: return "wrong bucket id"
        case .truncate: return "truncated frame"
        case .kill: return "SIGKILL"
        }
    }
}

/// Wraps a communicator and injects one fault into this rank's `atMessage`-th outgoing
/// point-to-point message (counting from 1), to test that peers detect it.
///
/// Used by `palitrain comm-check --inject` and the unit tests, never by training.
public final class FaultInjectingCommunicator: Communicator, @unchecked Sendable {
    public let base: any Communicator
    public let fault: InjectedFault
    public let atMessage: Int
    private var sentMessages = 0

    public init(base: any Communicator, fault: InjectedFault, atMessage: Int) {
        self.base = base
        self.fault = fault
        self.atMessage = atMessage
    }

    public var rank: Int { base.rank }
    public var size: Int { base.size }
    public var localRank: Int { base.localRank }
    public var localSize: Int { base.localSize }
    public var limits: CommLimits { base.limits }

    public func barrier() throws { try base.barrier() }

    public func allReduce(_ values: [Double], operation: ReduceOperation) throws -> [Double] {
        try base.allReduce(values, operation: operation)
    }

    public func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8] {
        try base.broadcast(bytes, root: root)
    }

    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        try base.allGather(bytes)
    }

    public func send(_ message: MessageBuffer, to destination: Int, tag: Int) throws {
        try base.send(tamper(message), to: destination, tag: tag)
    }

    public func receive(from source: Int, tag: Int) throws -> MessageBuffer {
        try base.receive(from: source, tag: tag)
    }

    public func sendReceive(
        _ message: MessageBuffer, to destination: Int, from source: Int, tag: Int, reusing spare: MessageBuffer?
    ) throws -> MessageBuffer {
        try base.sendReceive(tamper(message), to: destination, from: source, tag: tag, reusing: spare)
    }

    public func abort(code: Int32) -> Never { base.abort(code: code) }

    public func finalize() { base.finalize() }

    /// Returns `message`, or a damaged copy of it when this is the chosen message.
    private func tamper(_ message: MessageBuffer) -> MessageBuffer {
        sentMessages += 1
        guard sentMessages == atMessage else { return message }

        let copy = MessageBuffer(count: message.count)
        copy.baseAddress.copyMemory(from: message.baseAddress, byteCount: message.count)
        switch fault {
        case .corruptPayload:
            let payloadBytes = message.count - FrameHeader.byteCount
            let offset = payloadBytes > 0 ? FrameHeader.byteCount + payloadBytes / 2 : message.count - 1
            copy.withUnsafeMutableBytes { $0[offset] ^= 0x5A }
        case .wrongBucket:
            copy.withUnsafeMutableBytes { bytes in
                let bucket = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
                bytes.storeBytes(of: (bucket &+ 1).littleEndian, toByteOffset: 8, as: UInt32.self)
            }
        case .truncate:
            copy.count = max(message.count - 1, 0)
        case .kill:
            fflush(nil)
            kill(getpid(), SIGKILL)
        }
        return copy
    }
}
