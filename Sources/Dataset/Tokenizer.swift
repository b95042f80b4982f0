import CSentencePieceShim
import Foundation

/// A SentencePiece tokenizer with PaliGemma's special pieces checked at load time.
///
/// PaliGemma's `paligemma_tokenizer.model` has 257,152 pieces: the Gemma vocabulary, then
/// `<loc0000>`…`<loc1023>` at 256000…257023 and `<seg000>`…`<seg127>` at 257024…257151, with
/// PAD 0, EOS 1, BOS 2 and "\n" = 108. Smaller models trained with `spm_train` for tests and the
/// demo carry the same pieces as user-defined symbols at other ids. This type reads the ids from
/// the model and checks that each family is complete, contiguous and emitted as one token.
///
/// Encoding never adds BOS or EOS: the sequence builder places them itself.
public final class Tokenizer: @unchecked Sendable {
    // NOTE: @unchecked Sendable is sound because the handle is only read after init, and
    // sentencepiece's Encode, Decode and vocabulary lookups are const.
    private let handle: OpaquePointer

    /// The file the model was loaded from, or "<memory>".
    public let source: String
    public let vocabularySize: Int
    public let bosID: Int32
    public let eosID: Int32
    public let padID: Int32
    /// The unknown-piece id, or nil when the model defines none.
    public let unknownID: Int32?
    /// The id of `<loc0000>`; `<locNNNN>` is `locBase + NNNN`.
    public let locBase: Int32
    /// The id of `<seg000>`; `<segNNN>` is `segBase + NNN`.
    public let segBase: Int32
    /// The single id that "\n" encodes to: the separator between prefix and suffix.
    public let newlineID: Int32

    /// Loads a `.model` file and checks its special pieces.
    public convenience init(modelPath: String) throws {
        guard FileManager.default.fileExists(atPath: modelPath) else {
            throw TokenizerError.modelNotFound(path: modelPath)
        }
        var message = [CChar](repeating: 0, count: 1024)
        guard let handle = cspshim_load(modelPath, &message, message.count) else {
            throw TokenizerError.invalidModel(path: modelPath, reason: String(cString: message, encoding: .utf8) ?? "")
        }
        try self.init(handle: handle, source: modelPath)
    }

    /// Loads a model from the bytes of a `.model` file.
    public convenience init(modelData: Data) throws {
        var message = [CChar](repeating: 0, count: 1024)
        let loaded = modelData.withUnsafeBytes { bytes in
            cspshim_load_from_bytes(bytes.baseAddress, bytes.count, &message, message.count)
        }
        guard let handle = loaded else {
            throw TokenizerError.invalidModel(path: "<memory>", reason: String(cString: message, encoding: .utf8) ?? "")
        }
        try self.init(handle: handle, source: "<memory>")
    }

    private init(handle: OpaquePointer, source: String) throws {
        self.handle = handle
        self.source = source
        self.vocabularySize = Int(cspshim_piece_count(handle))

        // 1. BOS, EOS and PAD must exist: the sequence layout needs all three.
        let bos = cspshim_bos_id(handle)
        let eos = cspshim_eos_id(handle)
        let pad = cspshim_pad_id(handle)
        let unknown = cspshim_unk_id(handle)
        var missing: [String] = []
        if bos < 0 { missing.append("BOS") }
        if eos < 0 { missing.append("EOS") }
        if pad < 0 { missing.append("PAD") }
        guard missing.isEmpty else {
            cspshim_free(handle)
            throw TokenizerError.missingSpecialIDs(path: source, missing: missing)
        }
        self.bosID = bos
        self.eosID = eos
        self.padID = pad
        self.unknownID = unknown >= 0 ? unknown : nil

        // 2. The loc and seg families: present, contiguous, and each one a single token.
        do {
            self.locBase = try Self.checkFamily(handle, source: source, name: "loc", count: 1024, digits: 4)
            self.segBase = try Self.checkFamily(handle, source: source, name: "seg", count: 128, digits: 3)
        } catch {
            cspshim_free(handle)
            throw error
        }

        // 3. The separator: "\n" must encode to exactly one id.
        let newline = (try? Self.encode(handle, "\n")) ?? []
        guard newline.count == 1 else {
            cspshim_free(handle)
            throw TokenizerError.newlineNotSingleToken(path: source, ids: newline)
        }
        self.newlineID = newline[0]
    }

    deinit {
        cspshim_free(handle)
    }

    /// Encodes text to ids, without BOS or EOS.
    public func encode(_ text: String) throws -> [Int32] {
        try Self.encode(handle, text)
    }

