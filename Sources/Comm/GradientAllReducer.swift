import Foundation

/// Statistics of one `GradientAllReducer.allReduce` call on this rank.
public struct AllReduceStats: Sendable, Equatable, CustomStringConvertible {
    /// Bytes of all frames this rank sent, headers and f32 redos included.
    public var bytesSent = 0
    /// Bytes the same frames would have taken with f32 payloads.
    public var f32PayloadBytes = 0
    /// Number of buckets reduced (a redo counts once).
    public var buckets = 0
    /// Number of gradient values reduced.
    public var elements = 0
    /// Buckets whose fp16 cast overflowed or hit NaN on some rank and were redone in f32.
    public var fallbackBuckets = 0
    /// Buckets whose reduced f32 values still contain infinity or NaN (the gradients
    /// themselves were not finite, which no codec can fix).
    public var nonFiniteBuckets = 0
    /// Whether the step should be skipped: with `.skipStep`, an fp16 overflow or NaN, or a
    /// non-finite f32 result, stopped the reduction. The buffers then hold reduced, unreduced
    /// and partly reduced values and must not be applied.
    public var skipped = false
    /// Wall time of the call, in seconds.
    public var seconds = 0.0

    public init() {}

    /// Compression ratio against f32 frames: `f32PayloadBytes / bytesSent` (1 with one rank).
    public var ratio: Double {
        bytesSent > 0 ? Double(f32PayloadBytes) / Double(bytesSent) : 1
    }

    /// One log line: values, bytes sent, ratio, fallbacks and time.
    public var description: String {
        var text = "all-reduce of \(elements) values in \(buckets) bucket\(buckets == 1 ? "" : "s"): sent \(bytesSent) bytes, "
            + "ratio \(String(format: "%.3f", ratio)) against f32, \(String(format: "%.1f", seconds * 1000)) ms"
        if fallbackBuckets > 0 { text += ", \(fallbackBuckets) bucket\(fallbackBuckets == 1 ? "" : "s") redone in f32" }
        if nonFiniteBuckets > 0 { text += ", \(nonFiniteBuckets) with non-finite sums" }
        if skipped { text += ", step skipped" }
        return text
    }
}

/// Averages gradients over all ranks with a compressed ring all-reduce.
///
/// The buffers of one call are packed in order into buckets of at most `bucketBytes` bytes
/// (f32), splitting a buffer larger than a bucket. For each bucket:
///
/// 1. Pack: copy the values, multiplied by `scale` (default `1 / size`, so the result is the
///    mean), into a staging bucket. This pre-scaling keeps sums inside fp16's range.
/// 2. Check the cast: with an fp16 codec, every rank checks whether its values would become
///    infinite or NaN in fp16 (`|v| >= 65520` or NaN), and one small MAX all-reduce makes
///    every rank take the same decision. If any rank overflows, the bucket is reduced with f32
///    frames (`.fallbackF32`) or the step is skipped (`.skipStep`), with a log line on rank 0.
/// 3. Reduce with `RingAllReduce` (see there for the exact order of additions).
/// 4. Check the result: a partial sum can still overflow fp16 on a later hop. The reduced
///    values are bit-identical on every rank, so each rank checks them locally and all take
///    the same decision without communication. Such an overflow is handled as in step 2.
/// 5. Unpack the reduced values into the caller's buffers (a bucket that lies inside one
///    buffer is reduced in place, straight into it).
///
/// Every rank must call `allReduce` with buffers of the same lengths, in the same order.
public final class GradientAllReducer {
    public let communicator: any Communicator
    public let compression: GradientCompression
    public let bucketBytes: Int
    public let onOverflow: OverflowPolicy
    /// Factor applied to every value before the reduction.
    public let scale: Float
    private let log: CommLog?

    private let ring: RingAllReduce
    private let bucketCapacity: Int
    private var staging: UnsafeMutableBufferPointer<Float>
    private var reduced: UnsafeMutableBufferPointer<Float>
    /// Bucket id of the next bucket, increasing over the reducer's lifetime so that a frame
    /// left over from an earlier bucket is rejected.
    private var nextBucketID: UInt32 = 0

    /// Tags `firstTag ..< firstTag + 2 * tagCycle` are used by gradient frames, so other users of
    /// the same communicator must use tags below `firstTag`.
    public static let firstTag = 1024
    static let tagCycle = 15_000

