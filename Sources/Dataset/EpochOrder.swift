/// The deterministic order of examples: one permutation per epoch from the seed, cut into
/// global batches, each split between ranks.
///
/// The global batch at step k of an epoch is `permutation[k·G ..< (k+1)·G]` whatever the
/// number of ranks, so a run on 1 rank and a run on n ranks see the same examples at the same
/// global step. The incomplete last batch of an epoch is dropped; the next epoch's permutation
/// reshuffles every example, so none is left out for good.
public struct EpochOrder: Sendable, Equatable {
    /// The part of a global batch of G = B·n examples that each rank takes.
    public enum Sharding: String, Sendable, Codable {
        /// Rank r takes positions r·B ..< (r+1)·B.
        case contiguous
        /// Rank r takes positions r, r+n, r+2n, ….
        case strided
    }

    public let exampleCount: Int
    public let globalBatch: Int
    public let seed: UInt64

    public init(exampleCount: Int, globalBatch: Int, seed: UInt64) throws {
        guard globalBatch > 0 else {
            throw DatasetError.invalidLoaderSetting(name: "global batch", value: globalBatch, reason: "must be positive")
        }
        guard exampleCount >= globalBatch else {
            throw DatasetError.invalidLoaderSetting(
                name: "global batch", value: globalBatch,
                reason: "the split has only \(exampleCount) usable examples; use a global batch of at most \(exampleCount)")
        }
        self.exampleCount = exampleCount
        self.globalBatch = globalBatch
        self.seed = seed
    }

    /// Full global batches per epoch.
    public var stepsPerEpoch: Int { exampleCount / globalBatch }

    /// Returns a permutation of 0..<exampleCount, the same for the same seed and epoch on every
    /// machine.
    public func permutation(epoch: Int) -> [Int] {
        var generator = SplitMix64(seed: seed ^ (UInt64(truncatingIfNeeded: epoch) &* 0x9E37_79B9_7F4A_7C15))
        var order = Array(0..<exampleCount)
        // Fisher-Yates, written out: Swift's shuffle(using:) may change between releases.
        for i in stride(from: exampleCount - 1, to: 0, by: -1) {
            let j = Int(generator.next(below: UInt64(i + 1)))
            order.swapAt(i, j)
        }
        return order
    }

    /// Returns the example indices of the whole global batch at `step` of `epoch`: `[G]`.
    public func globalBatchIndices(epoch: Int, step: Int, permutation: [Int]? = nil) -> [Int] {
        let order = permutation ?? self.permutation(epoch: epoch)
        return Array(order[(step * globalBatch)..<((step + 1) * globalBatch)])
    }

    /// Returns the positions within the global batch that `rank` of `worldSize` takes:
    /// `[G / worldSize]`.
    public static func positions(rank: Int, worldSize: Int, globalBatch: Int, sharding: Sharding) -> [Int] {
        let local = globalBatch / worldSize
        switch sharding {
        case .contiguous: return Array((rank * local)..<((rank + 1) * local))
        case .strided: return Array(stride(from: rank, to: globalBatch, by: worldSize))
        }
    }
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a small generator whose output depends only on
/// the seed, so data order is reproducible across machines and Swift versions.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state = state &+ 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Returns a uniform value in 0..<bound, by rejection so that no value is favoured.
    mutating func next(below bound: UInt64) -> UInt64 {
        let limit = UInt64.max - UInt64.max % bound
        while true {
            let value = next()
            if value < limit { return value % bound }
        }
    }
}
