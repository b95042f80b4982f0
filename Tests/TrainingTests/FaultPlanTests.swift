import XCTest
@testable import Training

final class FaultPlanTests: XCTestCase {
    func testParsesEveryKind() throws {
        let plan = try FaultPlan.parse(
            "nan-grad:1@3,overflow-grad:0@2,perturb-params:3@4,corrupt-frame:2,die:1@5,slow-checkpoint:2.5,slow-checkpoint:30@4")
        XCTAssertEqual(plan.faults, [
            .nanGradient(rank: 1, step: 3),
            .overflowGradient(rank: 0, step: 2),
            .perturbParameters(rank: 3, step: 4),
            .corruptFrame(rank: 2),
            .die(rank: 1, step: 5),
            .slowCheckpoint(seconds: 2.5, step: nil),
            .slowCheckpoint(seconds: 30, step: 4),
        ])
        XCTAssertEqual(plan.corruptFrameRank, 2)
    }

    func testDescriptionRoundTrips() throws {
        let text = "nan-grad:1@3,corrupt-frame:0,die:2@7,slow-checkpoint:0.5@2,slow-checkpoint:4"
        let plan = try FaultPlan.parse(text)
        XCTAssertEqual(plan.faults.map(\.description).joined(separator: ","), text)
    }

    func testToleratesSpacesAroundEntries() throws {
        XCTAssertEqual(try FaultPlan.parse(" die:0@1 , nan-grad:1@2").faults, [.die(rank: 0, step: 1), .nanGradient(rank: 1, step: 2)])
    }

    func testRejectsMalformedEntries() {
        let cases: [(String, String)] = [
            ("", "expected KIND:ARGUMENTS"),
            ("nan-grad", "expected KIND:ARGUMENTS"),
            ("explode:1@2", "unknown fault kind 'explode'"),
            ("nan-grad:1", "'nan-grad' takes RANK@STEP, found '1'"),
            ("die:1@2@3", "'die' takes RANK@STEP, found '1@2@3'"),
            ("die:x@2", "RANK must be an integer of 0 or more, found 'x'"),
            ("die:-1@2", "RANK must be an integer of 0 or more, found '-1'"),
            ("nan-grad:1@0", "STEP must be an integer of 1 or more, found '0'"),
            ("overflow-grad:1@", "STEP must be an integer of 1 or more, found ''"),
            ("corrupt-frame:", "RANK must be an integer of 0 or more, found ''"),
            ("corrupt-frame:1@2", "RANK must be an integer of 0 or more, found '1@2'"),
            ("slow-checkpoint:0", "'slow-checkpoint' takes SECONDS (a number above 0)"),
            ("slow-checkpoint:inf", "'slow-checkpoint' takes SECONDS (a number above 0)"),
            ("slow-checkpoint:abc", "'slow-checkpoint' takes SECONDS (a number above 0)"),
            ("slow-checkpoint:5@0", "STEP must be an integer of 1 or more, found '0'"),
            ("die:0@1,", "expected KIND:ARGUMENTS"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try FaultPlan.parse(text), "'\(text)' was accepted") { error in
                let message = String(describing: error)
                XCTAssertTrue(message.contains(expected), "'\(text)': message '\(message)' lacks '\(expected)'")
                XCTAssertTrue(message.contains("the forms are nan-grad:RANK@STEP"), "'\(text)': message '\(message)' lacks the forms")
            }
        }
    }

    func testValidateRejectsRankOutsideWorld() throws {
        let plan = try FaultPlan.parse("die:4@2")
        XCTAssertNoThrow(try plan.validate(worldSize: 5, totalSteps: 10))
        XCTAssertThrowsError(try plan.validate(worldSize: 4, totalSteps: 10)) { error in
            XCTAssertEqual(error as? FaultPlanError, .rankOutOfRange(fault: .die(rank: 4, step: 2), worldSize: 4))
            XCTAssertEqual(
                String(describing: error),
                "--inject 'die:4@2' names rank 4, but the run has 4 ranks (0 to 3); pick a rank below 4")
        }
    }

    func testValidateRejectsStepAfterLastStep() throws {
        let plan = try FaultPlan.parse("nan-grad:0@11")
        XCTAssertNoThrow(try plan.validate(worldSize: 1, totalSteps: 11))
        XCTAssertThrowsError(try plan.validate(worldSize: 1, totalSteps: 10)) { error in
            XCTAssertEqual(
                String(describing: error),
                "--inject 'nan-grad:0@11' would fire at step 11, but the run ends at step 10; pick a step from 1 to 10")
        }
    }

    func testValidateRejectsCorruptFrameOnOneRank() throws {
        let plan = try FaultPlan.parse("corrupt-frame:0")
        XCTAssertNoThrow(try plan.validate(worldSize: 2, totalSteps: 1))
        XCTAssertThrowsError(try plan.validate(worldSize: 1, totalSteps: 1)) { error in
            XCTAssertEqual(error as? FaultPlanError, .needsSeveralRanks(fault: .corruptFrame(rank: 0)))
        }
    }

    func testSlowCheckpointActsOnRankZero() throws {
        let plan = try FaultPlan.parse("slow-checkpoint:3@2")
        XCTAssertEqual(plan.faults.first?.rank, 0)
        XCTAssertEqual(plan.faults.first?.step, 2)
        XCTAssertNoThrow(try plan.validate(worldSize: 1, totalSteps: 2))
    }

    // MARK: - Firing

    func testGradientFaultsHitOnlyTheirRankAndStep() throws {
        let plan = try FaultPlan.parse("nan-grad:1@2,overflow-grad:0@3")
        var values: [Float] = [0.5, 0.25]
        values.withUnsafeMutableBufferPointer { buffer in
            plan.injectBeforeAllReduce(gradients: [buffer], names: ["w"], rank: 0, worldSize: 4, step: 2)
        }
        XCTAssertEqual(values, [0.5, 0.25], "rank 0 has no fault at step 2")

        values.withUnsafeMutableBufferPointer { buffer in
            plan.injectBeforeAllReduce(gradients: [buffer], names: ["w"], rank: 1, worldSize: 4, step: 2)
        }
        XCTAssertTrue(values[0].isNaN)
        XCTAssertEqual(values[1], 0.25)

        values.withUnsafeMutableBufferPointer { buffer in
            plan.injectBeforeAllReduce(gradients: [buffer], names: ["w"], rank: 0, worldSize: 4, step: 3)
        }
        // After the all-reduce's 1/4 pre-scaling the value is 1e6, far above fp16's 65504.
        XCTAssertEqual(values[0], 4e6)
    }
}
