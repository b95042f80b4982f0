import Foundation

/// Reads int32 arrays from an uncompressed `np.savez` archive, enough to compare the sequence
/// layout with the golden big_vision inputs. Test-only: the Checkpoint module owns real NPZ I/O.
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

    func int32(_ key: String) throws -> Array2D {
        guard let npy = entries[key + ".npy"] else { throw CocoaError(.fileNoSuchFile) }
        let headerLength = Int(npy[8]) | Int(npy[9]) << 8
        let header = String(decoding: npy[10..<10 + headerLength], as: UTF8.self)
        guard header.contains("'descr': '<i4'"), header.contains("'fortran_order': False") else {
            throw CocoaError(.fileReadCorruptFile)
        }
        let shapeText = header.components(separatedBy: "'shape': (")[1].components(separatedBy: ")")[0]
        let shape = shapeText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let body = npy.subdata(in: 10 + headerLength..<npy.count)
        let values = body.withUnsafeBytes { raw in
            (0..<body.count / 4).map { Int32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
        }
        return Array2D(shape: shape, values: values)
    }
}
