import TensorCore

#if canImport(Glibc)
import Glibc
#endif

/// Typed, converted copies of an array's elements. Each accessor works at any alignment.
extension NPYArray {
    /// Returns the elements converted to f32. Integer and bool arrays convert exactly up to 2^24.
    public func floats() -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            copyFloats(into: buffer)
            initialized = count
        }
    }

    /// Converts the elements to f32 into `destination`, which must hold exactly `count` values.
    /// Use it to fill a parameter buffer without an intermediate array.
    public func copyFloats(into destination: UnsafeMutableBufferPointer<Float>) {
        precondition(
            destination.count == count,
            "copyFloats: destination has room for \(destination.count) floats, array '\(key)' has \(count) elements")
        guard let target = destination.baseAddress else { return }

        forEachAlignedChunk { source, start, chunkCount in
            let output = target + start
            switch elementType {
            case .float32, .float16, .bfloat16:
                // floatDType is non-nil for exactly these three cases.
                convertToFloat(source, dtype: elementType.floatDType ?? .f32, count: chunkCount, into: output)
            case .int32:
                let values = source.assumingMemoryBound(to: Int32.self)
                for i in 0..<chunkCount { output[i] = Float(Int32(littleEndian: values[i])) }
            case .int64:
                let values = source.assumingMemoryBound(to: Int64.self)
                for i in 0..<chunkCount { output[i] = Float(Int64(littleEndian: values[i])) }
            case .int8:
                let values = source.assumingMemoryBound(to: Int8.self)
                for i in 0..<chunkCount { output[i] = Float(values[i]) }
            case .uint8, .bool:
                let values = source.assumingMemoryBound(to: UInt8.self)
                for i in 0..<chunkCount { output[i] = Float(values[i]) }
            }
        }
    }

    /// Returns the elements as Int32. Reads int32, int8, uint8 and bool arrays, and int64 arrays
    /// whose values fit; throws for floating-point arrays.
    public func int32s() throws -> [Int32] {
        let wide = try integers(requested: "int32")
        var result = [Int32]()
        result.reserveCapacity(wide.count)
        for (index, value) in wide.enumerated() {
            guard let narrow = Int32(exactly: value) else {
                throw CheckpointError.elementTypeMismatch(
                    file: file, key: key, requested: "int32",
                    found: "\(elementType.descr) value \(value) at flat index \(index)")
            }
            result.append(narrow)
        }
        return result
    }

    /// Returns the elements as Int. Reads every integer type and bool; throws for
    /// floating-point arrays.
    public func ints() throws -> [Int] {
        try integers(requested: "Int")
    }

    /// Returns the bools as 0 or 1 and the integers widened to Int; throws, naming `requested`,
    /// for floating-point arrays.
    private func integers(requested: String) throws -> [Int] {
        guard elementType.isInteger else {
            throw CheckpointError.elementTypeMismatch(file: file, key: key, requested: requested, found: elementType.descr)
        }
        var result = [Int](repeating: 0, count: count)
        forEachAlignedChunk { source, start, chunkCount in
            for i in 0..<chunkCount {
                switch elementType {
                case .int32: result[start + i] = Int(Int32(littleEndian: source.load(fromByteOffset: 4 * i, as: Int32.self)))
                case .int64: result[start + i] = Int(Int64(littleEndian: source.load(fromByteOffset: 8 * i, as: Int64.self)))
                case .int8: result[start + i] = Int(source.load(fromByteOffset: i, as: Int8.self))
                case .uint8, .bool: result[start + i] = Int(source.load(fromByteOffset: i, as: UInt8.self))
                case .float32, .float16, .bfloat16: break
                }
            }
        }
        return result
    }

    /// Returns the elements as Bool (non-zero is true). Reads bool and integer arrays.
    public func bools() throws -> [Bool] {
        try integers(requested: "Bool").map { $0 != 0 }
    }

    /// Calls `body` on consecutive runs of elements with a pointer aligned for the element type.
    /// Aligned data is passed in one run; unaligned data is copied through a 64 KiB scratch buffer.
    private func forEachAlignedChunk(_ body: (UnsafeRawPointer, _ start: Int, _ count: Int) -> Void) {
        let elementSize = elementType.byteSize
        withUnsafeBytes { bytes in
            guard let base = bytes.baseAddress, count > 0 else { return }
            if Int(bitPattern: base) % elementSize == 0 {
                body(base, 0, count)
                return
            }

            let chunkElements = 65_536 / elementSize
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: 65_536, alignment: 64)
            defer { scratch.deallocate() }
            var start = 0
            while start < count {
                let chunkCount = min(chunkElements, count - start)
                memcpy(scratch, base + start * elementSize, chunkCount * elementSize)
                body(UnsafeRawPointer(scratch), start, chunkCount)
                start += chunkCount
            }
        }
    }
}
