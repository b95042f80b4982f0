/// The split of a bucket of `count` values into one chunk per rank: the first `count % parts`
/// chunks hold one value more than the others, and chunks may be empty when `count < parts`.
public struct RingChunks: Sendable {
    public let count: Int
    public let parts: Int

    public init(count: Int, parts: Int) {
        self.count = count
        self.parts = parts
    }

    /// Element range of chunk `index`.
    public func range(_ index: Int) -> Range<Int> {
        let base = count / parts
        let extra = count % parts
        let start = index * base + min(index, extra)
        return start..<(start + base + (index < extra ? 1 : 0))
    }
}

/// Bytes sent by one rank in the ring all-reduce of one bucket.
struct RingTraffic {
    /// Bytes of all frames this rank sent, headers included.
    var bytesSent = 0
    /// Bytes the payloads of those frames would take as f32.
    var f32PayloadBytes = 0
}

/// The ring all-reduce of one bucket over point-to-point frames: a reduce-scatter, then an
/// all-gather, each of `size - 1` steps in which every rank sends one frame to rank + 1 and
/// receives one from rank - 1 (ranks modulo `size`).
///
/// Order of additions. Write `x_r` for rank r's input (already pre-scaled), `q(v)` for the
/// codec's rounding (fp16 round to nearest even, or the identity for f32) and N for `size`.
/// Chunk c is owned by rank `(c - 1) mod N`. Its partial sum starts at rank c and travels
/// through ranks c+1, c+2, ..., c+N-1:
///
///     a_0 = x_c
///     a_k = q(a_{k-1}) + x_{c+k}    for k = 1 ..< N, one f32 addition on rank c+k
///
/// so the owner ends the reduce-scatter with `a_{N-1}`. It sends `q(a_{N-1})` to all other
/// ranks, encoded once. Every rank, the owner included, decodes those same bytes, so every
/// rank ends with `q(a_{N-1})`, bit-identical. With the f32 codec the result is the f32 sum
/// `((x_c + x_{c+1}) + x_{c+2}) + ...` in that order, so it depends on the world size (and
/// the chunk, through c) only by the summation order. With one rank the result is `x_0`
/// unchanged.
///
/// Reduce-scatter frames use the bucket's tag and all-gather frames the tag + 1. Every frame
/// carries bucket id, phase, step and chunk, all checked by the receiver.
final class RingAllReduce {
    let communicator: any Communicator
    let codec: FrameCodec
    /// Message buffers reused across steps and buckets, because a fresh allocation of several
    /// MB per frame costs a page fault per 4 KiB page on every frame.
    private var buffers: [MessageBuffer] = []

    init(communicator: any Communicator, codec: FrameCodec) {
        self.communicator = communicator
        self.codec = codec
    }

    /// Returns three buffers large enough for any frame of this bucket: one being sent, one
    /// being received, and the frame being forwarded in the all-gather.
    private func reserveBuffers(maxFrameBytes: Int) -> [MessageBuffer] {
        if buffers.count < 3 || buffers.contains(where: { $0.capacity < maxFrameBytes }) {
            buffers = (0..<3).map { _ in MessageBuffer(capacity: maxFrameBytes) }
        }
        return buffers
    }

