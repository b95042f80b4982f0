import Checkpoint
import TensorCore

/// Keeps an NPY array (and so its memory-mapped file) alive for the `StoredArray`s that
/// point into it.
private final class NPYArrayOwner {
    let array: NPYArray

    init(_ array: NPYArray) { self.array = array }
}

extension StoredArray {
    /// Wraps a floating-point NPY array without copying its bytes.
    ///
    /// Throws `CheckpointError.elementTypeMismatch` for integer or bool arrays.
    public init(_ array: NPYArray) throws {
        guard let dtype = array.dtype else {
            throw CheckpointError.elementTypeMismatch(
                file: array.file, key: array.key, requested: "f32, f16 or bf16 parameters", found: array.elementType.descr)
        }
        let owner = NPYArrayOwner(array)
        // The pointer outlives the closure, which is safe because `owner` keeps the mapping
        // alive for as long as this StoredArray exists.
        let bytes = array.withUnsafeBytes { $0 }
        try self.init(dtype: dtype, shape: array.shape, unsafeBytes: bytes, owner: owner, fileMapped: array.isMemoryMapped)
    }
}

extension ParameterStore {
    /// Loads every array of a PaliGemma checkpoint, inferring the config from the shapes.
    ///
    /// Stored (uncompressed) members are used in place from the memory-mapped file; only the
    /// trainable parameters are copied, into f32.
    public convenience init(npz reader: NPZReader, trainable pattern: String) throws {
        var arrays: [String: StoredArray] = [:]
        for key in reader.keys {
            arrays[key] = try StoredArray(reader.array(key))
        }
        try self.init(arrays: arrays, trainable: pattern)
    }
}
