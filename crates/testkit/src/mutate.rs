//! Seeded mutations of trace lines, for tests that nothing panics on user input.
//!
//! A byte-level fuzzer mostly breaks a line's JSON, which only exercises the parser's
//! error path. The readers that come after it (the semantic facts, message lists,
//! tracebacks, error templates, rendering) only see lines that still parse, so most
//! mutations here keep the JSON valid and change what it says: a value of another type,
//! a string cut inside a multi-byte character's neighbourhood, a known attribute key with
//! an odd value, a number at the edge of its range. A few are byte-level, for the line
//! and UTF-8 checks. The same seed gives the same mutations, so a failure reproduces.

use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Number, Value};

/// Attribute keys the readers look at, in every dialect halo reads: a mutation that adds
/// one of them with an odd value reaches code a random key never would.
const KNOWN_KEYS: &[&str] = &[
    "openinference.span.kind",
    "input.value",
    "output.value",
    "input.mime_type",
    "llm.model_name",
    "llm.input_messages",
    "llm.input_messages.0.message.role",
    "llm.input_messages.0.message.content",
    "llm.input_messages.3.message.tool_calls.0.tool_call.function.name",
    "llm.input_messages.3.message.tool_calls.0.tool_call.function.arguments",
    "llm.output_messages.0.message.content",
    "llm.output_messages.0.message.tool_calls.0.tool_call.function.name",
    "llm.output_messages.0.message.tool_calls.99999999.tool_call.id",
    "llm.tools.0.tool.json_schema",
    "llm.token_count.prompt",
    "llm.token_count.completion",
    "llm.token_count.total",
    "llm.invocation_parameters",
    "llm.request.type",
    "llm.request.functions.0.name",
    "llm.usage.total_tokens",
    "tool.name",
    "tool.parameters",
    "tool_call.id",
    "exception.type",
    "exception.message",
    "exception.stacktrace",
    "http.status_code",
    "http.response.status_code",
    "error.type",
    "session.id",
    "user.id",
    "inference.llm.model_name",
    "inference.llm.input_tokens",
    "inference.llm.output_tokens",
    "inference.llm.cost.total",
    "inference.agent_name",
    "inference.observation_kind",
    "inference.project_id",
    "gen_ai.operation.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.name",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "gen_ai.tool.definitions",
    "gen_ai.response.finish_reasons",
    "gen_ai.agent.name",
    "gen_ai.prompt.0.content",
    "gen_ai.completion.0.tool_calls.0.name",
    "traceloop.span.kind",
    "traceloop.entity.name",
    "traceloop.entity.input",
    "traceloop.entity.output",
];

/// Strings that have broken text handling elsewhere: multi-byte characters (cut points
/// fall inside them), control bytes, escapes, JSON inside a string (message lists and
/// tool arguments are JSON in a string), tracebacks, status words and odd times.
const ODD_STRINGS: &[&str] = &[
    "",
    " ",
    "é",
    "日本語のテキスト",
    "🦀🦀",
    "\u{0}",
    "\u{1f}\u{7f}",
    "\\",
    "\"",
    "\u{feff}",
    "\r\n",
    "null",
    "[]",
    "{}",
    "[{",
    "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"function\":{\"name\":\"x\",\"arguments\":\"{\"}}]}",
    "[{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"hi 🦀\"}]},{\"role\":\"assistant\",\"parts\":[{\"type\":\"tool_call\",\"name\":\"\",\"arguments\":null}]}]",
    "[{\"role\":\"assistant\",\"parts\":[{\"type\":\"tool_call_response\",\"response\":[1,{\"a\":\"é\"}]}]}]",
    "[{\"type\":\"function\",\"function\":{\"name\":\"é\"}}]",
    "{\"output\": \"Agent stopped due to iteration limit or time limit.\"}",
    "Traceback (most recent call last):\n  File \"a.py\", line 429, in f\n    x()\nValueError: invalid literal for int() with base 10: 'é'",
    "Traceback (most recent call last):\n",
    "Error code: 429 - {'error': {'message': 'Rate limit é', 'code': 'rate_limit_exceeded'}}",
    "Error executing tool x: unexpected keyword argument 'é'",
    "STATUS_CODE_ERROR",
    "ERROR",
    "OK",
    "LLM",
    "TOOL",
    "AGENT",
    "execute_tool",
    "chat",
    "invoke_agent",
    "2026-01-01T00:00:00Z",
    "2026-13-45T99:99:99.99999999999999Z",
    "1969-12-31T23:59:59.999999999-23:59",
    "9999-12-31T23:59:59Z",
    "-1",
    "1e400",
    "NaN",
    "0x1F",
];

