import Foundation
import XCTest

@testable import Comm

/// Tests of `GradientAllReducer` on in-process rank groups: the exact summation order, the
/// error against a Double reference, bit-identity across ranks and the overflow paths.
final class RingAllReduceTests: XCTestCase {
    /// One rank's reduced buffers and statistics.
    struct RankOutput: Sendable {
        let buffers: [[Float]]
        let stats: AllReduceStats
    }

    /// Rank `rank`'s gradient values for buffer `buffer`.
    static func gradients(rank: Int, buffer: Int, count: Int) -> [Float] {
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBufferPointer { SyntheticGradients.fill($0, seed: UInt64(1000 * rank + buffer + 1), rowWidth: 97) }
        return values
    }

    /// Runs one all-reduce of `inputs[rank][buffer]` on a group of `inputs.count` ranks.
    static func reduce(
        _ inputs: [[[Float]]], compression: GradientCompression, bucketBytes: Int, onOverflow: OverflowPolicy = .fallbackF32,
        scale: Float? = nil, limits: CommLimits = CommLimits(waitTimeout: 30), fault: (rank: Int, fault: InjectedFault, atMessage: Int)? = nil,
        log: CommLog? = nil
    ) -> [Result<RankOutput, Error>] {
        LocalGroup.run(size: inputs.count, limits: limits) { local in
            var communicator: any Communicator = local
            if let fault, fault.rank == local.rank {
                communicator = FaultInjectingCommunicator(base: local, fault: fault.fault, atMessage: fault.atMessage)
            }
            let reducer = try GradientAllReducer(
                communicator: communicator, compression: compression, bucketBytes: bucketBytes, onOverflow: onOverflow, scale: scale, log: log
            )
            var buffers = inputs[local.rank]
            let pointers = buffers.indices.map { index in
                UnsafeMutableBufferPointer<Float>.allocate(capacity: buffers[index].count)
            }
            defer { pointers.forEach { $0.deallocate() } }
            for (pointer, values) in zip(pointers, buffers) { _ = pointer.initialize(from: values) }
            let stats = try reducer.allReduce(buffers: pointers)
            buffers = pointers.map { Array($0) }
            return RankOutput(buffers: buffers, stats: stats)
        }
    }

    /// Computes the ring's result directly from its documented order of additions: per
    /// bucket and chunk c, `a = x_c; a = q(a) + x_{c+k}` for k = 1 ..< N, result `q(a)`.
    static func referenceRing(
        _ inputs: [[[Float]]], scale: Float, bucketCapacity: Int, quantize: (Float) -> Float,
        quantizeBucket: (Int) -> Bool = { _ in true }
    ) -> [Float] {
        let size = inputs.count
        let flat = inputs.map { $0.flatMap { $0 }.map { $0 * scale } }
        let total = flat[0].count
        var result = [Float](repeating: 0, count: total)
        var bucketStart = 0
        var bucketIndex = 0
        while bucketStart < total {
            let count = min(bucketCapacity, total - bucketStart)
            let quantized = quantizeBucket(bucketIndex)
            let chunks = RingChunks(count: count, parts: size)
            for chunk in 0..<size {
                for i in chunks.range(chunk) {
                    let index = bucketStart + i
                    var sum = flat[chunk][index]
                    for k in 1..<max(size, 1) {
                        sum = (quantized ? quantize(sum) : sum) + flat[(chunk + k) % size][index]
                    }
                    result[index] = size == 1 || !quantized ? sum : quantize(sum)
                }
            }
            bucketStart += count
            bucketIndex += 1
        }
        return result
    }

    static func fp16(_ value: Float) -> Float { Float(Float16(value)) }

    private func outputs(_ results: [Result<RankOutput, Error>], file: StaticString = #filePath, line: UInt = #line) throws -> [RankOutput] {
        try results.enumerated().map { rank, result in
            do {
                return try result.get()
            } catch {
                XCTFail("rank \(rank) failed: \(error)", file: file, line: line)
                throw error
            }
        }
    }

