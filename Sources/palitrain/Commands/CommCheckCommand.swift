import Comm
import Foundation

/// Checks the communicator and the gradient all-reduce on the ranks of a real launch
/// (`mpirun -n 4 palitrain comm-check`), and injects faults to check that they end the job.
///
/// Every rank generates every rank's data from fixed seeds, so each one computes the exact
/// expected mean in Double by itself and checks its own result against it.
struct CommCheckCommand: Command {
    static let name = "comm-check"
    static let summary = "check the MPI communicator and the gradient all-reduce on all ranks (a diagnostic)"
    static let allowsPositional = true
    static let options: [OptionSpec] = [
        .value("elements", "N", default: "100003", help: "values in the largest gradient buffer of each rank"),
        .value("bucket-bytes", "BYTES", default: "65536", help: "f32 bytes per all-reduce bucket (small, so that buffers split)"),
        .value("compression", "MODE", default: "all", help: "all, zstd-fp16, fp16 or none"),
        .value(
            "inject", "FAULT", default: "none",
            help: "none, corrupt-frame (the injecting rank damages its first ring frame) or die-at N (it kills itself with SIGKILL at its N-th ring message; also die-at:N)"
        ),
        .value("inject-rank", "RANK", default: "1", help: "the rank that injects the fault"),
        .value("comm-timeout", "SECONDS", default: "300", help: "maximum wait for another rank, in seconds, before the rank fails (CommLimits.waitTimeout)"),
        .value("seed", "N", default: "1", help: "seed of the synthetic gradients"),
    ]

    static func run(_ arguments: ParsedArguments) throws {
        let settings = try CommCheckSettings(arguments)
        let communicator = try MPICommunicator.initialize(limits: CommLimits(waitTimeout: settings.timeout))

        do {
            let check = CommCheck(communicator: communicator, settings: settings)
            try check.run()
        } catch {
            writeError("palitrain comm-check: rank \(communicator.rank): error: \(error)")
            if communicator.size > 1 { communicator.abort(code: 1) }
            throw ExitCode(status: 1)
        }
        communicator.finalize()
    }
}

/// The parsed and validated options of `comm-check`.
struct CommCheckSettings {
    enum Fault: Equatable {
        case none
        case corruptFrame
        case dieAt(message: Int)
    }

    let elements: Int
    let bucketBytes: Int
    let modes: [GradientCompression]
    let fault: Fault
    let injectRank: Int
    let timeout: Double
    let seed: UInt64

    init(_ arguments: ParsedArguments) throws {
        elements = try arguments.int("elements") ?? 0
        guard elements >= 1 else { throw UsageError("option '--elements' must be at least 1, found \(elements)") }
        bucketBytes = try arguments.int("bucket-bytes") ?? 0
        guard bucketBytes >= 4 else { throw UsageError("option '--bucket-bytes' must be at least 4, found \(bucketBytes)") }

        let mode = try arguments.choice("compression", ["all"] + GradientCompression.allCases.map(\.rawValue)) ?? "all"
        modes = mode == "all" ? GradientCompression.allCases : [GradientCompression(rawValue: mode)!]

        let inject = try arguments.required("inject")
        var positional = arguments.positional
        switch inject {
        case "none":
            fault = .none
        case "corrupt-frame":
            fault = .corruptFrame
        default:
            let count: String?
            if inject == "die-at" {
                count = positional.isEmpty ? nil : positional.removeFirst()
            } else if inject.hasPrefix("die-at:") || inject.hasPrefix("die-at=") {
                count = String(inject.dropFirst("die-at:".count))
            } else {
                throw UsageError("option '--inject' accepts none, corrupt-frame or die-at N, found '\(inject)'")
            }
            guard let count, let message = Int(count), message >= 1 else {
                throw UsageError("'--inject die-at' needs a message number of at least 1, as in '--inject die-at 5'")
            }
            fault = .dieAt(message: message)
        }
        guard positional.isEmpty else {
            throw UsageError("unexpected argument '\(positional[0])'; only '--inject die-at N' takes a bare value")
        }

        injectRank = try arguments.int("inject-rank") ?? 1
        timeout = try arguments.double("comm-timeout") ?? 300
        guard timeout > 0 else { throw UsageError("option '--comm-timeout' must be positive, found \(timeout)") }
        seed = UInt64(try arguments.int("seed") ?? 1)
    }
}

