// Fuzz target `png`: PNG files through libpng and the C shim, seeded with PNGs of every color
// type and bit depth. See ImageFuzzing.swift.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPNG(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzImage(data, size, label: "fuzz.png")
    return 0
}