    /// Decodes ids to text; control pieces (BOS, EOS, PAD) decode to nothing.
    public func decode(_ ids: [Int32]) throws -> String {
        var message = [CChar](repeating: 0, count: 512)
        var text: UnsafeMutablePointer<CChar>?
        var length = 0
        let status = ids.withUnsafeBufferPointer { buffer in
            cspshim_decode(handle, buffer.baseAddress, buffer.count, &text, &length, &message, message.count)
        }
        guard status == 0, let text else {
            throw TokenizerError.decodeFailed(reason: String(cString: message, encoding: .utf8) ?? "")
        }
        defer { cspshim_free_text(text) }
        return text.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
            String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self)
        }
    }

    /// Returns the id of a piece, or nil when the model has none.
    public func id(ofPiece piece: String) -> Int32? {
        let id = Self.pieceID(handle, piece)
        return id >= 0 ? id : nil
    }

    /// Returns the piece text of an id, or nil when the id is outside the vocabulary.
    public func piece(ofID id: Int32) -> String? {
        let length = cspshim_id_to_piece(handle, id, nil, 0)
        guard length >= 0 else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(length) + 1)
        _ = cspshim_id_to_piece(handle, id, &buffer, buffer.count)
        let bytes = buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Returns the id of `<locNNNN>` for a bin in 0...1023.
    public func locID(_ bin: Int) -> Int32 { locBase + Int32(bin) }

    /// Returns the id of `<segNNN>` for a codebook entry in 0...127.
    public func segID(_ code: Int) -> Int32 { segBase + Int32(code) }

    /// Settings stored in the model, for reports.
    public var modelSummary: String {
        let types = [1: "unigram", 2: "BPE", 3: "word", 4: "char"]
        let type = types[Int(cspshim_model_type(handle))] ?? "type \(cspshim_model_type(handle))"
        let fallback = cspshim_byte_fallback(handle) != 0 ? "byte fallback" : "no byte fallback"
        let prefix = cspshim_add_dummy_prefix(handle) != 0 ? "dummy prefix" : "no dummy prefix"
        return "\(vocabularySize) pieces, \(type), \(fallback), \(prefix); BOS \(bosID), EOS \(eosID), PAD \(padID), "
            + "\"\\n\" \(newlineID), <loc0000> \(locBase), <seg000> \(segBase)"
    }

    // MARK: - Helpers

    private static func pieceID(_ handle: OpaquePointer, _ piece: String) -> Int32 {
        var utf8 = Array(piece.utf8)
        return utf8.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) { pointer in
                cspshim_piece_to_id(handle, pointer, buffer.count)
            }
        }
    }

    private static func encode(_ handle: OpaquePointer, _ text: String) throws -> [Int32] {
        var message = [CChar](repeating: 0, count: 512)
        var ids: UnsafeMutablePointer<Int32>?
        var count = 0
        var utf8 = Array(text.utf8)
        utf8.append(0)
        let status = utf8.withUnsafeBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) { pointer in
                cspshim_encode(handle, pointer, buffer.count - 1, &ids, &count, &message, message.count)
            }
        }
        guard status == 0 else {
            throw TokenizerError.encodeFailed(text: text, reason: String(cString: message, encoding: .utf8) ?? "")
        }
        defer { cspshim_free_ids(ids) }
        guard let ids else { return [] }
        return Array(UnsafeBufferPointer(start: ids, count: count))
    }

    /// Checks that `<name0000>`… exist at consecutive ids and that each encodes to itself alone.
    /// Returns the id of the first piece.
    private static func checkFamily(
        _ handle: OpaquePointer, source: String, name: String, count: Int, digits: Int
    ) throws -> Int32 {
        func piece(_ index: Int) -> String {
            let number = String(index)
            return "<\(name)\(String(repeating: "0", count: max(0, digits - number.count)))\(number)>"
        }

        let base = pieceID(handle, piece(0))
        var missing: [String] = []
        var misplaced: [(piece: String, expected: Int32, found: Int32)] = []
        for index in 0..<count {
            let id = pieceID(handle, piece(index))
            if id < 0 {
                missing.append(piece(index))
            } else if base >= 0 && id != base + Int32(index) {
                misplaced.append((piece(index), base + Int32(index), id))
            }
        }
        if !missing.isEmpty {
            throw TokenizerError.missingPieces(path: source, family: name, missing: missing, expected: count)
        }
        if let first = misplaced.first {
            throw TokenizerError.piecesNotContiguous(
                path: source, family: name, piece: first.piece, expectedID: first.expected, foundID: first.found,
                count: misplaced.count)
        }

        // A piece that is in the vocabulary but not a user-defined symbol is split by the encoder.
        for index in 0..<count {
            let ids = (try? encode(handle, piece(index))) ?? []
            if ids != [base + Int32(index)] {
                throw TokenizerError.pieceNotAtomic(path: source, piece: piece(index), ids: ids)
            }
        }
        return base
    }
}
