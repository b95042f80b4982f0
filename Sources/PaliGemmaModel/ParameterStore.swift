import TensorCore

/// The parameters of one model, by big_vision name.
///
/// Trainable parameters (names matched by the trainable pattern) are held as f32 tensors that
/// the optimizer updates in place. Frozen parameters stay in their stored dtype, possibly inside
/// a memory-mapped file, and are expanded to f32 one layer at a time into reusable scratch
/// buffers when a layer runs. Not thread-safe: one model runs one pass at a time.
public final class ParameterStore {
    /// Sizes of the model these parameters belong to.
    public let config: PaliGemmaConfig
    /// The regular expression (searched anywhere in the name) that selected the trainable names.
    public let trainablePattern: String
    /// Every parameter name, in big_vision's sorted order.
    public let names: [String]

    enum Storage {
        case trainable(Tensor)
        case frozen(StoredArray)
    }

    private var storage: [String: Storage]
    private var specs: [String: ParameterTable.Spec]
    /// f32 buffers reused for frozen layers that cannot be borrowed as f32.
    private var scratch: [String: Tensor] = [:]

    /// How frozen weights enter the matrix products: f32 (exact), or bf16 operands with f32
    /// accumulation. Trainable weights are always f32.
    public var compute: ComputePrecision = .f32 {
        didSet { if compute == .f32 { bf16Copies = [:] } }
    }
    /// Bytes of bf16 copies of frozen weights kept from one pass to the next, for checkpoints
    /// that do not store bf16 already. Arrays beyond it are rounded one layer at a time on
    /// every use; lower it when several ranks share a machine.
    public var bf16CacheLimitBytes = 1 << 30
    /// Whole frozen arrays rounded to bf16 once, by name.
    var bf16Copies: [String: StoredArray] = [:]

    /// Whether the arrays that lie in a memory-mapped checkpoint give their pages back after
    /// each use. The model then calls `releaseMappedPages()` after each block and after each
    /// use of the token table, so this process keeps about one layer of the file resident.
    ///
    /// The pages stay in the kernel's page cache, shared by every process that maps the file,
    /// and are faulted in again on the next use. This matters wherever memory is accounted per
    /// process from the resident set size (VmRSS counts the mapped file pages a process has
    /// touched): with four ranks on one machine, each rank otherwise reports the whole
    /// checkpoint. It changes no value, and arrays generated or copied into memory are never
    /// affected.
    ///
    /// Cost: the pages are faulted in again on every use. A pt-224 bf16 step took 16 to 28 %
    /// longer in one process with two threads, 3 % longer with two single-thread ranks, and
    /// twice as long with four ranks on two cores (Docs/benchmarks.md). `palitrain train` and
    /// `palitrain bench` turn it on only when several ranks share the machine. It is on by
    /// default so that a caller that does not decide keeps the smaller footprint.
    public var releasesMappedPages = true
    /// Every array of the checkpoint that lies in a file mapping, trainable sources included.
    private let mappedArrays: [StoredArray]

    /// Takes the arrays of a checkpoint (names with or without `params/`) and infers the config.
    public convenience init(arrays: [String: StoredArray], trainable pattern: String) throws(PaliGemmaError) {
        var shapes: [String: [Int]] = [:]
        for (name, array) in arrays { shapes[name] = array.shape }
        let config = try PaliGemmaConfig.infer(from: shapes)
        try self.init(config: config, arrays: arrays, trainable: pattern)
    }

    /// Takes the arrays of a checkpoint for a known config; shapes must match it exactly.
    public init(config: PaliGemmaConfig, arrays: [String: StoredArray], trainable pattern: String) throws(PaliGemmaError) {
        var plain: [String: StoredArray] = [:]
        for (name, array) in arrays { plain[ParameterTable.stripPrefix(name)] = array }
        try config.validate(shapes: plain.mapValues(\.shape))

        let regex: Regex<AnyRegexOutput>
        do {
            regex = try Regex(pattern)
        } catch {
            throw .invalidPattern(pattern: pattern, reason: "\(error)")
        }

        let specList = ParameterTable.specs(for: config)
        var storage: [String: Storage] = [:]
        for spec in specList {
            let array = plain[spec.name]!
            let isTrainable = (try? regex.firstMatch(in: spec.name)) != nil
            guard isTrainable else {
                storage[spec.name] = .frozen(array)
                continue
            }

            // Trainable values live in owned f32 memory because the optimizer writes them.
            // `toTensor()` converts f16/bf16 into new memory already; only borrowed f32 needs a
            // copy. The stored bytes are never read again, so their mapped pages can go.
            let values = array.toTensor()
            storage[spec.name] = .trainable(array.isBorrowableAsFloat ? values.ownedCopy() : values)
            array.releaseResidentPages()
        }
        self.mappedArrays = specList.compactMap { plain[$0.name] }.filter(\.isFileMapped)
        self.config = config
        self.trainablePattern = pattern
        self.names = specList.map(\.name)
        self.storage = storage
        self.specs = Dictionary(uniqueKeysWithValues: specList.map { ($0.name, $0) })
    }

