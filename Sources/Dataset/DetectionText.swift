/// Parsing of PaliGemma's detection prompt and answer text.
///
/// Prompt: `detect a ; b ; c`. Suffix (the model's output): one group per object, `<locY1><locX1><locY2><locX2> label`
/// (optionally 16 `<segNNN>` before the label), groups joined by ` ; `, empty for no object.
public enum DetectionText {
    public struct Object: Equatable, Sendable {
        /// y_min, x_min, y_max, x_max as loc bins.
        public var box: [Int]
        /// The 16 segmentation codes, or empty.
        public var segments: [Int]
        public var label: String
    }

    /// One finding about a suffix, to become a `RecordProblem`.
    public struct Issue: Equatable, Sendable {
        public var kind: RecordProblem.Kind
        public var message: String
    }

    /// Returns the class names of a `detect …` prompt, or nil for any other prompt.
    /// Names are split at " ; " and kept as written, so that stray spaces can be reported.
    public static func classes(inPrefix prefix: String) -> [String]? {
        guard prefix.hasPrefix("detect ") else { return nil }
        return prefix.dropFirst("detect ".count).components(separatedBy: " ; ")
    }

    /// Returns why a class name is risky for the parsers that read PaliGemma's output, or nil.
    ///
    /// The official demo's parser reads a label as `[^;<>]+` and strips it, so ';', '<' and '>'
    /// end a label early and leading or trailing spaces are lost.
    public static func riskInClassName(_ name: String) -> String? {
        if name.isEmpty { return "the name is empty" }
        for character in [";", "<", ">"] where name.contains(character) {
            return "'\(character)' ends a label in common output parsers"
        }
        if name.first?.isWhitespace == true || name.last?.isWhitespace == true {
            return "leading or trailing whitespace is stripped by common output parsers"
        }
        if name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            return "control characters (such as a newline) break the prompt"
        }
        return nil
    }

    /// Parses a detection suffix into objects, with every issue found.
    public static func parse(suffix: String) -> (objects: [Object], issues: [Issue]) {
        guard !suffix.isEmpty else { return ([], []) }
        var objects: [Object] = []
        var issues: [Issue] = []
        let groups = suffix.components(separatedBy: " ; ")

        for (index, group) in groups.enumerated() {
            let number = index + 1
            func malformed(_ text: String) {
                issues.append(Issue(kind: .malformedSuffix, message: "object \(number) (\(group.debugDescription)): \(text)"))
            }

            // 1. Leading <locNNNN> then optional <segNNN> tokens.
            var rest = Substring(group)
            var locs: [(text: String, value: Int?)] = []
            var segments: [Int] = []
            while let token = nextToken(&rest, name: "loc") { locs.append(token) }
            while let token = nextToken(&rest, name: "seg") {
                segments.append(token.value ?? -1)
            }
            guard locs.count == 4 else {
                malformed(locs.isEmpty
                    ? "expected 4 <locNNNN> tokens at the start, found none"
                    : "expected 4 <locNNNN> tokens before the label, found \(locs.count)")
                continue
            }
            if !segments.isEmpty && segments.count != 16 {
                malformed("expected 0 or 16 <segNNN> tokens after the box, found \(segments.count)")
            }

            // 2. A space, then the label up to the end of the group.
            guard rest.first == " " else {
                malformed(rest.isEmpty ? "no label after the <loc> tokens" : "expected a space between the <loc> tokens and the label")
                continue
            }
            let label = String(rest.dropFirst())
            if label.isEmpty || label.allSatisfy(\.isWhitespace) {
                malformed("no label after the <loc> tokens")
                continue
            }
            if label.contains("<loc") || label.contains(";") {
                malformed("the label \(label.debugDescription) runs into another object; join objects with \" ; \"")
                continue
            }

            // 3. Loc values: four digits each, 0…1023, min ≤ max.
            var box: [Int] = []
            for token in locs {
                guard let value = token.value, token.text.count == 4 else {
                    issues.append(Issue(kind: .malformedSuffix, message: "object \(number): <loc\(token.text)> must have 4 digits"))
                    continue
                }
                if value > 1023 {
                    issues.append(Issue(kind: .locOutOfRange, message: "object \(number): <loc\(token.text)> is outside 0..1023"))
                }
                box.append(value)
            }
            if box.count == 4 {
                for (low, high, axis) in [(0, 2, "y"), (1, 3, "x")] {
                    if box[high] < box[low] {
                        issues.append(Issue(
                            kind: .boxInverted,
                            message: "object \(number): \(axis)_max \(box[high]) < \(axis)_min \(box[low]); the order is "
                                + "y_min, x_min, y_max, x_max"))
                    } else if box[high] == box[low] {
                        issues.append(Issue(kind: .emptyBox, message: "object \(number): \(axis)_max = \(axis)_min = \(box[low]) (zero size)"))
                    }
                }
            }
            objects.append(Object(box: box, segments: segments, label: label))
        }
        return (objects, issues)
    }

    /// Consumes `<nameDIGITS>` at the start of `text`. The value is nil when the digits do not
    /// form a number; `text` keeps the digits as written.
    private static func nextToken(_ text: inout Substring, name: String) -> (text: String, value: Int?)? {
        let opening = "<" + name
        guard text.hasPrefix(opening), let close = text.firstIndex(of: ">") else { return nil }
        let digits = text[text.index(text.startIndex, offsetBy: opening.count)..<close]
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        text = text[text.index(after: close)...]
        return (String(digits), Int(digits))
    }
}
