import Foundation

/// An RGB8 colour.
public struct RGBColor: Equatable, Sendable {
    public var red: UInt8
    public var green: UInt8
    public var blue: UInt8

    public init(red: UInt8, green: UInt8, blue: UInt8) {
        self.red = red
        self.green = green
        self.blue = blue
    }

    /// Ground-truth boxes: green, drawn solid.
    public static let groundTruth = RGBColor(red: 0, green: 200, blue: 83)
    /// Predicted boxes: orange-red, drawn dashed on top, so a perfect prediction shows both colours.
    public static let prediction = RGBColor(red: 255, green: 87, blue: 34)

    /// `#RRGGBB`, for the HTML legend.
    public var hex: String { String(format: "#%02X%02X%02X", red, green, blue) }
}

/// Draws box outlines into RGB8 pixels. Labels are left to HTML captions: there is no font.
public enum BoxDrawing {
    /// Line width in pixels: 2 for images under 500 pixels on the short side, 3 otherwise.
    public static func lineWidth(width: Int, height: Int) -> Int {
        min(width, height) < 500 ? 2 : 3
    }

    /// Draws ground truth (solid, green) and then predictions (dashed, orange-red).
    ///
    /// - pixels: uint8[height, width, 3], modified in place.
    public static func drawBoxes(
        into pixels: inout [UInt8], width: Int, height: Int, groundTruth: [LabeledBox], predictions: [ScoredBox]
    ) {
        let lineWidth = lineWidth(width: width, height: height)
        for truth in groundTruth {
            drawRectangle(truth.box, into: &pixels, width: width, height: height, color: .groundTruth, lineWidth: lineWidth, dashed: false)
        }
        for prediction in predictions {
            drawRectangle(prediction.box, into: &pixels, width: width, height: height, color: .prediction, lineWidth: lineWidth, dashed: true)
        }
    }

    /// Draws the outline of `box` with its lines inside the box, clipped to the image.
    ///
    /// The box covers pixel columns floor(xMin) ..< ceil(xMax) and the rows likewise. A box
    /// thinner than two lines is filled. Dashes are 4 line widths long with gaps of 2, counted
    /// from the box's top-left corner along each side.
    public static func drawRectangle(
        _ box: PixelBox, into pixels: inout [UInt8], width: Int, height: Int, color: RGBColor, lineWidth: Int, dashed: Bool
    ) {
        guard pixels.count == width * height * 3, box.xMax.isFinite, box.yMax.isFinite, box.xMin.isFinite, box.yMin.isFinite else { return }
        let left = Int(max(0, min(Double(width), box.xMin.rounded(.down))))
        let right = Int(max(0, min(Double(width), box.xMax.rounded(.up))))
        let top = Int(max(0, min(Double(height), box.yMin.rounded(.down))))
        let bottom = Int(max(0, min(Double(height), box.yMax.rounded(.up))))
        guard left < right, top < bottom else { return }

        let dash = 4 * lineWidth
        let period = 6 * lineWidth
        func isInk(_ offset: Int) -> Bool { !dashed || offset % period < dash }

        func paint(_ x: Int, _ y: Int) {
            let index = (y * width + x) * 3
            pixels[index] = color.red
            pixels[index + 1] = color.green
            pixels[index + 2] = color.blue
        }

        // Top and bottom bands first, then the left and right bands. The bands overlap when
        // the box is thinner than two lines, so such a box is filled.
        let horizontalRows = Array(top..<min(top + lineWidth, bottom)) + Array(max(bottom - lineWidth, top)..<bottom)
        for y in Set(horizontalRows) {
            for x in left..<right where isInk(x - left) {
                paint(x, y)
            }
        }
        let verticalColumns = Set(Array(left..<min(left + lineWidth, right)) + Array(max(right - lineWidth, left)..<right))
        for y in top..<bottom where isInk(y - top) {
            for x in verticalColumns {
                paint(x, y)
            }
        }
    }

    /// Draws the boxes onto a copy of `pixels` and encodes it as JPEG, for
    /// `palitrain predict --annotate OUT.jpg` and the report gallery.
    ///
    /// - pixels: uint8[height, width, 3].
    public static func annotate(
        pixels: [UInt8], width: Int, height: Int, groundTruth: [LabeledBox] = [], predictions: [ScoredBox], quality: Int = 90
    ) throws(ImageEncodeError) -> Data {
        guard pixels.count == width * height * 3 else {
            throw ImageEncodeError(message: "expected \(width) x \(height) x 3 bytes of RGB8 pixels, found \(pixels.count)")
        }
        var canvas = pixels
        drawBoxes(into: &canvas, width: width, height: height, groundTruth: groundTruth, predictions: predictions)
        return try JPEGEncoder.encode(pixels: canvas, width: width, height: height, quality: quality)
    }
}
