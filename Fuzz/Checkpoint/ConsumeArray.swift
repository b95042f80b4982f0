// Reads every element of an array the way training code does, for the NPY and NPZ targets.
import Checkpoint

/// Reads `array`'s raw bytes and converts them with every accessor that applies to its element
/// type. A conversion error must be a `CheckpointError` that names the file.
func consume(_ array: NPYArray) {
    array.withUnsafeBytes { keepBytes($0) }
    keep(array.isAligned ? 1 : 0)

    let floats = array.floats()
    if floats.count != array.count {
        fatalError("floats() returned \(floats.count) values for \(array.count) elements")
    }
    keep(floats.count)

    guard array.elementType.isInteger else { return }
    do {
        keep(try array.ints().count)
        keep(try array.bools().count)
        keep(try array.int32s().count)
    } catch {
        checkRejection(error, expectedType: CheckpointError.self, label: array.file)
    }
}
