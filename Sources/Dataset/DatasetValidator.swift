import Foundation

/// Settings of `palitrain validate` and of the training preflight.
public struct ValidationOptions: Sendable {
    public var limits: DatasetLimits
    /// With a tokenizer, every training sequence is tokenized and checked against `maxTextLength`.
    public var tokenizer: Tokenizer?
    /// The model's text length L (training rows hold L + 1 tokens); nil skips the length check.
    public var maxTextLength: Int?
    /// With an image size, every image goes through the full preprocessing; without, it is
    /// only decoded.
    public var imageSize: Int?
    /// Threads that decode images; defaults to the number of active processors.
    public var threads: Int

    public init(
        limits: DatasetLimits = DatasetLimits(), tokenizer: Tokenizer? = nil, maxTextLength: Int? = nil,
        imageSize: Int? = nil, threads: Int = ProcessInfo.processInfo.activeProcessorCount
    ) {
        self.limits = limits
        self.tokenizer = tokenizer
        self.maxTextLength = maxTextLength
        self.imageSize = imageSize
        self.threads = max(1, threads)
    }
}

/// Reads every record and image of a dataset and collects problems and statistics.
public enum DatasetValidator {
    public static func validate(_ source: DatasetSource, options: ValidationOptions) throws -> ValidationReport {
        // 1. Records and image paths, split by split.
        var splits: [SplitRecords] = []
        for split in source.splits {
            splits.append(try RecordReader.read(split, boundary: source.boundary, limits: options.limits))
        }
        var report = ValidationReport(source: source, options: options, splits: splits)

        // 2. Every distinct image file once: hash, header and decode.
        let paths = Array(Set(splits.flatMap { $0.examples.map(\.imagePath) })).sorted()
        let checks = checkImages(paths, options: options)
        var checksByPath: [String: ImageCheck] = [:]
        for (path, check) in zip(paths, checks) { checksByPath[path] = check }

        // 3. Per record: image result, suffix format, labels, sequence length.
        let builder = try options.tokenizer.flatMap { tokenizer in
            try options.maxTextLength.map { try SequenceBuilder(tokenizer: tokenizer, textLength: $0) }
        }
        for split in splits {
            for example in split.examples {
                report.add(example, image: checksByPath[example.imagePath]!)
                checkText(example, builder: builder, tokenizer: options.tokenizer, report: &report)
            }
        }

        // 4. The same file content in two places.
        report.addDuplicates(checksByPath)
        return report
    }

    // MARK: - Images

    struct ImageCheck: Sendable {
        var hash: String?
        var info: ImageInfo?
        var error: ImageError?
        var warningCount = 0
    }

    private static func checkImages(_ paths: [String], options: ValidationOptions) -> [ImageCheck] {
        let results = ResultSlots<ImageCheck>(count: paths.count)
        let threads = min(options.threads, max(1, paths.count))
        DispatchQueue.concurrentPerform(iterations: threads) { worker in
            for index in stride(from: worker, to: paths.count, by: threads) {
                results.set(index, checkImage(paths[index], options: options))
            }
        }
        return results.values.map { $0 ?? ImageCheck() }
    }

    private static func checkImage(_ path: String, options: ValidationOptions) -> ImageCheck {
        var check = ImageCheck()
        do {
            let data = try ImageDecoder.readFile(path: path, limits: options.limits)
            check.hash = SHA256.hex(data)
            if let size = options.imageSize {
                let image = try ImagePreprocessor(size: size, limits: options.limits).process(data: data, path: path)
                check.info = image.info
                check.warningCount = image.warningCount
            } else {
                let image = try ImageDecoder.decode(data: data, path: path, limits: options.limits)
                check.info = image.info
                check.warningCount = image.warningCount
            }
        } catch let error as ImageError {
            check.error = error
        } catch {
            check.error = .notReadable(path: path, reason: "\(error)")
        }
        return check
    }

    // MARK: - Text

    private static func checkText(
        _ example: Example, builder: SequenceBuilder?, tokenizer: Tokenizer?, report: inout ValidationReport
    ) {
        func problem(_ field: String, _ kind: RecordProblem.Kind, _ message: String) {
            report.addProblem(RecordProblem(
                file: example.sourceFile, line: example.line, field: field, kind: kind, message: message))
        }

        // 1. Sequence length (the only text check that stops training).
        if let builder {
            do {
                let prefix = try builder.tokenizer.encode(example.prefix)
                let suffix = try builder.tokenizer.encode(example.suffix)
                report.recordTokenCount(builder.layout.trainingTokenCount(prefixTokens: prefix.count, suffixTokens: suffix.count))
                _ = try builder.layout.trainingRow(prefixIDs: prefix, suffixIDs: suffix)
            } catch {
                problem("suffix", .sequenceTooLong, "\(error)")
            }
        } else if let tokenizer, let prefix = try? tokenizer.encode(example.prefix), let suffix = try? tokenizer.encode(example.suffix) {
            report.recordTokenCount(prefix.count + suffix.count + 3)
        }

        // 2. Detection format, only for detection prompts.
        guard let classes = DetectionText.classes(inPrefix: example.prefix) else {
            report.nonDetectionPrompts += 1
            return
        }
        for name in classes {
            if let risk = DetectionText.riskInClassName(name) {
                report.addRiskyName(name, reason: risk, example: example, field: "prefix")
            }
        }
        let parsed = DetectionText.parse(suffix: example.suffix)
        for issue in parsed.issues { problem("suffix", issue.kind, issue.message) }
        if example.suffix.isEmpty { report.emptySuffixes += 1 }

        let known = Set(classes)
        for (index, object) in parsed.objects.enumerated() {
            report.labelCounts[object.label, default: 0] += 1
            if let risk = DetectionText.riskInClassName(object.label) {
                report.addRiskyName(object.label, reason: risk, example: example, field: "suffix")
            }
            guard !known.contains(object.label) else { continue }
            var message = "object \(index + 1): label \(object.label.debugDescription) is not among the prefix classes "
                + "\(classes.map(\.debugDescription).joined(separator: ", "))"
            if let near = classes.first(where: { $0.lowercased() == object.label.lowercased() }) {
                message += " (\(near.debugDescription) differs only in case)"
            }
            problem("suffix", .labelNotInPrefix, message)
        }
        report.objectCount += parsed.objects.count
    }
}

/// Fixed slots written by concurrent workers, one index each.
final class ResultSlots<Value: Sendable>: @unchecked Sendable {
    // NOTE: @unchecked Sendable is sound because every access takes `lock`.
    private var storage: [Value?]
    private let lock = NSLock()

    init(count: Int) {
        storage = Array(repeating: nil, count: count)
    }

    func set(_ index: Int, _ value: Value) {
        lock.lock()
        storage[index] = value
        lock.unlock()
    }

    var values: [Value?] {
        lock.lock()
        defer { lock.unlock() }
        return storage
    }
}