    private func assertBitIdentical(_ outputs: [RankOutput], _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        let reference = outputs[0].buffers.flatMap { $0 }
        for rank in outputs.indices.dropFirst() {
            assertSameBits(outputs[rank].buffers.flatMap { $0 }, reference, "\(context): rank \(rank) against rank 0", file: file, line: line)
        }
    }

    /// Fails at the first value whose bits differ, printing only that value.
    private func assertSameBits(_ actual: [Float], _ expected: [Float], _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        guard actual.count == expected.count else {
            return XCTFail("\(context): \(actual.count) values, expected \(expected.count)", file: file, line: line)
        }
        if let index = actual.indices.first(where: { actual[$0].bitPattern != expected[$0].bitPattern }) {
            XCTFail("\(context): value \(index) is \(actual[index]), expected \(expected[index])", file: file, line: line)
        }
    }

    // MARK: - Sums

    func testRingMatchesDocumentedOrderAndMean() throws {
        let bucketBytes = 4 * 1000
        for size in 1...5 {
            for count in [1, 3, 7, 1000, 4099] {
                let lengths = [count, 13]
                let inputs = (0..<size).map { rank in lengths.indices.map { Self.gradients(rank: rank, buffer: $0, count: lengths[$0]) } }
                for compression in GradientCompression.allCases {
                    let context = "\(size) ranks, \(count) + 13 values, \(compression)"
                    let results = try outputs(Self.reduce(inputs, compression: compression, bucketBytes: bucketBytes))
                    assertBitIdentical(results, context)

                    let exact = compression == GradientCompression.none
                    let quantize: (Float) -> Float = exact ? { $0 } : { Self.fp16($0) }
                    let expected = Self.referenceRing(inputs, scale: 1 / Float(size), bucketCapacity: bucketBytes / 4, quantize: quantize)
                    let actual = results[0].buffers.flatMap { $0 }
                    assertSameBits(actual, expected, "\(context): order of additions")

                    assertCloseToMean(actual, inputs, fp16Roundings: exact ? 0 : size, context)
                    XCTAssertEqual(results[0].stats.fallbackBuckets, 0, context)
                    XCTAssertFalse(results[0].stats.skipped, context)
                    XCTAssertEqual(results[0].stats.elements, count + 13, context)
                    XCTAssertEqual(results[0].stats.buckets, (count + 13 + 999) / 1000, context)
                }
            }
        }
    }

    /// Checks every value against the Double mean with a bound derived from the roundings:
    /// f32 scaling and additions (relative 2^-24 each, of at most S = sum of |scaled inputs|),
    /// plus `fp16Roundings` fp16 roundings (relative 2^-11, or 2^-25 absolute for subnormals).
    private func assertCloseToMean(
        _ actual: [Float], _ inputs: [[[Float]]], fp16Roundings: Int, _ context: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        let size = inputs.count
        let flat = inputs.map { $0.flatMap { $0 } }
        var worst = 0.0
        for i in actual.indices {
            let mean = flat.reduce(0.0) { $0 + Double($1[i]) } / Double(size)
            let magnitude = flat.reduce(0.0) { $0 + abs(Double($1[i])) } / Double(size)
            let bound = magnitude * Double(size + 1) * 0x1p-24 + Double(fp16Roundings) * (magnitude * 0x1p-11 + 0x1p-25)
            let error = abs(Double(actual[i]) - mean)
            worst = max(worst, error / max(bound, .leastNonzeroMagnitude))
            if error > bound {
                XCTFail("\(context): value \(i) is \(actual[i]), mean \(mean), error \(error) > bound \(bound)", file: file, line: line)
                return
            }
        }
        XCTAssertLessThanOrEqual(worst, 1, context, file: file, line: line)
    }