    /// - Parameters:
    ///   - bucketBytes: f32 bytes per bucket (default 32 MiB). Larger buckets need fewer
    ///     messages. Each rank keeps two f32 buckets of staging memory.
    ///   - scale: factor applied before the reduction; nil means `1 / size` (the mean). Pass
    ///     e.g. `lossScale / size` to keep small gradients out of fp16's subnormal range.
    ///   - zstdLevel: zstd level of `.zstdFP16`; level 1 already reaches the entropy of the
    ///     byte-shuffled fp16 planes of N(0, 1e-3) data.
    ///   - log: receives fallback lines on rank 0.
    public init(
        communicator: any Communicator,
        compression: GradientCompression = .zstdFP16,
        bucketBytes: Int = 32 << 20,
        onOverflow: OverflowPolicy = .fallbackF32,
        scale: Float? = nil,
        zstdLevel: Int32 = 1,
        log: CommLog? = standardOutputLog
    ) throws {
        guard bucketBytes >= 4 else {
            throw CommError.invalidArgument("bucketBytes must hold at least one f32 value (4 bytes), found \(bucketBytes)")
        }
        let capacity = bucketBytes / 4
        let chunk = RingChunks(count: capacity, parts: communicator.size).range(0).count
        let largestFrame = FrameCodec.maxFrameBytes(elementCount: chunk, codec: .f32)
        guard largestFrame <= communicator.limits.maxMessageBytes else {
            throw CommError.invalidArgument(
                "bucketBytes \(bucketBytes) makes frames of up to \(largestFrame) bytes with \(communicator.size) ranks, above "
                    + "CommLimits.maxMessageBytes (\(communicator.limits.maxMessageBytes)); lower bucketBytes or raise the limit"
            )
        }
        let resolvedScale = scale ?? 1 / Float(communicator.size)
        guard resolvedScale.isFinite, resolvedScale != 0 else {
            throw CommError.invalidArgument("gradient scale must be finite and non-zero, found \(resolvedScale)")
        }

        self.communicator = communicator
        self.compression = compression
        self.bucketBytes = bucketBytes
        self.onOverflow = onOverflow
        self.scale = resolvedScale
        self.log = log
        self.ring = RingAllReduce(communicator: communicator, codec: try FrameCodec(rank: communicator.rank, zstdLevel: zstdLevel))
        self.bucketCapacity = capacity
        self.staging = .allocate(capacity: 0)
        self.reduced = .allocate(capacity: 0)
    }

    deinit {
        staging.deallocate()
        reduced.deallocate()
    }

    /// Replaces every value of `buffers` by its scaled sum over all ranks (by default the mean).
    ///
    /// - buffers: the trainable gradients, f32, in the same order and with the same lengths on
    ///   every rank.
    public func allReduce(buffers: [UnsafeMutableBufferPointer<Float>]) throws -> AllReduceStats {
        let start = DispatchTime.now().uptimeNanoseconds
        var stats = AllReduceStats()
        let total = buffers.reduce(0) { $0 + $1.count }
        ensureCapacity(min(total, bucketCapacity))

        var segments = BucketSegments(lengths: buffers.map(\.count), capacity: bucketCapacity)
        var bucketIndex = 0
        while let bucket = segments.next() {
            let count = bucket.reduce(0) { $0 + $1.range.count }
            let input = UnsafeMutableBufferPointer(rebasing: staging[..<count])
            // A bucket inside one buffer is reduced straight into it, which saves a copy.
            let direct = bucket.count == 1 ? bucket[0] : nil
            let output = direct.map { UnsafeMutableBufferPointer(rebasing: buffers[$0.buffer][$0.range]) }
                ?? UnsafeMutableBufferPointer(rebasing: reduced[..<count])
            let localOverflow = pack(bucket, from: buffers, into: input)

            let applied = try reduceBucket(
                input: UnsafeBufferPointer(input), output: output, localOverflow: localOverflow,
                index: bucketIndex, stats: &stats
            )
            stats.buckets += 1
            stats.elements += count
            bucketIndex += 1
            guard applied else {
                stats.skipped = true
                break
            }
            if direct == nil {
                unpack(bucket, from: UnsafeBufferPointer(output), into: buffers)
            }
        }

        stats.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return stats
    }

    /// Runs steps 2-4 for one bucket. Returns false when the step must be skipped.
    private func reduceBucket(
        input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>, localOverflow: Bool,
        index: Int, stats: inout AllReduceStats
    ) throws -> Bool {
        if compression.castsToFP16 && communicator.size > 1 {
            let anyOverflow = try communicator.allReduceMax([localOverflow ? 1 : 0])[0] > 0
            if anyOverflow {
                return try handleOverflow(input: input, output: output, index: index, cause: "the fp16 cast overflowed or hit NaN on some rank", stats: &stats)
            }
            try runRing(input: input, output: output, compression: compression, stats: &stats)
            if containsNonFinite(UnsafePointer(output.baseAddress ?? emptyOutput), count: output.count) {
                return try handleOverflow(input: input, output: output, index: index, cause: "a partial sum overflowed fp16", stats: &stats)
            }
            return true
        }

        try runRing(input: input, output: output, compression: .none, stats: &stats)
        return checkFiniteF32(output, index: index, stats: &stats)
    }

