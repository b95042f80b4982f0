/// The process launcher detected from environment variables, and the layout of ranks on hosts.
///
/// Open MPI's mpirun sets `OMPI_COMM_WORLD_*`, MPICH and Intel MPI (Hydra) set `PMI_RANK` and
/// `PMI_SIZE`, a PMIx server sets `PMIX_RANK`, and Slurm's srun sets `SLURM_PROCID` and
/// friends. A run with none of them is a single process.
public struct LauncherInfo: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case openMPI = "Open MPI (mpirun)"
        case pmi = "PMI (MPICH or Intel MPI)"
        case pmix = "PMIx"
        case slurm = "Slurm (srun)"
        case none = "none (single process)"
    }

    /// The launcher whose variables were found first, in the order of `Kind`.
    public let kind: Kind
    public let rank: Int?
    public let size: Int?
    public let localRank: Int?
    public let localSize: Int?
    /// Slurm's node index and job id, when Slurm started the job (also under mpirun).
    public let slurmNodeID: Int?
    public let slurmJobID: String?
    /// The launcher variables that were set, as `NAME=value`, sorted by name.
    public let variables: [String]

    /// Every variable this detection reads.
    public static let variableNames = [
        "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE",
        "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "PMIX_RANK",
        "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NODEID", "SLURM_JOB_ID",
    ]

    /// Reads the launcher variables from `environment`.
    public static func detect(environment: [String: String]) -> LauncherInfo {
        func int(_ name: String) -> Int? { environment[name].flatMap { Int($0) } }

        let kind: Kind
        let rank: Int?
        let size: Int?
        let localRank: Int?
        let localSize: Int?
        if environment["OMPI_COMM_WORLD_RANK"] != nil {
            kind = .openMPI
            rank = int("OMPI_COMM_WORLD_RANK")
            size = int("OMPI_COMM_WORLD_SIZE")
            localRank = int("OMPI_COMM_WORLD_LOCAL_RANK")
            localSize = int("OMPI_COMM_WORLD_LOCAL_SIZE")
        } else if environment["PMI_RANK"] != nil {
            kind = .pmi
            rank = int("PMI_RANK")
            size = int("PMI_SIZE")
            localRank = int("MPI_LOCALRANKID")
            localSize = nil
        } else if environment["PMIX_RANK"] != nil {
            kind = .pmix
            rank = int("PMIX_RANK")
            size = nil
            localRank = nil
            localSize = nil
        } else if environment["SLURM_PROCID"] != nil {
            kind = .slurm
            rank = int("SLURM_PROCID")
            size = int("SLURM_NTASKS")
            localRank = int("SLURM_LOCALID")
            localSize = nil
        } else {
            kind = .none
            rank = nil
            size = nil
            localRank = nil
            localSize = nil
        }

        let variables = variableNames.compactMap { name in environment[name].map { "\(name)=\($0)" } }
        return LauncherInfo(
            kind: kind, rank: rank, size: size, localRank: localRank, localSize: localSize,
            slurmNodeID: int("SLURM_NODEID"), slurmJobID: environment["SLURM_JOB_ID"], variables: variables
        )
    }

    /// Whether a launcher started this process, so that MPI should be initialized.
    public var isLaunched: Bool { kind != .none }

    public var description: String {
        var text = "launcher: \(kind.rawValue)"
        if let slurmJobID { text += ", Slurm job \(slurmJobID)" }
        if !variables.isEmpty { text += " [" + variables.joined(separator: " ") + "]" }
        return text
    }
}

/// Placement of ranks on hosts: each rank's host name, from which its index among the ranks
/// on that host follows.
public struct RankLayout: Sendable, Equatable, CustomStringConvertible {
    /// Host name of each rank, indexed by rank.
    public let hosts: [String]

    public init(hosts: [String]) {
        self.hosts = hosts
    }

    /// Rank `rank`'s index among the ranks on its host (ranks on one host counted in rank order).
    public func localRank(of rank: Int) -> Int {
        hosts[..<rank].filter { $0 == hosts[rank] }.count
    }

    /// Number of ranks on `rank`'s host.
    public func localSize(of rank: Int) -> Int {
        hosts.filter { $0 == hosts[rank] }.count
    }

    /// One line per host: `host: ranks 0, 1 (2 ranks)`, hosts in order of their first rank.
    public var description: String {
        var order: [String] = []
        var ranksByHost: [String: [Int]] = [:]
        for (rank, host) in hosts.enumerated() {
            if ranksByHost[host] == nil { order.append(host) }
            ranksByHost[host, default: []].append(rank)
        }
        let lines = order.map { host -> String in
            let ranks = ranksByHost[host] ?? []
            return "  \(host): ranks \(ranks.map(String.init).joined(separator: ", ")) (\(ranks.count) rank\(ranks.count == 1 ? "" : "s"))"
        }
        return "rank layout: \(hosts.count) rank\(hosts.count == 1 ? "" : "s") on \(order.count) host\(order.count == 1 ? "" : "s")\n"
            + lines.joined(separator: "\n")
    }
}

extension Communicator {
    /// Gathers every rank's host name (`gethostname`, or `MPI_Get_processor_name` for MPI) and
    /// returns the layout. A collective call: every rank must make it.
    public func gatherLayout(hostName: String) throws -> RankLayout {
        let width = 256
        var padded = Array(hostName.utf8.prefix(width))
        padded += [UInt8](repeating: 0, count: width - padded.count)
        let gathered = try allGather(padded)
        let hosts = gathered.map { bytes in
            String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return RankLayout(hosts: hosts)
    }
}
