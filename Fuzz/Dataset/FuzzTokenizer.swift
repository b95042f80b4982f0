// Fuzz target `tokenizer`: arbitrary text through the sentencepiece shim and the sequence
// builder, with the test tokenizer model (Tests/Fixtures/dataset/tokenizer).
//
// Every input is used three ways:
// 1. as text to encode, decoded as UTF-8 with invalid bytes replaced;
// 2. as a prefix and a suffix, split at the first newline, for a training row and a prompt;
// 3. as little-endian UInt16 values mapped onto ids to decode, a few of them out of range.
import Foundation
import Dataset

private let modelPath = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Tests/Fixtures/dataset/tokenizer/test-tokenizer.model").path

private let tokenizer: Tokenizer = {
    do {
        return try Tokenizer(modelPath: modelPath)
    } catch {
        fatalError("cannot load the fuzz tokenizer: \(error)")
    }
}()

private let builder = try! SequenceBuilder(tokenizer: tokenizer, textLength: 64)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizer(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let text = String(decoding: bytes, as: UTF8.self)

    // 1. Encode: every id is inside the vocabulary and decodes again.
    do {
        let ids = try tokenizer.encode(text)
        for id in ids where id < 0 || Int(id) >= tokenizer.vocabularySize {
            fatalError("encode returned id \(id) outside 0..<\(tokenizer.vocabularySize)")
        }
        keep(try tokenizer.decode(ids).utf8.count)
    } catch {
        checkRejection(error, expectedType: TokenizerError.self, label: nil)
    }

    // 2. A training row and a prompt row from the text split at its first newline.
    let parts = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
    let prefix = String(parts[0])
    let suffix = parts.count > 1 ? String(parts[1]) : ""
    do {
        let row = try builder.trainingRow(prefix: prefix, suffix: suffix)
        if row.count != 65 || row.maskAR.count != 65 || row.maskLoss.count != 65 || row.maskInput.count != 65 {
            fatalError("training row of \(row.count) tokens, expected 65 with masks of the same length")
        }
        keep(row.realTokenCount)
        keep(try builder.promptRow(prefix: prefix).count)
    } catch is SequenceError {
        keep(1)
    } catch {
        checkRejection(error, expectedType: TokenizerError.self, label: nil)
    }

    // 3. Decode ids taken from the bytes; out-of-range ids must be rejected, not read.
    let vocabulary = tokenizer.vocabularySize
    var ids: [Int32] = []
    var index = 0
    while index + 1 < size {
        let value = Int(data[index]) | Int(data[index + 1]) << 8
        ids.append(Int32(value % (vocabulary + 8)) - 4)
        index += 2
    }
    do {
        keep(try tokenizer.decode(ids).utf8.count)
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= vocabulary }) {
            fatalError("decode accepted id \(bad) outside 0..<\(vocabulary)")
        }
    } catch {
        checkRejection(error, expectedType: TokenizerError.self, label: nil)
    }
    for id in ids.prefix(16) {
        let piece = tokenizer.piece(ofID: id)
        if (piece == nil) == (id >= 0 && Int(id) < vocabulary) {
            fatalError("piece(ofID: \(id)) is \(piece.map { "'\($0)'" } ?? "nil") with a vocabulary of \(vocabulary)")
        }
    }
    return 0
}
