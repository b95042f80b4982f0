import XCTest

@testable import Comm

final class CommunicatorTests: XCTestCase {
    // MARK: - In-process collectives

    func testCollectivesAgreeOnEveryRank() throws {
        let results = LocalGroup.run(size: 4) { communicator -> [String] in
            let rank = communicator.rank
            try communicator.barrier()
            let sum = try communicator.allReduceSum([Double(rank), 1, -0.5 * Double(rank)])
            let maximum = try communicator.allReduceMax([Double(rank), -Double(rank) - 1])
            let payload: [UInt8] = rank == 2 ? Array("resume state".utf8) : []
            let broadcast = try communicator.broadcast(payload, root: 2)
            let gathered = try communicator.allGather([UInt8(rank), UInt8(10 + rank)])
            return ["\(sum)", "\(maximum)", String(decoding: broadcast, as: UTF8.self), "\(gathered)"]
        }
        for (rank, result) in results.enumerated() {
            let values = try result.get()
            XCTAssertEqual(values[0], "\([6.0, 4.0, -3.0])", "rank \(rank) sum")
            XCTAssertEqual(values[1], "\([3.0, -1.0])", "rank \(rank) max")
            XCTAssertEqual(values[2], "resume state", "rank \(rank) broadcast")
            XCTAssertEqual(values[3], "\([[0, 10], [1, 11], [2, 12], [3, 13]])", "rank \(rank) all-gather")
        }
    }

    func testAllGatherRejectsUnequalLengths() {
        let results = LocalGroup.run(size: 3) { communicator in
            try communicator.allGather([UInt8](repeating: 0, count: communicator.rank == 1 ? 2 : 1)).count
        }
        guard case .failure(let error) = results[0] else { return XCTFail("rank 0 should reject, got \(results[0])") }
        XCTAssertTrue("\(error)".contains("found [1, 2, 1] by rank"), "\(error)")
    }

    func testSingleProcessCommunicatorReturnsInputs() throws {
        let communicator = SingleProcessCommunicator()
        XCTAssertEqual(communicator.size, 1)
        XCTAssertEqual(try communicator.allReduceSum([1, 2]), [1, 2])
        XCTAssertEqual(try communicator.broadcast([7], root: 0), [7])
        XCTAssertThrowsError(try communicator.broadcast([7], root: 1))
        XCTAssertThrowsError(try communicator.receive(from: 0, tag: 1))
        try communicator.barrier()
    }

    // MARK: - Replica check

    func testReplicaCheckNamesDifferingRanks() {
        // Each rank returns its error instead of throwing it: a rank that throws marks the
        // in-process group as failed, and a slower rank still inside the all-gather would then
        // report that instead of its own mismatch.
        let results = LocalGroup.run(size: 4) { communicator -> CommError? in
            var parameters: [Float] = [1, 2, 3, 4]
            if communicator.rank == 1 || communicator.rank == 3 { parameters[2] = 3.0000002 }
            let hash = parameters.withUnsafeBufferPointer { ReplicaCheck.hash([$0]) }
            do {
                try ReplicaCheck.verify(hash: hash, communicator: communicator)
                return nil
            } catch let error as CommError {
                return error
            }
        }
        for (rank, result) in results.enumerated() {
            guard case .success(.some(CommError.replicaMismatch(let hashes, let differing))) = result else {
                XCTFail("rank \(rank) should report a mismatch, got \(result)")
                continue
            }
            XCTAssertEqual(differing, [1, 3], "rank \(rank)")
            XCTAssertEqual(hashes.count, 4)
            XCTAssertTrue("\(CommError.replicaMismatch(hashes: hashes, differingRanks: differing))".contains("ranks 1, 3 hold parameters different from rank 0"))
        }
    }

    func testReplicaCheckPassesForIdenticalParameters() throws {
        let results = LocalGroup.run(size: 3) { communicator -> UInt64 in
            let first: [Float] = [0.5, -1, 2]
            let second: [Float] = [4]
            let hash = first.withUnsafeBufferPointer { a in second.withUnsafeBufferPointer { b in ReplicaCheck.hash([a, b]) } }
            try ReplicaCheck.verify(hash: hash, communicator: communicator)
            return hash
        }
        let hashes = try results.map { try $0.get() }
        XCTAssertEqual(Set(hashes).count, 1)
    }

