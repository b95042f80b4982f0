import TensorCore

/// Vision-encoder outputs of training images, computed once and reused in later epochs.
///
/// The vision encoder is every `img/` parameter except the head projection `img/head/`. When
/// none of them trains and the data pipeline gives an image the same pixels every epoch, the
/// encoder's output for that image (its tokens after encoder_norm, f32[P, D_vit]) never changes.
/// The cache keeps that output in memory under the image's key (`PaliGemmaBatch.imageKeys`), so
/// a later pass runs only the head projection for that image. The head may train.
///
/// Each entry also stores a 64-bit hash of the image's pixels. A key whose pixels changed (the
/// file was rewritten, or a data source reused a key) is counted as a content mismatch, and
/// its features are computed again and replace the entry.
///
/// Features are stored in `dtype`. Features computed in a pass are rounded to `dtype` too before
/// the pass uses them, so a pass gives the same result whether its images were cached or not,
/// and a run resumed with an empty cache continues bit for bit. With f32 the cached features are
/// the computed ones, bit for bit. An image whose features exceed the f16 range (|x| > 65504)
/// is kept in f32.
///
/// Entries that do not fit in `budgetBytes` (which counts the feature bytes only) are not
/// stored; those images are computed again each time they come. Nothing is ever evicted.
/// Not thread-safe: it belongs to one model, which runs one pass at a time.
public final class VisionFeatureCache {
    /// Counts since the cache was created.
    public struct Statistics: Sendable, Equatable {
        /// Images whose features came from the cache.
        public var hits = 0
        /// Images that ran through the encoder (not cached, over the budget, or changed pixels).
        public var misses = 0
        /// Misses whose features did not fit in the budget and were not stored.
        public var notStored = 0
        /// Keys found with other pixels than stored. Their entries were replaced.
        public var contentMismatches = 0
        /// Entries kept in f32 because their features exceed the f16 range.
        public var keptAsF32 = 0
        /// Times the entries were dropped because the model's compute precision changed.
        public var invalidations = 0

        public init() {}
    }

    /// Storage precision of the features: f16, bf16 or f32.
    public let dtype: DType
    /// Maximum bytes of feature values the entries may take.
    public let budgetBytes: Int
    public private(set) var statistics = Statistics()
    /// Bytes of feature values stored now.
    public private(set) var storedBytes = 0

    private struct Entry {
        let pixelHash: UInt64
        let features: StoredArray
    }

    private var entries: [String: Entry] = [:]
    /// The compute precision the entries were made with. Frozen weights enter the encoder's
    /// products in it, so another precision gives other features.
    private var entriesCompute: ComputePrecision?

    /// Largest finite f16 value.
    private static let float16Max: Float = 65504

    init(budgetBytes: Int, dtype: DType) {
        self.budgetBytes = budgetBytes
        self.dtype = dtype
    }

    /// Number of images stored.
    public var entryCount: Int { entries.count }

    /// Trainable parameters of the vision encoder: every trainable `img/` name except the head
    /// projection. The cache can be used only when this is empty.
    public static func trainableEncoderParameters(_ store: ParameterStore) -> [String] {
        store.trainableNames.filter { $0.hasPrefix("img/") && !$0.hasPrefix("img/head/") }
    }

    /// Bytes one image's features take in `dtype`.
    public static func bytesPerImage(_ config: PaliGemmaConfig, dtype: DType) -> Int {
        config.vision.numTokens * config.vision.width * dtype.byteSize
    }

    // MARK: - Lookup

