/// Reading single `.npy` files.

/// Reads the `.npy` file at `path`. The data is memory-mapped, not copied. The array's key is
/// the file name without directory and `.npy` suffix.
public func readNPY(path: String, limits: CheckpointLimits = .default) throws -> NPYArray {
    try readNPY(storage: ByteStorage.map(path: path), path: path, limits: limits)
}

/// Reads an `.npy` file held in memory. The bytes are copied, so the caller's buffer may go
/// away. `name` replaces the path: the array's key and `file` and the error messages use it.
public func readNPY(bytes: UnsafeRawBufferPointer, name: String = "<memory>.npy", limits: CheckpointLimits = .default) throws -> NPYArray {
    try readNPY(storage: ByteStorage.copy(of: bytes), path: name, limits: limits)
}

private func readNPY(storage: ByteStorage, path: String, limits: CheckpointLimits) throws -> NPYArray {
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

/// Writes `array` as the `.npy` file `path` (atomically unless `atomic` is false). The data
/// starts 64 bytes into the file, as numpy writes it.
public func writeNPY(path: String, array: NPYArray, atomic: Bool = true) throws {
    try array.withUnsafeBytes { bytes in
        try writeNPY(path: path, elementType: array.elementType, shape: array.shape, bytes: bytes, atomic: atomic)
    }
}

/// Writes raw little-endian element bytes as the `.npy` file `path`.
public func writeNPY(
    path: String, elementType: NPYDType, shape: [Int], bytes: UnsafeRawBufferPointer, atomic: Bool = true
) throws {
    let name = path.split(separator: "/").last.map(String.init) ?? path
    let key = name.hasSuffix(".npy") ? String(name.dropLast(4)) : name
    let expected = try checkedSizes(shape: shape, elementType: elementType, file: path, key: key).bytes
    if bytes.count != expected {
        throw CheckpointError.invalidWrite(
            file: path, key: key, expected: "\(expected) bytes for shape \(shapeText(shape)) of \(elementType.descr)",
            found: "\(bytes.count) bytes")
    }
    let file = try AtomicFile(path: path, atomic: atomic)
    try file.write(NPYHeader.encode(dtype: elementType, shape: shape))
    try file.write(bytes)
    try file.commit()
}
