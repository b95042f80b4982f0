import Foundation

/// Width and height of a JPEG or PNG image, read from its header without decoding pixels.
///
/// JPEG: the first start-of-frame marker (SOF0...SOF15 except DHT, JPG and DAC) contains the
/// height and width. PNG: the IHDR chunk, which must come first. NOTE: the EXIF orientation
/// tag is ignored, as TensorFlow's and PIL's decoders ignore it, so a photo stored rotated
/// reports its stored size.
public enum ImageHeaderSize {
    public static func read(contentsOf url: URL) throws(ImageHeaderError) -> (width: Int, height: Int) {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw ImageHeaderError(path: url.path, reason: "file not found")
        }
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw ImageHeaderError(path: url.path, reason: "cannot read the file (\(error.localizedDescription))")
        }
        return try read(data, path: url.path)
    }

    /// - path: used only in error messages.
    public static func read(_ data: Data, path: String) throws(ImageHeaderError) -> (width: Int, height: Int) {
        let bytes = [UInt8](data.prefix(8))
        if bytes.starts(with: [0xFF, 0xD8]) {
            return try readJPEG(data, path: path)
        }
        if bytes == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] {
            return try readPNG(data, path: path)
        }
        throw ImageHeaderError(path: path, reason: "not a JPEG or PNG file (first bytes \(hex(bytes)))")
    }

    private static func readJPEG(_ data: Data, path: String) throws(ImageHeaderError) -> (width: Int, height: Int) {
        let bytes = [UInt8](data)
        var index = 2
        while index < bytes.count {
            // Find the next marker as libjpeg does (jdmarker.c, next_marker), so that this reader
            // and the decoder see the same segments: bytes other than 0xFF are skipped (libjpeg
            // warns about "extraneous bytes"), any number of 0xFF fill bytes may precede a
            // marker code, and 0xFF 0x00 is a stuffed zero byte, not a marker.
            guard bytes[index] == 0xFF else {
                index += 1
                continue
            }
            while index < bytes.count, bytes[index] == 0xFF { index += 1 }
            guard index < bytes.count else { break }
            let marker = bytes[index]
            index += 1
            if marker == 0x00 { continue }

            // Markers without a length field: TEM, RST0...RST7.
            if marker == 0x01 || (0xD0...0xD7).contains(marker) { continue }
            if marker == 0xD9 || marker == 0xDA {
                throw ImageHeaderError(path: path, reason: "JPEG has no start-of-frame marker before its image data")
            }
            guard index + 2 <= bytes.count else { break }
            let length = Int(bytes[index]) << 8 | Int(bytes[index + 1])
            guard length >= 2 else {
                throw ImageHeaderError(path: path, reason: "JPEG segment 0xFF\(hex([marker])) at byte \(index - 2) has invalid length \(length)")
            }

            let isStartOfFrame = (0xC0...0xCF).contains(marker) && marker != 0xC4 && marker != 0xC8 && marker != 0xCC
            if isStartOfFrame {
                // Segment: length (2), precision (1), height (2), width (2), ...
                guard index + 7 <= bytes.count else { break }
                let height = Int(bytes[index + 3]) << 8 | Int(bytes[index + 4])
                let width = Int(bytes[index + 5]) << 8 | Int(bytes[index + 6])
                guard width > 0, height > 0 else {
                    throw ImageHeaderError(path: path, reason: "JPEG frame header gives size \(width)x\(height)")
                }
                return (width, height)
            }
            index += length
        }
        throw ImageHeaderError(path: path, reason: "JPEG ends before its start-of-frame marker (file truncated?)")
    }

    private static func readPNG(_ data: Data, path: String) throws(ImageHeaderError) -> (width: Int, height: Int) {
        // Signature (8), chunk length (4), "IHDR" (4), width (4), height (4).
        let bytes = [UInt8](data.prefix(24))
        guard bytes.count == 24, Array(bytes[12..<16]) == Array("IHDR".utf8) else {
            throw ImageHeaderError(path: path, reason: "PNG does not start with an IHDR chunk (file truncated?)")
        }
        func bigEndian(_ offset: Int) -> Int {
            bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | Int($1) }
        }
        let width = bigEndian(16)
        let height = bigEndian(20)
        guard width > 0, height > 0 else {
            throw ImageHeaderError(path: path, reason: "PNG header gives size \(width)x\(height)")
        }
        return (width, height)
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02X", $0) }.joined(separator: " ")
    }
}

/// An image whose size could not be read from its header.
public struct ImageHeaderError: Error, CustomStringConvertible {
    public var path: String
    public var reason: String

    public var description: String { "\(path): \(reason)" }
}
