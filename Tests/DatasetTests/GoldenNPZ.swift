import Foundation

/// Reads int32 and float32 arrays from an uncompressed `np.savez` archive: enough for the golden
/// big_vision inputs and the image references. Test-only: the Checkpoint module owns NPZ I/O.
struct GoldenNPZ {
    struct Array2D {
        let shape: [Int]
        let values: [Int32]

        func row(_ index: Int) -> [Int32] {
            let width = shape[1]
            return Array(values[index * width..<(index + 1) * width])
        }
    }

    private var entries: [String: Data] = [:]

    init(path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        var offset = 0
        func u16(_ at: Int) -> Int { Int(data[at]) | Int(data[at + 1]) << 8 }
        func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
        func u64(_ at: Int) -> Int { u32(at) | u32(at + 4) << 32 }

        // Local file headers (signature PK\x03\x04), each followed by its stored bytes.
        while offset + 30 <= data.count && u32(offset) == 0x0403_4b50 {
            let method = u16(offset + 8)
            var size = u32(offset + 18)
            let nameLength = u16(offset + 26)
            let extraLength = u16(offset + 28)
            let name = String(decoding: data[offset + 30..<offset + 30 + nameLength], as: UTF8.self)
            let extraStart = offset + 30 + nameLength
            if size == 0xFFFF_FFFF {
                // Zip64 extra field (id 1): uncompressed then compressed size, 8 bytes each.
                var field = extraStart
                while field + 4 <= extraStart + extraLength {
                    if u16(field) == 1 { size = u64(field + 12) }
                    field += 4 + u16(field + 2)
                }
            }
            guard method == 0 else { throw CocoaError(.fileReadCorruptFile) }
            let start = extraStart + extraLength
            entries[name] = data.subdata(in: start..<start + size)
            offset = start + size
        }
    }

    var keys: [String] { entries.keys.map { String($0.dropLast(4)) }.sorted() }

    func int32(_ key: String) throws -> Array2D {
        let (shape, body) = try array(key, descr: "<i4")
        let values = body.withUnsafeBytes { raw in
            (0..<body.count / 4).map { Int32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
        }
        return Array2D(shape: shape, values: values)
    }

    func float32(_ key: String) throws -> (shape: [Int], values: [Float]) {
        let (shape, body) = try array(key, descr: "<f4")
        let values = body.withUnsafeBytes { raw in
            (0..<body.count / 4).map {
                Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)))
            }
        }
        return (shape, values)
    }

    private func array(_ key: String, descr: String) throws -> (shape: [Int], body: Data) {
        guard let npy = entries[key + ".npy"] else { throw CocoaError(.fileNoSuchFile) }
        let headerLength = Int(npy[npy.startIndex + 8]) | Int(npy[npy.startIndex + 9]) << 8
        let header = String(decoding: npy.dropFirst(10).prefix(headerLength), as: UTF8.self)
        guard header.contains("'descr': '\(descr)'"), header.contains("'fortran_order': False") else {
            throw CocoaError(.fileReadCorruptFile)
        }
        let shapeText = header.components(separatedBy: "'shape': (")[1].components(separatedBy: ")")[0]
        let shape = shapeText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        return (shape, Data(npy.dropFirst(10 + headerLength)))
    }
}
