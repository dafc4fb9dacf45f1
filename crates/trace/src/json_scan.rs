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
//! builds. Here the end of a string is found with `memchr2`, which uses the widest vector
//! unit the CPU has, and control characters (never valid inside a JSON string) are ruled
//! out once per line by [`has_control_bytes`] instead of byte by byte.

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
    /// A scanner at the start of `text`; `None` when the text has control bytes.
    pub(crate) fn new(text: &'a str) -> Option<Scanner<'a>> {
        (!has_control_bytes(text.as_bytes())).then_some(Scanner { text, pos: 0 })
    }

    /// A scanner over text the caller has already found free of control bytes.
    pub(crate) fn new_control_free(text: &'a str) -> Scanner<'a> {
        debug_assert!(!has_control_bytes(text.as_bytes()));
        Scanner { text, pos: 0 }
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

    /// Whether only spaces are left.
    pub(crate) fn at_end(&mut self) -> bool {
        self.skip_spaces();
        self.pos == self.text.len()
    }

    /// Consumes `byte` after optional spaces.
    pub(crate) fn eat(&mut self, byte: u8) -> Option<()> {
        self.skip_spaces();
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    /// After optional spaces, whether the next byte is `byte` (consumed if so).
    fn eat_if(&mut self, byte: u8) -> bool {
        self.skip_spaces();
        if self.peek() == Some(byte) {
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
        self.skip_spaces();
        if self.bytes()[self.pos..].starts_with(b"null") {
            self.pos += 4;
            true
        } else {
            false
        }
    }

    /// A string value.
    pub(crate) fn string(&mut self) -> Option<JsonStr<'a>> {
        self.skip_spaces();
        if self.peek()? != b'"' {
            return None;
        }
        self.string_at_quote()
    }

    /// The string whose opening quote is the next byte.
    fn string_at_quote(&mut self) -> Option<JsonStr<'a>> {
        let start = self.pos + 1;
        let (end, escaped) = string_end(self.bytes(), start)?;
        self.pos = end + 1;
        // Quotes and backslashes are ASCII, so both ends are char boundaries.
        Some(JsonStr {
            inner: &self.text[start..end],
            escaped,
        })
    }

    /// When the next value is a string: `Some` of the string, or `Some(None)` when it is
    /// malformed. `None` when the next value is not a string (nothing is consumed).
    pub(crate) fn string_if_next(&mut self) -> Option<Option<JsonStr<'a>>> {
        self.skip_spaces();
        (self.peek()? == b'"').then(|| self.string_at_quote())
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
        self.skip_spaces();
        match self.peek()? {
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

/// The closing quote of the string whose text starts at `from`, and whether the text has
/// escapes; `None` for an invalid escape or a string that does not end.
#[cfg(target_arch = "x86_64")]
fn string_end(bytes: &[u8], from: usize) -> Option<(usize, bool)> {
    // Most strings are attribute keys and short values without escapes, for which building
    // 64-byte masks costs more than the string itself: look 16 bytes at a time first, and
    // hand over to the blocks at the first backslash (or after 64 plain bytes). Every byte
    // passed over is plain, so the blocks start there with no escape seen or carried.
    let mut at = from;
    while at + 16 <= bytes.len() && at - from < 64 {
        let (quotes, backslashes) = quote_and_backslash_masks16(bytes, at);
        // The bits up to and including the first quote; all of them when there is none.
        let up_to_quote = quotes ^ quotes.wrapping_sub(1);
        if backslashes & up_to_quote != 0 {
            break;
        }
        if quotes != 0 {
            return Some((at + quotes.trailing_zeros() as usize, false));
        }
        at += 16;
    }
    string_end_blocks(bytes, at)
}

/// [`string_end`] for a string (or its rest) that may be long and escape-dense.
///
/// Strings in traces are escape-dense (JSON nested in JSON: a tool schema has an escaped
/// quote every few bytes), so this reads 64 bytes at a time into a quote mask and a
/// backslash mask and settles every escape of the block at once: when no two backslashes
/// touch, each backslash starts an escape, the escaped bytes are the backslash mask shifted
/// by one, and the string ends at the first quote that is not escaped. Only the bytes after
/// backslashes are looked at one by one (a table lookup each, to validate them). A block
/// with a `\\` or a `\u` escape is walked hit by hit instead, as before.
#[cfg(target_arch = "x86_64")]
fn string_end_blocks(bytes: &[u8], from: usize) -> Option<(usize, bool)> {
    let mut escaped = false;
    let mut block_start = from;
    // Whether the last byte before `block_start` is a backslash that escapes the byte at
    // `block_start` (only ever set by the bulk path).
    let mut carry = 0u64;
    while block_start + 64 <= bytes.len() {
        let (quotes, backslashes) = quote_and_backslash_masks(bytes, block_start);
        if backslashes == 0 && carry == 0 {
            if quotes != 0 {
                return Some((block_start + quotes.trailing_zeros() as usize, escaped));
            }
            block_start += 64;
            continue;
        }
        let escaped_bytes = (backslashes << 1) | carry;
        if escaped_bytes & backslashes == 0 {
            // No backslash is escaped, so every one starts an escape.
            let ends = quotes & !escaped_bytes;
            let before_end = match ends {
                0 => !0u64,
                _ => (1u64 << ends.trailing_zeros()) - 1,
            };
            if simple_escapes(bytes, block_start, escaped_bytes & before_end) {
                // Backslashes after the string's end belong to later text.
                escaped |= (backslashes & before_end) | carry != 0;
                if ends != 0 {
                    return Some((block_start + ends.trailing_zeros() as usize, escaped));
                }
                carry = backslashes >> 63;
                block_start += 64;
                continue;
            }
        }
        // Walk this block hit by hit, starting with the escape carried into it.
        let mut at = block_start;
        if carry == 1 {
            at = block_start - 1 + escape_len(&bytes[block_start - 1..])?;
            carry = 0;
        }
        let block_end = block_start + 64;
        let mut hits =
            (quotes | backslashes) & (!0u64).checked_shl((at - block_start) as u32).unwrap_or(0);
        let mut next_block = block_end.max(at);
        while hits != 0 {
            let hit = block_start + hits.trailing_zeros() as usize;
            if bytes[hit] == b'"' {
                return Some((hit, escaped));
            }
            escaped = true;
            let after = hit + escape_len(&bytes[hit..])?;
            if after >= block_end {
                next_block = after;
                break;
            }
            // Drop the hits up to the end of the escape (its second byte may be a quote).
            hits &= !0u64 << (after - block_start);
        }
        block_start = next_block;
    }
    if carry == 1 {
        escaped = true;
        block_start = block_start - 1 + escape_len(&bytes[block_start - 1..])?;
    }
    string_end_from(bytes, block_start, escaped)
}

/// Bit `i` set where `bytes[at + i]` is a quote, and where it is a backslash, for the 16
/// bytes at `at` (which the caller keeps inside `bytes`).
#[cfg(target_arch = "x86_64")]
fn quote_and_backslash_masks16(bytes: &[u8], at: usize) -> (u32, u32) {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    let chunk: &[u8; 16] = bytes[at..at + 16].try_into().expect("16 bytes");
    // SAFETY: SSE2 is part of the x86_64 baseline; the load reads exactly the 16 bytes of
    // `chunk`, and `_mm_loadu_si128` needs no alignment.
    unsafe {
        let block = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
        (
            _mm_movemask_epi8(_mm_cmpeq_epi8(block, _mm_set1_epi8(b'"' as i8))) as u32,
            _mm_movemask_epi8(_mm_cmpeq_epi8(block, _mm_set1_epi8(b'\\' as i8))) as u32,
        )
    }
}

/// Bit `i` set where `bytes[at + i]` is a quote, and where it is a backslash, for the 64
/// bytes at `at` (which the caller keeps inside `bytes`).
#[cfg(target_arch = "x86_64")]
fn quote_and_backslash_masks(bytes: &[u8], at: usize) -> (u64, u64) {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    assert!(at + 64 <= bytes.len());
    let mut quotes = 0u64;
    let mut backslashes = 0u64;
    for part in 0..4 {
        // SAFETY: SSE2 is part of the x86_64 baseline; the 16 bytes read lie inside
        // `bytes` (asserted above), and `_mm_loadu_si128` needs no alignment.
        let (q, b) = unsafe {
            let block = _mm_loadu_si128(bytes.as_ptr().add(at + 16 * part).cast::<__m128i>());
            (
                _mm_movemask_epi8(_mm_cmpeq_epi8(block, _mm_set1_epi8(b'"' as i8))) as u16,
                _mm_movemask_epi8(_mm_cmpeq_epi8(block, _mm_set1_epi8(b'\\' as i8))) as u16,
            )
        };
        quotes |= u64::from(q) << (16 * part);
        backslashes |= u64::from(b) << (16 * part);
    }
    (quotes, backslashes)
}

/// Whether every byte marked in `escaped_bytes` (bit `i` for `bytes[at + i]`) is the
/// second byte of a two-byte escape other than `\\` (`\"`, `\/`, `\b`, `\f`, `\n`,
/// `\r`, `\t`). `\u` escapes and invalid ones answer `false`: the caller walks them.
#[cfg(target_arch = "x86_64")]
fn simple_escapes(bytes: &[u8], at: usize, mut escaped_bytes: u64) -> bool {
    let mut all = true;
    while escaped_bytes != 0 {
        let i = at + escaped_bytes.trailing_zeros() as usize;
        // An escaped byte past the end of the text counts as not simple.
        all &= bytes
            .get(i)
            .is_some_and(|&b| matches!(b, b'"' | b'/' | b'b' | b'f' | b'n' | b'r' | b't'));
        escaped_bytes &= escaped_bytes - 1;
    }
    all
}

/// The closing quote of the string whose text starts at `from`, and whether the text has
/// escapes; `None` for an invalid escape or a string that does not end.
#[cfg(not(target_arch = "x86_64"))]
fn string_end(bytes: &[u8], from: usize) -> Option<(usize, bool)> {
    string_end_from(bytes, from, false)
}

/// [`string_end`] without vector probes, for the tail of a line (and for targets other
/// than x86_64); `escaped` says whether escapes were already seen before `from`.
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

/// The length of the escape sequence at the start of `bytes` (which starts with a
/// backslash), or `None` when it is not a valid JSON escape.
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
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
            let walk = string_end_from(bytes, 1, false);
            assert_eq!(fast, walk, "{text}");
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
                        assert_eq!(fast, string_end_from(bytes, 1, false), "{text}");
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