    // MARK: - Queries

    /// Returns whether `name` is updated by training.
    public func isTrainable(_ name: String) -> Bool {
        if case .trainable = entry(name) { return true }
        return false
    }

    /// Trainable names in big_vision order.
    public var trainableNames: [String] { names.filter(isTrainable) }

    /// True if any name with this prefix is trainable (e.g. "img/").
    public func anyTrainable(prefix: String) -> Bool {
        names.contains { $0.hasPrefix(prefix) && isTrainable($0) }
    }

    /// Shape of `name`.
    public func shape(of name: String) -> [Int] { spec(name).shape }

    /// Returns the dtype `name` is kept in: f32 for trainable parameters, the stored dtype otherwise.
    public func dtype(of name: String) -> DType {
        switch entry(name) {
        case .trainable: return .f32
        case .frozen(let array): return array.dtype
        }
    }

    /// Returns the array as stored: frozen ones as loaded, trainable ones as an f32 copy.
    public func storedArray(_ name: String) -> StoredArray {
        switch entry(name) {
        case .trainable(let tensor): return StoredArray(tensor, dtype: .f32)
        case .frozen(let array): return array
        }
    }

    /// Calls `body` with the dtype and little-endian bytes of `name` as held, without copying
    /// (for writing checkpoints). The bytes are valid only inside `body`. With
    /// `releasesMappedPages`, the pages of a file-mapped array are released after `body`.
    public func withStoredBytes<R>(_ name: String, _ body: (DType, UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch entry(name) {
        case .trainable(let tensor):
            return try tensor.withUnsafeBufferPointer { try body(.f32, UnsafeRawBufferPointer($0)) }
        case .frozen(let array):
            defer { if releasesMappedPages { array.releaseResidentPages() } }
            return try array.withUnsafeBytes { try body(array.dtype, $0) }
        }
    }

    /// Returns the whole array as f32 (converted for frozen arrays that are not f32).
    public func values(_ name: String) -> Tensor {
        switch entry(name) {
        case .trainable(let tensor): return tensor
        case .frozen(let array): return array.toTensor()
        }
    }

    /// Calls `body` with the writable f32 values of a trainable parameter (for the optimizer).
    public func withMutableValues<R>(_ name: String, _ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        guard case .trainable(var tensor) = entry(name) else {
            fatalError("ParameterStore.withMutableValues: '\(name)' is frozen; only trainable parameters can be updated")
        }
        // Drop the dictionary's reference so that the write happens in place, not on a copy.
        storage[name] = nil
        defer { storage[name] = .trainable(tensor) }
        return try tensor.withUnsafeMutableBufferPointer(body)
    }

    /// Applies one plain SGD step, p ← p − rate·g, to every trainable parameter.
    public func applySGD(_ gradients: GradientTable, learningRate rate: Float) {
        for name in trainableNames {
            guard let gradient = gradients[name] else { continue }
            withMutableValues(name) { values in
                gradient.withUnsafeBufferPointer { g in
                    for i in 0..<values.count { values[i] -= rate * g[i] }
                }
            }
        }
    }

    // MARK: - Layer access for the model

    /// f32 values of `name`, or of its layer `layer` when the array is stacked.
    ///
    /// Trainable and aligned f32 arrays are returned without a copy. Others are converted into a
    /// scratch buffer that is reused by the next call for the same name, so callers should not
    /// keep the result beyond the layer that uses it (if they do, it is copied, not corrupted).
    func weights(_ name: String, layer: Int? = nil) -> Tensor {
        switch entry(name) {
        case .trainable(let tensor):
            return layer.map { tensor.slice($0) } ?? tensor
        case .frozen(let array):
            let part = layer.map { array.slice($0) } ?? array
            return expandFrozen(part, scratchKey: name)
        }
    }

    /// f32 rows `range` of the 2-D array `name` (a slice of the token table for the logits).
    func weightRows(_ name: String, _ range: Range<Int>) -> Tensor {
        switch entry(name) {
        case .trainable(let tensor):
            return tensor.rows(range)
        case .frozen(let array):
            return expandFrozen(array.rows(range), scratchKey: name + "#rows")
        }
    }

    /// Returns the stored array of a frozen parameter, or nil when it is trainable.
    func frozenArray(_ name: String) -> StoredArray? {
        if case .frozen(let array) = entry(name) { return array }
        return nil
    }

    // MARK: - Releasing mapped pages

    /// Releases the resident pages of every array that lies in a file mapping, when
    /// `releasesMappedPages` is on (see there). Call it when no weight handed out by this store
    /// is being read: a later read still returns the same values, but faults its pages in again.
    ///
    /// Every mapped array is released, not only those used since the last call, because a read
    /// fault also maps neighbouring pages of the page cache (fault-around, or a whole large
    /// folio), which may belong to a layer released before. A call on pages that are not mapped
    /// costs little: about 0.07 ms for the whole 5.4 GiB pt-224 bf16 file on the machine of
    /// Docs/benchmarks.md.
    public func releaseMappedPages() {
        guard releasesMappedPages, !mappedArrays.isEmpty else { return }
        PhaseTimer.measure(StepPhase.pageRelease) {
            for array in mappedArrays { array.releaseResidentPages() }
        }
    }

    private func expandFrozen(_ array: StoredArray, scratchKey: String) -> Tensor {
        if array.isBorrowableAsFloat { return array.toTensor() }
        // Take the buffer out of the dictionary so that it is uniquely referenced while written.
        var buffer = scratch.removeValue(forKey: scratchKey) ?? Tensor(zeros: [0])
        array.expand(into: &buffer)
        scratch[scratchKey] = buffer
        return buffer
    }

    func entry(_ name: String) -> Storage {
        guard let entry = storage[name] else {
            fatalError("ParameterStore: no parameter named '\(name)'")
        }
        return entry
    }

    private func spec(_ name: String) -> ParameterTable.Spec {
        guard let spec = specs[name] else { fatalError("ParameterStore: no parameter named '\(name)'") }
        return spec
    }
}

extension Tensor {
    /// Copies the values into freshly allocated memory (never borrowed, never shared).
    func ownedCopy() -> Tensor {
        var copy = Tensor(uninitialized: shape)
        withUnsafeBufferPointer { source in
            copy.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: source.baseAddress!, count: count) }
        }
        return copy
    }
}

