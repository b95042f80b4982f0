import Foundation

/// The ground truth of one image of a detection split.
public struct GroundTruthImage: Sendable {
    /// The `image` value of the annotations line, as predictions must name it.
    public var image: String
    public var width: Int
    public var height: Int
    /// The classes of the image's prompt (`prefix`).
    public var classes: [String]
    /// Boxes in suffix order, converted with `LocBins.pixelBox`.
    public var boxes: [LabeledBox]
    /// 1-based line in the annotations file.
    public var line: Int
}

/// A detection split read from a PaliGemma-format JSON Lines file.
public struct GroundTruthSplit: Sendable {
    public var annotationsURL: URL
    /// Images in file order. Evaluation breaks score ties in this order.
    public var images: [GroundTruthImage]
    /// Every class named in any prompt, in order of first appearance.
    public var classes: [String]
}

/// Reads the ground truth of a split: one JSON object per line with `image` (a path relative
/// to the annotations file), `prefix` (`detect a ; b`) and `suffix` (the expected output).
///
/// TODO: use the Dataset module's layout finder and JSONL reader once it lands; this reader
/// covers only what `palitrain score` needs.
public enum GroundTruthReader {
    /// Finds the annotations file of `split` in either supported layout: Roboflow's PaliGemma export
    /// (`DIR/_annotations.SPLIT.jsonl`, images beside it) or maestro's
    /// (`DIR/SPLIT/annotations.jsonl`, images in `DIR/SPLIT/`).
    public static func annotationsURL(dataDirectory: URL, split: String) throws(EvaluationInputError) -> URL {
        let roboflow = dataDirectory.appendingPathComponent("_annotations.\(split).jsonl")
        let maestro = dataDirectory.appendingPathComponent(split).appendingPathComponent("annotations.jsonl")
        let existing = [roboflow, maestro].filter { FileManager.default.fileExists(atPath: $0.path) }

        switch existing.count {
        case 1:
            return existing[0]
        case 0:
            throw .splitNotFound(directory: dataDirectory.path, split: split, tried: [roboflow.path, maestro.path])
        default:
            throw .ambiguousSplit(split: split, paths: existing.map(\.path))
        }
    }

    public static func load(dataDirectory: URL, split: String) throws(EvaluationInputError) -> GroundTruthSplit {
        try load(annotationsURL: annotationsURL(dataDirectory: dataDirectory, split: split))
    }

    private struct Line: Decodable {
        var image: String
        var prefix: String
        var suffix: String
    }

    public static func load(annotationsURL: URL) throws(EvaluationInputError) -> GroundTruthSplit {
        let path = annotationsURL.path
        let directory = annotationsURL.deletingLastPathComponent()
        var images: [GroundTruthImage] = []
        var classes: [String] = []
        var firstLineOfImage: [String: Int] = [:]

        for (line, data) in try readJSONLines(annotationsURL) {
            let entry = try decodeLine(Line.self, data, path: path, line: line)
            if let first = firstLineOfImage[entry.image] {
                throw .duplicateImage(path: path, line: line, image: entry.image, firstLine: first)
            }
            firstLineOfImage[entry.image] = line

            guard let promptClasses = DetectionPrompt.classes(fromPrefix: entry.prefix) else {
                throw .invalidLine(path: path, line: line, reason: "prefix '\(entry.prefix)' is not a detection prompt 'detect a ; b'")
            }
            for name in promptClasses where !classes.contains(name) {
                classes.append(name)
            }

            let imageURL = entry.image.hasPrefix("/") ? URL(fileURLWithPath: entry.image) : directory.appendingPathComponent(entry.image)
            let size: (width: Int, height: Int)
            do {
                size = try ImageHeaderSize.read(contentsOf: imageURL)
            } catch {
                throw .invalidLine(path: path, line: line, reason: "image '\(entry.image)': \(error.reason) (\(imageURL.path))")
            }

            let objects: [ParsedObject]
            do {
                objects = try DetectionParser(classes: promptClasses).parseGroundTruth(entry.suffix)
            } catch {
                throw .invalidLine(path: path, line: line, reason: "\(error) in suffix '\(entry.suffix)'")
            }
            let boxes = objects.map { LabeledBox(label: $0.label, box: $0.bins.pixelBox(width: size.width, height: size.height)) }
            images.append(GroundTruthImage(image: entry.image, width: size.width, height: size.height, classes: promptClasses, boxes: boxes, line: line))
        }
        return GroundTruthSplit(annotationsURL: annotationsURL, images: images, classes: classes)
    }
}
