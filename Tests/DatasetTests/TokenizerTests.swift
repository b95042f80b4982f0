import Foundation
import XCTest

@testable import Dataset

final class TokenizerTests: XCTestCase {
    private struct EncodingFixture: Decodable {
        struct Case: Decodable {
            let text: String
            let ids: [Int32]
        }
        let piece_count: Int
        let pad_id: Int32
        let eos_id: Int32
        let bos_id: Int32
        let unk_id: Int32
        let loc0000_id: Int32
        let seg000_id: Int32
        let newline_ids: [Int32]
        let cases: [Case]
    }

    private func loadFixture() throws -> EncodingFixture {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tokenizer/encodings.json")))
        return try JSONDecoder().decode(EncodingFixture.self, from: data)
    }

    func testIdsMatchPythonSentencepiece() throws {
        let fixture = try loadFixture()
        let tokenizer = try Tokenizer(modelPath: Fixtures.tokenizerModel)
        XCTAssertGreaterThan(fixture.cases.count, 250)

        var mismatches: [String] = []
        for testCase in fixture.cases {
            let ids = try tokenizer.encode(testCase.text)
            if ids != testCase.ids {
                mismatches.append("\(testCase.text.debugDescription): shim \(ids), python \(testCase.ids)")
            }
        }
        XCTAssertEqual(mismatches.count, 0, "first mismatches:\n" + mismatches.prefix(5).joined(separator: "\n"))
    }

    func testSpecialIdsMatchFixture() throws {
        let fixture = try loadFixture()
        let tokenizer = try Tokenizer(modelPath: Fixtures.tokenizerModel)
        XCTAssertEqual(tokenizer.vocabularySize, fixture.piece_count)
        XCTAssertEqual(tokenizer.padID, fixture.pad_id)
        XCTAssertEqual(tokenizer.eosID, fixture.eos_id)
        XCTAssertEqual(tokenizer.bosID, fixture.bos_id)
        XCTAssertEqual(tokenizer.unknownID, fixture.unk_id)
        XCTAssertEqual(tokenizer.locBase, fixture.loc0000_id)
        XCTAssertEqual(tokenizer.segBase, fixture.seg000_id)
        XCTAssertEqual([tokenizer.newlineID], fixture.newline_ids)
    }

    func testLocAndSegLayout() throws {
        let tokenizer = try Tokenizer(modelPath: Fixtures.tokenizerModel)
        XCTAssertEqual(tokenizer.locBase, 4)
        XCTAssertEqual(tokenizer.segBase, 4 + 1024)
        XCTAssertEqual(tokenizer.locID(1023), 1027)
        XCTAssertEqual(tokenizer.piece(ofID: tokenizer.locID(517)), "<loc0517>")
        XCTAssertEqual(tokenizer.piece(ofID: tokenizer.segID(127)), "<seg127>")
        XCTAssertEqual(try tokenizer.encode("<loc0005><seg010>"), [tokenizer.locID(5), tokenizer.segID(10)])
        XCTAssertNil(tokenizer.id(ofPiece: "<loc1024>"))
        XCTAssertNil(tokenizer.piece(ofID: Int32(tokenizer.vocabularySize)))
    }

    func testModelSettingsReadFromProto() throws {
        let tokenizer = try Tokenizer(modelPath: Fixtures.tokenizerModel)
        XCTAssertTrue(tokenizer.modelSummary.contains("BPE"), tokenizer.modelSummary)
        XCTAssertTrue(tokenizer.modelSummary.contains("byte fallback"), tokenizer.modelSummary)
        XCTAssertTrue(tokenizer.modelSummary.contains("no dummy prefix"), tokenizer.modelSummary)
    }

    func testDecodeRoundTrip() throws {
        let tokenizer = try Tokenizer(modelPath: Fixtures.tokenizerModel)
        let text = "<loc0100><loc0200><loc0300><loc0400> fracture ; Café 🦴"
        let ids = try tokenizer.encode(text)
        XCTAssertEqual(try tokenizer.decode(ids), text)
        XCTAssertEqual(try tokenizer.decode([tokenizer.bosID] + ids + [tokenizer.eosID]), text)
        XCTAssertThrowsError(try tokenizer.decode([Int32(tokenizer.vocabularySize)]))
    }

