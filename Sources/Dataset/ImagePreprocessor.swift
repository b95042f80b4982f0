import Foundation

/// An image ready for the model: `[size, size, 3]` floats in [-1, 1], RGB, row-major.
public struct PreparedImage: Sendable {
    public var pixels: [Float]
    public var size: Int
    /// The header of the source file.
    public var info: ImageInfo
    /// 1 unless libjpeg's DCT scaling decoded the JPEG at 1/2, 1/4 or 1/8 of its size.
    public var jpegScaleDenominator: Int
    public var warningCount: Int
}

/// Decode → EXIF orientation → square resize → x / 127.5 − 1, the steps of the big_vision
/// colab's `preprocess_image` plus the EXIF orientation, which the colab ignores.
///
/// Grayscale becomes three equal channels and alpha is dropped (the colab's `[..., :3]`). The
/// aspect ratio is not kept: every image is squeezed to size × size, as PaliGemma was trained.
public struct ImagePreprocessor: Sendable {
    /// When a JPEG may be decoded at reduced size with libjpeg's DCT scaling.
    public enum DCTScaling: Sendable, Equatable {
        /// Always decode at full size (the default).
        case off
        /// Use the largest of 1/2, 1/4, 1/8 whose decoded width and height both stay at least
        /// `factor` times the output size. The antialiased resize then does the rest.
        ///
        /// NOTE: this is faster but not exact. On the bone-fracture X-rays, resized to 224, the
        /// largest pixel difference from the full-size path was 3 to 27 levels (of 255) at
        /// 2 to 4.5 times oversampling, so it is off by default; Docs/data.md has the numbers.
        case keepingAtLeast(factor: Double)
    }

    /// Output width and height in pixels (224, 448 or 896 for PaliGemma).
    public let size: Int
    public let limits: DatasetLimits
    public let dctScaling: DCTScaling

    public init(size: Int, limits: DatasetLimits = DatasetLimits(), dctScaling: DCTScaling = .off) {
        self.size = size
        self.limits = limits
        self.dctScaling = dctScaling
    }

    /// Reads, decodes and preprocesses one image file.
    public func load(path: String) throws -> PreparedImage {
        let data = try ImageDecoder.readFile(path: path, limits: limits)
        return try process(data: data, path: path)
    }

    /// Decodes and preprocesses the bytes of a JPEG or PNG; `path` is only used in errors.
    public func process(data: Data, path: String) throws -> PreparedImage {
        let header = try ImageDecoder.info(data: data, path: path)
        let denominator = header.format == .jpeg ? scaleDenominator(width: header.storedWidth, height: header.storedHeight) : 1
        let image = try ImageDecoder.decode(data: data, path: path, limits: limits, jpegScaleDenominator: denominator)
        let pixels = resize(image, denominator: denominator)
        return PreparedImage(
            pixels: pixels, size: size, info: image.info, jpegScaleDenominator: denominator,
            warningCount: image.warningCount)
    }

    /// Returns the DCT scale denominator for a JPEG of this stored size.
    public func scaleDenominator(width: Int, height: Int) -> Int {
        guard case .keepingAtLeast(let factor) = dctScaling else { return 1 }
        let needed = Int((Double(size) * factor).rounded(.up))
        for denominator in [8, 4, 2] {
            // libjpeg's scaled size is ceil(size / denominator).
            let scaledWidth = (width + denominator - 1) / denominator
            let scaledHeight = (height + denominator - 1) / denominator
            if scaledWidth >= needed && scaledHeight >= needed { return denominator }
        }
        return 1
    }

    private func resize(_ image: DecodedImage, denominator: Int) -> [Float] {
        var output = [Float](repeating: 0, count: size * size * 3)
        let scale: Float = 1 / 127.5

        // A DCT-scaled image has ceil(n / d) pixels but covers only n / d of them. Resizing
        // over n / d keeps the sample positions of the full-size image.
        let info = image.info
        let extent = (width: Double(info.width) / Double(denominator), height: Double(info.height) / Double(denominator))
        output.withUnsafeMutableBufferPointer { output in
            if info.orientation == 1, let samples = image.samples8 {
                // Fast path: resize straight from the 8-bit decoder output.
                ImageResize.resize(
                    samples, width: image.width, height: image.height, outputWidth: size, outputHeight: size,
                    outputScale: scale, outputOffset: -1, into: output, inputExtent: extent)
            } else {
                let oriented = ImageOrientation.orientedFloats(image, orientation: info.orientation)
                oriented.pixels.withUnsafeBufferPointer { samples in
                    ImageResize.resize(
                        samples, width: oriented.width, height: oriented.height, outputWidth: size,
                        outputHeight: size, outputScale: scale, outputOffset: -1, into: output, inputExtent: extent)
                }
            }
        }
        return output
    }
}
