//! Free text from viewers (chat, dealer applications): what is stripped and what counts as visible.
//!
//! Bidirectional embedding, override and isolate controls (U+202A–U+202E, U+2066–U+2069) are
//! removed: they reorder how the rest of a message — and the text after it in a client that
//! does not isolate messages — is displayed ("Trojan Source"). Other format characters stay
//! (a zero-width joiner builds an emoji sequence, a ZWNJ spells Persian correctly), but a text
//! made only of them, of whitespace or of blank letters says nothing and is refused.

/// U+202A–U+202E (LRE, RLE, PDF, LRO, RLO) and U+2066–U+2069 (LRI, RLI, FSI, PDI).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Unicode general category Cf (format), as of Unicode 15.1.
const FORMAT: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

/// Characters of other categories that render as nothing: blank "letters" (Hangul fillers,
/// Khmer inherent vowels), the combining grapheme joiner, variation selectors, the braille
/// blank.
const BLANK: &[(char, char)] = &[
    ('\u{034F}', '\u{034F}'),
    ('\u{115F}', '\u{1160}'),
    ('\u{17B4}', '\u{17B5}'),
    ('\u{180B}', '\u{180D}'),
    ('\u{180F}', '\u{180F}'),
    ('\u{2800}', '\u{2800}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{FE00}', '\u{FE0F}'),
    ('\u{FFA0}', '\u{FFA0}'),
    ('\u{E0100}', '\u{E01EF}'),
];

fn in_ranges(c: char, ranges: &[(char, char)]) -> bool {
    ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// Whether a character shows nothing by itself: whitespace, a control or format character,
/// or a blank letter.
pub fn is_invisible(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_whitespace() || c.is_ascii_control() || c == '\u{0B}';
    }
    c.is_whitespace() || c.is_control() || in_ranges(c, FORMAT) || in_ranges(c, BLANK)
}

/// The text without bidirectional controls and without invisible characters at either end.
/// Text that needs neither (almost all of it) is returned as it came, without a copy.
pub fn clean(text: String) -> String {
    let text = if text.chars().any(is_bidi_control) {
        text.chars().filter(|c| !is_bidi_control(*c)).collect()
    } else {
        text
    };
    let trimmed = text.trim_matches(is_invisible);
    if trimmed.len() == text.len() {
        text
    } else {
        trimmed.to_string()
    }
}

/// Whether the text shows at least one character.
pub fn has_visible(text: &str) -> bool {
    text.chars().any(|c| !is_invisible(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_strips_bidi_controls_anywhere_and_invisible_ends() {
        let clean = |s: &str| clean(s.to_string());
        assert_eq!(clean("\u{202E}abc\u{2066}d\u{2069}"), "abcd");
        assert_eq!(clean("\u{200B} hi \u{FEFF}"), "hi");
        assert_eq!(clean("a\u{200D}b"), "a\u{200D}b", "inner joiners stay");
        assert_eq!(clean("\u{200B}\u{3164}"), "");
        assert_eq!(clean("plain"), "plain");
    }

    #[test]
    fn visible_means_something_shows() {
        assert!(has_visible("价格"));
        assert!(has_visible("\u{1F468}\u{200D}\u{1F469}"));
        for blank in [
            "",
            " \n\t",
            "\u{200B}\u{200C}",
            "\u{00AD}",
            "\u{3164}\u{FE0F}",
        ] {
            assert!(!has_visible(blank), "{blank:?}");
        }
    }
}
