//! Provider error bodies inside error messages: a Python dict repr or a JSON object.
//!
//! SDKs put the provider's response body in their exceptions' messages
//! (`Error code: 400 - {'error': {'message': "...", 'code': 'context_length_exceeded'}}`).
//! [`find`] reads the first such body and returns what tells one failure from another: the
//! error's code (else its type or status) and its message.
//!
//! The reader is bounded: a body must start in the first [`START_MAX`] bytes and end within
//! [`BODY_MAX`] bytes of its start, nests at most [`MAX_DEPTH`] levels, and every byte is read
//! at most once across the candidates. A body cut short reads as no body.

/// How far into the message a body may start (the template reads 400 bytes anyway).
const START_MAX: usize = 400;
/// How long a body may be.
const BODY_MAX: usize = 16 * 1024;
/// How deep a body may nest.
const MAX_DEPTH: usize = 32;
/// How long a code or type may be to name the failure.
const LABEL_MAX: usize = 100;

/// An error body found in a message.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Body<'a> {
    /// The text before the body.
    pub(super) prefix: &'a str,
    /// The error's code, else its type or status.
    pub(super) label: Option<String>,
    /// The error's message.
    pub(super) message: Option<String>,
    /// The text after the body.
    pub(super) rest: &'a str,
}

/// The first provider error body in `text`, or `None` when there is none, or when a body
/// is cut short or malformed past its start (the caller then masks the text as it is).
pub(super) fn find(text: &str) -> Option<Body<'_>> {
    let bytes = text.as_bytes();
    let scan_end = bytes.len().min(START_MAX);
    let mut from = 0;
    while from < scan_end {
        let at = from + memchr::memchr(b'{', &bytes[from..scan_end])?;
        let mut reader = Reader {
            text,
            bytes,
            pos: at,
            limit: bytes.len().min(at + BODY_MAX),
            depth: 0,
        };
        match reader.value() {
            Ok(Value::Dict(dict)) => {
                if let Some((label, message)) = error_fields(dict) {
                    return Some(Body {
                        prefix: text.get(..at)?,
                        label,
                        message,
                        rest: text.get(reader.pos..)?,
                    });
                }
                from = reader.pos.max(at + 1);
            }
            Ok(_) => from = reader.pos.max(at + 1),
            Err(Fail::Cut) => return None,
            Err(Fail::Syntax(stopped)) => from = stopped.max(at + 1),
        }
    }
    None
}

/// The label and message of a dict that is an error body, `None` for any other dict.
///
/// - `{'error': {...}}` (OpenAI, Anthropic, Gemini, and the OpenAI-compatible servers):
///   the inner dict's code/type/status and message, else the outer one's;
/// - `{'error': 'text', ...}` (Ollama, TGI): that text, labelled by the outer code/type;
/// - `{'object': 'error', ...}` or `{'type': 'error', ...}` (Mistral, vLLM): the dict's own.
fn error_fields(mut top: Vec<(String, Value)>) -> Option<(Option<String>, Option<String>)> {
    let error = top
        .iter()
        .position(|(k, _)| k == "error")
        .map(|i| top.swap_remove(i).1);
    let (label, message) = match error {
        Some(Value::Dict(inner)) => (
            label_of(&inner).or_else(|| label_of(&top)),
            text_of(&inner, "message").or_else(|| text_of(&top, "message")),
        ),
        Some(Value::Str(said)) if !said.trim().is_empty() => (label_of(&top), Some(said)),
        _ if is_error_object(&top) => (label_of(&top), text_of(&top, "message")),
        _ => return None,
    };
    (label.is_some() || message.is_some()).then_some((label, message))
}

/// Whether a dict says it is an error (`'object': 'error'`, `'type': 'error'`).
fn is_error_object(dict: &[(String, Value)]) -> bool {
    ["object", "type"]
        .iter()
        .any(|key| matches!(get(dict, key), Some(Value::Str(s)) if s.eq_ignore_ascii_case("error")))
}

