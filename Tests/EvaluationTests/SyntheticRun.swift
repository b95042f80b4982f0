import Foundation

@testable import Evaluation

/// A made-up training run for report tests and the screenshot in Docs/: smooth loss and mAP
/// curves, a warmup-cosine learning rate, and drawn scenes with known boxes. Nothing here
/// comes from a real model.
enum SyntheticRun {
    static let steps = 1200
    static let validationEvery = 100

    static func history() -> MetricsHistory {
        var history = MetricsHistory()
        var noise = SplitMix(seed: 7)
        for step in stride(from: 0, through: steps, by: 10) {
            let progress = Double(step) / Double(steps)
            let loss = 0.35 + 2.6 * exp(-5 * progress) + 0.06 * (noise.next() - 0.5)
            let warmup = 60.0
            let lr = step < Int(warmup)
                ? 3e-5 * Double(step) / warmup
                : 3e-5 * 0.5 * (1 + cos(Double.pi * (Double(step) - warmup) / (Double(steps) - warmup)))
            history.record("train/loss", step: step, value: loss)
            history.record("train/lr", step: step, value: lr)
        }
        for step in stride(from: validationEvery, through: steps, by: validationEvery) {
            let progress = Double(step) / Double(steps)
            history.record("val/map50", step: step, value: 0.72 * (1 - exp(-4 * progress)))
            history.record("val/map50_95", step: step, value: 0.46 * (1 - exp(-3.5 * progress)))
            history.record("val/runaway_rate", step: step, value: 0.3 * exp(-6 * progress))
            history.record("val/parse_failure_rate", step: step, value: 0.2 * exp(-5 * progress))
        }
        return history
    }

    /// Formats the metrics as metrics.jsonl lines, one object per step.
    static func metricsJSONL() -> String {
        let history = history()
        var byStep: [Int: [String: Double]] = [:]
        for name in history.names {
            for (step, value) in history.series(name) {
                byStep[step, default: [:]][name] = value
            }
        }
        return byStep.keys.sorted().map { step in
            let fields = byStep[step, default: [:]].sorted { $0.key < $1.key }.map { "\"\($0.key)\": \($0.value)" }
            return "{\"step\": \(step), " + fields.joined(separator: ", ") + "}"
        }.joined(separator: "\n") + "\n"
    }

    /// Three scenes of coloured shapes on a sky-and-grass background. Ground truth is each
    /// shape's extent; predictions are shifted copies with scores, plus a miss and a false
    /// positive.
    static func gallery() -> [GalleryItem] {
        [
            scene(title: "synthetic_000.jpg (synthetic)", width: 480, height: 360, shapes: [
                Shape(label: "ball", kind: .disc, box: PixelBox(xMin: 60, yMin: 180, xMax: 150, yMax: 270), color: (230, 60, 50)),
                Shape(label: "crate", kind: .block, box: PixelBox(xMin: 250, yMin: 150, xMax: 400, yMax: 300), color: (150, 100, 50)),
            ], predictions: [
                ScoredBox(label: "ball", box: PixelBox(xMin: 64, yMin: 176, xMax: 156, yMax: 268), score: 0.94),
                ScoredBox(label: "crate", box: PixelBox(xMin: 240, yMin: 160, xMax: 395, yMax: 300), score: 0.81),
            ]),
            scene(title: "synthetic_001.jpg (synthetic)", width: 400, height: 400, shapes: [
                Shape(label: "ball", kind: .disc, box: PixelBox(xMin: 40, yMin: 220, xMax: 120, yMax: 300), color: (40, 90, 220)),
                Shape(label: "ball", kind: .disc, box: PixelBox(xMin: 250, yMin: 240, xMax: 350, yMax: 340), color: (240, 200, 40)),
            ], predictions: [
                ScoredBox(label: "ball", box: PixelBox(xMin: 255, yMin: 236, xMax: 352, yMax: 338), score: 0.88),
                ScoredBox(label: "crate", box: PixelBox(xMin: 150, yMin: 60, xMax: 230, yMax: 130), score: 0.22),
            ]),
            scene(title: "synthetic_002.jpg (synthetic)", width: 520, height: 340, shapes: [
                Shape(label: "crate", kind: .block, box: PixelBox(xMin: 30, yMin: 170, xMax: 170, yMax: 300), color: (120, 80, 40)),
                Shape(label: "ball", kind: .disc, box: PixelBox(xMin: 330, yMin: 200, xMax: 420, yMax: 290), color: (200, 40, 160)),
            ], predictions: [
                ScoredBox(label: "crate", box: PixelBox(xMin: 34, yMin: 165, xMax: 175, yMax: 302), score: 0.9),
                ScoredBox(label: "ball", box: PixelBox(xMin: 300, yMin: 190, xMax: 410, yMax: 280), score: 0.57),
            ]),
        ]
    }

    struct Shape {
        enum Kind { case disc, block }
        var label: String
        var kind: Kind
        var box: PixelBox
        var color: (UInt8, UInt8, UInt8)
    }

    static func scene(title: String, width: Int, height: Int, shapes: [Shape], predictions: [ScoredBox]) -> GalleryItem {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        let horizon = height * 11 / 20
        for y in 0..<height {
            for x in 0..<width {
                let index = (y * width + x) * 3
                if y < horizon {
                    let t = Double(y) / Double(horizon)
                    pixels[index] = UInt8(120 + 80 * t)
                    pixels[index + 1] = UInt8(170 + 60 * t)
                    pixels[index + 2] = 235
                } else {
                    let stripe = (x / 12 + y / 9) % 2 == 0 ? 0 : 12
                    pixels[index] = UInt8(70 + stripe)
                    pixels[index + 1] = UInt8(140 + stripe)
                    pixels[index + 2] = UInt8(60 + stripe)
                }
            }
        }
        for shape in shapes {
            let box = shape.box
            let (centerX, centerY) = ((box.xMin + box.xMax) / 2, (box.yMin + box.yMax) / 2)
            let (radiusX, radiusY) = ((box.xMax - box.xMin) / 2, (box.yMax - box.yMin) / 2)
            for y in Int(box.yMin)..<Int(box.yMax) {
                for x in Int(box.xMin)..<Int(box.xMax) {
                    let dx = (Double(x) + 0.5 - centerX) / radiusX
                    let dy = (Double(y) + 0.5 - centerY) / radiusY
                    let inside = shape.kind == .block || dx * dx + dy * dy <= 1
                    guard inside else { continue }
                    // Simple shading: lighter towards the top-left.
                    let shade = 1.15 - 0.3 * (dx + dy + 2) / 4
                    let index = (y * width + x) * 3
                    pixels[index] = UInt8(min(255, Double(shape.color.0) * shade))
                    pixels[index + 1] = UInt8(min(255, Double(shape.color.1) * shade))
                    pixels[index + 2] = UInt8(min(255, Double(shape.color.2) * shade))
                }
            }
        }
        let truth = shapes.map { LabeledBox(label: $0.label, box: $0.box) }
        return GalleryItem(title: title, pixels: pixels, width: width, height: height, groundTruth: truth, predictions: predictions)
    }

    /// A small deterministic generator for the loss noise.
    struct SplitMix {
        var state: UInt64

        init(seed: UInt64) { state = seed }

        /// Returns the next value in [0, 1).
        mutating func next() -> Double {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Double(z >> 11) / Double(1 << 53)
        }
    }
}
