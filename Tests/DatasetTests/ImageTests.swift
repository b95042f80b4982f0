import Foundation
import XCTest

@testable import Dataset

final class ImageTests: XCTestCase {
    /// Tolerance against the jax reference resize, on the [-1, 1] scale.
    private let tolerance: Float = 2.0 / 255.0

    private func fixture(_ name: String) -> String { Fixtures.path("images/" + name) }

    private func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    func testMatchesReferenceResize() throws {
        let references = try GoldenNPZ(path: fixture("references.npz"))
        XCTAssertEqual(references.keys.count, 24)
        let preprocessor = ImagePreprocessor(size: 24, dctScaling: .off)

        for name in references.keys {
            let reference = try references.float32(name)
            XCTAssertEqual(reference.shape, [24, 24, 3], name)
            let image = try preprocessor.load(path: fixture(name))
            XCTAssertEqual(image.pixels.count, 24 * 24 * 3, name)
            XCTAssertEqual(image.jpegScaleDenominator, 1, name)
            let difference = maxDifference(image.pixels, reference.values)
            XCTAssertLessThanOrEqual(difference, tolerance, "\(name): max difference \(difference)")
        }
    }

    func testExifOrientationIsApplied() throws {
        let preprocessor = ImagePreprocessor(size: 24, dctScaling: .off)
        for orientation in 1...8 {
            let image = try preprocessor.load(path: fixture("exif-orientation-\(orientation).jpg"))
            XCTAssertEqual(image.info.orientation, orientation)
            XCTAssertEqual(image.info.storedWidth, 40)
            XCTAssertEqual(image.info.width, orientation >= 5 ? 24 : 40)
        }
        // Without the rotation, orientation 6 would differ from its reference by far more.
        let references = try GoldenNPZ(path: fixture("references.npz"))
        let upright = try references.float32("exif-orientation-1.jpg").values
        let rotated = try preprocessor.load(path: fixture("exif-orientation-6.jpg")).pixels
        XCTAssertGreaterThan(maxDifference(upright, rotated), 0.5)
    }

    func testHeaderFlags() throws {
        func info(_ name: String) throws -> ImageInfo {
            try ImageDecoder.info(data: Data(contentsOf: URL(fileURLWithPath: fixture(name))), path: name)
        }
        XCTAssertTrue(try info("rgb-progressive.jpg").isProgressive)
        XCTAssertFalse(try info("rgb-baseline.jpg").isProgressive)
        XCTAssertTrue(try info("gray.jpg").isGrayscale)
        XCTAssertTrue(try info("cmyk.jpg").isCMYK)
        XCTAssertEqual(try info("gray16.png").bitDepth, 16)
        XCTAssertTrue(try info("gray16.png").isGrayscale)
        XCTAssertTrue(try info("rgba.png").hasAlpha)
        XCTAssertTrue(try info("gray-alpha.png").hasAlpha)
        XCTAssertTrue(try info("palette-trns.png").hasAlpha)
        XCTAssertFalse(try info("palette.png").hasAlpha)
        XCTAssertTrue(try info("palette.png").isPalette)
        XCTAssertTrue(try info("rgb-interlaced.png").isProgressive)
        XCTAssertEqual(try info("gray-1bit.png").bitDepth, 1)
    }

    func testSixteenBitGrayIsScaledNotClamped() throws {
        let decoded = try ImageDecoder.decode(
            data: Data(contentsOf: URL(fileURLWithPath: fixture("gray16.png"))), path: "gray16.png",
            limits: DatasetLimits())
        let samples = try XCTUnwrap(decoded.samples16)
        XCTAssertGreaterThan(samples.max() ?? 0, 60000)
        // Three equal channels.
        XCTAssertEqual(samples[300], samples[301])
        XCTAssertEqual(samples[300], samples[302])

        let image = try ImagePreprocessor(size: 24, dctScaling: .off).load(path: fixture("gray16.png"))
        // Clamping to 255 would push most of the image to +1.
        let saturated = image.pixels.filter { $0 > 0.99 }.count
        XCTAssertLessThan(saturated, image.pixels.count / 20)
        XCTAssertGreaterThan(image.pixels.max() ?? 0, 0.9)
        XCTAssertLessThan(image.pixels.min() ?? 0, -0.9)
    }