/// A gradient that the running backward pass will not change again: the whole array `name`, or
/// only its slice `layer` along the leading axis of a stacked array.
public struct GradientReady: Sendable, Equatable {
    public let name: String
    public let layer: Int?
}

/// Gradient buffers of the trainable parameters, by name.
public final class GradientTable {
    /// Trainable names in big_vision order.
    public let names: [String]
    private let buffers: [String: GradientBuffer]

    /// Creates zeroed buffers for every trainable parameter of `store`.
    public init(for store: ParameterStore) {
        names = store.trainableNames
        var buffers: [String: GradientBuffer] = [:]
        for name in names { buffers[name] = GradientBuffer(zeros: store.shape(of: name)) }
        self.buffers = buffers
    }

    /// The gradient of `name`, or nil when the parameter is frozen.
    public subscript(name: String) -> GradientBuffer? { buffers[name] }

    /// Sets every gradient to zero.
    public func zero() {
        for buffer in buffers.values { buffer.zero() }
    }

    /// Called by the backward pass when a gradient (or one layer of a stacked gradient) is final.
    var readyHandler: ((GradientReady) -> Void)?

    /// Reports every trainable name among `names` (at `layer` when stacked) as final.
    func markReady(_ names: [String], layer: Int? = nil) {
        guard let readyHandler else { return }
        for name in names where buffers[name] != nil { readyHandler(GradientReady(name: name, layer: layer)) }
    }

    /// Accumulation target for `name` (its layer `layer` when stacked), or nil when frozen.
    func target(_ name: String, layer: Int? = nil) -> GradientSlice? {
        guard let buffer = buffers[name] else { return nil }
        return layer.map { buffer.slice($0) } ?? buffer.whole
    }
}
