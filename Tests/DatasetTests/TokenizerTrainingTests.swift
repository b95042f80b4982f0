import Foundation
import XCTest

@testable import Dataset

/// `TokenizerTraining.trainTokenizer`, the library side of `palitrain make-tokenizer`.
final class TokenizerTrainingTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = try Fixtures.temporaryDirectory()
    }

    override func tearDown() {
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    /// Prefixes and suffixes of a small detection export: four prompts and four classes, one class
    /// with accents and one in Japanese, and an empty suffix.
    private let texts = [
        "detect fracture", "<loc0654><loc0239><loc0708><loc0336> fracture ; <loc0678><loc0396><loc0730><loc0499> fracture",
        "detect fracture ; plate", "<loc0001><loc0002><loc1021><loc1023> plate",
        "detect fracture ; plate", "<loc0100><loc0200><loc0300><loc0400> fracture",
        "detect fracture", "",
        "détecter fracture ; fêlure", "<loc0010><loc0020><loc0030><loc0040> fêlure ; <loc0011><loc0021><loc0031><loc0041> fracture",
        "detect 骨折", "<loc0512><loc0512><loc0600><loc0600> 骨折 <seg005><seg127>",
    ]

    private func train(_ texts: [String], vocabularySize: Int = 1500) throws -> (Tokenizer, String) {
        let path = directory.appendingPathComponent("out/tokenizer.model").path
        return (try TokenizerTraining.trainTokenizer(texts: texts, outputPath: path, vocabularySize: vocabularySize), path)
    }

    func testLocAndSegPiecesAreContiguous() throws {
        let (tokenizer, path) = try train(texts)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path))
        XCTAssertEqual(tokenizer.locBase, 4)
        XCTAssertEqual(tokenizer.segBase, 4 + 1024)

        for bin in 0..<1024 {
            let piece = "<loc" + String(repeating: "0", count: 4 - String(bin).count) + String(bin) + ">"
            XCTAssertEqual(tokenizer.id(ofPiece: piece), tokenizer.locBase + Int32(bin), piece)
            XCTAssertEqual(try tokenizer.encode(piece), [tokenizer.locBase + Int32(bin)], piece)
        }
        for code in 0..<128 {
            let piece = "<seg" + String(repeating: "0", count: 3 - String(code).count) + String(code) + ">"
            XCTAssertEqual(tokenizer.id(ofPiece: piece), tokenizer.segBase + Int32(code), piece)
        }
        XCTAssertEqual(tokenizer.padID, 0)
        XCTAssertEqual(tokenizer.eosID, 1)
        XCTAssertEqual(tokenizer.bosID, 2)
    }

    func testEveryTextAndWordRoundTrips() throws {
        let (tokenizer, _) = try train(texts)
        let byteFallbackPiece = #/^<0x[0-9A-F]{2}>$/#

        for text in texts {
            XCTAssertEqual(try tokenizer.decode(try tokenizer.encode(text)), text)
        }
        let words = Set(texts.flatMap(TokenizerTraining.words(of:)))
        XCTAssertTrue(words.isSuperset(of: ["detect", " fracture", " plate", " fêlure", " 骨折", " ;", "détecter"]), "\(words)")
        for word in words {
            let ids = try tokenizer.encode(word)
            XCTAssertEqual(try tokenizer.decode(ids), word)
            // character_coverage=1.0 gives every character of the corpus its own piece, so no
            // word of the corpus falls back to bytes.
            let pieces = ids.map { tokenizer.piece(ofID: $0) ?? "?" }
            XCTAssertFalse(pieces.contains { $0.wholeMatch(of: byteFallbackPiece) != nil }, "\(word.debugDescription): \(pieces)")
        }

        // A character that is not in the corpus still round-trips, through byte pieces.
        let unseen = "detect 🦴"
        XCTAssertEqual(try tokenizer.decode(try tokenizer.encode(unseen)), unseen)
    }

    func testFrequentWordsBecomeSinglePieces() throws {
        let (tokenizer, _) = try train(texts)
        for word in [" fracture", "detect", " plate"] {
            let ids = try tokenizer.encode(word)
            XCTAssertEqual(ids.count, 1, "\(word.debugDescription): \(ids)")
        }
        // Location pieces and class names are separate tokens, as the detection parser expects.
        let ids = try tokenizer.encode("<loc0001><loc0002><loc1021><loc1023> plate")
        XCTAssertEqual(Array(ids.prefix(4)), [5, 6, 1025, 1027])
        XCTAssertEqual(ids.count, 5)
    }

    func testWordsKeepTheirLeadingSpace() {
        XCTAssertEqual(
            TokenizerTraining.words(of: "<loc0001><loc0002><loc0003><loc0004> broken bone ; <seg001>cat"),
            [" broken", " bone", " ;", "cat"])
        XCTAssertEqual(TokenizerTraining.words(of: "detect a ; b"), ["detect", " a", " ;", " b"])
        XCTAssertEqual(TokenizerTraining.words(of: "<loc0001>"), [])
    }

    func testTooSmallVocabularyIsRejected() {
        XCTAssertThrowsError(try train(texts, vocabularySize: TokenizerTraining.minimumVocabularySize - 1)) { error in
            guard case TokenizerError.trainingFailed(let reason) = error else { return XCTFail("got \(error)") }
            XCTAssertTrue(reason.contains("at least \(TokenizerTraining.minimumVocabularySize)"), reason)
        }
    }

    func testTextWithoutWordsIsRejected() {
        XCTAssertThrowsError(try train(["<loc0001><loc0002><loc0003><loc0004>", " ", ""])) { error in
            guard case TokenizerError.trainingFailed(let reason) = error else { return XCTFail("got \(error)") }
            XCTAssertTrue(reason.contains("nothing to learn"), reason)
        }
    }

    /// sentencepiece writes spaces as U+2581, so a text that contains U+2581 itself decodes to a
    /// space. The check reports it, and an existing model at the destination is kept.
    func testTextThatDoesNotRoundTripIsRejected() throws {
        let path = directory.appendingPathComponent("out/tokenizer.model").path
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data("earlier model".utf8).write(to: URL(fileURLWithPath: path))

        XCTAssertThrowsError(
            try TokenizerTraining.trainTokenizer(texts: texts + ["detect a\u{2581}b"], outputPath: path, vocabularySize: 1500)
        ) { error in
            guard case TokenizerError.trainingFailed(let reason) = error else { return XCTFail("got \(error)") }
            XCTAssertTrue(reason.contains("does not round-trip"), reason)
            XCTAssertTrue(reason.contains("a b"), reason)
        }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "earlier model")
    }

    /// A line longer than sentencepiece's default --max_sentence_length (4192 bytes) still
    /// contributes its characters: here "á" occurs only in the long line.
    func testLongSuffixIsNotSkipped() throws {
        let box = "<loc0100><loc0200><loc0300><loc0400> árbol ; "
        let long = String(repeating: box, count: 200)
        XCTAssertGreaterThan(long.utf8.count, 4192)
        let (tokenizer, _) = try train(["detect tree", long])
        let pieces = try tokenizer.encode(" árbol").map { tokenizer.piece(ofID: $0) ?? "?" }
        XCTAssertFalse(pieces.contains { $0.hasPrefix("<0x") }, "\(pieces)")
    }
}