    private func handleOverflow(
        input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>, index: Int, cause: String,
        stats: inout AllReduceStats
    ) throws -> Bool {
        switch onOverflow {
        case .skipStep:
            logOnRankZero("[comm] bucket \(index) (\(input.count) values): \(cause); skipping this step (policy skip-step)")
            return false
        case .fallbackF32:
            logOnRankZero("[comm] bucket \(index) (\(input.count) values): \(cause); redoing the bucket in f32")
            stats.fallbackBuckets += 1
            try runRing(input: input, output: output, compression: .none, stats: &stats)
            return checkFiniteF32(output, index: index, stats: &stats)
        }
    }

    /// Counts a non-finite f32 result. Returns false when that skips the step.
    private func checkFiniteF32(_ output: UnsafeMutableBufferPointer<Float>, index: Int, stats: inout AllReduceStats) -> Bool {
        guard containsNonFinite(UnsafePointer(output.baseAddress ?? emptyOutput), count: output.count) else { return true }
        stats.nonFiniteBuckets += 1
        if onOverflow == .skipStep {
            logOnRankZero("[comm] bucket \(index) (\(output.count) values): the f32 gradient sum contains infinity or NaN; skipping this step")
            return false
        }
        logOnRankZero("[comm] bucket \(index) (\(output.count) values): the f32 gradient sum contains infinity or NaN")
        return true
    }

    private func runRing(
        input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>, compression: GradientCompression,
        stats: inout AllReduceStats
    ) throws {
        let id = nextBucketID
        nextBucketID &+= 1
        let tag = Self.firstTag + 2 * Int(id % UInt32(Self.tagCycle))
        let traffic = try ring.run(
            input: input, output: output, wireCodec: compression.wireCodec, allowedCodecs: compression.allowedCodecs,
            bucket: id, tag: tag
        )
        stats.bytesSent += traffic.bytesSent
        stats.f32PayloadBytes += traffic.f32PayloadBytes
    }

    private func logOnRankZero(_ line: String) {
        if communicator.rank == 0 { log?(line) }
    }

    // MARK: - Packing

    /// Copies the bucket's segments, scaled, into `input`. Returns whether any scaled value
    /// would be infinite or NaN in fp16.
    private func pack(
        _ bucket: [BucketSegments.Segment], from buffers: [UnsafeMutableBufferPointer<Float>],
        into input: UnsafeMutableBufferPointer<Float>
    ) -> Bool {
        var offset = 0
        var maxMagnitudeBits: UInt32 = 0
        let factor = scale
        for segment in bucket {
            let source = buffers[segment.buffer].baseAddress! + segment.range.lowerBound
            let destination = input.baseAddress! + offset
            for i in 0..<segment.range.count {
                let value = source[i] * factor
                destination[i] = value
                maxMagnitudeBits = max(maxMagnitudeBits, value.bitPattern & 0x7FFF_FFFF)
            }
            offset += segment.range.count
        }
        // Magnitudes of 65520 and above round to fp16 infinity, and NaN bit patterns lie above
        // infinity's, so one integer maximum covers overflow, infinity and NaN.
        return maxMagnitudeBits >= fp16OverflowThreshold.bitPattern
    }

    private func unpack(
        _ bucket: [BucketSegments.Segment], from output: UnsafeBufferPointer<Float>, into buffers: [UnsafeMutableBufferPointer<Float>]
    ) {
        var offset = 0
        for segment in bucket {
            let destination = buffers[segment.buffer].baseAddress! + segment.range.lowerBound
            destination.update(from: output.baseAddress! + offset, count: segment.range.count)
            offset += segment.range.count
        }
    }

    private func ensureCapacity(_ count: Int) {
        guard staging.count < count else { return }
        staging.deallocate()
        reduced.deallocate()
        staging = .allocate(capacity: count)
        reduced = .allocate(capacity: count)
    }
}

/// The smallest f32 magnitude that rounds to infinity in fp16 (halfway between 65504, the
/// largest finite fp16, and 65536; ties round to the even neighbour, which is infinity).
let fp16OverflowThreshold: Float = 65520

nonisolated(unsafe) private let emptyOutput = UnsafeMutablePointer<Float>.allocate(capacity: 1)

/// Cuts consecutive buffers into buckets of at most `capacity` values, in order, splitting a
/// buffer that does not fit into the rest of the current bucket.
struct BucketSegments {
    /// `range` of buffer number `buffer`.
    struct Segment: Equatable {
        let buffer: Int
        let range: Range<Int>
    }

    private let lengths: [Int]
    private let capacity: Int
    private var buffer = 0
    private var offset = 0

    init(lengths: [Int], capacity: Int) {
        self.lengths = lengths
        self.capacity = capacity
    }

    /// Returns the next bucket's segments, or nil after the last value.
    mutating func next() -> [Segment]? {
        var segments: [Segment] = []
        var room = capacity
        while room > 0 && buffer < lengths.count {
            let available = lengths[buffer] - offset
            if available == 0 {
                buffer += 1
                offset = 0
                continue
            }
            let taken = min(available, room)
            segments.append(Segment(buffer: buffer, range: offset..<(offset + taken)))
            offset += taken
            room -= taken
        }
        return segments.isEmpty ? nil : segments
    }
}