    func testLargeBucketCompressesAndStaysExact() throws {
        let size = 4
        let count = 200_003
        let inputs = (0..<size).map { rank in [Self.gradients(rank: rank, buffer: 0, count: count)] }
        let results = try outputs(Self.reduce(inputs, compression: .zstdFP16, bucketBytes: 32 << 20))
        assertBitIdentical(results, "zstd 200003 values")
        let expected = Self.referenceRing(inputs, scale: 0.25, bucketCapacity: 8 << 20, quantize: { Self.fp16($0) })
        assertSameBits(results[2].buffers[0], expected, "rank 2 against the reference")

        // fp16 alone gives a ratio just under 2 (headers), so zstd must add to that; this data
        // measured 2.17 (zstd 1.5.4, level 1).
        for rank in 0..<size {
            let stats = results[rank].stats
            XCTAssertGreaterThan(stats.ratio, 2.05, "rank \(rank) ratio")
            XCTAssertLessThan(stats.ratio, 3.0, "rank \(rank) ratio")
            XCTAssertEqual(stats.f32PayloadBytes, 2 * (size - 1) * 4 * count / size, accuracy: 8, "rank \(rank) f32 bytes")
        }
    }

    func testRepeatedCallsGiveIdenticalBits() throws {
        let inputs = (0..<3).map { rank in [Self.gradients(rank: rank, buffer: 0, count: 5000)] }
        let first = try outputs(Self.reduce(inputs, compression: .zstdFP16, bucketBytes: 4 * 1024))
        let second = try outputs(Self.reduce(inputs, compression: .zstdFP16, bucketBytes: 4 * 1024))
        assertSameBits(first[0].buffers[0], second[1].buffers[0], "second call against the first")
    }

    // MARK: - Overflow and NaN

    func testLocalOverflowRedoesBucketInF32() throws {
        let size = 3
        var inputs = (0..<size).map { rank in [Self.gradients(rank: rank, buffer: 0, count: 3000)] }
        // 3e5 / 3 = 1e5 after pre-scaling, above fp16's 65504, on rank 1 only.
        inputs[1][0][1500] = 3e5
        let lines = LineCollector()
        let results = try outputs(Self.reduce(inputs, compression: .zstdFP16, bucketBytes: 4 * 1000, log: lines.log))
        assertBitIdentical(results, "local overflow")

        for rank in 0..<size {
            XCTAssertEqual(results[rank].stats.fallbackBuckets, 1, "rank \(rank) fallback count")
            XCTAssertEqual(results[rank].stats.nonFiniteBuckets, 0, "rank \(rank)")
            XCTAssertFalse(results[rank].stats.skipped, "rank \(rank)")
        }
        let expected = Self.referenceRing(
            inputs, scale: 1 / 3, bucketCapacity: 1000, quantize: { Self.fp16($0) }, quantizeBucket: { $0 != 1 }
        )
        assertSameBits(results[0].buffers[0], expected, "rank 0 against the reference")
        XCTAssertEqual(lines.lines.count, 1, "\(lines.lines)")
        XCTAssertTrue(lines.lines.first?.contains("bucket 1 (1000 values): the fp16 cast overflowed or hit NaN on some rank; redoing the bucket in f32") ?? false, "\(lines.lines)")
    }

    func testPartialSumOverflowRedoesBucketInF32() throws {
        // With scale 1, 40000 fits fp16 on each rank, but the partial sum 80000 does not.
        var inputs = (0..<2).map { rank in [Self.gradients(rank: rank, buffer: 0, count: 10)] }
        inputs[0][0][4] = 40000
        inputs[1][0][4] = 40000
        let lines = LineCollector()
        let results = try outputs(Self.reduce(inputs, compression: .fp16, bucketBytes: 4 * 1000, scale: 1, log: lines.log))
        assertBitIdentical(results, "partial-sum overflow")
        XCTAssertEqual(results[0].stats.fallbackBuckets, 1)
        XCTAssertEqual(results[1].stats.fallbackBuckets, 1)
        XCTAssertEqual(results[0].buffers[0][4], 80000)
        let expected = Self.referenceRing(inputs, scale: 1, bucketCapacity: 1000, quantize: { $0 })
        assertSameBits(results[1].buffers[0], expected, "rank 1 against the reference")
        XCTAssertTrue(lines.lines.first?.contains("a partial sum overflowed fp16") ?? false, "\(lines.lines)")
    }

