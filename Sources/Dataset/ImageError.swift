/// An image that cannot be used for training.
public enum ImageError: Error, CustomStringConvertible, Equatable {
    case fileNotFound(path: String)
    case notReadable(path: String, reason: String)
    case fileTooLarge(path: String, bytes: Int, limit: Int)
    case unsupportedFormat(path: String)
    case tooManyPixels(path: String, width: Int, height: Int, limit: Int)
    case decodeFailed(path: String, reason: String)
    case outOfMemory(path: String, reason: String)

    public var path: String {
        switch self {
        case .fileNotFound(let path), .notReadable(let path, _), .fileTooLarge(let path, _, _),
            .unsupportedFormat(let path), .tooManyPixels(let path, _, _, _), .decodeFailed(let path, _),
            .outOfMemory(let path, _):
            return path
        }
    }

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "image '\(path)' not found"
        case .notReadable(let path, let reason):
            return "image '\(path)' could not be read: \(reason)"
        case .fileTooLarge(let path, let bytes, let limit):
            return "image '\(path)' is \(bytes) bytes, above maxImageFileBytes = \(limit); "
                + "raise it with --max-image-bytes if the file is genuine"
        case .unsupportedFormat(let path):
            return "image '\(path)' is neither JPEG nor PNG (checked from its first bytes, not its name); "
                + "convert it to JPEG or PNG"
        case .tooManyPixels(let path, let width, let height, let limit):
            return "image '\(path)' is \(width)x\(height) = \(width * height) pixels, above maxImagePixels = \(limit) "
                + "(checked from the header, nothing was decoded); raise it with --max-image-pixels if the image "
                + "is genuine"
        case .decodeFailed(let path, let reason):
            return "image '\(path)' could not be decoded: \(reason)"
        case .outOfMemory(let path, let reason):
            return "image '\(path)': \(reason)"
        }
    }
}
