@testable import PaliGemmaModel
import TensorCore
import XCTest

final class ConfigTests: XCTestCase {
    func testInfersGoldenConfigFromShapes() throws {
        let npz = try Golden.reader("params.npz")
        var shapes: [String: [Int]] = [:]
        for key in npz.keys { shapes["params/" + key] = try npz.header(key).shape }
        let config = try PaliGemmaConfig.infer(from: shapes)
        XCTAssertEqual(config, try PaliGemmaInit.variant(named: "tiny"))
        XCTAssertEqual(config.vision.numTokens, 4)
        XCTAssertEqual(config.parameterCount, 97_376)
    }

    func testVariantParameterCounts() throws {
        XCTAssertEqual(try PaliGemmaInit.variant(named: "pt-224").parameterCount, 2_923_335_408)
        XCTAssertEqual(try PaliGemmaInit.variant(named: "pt-448").parameterCount, 2_923_335_408 + 884_736)
        XCTAssertEqual(try PaliGemmaInit.variant(named: "pt-896").parameterCount, 2_923_335_408 + 4_423_680)
        XCTAssertEqual(try PaliGemmaInit.variant(named: "bench-small").parameterCount, 165_250_944)
        let attention = ParameterTable.specs(for: try PaliGemmaInit.variant(named: "pt-224"))
            .filter { $0.name.hasPrefix("llm/layers/attn/") }.reduce(0) { $0 + $1.count }
        XCTAssertEqual(attention, 169_869_312)
        XCTAssertThrowsError(try PaliGemmaInit.variant(named: "pt-1024")) { error in
            XCTAssertTrue("\(error)".contains("pt-224"), "\(error)")
        }
    }

    func testInferenceRejectsMissingExtraAndInconsistentArrays() throws {
        let config = try PaliGemmaInit.variant(named: "tiny")
        var shapes: [String: [Int]] = [:]
        for spec in ParameterTable.specs(for: config) { shapes[spec.name] = spec.shape }
        XCTAssertEqual(try PaliGemmaConfig.infer(from: shapes), config)

        var missing = shapes
        missing["llm/final_norm/scale"] = nil
        XCTAssertThrowsError(try PaliGemmaConfig.infer(from: missing)) { error in
            XCTAssertEqual(error as? PaliGemmaError, .missingParameter(name: "llm/final_norm/scale"))
        }
        var extra = shapes
        extra["llm/layers/post_ffw_norm/scale"] = [2, 32]
        XCTAssertThrowsError(try PaliGemmaConfig.infer(from: extra)) { error in
            XCTAssertEqual(error as? PaliGemmaError, .unknownParameter(name: "llm/layers/post_ffw_norm/scale"))
        }
        var inconsistent = shapes
        inconsistent["llm/layers/mlp/linear"] = [2, 65, 32]
        XCTAssertThrowsError(try PaliGemmaConfig.infer(from: inconsistent)) { error in
            XCTAssertEqual(error as? PaliGemmaError, .inconsistentShape(name: "llm/layers/mlp/linear", expected: "[2, 64, 32]", found: [2, 65, 32]))
        }
        XCTAssertThrowsError(try ParameterStore(arrays: [:], trainable: "(")) { error in
            XCTAssertTrue("\(error)".contains("missing") || "\(error)".contains("no array"), "\(error)")
        }
    }

    func testInvalidTrainablePatternIsReported() throws {
        let arrays = PaliGemmaInit.arrays(for: try PaliGemmaInit.variant(named: "tiny"), seed: 1)
        XCTAssertThrowsError(try ParameterStore(arrays: arrays, trainable: "llm/(")) { error in
            guard case .invalidPattern(let pattern, _) = error as? PaliGemmaError else {
                return XCTFail("expected invalidPattern, got \(error)")
            }
            XCTAssertEqual(pattern, "llm/(")
        }
    }
}
