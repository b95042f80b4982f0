/// Applies an EXIF orientation while converting samples to floats on the 0…255 scale.
enum ImageOrientation {
    /// Returns `[height', width', 3]` floats where width' and height' are swapped for
    /// orientations 5…8. 16-bit samples are scaled by 255/65535 (= 1/257), so the full
    /// 16-bit range maps onto the 8-bit range without clamping.
    static func orientedFloats(_ image: DecodedImage, orientation: Int) -> (pixels: [Float], width: Int, height: Int) {
        let width = image.width
        let height = image.height
        let swaps = orientation >= 5 && orientation <= 8
        let outWidth = swaps ? height : width
        let outHeight = swaps ? width : height
        var result = [Float](repeating: 0, count: outWidth * outHeight * 3)

        // Source offset of output pixel (x, y) = base + x * stepX + y * stepY, in pixels.
        let (base, stepX, stepY): (Int, Int, Int)
        switch orientation {
        case 2: (base, stepX, stepY) = (width - 1, -1, width)  // mirror left-right
        case 3: (base, stepX, stepY) = (width * height - 1, -1, -width)  // rotate 180
        case 4: (base, stepX, stepY) = ((height - 1) * width, 1, -width)  // mirror top-bottom
        case 5: (base, stepX, stepY) = (0, width, 1)  // transpose
        case 6: (base, stepX, stepY) = ((height - 1) * width, -width, 1)  // rotate 90 clockwise
        case 7: (base, stepX, stepY) = (width * height - 1, -width, -1)  // transverse
        case 8: (base, stepX, stepY) = (width - 1, width, -1)  // rotate 90 counter-clockwise
        default: (base, stepX, stepY) = (0, 1, width)
        }

        result.withUnsafeMutableBufferPointer { output in
            func copy<Sample>(_ source: UnsafeBufferPointer<Sample>, _ convert: (Sample) -> Float) {
                for y in 0..<outHeight {
                    for x in 0..<outWidth {
                        let from = (base + x * stepX + y * stepY) * 3
                        let to = (y * outWidth + x) * 3
                        output[to] = convert(source[from])
                        output[to + 1] = convert(source[from + 1])
                        output[to + 2] = convert(source[from + 2])
                    }
                }
            }
            if let samples = image.samples8 {
                copy(samples) { Float($0) }
            } else if let samples = image.samples16 {
                copy(samples) { Float($0) / 257 }
            }
        }
        return (result, outWidth, outHeight)
    }
}
