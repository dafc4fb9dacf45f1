//! GenAI messages read in their escaped string form: the text head of one message, and
//! the tool calls of a list.
//!
//! `gen_ai.input.messages` is a JSON list written as a JSON string, so each message is
//! escaped twice. Decoding a message into a `String`, parsing that, and decoding its texts
//! again only to keep 256 bytes was most of the cost of an LLM span's facts, and decoding
//! a whole output list to find its tool calls was costly too. This reader goes over the
//! escaped text once. It checks the whole text as serde would, because the answer must not
//! depend on which way was taken, and decodes only what it keeps. Whatever it cannot be
//! sure of (`\u` escapes, white space other than spaces, keys with escapes, deep nesting,
//! another shape of message) it leaves to serde by answering `None`.

/// Deeper nesting is left to serde (whose own limit is 128).
const MAX_DEPTH: u32 = 64;

/// For one message of a GenAI list in escaped form (`{\"role\":...}` without the list's
/// quotes): `Some(Some(head))` when it has text parts, where `head` is their text joined
/// by line breaks, all of it or at least `max` bytes cut on a character boundary;
/// `Some(None)` for a valid message without text; `None` when serde must decide.
pub(super) fn text_head(segment: &str, max: usize) -> Option<Option<String>> {
    let mut reader = Reader::new(segment, Want::Texts)?;
    reader.message(0)?;
    let texts = reader.finish()?;
    if texts.is_empty() {
        return Some(None);
    }
    let mut out = String::with_capacity(max + 4);
    for (n, &(start, end)) in texts.iter().enumerate() {
        if out.len() >= max {
            break;
        }
        if n > 0 {
            out.push('\n');
        }
        decode_head(&segment[start..end], max, &mut out);
    }
    Some(Some(out))
}

/// The names of the `tool_call` parts of a whole GenAI message list in escaped form (the
/// attribute's text without its quotes), in order; `None` when serde must decide.
pub(super) fn tool_call_names(list: &str) -> Option<Vec<String>> {
    let mut reader = Reader::new(list, Want::ToolCallNames)?;
    reader.spaces();
    reader.array(0, |r| r.message(1))?;
    let names = reader.finish()?;
    let names = names.iter().map(|&(start, end)| {
        let mut name = String::new();
        decode_head(&list[start..end], usize::MAX, &mut name);
        name
    });
    Some(names.collect())
}

/// What the reader collects from the parts it reads.
#[derive(Clone, Copy, PartialEq)]
enum Want {
    /// The contents of `text` parts.
    Texts,
    /// The names of `tool_call` parts.
    ToolCallNames,
}

/// An escape inside a nested string, at a backslash of the escaped text.
enum Escape {
    /// `\"`: the nested string ends.
    End,
    /// A character (ASCII) and how many escaped bytes spell it.
    Char(u8, usize),
}

