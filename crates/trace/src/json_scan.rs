//! A validating JSON scanner for the hot path of indexing: it walks one line of JSON once,
//! borrowing every value as a slice of the line, and never builds a tree or allocates.
//!
//! It answers `None` for anything it does not accept, without saying why: callers then
//! parse the line again with serde_json, which gives the precise error message (or, for the
//! few valid forms the scanner declines, such as tabs between tokens, the same result).
//! So the scanner must never accept text that serde_json rejects; the differential tests in
//! `canonical_fast` hold it to that.
//!
//! Why not serde_json alone: its string scan goes 8 bytes at a time and dominated index
//! builds. Here the end of every string of the line is settled up front, 64 bytes at a
//! time ([`line_masks`]), and control characters (never valid inside a JSON string) are
//! ruled out once per line by [`has_control_bytes`] instead of byte by byte.

mod line_masks;

use line_masks::LineMasks;

/// Nesting deeper than this is left to serde_json (whose own limit is 128), so the
/// scanner's recursion stays shallow.
const MAX_DEPTH: u32 = 64;

/// Whether `bytes` contains a byte below 0x20 (a control character, tab and line ends
/// included). The scanner requires a line without them; written branch-free over blocks
/// so that it vectorizes.
pub(crate) fn has_control_bytes(bytes: &[u8]) -> bool {
    let mut blocks = bytes.chunks_exact(64);
    for block in &mut blocks {
        if block.iter().fold(false, |seen, &b| seen | (b < 0x20)) {
            return true;
        }
    }
    blocks.remainder().iter().any(|&b| b < 0x20)
}

/// A cursor over one line of JSON known to hold no control bytes.
#[derive(Debug)]
pub(crate) struct Scanner<'a> {
    text: &'a str,
    pos: usize,
    /// Where the line's strings end.
    masks: LineMasks,
}

/// A string as it appears in the line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JsonStr<'a> {
    /// The text between the quotes, escapes not decoded.
    pub(crate) inner: &'a str,
    /// Whether `inner` contains a backslash escape.
    pub(crate) escaped: bool,
}

impl<'a> JsonStr<'a> {
    /// The string with its quotes, as JSON text.
    pub(crate) fn quoted(&self, line: &'a str) -> &'a str {
        // `inner` is a subslice of `line`, so the quotes sit right around it.
        let start = self.inner.as_ptr() as usize - line.as_ptr() as usize - 1;
        &line[start..start + self.inner.len() + 2]
    }
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `text`; `None` when the text has control bytes or an
    /// invalid escape.
    pub(crate) fn new(text: &'a str) -> Option<Scanner<'a>> {
        if has_control_bytes(text.as_bytes()) {
            return None;
        }
        Self::new_control_free(text)
    }

    /// A scanner over text the caller has already found free of control bytes; `None`
    /// when the text has an invalid escape.
    pub(crate) fn new_control_free(text: &'a str) -> Option<Scanner<'a>> {
        debug_assert!(!has_control_bytes(text.as_bytes()));
        Some(Scanner {
            text,
            pos: 0,
            masks: LineMasks::of(text.as_bytes())?,
        })
    }

    /// Where the scanner is in the text.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Moves past a value the caller recognized without scanning it: `end` must be where
    /// a value that starts at the current position ends.
    pub(crate) fn skip_to(&mut self, end: usize) {
        debug_assert!(end >= self.pos && end <= self.text.len());
        self.pos = end;
    }

    /// The whole text being scanned.
    pub(crate) fn text(&self) -> &'a str {
        self.text
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    /// Skips spaces. Only spaces: tabs and line ends were ruled out with the control bytes.
    pub(crate) fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    /// The next byte after optional spaces (not consumed). Lines rarely have spaces
    /// between tokens, so looking for them costs one compare on the way.
    #[inline(always)]
    fn token(&mut self) -> Option<u8> {
        match self.peek()? {
            b' ' => self.token_after_spaces(),
            byte => Some(byte),
        }
    }

    #[cold]
    #[inline(never)]
    fn token_after_spaces(&mut self) -> Option<u8> {
        self.skip_spaces();
        self.peek()
    }

    /// Whether only spaces are left.
    pub(crate) fn at_end(&mut self) -> bool {
        self.skip_spaces();
        self.pos == self.text.len()
    }

    /// Consumes `byte` after optional spaces.
    pub(crate) fn eat(&mut self, byte: u8) -> Option<()> {
        (self.token()? == byte).then(|| self.pos += 1)
    }

    /// After optional spaces, whether the next byte is `byte` (consumed if so).
    fn eat_if(&mut self, byte: u8) -> bool {
        if self.token() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Walks the members of an object: `member` is called with each key and must consume
    /// the value, spaces before it included (every value reader here skips them first,
    /// so the walk does not skip them twice). The opening brace is consumed here.
    pub(crate) fn object(
        &mut self,
        mut member: impl FnMut(&mut Scanner<'a>, JsonStr<'a>) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        if self.eat_if(b'}') {
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            member(self, key)?;
            if self.eat_if(b',') {
                continue;
            }
            return self.eat(b'}');
        }
    }

    /// Whether the next value is `null` (consumed if so).
    pub(crate) fn null(&mut self) -> bool {
        if self.token() == Some(b'n') && self.bytes()[self.pos..].starts_with(b"null") {
            self.pos += 4;
            true
        } else {
            false
        }
    }

    /// A string value.
    pub(crate) fn string(&mut self) -> Option<JsonStr<'a>> {
        if self.token()? != b'"' {
            return None;
        }
        self.string_at_quote()
    }

    /// The string whose opening quote is the next byte.
    fn string_at_quote(&mut self) -> Option<JsonStr<'a>> {
        let start = self.pos + 1;
        let (end, escaped) = self.masks.string_end(start)?;
        self.pos = end + 1;
        // SAFETY: `end` is the index of a quote of the text at or after `start` (the masks
        // mark only the text's own bytes), and `start` follows a quote: both are ASCII
        // bytes or the text's end, so the range is in bounds and on char boundaries.
        let inner = unsafe { self.text.get_unchecked(start..end) };
        Some(JsonStr { inner, escaped })
    }

    /// When the next value is a string: `Some` of the string, or `Some(None)` when it is
    /// malformed. `None` when the next value is not a string (nothing is consumed).
    pub(crate) fn string_if_next(&mut self) -> Option<Option<JsonStr<'a>>> {
        (self.token()? == b'"').then(|| self.string_at_quote())
    }

    /// Any value, validated; returns its JSON text.
    pub(crate) fn value(&mut self) -> Option<&'a str> {
        self.skip_spaces();
        let start = self.pos;
        self.skip_value(0)?;
        Some(&self.text[start..self.pos])
    }

