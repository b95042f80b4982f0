import CImageShim
import Foundation

public enum ImageFormat: String, Sendable {
    case jpeg = "JPEG"
    case png = "PNG"
}

/// The properties an image file's header declares.
public struct ImageInfo: Sendable, Equatable {
    public var format: ImageFormat
    /// Size as stored, before the EXIF orientation is applied.
    public var storedWidth: Int
    public var storedHeight: Int
    /// Bits per stored sample: 8 for JPEG; 1, 2, 4, 8 or 16 for PNG.
    public var bitDepth: Int
    public var isGrayscale: Bool
    /// An alpha channel or a PNG tRNS chunk; the alpha is dropped when decoding.
    public var hasAlpha: Bool
    public var isPalette: Bool
    public var isCMYK: Bool
    /// Progressive JPEG or interlaced PNG.
    public var isProgressive: Bool
    /// EXIF orientation 1…8 (1 = as stored).
    public var orientation: Int

    /// Orientations 5…8 swap width and height.
    public var swapsAxes: Bool { orientation >= 5 }
    public var width: Int { swapsAxes ? storedHeight : storedWidth }
    public var height: Int { swapsAxes ? storedWidth : storedHeight }

    init(_ info: cimg_info) {
        format = info.format == Int32(CIMG_FORMAT_PNG) ? .png : .jpeg
        storedWidth = Int(info.width)
        storedHeight = Int(info.height)
        bitDepth = Int(info.bit_depth)
        isGrayscale = info.is_grayscale != 0
        hasAlpha = info.has_alpha != 0
        isPalette = info.is_palette != 0
        isCMYK = info.is_cmyk != 0
        isProgressive = info.is_progressive != 0
        orientation = Int(info.orientation)
    }
}

/// Decoded RGB samples as stored (orientation not yet applied): `[height, width, 3]`, 8-bit,
/// or 16-bit for 16-bit PNGs. Owns the C buffer.
public final class DecodedImage {
    public let info: ImageInfo
    /// Decoded size; smaller than the stored size when JPEG DCT scaling was used.
    public let width: Int
    public let height: Int
    public let bytesPerSample: Int
    /// Recoverable decoder warnings (for example extraneous bytes before a marker).
    public let warningCount: Int
    let pixels: UnsafeRawPointer

    fileprivate init(_ image: cimg_image) {
        info = ImageInfo(image.info)
        width = Int(image.width)
        height = Int(image.height)
        bytesPerSample = Int(image.bytes_per_sample)
        warningCount = Int(image.warning_count)
        pixels = UnsafeRawPointer(image.pixels!)
    }

    deinit {
        free(UnsafeMutableRawPointer(mutating: pixels))
    }

    /// The samples as 8-bit values; nil for 16-bit images.
    public var samples8: UnsafeBufferPointer<UInt8>? {
        guard bytesPerSample == 1 else { return nil }
        return UnsafeBufferPointer(start: pixels.assumingMemoryBound(to: UInt8.self), count: width * height * 3)
    }

    /// The samples as 16-bit values; nil for 8-bit images.
    public var samples16: UnsafeBufferPointer<UInt16>? {
        guard bytesPerSample == 2 else { return nil }
        return UnsafeBufferPointer(start: pixels.assumingMemoryBound(to: UInt16.self), count: width * height * 3)
    }
}

/// JPEG and PNG decoding through the C shim, with limits applied before any pixel is allocated.
public enum ImageDecoder {
    /// Reads a whole image file after checking its size against `maxImageFileBytes`.
    public static func readFile(path: String, limits: DatasetLimits) throws -> Data {
        var status = stat()
        guard stat(path, &status) == 0 else {
            if errno == ENOENT { throw ImageError.fileNotFound(path: path) }
            throw ImageError.notReadable(path: path, reason: String(cString: strerror(errno)))
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw ImageError.notReadable(path: path, reason: "not a regular file")
        }
        guard Int(status.st_size) <= limits.maxImageFileBytes else {
            throw ImageError.fileTooLarge(path: path, bytes: Int(status.st_size), limit: limits.maxImageFileBytes)
        }
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ImageError.notReadable(path: path, reason: error.localizedDescription)
        }
    }

    /// Reads the header only.
    public static func info(data: Data, path: String) throws -> ImageInfo {
        var info = cimg_info()
        var message = [CChar](repeating: 0, count: 512)
        let status = data.withUnsafeBytes { bytes in
            cimg_read_info(bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count, &info, &message,
                           message.count)
        }
        try check(status, path: path, message: message)
        return ImageInfo(info)
    }

    /// Decodes to RGB. `jpegScaleDenominator` (1, 2, 4 or 8) uses libjpeg's DCT scaling.
    public static func decode(
        data: Data, path: String, limits: DatasetLimits, jpegScaleDenominator: Int = 1
    ) throws -> DecodedImage {
        var image = cimg_image()
        var message = [CChar](repeating: 0, count: 512)
        let status = data.withUnsafeBytes { bytes in
            cimg_decode(bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count,
                        UInt64(limits.maxImagePixels), Int32(jpegScaleDenominator), &image, &message, message.count)
        }
        if status == Int32(CIMG_ERR_TOO_LARGE) {
            throw ImageError.tooManyPixels(
                path: path, width: Int(image.info.width), height: Int(image.info.height), limit: limits.maxImagePixels)
        }
        try check(status, path: path, message: message)
        return DecodedImage(image)
    }

    private static func check(_ status: Int32, path: String, message: [CChar]) throws {
        let text = String(cString: message, encoding: .utf8) ?? ""
        switch status {
        case Int32(CIMG_OK):
            return
        case Int32(CIMG_ERR_FORMAT):
            throw ImageError.unsupportedFormat(path: path)
        case Int32(CIMG_ERR_MEMORY):
            throw ImageError.outOfMemory(path: path, reason: text)
        default:
            throw ImageError.decodeFailed(path: path, reason: text)
        }
    }
}
