import Foundation
import Synchronization

/// Memory of this process from /proc/self/status, in MiB (zero where Linux does not report it).
public struct ProcessMemory: Sendable {
    /// Peak resident set size (VmHWM): anonymous, file-backed and shared pages together.
    public var peakResidentMiB = 0.0
    /// Resident set size now (VmRSS).
    public var residentMiB = 0.0
    /// Resident anonymous pages now (RssAnon): heap, activations, gradients.
    public var anonymousMiB = 0.0
    /// Resident file-backed pages now (RssFile): a memory-mapped checkpoint, code.
    public var fileMiB = 0.0
    /// Resident shared-memory pages now (RssShmem).
    public var sharedMiB = 0.0

    /// Reads the current values.
    public static func current() -> ProcessMemory {
        var memory = ProcessMemory()
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return memory }
        for line in status.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == ":" || $0 == " " || $0 == "\t" })
            guard parts.count >= 2, let kib = Double(parts[1]) else { continue }
            let mib = kib / 1024
            switch parts[0] {
            case "VmHWM": memory.peakResidentMiB = mib
            case "VmRSS": memory.residentMiB = mib
            case "RssAnon": memory.anonymousMiB = mib
            case "RssFile": memory.fileMiB = mib
            case "RssShmem": memory.sharedMiB = mib
            default: break
            }
        }
        return memory
    }
}

/// Memory of the whole machine from /proc/meminfo, in MiB (zero where Linux does not report it).
public struct MachineMemory: Sendable {
    /// MemTotal.
    public var totalMiB = 0.0
    /// Memory in use by processes and the kernel, estimated as MemTotal − MemAvailable. The
    /// kernel counts most of the page cache as available, so it is mostly not included.
    public var usedMiB = 0.0
    /// The page cache (Cached): file pages in memory, a memory-mapped checkpoint among them,
    /// held once however many processes map the file.
    public var pageCacheMiB = 0.0

    /// Reads the current values.
    public static func current() -> MachineMemory {
        var memory = MachineMemory()
        guard let meminfo = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return memory }
        var available = 0.0
        for line in meminfo.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == ":" || $0 == " " })
            guard parts.count >= 2, let kib = Double(parts[1]) else { continue }
            switch parts[0] {
            case "MemTotal": memory.totalMiB = kib / 1024
            case "MemAvailable": available = kib / 1024
            case "Cached": memory.pageCacheMiB = kib / 1024
            default: break
            }
        }
        memory.usedMiB = max(0, memory.totalMiB - available)
        return memory
    }
}

/// Samples `MachineMemory` on a background thread and keeps the sample with the most memory in
/// use, for a report of the machine's peak during a benchmark.
public final class MachineMemorySampler: Sendable {
    private let state = Mutex<(peak: MachineMemory, running: Bool)>((MachineMemory(), true))
    private let done = DispatchSemaphore(value: 0)

    /// Starts sampling every `interval` seconds.
    public init(interval: Double = 0.1) {
        state.withLock { $0.peak = MachineMemory.current() }
        let thread = Thread { [self] in
            while state.withLock({ $0.running }) {
                let sample = MachineMemory.current()
                state.withLock { if sample.usedMiB > $0.peak.usedMiB { $0.peak = sample } }
                Thread.sleep(forTimeInterval: interval)
            }
            done.signal()
        }
        thread.start()
    }

    /// Stops sampling and returns the sample with the most memory in use.
    public func stop() -> MachineMemory {
        let wasRunning = state.withLock { state in
            defer { state.running = false }
            return state.running
        }
        if wasRunning { done.wait() }
        return state.withLock { $0.peak }
    }
}

/// How busy the machine was while a benchmark ran: the load average, and the CPU time that
/// processes other than this one used, from /proc/stat and /proc/self/stat.
public struct MachineLoad: Sendable {
    /// The three load averages (1, 5, 15 minutes) from /proc/loadavg.
    public let loadAverage: [Double]
    let busyTicks: Double
    let totalTicks: Double
    let ownTicks: Double

    /// Reads the current counters.
    public static func sample() -> MachineLoad {
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?
            .split(separator: " ").prefix(3).compactMap { Double($0) } ?? []
        var busy = 0.0
        var total = 0.0
        if let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
           let line = stat.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) {
            let fields = line.split(separator: " ").dropFirst().compactMap { Double($0) }
            total = fields.reduce(0, +)
            // user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
            busy = total - (fields.count > 4 ? fields[3] + fields[4] : 0)
        }
        var own = 0.0
        if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")") {
            // Fields after the command name: state is field 3, utime 14 and stime 15.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) { own = user + system }
        }
        return MachineLoad(loadAverage: load, busyTicks: busy, totalTicks: total, ownTicks: own)
    }

    /// Fraction of all CPU time between `earlier` and `self` that other processes used
    /// (other ranks of the same job included).
    public func foreignCPUFraction(since earlier: MachineLoad) -> Double {
        let total = totalTicks - earlier.totalTicks
        if total <= 0 { return 0 }
        let foreign = (busyTicks - earlier.busyTicks) - (ownTicks - earlier.ownTicks)
        return max(0, min(1, foreign / total))
    }
}

/// Median of a non-empty list (the mean of the two middle values for an even count).
func median(_ values: [Double]) -> Double {
    if values.isEmpty { return .nan }
    let sorted = values.sorted()
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/// User and system CPU time this process has used, in seconds (all threads).
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
    let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    return user + system
}