    fn skip_value(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.token()? {
            b'"' => self.string_at_quote().map(drop),
            b'{' => self.object(|s, _| s.skip_value(depth + 1)),
            b'[' => {
                self.pos += 1;
                if self.eat_if(b']') {
                    return Some(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    if self.eat_if(b',') {
                        continue;
                    }
                    return self.eat(b']');
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.bytes()[self.pos..]
            .starts_with(word)
            .then(|| self.pos += word.len())
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        let bytes = self.bytes();
        let mut at = self.pos;
        let digits = |at: &mut usize| {
            let from = *at;
            while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
                *at += 1;
            }
            *at - from
        };
        if bytes.get(at) == Some(&b'-') {
            at += 1;
        }
        match bytes.get(at)? {
            b'0' => at += 1,
            b'1'..=b'9' => {
                digits(&mut at);
            }
            _ => return None,
        }
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            if digits(&mut at) == 0 {
                return None;
            }
        }
        if matches!(bytes.get(at), Some(b'e' | b'E')) {
            at += 1;
            if matches!(bytes.get(at), Some(b'+' | b'-')) {
                at += 1;
            }
            if digits(&mut at) == 0 {
                return None;
            }
        }
        self.pos = at;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The end of the string whose text starts at `from`, as the scanner finds it.
    fn string_end(bytes: &[u8], from: usize) -> Option<(usize, bool)> {
        LineMasks::of(bytes)?.string_end(from)
    }

    /// The reference: the string's end walked escape by escape from `from`.
    fn string_end_from(bytes: &[u8], from: usize, mut escaped: bool) -> Option<(usize, bool)> {
        let mut at = from;
        loop {
            at += memchr::memchr2(b'"', b'\\', bytes.get(at..)?)?;
            if bytes[at] == b'"' {
                return Some((at, escaped));
            }
            escaped = true;
            at += escape_len(&bytes[at..])?;
        }
    }

    /// The length of the escape at the start of `bytes` (a backslash), or `None` when it
    /// is not a valid JSON escape.
    fn escape_len(bytes: &[u8]) -> Option<usize> {
        match bytes.get(1)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(2),
            b'u' => {
                let hex = bytes.get(2..6)?;
                hex.iter().all(u8::is_ascii_hexdigit).then_some(6)
            }
            _ => None,
        }
    }

    /// Whether any backslash of the line, walked from its start, starts an invalid escape.
    fn has_invalid_escape(bytes: &[u8]) -> bool {
        let mut at = 0;
        while let Some(i) = memchr::memchr(b'\\', &bytes[at..]) {
            match escape_len(&bytes[at + i..]) {
                Some(len) => at += i + len,
                None => return true,
            }
        }
        false
    }

    /// The scanner's answer must be the walk's, except that it declines a string (and the
    /// line) when an invalid escape follows the string's end.
    fn assert_agrees(bytes: &[u8], fast: Option<(usize, bool)>) {
        let walk = string_end_from(bytes, 1, false);
        match fast {
            Some(_) => assert_eq!(fast, walk, "{}", String::from_utf8_lossy(bytes)),
            None => assert!(
                walk.is_none() || has_invalid_escape(bytes),
                "declined {}",
                String::from_utf8_lossy(bytes)
            ),
        }
    }

    fn value(text: &str) -> Option<&str> {
        let mut s = Scanner::new(text)?;
        let v = s.value()?;
        s.at_end().then_some(v)
    }

    #[test]
    fn accepts_what_json_accepts() {
        for ok in [
            r#""plain""#,
            r#""esc \" \\ \/ \b \f \n \r \t \u00e9 done""#,
            "0",
            "-0",
            "12.5e+3",
            "1E-2",
            "true",
            "false",
            "null",
            "[]",
            "{}",
            r#"[1, "two", {"three": [3.0, null]}]"#,
            r#" {"a" : {"b":[true,false]} } "#,
            "\"caf\u{e9} \u{1F600}\"",
        ] {
            assert_eq!(value(ok), Some(ok.trim()), "{ok}");
            assert!(
                serde_json::from_str::<serde_json::Value>(ok).is_ok(),
                "{ok}"
            );
        }
    }

    #[test]
    fn declines_what_json_rejects() {
        for bad in [
            r#""open"#,
            r#""bad \x escape""#,
            r#""short \u12""#,
            "\"tab\tinside\"",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "tru",
            "nul",
            "[1,]",
            "[1 2]",
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{a:1}"#,
            "{",
            "NaN",
        ] {
            assert_eq!(value(bad), None, "{bad}");
            assert!(
                serde_json::from_str::<serde_json::Value>(bad).is_err(),
                "serde accepts {bad}"
            );
        }
    }

    #[test]
    fn escapes_across_block_edges_end_strings_where_serde_does() {
        // Escapes at every offset around the 16-byte blocks, including escaped quotes
        // and backslashes that straddle a block edge.
        for pad in 0..40 {
            for escape in [r#"\""#, r"\\", r"\u00e9", r"\n"] {
                let text = format!(r#""{}{escape}{}" "#, "a".repeat(pad), "b".repeat(pad % 7));
                let expected: String = serde_json::from_str(text.trim()).unwrap();
                let mut s = Scanner::new(&text).unwrap();
                let got = s.string().unwrap();
                assert!(got.escaped);
                let decoded: String = serde_json::from_str(got.quoted(&text)).unwrap();
                assert_eq!(decoded, expected, "{text}");
                assert!(s.at_end(), "{text}");
            }
        }
    }

    #[test]
    fn the_block_scan_agrees_with_the_byte_walk_on_random_escape_dense_strings() {
        // Pieces that make escape-dense text: escaped quotes and backslashes, runs of
        // backslashes, `\\u` escapes, plain bytes; rarely an invalid escape or a quote.
        const PIECES: [&str; 11] = [
            "a",
            "bc",
            "\\\"",
            "\\\\",
            "\\n",
            "\\/",
            "\\u00e9",
            "\\\\\\\"",
            "é",
            "\\\\\\\\",
            "0123456789abcdef",
        ];
        const RARE: [&str; 3] = ["\\u12", "\\x", "\""];
        let mut rng = crate::test_rng::XorShift(0x9e37_79b9_7f4a_7c15);
        let mut next = move || rng.next();
        let (mut long_ends, mut rejected) = (0, 0);
        for _ in 0..20_000 {
            let mut text = String::from("\"");
            let pieces = next() % 120;
            for _ in 0..pieces {
                let roll = next();
                let piece = match roll % 400 {
                    0..=2 => RARE[(roll % 400) as usize],
                    _ => PIECES[(roll / 400 % PIECES.len() as u64) as usize],
                };
                text.push_str(piece);
            }
            if next() % 4 != 0 {
                text.push_str("\",\"k\\\"\":1}");
            }
            let bytes = text.as_bytes();
            let fast = string_end(bytes, 1);
            assert_agrees(bytes, fast);
            match fast {
                Some((end, escaped)) => {
                    let decoded = serde_json::from_str::<String>(&text[..=end]);
                    assert!(decoded.is_ok(), "serde rejects {:?}", &text[..=end]);
                    assert_eq!(escaped, text[1..end].contains('\\'), "{text}");
                    long_ends += usize::from(end > 192);
                }
                None => rejected += 1,
            }
        }
        // Both answers, over strings that span several blocks, were exercised.
        assert!(
            long_ends > 5_000 && rejected > 1_000,
            "{long_ends} {rejected}"
        );
    }

    #[test]
    fn strings_end_where_the_byte_walk_ends_them_at_every_offset() {
        // An escape (or a lone quote) at every offset of strings up to 80 bytes long, which
        // puts escapes and closing quotes on both sides of each 16-byte step of the short
        // path and of the hand-over to the 64-byte blocks; the text then ends right after
        // the string, within a step or a block of it, or further away.
        const ESCAPES: [&str; 9] = [
            "", "\\\"", "\\\\", "\\\\\\\"", "\\n", "\\u00e9", "\\x", "\\", "\"",
        ];
        let (step, block) = (" ".repeat(16), " ".repeat(65));
        let tails = ["", ",", "}}", ",\"k\\\"\":1}", &step, &block];
        let mut ended = [0usize; 2];
        for len in 0..=80 {
            for escape in ESCAPES {
                for at in 0..=len {
                    for (closed, tail) in tails.iter().map(|t| (true, *t)).chain([(false, "")]) {
                        let mut text =
                            format!("\"{}{escape}{}", "a".repeat(at), "b".repeat(len - at));
                        if closed {
                            text.push('"');
                        }
                        text.push_str(tail);
                        let bytes = text.as_bytes();
                        let fast = string_end(bytes, 1);
                        assert_agrees(bytes, fast);
                        if let Some((end, escaped)) = fast {
                            assert_eq!(bytes[end], b'"', "{text}");
                            assert_eq!(escaped, text[1..end].contains('\\'), "{text}");
                            assert!(
                                serde_json::from_str::<String>(&text[..=end]).is_ok(),
                                "{text}"
                            );
                            ended[usize::from(escaped)] += 1;
                        }
                        if escape.is_empty() && closed {
                            assert_eq!(fast, Some((len + 1, false)), "{text}");
                        }
                    }
                }
            }
        }
        assert!(ended[0] > 10_000 && ended[1] > 10_000, "{ended:?}");
    }

    #[test]
    fn control_bytes_inside_short_strings_are_declined() {
        for len in [1, 15, 16, 17, 31, 32, 33, 63, 64, 65] {
            for at in 0..len {
                let mut text = format!("{{\"k\":\"{}\"}}", "a".repeat(len));
                text.replace_range(6 + at..7 + at, "\u{1}");
                assert_eq!(value(&text), None, "{text:?}");
            }
        }
    }

    #[test]
    fn deep_nesting_is_left_to_serde() {
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(value(&deep), None);
        assert!(serde_json::from_str::<serde_json::Value>(&deep).is_ok());
    }

    #[test]
    fn finds_control_bytes_in_any_position() {
        assert!(!has_control_bytes(&[b'a'; 200]));
        for at in [0, 1, 63, 64, 65, 127, 199] {
            let mut bytes = vec![b'a'; 200];
            bytes[at] = b'\n';
            assert!(has_control_bytes(&bytes), "at {at}");
        }
    }

    #[test]
    fn strings_report_escapes_and_quote_back() {
        let line = r#"{"k":"a\"b"}"#;
        let mut s = Scanner::new(line).unwrap();
        s.eat(b'{').unwrap();
        let key = s.string().unwrap();
        assert!(!key.escaped);
        assert_eq!(key.quoted(line), r#""k""#);
        s.eat(b':').unwrap();
        let v = s.string().unwrap();
        assert!(v.escaped);
        assert_eq!(v.inner, r#"a\"b"#);
        assert_eq!(v.quoted(line), r#""a\"b""#);
    }
}
