import TensorCore

/// The precision keys and values are kept at in the cache.
public enum KVCachePrecision: String, Sendable, CaseIterable {
    /// Keys and values as computed: decoding equals the full forward pass to rounding.
    case f32
    /// Keys and values rounded to bfloat16 when written, as big_vision's default
    /// `cache_dtype="bfloat16"` does, the prompt's attention included.
    case bf16
}

/// Keys and values of every decoder layer for a batch of sequences that grow one token at a time.
///
/// Example b's tokens occupy slots 0, 1, 2, … of its rows in order: the real prompt tokens
/// (image tokens, then text without padding), then each generated token. Slot s is therefore
/// position s, so RoPE positions equal slot indices. Examples may hold different numbers
/// of tokens; nothing past an example's count is ever read.
///
/// Storage is allocated once for the whole decode and written in place, one slot per new
/// token. bf16 values are stored widened to f32 so that attention uses the f32 GEMM directly;
/// they are exactly the values big_vision reads back from its bf16 cache. At MQA sizes the
/// cache is small (pt-224: 18 layers × 512 slots × 256 × 2 × 4 bytes ≈ 19 MB per example).
final class KVCache {
    let precision: KVCachePrecision
    let batchSize: Int
    /// Slots per example.
    let capacity: Int
    let kvHeads: Int
    let headDim: Int
    /// Filled slots of each example.
    private(set) var counts: [Int]
    /// Per layer: f32[B, capacity, K, H].
    private var keys: [Tensor]
    private var values: [Tensor]

    init(precision: KVCachePrecision, layers: Int, batchSize: Int, capacity: Int, kvHeads: Int, headDim: Int) {
        self.precision = precision
        self.batchSize = batchSize
        self.capacity = capacity
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.counts = [Int](repeating: 0, count: batchSize)
        let shape = [batchSize, capacity, kvHeads, headDim]
        // Zero-filled so that the pages are touched once here, not during the first steps.
        keys = (0..<layers).map { _ in Tensor(zeros: shape) }
        values = (0..<layers).map { _ in Tensor(zeros: shape) }
    }

    /// Element offset of slot `slot` of example `b`, at kv head 0.
    func offset(example b: Int, slot: Int) -> Int {
        (b * capacity + slot) * kvHeads * headDim
    }

    /// Copies new keys and values into the cache, rounding them to the cache precision.
    ///
    /// - k, v: f32[R, K, H], one row per new token (keys already rotated)
    /// - slots: R (example, slot) pairs; each slot must be below `capacity`
    func write(layer: Int, k: Tensor, v: Tensor, slots: [(example: Int, slot: Int)]) {
        let rowWidth = kvHeads * headDim
        if k.count != slots.count * rowWidth || v.count != slots.count * rowWidth {
            fatalError("KVCache.write: k \(k.shape) and v \(v.shape) do not hold \(slots.count) rows of \(rowWidth)")
        }
        let round = precision == .bf16
        for (source, target) in [(k, 0), (v, 1)] {
            // The tensor is uniquely referenced here (no view of it outlives an attention call), so
            // this writes in place instead of copying the cache.
            let write = { (buffer: UnsafeMutableBufferPointer<Float>) in
                source.withUnsafeBufferPointer { rows in
                    for (row, location) in slots.enumerated() {
                        if location.slot < 0 || location.slot >= self.capacity {
                            fatalError("KVCache.write: slot \(location.slot) outside the capacity \(self.capacity)")
                        }
                        let to = buffer.baseAddress! + self.offset(example: location.example, slot: location.slot)
                        let from = rows.baseAddress! + row * rowWidth
                        if round {
                            for i in 0..<rowWidth { to[i] = float(fromBF16: bf16Bits(from: from[i])) }
                        } else {
                            to.update(from: from, count: rowWidth)
                        }
                    }
                }
            }
            if target == 0 {
                keys[layer].withUnsafeMutableBufferPointer(write)
            } else {
                values[layer].withUnsafeMutableBufferPointer(write)
            }
        }
    }

    /// Records that example `b` now has `count` tokens.
    func setCount(_ count: Int, example b: Int) {
        if count > capacity { fatalError("KVCache: \(count) tokens exceed the capacity \(capacity)") }
        counts[b] = count
    }

    /// Keys of one layer, f32[B, capacity, K, H]. Callers must not keep the tensor past the
    /// call that reads it, or the next write copies the whole layer.
    func keys(layer: Int) -> Tensor { keys[layer] }

    /// Values of one layer, f32[B, capacity, K, H]; the same rule as `keys(layer:)`.
    func values(layer: Int) -> Tensor { values[layer] }

    /// Base addresses of every layer's storage, for tests that check the cache is never copied.
    var storageAddresses: [UnsafeRawPointer] {
        (keys + values).map { tensor in tensor.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress!) } }
    }
}
