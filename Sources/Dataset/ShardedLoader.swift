import Foundation

/// The loader's position, saved with a checkpoint for an exact resume.
public struct LoaderCursor: Codable, Equatable, Sendable {
    /// The epoch and step of the next batch `next()` returns.
    public var epoch: Int
    public var step: Int
    /// What the order depends on; a resume with other values is rejected.
    public var seed: UInt64
    public var globalBatch: Int
    public var exampleCount: Int
    /// A hash of the examples' source files, lines and image names, in order.
    public var examplesFingerprint: String

    enum CodingKeys: String, CodingKey {
        case epoch, step, seed
        case globalBatch = "global_batch"
        case exampleCount = "example_count"
        case examplesFingerprint = "examples_fingerprint"
    }
}

/// Prepares one rank's batches on a background thread, a bounded number ahead.
///
/// Each global batch of G examples is split between `worldSize` ranks (B = G / worldSize
/// each). Which examples form global step k depends only on the seed, the epoch and the
/// examples, never on the number of ranks, and preparing an example is deterministic, so the
/// per-example content is the same for any `worldSize`.
public final class ShardedLoader: Sendable {
    public let order: EpochOrder
    public let rank: Int
    public let worldSize: Int
    public let sharding: EpochOrder.Sharding
    public let prefetch: Int
    private let fingerprint: String
    private let queue: BatchQueue

    /// - globalBatch: examples per global step, over all ranks; a multiple of `worldSize`.
    /// - prefetch: batches prepared ahead of `next()` (at least 1).
    /// - resumeFrom: a cursor saved from a loader over the same examples, seed and batch.
    public init(
        examples: [Example], preparer: ExamplePreparer, globalBatch: Int, rank: Int, worldSize: Int, seed: UInt64,
        sharding: EpochOrder.Sharding = .contiguous, prefetch: Int = 2, resumeFrom cursor: LoaderCursor? = nil
    ) throws {
        guard worldSize > 0 else {
            throw DatasetError.invalidLoaderSetting(name: "world size", value: worldSize, reason: "must be positive")
        }
        guard rank >= 0 && rank < worldSize else {
            throw DatasetError.invalidLoaderSetting(name: "rank", value: rank, reason: "must be in 0..<\(worldSize)")
        }
        guard globalBatch % worldSize == 0 else {
            throw DatasetError.invalidLoaderSetting(
                name: "global batch", value: globalBatch,
                reason: "must be a multiple of the \(worldSize) ranks so that every rank gets the same batch size")
        }
        let order = try EpochOrder(exampleCount: examples.count, globalBatch: globalBatch, seed: seed)
        self.order = order
        self.rank = rank
        self.worldSize = worldSize
        self.sharding = sharding
        self.prefetch = max(1, prefetch)
        self.fingerprint = Self.fingerprint(examples)

        var start = BatchPosition(epoch: 0, step: 0)
        if let cursor {
            try Self.check(cursor, seed: seed, globalBatch: globalBatch, examples: examples, fingerprint: fingerprint)
            start = BatchPosition(epoch: cursor.epoch, step: cursor.step)
        }

        // The thread references only the queue and the producer, never the loader, so
        // releasing the loader runs deinit, which stops the thread.
        let queue = BatchQueue(capacity: self.prefetch, start: start, stepsPerEpoch: order.stepsPerEpoch)
        self.queue = queue
        let producer = BatchProducer(
            order: order, examples: examples, preparer: preparer,
            positions: EpochOrder.positions(rank: rank, worldSize: worldSize, globalBatch: globalBatch, sharding: sharding))
        let first = start
        let thread = Thread { producer.run(into: queue, from: first) }
        thread.name = "palitrain-loader-rank\(rank)"
        thread.start()
    }

    deinit {
        queue.stop()
    }

    public var stepsPerEpoch: Int { order.stepsPerEpoch }
    public var localBatchSize: Int { order.globalBatch / worldSize }

    /// The position the next `next()` call continues from; save it with a checkpoint.
    public var cursor: LoaderCursor {
        let position = queue.consumed
        return LoaderCursor(
            epoch: position.epoch, step: position.step, seed: order.seed, globalBatch: order.globalBatch,
            exampleCount: order.exampleCount, examplesFingerprint: fingerprint)
    }

    /// Batches prepared and waiting (at most `prefetch`).
    public var bufferedCount: Int { queue.count }

    /// Returns the next batch of this rank, waiting for the loader thread if needed. Throws
    /// the error of an example that failed to prepare, naming its record.
    public func next() throws -> Batch {
        try queue.pop()
    }

    /// Stops the loader thread and waits for it to finish the batch it is preparing.
    public func stop() {
        queue.stop()
    }

    // MARK: - Resume checks

