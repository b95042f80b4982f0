// Fuzz target `npy`: one `.npy` file read from memory, then every element converted.
import Checkpoint

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNPY(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    do {
        let array = try readNPY(bytes: bytes, name: "fuzz.npy")
        if array.count * array.elementType.byteSize > size {
            fatalError("array of \(array.count) \(array.elementType) elements read from \(size) bytes")
        }
        consume(array)
    } catch {
        checkRejection(error, expectedType: CheckpointError.self, label: "fuzz.npy")
    }
    return 0
}
