import PaliGemmaModel
import TensorCore
import XCTest

/// A deterministic generator (SplitMix64) for test inputs.
struct TestRandom {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }

    mutating func tensor(_ shape: [Int], scale: Float = 1, offset: Float = 0) -> Tensor {
        let count = shape.reduce(1, *)
        return Tensor(shape: shape, values: (0..<count).map { _ in offset + scale * uniform() })
    }

    mutating func index(below bound: Int) -> Int { Int(next() % UInt64(bound)) }
}

/// One layer under a finite-difference check.
///
/// `run` evaluates the layer at the given inputs and parameters. When `dy` is non-nil it also
/// runs the backward pass with that upstream gradient, returns the input gradients and
/// accumulates parameter gradients into `gradients` (keyed like `parameters`).
struct GradCheckCase {
    var inputs: [String: Tensor]
    var parameters: [String: Tensor]
    var run: (_ inputs: [String: Tensor], _ parameters: [String: Tensor], _ dy: Tensor?, _ gradients: [String: GradientSlice])
        -> (y: Tensor, dInputs: [String: Tensor])
}

/// Checks a layer's backward pass against central differences of loss = Σ y·r.
///
/// r is a fixed random projection, so backward(dy = r) must give d loss / d θ. Differences are
/// taken in f64 from f32 forward passes with step h; each coordinate must satisfy
/// |analytic − numeric| ≤ absolute + relative·|numeric|. At most `maxCoordinates` coordinates
/// per tensor are checked (all of them for small tensors). It also checks that a second
/// backward pass doubles the accumulated parameter gradients (the += contract).
func gradientCheck(
    _ label: String, _ testCase: GradCheckCase, h: Float = 1e-3,
    absolute: Double = 2e-3, relative: Double = 2e-2, maxCoordinates: Int = 120,
    mathematicallyZero: Set<String> = [],
    file: StaticString = #filePath, line: UInt = #line
) {
    var random = TestRandom(seed: 77)
    let y0 = testCase.run(testCase.inputs, testCase.parameters, nil, [:]).y
    let r = random.tensor(y0.shape)

    func loss(_ inputs: [String: Tensor], _ parameters: [String: Tensor]) -> Double {
        let y = testCase.run(inputs, parameters, nil, [:]).y
        let (values, weights) = (y.scalars, r.scalars)
        var sum = 0.0
        for i in values.indices { sum += Double(values[i]) * Double(weights[i]) }
        return sum
    }

    // Analytic gradients, and a second backward pass for the accumulation check.
    let buffers = testCase.parameters.mapValues { GradientBuffer(zeros: $0.shape) }
    let slices = buffers.mapValues(\.whole)
    let dInputs = testCase.run(testCase.inputs, testCase.parameters, r, slices).dInputs
    let once = buffers.mapValues { $0.snapshot() }
    _ = testCase.run(testCase.inputs, testCase.parameters, r, slices)
    for (name, buffer) in buffers {
        let (first, twice) = (once[name]!.scalars, buffer.snapshot().scalars)
        let worst = zip(first, twice).map { abs(2 * $0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, 1e-5 * max(1, first.map(abs).max() ?? 0),
                                 "\(label): a second backward pass must double d\(name)", file: file, line: line)
    }

    func check(_ name: String, analytic: Tensor, perturb: (Int, Float) -> Double) {
        let count = analytic.count
        let coordinates = count <= maxCoordinates
            ? Array(0..<count) : (0..<maxCoordinates).map { _ in random.index(below: count) }
        var worst: (index: Int, analytic: Double, numeric: Double, excess: Double)?
        var largest = 0.0
        for index in coordinates {
            let numeric = (perturb(index, h) - perturb(index, -h)) / (2 * Double(h))
            let value = Double(analytic[flat: index])
            largest = max(largest, abs(value))
            let excess = abs(value - numeric) - (absolute + relative * abs(numeric))
            if worst == nil || excess > worst!.excess { worst = (index, value, numeric, excess) }
        }
        guard let worst else { return }
        XCTAssertLessThanOrEqual(
            worst.excess, 0,
            "\(label): d\(name) worst at flat index \(worst.index): analytic \(worst.analytic), numeric \(worst.numeric)",
            file: file, line: line)
        if !mathematicallyZero.contains(name) {
            XCTAssertGreaterThan(largest, 1e-4, "\(label): d\(name) is zero on every checked coordinate", file: file, line: line)
        }
    }

    for (name, input) in testCase.inputs {
        guard let analytic = dInputs[name] else { continue }
        XCTAssertEqual(analytic.shape, input.shape, "\(label): d\(name) shape", file: file, line: line)
        check(name, analytic: analytic) { index, step in
            var inputs = testCase.inputs
            inputs[name]![flat: index] += step
            return loss(inputs, testCase.parameters)
        }
    }
    for (name, _) in testCase.parameters {
        check(name, analytic: once[name]!) { index, step in
            var parameters = testCase.parameters
            parameters[name]![flat: index] += step
            return loss(testCase.inputs, parameters)
        }
    }
}
