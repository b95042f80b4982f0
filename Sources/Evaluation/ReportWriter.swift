import Foundation

/// Writes `OUTPUT/report.html`, a page readable offline: loss, learning-rate and mAP curves
/// as inline SVG and a gallery of validation images with ground-truth and predicted boxes.
///
/// Gallery JPEGs go to `OUTPUT/report-gallery/step-<step>-<index>.jpg`. Every file is written
/// to a temporary name and renamed into place, the HTML last, so a reader sees either the
/// previous report or the new one. Gallery files of earlier reports are deleted after the new
/// HTML is in place. Call it at each validation.
public struct ReportWriter {
    public var outputDirectory: URL
    public var runName: String
    /// Gallery images are scaled down to this many pixels on the longer side.
    public var maxImageSide = 640
    public var jpegQuality = 85

    public static let fileName = "report.html"
    public static let galleryFolder = "report-gallery"

    public init(outputDirectory: URL, runName: String? = nil) {
        self.outputDirectory = outputDirectory
        self.runName = runName ?? outputDirectory.lastPathComponent
    }

    /// Reads `OUTPUT/metrics.jsonl` (an absent file means no curves yet) and writes the report.
    @discardableResult
    public func write(gallery: [GalleryItem]) throws(ReportError) -> URL {
        let metricsURL = outputDirectory.appendingPathComponent("metrics.jsonl")
        var history = MetricsHistory()
        if FileManager.default.fileExists(atPath: metricsURL.path) {
            do {
                history = try MetricsHistory.load(contentsOf: metricsURL)
            } catch {
                throw .metrics(error)
            }
        }
        return try write(history: history, gallery: gallery)
    }

    /// Writes the report for `history` and `gallery`; returns the URL of report.html.
    @discardableResult
    public func write(history: MetricsHistory, gallery: [GalleryItem], generatedAt date: Date = Date()) throws(ReportError) -> URL {
        let galleryURL = outputDirectory.appendingPathComponent(Self.galleryFolder)
        try createDirectory(galleryURL)

        // Gallery images first, so the new HTML never points at a missing file.
        let step = history.names.compactMap { history.latest($0)?.step }.max() ?? 0
        var imageNames: [String] = []
        for (index, item) in gallery.enumerated() {
            let name = String(format: "step-%08d-%03d.jpg", step, index)
            let jpeg: Data
            do {
                jpeg = try item.renderedJPEG(maxSide: maxImageSide, quality: jpegQuality)
            } catch {
                throw .image(index: index, error)
            }
            try writeAtomically(jpeg, to: galleryURL.appendingPathComponent(name))
            imageNames.append(name)
        }

        let html = ReportHTML(runName: runName, history: history, gallery: gallery, imagePaths: imageNames.map { "\(Self.galleryFolder)/\($0)" }, generatedAt: date).render()
        let reportURL = outputDirectory.appendingPathComponent(Self.fileName)
        try writeAtomically(Data(html.utf8), to: reportURL)

        removeStaleImages(in: galleryURL, keeping: Set(imageNames))
        return reportURL
    }

    private func createDirectory(_ url: URL) throws(ReportError) {
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw .writeFailed(path: url.path, reason: error.localizedDescription)
        }
    }

    /// Writes to a temporary file in the same folder, then renames it over `url`.
    private func writeAtomically(_ data: Data, to url: URL) throws(ReportError) {
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(UUID().uuidString)")
        do {
            try data.write(to: temporary)
        } catch {
            throw .writeFailed(path: temporary.path, reason: error.localizedDescription)
        }
        if rename(temporary.path, url.path) != 0 {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw .writeFailed(path: url.path, reason: "rename from \(temporary.lastPathComponent) failed: \(reason)")
        }
    }

    /// Deletes gallery JPEGs of earlier reports. Failures are ignored: a leftover image only
    /// costs disk space.
    private func removeStaleImages(in folder: URL, keeping current: Set<String>) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        for name in names where name.hasPrefix("step-") && name.hasSuffix(".jpg") && !current.contains(name) {
            try? FileManager.default.removeItem(at: folder.appendingPathComponent(name))
        }
    }
}

/// A report that could not be written.
public enum ReportError: Error, CustomStringConvertible {
    case writeFailed(path: String, reason: String)
    case metrics(MetricsHistoryError)
    case image(index: Int, ImageEncodeError)

    public var description: String {
        switch self {
        case .writeFailed(let path, let reason):
            return "cannot write the report file \(path): \(reason)"
        case .metrics(let error):
            return "cannot read the metrics for the report: \(error)"
        case .image(let index, let error):
            return "cannot render gallery image \(index): \(error)"
        }
    }
}