    func testNaNFallsBackAndIsReportedNonFinite() throws {
        var inputs = (0..<4).map { rank in [Self.gradients(rank: rank, buffer: 0, count: 2000)] }
        inputs[2][0][10] = .nan
        let results = try outputs(Self.reduce(inputs, compression: .zstdFP16, bucketBytes: 4 * 1000))
        for rank in 0..<4 {
            let stats = results[rank].stats
            XCTAssertEqual(stats.fallbackBuckets, 1, "rank \(rank)")
            XCTAssertEqual(stats.nonFiniteBuckets, 1, "rank \(rank)")
            XCTAssertFalse(stats.skipped, "rank \(rank)")
            XCTAssertTrue(results[rank].buffers[0][10].isNaN, "rank \(rank)")
            XCTAssertEqual(results[rank].buffers[0].filter(\.isNaN).count, 1, "rank \(rank)")
        }
    }

    func testSkipStepPolicySkipsOnEveryRank() throws {
        var inputs = (0..<3).map { rank in [Self.gradients(rank: rank, buffer: 0, count: 3000)] }
        inputs[0][0][2500] = -.infinity
        let results = try outputs(Self.reduce(inputs, compression: .zstdFP16, bucketBytes: 4 * 1000, onOverflow: .skipStep))
        for rank in 0..<3 {
            XCTAssertTrue(results[rank].stats.skipped, "rank \(rank)")
            XCTAssertEqual(results[rank].stats.fallbackBuckets, 0, "rank \(rank)")
            // Buckets 0 and 1 were reduced before bucket 2 hit the infinity.
            XCTAssertEqual(results[rank].stats.buckets, 3, "rank \(rank)")
        }
    }

    func testSkipStepPolicySkipsNonFiniteF32Sum() throws {
        var inputs = (0..<2).map { rank in [Self.gradients(rank: rank, buffer: 0, count: 100)] }
        inputs[1][0][0] = .nan
        let results = try outputs(Self.reduce(inputs, compression: .none, bucketBytes: 4 * 1000, onOverflow: .skipStep))
        XCTAssertTrue(results[0].stats.skipped)
        XCTAssertTrue(results[1].stats.skipped)
        XCTAssertEqual(results[0].stats.nonFiniteBuckets, 1)
    }

    // MARK: - Faults

    func testCorruptFrameNamesSenderAndBucket() throws {
        let inputs = (0..<3).map { rank in [Self.gradients(rank: rank, buffer: 0, count: 3000)] }
        let cases: [(InjectedFault, String)] = [
            (.corruptPayload, "checksum"),
            (.wrongBucket, "frame is for bucket 1, expected bucket 0"),
            (.truncate, "truncated"),
        ]
        for (fault, fragment) in cases {
            let results = Self.reduce(
                inputs, compression: .zstdFP16, bucketBytes: 4 * 1000, fault: (rank: 1, fault: fault, atMessage: 1)
            )
            // Rank 1 sends its first frame to rank 2.
            guard case .failure(let error) = results[2], case CommError.malformedFrame(let peer, let bucket, let reason) = error else {
                XCTFail("\(fault): rank 2 should reject the frame, got \(results[2])")
                continue
            }
            XCTAssertEqual(peer, 1, "\(fault)")
            XCTAssertEqual(bucket, 0, "\(fault)")
            XCTAssertTrue(reason.contains(fragment), "\(fault): \(reason)")
            XCTAssertTrue("\(error)".contains("from rank 1 in bucket 0"), "\(error)")
            for rank in [0, 1] {
                guard case .failure(CommError.peerFailed(let failed, _)) = results[rank] else {
                    XCTFail("\(fault): rank \(rank) should stop because rank 2 failed, got \(results[rank])")
                    continue
                }
                XCTAssertEqual(failed, 2, "\(fault)")
            }
        }
    }

