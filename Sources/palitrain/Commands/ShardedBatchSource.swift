import Dataset
import Foundation
import PaliGemmaModel
import TensorCore
import Training

/// Serves each rank its share of every global batch, decoded ahead on a background thread.
///
/// Global step k covers global example slots k·B ..< (k+1)·B. Slot g lies in epoch g / N at
/// position g % N of that epoch's permutation, a shuffle seeded by (seed, epoch). Rank r of n
/// takes slots [r·B/n, (r+1)·B/n) of the step and splits them into micro-batches in order, so
/// the examples of step k never depend on the number of ranks.
final class ShardedBatchSource: TrainingDataSource, @unchecked Sendable {
    let examples: [Example]
    let builder: SequenceBuilder
    let preprocessor: ImagePreprocessor
    let globalBatchSize: Int
    let gradientAccumulation: Int
    let rank: Int
    let worldSize: Int
    let seed: UInt64

    var examplesPerEpoch: Int { examples.count }
    var microBatchSize: Int { globalBatchSize / (worldSize * gradientAccumulation) }

    /// Guards `ready`, `requested` and `permutations`.
    private let condition = NSCondition()
    /// Decoded micro-batches by key `step * gradientAccumulation + microStep`.
    private var ready: [Int: Result<PaliGemmaBatch, Error>] = [:]
    /// The next key not yet handed to a background decode.
    private var requested = 0
    /// Micro-batches decoded ahead of the one in use.
    private let lookahead = 2
    private var permutations: [Int: [Int]] = [:]

    init(
        examples: [Example], builder: SequenceBuilder, preprocessor: ImagePreprocessor, globalBatchSize: Int,
        gradientAccumulation: Int, rank: Int, worldSize: Int, seed: UInt64
    ) throws {
        self.examples = examples
        self.builder = builder
        self.preprocessor = preprocessor
        self.globalBatchSize = globalBatchSize
        self.gradientAccumulation = gradientAccumulation
        self.rank = rank
        self.worldSize = worldSize
        self.seed = seed
    }

    func batch(step: Int, microStep: Int) throws -> PaliGemmaBatch {
        let key = step * gradientAccumulation + microStep
        condition.lock()
        defer { condition.unlock() }

        // Keys run in order; a resumed run starts past 0, and nothing before it is decoded.
        if requested <= key {
            requested = key
        }
        while requested <= key + lookahead {
            scheduleDecode(key: requested)
            requested += 1
        }
        while ready[key] == nil {
            condition.wait()
        }
        return try ready.removeValue(forKey: key)!.get()
    }

    /// Decodes the batch `key` on a background queue (called with the lock held).
    private func scheduleDecode(key: Int) {
        DispatchQueue.global(qos: .userInitiated).async { [self] in
            let result = Result { try self.assemble(key: key) }
            condition.lock()
            ready[key] = result
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Example indices of micro-batch `key` on this rank.
    func exampleIndices(key: Int) -> [Int] {
        let step = key / gradientAccumulation
        let micro = key % gradientAccumulation
        let firstSlot = step * globalBatchSize + rank * (globalBatchSize / worldSize) + micro * microBatchSize
        return (firstSlot..<(firstSlot + microBatchSize)).map { slot in
            let epoch = slot / examples.count
            return permutation(epoch: epoch)[slot % examples.count]
        }
    }

    private func permutation(epoch: Int) -> [Int] {
        condition.lock()
        defer { condition.unlock() }
        if let cached = permutations[epoch] { return cached }
        var generator = SplitMix64(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
        var order = Array(examples.indices)
        // Fisher-Yates with the project's own generator, so the order never depends on the
        // standard library's shuffle algorithm.
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            let j = Int(generator.next() % UInt64(i + 1))
            order.swapAt(i, j)
        }
        permutations[epoch] = order
        permutations = permutations.filter { $0.key >= epoch - 1 }
        return order
    }

    private func assemble(key: Int) throws -> PaliGemmaBatch {
        let indices = exampleIndices(key: key)
        let size = preprocessor.size
        var pixels: [Float] = []
        pixels.reserveCapacity(indices.count * size * size * 3)
        var text: [Int32] = [], maskAR: [Int32] = [], maskLoss: [Int32] = []
        for index in indices {
            let example = examples[index]
            let image = try preprocessor.load(path: example.imagePath)
            pixels += image.pixels
            let row = try builder.trainingRow(prefix: example.prefix, suffix: example.suffix)
            text += row.text
            maskAR += row.maskAR
            maskLoss += row.maskLoss
        }
        let images = Tensor(shape: [indices.count, size, size, 3], values: pixels)
        return try PaliGemmaBatch(images: images, text: text, maskAR: maskAR, maskLoss: maskLoss)
    }
}

/// SplitMix64, a small generator whose sequence depends only on its seed.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
