/// Reading single `.npy` files.

/// Reads the `.npy` file at `path`. The data is memory-mapped, not copied. The array's key is
/// the file name without directory and `.npy` suffix.
public func readNPY(path: String, limits: CheckpointLimits = .default) throws -> NPYArray {
    let storage = try ByteStorage.map(path: path)
    let name = path.split(separator: "/").last.map(String.init) ?? path
    let key = name.hasSuffix(".npy") ? String(name.dropLast(4)) : name

    if storage.count > limits.maxMemberBytes {
        throw CheckpointError.limitExceeded(
            file: path, key: key, setting: "maxMemberBytes", limit: limits.maxMemberBytes, found: storage.count)
    }
    let header = try NPYHeader.parse(storage.bytes, file: path, key: key, limits: limits)
    return NPYArray(
        key: key, file: path, elementType: header.dtype, shape: header.shape, storage: storage,
        offset: header.headerByteCount)
}
