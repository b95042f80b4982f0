/// The class list of a detection prompt, `detect cat ; dog ; traffic light`.
public enum DetectionPrompt {
    /// Returns the classes named in `prefix`, normalised like labels, in prompt order without
    /// duplicates. Returns nil when the prefix is not a detection prompt (does not start
    /// with `detect `) or names no class.
    public static func classes(fromPrefix prefix: String) -> [String]? {
        let trimmed = normalizeLabel(prefix)
        guard trimmed.hasPrefix("detect ") else { return nil }

        var classes: [String] = []
        for part in trimmed.dropFirst("detect ".count).split(separator: ";") {
            let name = normalizeLabel(String(part))
            if !name.isEmpty, !classes.contains(name) { classes.append(name) }
        }
        return classes.isEmpty ? nil : classes
    }
}
