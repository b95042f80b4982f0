import Foundation

/// Resolves the `image` field of a record against its image root, and keeps it inside the
/// dataset folder.
enum ImagePath {
    enum Resolution: Equatable {
        case resolved(path: String)
        case rejected(reason: String)
        case notFound(path: String)
    }

    /// Checks `relative` lexically first (absolute paths and `..` that climbs out of
    /// `boundary` are rejected before the file system is touched), then resolves symlinks and
    /// checks the real path against the real boundary.
    static func resolve(_ relative: String, imageRoot: String, boundary: String) -> Resolution {
        if relative.isEmpty { return .rejected(reason: "the path is empty") }
        if relative.utf8.contains(0) { return .rejected(reason: "the path contains a NUL byte") }
        if relative.hasPrefix("/") || relative.hasPrefix("~") {
            return .rejected(reason: "absolute paths are not allowed; give the path relative to '\(imageRoot)'")
        }

        // 1. Lexical: walk the components from the image root, relative to the boundary.
        let boundaryParts = URL(fileURLWithPath: boundary).standardizedFileURL.pathComponents
        let rootParts = URL(fileURLWithPath: imageRoot).standardizedFileURL.pathComponents
        guard rootParts.starts(with: boundaryParts) else {
            return .rejected(reason: "the image root '\(imageRoot)' is outside the dataset folder '\(boundary)'")
        }
        var inside = Array(rootParts.dropFirst(boundaryParts.count))
        for part in relative.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".":
                continue
            case "..":
                guard !inside.isEmpty else {
                    return .rejected(reason: "'..' leads outside the dataset folder '\(boundary)'")
                }
                inside.removeLast()
            default:
                inside.append(String(part))
            }
        }
        let joined = NSString.path(withComponents: boundaryParts + inside)

        // 2. Real path: symlinks may still lead outside.
        guard let real = realPath(joined) else { return .notFound(path: joined) }
        guard let realBoundary = realPath(boundary) else { return .notFound(path: boundary) }
        let prefix = realBoundary.hasSuffix("/") ? realBoundary : realBoundary + "/"
        guard real.hasPrefix(prefix) else {
            return .rejected(reason: "the path resolves through a symlink to '\(real)', outside '\(realBoundary)'")
        }
        return .resolved(path: joined)
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
