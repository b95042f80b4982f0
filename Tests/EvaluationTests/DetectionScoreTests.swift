import Foundation
import XCTest

@testable import Evaluation

final class DetectionScoreTests: XCTestCase {
    // A made-up vocabulary shaped like Gemma's: loc tokens from 256000, EOS 1, pad 0.
    private static let eos = 1
    private static let pad = 0
    private static let words: [Int: String] = [
        10: "\u{2581}cat", 11: "\u{2581};", 12: "\u{2581}traffic", 13: "\u{2581}light", 14: "\u{2581}dog", 15: "\n", 2: "",
    ]

    private func piece(_ id: Int) -> String {
        if id >= 256_000 { return String(format: "<loc%04d>", id - 256_000) }
        return Self.words[id] ?? ""
    }

    private func loc(_ bin: Int, _ logProb: Float) -> GeneratedToken {
        GeneratedToken(id: 256_000 + bin, logProb: logProb)
    }

    private let parser = DetectionParser(classes: ["cat", "dog", "traffic light"])

    func testConfidenceIsGeometricMean() throws {
        XCTAssertNil(DetectionScore.confidence(logProbs: [Float]()))
        XCTAssertEqual(try XCTUnwrap(DetectionScore.confidence(logProbs: [Float(-1), -3])), exp(-2.0), accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(DetectionScore.confidence(logProbs: [Float(0), 0, 0])), 1.0)
        XCTAssertEqual(try XCTUnwrap(DetectionScore.confidence(logProbs: [-Float.infinity, 0])), 0.0)
    }

    func testScoresUseLocAndLabelTokensOnly() throws {
        let tokens = [
            loc(100, -0.1), loc(200, -0.2), loc(300, -0.3), loc(400, -0.4),
            GeneratedToken(id: 10, logProb: -0.5),  // cat
            GeneratedToken(id: 11, logProb: -9),  // separator, not part of any object
            loc(10, -1), loc(20, -1), loc(30, -1), loc(40, -1),
            GeneratedToken(id: 12, logProb: -2), GeneratedToken(id: 13, logProb: -4),  // traffic light
            GeneratedToken(id: Self.eos, logProb: -7),
        ]
        let output = parser.parse(tokens: tokens, eosID: Self.eos, padID: Self.pad, piece: piece)

        XCTAssertEqual(output.objects.map(\.label), ["cat", "traffic light"])
        XCTAssertEqual(output.issues, [])
        XCTAssertFalse(output.reachedTokenLimit)
        XCTAssertEqual(try XCTUnwrap(output.objects[0].score), exp(-1.5 / 5), accuracy: 1e-6)
        XCTAssertEqual(try XCTUnwrap(output.objects[1].score), exp(-10.0 / 6), accuracy: 1e-6)
    }

    func testTrailingNewlineIsNotPartOfLabel() throws {
        let tokens = [loc(1, 0), loc(2, 0), loc(3, 0), loc(4, 0), GeneratedToken(id: 14, logProb: -1), GeneratedToken(id: 15, logProb: -20)]
        let output = parser.parse(tokens: tokens, eosID: Self.eos, padID: Self.pad, piece: piece)

        XCTAssertEqual(output.objects.map(\.label), ["dog"])
        XCTAssertEqual(try XCTUnwrap(output.objects[0].score), exp(-1.0 / 5), accuracy: 1e-6)
    }

    func testNoEOSIsRunaway() {
        let tokens = [loc(1, 0), loc(2, 0), loc(3, 0), loc(4, 0), GeneratedToken(id: 10, logProb: 0), GeneratedToken(id: 11, logProb: 0), loc(5, 0)]
        let output = parser.parse(tokens: tokens, eosID: Self.eos, padID: Self.pad, piece: piece)

        XCTAssertTrue(output.reachedTokenLimit)
        XCTAssertEqual(output.objects.map(\.label), ["cat"])
        XCTAssertEqual(output.issues.map(\.kind), [.tooFewLocs])
    }

    func testTextAfterEOS() {
        let tokens = [
            loc(1, 0), loc(2, 0), loc(3, 0), loc(4, 0), GeneratedToken(id: 10, logProb: 0),
            GeneratedToken(id: Self.eos, logProb: 0),
            GeneratedToken(id: 11, logProb: 0), loc(5, 0), loc(6, 0), loc(7, 0), loc(8, 0), GeneratedToken(id: 14, logProb: 0),
        ]
        let output = parser.parse(tokens: tokens, eosID: Self.eos, padID: Self.pad, piece: piece)

        XCTAssertEqual(output.objects.map(\.label), ["cat"], "objects after EOS are not read")
        XCTAssertEqual(output.issues.map(\.kind), [.textAfterEOS])
        XCTAssertEqual(output.issues.first?.text, "\u{2581};<loc0005><loc0006><loc0007><loc0008>\u{2581}dog")
        XCTAssertFalse(output.reachedTokenLimit)
    }

    func testPaddingAfterEOSIsFine() {
        let tokens = [
            loc(1, 0), loc(2, 0), loc(3, 0), loc(4, 0), GeneratedToken(id: 10, logProb: 0),
            GeneratedToken(id: Self.eos, logProb: 0), GeneratedToken(id: Self.pad, logProb: 0), GeneratedToken(id: Self.eos, logProb: 0),
        ]
        let output = parser.parse(tokens: tokens, eosID: Self.eos, padID: Self.pad, piece: piece)

        XCTAssertEqual(output.issues, [])
        XCTAssertEqual(output.objects.count, 1)
    }

    func testTokenFormMatchesTextForm() {
        let tokens = [
            loc(7, -1), loc(8, -1), loc(9, -1), loc(10, -1), GeneratedToken(id: 14, logProb: -1), GeneratedToken(id: 11, logProb: 0),
            loc(3, 0), loc(2, 0), loc(1, 0), GeneratedToken(id: 10, logProb: 0), GeneratedToken(id: Self.eos, logProb: 0),
        ]
        let fromTokens = parser.parse(tokens: tokens, eosID: Self.eos, padID: Self.pad, piece: piece)
        let fromText = parser.parse("<loc0007><loc0008><loc0009><loc0010> dog ; <loc0003><loc0002><loc0001> cat")

        XCTAssertEqual(fromTokens.objects.map(\.bins), fromText.objects.map(\.bins))
        XCTAssertEqual(fromTokens.issues.map(\.kind), fromText.issues.map(\.kind))
        XCTAssertEqual(fromTokens.partCount, fromText.partCount)
    }
}