    private static func check(
        _ cursor: LoaderCursor, seed: UInt64, globalBatch: Int, examples: [Example], fingerprint: String
    ) throws {
        if cursor.seed != seed {
            throw DatasetError.cursorMismatch(field: "seed", saved: "\(cursor.seed)", current: "\(seed)")
        }
        if cursor.globalBatch != globalBatch {
            throw DatasetError.cursorMismatch(field: "global batch", saved: "\(cursor.globalBatch)", current: "\(globalBatch)")
        }
        if cursor.exampleCount != examples.count {
            throw DatasetError.cursorMismatch(
                field: "number of examples", saved: "\(cursor.exampleCount)", current: "\(examples.count)")
        }
        if cursor.examplesFingerprint != fingerprint {
            throw DatasetError.cursorMismatch(
                field: "examples fingerprint", saved: cursor.examplesFingerprint, current: fingerprint)
        }
        if cursor.epoch < 0 || cursor.step < 0 || cursor.step >= examples.count / globalBatch {
            throw DatasetError.cursorMismatch(
                field: "position", saved: "epoch \(cursor.epoch) step \(cursor.step)",
                current: "\(examples.count / globalBatch) steps per epoch")
        }
    }

    /// 64-bit FNV-1a over each example's file, line and image, as 16 hex digits.
    static func fingerprint(_ examples: [Example]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for example in examples {
            for byte in "\(example.sourceFile)\n\(example.line)\n\(example.image)\n".utf8 {
                hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            }
        }
        let text = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }
}

struct BatchPosition: Sendable, Equatable {
    var epoch: Int
    var step: Int

    func advanced(stepsPerEpoch: Int) -> BatchPosition {
        step + 1 < stepsPerEpoch ? BatchPosition(epoch: epoch, step: step + 1) : BatchPosition(epoch: epoch + 1, step: 0)
    }
}

/// The bounded queue between the loader thread and `next()`.
final class BatchQueue: @unchecked Sendable {
    // NOTE: @unchecked Sendable is sound because every mutable field is only touched while
    // holding `condition`.
    private let condition = NSCondition()
    private let capacity: Int
    private let stepsPerEpoch: Int
    private var items: [Result<Batch, any Error>] = []
    private var consumedPosition: BatchPosition
    private var stopping = false
    private var producerDone = false
    private let producerExited = DispatchSemaphore(value: 0)

    init(capacity: Int, start: BatchPosition, stepsPerEpoch: Int) {
        self.capacity = capacity
        self.consumedPosition = start
        self.stepsPerEpoch = stepsPerEpoch
    }

    var consumed: BatchPosition {
        condition.lock()
        defer { condition.unlock() }
        return consumedPosition
    }

    var count: Int {
        condition.lock()
        defer { condition.unlock() }
        return items.count
    }

    /// Called by the producer: waits for room; returns false when the loader is stopping.
    func waitForRoom() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while items.count >= capacity && !stopping { condition.wait() }
        return !stopping
    }

    func push(_ item: Result<Batch, any Error>) {
        condition.lock()
        items.append(item)
        condition.broadcast()
        condition.unlock()
    }

    func pop() throws -> Batch {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty {
            if stopping || producerDone {
                throw DatasetError.loaderStopped
            }
            condition.wait()
        }
        let item = items.removeFirst()
        condition.broadcast()
        let batch = try item.get()
        consumedPosition = BatchPosition(epoch: batch.epoch, step: batch.step).advanced(stepsPerEpoch: stepsPerEpoch)
        return batch
    }

    func producerFinished() {
        condition.lock()
        producerDone = true
        condition.broadcast()
        condition.unlock()
        producerExited.signal()
    }

    /// Discards prepared batches and waits for the producer to exit.
    func stop() {
        condition.lock()
        let running = !producerDone && !stopping
        stopping = true
        items.removeAll()
        condition.broadcast()
        condition.unlock()
        if running { producerExited.wait() }
    }
}

/// The loader thread's work: batch after batch, in order, until stopped or an example fails.
struct BatchProducer: Sendable {
    let order: EpochOrder
    let examples: [Example]
    let preparer: ExamplePreparer
    /// This rank's positions within each global batch.
    let positions: [Int]

    func run(into queue: BatchQueue, from start: BatchPosition) {
        defer { queue.producerFinished() }
        var position = start
        var permutation = order.permutation(epoch: position.epoch)
        var permutationEpoch = position.epoch

        while queue.waitForRoom() {
            if permutationEpoch != position.epoch {
                permutation = order.permutation(epoch: position.epoch)
                permutationEpoch = position.epoch
            }
            let global = order.globalBatchIndices(epoch: position.epoch, step: position.step, permutation: permutation)
            let result = Result { try prepareBatch(global, at: position) }
            queue.push(result)
            if case .failure = result { return }
            position = position.advanced(stepsPerEpoch: order.stepsPerEpoch)
        }
    }

    private func prepareBatch(_ global: [Int], at position: BatchPosition) throws -> Batch {
        var batch = Batch(
            epoch: position.epoch, step: position.step, batchSize: positions.count, imageSize: preparer.images.size,
            rowLength: preparer.sequences.layout.textLength + 1)
        for (index, slot) in positions.enumerated() {
            let example = examples[global[slot]]
            batch.set(index, try preparer.prepare(example))
            batch.examples.append(example)
        }
        return batch
    }
}