    func testNonModelFileIsRejected() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let text = directory.appendingPathComponent("not-a-model.model")
        try "this is a text file, not a protobuf\n".write(to: text, atomically: true, encoding: .utf8)
        let empty = directory.appendingPathComponent("empty.model")
        try Data().write(to: empty)

        for path in [text.path, empty.path] {
            XCTAssertThrowsError(try Tokenizer(modelPath: path)) { error in
                guard case TokenizerError.invalidModel(let reported, _) = error else {
                    return XCTFail("expected invalidModel for \(path), got \(error)")
                }
                XCTAssertEqual(reported, path)
                XCTAssertTrue("\(error)".contains("is not a SentencePiece model"), "\(error)")
            }
        }
        XCTAssertThrowsError(try Tokenizer(modelPath: directory.appendingPathComponent("absent.model").path)) { error in
            guard case TokenizerError.modelNotFound = error else { return XCTFail("got \(error)") }
        }
    }

    func testModelWithoutLocPiecesIsRejected() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let prefix = directory.appendingPathComponent("plain").path
        var options = TokenizerTraining.paliGemmaStyleOptions(
            corpus: Fixtures.path("tokenizer/corpus.txt"), modelPrefix: prefix, vocabularySize: 1500)
        // Keep only the first 1000 loc pieces: the family is incomplete.
        options[options.count - 1] = "--user_defined_symbols="
            + TokenizerTraining.locAndSegPieces.prefix(1000).joined(separator: ",")
        try TokenizerTraining.train(options: options)

        XCTAssertThrowsError(try Tokenizer(modelPath: prefix + ".model")) { error in
            guard case TokenizerError.missingPieces(_, let family, let missing, let expected) = error else {
                return XCTFail("expected missingPieces, got \(error)")
            }
            XCTAssertEqual(family, "loc")
            XCTAssertEqual(expected, 1024)
            XCTAssertEqual(missing.count, 24)
            XCTAssertEqual(missing.first, "<loc1000>")
        }
    }

    func testModelWithScrambledLocPiecesIsRejected() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let prefix = directory.appendingPathComponent("scrambled").path
        var pieces = TokenizerTraining.locAndSegPieces
        pieces.swapAt(10, 11)
        var options = TokenizerTraining.paliGemmaStyleOptions(
            corpus: Fixtures.path("tokenizer/corpus.txt"), modelPrefix: prefix, vocabularySize: 1500)
        options[options.count - 1] = "--user_defined_symbols=" + pieces.joined(separator: ",")
        try TokenizerTraining.train(options: options)

        XCTAssertThrowsError(try Tokenizer(modelPath: prefix + ".model")) { error in
            guard case TokenizerError.piecesNotContiguous(_, let family, let piece, let expectedID, let foundID, let count) = error
            else { return XCTFail("expected piecesNotContiguous, got \(error)") }
            XCTAssertEqual(family, "loc")
            XCTAssertEqual(piece, "<loc0010>")
            XCTAssertEqual(expectedID, 14)
            XCTAssertEqual(foundID, 15)
            XCTAssertEqual(count, 2)
        }
    }

    /// The shim's trainer with the committed options reproduces the committed model's ids.
    func testShimTrainerMatchesCommittedModel() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let prefix = directory.appendingPathComponent("retrained").path
        try TokenizerTraining.train(
            options: TokenizerTraining.paliGemmaStyleOptions(
                corpus: Fixtures.path("tokenizer/corpus.txt"), modelPrefix: prefix, vocabularySize: 1900))

        let retrained = try Tokenizer(modelPath: prefix + ".model")
        let committed = try Tokenizer(modelPath: Fixtures.tokenizerModel)
        XCTAssertEqual(retrained.vocabularySize, committed.vocabularySize)
        for text in ["detect fracture ; bone", "<loc0001><loc0002><loc0003><loc0004> cat", "Where is the cow standing?"] {
            XCTAssertEqual(try retrained.encode(text), try committed.encode(text), text)
        }
    }

    func testTrainingOptionWithSpaceIsRejected() {
        XCTAssertThrowsError(try TokenizerTraining.train(options: ["--input=a b.txt"])) { error in
            XCTAssertTrue("\(error)".contains("contains a space"), "\(error)")
        }
    }
}
