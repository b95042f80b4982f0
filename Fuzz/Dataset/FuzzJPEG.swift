// Fuzz target `jpeg`: JPEG files through libjpeg-turbo and the C shim (EXIF orientation
// included), seeded with JPEGs. See ImageFuzzing.swift.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJPEG(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzImage(data, size, label: "fuzz.jpg")
    return 0
}