/// The first of `code`, `type`, `status` that is a word naming the failure: not a number
/// (`'code': 400` repeats the status), not `error`, not empty, not long.
fn label_of(dict: &[(String, Value)]) -> Option<String> {
    ["code", "type", "status"]
        .iter()
        .find_map(|key| match get(dict, key) {
            Some(Value::Str(s))
                if s.len() <= LABEL_MAX
                    && s.bytes().any(|b| b.is_ascii_alphabetic())
                    && !s.trim().eq_ignore_ascii_case("error") =>
            {
                Some(s.trim().to_string())
            }
            _ => None,
        })
}

/// A non-empty string field.
fn text_of(dict: &[(String, Value)], key: &str) -> Option<String> {
    match get(dict, key) {
        Some(Value::Str(s)) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn get<'v>(dict: &'v [(String, Value)], key: &str) -> Option<&'v Value> {
    dict.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// A value of a body, kept as far as the error's fields need it.
#[derive(Debug, PartialEq, Eq)]
enum Value {
    Str(String),
    Dict(Vec<(String, Value)>),
    /// A number, `None`/`null`, a boolean, a list, a tuple, a call repr.
    Other,
}

/// Why a value could not be read.
#[derive(Debug, PartialEq, Eq)]
enum Fail {
    /// Not a body; the search goes on from this byte.
    Syntax(usize),
    /// Cut short (the text or the reader's limits ended first): the search stops.
    Cut,
}

/// A reader of Python literal reprs and JSON, which it reads as one language: strings in
/// `'` or `"` with the escapes of both, `None`/`null`, `True`/`true`, numbers, dicts,
/// lists and tuples.
struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    limit: usize,
    depth: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Result<u8, Fail> {
        if self.pos < self.limit {
            Ok(self.bytes[self.pos])
        } else {
            Err(Fail::Cut)
        }
    }

    fn skip_space(&mut self) {
        while self.pos < self.limit && self.bytes[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<Value, Fail> {
        self.skip_space();
        match self.peek()? {
            b'{' => self.nested(Self::dict),
            b'[' => self.nested(|r| r.sequence(b']')),
            b'(' => self.nested(|r| r.sequence(b')')),
            q @ (b'\'' | b'"') => self.string(q).map(Value::Str),
            b if is_token_byte(b) => {
                let start = self.pos;
                while self.pos < self.limit && is_token_byte(self.bytes[self.pos]) {
                    self.pos += 1;
                }
                let token = &self.bytes[start..self.pos];
                match self.peek()? {
                    // b'...', r"...": a prefixed string literal.
                    q @ (b'\'' | b'"')
                        if token.len() <= 2 && token.iter().all(|b| b"bBrRuU".contains(b)) =>
                    {
                        self.string(q).map(|_| Value::Other)
                    }
                    // datetime.date(2026, 4, 23): a call repr.
                    b'(' => self.nested(|r| r.sequence(b')')),
                    _ => Ok(Value::Other),
                }
            }
            _ => Err(Fail::Syntax(self.pos)),
        }
    }

    /// Reads a dict, list or tuple one level deeper.
    fn nested(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<Value, Fail>,
    ) -> Result<Value, Fail> {
        if self.depth >= MAX_DEPTH {
            return Err(Fail::Cut);
        }
        self.depth += 1;
        let value = read(self);
        self.depth -= 1;
        value
    }

    fn dict(&mut self) -> Result<Value, Fail> {
        self.pos += 1; // '{'
        let mut entries = Vec::new();
        loop {
            self.skip_space();
            if self.peek()? == b'}' {
                self.pos += 1;
                return Ok(Value::Dict(entries));
            }
            let key = match self.value()? {
                Value::Str(key) => key,
                _ => String::new(),
            };
            self.skip_space();
            if self.peek()? != b':' {
                return Err(Fail::Syntax(self.pos));
            }
            self.pos += 1;
            let value = self.value()?;
            entries.push((key, value));
            self.skip_space();
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {}
                _ => return Err(Fail::Syntax(self.pos)),
            }
        }
    }

    fn sequence(&mut self, close: u8) -> Result<Value, Fail> {
        self.pos += 1; // '[' or '('
        loop {
            self.skip_space();
            if self.peek()? == close {
                self.pos += 1;
                return Ok(Value::Other);
            }
            self.value()?;
            self.skip_space();
            match self.peek()? {
                b',' => self.pos += 1,
                b if b == close => {}
                _ => return Err(Fail::Syntax(self.pos)),
            }
        }
    }

    /// A string quoted with `quote`, decoded. Quotes and backslashes are ASCII, so every
    /// place the text is cut is a character boundary.
    fn string(&mut self, quote: u8) -> Result<String, Fail> {
        self.pos += 1;
        let mut out = String::new();
        let mut run = self.pos;
        loop {
            let b = self.peek()?;
            if b == quote {
                out.push_str(self.text.get(run..self.pos).ok_or(Fail::Cut)?);
                self.pos += 1;
                return Ok(out);
            }
            if b != b'\\' {
                self.pos += 1;
                continue;
            }
            out.push_str(self.text.get(run..self.pos).ok_or(Fail::Cut)?);
            self.pos += 1;
            let escaped = self.peek()?;
            self.pos += 1;
            match escaped {
                b'n' => out.push('\n'),
                b't' => out.push('\t'),
                b'r' => out.push('\r'),
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'\n' => {}
                b'\\' | b'\'' | b'"' | b'/' => out.push(char::from(escaped)),
                b'x' => out.push(self.hex_char(2)?),
                b'U' => out.push(self.hex_char(8)?),
                b'u' => {
                    let high = self.hex(4)?;
                    let pair = (0xD800..0xDC00).contains(&high)
                        && self.bytes.get(self.pos..self.pos + 2) == Some(b"\\u");
                    let code = if pair {
                        self.pos += 2;
                        let low = self.hex(4)?;
                        if (0xDC00..0xE000).contains(&low) {
                            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            0xFFFD
                        }
                    } else {
                        high
                    };
                    out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                }
                _ => {
                    // Not an escape (Python keeps the backslash); read the byte again.
                    out.push('\\');
                    self.pos -= 1;
                }
            }
            run = self.pos;
        }
    }

    fn hex_char(&mut self, digits: usize) -> Result<char, Fail> {
        Ok(char::from_u32(self.hex(digits)?).unwrap_or('\u{FFFD}'))
    }

    fn hex(&mut self, digits: usize) -> Result<u32, Fail> {
        let mut code = 0u32;
        for _ in 0..digits {
            let digit = char::from(self.peek()?)
                .to_digit(16)
                .ok_or(Fail::Syntax(self.pos))?;
            code = code.wrapping_mul(16).wrapping_add(digit);
            self.pos += 1;
        }
        Ok(code)
    }
}

/// A byte of a bare token: a number, `None`, `null`, `True`, a dotted name.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Value, Fail> {
        Reader {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            limit: text.len(),
            depth: 0,
        }
        .value()
    }

    #[test]
    fn reads_python_and_json_strings() {
        let s = |v: &str| {
            read(v).map(|v| match v {
                Value::Str(s) => s,
                other => panic!("{other:?}"),
            })
        };
        assert_eq!(
            s(r#""This model's \"max\"""#),
            Ok("This model's \"max\"".into())
        );
        assert_eq!(s(r"'can\'t \\ \n'"), Ok("can't \\ \n".into()));
        assert_eq!(
            s(r#""caf\u00e9 \ud83d\ude00 \x41""#),
            Ok("café 😀 A".into())
        );
        assert_eq!(s(r"'\d é'"), Ok("\\d é".into()));
        assert_eq!(s(r#""\ud83d alone""#), Ok("\u{FFFD} alone".into()));
        assert_eq!(s("'cut"), Err(Fail::Cut));
        assert_eq!(s("'cut\\"), Err(Fail::Cut));
    }

    #[test]
    fn reads_nested_values() {
        let v = read(
            "{'a': [1, (2, 3), {'b': None}], 'c': datetime.date(2026, 4, 23), 'd': b'x', \"e\": true,}",
        );
        let Ok(Value::Dict(d)) = v else {
            panic!("{v:?}")
        };
        assert_eq!(d.len(), 4);
        assert_eq!(read("{name}"), Err(Fail::Syntax(5)));
        assert_eq!(read("{'a': 1"), Err(Fail::Cut));
        assert_eq!(read(&"[".repeat(100)), Err(Fail::Cut));
    }
}
