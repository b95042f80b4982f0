import Foundation

/// One handwritten digit from optdigits: an 8×8 image of ink counts 0...16 and its class.
struct HandwrittenDigit {
    /// Ink per cell, [8, 8] row-major, 0...16.
    let ink: [UInt8]
    let label: Int
}

/// A digit placed in a scene, with its exact box in pixels (`x2`, `y2` exclusive).
struct PlacedDigit {
    let label: Int
    let x1: Int, y1: Int, x2: Int, y2: Int
}

/// A composed detection scene: RGB8 pixels [height, width, 3] and the digits in it.
struct DigitScene {
    let width: Int
    let height: Int
    var pixels: [UInt8]
    var digits: [PlacedDigit]
}

/// Errors of the demo data generator.
enum DemoDataError: Error, CustomStringConvertible {
    case digitsNotFound(path: String)
    case invalidDigitsLine(path: String, line: Int, reason: String)
    case writeFailed(path: String)

    var description: String {
        switch self {
        case .digitsNotFound(let path):
            return "demo digits file '\(path)' not found; pass --digits PATH to Sources/palitrain/Demo/optdigits.csv of the palitrain repository"
        case .invalidDigitsLine(let path, let line, let reason):
            return "\(path):\(line): invalid digits line: \(reason); expected 64 values 0...16 and a class 0...9, comma-separated"
        case .writeFailed(let path):
            return "failed to write '\(path)'; check free disk space and permissions of the output directory"
        }
    }
}

/// Reads optdigits.csv: per line, 64 ink values then the class.
func loadHandwrittenDigits(path: String) throws -> [HandwrittenDigit] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw DemoDataError.digitsNotFound(path: path)
    }
    var digits: [HandwrittenDigit] = []
    for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
        let fields = line.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard fields.count == 65, fields.allSatisfy({ $0 != nil }) else {
            throw DemoDataError.invalidDigitsLine(path: path, line: index + 1, reason: "found \(fields.count) fields")
        }
        let values = fields.map { $0! }
        guard values[..<64].allSatisfy({ (0...16).contains($0) }), (0...9).contains(values[64]) else {
            throw DemoDataError.invalidDigitsLine(path: path, line: index + 1, reason: "value out of range")
        }
        digits.append(HandwrittenDigit(ink: values[..<64].map { UInt8($0) }, label: values[64]))
    }
    return digits
}

/// SplitMix64: a small, fast generator whose sequence depends only on the seed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

/// Composes scenes of one to three handwritten digits on textured backgrounds.
struct DigitSceneComposer {
    let size: Int
    /// Rendered digit side in pixels, as a fraction of the scene side.
    var digitScale: ClosedRange<Double> = DigitSceneComposer.defaultDigitScale

    static let defaultDigitScale: ClosedRange<Double> = 0.3...0.6

    /// Draws a scene holding `count` digits from `pool`.
    func compose(count: Int, pool: [HandwrittenDigit], rng: inout SeededGenerator) -> DigitScene {
        var scene = DigitScene(width: size, height: size, pixels: background(rng: &rng), digits: [])

        for _ in 0..<count {
            let digit = pool[Int(rng.next() % UInt64(pool.count))]
            // Try a few positions; a digit that finds no free spot is left out.
            for _ in 0..<30 {
                let side = Int(Double(size) * (digitScale.lowerBound + rng.unit() * (digitScale.upperBound - digitScale.lowerBound)))
                let aspect = 0.8 + 0.4 * rng.unit()
                let width = max(8, Int(Double(side) * aspect))
                let height = max(8, side)
                let x = Int(rng.next() % UInt64(size - width + 1))
                let y = Int(rng.next() % UInt64(size - height + 1))
                let alpha = renderInk(digit.ink, width: width, height: height)
                guard let box = inkBox(alpha, width: width, height: height, x: x, y: y) else { continue }
                let overlaps = scene.digits.contains { intersectionOverUnion($0, box) > 0.05 }
                if overlaps { continue }

                let ink = (UInt8(rng.next() % 70), UInt8(rng.next() % 70), UInt8(rng.next() % 90))
                blend(alpha, width: width, height: height, x: x, y: y, ink: ink, into: &scene.pixels)
                scene.digits.append(PlacedDigit(label: digit.label, x1: box.x1, y1: box.y1, x2: box.x2, y2: box.y2))
                break
            }
        }
        return scene
    }