/// A check failed: the values, the decisions or the fault handling were not what they must be.
struct CommCheckFailure: Error, CustomStringConvertible {
    let description: String
}

/// The checks of `comm-check`, run by every rank in the same order.
struct CommCheck {
    let communicator: any Communicator
    let settings: CommCheckSettings

    private var rank: Int { communicator.rank }
    private var size: Int { communicator.size }

    /// Gradient buffers of one rank: a large one that spans several buckets, one not divisible
    /// by common rank counts, a single value and a small one.
    private var lengths: [Int] { [settings.elements, 4099, 1, 17] }

    func run() throws {
        say("\(size) rank\(size == 1 ? "" : "s"); buffers of \(lengths.map(String.init).joined(separator: ", ")) values; buckets of \(settings.bucketBytes) bytes")
        try checkCollectives()

        let ringCommunicator = try injectingCommunicator()
        for mode in settings.modes {
            try checkAllReduce(mode, communicator: ringCommunicator)
        }
        try checkNonFiniteDecisions(communicator: ringCommunicator)
        try checkReplicaMismatch()

        if settings.fault != .none && size > 1 && (0..<size).contains(settings.injectRank) {
            throw CommCheckFailure(description: "the injected fault \(settings.fault) on rank \(settings.injectRank) was not detected (or never triggered)")
        }
        try communicator.barrier()
        say("passed on \(size) rank\(size == 1 ? "" : "s")")
    }

    // MARK: - Checks

    private func checkCollectives() throws {
        try communicator.barrier()
        let sum = try communicator.allReduceSum([Double(rank), 1])
        try require(sum == [Double(size * (size - 1) / 2), Double(size)], "all-reduce sum gave \(sum)")
        let maximum = try communicator.allReduceMax([Double(rank), -Double(rank) - 1])
        try require(maximum == [Double(size - 1), -1], "all-reduce max gave \(maximum)")

        let root = size - 1
        let text = Array("state of rank \(root)".utf8)
        let received = try communicator.broadcast(rank == root ? text : [], root: root)
        try require(received == text, "broadcast from rank \(root) gave \(received.count) bytes, expected \(text.count)")

        // A token passes once around the ring with send and receive, and every rank appends
        // its rank, so rank 0 gets back [0, 1, ..., size - 1].
        if size > 1 {
            let tag = 7
            if rank == 0 {
                try communicator.send([0], to: 1, tag: tag)
                let token = try communicator.receiveBytes(from: size - 1, tag: tag)
                try require(token == (0..<size).map { UInt8(truncatingIfNeeded: $0) }, "token passed around the ring came back as \(token)")
            } else {
                let token = try communicator.receiveBytes(from: rank - 1, tag: tag)
                try communicator.send(token + [UInt8(truncatingIfNeeded: rank)], to: (rank + 1) % size, tag: tag)
            }
        }
        say("barrier, all-reduce sum and max, broadcast, send and receive: ok")
    }

    private func checkAllReduce(_ mode: GradientCompression, communicator ringCommunicator: any Communicator) throws {
        let reducer = try GradientAllReducer(communicator: ringCommunicator, compression: mode, bucketBytes: settings.bucketBytes)
        var buffers = lengths.indices.map { gradients(rank: rank, buffer: $0) }
        let stats = try reduce(&buffers, with: reducer)

        let worst = try verifyAgainstMean(buffers, fp16Roundings: mode == .none || size == 1 ? 0 : size, context: "\(mode)")
        try verifyIdentical(buffers, context: "\(mode)")
        try require(stats.fallbackBuckets == 0 && !stats.skipped, "\(mode): unexpected fallback or skip (\(stats))")

        let traffic = try communicator.allGather(encode([Double(stats.bytesSent), stats.ratio, stats.seconds]))
        say("\(mode): max error \(format(worst)) of the bound, bit-identical on all ranks")
        for (peer, bytes) in traffic.enumerated() {
            let values = decode(bytes)
            say("  rank \(peer) sent \(Int(values[0])) bytes, ratio \(format(values[1])) against f32, \(format(values[2] * 1000)) ms")
        }
    }

