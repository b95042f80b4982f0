import CImageShim
import Foundation

/// Encodes RGB8 pixels as JPEG through libjpeg (C shim with setjmp error handling).
public enum JPEGEncoder {
    /// - pixels: uint8[height, width, 3], row-major RGB.
    /// - quality: libjpeg quality, 1...100.
    /// - Returns: the JPEG file bytes (baseline, 4:2:0 chroma subsampling).
    public static func encode(pixels: [UInt8], width: Int, height: Int, quality: Int = 90) throws(ImageEncodeError) -> Data {
        guard width > 0, height > 0, pixels.count == width * height * 3 else {
            throw ImageEncodeError(message: "expected \(width) x \(height) x 3 = \(max(0, width * height * 3)) bytes of RGB8 pixels, found \(pixels.count)")
        }
        guard width <= 65500, height <= 65500 else {
            throw ImageEncodeError(message: "image size \(width)x\(height) exceeds the JPEG limit of 65500 pixels per side")
        }

        var output: UnsafeMutablePointer<UInt8>?
        var outputSize = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = pixels.withUnsafeBufferPointer { buffer in
            cimage_encode_jpeg_rgb8(buffer.baseAddress, Int32(width), Int32(height), Int32(quality), &output, &outputSize, &message, message.count)
        }
        defer { cimage_free_encoded(output) }

        guard status == Int32(CIMAGE_ENCODE_OK), let output else {
            let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw ImageEncodeError(message: "JPEG encoding failed: \(text)")
        }
        return Data(bytes: output, count: outputSize)
    }
}

/// Pixels that could not be encoded.
public struct ImageEncodeError: Error, CustomStringConvertible {
    public var message: String

    public var description: String { message }
}