    /// Returns the encoder output f32[B, P, D_vit] of `images` f32[B, H, W, C], rounded to
    /// `dtype`: cached entries for known keys and pixels, and `encode` run once on the other
    /// images (as one sub-batch, in batch order), whose results are then stored if they fit.
    func features(
        images: Tensor, keys: [String], compute: ComputePrecision, encode: (Tensor) -> Tensor
    ) -> Tensor {
        if entriesCompute != compute {
            if !entries.isEmpty { statistics.invalidations += 1 }
            entries = [:]
            storedBytes = 0
            entriesCompute = compute
        }
        let batchSize = images.shape[0]
        let pixels = images.reshaped([batchSize, images.count / batchSize])

        // 1. Entries whose key and pixels match.
        var found: [StoredArray?] = []
        var hashes: [UInt64] = []
        var missing: [Int] = []
        for b in 0..<batchSize {
            let hash = pixels.slice(b).withUnsafeBufferPointer(Self.pixelHash)
            hashes.append(hash)
            if let entry = entries[keys[b]] {
                if entry.pixelHash == hash {
                    found.append(entry.features)
                    statistics.hits += 1
                    continue
                }
                statistics.contentMismatches += 1
                remove(keys[b])
            }
            found.append(nil)
            missing.append(b)
        }

        // 2. The other images run through the encoder together; each result is rounded to the
        //    storage dtype and stored when it fits.
        if !missing.isEmpty {
            statistics.misses += missing.count
            let subBatch = Kernels.selectRows(pixels, missing).reshaped([missing.count] + Array(images.shape.dropFirst()))
            let computed = encode(subBatch)
            for (row, b) in missing.enumerated() {
                let stored = storable(computed.slice(row))
                found[b] = stored
                insert(keys[b], Entry(pixelHash: hashes[b], features: stored))
            }
        }

        // 3. Expand to f32 in batch order.
        let shape = found[0]!.shape
        let perImage = found[0]!.count
        var output = Tensor(uninitialized: [batchSize] + shape)
        output.withUnsafeMutableBufferPointer { out in
            for (b, array) in found.enumerated() {
                array!.withUnsafeBytes { bytes in
                    convertToFloat(bytes.baseAddress!, dtype: array!.dtype, count: perImage, into: out.baseAddress! + b * perImage)
                }
            }
        }
        return output
    }

    /// Drops every entry (the counts stay).
    public func removeAll() {
        entries = [:]
        storedBytes = 0
    }

    // MARK: - Entries

    /// Returns `features` in the storage dtype, or in f32 when they exceed the f16 range.
    private func storable(_ features: Tensor) -> StoredArray {
        if dtype == .f16 {
            let largest = features.withUnsafeBufferPointer { values in
                values.reduce(Float(0)) { max($0, $1.isFinite ? abs($1) : 0) }
            }
            if largest > Self.float16Max {
                statistics.keptAsF32 += 1
                return StoredArray(features, dtype: .f32)
            }
        }
        return StoredArray(features, dtype: dtype)
    }

    private func insert(_ key: String, _ entry: Entry) {
        remove(key)
        let bytes = entry.features.count * entry.features.dtype.byteSize
        guard storedBytes + bytes <= budgetBytes else {
            statistics.notStored += 1
            return
        }
        entries[key] = entry
        storedBytes += bytes
    }

    private func remove(_ key: String) {
        guard let old = entries.removeValue(forKey: key) else { return }
        storedBytes -= old.features.count * old.features.dtype.byteSize
    }

    /// Hashes the f32 bit patterns of one image with a multiply-xorshift mix of each 32-bit
    /// word. It detects changed pixels but is not meant to resist deliberate collisions.
    static func pixelHash(_ values: UnsafeBufferPointer<Float>) -> UInt64 {
        var hash: UInt64 = 0x6A09_E667_F3BC_C908 ^ UInt64(values.count)
        for value in values {
            hash = (hash ^ UInt64(value.bitPattern)) &* 0x9E37_79B9_7F4A_7C15
            hash ^= hash >> 31
        }
        return hash
    }
}

/// Reasons the vision-feature cache cannot be turned on.
public enum VisionFeatureCacheError: Error, CustomStringConvertible, Equatable {
    /// Parameters of the vision encoder train, so its output changes every step.
    case encoderTrains(parameters: [String], pattern: String)
    /// The budget is not positive.
    case invalidBudget(bytes: Int)

    public var description: String {
        switch self {
        case .encoderTrains(let parameters, let pattern):
            let listed = parameters.prefix(3).joined(separator: ", ") + (parameters.count > 3 ? ", ..." : "")
            return "the vision-feature cache needs a frozen vision encoder, but the trainable pattern '\(pattern)' "
                + "trains \(parameters.count) of its parameters (\(listed)); turn the cache off, or train no img/ "
                + "parameter except img/head/"
        case .invalidBudget(let bytes):
            return "the vision-feature cache budget must be positive, found \(bytes) bytes; turn the cache off instead"
        }
    }
}
