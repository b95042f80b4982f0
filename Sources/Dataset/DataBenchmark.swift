import Foundation

/// Throughput of image decoding and preprocessing on the calling thread (one core).
public enum DataBenchmark {
    public struct Measurement: Sendable {
        public let name: String
        public let images: Int
        public let seconds: Double

        public var imagesPerSecond: Double { Double(images) / seconds }
        public var millisecondsPerImage: Double { 1000 * seconds / Double(images) }
    }

    public struct Result: Sendable {
        public let files: Int
        public let megapixels: Double
        public let compressedBytes: Int
        public let size: Int
        public let measurements: [Measurement]

        public var description: String {
            var lines = [
                "\(files) files, \(String(format: "%.2f", megapixels / Double(max(files, 1)))) MP and "
                    + "\(compressedBytes / max(files, 1) / 1024) KiB each on average, output \(size)x\(size), one thread:",
            ]
            for measurement in measurements {
                lines.append("  \(measurement.name.padding(toLength: 44, withPad: " ", startingAt: 0)) "
                    + String(format: "%7.1f images/s  %6.2f ms/image", measurement.imagesPerSecond, measurement.millisecondsPerImage))
            }
            return lines.joined(separator: "\n")
        }
    }

    /// Runs each stage over all files, repeated until at least `minimumSeconds` have passed.
    /// Files are read into memory first, so disk speed is not measured.
    public static func run(files: [String], size: Int, minimumSeconds: Double = 2) throws -> Result {
        let limits = DatasetLimits()
        let data = try files.map { try ImageDecoder.readFile(path: $0, limits: limits) }
        let infos = try zip(data, files).map { try ImageDecoder.info(data: $0, path: $1) }
        let megapixels = infos.reduce(0.0) { $0 + Double($1.storedWidth * $1.storedHeight) / 1e6 }

        let exact = ImagePreprocessor(size: size, limits: limits, dctScaling: .off)
        let scaled = ImagePreprocessor(size: size, limits: limits, dctScaling: .keepingAtLeast(factor: 1))
        var measurements: [Measurement] = []
        measurements.append(try measure("libjpeg/libpng decode only (full size)", data, files, minimumSeconds) { data, path in
            _ = try ImageDecoder.decode(data: data, path: path, limits: limits)
        })
        measurements.append(try measure("decode + resize + scale (palitrain default)", data, files, minimumSeconds) { data, path in
            _ = try exact.process(data: data, path: path)
        })
        measurements.append(try measure("same with DCT scaling to >= 1x (not exact)", data, files, minimumSeconds) { data, path in
            _ = try scaled.process(data: data, path: path)
        })
        return Result(
            files: files.count, megapixels: megapixels, compressedBytes: data.reduce(0) { $0 + $1.count }, size: size,
            measurements: measurements)
    }

    private static func measure(
        _ name: String, _ data: [Data], _ files: [String], _ minimumSeconds: Double,
        _ body: (Data, String) throws -> Void
    ) throws -> Measurement {
        // One untimed pass warms caches and the allocator.
        for (bytes, path) in zip(data, files) { try body(bytes, path) }
        var images = 0
        let start = DispatchTime.now().uptimeNanoseconds
        var elapsed = 0.0
        repeat {
            for (bytes, path) in zip(data, files) { try body(bytes, path) }
            images += data.count
            elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        } while elapsed < minimumSeconds
        return Measurement(name: name, images: images, seconds: elapsed)
    }
}