    /// Draws a light background of smooth colour gradients, blotches and grain: [size, size, 3].
    private func background(rng: inout SeededGenerator) -> [UInt8] {
        var pixels = [UInt8](repeating: 0, count: size * size * 3)
        let base = (150 + rng.unit() * 100, 150 + rng.unit() * 100, 150 + rng.unit() * 100)
        let tilt = (rng.unit() - 0.5, rng.unit() - 0.5)
        let blotches = (0..<6).map { _ in (rng.unit(), rng.unit(), 0.05 + 0.2 * rng.unit(), (rng.unit() - 0.5) * 60) }
        let stripes = (period: 6 + rng.unit() * 20, strength: rng.unit() * 12, angle: rng.unit() * Double.pi)

        for y in 0..<size {
            for x in 0..<size {
                let u = Double(x) / Double(size), v = Double(y) / Double(size)
                var shade = 40 * (tilt.0 * u + tilt.1 * v)
                for (cx, cy, radius, amount) in blotches {
                    let d2 = ((u - cx) * (u - cx) + (v - cy) * (v - cy)) / (radius * radius)
                    shade += amount * Foundation.exp(-d2)
                }
                let along = Double(x) * cos(stripes.angle) + Double(y) * sin(stripes.angle)
                shade += stripes.strength * sin(2 * Double.pi * along / stripes.period)
                let grain = (rng.unit() - 0.5) * 16
                let offset = (y * size + x) * 3
                pixels[offset] = clampToByte(base.0 + shade + grain)
                pixels[offset + 1] = clampToByte(base.1 + shade + grain)
                pixels[offset + 2] = clampToByte(base.2 + shade + grain)
            }
        }
        return pixels
    }

    /// Upsamples the 8×8 ink grid bilinearly to [height, width] coverage in 0...1.
    private func renderInk(_ ink: [UInt8], width: Int, height: Int) -> [Float] {
        var alpha = [Float](repeating: 0, count: width * height)
        for y in 0..<height {
            let sy = min(max((Double(y) + 0.5) * 8 / Double(height) - 0.5, 0), 7)
            let y0 = Int(sy), y1 = min(y0 + 1, 7), fy = Float(sy - Double(y0))
            for x in 0..<width {
                let sx = min(max((Double(x) + 0.5) * 8 / Double(width) - 0.5, 0), 7)
                let x0 = Int(sx), x1 = min(x0 + 1, 7), fx = Float(sx - Double(x0))
                let top = Float(ink[y0 * 8 + x0]) * (1 - fx) + Float(ink[y0 * 8 + x1]) * fx
                let bottom = Float(ink[y1 * 8 + x0]) * (1 - fx) + Float(ink[y1 * 8 + x1]) * fx
                alpha[y * width + x] = min(1, (top * (1 - fy) + bottom * fy) / 12)
            }
        }
        return alpha
    }

    /// Returns the scene box of the visible ink (coverage above 0.25), or nil when there is none.
    private func inkBox(_ alpha: [Float], width: Int, height: Int, x: Int, y: Int) -> PlacedDigit? {
        var minX = width, minY = height, maxX = -1, maxY = -1
        for row in 0..<height {
            for column in 0..<width where alpha[row * width + column] > 0.25 {
                minX = min(minX, column); maxX = max(maxX, column)
                minY = min(minY, row); maxY = max(maxY, row)
            }
        }
        guard maxX >= minX, maxY >= minY else { return nil }
        return PlacedDigit(label: -1, x1: x + minX, y1: y + minY, x2: x + maxX + 1, y2: y + maxY + 1)
    }

    private func blend(
        _ alpha: [Float], width: Int, height: Int, x: Int, y: Int, ink: (UInt8, UInt8, UInt8), into pixels: inout [UInt8]
    ) {
        let inkColour = [Float(ink.0), Float(ink.1), Float(ink.2)]
        for row in 0..<height {
            for column in 0..<width {
                let a = alpha[row * width + column]
                if a <= 0 { continue }
                let offset = ((y + row) * size + (x + column)) * 3
                for channel in 0..<3 {
                    let background = Float(pixels[offset + channel])
                    pixels[offset + channel] = UInt8(max(0, min(255, background * (1 - a) + inkColour[channel] * a)).rounded())
                }
            }
        }
    }
}

func intersectionOverUnion(_ a: PlacedDigit, _ b: PlacedDigit) -> Double {
    let width = max(0, min(a.x2, b.x2) - max(a.x1, b.x1))
    let height = max(0, min(a.y2, b.y2) - max(a.y1, b.y1))
    let intersection = Double(width * height)
    let union = Double((a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1)) - intersection
    return union > 0 ? intersection / union : 0
}

private func clampToByte(_ value: Double) -> UInt8 {
    UInt8(max(0, min(255, value)).rounded())
}