/// Numbers at the edges of what the readers convert: token counts, times, status codes.
fn odd_number(rng: &mut SmallRng) -> Value {
    let choices = [
        Value::from(0),
        Value::from(-1),
        Value::from(i64::MAX),
        Value::from(i64::MIN),
        Value::from(u64::MAX),
        Value::from(429),
        Value::from(1.5),
        Number::from_f64(1e308).map_or(Value::Null, Value::Number),
        Number::from_f64(-1e308).map_or(Value::Null, Value::Number),
        Number::from_f64(5e-324).map_or(Value::Null, Value::Number),
    ];
    choices.choose(rng).cloned().unwrap_or(Value::Null)
}

/// A source of mutated trace lines; the same seed gives the same lines.
#[derive(Debug)]
pub struct Mutator {
    rng: SmallRng,
}

impl Mutator {
    /// A mutator whose choices follow `seed`.
    pub fn new(seed: u64) -> Mutator {
        Mutator {
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// `line` with one to three mutations. Most keep it valid JSON (see the module's
    /// documentation); the result is always valid UTF-8.
    pub fn mutate(&mut self, line: &str) -> String {
        let rounds = self.rng.random_range(1..=3);
        let mut text = line.to_owned();
        for _ in 0..rounds {
            text = if self.rng.random_bool(0.95) {
                match serde_json::from_str::<Value>(&text) {
                    Ok(mut value) => {
                        self.mutate_value(&mut value, 0);
                        value.to_string()
                    }
                    Err(_) => self.mutate_text(&text),
                }
            } else {
                self.mutate_text(&text)
            };
        }
        text
    }

    /// `line`'s bytes with one byte-level change, which may leave them invalid UTF-8 (for
    /// files, whose lines are checked before they are parsed).
    pub fn mutate_bytes(&mut self, line: &[u8]) -> Vec<u8> {
        let mut bytes = line.to_vec();
        if bytes.is_empty() {
            return vec![0xff];
        }
        let at = self.rng.random_range(0..bytes.len());
        match self.rng.random_range(0..4) {
            0 => bytes[at] = self.rng.random(),
            1 => {
                bytes.remove(at);
            }
            2 => bytes.truncate(at),
            _ => bytes.insert(
                at,
                *[0xc3, 0xe6, 0xf0, 0x80, 0xff]
                    .choose(&mut self.rng)
                    .unwrap_or(&0xff),
            ),
        }
        bytes
    }

    /// A random character boundary of `text`, its end included.
    fn char_boundary(&mut self, text: &str) -> usize {
        let boundaries: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        *boundaries.choose(&mut self.rng).unwrap_or(&0)
    }

    /// One change at a random place of the line's text, kept on character boundaries.
    fn mutate_text(&mut self, text: &str) -> String {
        let at = self.char_boundary(text);
        let mut out = String::with_capacity(text.len() + 8);
        match self.rng.random_range(0..4) {
            0 => out.push_str(&text[..at]),
            1 => {
                out.push_str(&text[..at]);
                let next = text[at..].chars().next().map_or(0, char::len_utf8);
                out.push_str(&text[at + next..]);
            }
            _ => {
                out.push_str(&text[..at]);
                let piece = *[
                    "\"", "\\", "{", "}", "[", "]", ",", ":", "é", "🦀", "\\u0000", "\\ud800",
                    "1e999", "-", "null",
                ]
                .choose(&mut self.rng)
                .unwrap_or(&"\"");
                out.push_str(piece);
                out.push_str(&text[at..]);
            }
        }
        out
    }

    /// Walks down from `value` to a random place and changes what is there.
    fn mutate_value(&mut self, value: &mut Value, depth: usize) {
        // The top levels (the line, a span, its attribute list) are walked through: replacing
        // them whole only makes a line the parser refuses.
        let descend = depth < 3 || (depth < 12 && self.rng.random_bool(0.75));
        match value {
            Value::Object(map) if descend && !map.is_empty() => {
                // Mostly down the way to the attributes: a span's required fields broken
                // only test the parser's refusal, which is quick to reach.
                let towards_attributes = ["attributes", "resourceSpans", "scopeSpans", "spans"]
                    .into_iter()
                    .find(|k| map.contains_key(*k));
                let key = match towards_attributes {
                    Some(k) if self.rng.random_bool(0.8) => k.to_owned(),
                    _ => {
                        let keys: Vec<&String> = map.keys().collect();
                        keys.choose(&mut self.rng)
                            .map(|k| (*k).clone())
                            .unwrap_or_default()
                    }
                };
                if depth > 0 && self.rng.random_bool(0.15) {
                    self.mutate_object(map, &key);
                } else if let Some(child) = map.get_mut(&key) {
                    self.mutate_value(child, depth + 1);
                }
            }
            Value::Array(items) if descend && !items.is_empty() => {
                let at = self.rng.random_range(0..items.len());
                if self.rng.random_bool(0.1) {
                    let copy = items[at].clone();
                    items.insert(at, copy);
                } else {
                    self.mutate_value(&mut items[at], depth + 1);
                }
            }
            Value::String(text) if self.rng.random_bool(0.6) => self.mutate_string(text),
            _ => *value = self.odd_value(),
        }
    }

    /// Removes `key`, or adds a known attribute key with an odd value beside it (in an
    /// object of OTLP `{key, value}` pairs' shape when the object is one of those).
    fn mutate_object(&mut self, map: &mut Map<String, Value>, key: &str) {
        if self.rng.random_bool(0.3) {
            map.remove(key);
            return;
        }
        let known = (*KNOWN_KEYS.choose(&mut self.rng).unwrap_or(&"tool.name")).to_owned();
        let odd = self.odd_value();
        map.insert(known, odd);
    }

    /// A value of any JSON type, chosen for the trouble it causes.
    fn odd_value(&mut self) -> Value {
        match self.rng.random_range(0..8) {
            0 => Value::Null,
            1 => Value::Bool(self.rng.random()),
            2 | 3 => odd_number(&mut self.rng),
            4 => Value::Array(vec![self.odd_string(), odd_number(&mut self.rng)]),
            5 => {
                let mut map = Map::new();
                map.insert("stringValue".into(), self.odd_string());
                Value::Object(map)
            }
            _ => self.odd_string(),
        }
    }

    /// One of [`ODD_STRINGS`], sometimes repeated past the lengths the readers cut at.
    fn odd_string(&mut self) -> Value {
        let base = *ODD_STRINGS.choose(&mut self.rng).unwrap_or(&"");
        let text = if self.rng.random_bool(0.2) {
            let times = *[2, 100, 300, 1100, 5000]
                .choose(&mut self.rng)
                .unwrap_or(&2);
            base.repeat(times)
        } else {
            base.to_owned()
        };
        Value::String(text)
    }

    /// Cuts, grows or splices a string, at character boundaries.
    fn mutate_string(&mut self, text: &mut String) {
        let at = self.char_boundary(text);
        match self.rng.random_range(0..3) {
            0 => text.truncate(at),
            1 => {
                let piece = match self.odd_string() {
                    Value::String(s) => s,
                    _ => String::new(),
                };
                text.insert_str(at, &piece);
            }
            _ => {
                // Multi-byte characters right where readers cut heads (256, 512, 4096…).
                let pad = *[250, 254, 255, 510, 4094]
                    .choose(&mut self.rng)
                    .unwrap_or(&255);
                let mut grown = "x".repeat(pad);
                grown.push_str(&"é🦀".repeat(8));
                grown.push_str(text);
                *text = grown;
            }
        }
    }
}

/// A copy of the JSONL `data` in which about `fraction` of the lines are mutated (see
/// [`Mutator::mutate`]) and about one in twenty of those damaged byte by byte instead
/// ([`Mutator::mutate_bytes`]); the other lines are kept, so the traces around the damage
/// stay whole.
pub fn mutate_lines(data: &[u8], seed: u64, fraction: f64) -> Vec<u8> {
    let mut mutator = Mutator::new(seed);
    let mut out = Vec::with_capacity(data.len() + data.len() / 8);
    for line in data.split_inclusive(|&b| b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        if !mutator.rng.random_bool(fraction.clamp(0.0, 1.0)) {
            out.extend_from_slice(line);
            continue;
        }
        match std::str::from_utf8(body) {
            Ok(text) if !mutator.rng.random_bool(0.05) => {
                // A mutation that adds a line break splits the line, as a broken writer
                // would; the readers must cope with that too.
                out.extend_from_slice(mutator.mutate(text).as_bytes());
            }
            _ => out.extend_from_slice(&mutator.mutate_bytes(body)),
        }
        out.push(b'\n');
    }
    out
}
