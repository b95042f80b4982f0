import Foundation

extension ValidationReport {
    /// Formats the report as `palitrain validate` prints it: sources, problems (errors first,
    /// at most `limits.maxProblemsListed` of each severity), statistics and the verdict.
    public func render() -> String {
        var lines: [String] = []
        let maxListed = options.limits.maxProblemsListed

        // 1. What was read.
        lines.append("dataset: \(source.boundary) (\(source.layout.rawValue))")
        for split in splits {
            let noun = split.recordCount == 1 ? "record" : "records"
            lines.append("  \(split.split.name): \(split.split.annotations): \(split.recordCount) \(noun), "
                + "\(usableExamples(split: split.split.name).count) usable")
        }
        if let tokenizer = options.tokenizer {
            lines.append("tokenizer: \(tokenizer.source): \(tokenizer.modelSummary)")
        }
        if let size = options.imageSize { lines.append("images: preprocessed to \(size)x\(size)") }
        if let length = options.maxTextLength {
            lines.append("max text length: \(length) (training rows of \(length + 1) tokens)")
        } else {
            lines.append("max text length: not checked (pass --tokenizer and --max-len, or --checkpoint)")
        }

        // 2. Problems.
        for severity in [RecordProblem.Severity.error, .warning] {
            let selected = problems.filter { $0.severity == severity }
            guard !selected.isEmpty else { continue }
            lines.append("")
            lines.append(severity == .error
                ? "errors (\(selected.count); training stops on these unless --skip-bad-records):"
                : "warnings (\(selected.count); training runs, but check these):")
            lines += selected.prefix(maxListed).map { "  \($0)" }
            if selected.count > maxListed {
                lines.append("  … and \(selected.count - maxListed) more (raise --max-problems to list them)")
            }
            var counts: [RecordProblem.Kind: Int] = [:]
            for problem in selected { counts[problem.kind, default: 0] += 1 }
            let summary = RecordProblem.Kind.allCases.compactMap { kind in counts[kind].map { "\($0) \(kind.rawValue)" } }
            lines.append("  by kind: " + summary.joined(separator: ", "))
        }

        // 3. Statistics.
        lines.append("")
        lines.append("statistics:")
        let formatList = formats.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        lines.append("  images: \(imagesChecked) files (\(formatList.isEmpty ? "none decoded" : formatList)), "
            + "\(imagesFailed) unreadable")
        lines.append("  image kinds: \(exifRotated) EXIF-rotated, \(sixteenBit) 16-bit, \(withAlpha) with alpha "
            + "(dropped), \(grayscale) grayscale, \(cmyk) CMYK")
        if let smallest = smallestSide, let largest = largestSide {
            lines.append("  image sides: \(smallest) to \(largest) pixels")
        }
        let records = recordCount
        let share = records > 0 ? String(format: "%.1f%%", 100 * Double(emptySuffixes) / Double(records)) : "-"
        lines.append("  suffixes: \(objectCount) objects; \(emptySuffixes) empty of \(records) records (\(share))")
        if !labelCounts.isEmpty {
            let top = labelCounts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(20)
            lines.append("  labels: " + top.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                + (labelCounts.count > 20 ? ", … (\(labelCounts.count) labels)" : ""))
        }
        if nonDetectionPrompts > 0 {
            lines.append("  \(nonDetectionPrompts) records have a prompt that is not 'detect …' (suffix format not checked)")
        }
        if !tokenCounts.isEmpty {
            let sorted = tokenCounts.sorted()
            let p99 = sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))]
            lines.append("  tokens per training sequence (BOS to EOS): max \(sorted.last!), 99th percentile \(p99), "
                + "median \(sorted[sorted.count / 2])")
        }

        // 4. Verdict.
        lines.append("")
        if trainingWouldFail {
            let skipped = badRecordsByKind.reduce(0) { $0 + $1.count }
            lines.append("FAILED: \(errorCount) errors in \(skipped) records; training would stop "
                + "(with --skip-bad-records it would skip those \(skipped) records)")
        } else {
            lines.append("OK: \(recordCount) records usable\(warningCount > 0 ? ", \(warningCount) warnings" : "")")
        }
        return lines.joined(separator: "\n")
    }
}
