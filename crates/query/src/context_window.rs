//! The context shown around a match: so many characters on each side, counted as
//! characters (not bytes), so `--context-chars 5` shows five of `日本語…` as of `abc…`.

use std::ops::Range;

/// Whether `b` continues a UTF-8 character rather than starting one.
fn continues(b: u8) -> bool {
    b & 0xC0 == 0x80
}

/// The range of `text` holding the match `m`, widened to whole characters, and
/// `chars` characters before and after it (fewer at the text's edges). Works on bytes
/// that may not all be UTF-8 (a skipped line): a stray byte counts as a character.
pub(crate) fn context_window(text: &[u8], m: Range<usize>, chars: usize) -> Range<usize> {
    let mut from = m.start.min(text.len());
    while from > 0 && from < text.len() && continues(text[from]) {
        from -= 1;
    }
    for _ in 0..chars {
        if from == 0 {
            break;
        }
        from -= 1;
        while from > 0 && continues(text[from]) {
            from -= 1;
        }
    }
    let mut to = m.end.clamp(from, text.len());
    while to < text.len() && continues(text[to]) {
        to += 1;
    }
    for _ in 0..chars {
        if to >= text.len() {
            break;
        }
        to += 1;
        while to < text.len() && continues(text[to]) {
            to += 1;
        }
    }
    from..to
}

#[cfg(test)]
mod tests {
    use super::context_window;

    fn shown(text: &str, needle: &str, chars: usize) -> String {
        let at = text.find(needle).unwrap();
        let w = context_window(text.as_bytes(), at..at + needle.len(), chars);
        text[w].to_string()
    }

    #[test]
    fn counts_characters_not_bytes() {
        assert_eq!(
            shown("\"日本語 needle wörld", "needle", 5),
            "\"日本語 needle wörl"
        );
        assert_eq!(shown("ab🙂x🙂cd", "x", 1), "🙂x🙂");
        assert_eq!(shown("abcxdef", "x", 0), "x");
        assert_eq!(shown("abcxdef", "x", 100), "abcxdef");
    }

    #[test]
    fn never_cuts_a_character_in_half() {
        let text = "ab🙂x🙂cd";
        let at = text.find('x').unwrap();
        for chars in 0..8 {
            let w = context_window(text.as_bytes(), at..at + 1, chars);
            assert!(text.is_char_boundary(w.start) && text.is_char_boundary(w.end));
        }
        // A match that starts inside a character widens to all of it.
        let w = context_window(text.as_bytes(), 3..4, 0);
        assert_eq!(&text[w], "🙂");
    }
}
