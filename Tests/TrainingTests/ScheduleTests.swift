import XCTest
@testable import Training

final class ScheduleTests: XCTestCase {
    /// The PaliGemma colab prints these rates for 64 steps, base 0.03, 10% warmup.
    func testColabScheduleMatchesPrintedRates() {
        let schedule = LearningRateSchedule.colab(baseRate: 0.03, trainSteps: 64, warmupFraction: 0.10)
        XCTAssertEqual(schedule.totalSteps, 65)
        XCTAssertEqual(schedule.warmupSteps, 6, "round(6.5) is 6 under round-half-to-even")
        XCTAssertEqual(schedule.rate(atStep: 1), 0.005, accuracy: 1e-12)
        XCTAssertEqual(schedule.rate(atStep: 2), 0.010, accuracy: 1e-12)
        XCTAssertEqual(schedule.rate(atStep: 6), 0.030, accuracy: 1e-12)
        XCTAssertEqual(schedule.rate(atStep: 7), 0.02998, accuracy: 5e-6)
        XCTAssertEqual(schedule.rate(atStep: 64), 0.00002, accuracy: 5e-6)
    }

    func testScheduleWithoutWarmupStartsAtBase() {
        let schedule = LearningRateSchedule(baseRate: 1.0, totalSteps: 10, warmupSteps: 0)
        XCTAssertEqual(schedule.rate(atStep: 0), 1.0, accuracy: 1e-12)
        XCTAssertEqual(schedule.rate(atStep: 5), 0.5, accuracy: 1e-12)
        XCTAssertEqual(schedule.rate(atStep: 10), 0.0, accuracy: 1e-12)
        XCTAssertEqual(schedule.rate(atStep: 12), 0.0, accuracy: 1e-12, "clipped past the end")
    }
}

final class OptimizerTests: XCTestCase {
    private func step(_ optimizer: inout Optimizer, _ parameter: inout [Float], _ gradient: [Float], rate: Double) {
        optimizer.beginStep()
        parameter.withUnsafeMutableBufferPointer { p in
            gradient.withUnsafeBufferPointer { g in
                optimizer.update(name: "w", parameter: p, gradient: g, rate: rate)
            }
        }
    }

    func testPlainSGD() {
        var optimizer = Optimizer(kind: .sgd(momentum: 0))
        var parameter: [Float] = [1, -2, 3]
        step(&optimizer, &parameter, [0.5, 0.5, -1], rate: 0.1)
        XCTAssertEqual(parameter, [0.95, -2.05, 3.1])
        XCTAssertTrue(optimizer.firstMoment.isEmpty, "plain SGD keeps no state")
    }

    func testSGDMomentumAccumulatesVelocity() {
        var optimizer = Optimizer(kind: .sgd(momentum: 0.9))
        var parameter: [Float] = [0]
        step(&optimizer, &parameter, [1], rate: 1)
        step(&optimizer, &parameter, [1], rate: 1)
        // velocity 1, then 0.9 + 1 = 1.9; parameter -1 - 1.9
        XCTAssertEqual(parameter[0], -2.9, accuracy: 1e-6)
        XCTAssertEqual(optimizer.firstMoment["w"]?[0] ?? 0, 1.9, accuracy: 1e-6)
    }

    func testAdamWFirstStepMovesByRate() {
        // With bias correction, Adam's first direction is g/(|g| + eps) = sign(g).
        var optimizer = Optimizer(kind: .adamW(beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0))
        var parameter: [Float] = [1, 1]
        step(&optimizer, &parameter, [0.3, -4], rate: 0.01)
        XCTAssertEqual(parameter[0], 0.99, accuracy: 1e-6)
        XCTAssertEqual(parameter[1], 1.01, accuracy: 1e-6)
    }

    func testAdamWMatchesReferenceOverSteps() {
        var optimizer = Optimizer(kind: .adamW(beta1: 0.9, beta2: 0.99, epsilon: 1e-6, weightDecay: 0.1))
        var parameter: [Float] = [0.5]
        let gradients: [Float] = [0.2, -0.1, 0.4]
        var (p, m, v) = (0.5, 0.0, 0.0)
        for (t, g) in gradients.enumerated() {
            step(&optimizer, &parameter, [g], rate: 0.05)
            let gd = Double(g)
            m = 0.9 * m + 0.1 * gd
            v = 0.99 * v + 0.01 * gd * gd
            let mHat = m / (1 - pow(0.9, Double(t + 1)))
            let vHat = v / (1 - pow(0.99, Double(t + 1)))
            p -= 0.05 * (mHat / (vHat.squareRoot() + 1e-6) + 0.1 * p)
        }
        XCTAssertEqual(Double(parameter[0]), p, accuracy: 1e-6)
        XCTAssertEqual(optimizer.updateCount, 3)
    }

    func testClipByGlobalNormScalesAllBuffers() {
        var a: [Float] = [3, 0]
        var b: [Float] = [4]
        let norm = a.withUnsafeMutableBufferPointer { pa in
            b.withUnsafeMutableBufferPointer { pb in clipByGlobalNorm([pa, pb], maxNorm: 1) }
        }
        XCTAssertEqual(norm, 5, accuracy: 1e-9)
        XCTAssertEqual(a[0], 0.6, accuracy: 1e-6)
        XCTAssertEqual(b[0], 0.8, accuracy: 1e-6)
    }

    func testClipLeavesSmallGradientsAlone() {
        var a: [Float] = [0.3, 0.4]
        let norm = a.withUnsafeMutableBufferPointer { clipByGlobalNorm([$0], maxNorm: 1) }
        XCTAssertEqual(norm, 0.5, accuracy: 1e-7)
        XCTAssertEqual(a, [0.3, 0.4])
    }
}