/// Reads the escape at `bytes[at]` (a backslash) inside a nested string. `None` for what
/// this reader leaves to serde: `\u` at either level, and escapes that are invalid at the
/// inner level (a raw line break inside a nested string).
fn string_escape(bytes: &[u8], at: usize) -> Option<Escape> {
    let char = |c: u8, len: usize| Some(Escape::Char(c, len));
    match bytes.get(at + 1)? {
        b'"' => Some(Escape::End),
        b'/' => char(b'/', 2),
        // A backslash in the nested string: it escapes the next character there.
        b'\\' => match bytes.get(at + 2)? {
            b'/' => char(b'/', 3),
            b'b' => char(0x08, 3),
            b'f' => char(0x0c, 3),
            b'n' => char(b'\n', 3),
            b'r' => char(b'\r', 3),
            b't' => char(b'\t', 3),
            b'\\' => match bytes.get(at + 3)? {
                b'"' => char(b'"', 4),
                b'\\' => char(b'\\', 4),
                b'/' => char(b'/', 4),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// A nested string: where its escaped text starts and ends, and whether it has escapes.
#[derive(Clone, Copy)]
struct Str {
    start: usize,
    end: usize,
    escaped: bool,
}

struct Reader<'b> {
    bytes: &'b [u8],
    at: usize,
    want: Want,
    /// Where the wanted strings are, in order.
    found: Vec<(usize, usize)>,
}

impl<'b> Reader<'b> {
    fn new(text: &'b str, want: Want) -> Option<Self> {
        let bytes = text.as_bytes();
        // Control bytes are invalid in the outer string; the line scanner usually rules
        // them out, but this reader must not rely on where the text came from.
        if crate::json_scan::has_control_bytes(bytes) {
            return None;
        }
        Some(Reader {
            bytes,
            at: 0,
            want,
            found: Vec::new(),
        })
    }

    /// What was found, once nothing but white space is left.
    fn finish(mut self) -> Option<Vec<(usize, usize)>> {
        self.spaces();
        (self.at == self.bytes.len()).then_some(self.found)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
    }

    fn raw(&self, s: Str) -> &[u8] {
        &self.bytes[s.start..s.end]
    }

    fn string(&mut self) -> Option<Str> {
        if !self.bytes[self.at..].starts_with(br#"\""#) {
            return None;
        }
        let start = self.at + 2;
        let mut at = start;
        let mut escaped = false;
        loop {
            at += crate::near_find::find2(&self.bytes[at..], b'\\', b'"')?;
            if self.bytes[at] == b'"' {
                return None;
            }
            match string_escape(self.bytes, at)? {
                Escape::End => {
                    self.at = at + 2;
                    return Some(Str {
                        start,
                        end: at,
                        escaped,
                    });
                }
                Escape::Char(_, len) => {
                    escaped = true;
                    at += len;
                }
            }
        }
    }

    /// `null` or a string (`Option<String>` in serde's terms); `Some(None)` for `null`.
    fn optional_string(&mut self) -> Option<Option<Str>> {
        if self.peek()? == b'n' {
            return self.literal(b"null").map(|_| None);
        }
        self.string().map(Some)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.bytes[self.at..]
            .starts_with(word)
            .then(|| self.at += word.len())
    }

    fn digits(&mut self) -> Option<()> {
        let n = self.bytes[self.at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        self.at += n;
        (n > 0).then_some(())
    }

    fn number(&mut self) -> Option<()> {
        let _ = self.eat(b'-');
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits()?,
            _ => return None,
        }
        if self.eat(b'.').is_some() {
            self.digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.digits()?;
        }
        Some(())
    }

    /// Any value, checked and skipped.
    fn value(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'\\' => self.string().map(|_| ()),
            b'{' => self.object(depth + 1, |r, _| r.value(depth + 1)),
            b'[' => self.array(depth + 1, |r| r.value(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    fn object(
        &mut self,
        depth: u32,
        mut member: impl FnMut(&mut Self, Str) -> Option<()>,
    ) -> Option<()> {
        self.sequence(depth, b'{', b'}', |r| {
            let key = r.string()?;
            r.spaces();
            r.eat(b':')?;
            r.spaces();
            member(r, key)
        })
    }

    fn array(&mut self, depth: u32, element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.sequence(depth, b'[', b']', element)
    }

    /// Items between `open` and `close`, separated by commas: an object's members or an
    /// array's elements.
    fn sequence(
        &mut self,
        depth: u32,
        open: u8,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat(open)?;
        self.spaces();
        if self.eat(close).is_some() {
            return Some(());
        }
        loop {
            self.spaces();
            item(self)?;
            self.spaces();
            match self.peek()? {
                b',' => self.at += 1,
                c if c == close => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A message as `GenaiMessage` reads it: `parts` once, other keys ignored.
    fn message(&mut self, depth: u32) -> Option<()> {
        let mut parts = false;
        self.object(depth + 1, |r, key| {
            if key.escaped {
                return None;
            }
            if r.raw(key) != b"parts" {
                return r.value(depth + 1);
            }
            if std::mem::replace(&mut parts, true) {
                return None;
            }
            r.array(depth + 2, |r| r.part(depth + 2))
        })
    }

    /// A part as `GenaiPart` reads it: `type`, `content` and `name` at most once each.
    fn part(&mut self, depth: u32) -> Option<()> {
        let mut kind: Option<Option<Str>> = None;
        let mut content: Option<Option<Str>> = None;
        let mut name: Option<Option<Str>> = None;
        self.object(depth + 1, |r, key| {
            if key.escaped {
                return None;
            }
            match r.raw(key) {
                b"type" if kind.is_none() => kind = Some(r.optional_string()?),
                b"name" if name.is_none() => name = Some(r.optional_string()?),
                b"content" if content.is_none() => {
                    // Only a string content is text; other values are skipped (serde
                    // fails to read them as a `String`).
                    content = Some(match r.peek()? {
                        b'\\' => Some(r.string()?),
                        _ => {
                            r.value(depth + 1)?;
                            None
                        }
                    });
                }
                b"type" | b"name" | b"content" => return None,
                _ => r.value(depth + 1)?,
            }
            Some(())
        })?;
        let Some(kind) = kind.flatten() else {
            return Some(());
        };
        // A type spelled with escapes is left to serde.
        if kind.escaped {
            return None;
        }
        let wanted = match self.want {
            Want::Texts if self.raw(kind) == b"text" => content.flatten(),
            Want::ToolCallNames if self.raw(kind) == b"tool_call" => name.flatten(),
            _ => None,
        };
        if let Some(found) = wanted {
            self.found.push((found.start, found.end));
        }
        Some(())
    }
}

/// Appends the decoded text of a nested string (already checked by the reader) to `out`
/// until `out` holds at least `max` bytes.
fn decode_head(escaped: &str, max: usize, out: &mut String) {
    let bytes = escaped.as_bytes();
    let mut at = 0;
    while out.len() < max {
        let Some(backslash) = memchr::memchr(b'\\', &bytes[at..]).map(|n| at + n) else {
            crate::attr::push_at_least(out, &escaped[at..], max);
            return;
        };
        crate::attr::push_at_least(out, &escaped[at..backslash], max);
        if out.len() >= max {
            return;
        }
        let Some(Escape::Char(c, len)) = string_escape(bytes, backslash) else {
            debug_assert!(false, "the reader checked every escape");
            return;
        };
        out.push(char::from(c));
        at = backslash + len;
    }
}

#[cfg(test)]
mod tests;