    func testReplicaHashDependsOnBufferSplit() {
        let values: [Float] = [1, 2, 3, 4]
        let whole = values.withUnsafeBufferPointer { ReplicaCheck.hash([$0]) }
        let split = values.withUnsafeBufferPointer { ReplicaCheck.hash([UnsafeBufferPointer(rebasing: $0[0..<2]), UnsafeBufferPointer(rebasing: $0[2...])]) }
        XCTAssertNotEqual(whole, split)
    }

    // MARK: - Launcher detection

    func testDetectsOpenMPI() {
        let info = LauncherInfo.detect(environment: [
            "OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_RANK": "1",
            "OMPI_COMM_WORLD_LOCAL_SIZE": "2", "SLURM_JOB_ID": "991", "SLURM_NODEID": "1", "PATH": "/bin",
        ])
        XCTAssertEqual(info.kind, .openMPI)
        XCTAssertEqual(info.rank, 3)
        XCTAssertEqual(info.size, 4)
        XCTAssertEqual(info.localRank, 1)
        XCTAssertEqual(info.localSize, 2)
        XCTAssertEqual(info.slurmNodeID, 1)
        XCTAssertEqual(info.slurmJobID, "991")
        XCTAssertTrue(info.isLaunched)
        XCTAssertEqual(
            info.description,
            "launcher: Open MPI (mpirun), Slurm job 991 [OMPI_COMM_WORLD_RANK=3 OMPI_COMM_WORLD_SIZE=4 "
                + "OMPI_COMM_WORLD_LOCAL_RANK=1 OMPI_COMM_WORLD_LOCAL_SIZE=2 SLURM_NODEID=1 SLURM_JOB_ID=991]"
        )
    }

    func testDetectsPMIPMIxAndSlurm() {
        let pmi = LauncherInfo.detect(environment: ["PMI_RANK": "2", "PMI_SIZE": "8", "MPI_LOCALRANKID": "0"])
        XCTAssertEqual(pmi.kind, .pmi)
        XCTAssertEqual(pmi.rank, 2)
        XCTAssertEqual(pmi.size, 8)
        XCTAssertEqual(pmi.localRank, 0)

        let pmix = LauncherInfo.detect(environment: ["PMIX_RANK": "5"])
        XCTAssertEqual(pmix.kind, .pmix)
        XCTAssertEqual(pmix.rank, 5)
        XCTAssertNil(pmix.size)

        let slurm = LauncherInfo.detect(environment: ["SLURM_PROCID": "7", "SLURM_NTASKS": "16", "SLURM_LOCALID": "3", "SLURM_NODEID": "1"])
        XCTAssertEqual(slurm.kind, .slurm)
        XCTAssertEqual(slurm.rank, 7)
        XCTAssertEqual(slurm.size, 16)
        XCTAssertEqual(slurm.localRank, 3)
        XCTAssertEqual(slurm.slurmNodeID, 1)
    }

    func testNoLauncherMeansSingleProcess() {
        let info = LauncherInfo.detect(environment: ["HOME": "/root"])
        XCTAssertEqual(info.kind, .none)
        XCTAssertFalse(info.isLaunched)
        XCTAssertEqual(info.description, "launcher: none (single process)")
    }

    func testRankLayoutCountsLocalRanks() {
        let layout = RankLayout(hosts: ["node-a", "node-b", "node-a", "node-a"])
        XCTAssertEqual((0..<4).map { layout.localRank(of: $0) }, [0, 0, 1, 2])
        XCTAssertEqual((0..<4).map { layout.localSize(of: $0) }, [3, 1, 3, 3])
        XCTAssertEqual(
            layout.description,
            "rank layout: 4 ranks on 2 hosts\n  node-a: ranks 0, 2, 3 (3 ranks)\n  node-b: ranks 1 (1 rank)"
        )
    }

    func testGatherLayoutOverLocalGroup() throws {
        let results = LocalGroup.run(size: 3) { communicator in
            try communicator.gatherLayout(hostName: communicator.rank == 2 ? "other" : "main")
        }
        XCTAssertEqual(try results[1].get().hosts, ["main", "main", "other"])
    }

    func testLimitsValidation() {
        XCTAssertNoThrow(try CommLimits().validate())
        XCTAssertThrowsError(try CommLimits(maxMessageBytes: 1 << 40).validate())
        XCTAssertThrowsError(try CommLimits(waitTimeout: 0).validate())
        XCTAssertThrowsError(try CommLimits(minPollInterval: 1e-3, maxPollInterval: 1e-4).validate())
    }
}
