/// The subset of Python literal syntax that appears in NPY header dicts: dicts, tuples, lists,
/// quoted strings, integers, `True`, `False` and `None`.
///
/// numpy reads the header with `ast.literal_eval`; this parser accepts the same spellings numpy
/// writes (including a trailing comma in one-element tuples) and rejects everything else.
enum PythonLiteral: Equatable {
    case dict([(key: String, value: PythonLiteral)])
    case tuple([PythonLiteral])
    case list([PythonLiteral])
    case string(String)
    case integer(Int)
    case bool(Bool)
    case none

    static func == (lhs: PythonLiteral, rhs: PythonLiteral) -> Bool {
        switch (lhs, rhs) {
        case let (.dict(a), .dict(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case let (.tuple(a), .tuple(b)), let (.list(a), .list(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.integer(a), .integer(b)): return a == b
        case let (.bool(a), .bool(b)): return a == b
        case (.none, .none): return true
        default: return false
        }
    }

    /// A short spelling for error messages.
    var summary: String {
        switch self {
        case .dict: return "a dict"
        case let .tuple(items): return "(" + items.map(\.summary).joined(separator: ", ") + (items.count == 1 ? ",)" : ")")
        case let .list(items): return "[" + items.map(\.summary).joined(separator: ", ") + "]"
        case let .string(text): return "'\(text)'"
        case let .integer(value): return String(value)
        case let .bool(value): return value ? "True" : "False"
        case .none: return "None"
        }
    }

    /// A parse failure: its message and the byte offset in the text.
    struct SyntaxError: Error {
        let offset: Int
        let message: String
    }

    /// Parses `text` as exactly one literal surrounded by optional whitespace.
    static func parse(_ text: [UInt8]) throws(SyntaxError) -> PythonLiteral {
        var parser = Parser(bytes: text)
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.position != text.count {
            throw SyntaxError(offset: parser.position, message: "unexpected text after the closing brace")
        }
        return value
    }
}

private struct Parser {
    let bytes: [UInt8]
    var position = 0

    // Header dicts nest two levels (dict, shape tuple); structured dtypes a few more.
    static let maxDepth = 16

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    mutating func skipWhitespace() {
        while position < bytes.count, [0x20, 0x0A, 0x09, 0x0D].contains(bytes[position]) {
            position += 1
        }
    }

    private func fail(_ message: String) -> PythonLiteral.SyntaxError {
        PythonLiteral.SyntaxError(offset: position, message: message)
    }

    mutating func parseValue(depth: Int) throws(PythonLiteral.SyntaxError) -> PythonLiteral {
        if depth > Parser.maxDepth {
            throw fail("nesting deeper than \(Parser.maxDepth) levels")
        }
        skipWhitespace()
        guard position < bytes.count else { throw fail("unexpected end of header") }

        switch bytes[position] {
        case UInt8(ascii: "{"):
            return try parseDict(depth: depth)
        case UInt8(ascii: "("):
            return .tuple(try parseSequence(close: UInt8(ascii: ")"), depth: depth))
        case UInt8(ascii: "["):
            return .list(try parseSequence(close: UInt8(ascii: "]"), depth: depth))
        case UInt8(ascii: "'"), UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .integer(try parseInteger())
        default:
            return try parseKeyword()
        }
    }

    private mutating func parseDict(depth: Int) throws(PythonLiteral.SyntaxError) -> PythonLiteral {
        position += 1
        var entries: [(key: String, value: PythonLiteral)] = []
        while true {
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
                position += 1
                return .dict(entries)
            }
            guard case let .string(key) = try parseValue(depth: depth + 1) else {
                throw fail("dict keys must be quoted strings")
            }
            skipWhitespace()
            try expect(UInt8(ascii: ":"))
            let value = try parseValue(depth: depth + 1)
            entries.append((key, value))
            if try !continueAfterItem(close: UInt8(ascii: "}")) {
                return .dict(entries)
            }
        }
    }

    private mutating func parseSequence(close: UInt8, depth: Int) throws(PythonLiteral.SyntaxError) -> [PythonLiteral] {
        position += 1
        var items: [PythonLiteral] = []
        while true {
            skipWhitespace()
            if position < bytes.count, bytes[position] == close {
                position += 1
                return items
            }
            items.append(try parseValue(depth: depth + 1))
            if try !continueAfterItem(close: close) {
                return items
            }
        }
    }

    /// Consumes a `,` (returns true, more items may follow) or the closing bracket (returns false).
    private mutating func continueAfterItem(close: UInt8) throws(PythonLiteral.SyntaxError) -> Bool {
        skipWhitespace()
        guard position < bytes.count else { throw fail("unexpected end of header") }
        if bytes[position] == UInt8(ascii: ",") {
            position += 1
            return true
        }
        if bytes[position] == close {
            position += 1
            return false
        }
        throw fail("expected ',' or '\(Character(Unicode.Scalar(close)))'")
    }

    private mutating func expect(_ byte: UInt8) throws(PythonLiteral.SyntaxError) {
        guard position < bytes.count, bytes[position] == byte else {
            throw fail("expected '\(Character(Unicode.Scalar(byte)))'")
        }
        position += 1
    }

    private mutating func parseString() throws(PythonLiteral.SyntaxError) -> String {
        let quote = bytes[position]
        position += 1
        let start = position
        while position < bytes.count, bytes[position] != quote {
            // Escapes never occur in the strings numpy writes (dtype codes and key names).
            if bytes[position] == UInt8(ascii: "\\") || bytes[position] == 0x0A {
                throw fail("escape sequences and line breaks are not allowed in header strings")
            }
            position += 1
        }
        guard position < bytes.count else { throw fail("unterminated string") }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        position += 1
        return text
    }

    private mutating func parseInteger() throws(PythonLiteral.SyntaxError) -> Int {
        var negative = false
        if bytes[position] == UInt8(ascii: "-") {
            negative = true
            position += 1
        }
        let start = position
        var value = 0
        while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
            let digit = Int(bytes[position] - UInt8(ascii: "0"))
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(digit)
            if overflow1 || overflow2 {
                position = start
                throw fail("integer does not fit in 64 bits")
            }
            value = sum
            position += 1
        }
        if position == start {
            throw fail("expected digits")
        }
        // Python 2 era numpy wrote long integers with an `L` suffix.
        if position < bytes.count, bytes[position] == UInt8(ascii: "L") {
            position += 1
        }
        return negative ? -value : value
    }

    private mutating func parseKeyword() throws(PythonLiteral.SyntaxError) -> PythonLiteral {
        for (word, value) in [("True", PythonLiteral.bool(true)), ("False", .bool(false)), ("None", .none)] {
            let utf8 = Array(word.utf8)
            if bytes.count - position >= utf8.count, Array(bytes[position..<position + utf8.count]) == utf8 {
                position += utf8.count
                return value
            }
        }
        throw fail("expected a dict, tuple, string, integer, True, False or None")
    }
}