    /// Reduces `input` over all ranks into `output` (same length, distinct memory).
    ///
    /// - input: f32[n], this rank's pre-scaled values; not modified.
    /// - output: f32[n], receives the reduced values, bit-identical on every rank.
    func run(
        input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
        wireCodec: WireCodec, allowedCodecs: [WireCodec], bucket: UInt32, tag: Int
    ) throws -> RingTraffic {
        let size = communicator.size
        let rank = communicator.rank
        var traffic = RingTraffic()
        guard size > 1 else {
            if let source = input.baseAddress, let destination = output.baseAddress {
                destination.update(from: source, count: input.count)
            }
            return traffic
        }

        let chunks = RingChunks(count: input.count, parts: size)
        let reserved = reserveBuffers(maxFrameBytes: FrameCodec.maxFrameBytes(elementCount: chunks.range(0).count, codec: wireCodec))
        let sendBuffer = reserved[0]
        var spare = reserved[1]
        let next = (rank + 1) % size
        let previous = (rank - 1 + size) % size
        func wrap(_ value: Int) -> Int { ((value % size) + size) % size }

        // 1. Reduce-scatter: at step s, send the partial sum of chunk rank - s and add this
        //    rank's values to the received partial sum of chunk rank - s - 1.
        for step in 0..<(size - 1) {
            let sendChunk = wrap(rank - step)
            let receiveChunk = wrap(rank - step - 1)
            let sendRange = chunks.range(sendChunk)
            let source = step == 0
                ? UnsafeBufferPointer(rebasing: input[sendRange])
                : UnsafeBufferPointer(rebasing: output[sendRange])
            let frame = try codec.encode(
                source, codec: wireCodec, phase: .reduceScatter, bucket: bucket, chunk: UInt32(sendChunk), step: UInt32(step),
                reusing: sendBuffer
            )
            traffic.bytesSent += frame.message.count
            traffic.f32PayloadBytes += 4 * sendRange.count

            let received = try exchange(frame.message, next: next, previous: previous, tag: tag, bucket: bucket, reusing: spare)
            let receiveRange = chunks.range(receiveChunk)
            let expected = FrameExpectation(
                peer: previous, bucket: bucket, phase: .reduceScatter, step: UInt32(step), chunk: UInt32(receiveChunk),
                elementCount: receiveRange.count, allowedCodecs: allowedCodecs
            )
            try codec.decode(
                received, expecting: expected,
                into: UnsafeMutableBufferPointer(rebasing: output[receiveRange]),
                adding: UnsafeBufferPointer(rebasing: input[receiveRange])
            )
        }

        // 2. The owner encodes its final chunk once and adopts the decoded bytes itself, so
        //    that it keeps exactly the values the other ranks will decode.
        let ownChunk = wrap(rank + 1)
        let ownRange = chunks.range(ownChunk)
        var forward = try codec.encode(
            UnsafeBufferPointer(rebasing: output[ownRange]), codec: wireCodec, phase: .allGather, bucket: bucket,
            chunk: UInt32(ownChunk), step: 0, reusing: reserved[2]
        ).message
        if wireCodec != .f32 {
            let own = FrameExpectation(
                peer: rank, bucket: bucket, phase: .allGather, step: 0, chunk: UInt32(ownChunk),
                elementCount: ownRange.count, allowedCodecs: allowedCodecs
            )
            try codec.decode(forward, expecting: own, into: UnsafeMutableBufferPointer(rebasing: output[ownRange]), adding: nil)
        }

        // 3. All-gather: at step s, send the final chunk rank + 1 - s (received at step s - 1)
        //    and receive the final chunk rank - s, forwarding the received bytes unchanged.
        for step in 0..<(size - 1) {
            let sendChunk = wrap(rank + 1 - step)
            let receiveChunk = wrap(rank - step)
            FrameCodec.restamp(forward, step: UInt32(step))
            traffic.bytesSent += forward.count
            traffic.f32PayloadBytes += 4 * chunks.range(sendChunk).count

            let received = try exchange(forward, next: next, previous: previous, tag: tag + 1, bucket: bucket, reusing: spare)
            let receiveRange = chunks.range(receiveChunk)
            let expected = FrameExpectation(
                peer: previous, bucket: bucket, phase: .allGather, step: UInt32(step), chunk: UInt32(receiveChunk),
                elementCount: receiveRange.count, allowedCodecs: allowedCodecs
            )
            try codec.decode(received, expecting: expected, into: UnsafeMutableBufferPointer(rebasing: output[receiveRange]), adding: nil)
            spare = forward
            forward = received
        }
        return traffic
    }

    /// Sends to the next rank while receiving from the previous one. Timeouts and messages
    /// above the size limit are reported with the bucket.
    private func exchange(
        _ message: MessageBuffer, next: Int, previous: Int, tag: Int, bucket: UInt32, reusing spare: MessageBuffer
    ) throws -> MessageBuffer {
        do {
            return try communicator.sendReceive(message, to: next, from: previous, tag: tag, reusing: spare)
        } catch CommError.timedOut(let operation, let seconds) {
            throw CommError.timedOut(operation: operation + " in gradient bucket \(bucket)", seconds: seconds)
        } catch CommError.messageTooLarge(let peer, _, let bytes, let limit) {
            throw CommError.malformedFrame(
                peer: peer, bucket: bucket,
                reason: "message of \(bytes) bytes exceeds CommLimits.maxMessageBytes (\(limit) bytes)"
            )
        }
    }
}
