/// Checks that all ranks have the same parameters, as data-parallel replicas must.
public enum ReplicaCheck {
    /// Hashes the parameter values to 64 bits: XXH64 of each buffer's bytes, chained through
    /// the seed in buffer order, so that the order and the split into buffers count too.
    /// Two ranks with bit-identical parameters get the same hash.
    public static func hash(_ buffers: [UnsafeBufferPointer<Float>]) -> UInt64 {
        var hash: UInt64 = UInt64(buffers.count)
        for buffer in buffers {
            hash = XXHash64.hash(UnsafeRawBufferPointer(buffer), seed: hash)
        }
        return hash
    }

    /// Gathers every rank's parameter hash and throws `CommError.replicaMismatch`, naming the
    /// ranks whose hash differs from rank 0's, unless all are equal. A collective call: every
    /// rank must make it, and every rank throws the same error.
    public static func verify(hash: UInt64, communicator: any Communicator) throws {
        let bytes = withUnsafeBytes(of: hash.littleEndian) { Array($0) }
        let hashes = try communicator.allGather(bytes).map { gathered in
            gathered.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        }
        let differing = hashes.indices.filter { hashes[$0] != hashes[0] }
        guard differing.isEmpty else {
            throw CommError.replicaMismatch(hashes: hashes, differingRanks: differing)
        }
    }
}
