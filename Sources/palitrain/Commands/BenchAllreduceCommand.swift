import Comm
import Foundation

/// Times the compressed gradient all-reduce against `MPI_Allreduce` of the same f32 values in
/// the same run (`mpirun -n 4 palitrain bench-allreduce --elements N`).
///
/// Data: `SyntheticGradients`, N(0, 1e-3) scaled per row of 2048 values by a log-normal
/// factor shared by all ranks, with different values on every rank.
struct BenchAllreduceCommand: Command {
    static let name = "bench-allreduce"
    static let summary = "time the compressed gradient all-reduce against MPI_Allreduce (run under mpirun)"
    static let options: [OptionSpec] = [
        .value("elements", "N", default: "16777216", help: "f32 gradient values per rank"),
        .value("compression", "MODE", default: "all", help: "all, zstd-fp16, fp16 or none"),
        .value("iterations", "K", default: "3", help: "timed repetitions of each method (the median is reported)"),
        .value("bucket-bytes", "BYTES", default: "33554432", help: "f32 bytes per all-reduce bucket"),
        .value("comm-timeout", "SECONDS", default: "600", help: "maximum wait for another rank, in seconds (CommLimits.waitTimeout)"),
    ]

    static func run(_ arguments: ParsedArguments) throws {
        let elements = try arguments.int("elements") ?? 0
        let iterations = try arguments.int("iterations") ?? 0
        let bucketBytes = try arguments.int("bucket-bytes") ?? 0
        guard elements >= 1, iterations >= 1, bucketBytes >= 4 else {
            throw UsageError("--elements and --iterations must be at least 1 and --bucket-bytes at least 4")
        }
        let mode = try arguments.choice("compression", ["all"] + GradientCompression.allCases.map(\.rawValue)) ?? "all"
        let modes = mode == "all" ? GradientCompression.allCases : [GradientCompression(rawValue: mode)!]
        let timeout = try arguments.double("comm-timeout") ?? 600

        let communicator = try MPICommunicator.initialize(limits: CommLimits(waitTimeout: timeout))
        do {
            let bench = AllReduceBench(communicator: communicator, elements: elements, iterations: iterations, bucketBytes: bucketBytes)
            try bench.run(modes: modes)
        } catch {
            writeError("palitrain bench-allreduce: rank \(communicator.rank): error: \(error)")
            if communicator.size > 1 { communicator.abort(code: 1) }
            throw ExitCode(status: 1)
        }
        communicator.finalize()
    }
}

/// One benchmark run: every method on the same per-rank data.
struct AllReduceBench {
    let communicator: any Communicator
    let elements: Int
    let iterations: Int
    let bucketBytes: Int

    private var rank: Int { communicator.rank }
    private var size: Int { communicator.size }

    func run(modes: [GradientCompression]) throws {
        let original = UnsafeMutableBufferPointer<Float>.allocate(capacity: elements)
        let work = UnsafeMutableBufferPointer<Float>.allocate(capacity: elements)
        let reference = UnsafeMutableBufferPointer<Float>.allocate(capacity: elements)
        defer {
            original.deallocate()
            work.deallocate()
            reference.deallocate()
        }
        SyntheticGradients.fill(original, seed: UInt64(rank + 1))
        say("\(size) ranks, \(elements) f32 values per rank (\(megabytes(4 * elements)) MB), buckets of \(megabytes(bucketBytes)) MB, \(iterations) iterations")

        // MPI_Allreduce of the same values; its mean is the reference for the others.
        var mpiSeconds: [Double] = []
        if let mpi = communicator as? MPICommunicator {
            for _ in 0..<iterations {
                _ = reference.update(fromContentsOf: original)
                try communicator.barrier()
                let start = DispatchTime.now().uptimeNanoseconds
                try mpi.blockingAllReduceSum(reference)
                mpiSeconds.append(try slowestRank(since: start))
            }
            let scale = 1 / Float(size)
            for i in 0..<elements { reference[i] *= scale }
        } else {
            _ = reference.update(fromContentsOf: original)
        }
        let ringBytes = 2 * (size - 1) * 4 * elements / max(size, 1)
        if !mpiSeconds.isEmpty {
            row(method: "MPI_Allreduce f32 (Open MPI's choice)", seconds: mpiSeconds, bytes: nil, ratio: nil, difference: nil)
            say("  (a ring all-reduce of f32 sends \(megabytes(ringBytes)) MB per rank)")
        }

        for mode in modes {
            let reducer = try GradientAllReducer(communicator: communicator, compression: mode, bucketBytes: bucketBytes, log: nil)
            var seconds: [Double] = []
            var stats = AllReduceStats()
            for _ in 0..<iterations {
                _ = work.update(fromContentsOf: original)
                try communicator.barrier()
                let start = DispatchTime.now().uptimeNanoseconds
                stats = try reducer.allReduce(buffers: [work])
                seconds.append(try slowestRank(since: start))
            }
            let difference = maxRelativeDifference(work, reference)
            let maxBytes = try communicator.allReduceMax([Double(stats.bytesSent)])[0]
            let minRatio = -(try communicator.allReduceMax([-stats.ratio])[0])
            row(method: "ring \(mode)", seconds: seconds, bytes: Int(maxBytes), ratio: minRatio, difference: difference)
        }
    }

    /// Returns the wall time of the slowest rank since `start`, so that a method counts until
    /// every rank has the result.
    private func slowestRank(since start: UInt64) throws -> Double {
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return try communicator.allReduceMax([elapsed])[0]
    }

    /// max |a - b| / max |b|, over all values.
    private func maxRelativeDifference(_ a: UnsafeMutableBufferPointer<Float>, _ b: UnsafeMutableBufferPointer<Float>) -> Double {
        var difference: Float = 0
        var magnitude: Float = 0
        for i in 0..<a.count {
            difference = max(difference, abs(a[i] - b[i]))
            magnitude = max(magnitude, abs(b[i]))
        }
        return magnitude > 0 ? Double(difference / magnitude) : 0
    }

    /// Prints one Markdown table row on rank 0.
    private func row(method: String, seconds: [Double], bytes: Int?, ratio: Double?, difference: Double?) {
        let sorted = seconds.sorted()
        let median = sorted[sorted.count / 2]
        let cells = [
            "\(size)", "\(elements)", method,
            String(format: "%.3f", median), String(format: "%.3f", sorted[0]),
            bytes.map { megabytes($0) } ?? "-",
            ratio.map { String(format: "%.3f", $0) } ?? "-",
            difference.map { String(format: "%.1e", $0) } ?? "-",
        ]
        say("| " + cells.joined(separator: " | ") + " |")
    }

    private func megabytes(_ bytes: Int) -> String {
        String(format: "%.1f", Double(bytes) / 1e6)
    }

    private func say(_ line: String) {
        if rank == 0 {
            print(line)
            fflush(nil)
        }
    }
}
