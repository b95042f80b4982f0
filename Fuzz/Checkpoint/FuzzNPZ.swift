// Fuzz target `npz`: an `.npz` archive (ZIP, with ZIP64 and deflate) read from memory. Every
// member's header and array are read, checksums verified and elements converted.
import Checkpoint

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNPZ(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let reader: NPZReader
    do {
        reader = try NPZReader(bytes: bytes, name: "fuzz.npz")
    } catch {
        checkRejection(error, expectedType: CheckpointError.self, label: "fuzz.npz")
        return 0
    }

    for key in reader.keys {
        readMember(key, from: reader)
    }

    // A missing key exercises the close-match search over all keys.
    do {
        _ = try reader.array("no/such/key")
        fatalError("array(\"no/such/key\") succeeded on an archive with keys \(reader.keys)")
    } catch {
        checkRejection(error, expectedType: CheckpointError.self, label: "fuzz.npz")
    }
    return 0
}

/// Reads one member three ways and checks that the header and the array agree.
private func readMember(_ key: String, from reader: NPZReader) {
    do {
        let header = try reader.header(key)
        let array = try reader.array(key)
        if header.dtype != array.elementType || header.shape != array.shape {
            fatalError(
                "header(\(key)) gives \(header.dtype) \(header.shape), array(\(key)) gives \(array.elementType) \(array.shape)")
        }
        consume(array)
    } catch {
        checkRejection(error, expectedType: CheckpointError.self, label: "fuzz.npz")
    }

    do {
        try reader.verifyChecksum(key)
    } catch {
        checkRejection(error, expectedType: CheckpointError.self, label: "fuzz.npz")
    }
}
