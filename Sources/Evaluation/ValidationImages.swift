import Dataset
import Foundation

/// An image as people see it: RGB8 pixels with the EXIF orientation applied, the frame that
/// ground-truth and predicted boxes refer to.
public struct OrientedImage: Sendable {
    /// uint8[height, width, 3], row-major RGB.
    public var pixels: [UInt8]
    public var width: Int
    public var height: Int

    public init(pixels: [UInt8], width: Int, height: Int) {
        self.pixels = pixels
        self.width = width
        self.height = height
    }

    /// Reads and decodes a JPEG or PNG, applying its EXIF orientation. The decoder returns RGB
    /// (grayscale as three equal channels, alpha dropped), and 16-bit samples are rounded to
    /// 8 bits (÷257).
    public static func load(path: String, limits: DatasetLimits = DatasetLimits()) throws -> OrientedImage {
        let data = try ImageDecoder.readFile(path: path, limits: limits)
        let image = try ImageDecoder.decode(data: data, path: path, limits: limits)
        let (width, height) = (image.width, image.height)
        let orientation = image.info.orientation
        let swaps = (5...8).contains(orientation)
        let (outWidth, outHeight) = swaps ? (height, width) : (width, height)

        // Stored pixel (column, row) shown at output pixel (x, y), per EXIF orientation 1...8.
        func source(_ x: Int, _ y: Int) -> Int {
            let (column, row): (Int, Int)
            switch orientation {
            case 2: (column, row) = (width - 1 - x, y)  // mirrored left-right
            case 3: (column, row) = (width - 1 - x, height - 1 - y)  // rotated 180°
            case 4: (column, row) = (x, height - 1 - y)  // mirrored top-bottom
            case 5: (column, row) = (y, x)  // transposed
            case 6: (column, row) = (y, height - 1 - x)  // shown rotated 90° clockwise
            case 7: (column, row) = (width - 1 - y, height - 1 - x)  // transversed
            case 8: (column, row) = (width - 1 - y, x)  // shown rotated 90° counter-clockwise
            default: (column, row) = (x, y)
            }
            return (row * width + column) * 3
        }

        var pixels = [UInt8](repeating: 0, count: outWidth * outHeight * 3)
        pixels.withUnsafeMutableBufferPointer { output in
            func copy<Sample>(_ samples: UnsafeBufferPointer<Sample>, _ convert: (Sample) -> UInt8) {
                for y in 0..<outHeight {
                    for x in 0..<outWidth {
                        let from = source(x, y)
                        let to = (y * outWidth + x) * 3
                        output[to] = convert(samples[from])
                        output[to + 1] = convert(samples[from + 1])
                        output[to + 2] = convert(samples[from + 2])
                    }
                }
            }
            if let samples = image.samples8 {
                copy(samples) { $0 }
            } else if let samples = image.samples16 {
                copy(samples) { UInt8((UInt32($0) + 128) / 257) }
            }
        }
        return OrientedImage(pixels: pixels, width: outWidth, height: outHeight)
    }
}

extension GalleryItem {
    /// Returns the item scaled down so that its longer side is at most `maxSide`, boxes
    /// included, so that a validation pass does not keep full-size photographs in memory.
    func shrunk(maxSide: Int) -> GalleryItem {
        let small = downscaled(maxSide: maxSide)
        if small.width == width && small.height == height { return self }
        let (scaleX, scaleY) = (Double(small.width) / Double(width), Double(small.height) / Double(height))
        func scale(_ box: PixelBox) -> PixelBox {
            PixelBox(xMin: box.xMin * scaleX, yMin: box.yMin * scaleY, xMax: box.xMax * scaleX, yMax: box.yMax * scaleY)
        }
        return GalleryItem(
            title: title, pixels: small.pixels, width: small.width, height: small.height,
            groundTruth: groundTruth.map { LabeledBox(label: $0.label, box: scale($0.box)) },
            predictions: predictions.map { ScoredBox(label: $0.label, box: scale($0.box), score: $0.score) })
    }
}
