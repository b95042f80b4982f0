/// A box as four PaliGemma location bins, in the model's output order
/// `<locY1><locX1><locY2><locX2>`. Each bin is in 0...1023.
public struct LocBins: Equatable, Hashable, Sendable {
    public var yMin: Int
    public var xMin: Int
    public var yMax: Int
    public var xMax: Int

    public init(yMin: Int, xMin: Int, yMax: Int, xMax: Int) {
        self.yMin = yMin
        self.xMin = xMin
        self.yMax = yMax
        self.xMax = xMax
    }

    /// The number of location tokens (`<loc0000>` ... `<loc1023>`).
    public static let binCount = 1024

    /// Converts the bins to pixel coordinates of a `width` x `height` image.
    ///
    /// The rule is big_vision's: a bin `b` stands for the normalised coordinate `b / 1023`,
    /// so `pixel = b / 1023 * size` (y with the height, x with the width), kept as a real
    /// number without rounding. big_vision encodes training targets as
    /// `clip(round(v * 1023), 0, 1023)` (`pp/proj/paligemma/segmentation.py`), and this is
    /// the exact inverse of that encoding, so bin 0 and bin 1023 land on the image edges.
    /// The demo/Hugging Face rule `round(b / 1024 * size)` differs by under 0.1 % of the
    /// image size. Because ground truth and predictions both go through this one linear map,
    /// IoU and therefore mAP do not depend on the choice.
    public func pixelBox(width: Int, height: Int) -> PixelBox {
        let scaleX = Double(width) / 1023
        let scaleY = Double(height) / 1023
        return PixelBox(
            xMin: Double(xMin) * scaleX, yMin: Double(yMin) * scaleY,
            xMax: Double(xMax) * scaleX, yMax: Double(yMax) * scaleY
        )
    }
}

/// A box in pixel coordinates: x grows to the right, y grows down, (0, 0) is the top-left
/// corner of the top-left pixel.
public struct PixelBox: Equatable, Sendable {
    public var xMin: Double
    public var yMin: Double
    public var xMax: Double
    public var yMax: Double

    public init(xMin: Double, yMin: Double, xMax: Double, yMax: Double) {
        self.xMin = xMin
        self.yMin = yMin
        self.xMax = xMax
        self.yMax = yMax
    }

    public var width: Double { xMax - xMin }
    public var height: Double { yMax - yMin }
}

/// A ground-truth box with its class name.
public struct LabeledBox: Equatable, Sendable {
    public var label: String
    public var box: PixelBox

    public init(label: String, box: PixelBox) {
        self.label = label
        self.box = box
    }
}

/// A predicted box with its class name and confidence (higher means more certain).
public struct ScoredBox: Equatable, Sendable {
    public var label: String
    public var box: PixelBox
    public var score: Double

    public init(label: String, box: PixelBox, score: Double) {
        self.label = label
        self.box = box
        self.score = score
    }
}
