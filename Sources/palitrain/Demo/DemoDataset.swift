import Foundation

/// Writes the demo detection dataset in Roboflow's PaliGemma export layout.
///
/// `OUT/_annotations.train.jsonl` and `OUT/_annotations.valid.jsonl` list one scene per line
/// (`image`, `prefix`, `suffix`); the JPEG files sit beside them. Train and valid scenes use
/// disjoint sets of handwritten digits, so validation measures generalisation to new writers'
/// strokes, not memory of the training pixels.
struct DemoDatasetWriter {
    let outputDirectory: String
    let sceneSize: Int
    let seed: UInt64
    /// Digit side as a fraction of the scene side.
    var digitScale: ClosedRange<Double> = DigitSceneComposer.defaultDigitScale
    /// Share of scenes with no digit (their suffix is empty).
    let emptyShare = 0.05

    /// Writes `trainCount` training and `validCount` validation scenes.
    ///
    /// - encodeJPEG: turns RGB8 pixels [height, width, 3] into JPEG file bytes.
    func write(
        digits: [HandwrittenDigit], trainCount: Int, validCount: Int,
        encodeJPEG: (_ pixels: [UInt8], _ width: Int, _ height: Int) throws -> [UInt8]
    ) throws -> (train: Int, valid: Int, objects: Int) {
        try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)

        // Every fifth digit is kept for validation scenes.
        let trainPool = digits.enumerated().filter { $0.offset % 5 != 0 }.map(\.element)
        let validPool = digits.enumerated().filter { $0.offset % 5 == 0 }.map(\.element)
        let composer = DigitSceneComposer(size: sceneSize, digitScale: digitScale)

        var objects = 0
        for (split, count, pool, splitSeed) in [("train", trainCount, trainPool, seed), ("valid", validCount, validPool, seed &+ 1_000_003)] {
            var rng = SeededGenerator(seed: splitSeed)
            var lines: [String] = []
            for index in 0..<count {
                let digitCount = rng.unit() < emptyShare ? 0 : 1 + Int(rng.next() % 3)
                let scene = composer.compose(count: digitCount, pool: pool, rng: &rng)
                let name = String(format: "%@_%05d.jpg", split, index)
                let bytes = try encodeJPEG(scene.pixels, scene.width, scene.height)
                let path = (outputDirectory as NSString).appendingPathComponent(name)
                guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
                    throw DemoDataError.writeFailed(path: path)
                }
                let (prefix, suffix) = Self.annotation(for: scene, rng: &rng)
                lines.append("{\"image\": \"\(name)\", \"prefix\": \"\(prefix)\", \"suffix\": \"\(suffix)\"}")
                objects += scene.digits.count
            }
            let jsonl = (outputDirectory as NSString).appendingPathComponent("_annotations.\(split).jsonl")
            try (lines.joined(separator: "\n") + "\n").write(toFile: jsonl, atomically: true, encoding: .utf8)
        }
        return (trainCount, validCount, objects)
    }

    /// The prompt and target of a scene: `detect 3 ; 7` listing the digits present plus up to
    /// two absent ones in random order, and `<locY1><locX1><locY2><locX2> 3 ; ...` sorted by x1.
    static func annotation(for scene: DigitScene, rng: inout SeededGenerator) -> (prefix: String, suffix: String) {
        var classes = Array(Set(scene.digits.map(\.label)))
        let absentCount = Int(rng.next() % 3) + (classes.isEmpty ? 1 : 0)
        var absent = (0...9).filter { !classes.contains($0) }
        for _ in 0..<absentCount where !absent.isEmpty {
            classes.append(absent.remove(at: Int(rng.next() % UInt64(absent.count))))
        }
        classes.shuffle(using: &rng)
        let prefix = "detect " + classes.map(String.init).joined(separator: " ; ")

        let objects = scene.digits.sorted { ($0.x1, $0.y1) < ($1.x1, $1.y1) }.map { digit -> String in
            let y1 = locationBin(digit.y1, size: scene.height)
            let x1 = locationBin(digit.x1, size: scene.width)
            let y2 = locationBin(digit.y2, size: scene.height)
            let x2 = locationBin(digit.x2, size: scene.width)
            return [y1, x1, y2, x2].map { String(format: "<loc%04d>", $0) }.joined() + " \(digit.label)"
        }
        return (prefix, objects.joined(separator: " ; "))
    }

    /// big_vision's encoding of a pixel coordinate: `clip(round(v * 1023), 0, 1023)` with
    /// v the coordinate divided by the image side.
    static func locationBin(_ coordinate: Int, size: Int) -> Int {
        let value = Double(coordinate) / Double(size)
        return min(1023, max(0, Int((value * 1023).rounded())))
    }
}
