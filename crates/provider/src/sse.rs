//! Incremental Server-Sent Events parser.
//!
//! Bytes arrive in arbitrary chunks (an event, a line, even a UTF-8 character
//! may be split anywhere). Lines end with LF, CRLF or a lone CR; an event ends
//! at a blank line. Only `event` and `data` fields matter here; comments
//! (`:` lines), `id` and `retry` are ignored.

/// One dispatched SSE event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field, when given.
    pub(crate) event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub(crate) data: String,
}

/// Feeds bytes in, gets complete events out.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    /// Appends `chunk` and returns the events it completed.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        let mut start = 0;
        loop {
            let rest = &self.buf[start..];
            let Some(pos) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
                break;
            };
            let term_len = if rest[pos] == b'\r' {
                match rest.get(pos + 1) {
                    Some(b'\n') => 2,
                    Some(_) => 1,
                    // A CR at the very end: the LF may be in the next chunk.
                    None => break,
                }
            } else {
                1
            };
            let line = String::from_utf8_lossy(&rest[..pos]).into_owned();
            start += pos + term_len;
            self.line(&line, &mut out);
        }
        self.buf.drain(..start);
        out
    }

    /// Flushes at end of stream: a final line without terminator and an event
    /// without the closing blank line are still dispatched (lenient).
    pub(crate) fn finish(&mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        if !self.buf.is_empty() {
            let mut rest = std::mem::take(&mut self.buf);
            if rest.last() == Some(&b'\r') {
                rest.pop();
            }
            let line = String::from_utf8_lossy(&rest).into_owned();
            self.line(&line, &mut out);
        }
        self.line("", &mut out);
        out
    }

    fn line(&mut self, line: &str, out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                out.push(SseEvent {
                    event: self.event.take(),
                    data,
                });
            }
            self.event = None;
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "event" => self.event = Some(value.to_owned()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_split(input: &str, step: usize) -> Vec<SseEvent> {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        for chunk in input.as_bytes().chunks(step) {
            out.extend(p.feed(chunk));
        }
        out.extend(p.finish());
        out
    }

    #[test]
    fn splits_anywhere_with_any_line_ending() {
        let lf = "event: a\ndata: {\"x\":\"é\"}\n\n: comment\ndata: [DONE]\n\n";
        let crlf = lf.replace('\n', "\r\n");
        let cr = lf.replace('\n', "\r");
        let want = vec![
            SseEvent {
                event: Some("a".into()),
                data: "{\"x\":\"é\"}".into(),
            },
            SseEvent {
                event: None,
                data: "[DONE]".into(),
            },
        ];
        for input in [lf, &crlf, &cr] {
            for step in 1..=input.len() {
                assert_eq!(
                    parse_split(input, step),
                    want,
                    "step {step} input {input:?}"
                );
            }
        }
    }

    #[test]
    fn multi_line_data_and_unterminated_tail() {
        let got = parse_split("data:a\ndata: b\n\ndata: tail", 4);
        assert_eq!(got[0].data, "a\nb");
        assert_eq!(got[1].data, "tail");
        assert_eq!(got.len(), 2);
    }
}