    /// DCT scaling is opt-in; on a smooth image at 4x oversampling it stays within tolerance.
    func testDCTScalingOnSmoothImage() throws {
        let references = try GoldenNPZ(path: fixture("references.npz"))
        let reference = try references.float32("large-smooth.jpg").values
        XCTAssertEqual(ImagePreprocessor(size: 24).scaleDenominator(width: 640, height: 480), 1)

        let preprocessor = ImagePreprocessor(size: 24, dctScaling: .keepingAtLeast(factor: 4))
        // 640x480 with 24x24 output: 1/4 keeps 160x120, at least 4 x 24 on both sides.
        XCTAssertEqual(preprocessor.scaleDenominator(width: 640, height: 480), 4)
        let large = ImagePreprocessor(size: 224, dctScaling: .keepingAtLeast(factor: 4))
        XCTAssertEqual(large.scaleDenominator(width: 640, height: 480), 1)
        XCTAssertEqual(large.scaleDenominator(width: 4032, height: 3024), 2)

        let image = try preprocessor.load(path: fixture("large-smooth.jpg"))
        XCTAssertEqual(image.jpegScaleDenominator, 4)
        let difference = maxDifference(image.pixels, reference)
        XCTAssertLessThanOrEqual(difference, tolerance, "max difference \(difference)")
    }

    func testTruncatedJPEGIsAnError() throws {
        XCTAssertThrowsError(try ImagePreprocessor(size: 24).load(path: fixture("truncated.jpg"))) { error in
            guard case ImageError.decodeFailed(let path, let reason) = error else {
                return XCTFail("expected decodeFailed, got \(error)")
            }
            XCTAssertEqual(path, fixture("truncated.jpg"))
            XCTAssertTrue(reason.contains("truncated"), reason)
        }
    }

    func testPixelBombIsRejectedFromHeader() throws {
        let path = fixture("bomb-30000.png")
        XCTAssertLessThan(try Data(contentsOf: URL(fileURLWithPath: path)).count, 200)
        XCTAssertThrowsError(try ImagePreprocessor(size: 24).load(path: path)) { error in
            XCTAssertEqual(
                error as? ImageError, .tooManyPixels(path: path, width: 30000, height: 30000, limit: 100_000_000))
            XCTAssertTrue("\(error)".contains("maxImagePixels"), "\(error)")
            XCTAssertTrue("\(error)".contains("--max-image-pixels"), "\(error)")
        }
    }

    func testFileSizeLimit() throws {
        var limits = DatasetLimits()
        limits.maxImageFileBytes = 1000
        let path = fixture("rgb-baseline.jpg")
        XCTAssertThrowsError(try ImagePreprocessor(size: 24, limits: limits).load(path: path)) { error in
            guard case ImageError.fileTooLarge(_, let bytes, 1000) = error else { return XCTFail("got \(error)") }
            XCTAssertGreaterThan(bytes, 1000)
            XCTAssertTrue("\(error)".contains("maxImageFileBytes"), "\(error)")
        }
    }

    func testNonImageIsRejected() throws {
        XCTAssertThrowsError(try ImagePreprocessor(size: 24).load(path: fixture("not-an-image.jpg"))) { error in
            XCTAssertEqual(error as? ImageError, .unsupportedFormat(path: fixture("not-an-image.jpg")))
        }
        XCTAssertThrowsError(try ImagePreprocessor(size: 24).load(path: fixture("absent.jpg"))) { error in
            XCTAssertEqual(error as? ImageError, .fileNotFound(path: fixture("absent.jpg")))
        }
    }
}