    /// One rank injects an fp16 overflow, then a NaN; every rank must take the same decision,
    /// and the values must still be right where they can be.
    private func checkNonFiniteDecisions(communicator ringCommunicator: any Communicator) throws {
        let injector = size - 1
        let index = settings.elements / 2
        let castHappens = size > 1

        let cases: [(name: String, value: Float, policy: OverflowPolicy, expected: [Int])] = [
            // expected: fallback buckets, non-finite buckets, skipped (0 or 1)
            ("overflow, fallback-f32", 1e9, .fallbackF32, [castHappens ? 1 : 0, 0, 0]),
            ("NaN, fallback-f32", .nan, .fallbackF32, [castHappens ? 1 : 0, 1, 0]),
            ("overflow, skip-step", 1e9, .skipStep, [0, 0, castHappens ? 1 : 0]),
            ("NaN, skip-step", .nan, .skipStep, [0, castHappens ? 0 : 1, 1]),
        ]
        for testCase in cases {
            let reducer = try GradientAllReducer(
                communicator: ringCommunicator, compression: .zstdFP16, bucketBytes: settings.bucketBytes, onOverflow: testCase.policy
            )
            var buffers = lengths.indices.map { gradients(rank: rank, buffer: $0) }
            if rank == injector { buffers[0][index] = testCase.value }
            let stats = try reduce(&buffers, with: reducer)

            let decision = [stats.fallbackBuckets, stats.nonFiniteBuckets, stats.skipped ? 1 : 0]
            let decisions = try communicator.allGather(encode(decision.map(Double.init))).map { decode($0).map { Int($0) } }
            try require(decisions.allSatisfy { $0 == decisions[0] }, "\(testCase.name): ranks disagree, decisions by rank \(decisions)")
            try require(decision == testCase.expected, "\(testCase.name): decision \(decision), expected \(testCase.expected)")

            if !stats.skipped {
                let injection = Injection(rank: injector, index: index, value: testCase.value)
                _ = try verifyAgainstMean(buffers, fp16Roundings: size == 1 ? 0 : size, injection: injection, context: testCase.name)
                try verifyIdentical(buffers, context: testCase.name)
            }
            say("\(testCase.name): every rank decided fallback \(decision[0]), non-finite \(decision[1]), skipped \(decision[2] == 1)")
        }
    }

    /// The last rank hashes slightly different parameters; every rank must name it.
    private func checkReplicaMismatch() throws {
        guard size > 1 else { return }
        var parameters = gradients(rank: 0, buffer: 1)
        if rank == size - 1 { parameters[7] = parameters[7].nextUp }
        let hash = parameters.withUnsafeBufferPointer { ReplicaCheck.hash([$0]) }
        do {
            try ReplicaCheck.verify(hash: hash, communicator: communicator)
            throw CommCheckFailure(description: "the replica check missed the different parameters of rank \(size - 1)")
        } catch CommError.replicaMismatch(_, let differing) {
            try require(differing == [size - 1], "the replica check named ranks \(differing), expected [\(size - 1)]")
        }
        say("replica check names rank \(size - 1) when its parameters differ: ok")
    }

    // MARK: - Helpers

    private func injectingCommunicator() throws -> any Communicator {
        guard rank == settings.injectRank, size > 1 else { return communicator }
        switch settings.fault {
        case .none:
            return communicator
        case .corruptFrame:
            return FaultInjectingCommunicator(base: communicator, fault: .corruptPayload, atMessage: 1)
        case .dieAt(let message):
            return FaultInjectingCommunicator(base: communicator, fault: .kill, atMessage: message)
        }
    }

    private func gradients(rank: Int, buffer: Int) -> [Float] {
        var values = [Float](repeating: 0, count: lengths[buffer])
        let seed = settings.seed &* 1_000_003 &+ UInt64(16 * rank + buffer)
        values.withUnsafeMutableBufferPointer { SyntheticGradients.fill($0, seed: seed, rowWidth: 1024) }
        return values
    }

