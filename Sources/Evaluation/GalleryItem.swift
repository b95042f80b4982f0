import Foundation

/// One validation image for the report gallery, with its ground truth and predictions.
public struct GalleryItem: Sendable {
    /// Shown as the caption heading, e.g. the image file name.
    public var title: String
    /// uint8[height, width, 3], row-major RGB.
    public var pixels: [UInt8]
    public var width: Int
    public var height: Int
    /// Boxes in pixel coordinates of this image.
    public var groundTruth: [LabeledBox]
    public var predictions: [ScoredBox]

    public init(title: String, pixels: [UInt8], width: Int, height: Int, groundTruth: [LabeledBox], predictions: [ScoredBox]) {
        self.title = title
        self.pixels = pixels
        self.width = width
        self.height = height
        self.groundTruth = groundTruth
        self.predictions = predictions
    }

    /// Scales the image down so that its longer side is at most `maxSide` (never enlarging
    /// it), draws the boxes and encodes the result as JPEG.
    func renderedJPEG(maxSide: Int, quality: Int) throws(ImageEncodeError) -> Data {
        guard pixels.count == width * height * 3 else {
            throw ImageEncodeError(message: "gallery image '\(title)': expected \(width) x \(height) x 3 bytes of RGB8 pixels, found \(pixels.count)")
        }
        let scaled = downscaled(maxSide: maxSide)
        let factorX = Double(scaled.width) / Double(width)
        let factorY = Double(scaled.height) / Double(height)
        func scale(_ box: PixelBox) -> PixelBox {
            PixelBox(xMin: box.xMin * factorX, yMin: box.yMin * factorY, xMax: box.xMax * factorX, yMax: box.yMax * factorY)
        }
        return try BoxDrawing.annotate(
            pixels: scaled.pixels, width: scaled.width, height: scaled.height,
            groundTruth: groundTruth.map { LabeledBox(label: $0.label, box: scale($0.box)) },
            predictions: predictions.map { ScoredBox(label: $0.label, box: scale($0.box), score: $0.score) },
            quality: quality
        )
    }

    /// Box-filter downscaling: each output pixel averages the source pixels it covers.
    func downscaled(maxSide: Int) -> (pixels: [UInt8], width: Int, height: Int) {
        let longer = max(width, height)
        guard longer > maxSide, maxSide > 0 else { return (pixels, width, height) }
        let outWidth = max(1, Int((Double(width) * Double(maxSide) / Double(longer)).rounded()))
        let outHeight = max(1, Int((Double(height) * Double(maxSide) / Double(longer)).rounded()))

        var output = [UInt8](repeating: 0, count: outWidth * outHeight * 3)
        for outY in 0..<outHeight {
            let y0 = outY * height / outHeight
            let y1 = max(y0 + 1, (outY + 1) * height / outHeight)
            for outX in 0..<outWidth {
                let x0 = outX * width / outWidth
                let x1 = max(x0 + 1, (outX + 1) * width / outWidth)
                var sums = (0, 0, 0)
                for y in y0..<y1 {
                    for x in x0..<x1 {
                        let index = (y * width + x) * 3
                        sums.0 += Int(pixels[index])
                        sums.1 += Int(pixels[index + 1])
                        sums.2 += Int(pixels[index + 2])
                    }
                }
                let count = (y1 - y0) * (x1 - x0)
                let outIndex = (outY * outWidth + outX) * 3
                output[outIndex] = UInt8((sums.0 + count / 2) / count)
                output[outIndex + 1] = UInt8((sums.1 + count / 2) / count)
                output[outIndex + 2] = UInt8((sums.2 + count / 2) / count)
            }
        }
        return (output, outWidth, outHeight)
    }
}
