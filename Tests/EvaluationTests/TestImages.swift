import Foundation
import XCTest

/// Synthetic RGB8 images and helpers to run command-line tools from tests.
enum TestImages {
    /// Builds a smooth gradient, a different one per channel: uint8[height, width, 3].
    static func gradient(width: Int, height: Int) -> [UInt8] {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let index = (y * width + x) * 3
                pixels[index] = UInt8(x * 255 / max(1, width - 1))
                pixels[index + 1] = UInt8(y * 255 / max(1, height - 1))
                pixels[index + 2] = UInt8((x + y) * 255 / max(1, width + height - 2))
            }
        }
        return pixels
    }

    /// Finds `name` on PATH and returns its full path, or nil.
    static func findExecutable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for folder in path.split(separator: ":") {
            let candidate = "\(folder)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs `executable` with `arguments`; returns stdout, throws with stderr on failure.
    static func run(_ executable: String, _ arguments: [String]) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ToolError(message: "\(executable) \(arguments.joined(separator: " ")) exited with status \(process.terminationStatus): \(errorText)")
        }
        return data
    }

    struct ToolError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// Decodes a binary PPM (P6, maxval 255) as written by `djpeg -pnm`.
    static func parsePPM(_ data: Data) throws -> (pixels: [UInt8], width: Int, height: Int) {
        let bytes = [UInt8](data)
        var fields: [String] = []
        var index = 0
        // Four whitespace-separated header fields: magic, width, height, maxval.
        while fields.count < 4, index < bytes.count {
            while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 {
                index += 1
            }
            var field = ""
            while index < bytes.count, !(bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09) {
                field.append(Character(UnicodeScalar(bytes[index])))
                index += 1
            }
            fields.append(field)
        }
        index += 1  // the single whitespace byte after maxval
        guard fields.count == 4, fields[0] == "P6", let width = Int(fields[1]), let height = Int(fields[2]), fields[3] == "255",
              bytes.count - index == width * height * 3
        else {
            throw ToolError(message: "not a P6 PPM with maxval 255: header \(fields), \(bytes.count - index) pixel bytes")
        }
        return (Array(bytes[index...]), width, height)
    }
}