    func testWaitTimesOutWhenPeerNeverSends() {
        let limits = CommLimits(waitTimeout: 0.3)
        let start = Date()
        let results = LocalGroup.run(size: 2, limits: limits) { communicator -> Int in
            if communicator.rank == 0 {
                _ = try communicator.receive(from: 1, tag: 5)
            }
            return communicator.rank
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
        guard case .failure(CommError.timedOut(let operation, let seconds)) = results[0] else {
            return XCTFail("rank 0 should time out, got \(results[0])")
        }
        XCTAssertEqual(seconds, 0.3)
        XCTAssertTrue(operation.contains("a message from rank 1 (tag 5"), operation)
        XCTAssertEqual(try results[1].get(), 1)
    }

    func testOversizedMessageIsRejectedWithTheSetting() {
        let limits = CommLimits(maxMessageBytes: 1000)
        let results = LocalGroup.run(size: 2, limits: limits) { communicator -> Int in
            if communicator.rank == 0 {
                try communicator.send([UInt8](repeating: 1, count: 2000), to: 1, tag: 9)
                return 0
            }
            return try communicator.receive(from: 0, tag: 9).count
        }
        guard case .failure(let error) = results[1], case CommError.messageTooLarge(let peer, let tag, let bytes, let limit) = error else {
            return XCTFail("rank 1 should reject the message, got \(results[1])")
        }
        XCTAssertEqual([peer, tag, bytes, limit], [0, 9, 2000, 1000])
        XCTAssertTrue("\(error)".contains("CommLimits.maxMessageBytes"), "\(error)")
    }

    func testOversizedBucketRejectedAtInit() {
        let group = LocalGroup(size: 2, limits: CommLimits(maxMessageBytes: 4096))
        XCTAssertThrowsError(try GradientAllReducer(communicator: group.communicators()[0], bucketBytes: 1 << 20, log: nil)) { error in
            XCTAssertTrue("\(error)".contains("CommLimits.maxMessageBytes"), "\(error)")
        }
    }

    // MARK: - Helpers of the ring

    func testChunksCoverBucketInOrder() {
        for count in [0, 1, 5, 8, 1001] {
            for parts in 1...5 {
                let chunks = RingChunks(count: count, parts: parts)
                var next = 0
                for index in 0..<parts {
                    let range = chunks.range(index)
                    XCTAssertEqual(range.lowerBound, next, "\(count) over \(parts), chunk \(index)")
                    XCTAssertLessThanOrEqual(range.count, count / parts + 1)
                    XCTAssertGreaterThanOrEqual(range.count, count / parts)
                    next = range.upperBound
                }
                XCTAssertEqual(next, count, "\(count) over \(parts)")
            }
        }
    }

    func testBucketSegmentsSplitLargeBuffers() {
        var segments = BucketSegments(lengths: [5, 0, 12, 3], capacity: 8)
        typealias S = BucketSegments.Segment
        XCTAssertEqual(segments.next(), [S(buffer: 0, range: 0..<5), S(buffer: 2, range: 0..<3)])
        XCTAssertEqual(segments.next(), [S(buffer: 2, range: 3..<11)])
        XCTAssertEqual(segments.next(), [S(buffer: 2, range: 11..<12), S(buffer: 3, range: 0..<3)])
        XCTAssertNil(segments.next())
    }
}

/// Collects log lines from any thread.
final class LineCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var collected: [String] = []

    var lines: [String] {
        lock.lock()
        defer { lock.unlock() }
        return collected
    }

    var log: CommLog {
        { line in
            self.lock.lock()
            self.collected.append(line)
            self.lock.unlock()
        }
    }
}