    private func reduce(_ buffers: inout [[Float]], with reducer: GradientAllReducer) throws -> AllReduceStats {
        let pointers = buffers.map { values -> UnsafeMutableBufferPointer<Float> in
            let pointer = UnsafeMutableBufferPointer<Float>.allocate(capacity: values.count)
            _ = pointer.initialize(from: values)
            return pointer
        }
        defer { pointers.forEach { $0.deallocate() } }
        let stats = try reducer.allReduce(buffers: pointers)
        buffers = pointers.map { Array($0) }
        return stats
    }

    /// A value one rank puts into buffer 0 in place of its generated gradient.
    private struct Injection {
        let rank: Int
        let index: Int
        let value: Float
    }

    /// Compares every value with the exact mean in Double, within a bound derived from the
    /// roundings: f32 scaling and additions (2^-24 relative each) and `fp16Roundings` fp16
    /// roundings (2^-11 relative, or 2^-25 absolute below fp16's normal range). A NaN
    /// injection must give NaN at its index. Returns the largest error as a fraction of its
    /// bound.
    private func verifyAgainstMean(
        _ buffers: [[Float]], fp16Roundings: Int, injection: Injection? = nil, context: String
    ) throws -> Double {
        var worst = 0.0
        for buffer in lengths.indices {
            var perRank = (0..<size).map { gradients(rank: $0, buffer: buffer) }
            if let injection, buffer == 0 { perRank[injection.rank][injection.index] = injection.value }

            for i in 0..<lengths[buffer] {
                let actual = Double(buffers[buffer][i])
                if let injection, buffer == 0, i == injection.index, injection.value.isNaN {
                    try require(actual.isNaN, "\(context): buffer 0 value \(i) is \(actual), expected NaN")
                    continue
                }
                let mean = perRank.reduce(0.0) { $0 + Double($1[i]) } / Double(size)
                let magnitude = perRank.reduce(0.0) { $0 + abs(Double($1[i])) } / Double(size)
                let bound = magnitude * Double(size + 1) * 0x1p-24 + Double(fp16Roundings) * (magnitude * 0x1p-11 + 0x1p-25)
                let error = abs(actual - mean)
                try require(
                    error <= bound,
                    "\(context): buffer \(buffer) value \(i) is \(actual), expected mean \(mean), error \(error) above the bound \(bound)"
                )
                worst = max(worst, bound > 0 ? error / bound : 0)
            }
        }
        return worst
    }

    /// Gathers a hash of the reduced buffers; a difference names the ranks that differ.
    private func verifyIdentical(_ buffers: [[Float]], context: String) throws {
        let hash = buffers.withPointers { ReplicaCheck.hash($0) }
        do {
            try ReplicaCheck.verify(hash: hash, communicator: communicator)
        } catch CommError.replicaMismatch(_, let differing) {
            throw CommCheckFailure(description: "\(context): reduced gradients of ranks \(differing) differ from rank 0's")
        }
    }

    private func require(_ condition: Bool, _ message: @autoclosure () -> String) throws {
        if !condition { throw CommCheckFailure(description: message()) }
    }

    private func say(_ line: String) {
        if rank == 0 {
            print("[comm-check] " + line)
            fflush(nil)
        }
    }

    private func encode(_ values: [Double]) -> [UInt8] {
        values.withUnsafeBytes { Array($0) }
    }

    private func decode(_ bytes: [UInt8]) -> [Double] {
        bytes.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
    }

    private func format(_ value: Double) -> String {
        String(format: "%.3g", value)
    }
}

extension Array where Element == [Float] {
    /// Calls `body` with a buffer pointer to each inner array.
    fileprivate func withPointers<R>(_ body: ([UnsafeBufferPointer<Float>]) -> R) -> R {
        func recurse(_ index: Int, _ collected: [UnsafeBufferPointer<Float>]) -> R {
            if index == count { return body(collected) }
            return self[index].withUnsafeBufferPointer { recurse(index + 1, collected + [$0]) }
        }
        return recurse(0, [])
    }
}
