import Foundation

/// One split: its annotation file and the folder its image paths are relative to.
public struct SplitSource: Sendable, Equatable {
    /// "train", "valid", "test", or the name in `_annotations.<name>.jsonl`.
    public let name: String
    public let annotations: String
    public let imageRoot: String

    public init(name: String, annotations: String, imageRoot: String) {
        self.name = name
        self.annotations = annotations
        self.imageRoot = imageRoot
    }
}

/// The location of a dataset's splits, and the folder no image path may leave.
public struct DatasetSource: Sendable, Equatable {
    public enum Layout: String, Sendable {
        /// Roboflow's PaliGemma export: `_annotations.<split>.jsonl` beside the images.
        case roboflow = "Roboflow export"
        /// `<split>/annotations.jsonl` with the images in `<split>/`.
        case perSplit = "per-split folders"
        /// JSONL files given one by one.
        case explicit = "explicit files"
    }

    public let layout: Layout
    /// Image paths must resolve inside this folder (symlinks followed).
    public let boundary: String
    /// In the order train, valid, test, then other names alphabetically.
    public let splits: [SplitSource]

    public init(layout: Layout, boundary: String, splits: [SplitSource]) {
        self.layout = layout
        self.boundary = boundary
        self.splits = splits.sorted { Self.rank($0.name) < Self.rank($1.name) }
    }

    public func split(_ name: String) throws -> SplitSource {
        guard let split = splits.first(where: { $0.name == name }) else {
            throw DatasetError.missingSplit(name: name, available: splits.map(\.name))
        }
        return split
    }

    /// Finds the layout under `--data DIR`: Roboflow files in DIR or DIR/dataset, or
    /// DIR/{train,valid,test}/annotations.jsonl. Two layouts at once is an error.
    public static func discover(directory: String) throws -> DatasetSource {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DatasetError.directoryNotFound(path: directory)
        }
        let root = URL(fileURLWithPath: directory).standardizedFileURL

        // 1. Roboflow: _annotations.<split>.jsonl in DIR or DIR/dataset.
        var roboflow: (folder: URL, splits: [SplitSource])?
        for folder in [root, root.appendingPathComponent("dataset")] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
            let splits = names.sorted().compactMap { name -> SplitSource? in
                guard name.hasPrefix("_annotations."), name.hasSuffix(".jsonl") else { return nil }
                let split = String(name.dropFirst("_annotations.".count).dropLast(".jsonl".count))
                guard !split.isEmpty else { return nil }
                return SplitSource(
                    name: split, annotations: folder.appendingPathComponent(name).path, imageRoot: folder.path)
            }
            if !splits.isEmpty {
                roboflow = (folder, splits)
                break
            }
        }

        // 2. Per-split folders.
        let perSplit = ["train", "valid", "test"].compactMap { name -> SplitSource? in
            let folder = root.appendingPathComponent(name)
            let file = folder.appendingPathComponent("annotations.jsonl")
            guard FileManager.default.fileExists(atPath: file.path) else { return nil }
            return SplitSource(name: name, annotations: file.path, imageRoot: folder.path)
        }

        switch (roboflow, perSplit.isEmpty) {
        case (let found?, true):
            return DatasetSource(layout: .roboflow, boundary: root.path, splits: found.splits)
        case (nil, false):
            return DatasetSource(layout: .perSplit, boundary: root.path, splits: perSplit)
        case (let found?, false):
            throw DatasetError.ambiguousLayout(
                directory: root.path, roboflow: found.folder.path, perSplit: root.appendingPathComponent("train").path)
        case (nil, true):
            throw DatasetError.noAnnotations(
                directory: root.path,
                searched: [
                    "_annotations.*.jsonl", "dataset/_annotations.*.jsonl", "train/annotations.jsonl",
                    "valid/annotations.jsonl", "test/annotations.jsonl",
                ])
        }
    }

    /// JSONL files given one by one. Image paths are relative to `imageRoot`, or to each
    /// file's own folder when it is nil; that folder is also the boundary.
    public static func explicit(files: [(split: String, path: String)], imageRoot: String?) throws -> DatasetSource {
        var splits: [SplitSource] = []
        for (split, path) in files {
            guard FileManager.default.fileExists(atPath: path) else {
                throw DatasetError.fileNotReadable(path: path, reason: "file not found")
            }
            let folder = imageRoot ?? URL(fileURLWithPath: path).deletingLastPathComponent().path
            splits.append(SplitSource(name: split, annotations: path, imageRoot: folder))
        }
        let roots = Set(splits.map(\.imageRoot))
        // With one image root it is the boundary; otherwise the deepest common folder is.
        let boundary = roots.count == 1 ? roots.first! : commonFolder(Array(roots))
        return DatasetSource(layout: .explicit, boundary: boundary, splits: splits)
    }

    private static func rank(_ name: String) -> String {
        switch name {
        case "train": return "0"
        case "valid", "validation", "val": return "1"
        case "test": return "2"
        default: return "3" + name
        }
    }

    private static func commonFolder(_ paths: [String]) -> String {
        let parts = paths.map { URL(fileURLWithPath: $0).standardizedFileURL.pathComponents }
        guard var common = parts.first else { return "/" }
        for other in parts.dropFirst() {
            var count = 0
            while count < common.count && count < other.count && common[count] == other[count] { count += 1 }
            common = Array(common.prefix(count))
        }
        return common.isEmpty ? "/" : NSString.path(withComponents: common)
    }
}
