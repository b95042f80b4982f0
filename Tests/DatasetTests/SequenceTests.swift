import Foundation
import XCTest

@testable import Dataset

/// Hand-worked rows with the test tokenizer: PAD 0, EOS 1, BOS 2, "\n" = 1166 (the byte piece
/// <0x0A>), <locNNNN> = 4 + NNNN. Piece ids are those of Tests/Fixtures/dataset/tokenizer.
final class SequenceTests: XCTestCase {
    private var tokenizer: Tokenizer!

    override func setUpWithError() throws {
        tokenizer = try Tokenizer(modelPath: Fixtures.tokenizerModel)
    }

    func testOneBox() throws {
        let builder = try SequenceBuilder(tokenizer: tokenizer, textLength: 11)
        let row = try builder.trainingRow(
            prefix: "detect fracture", suffix: "<loc0100><loc0200><loc0300><loc0400> fracture")

        // BOS "detect" "▁fracture" \n <loc0100> <loc0200> <loc0300> <loc0400> "▁fracture" EOS
        XCTAssertEqual(row.text, [2, 1424, 1513, 1166, 104, 204, 304, 404, 1513, 1, 0, 0])
        XCTAssertEqual(row.maskAR, [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1])
        XCTAssertEqual(row.maskLoss, [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0])
        XCTAssertEqual(row.maskInput, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0])
    }

    func testThreeBoxesTwoClasses() throws {
        let builder = try SequenceBuilder(tokenizer: tokenizer, textLength: 29)
        let suffix = "<loc0010><loc0020><loc0500><loc0600> cat ; <loc0100><loc0110><loc0300><loc0400> dog ; "
            + "<loc0700><loc0710><loc0900><loc0950> cat"
        let row = try builder.trainingRow(prefix: "detect cat ; dog", suffix: suffix)

        // Prefix: "detect" "▁cat" "▁;" "▁do" "g". Suffix objects are joined by "▁;" "▁".
        let prefix: [Int32] = [1424, 1608, 1414, 1504, 1847]
        let objects: [Int32] = [
            14, 24, 504, 604, 1608, 1414, 1833,
            104, 114, 304, 404, 1504, 1847, 1414, 1833,
            704, 714, 904, 954, 1608,
        ]
        // 1 BOS + 5 prefix + 1 sep + 20 suffix + 1 EOS = 28 tokens in a row of 30.
        XCTAssertEqual(row.text, [2] + prefix + [1166] + objects + [1] + [0, 0])
        XCTAssertEqual(row.maskAR, Array(repeating: 0, count: 7) + Array(repeating: 1, count: 23))
        XCTAssertEqual(row.maskLoss, Array(repeating: 0, count: 7) + Array(repeating: 1, count: 21) + [0, 0])
        XCTAssertEqual(row.maskInput, Array(repeating: 1, count: 28) + [0, 0])
    }

    func testEmptySuffixSupervisesEOS() throws {
        let builder = try SequenceBuilder(tokenizer: tokenizer, textLength: 7)
        let row = try builder.trainingRow(prefix: "detect fracture", suffix: "")

        XCTAssertEqual(row.text, [2, 1424, 1513, 1166, 1, 0, 0, 0])
        XCTAssertEqual(row.maskAR, [0, 0, 0, 0, 1, 1, 1, 1])
        XCTAssertEqual(row.maskLoss, [0, 0, 0, 0, 1, 0, 0, 0])
        XCTAssertEqual(row.maskInput, [1, 1, 1, 1, 1, 0, 0, 0])
    }

    func testPrefixWithManyClasses() throws {
        let builder = try SequenceBuilder(tokenizer: tokenizer, textLength: 31)
        let row = try builder.trainingRow(
            prefix: "detect fracture ; bone ; implant ; screw ; plate ; cast ; nodule ; lesion",
            suffix: "<loc0001><loc0002><loc0003><loc0004> screw")

        let prefix: [Int32] = [
            1424, 1513, 1414, 1776, 1414, 1533, 1851, 1653, 1414, 1632,
            1414, 1631, 1414, 1596, 1522, 1414, 1463, 1809, 1414, 1788,
        ]
        let suffix: [Int32] = [5, 6, 7, 8, 1632]
        XCTAssertEqual(row.text, [2] + prefix + [1166] + suffix + [1] + [0, 0, 0, 0])
        XCTAssertEqual(row.maskAR, Array(repeating: 0, count: 22) + Array(repeating: 1, count: 10))
        XCTAssertEqual(row.maskLoss, Array(repeating: 0, count: 22) + Array(repeating: 1, count: 6) + [0, 0, 0, 0])
        XCTAssertEqual(row.maskInput, Array(repeating: 1, count: 28) + [0, 0, 0, 0])
    }

    func testSuffixReachingMaximumLength() throws {
        let suffix = "<loc0001><loc0002><loc0003><loc0004> fracture ; <loc0005><loc0006><loc0007><loc0008> fracture"
        // BOS + 2 prefix + sep + 12 suffix + EOS = 17 tokens.
        let exact = try SequenceBuilder(tokenizer: tokenizer, textLength: 16)
        let row = try exact.trainingRow(prefix: "detect fracture", suffix: suffix)
        XCTAssertEqual(row.text, [2, 1424, 1513, 1166, 5, 6, 7, 8, 1513, 1414, 1833, 9, 10, 11, 12, 1513, 1])
        XCTAssertEqual(row.text.last, tokenizer.eosID)
        XCTAssertEqual(row.maskLoss, [0, 0, 0, 0] + Array(repeating: 1, count: 13))
        XCTAssertEqual(row.maskInput, Array(repeating: 1, count: 17))

        // One token shorter: the EOS would fall past the row, which is an error.
        let short = try SequenceBuilder(tokenizer: tokenizer, textLength: 15)
        XCTAssertThrowsError(try short.trainingRow(prefix: "detect fracture", suffix: suffix)) { error in
            XCTAssertEqual(
                error as? SequenceError,
                .trainingRowTooLong(needed: 17, rowLength: 16, prefixTokens: 2, suffixTokens: 12))
            XCTAssertTrue("\(error)".contains("the EOS would be cut off"), "\(error)")
        }
    }

    func testPromptRow() throws {
        let builder = try SequenceBuilder(tokenizer: tokenizer, textLength: 7)
        let row = try builder.promptRow(prefix: "detect fracture")
        XCTAssertEqual(row.text, [2, 1424, 1513, 1166, 0, 0, 0, 0])
        XCTAssertEqual(row.maskAR, [0, 0, 0, 0, 1, 1, 1, 1])
        XCTAssertEqual(row.maskLoss, [0, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(row.maskInput, [1, 1, 1, 1, 0, 0, 0, 0])
        XCTAssertThrowsError(try builder.promptRow(prefix: "detect fracture", length: 3))
    }

    /// The layout reproduces big_vision's rows in the golden inputs.npz from the same ids.
    func testLayoutMatchesGoldenInputs() throws {
        let golden = try GoldenNPZ(path: Fixtures.root.deletingLastPathComponent().appendingPathComponent("golden/inputs.npz").path)
        let text = try golden.int32("text")
        let maskAR = try golden.int32("mask_ar")
        let maskLoss = try golden.int32("mask_loss")
        let maskInput = try golden.int32("mask_input")
        XCTAssertEqual(text.shape, [2, 12])

        let layout = try SequenceLayout(bos: 2, eos: 1, pad: 0, separator: 108, textLength: 11)
        for example in 0..<2 {
            // Split the golden row back into prefix and suffix ids.
            let ids = text.row(example)
            let separator = try XCTUnwrap(ids.firstIndex(of: 108))
            let eos = try XCTUnwrap(ids.firstIndex(of: 1))
            let row = try layout.trainingRow(
                prefixIDs: Array(ids[1..<separator]), suffixIDs: Array(ids[(separator + 1)..<eos]))
            XCTAssertEqual(row.text, ids, "example \(example)")
            XCTAssertEqual(row.maskAR, maskAR.row(example), "example \(example)")
            XCTAssertEqual(row.maskLoss, maskLoss.row(example), "example \(example)")
            XCTAssertEqual(row.maskInput, maskInput.row(example), "example \(example)")
        }

        let decodeText = try golden.int32("decode_text")
        let prompt = try layout.promptRow(prefixIDs: Array(decodeText.row(0)[1..<4]), length: 12)
        XCTAssertEqual(prompt.text, decodeText.row(0))
        XCTAssertEqual(prompt.maskAR, try golden.int32("decode_mask_ar").row(0))
        XCTAssertEqual(prompt.maskInput, try golden.int32("decode_mask_input").row(0))

        // Example 1 of decode_batch continues from two suffix tokens (mask_ar 1 on them).
        let batchText = try golden.int32("decode_batch_text")
        let continued = try layout.promptRow(
            prefixIDs: Array(batchText.row(1)[1..<4]), suffixIDs: Array(batchText.row(1)[5..<7]), length: 12)
        XCTAssertEqual(continued.text, batchText.row(1))
        XCTAssertEqual(continued.maskAR, try golden.int32("decode_batch_mask_ar").row(1))
        XCTAssertEqual(continued.maskInput, try golden.int32("decode_batch_mask_input").row(1))
    }
}
