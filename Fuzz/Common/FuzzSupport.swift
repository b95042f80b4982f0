// Helpers shared by every fuzz target. scripts/fuzz compiles this file into each target.

/// A sink for values computed from fuzzer input, so the optimizer cannot drop the reads that
/// produce them. Only the fuzzer's single thread touches it.
nonisolated(unsafe) var fuzzSink: UInt64 = 0

/// Folds `value` into `fuzzSink`.
@inline(never)
func keep(_ value: Int) {
    fuzzSink = fuzzSink &* 31 &+ UInt64(truncatingIfNeeded: value)
}

/// Folds every byte of `bytes` into `fuzzSink`, so a read past the end of the buffer trips the
/// address sanitizer.
@inline(never)
func keepBytes(_ bytes: UnsafeRawBufferPointer) {
    var sum: UInt64 = 0
    for byte in bytes {
        sum = sum &+ UInt64(byte)
    }
    fuzzSink = fuzzSink &+ sum
}

/// Checks the contract for rejected input: the parser threw its module's typed error, and the
/// message is not empty and names the input's label (when `label` is given). A violation stops
/// the fuzzer, which keeps the input as a finding.
func checkRejection<E: Error>(_ error: any Error, expectedType: E.Type, label: String?) {
    guard error is E else {
        fatalError("rejection threw \(type(of: error)), expected \(E.self): \(error)")
    }
    let message = "\(error)"
    if message.isEmpty {
        fatalError("\(E.self) has an empty message")
    }
    if let label, !message.contains(label) {
        fatalError("message does not name the input '\(label)': \(message)")
    }
    keep(message.utf8.count)
}
