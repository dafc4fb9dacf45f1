//! Attribute values as both input formats carry them.
//!
//! The canonical format stores attributes as a flat JSON object; OTLP/JSON stores a list of
//! typed `{key, value: {stringValue|intValue|...}}` pairs. Both become an [`Attributes`]
//! list of [`AttrValue`]s that borrow from the input line wherever no unescaping is needed,
//! so reading a span allocates little.

use std::borrow::Cow;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// One attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue<'a> {
    /// A string.
    Str(Cow<'a, str>),
    /// A string still in its JSON form (quotes and escapes included), decoded only when
    /// read: most attribute values are never looked at, and unescaping them all while
    /// indexing would cost an allocation each.
    RawStr(&'a str),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// JSON `null`, or an absent OTLP value.
    Null,
    /// An array or object, kept as JSON text.
    Json(Cow<'a, str>),
}

impl<'a> AttrValue<'a> {
    /// Classifies a raw JSON value of the canonical format.
    pub fn from_raw_json(raw: &'a RawValue) -> AttrValue<'a> {
        AttrValue::from_json_text(raw.get())
    }

    /// Classifies the text of one valid JSON value (no surrounding white space).
    pub fn from_json_text(text: &'a str) -> AttrValue<'a> {
        match text.as_bytes().first() {
            Some(b'"') if memchr::memchr(b'\\', text.as_bytes()).is_none() => {
                AttrValue::Str(Cow::Borrowed(&text[1..text.len() - 1]))
            }
            Some(b'"') => AttrValue::RawStr(text),
            Some(b'n') => AttrValue::Null,
            Some(b't') => AttrValue::Bool(true),
            Some(b'f') => AttrValue::Bool(false),
            Some(b'[' | b'{') => AttrValue::Json(Cow::Borrowed(text)),
            _ => match text.parse::<i64>() {
                Ok(i) => AttrValue::Int(i),
                Err(_) => text
                    .parse::<f64>()
                    .map(AttrValue::Float)
                    .unwrap_or(AttrValue::Json(Cow::Borrowed(text))),
            },
        }
    }

    /// The value when it is a string (decoded), else `None`.
    pub fn string(&self) -> Option<Cow<'a, str>> {
        match self {
            AttrValue::Str(s) => Some(s.clone()),
            AttrValue::RawStr(raw) => Some(decode(raw)),
            _ => None,
        }
    }

    /// The value as text when it is a non-empty string, or a number or boolean rendered as
    /// text. `Null` and empty strings count as absent: exporters write both for "unset".
    pub fn as_text(&self) -> Option<Cow<'a, str>> {
        match self {
            AttrValue::RawStr(raw) => Some(decode(raw)).filter(|s| !s.is_empty()),
            AttrValue::Str(s) if s.is_empty() => None,
            AttrValue::Str(s) => Some(s.clone()),
            AttrValue::Int(i) => Some(Cow::Owned(i.to_string())),
            AttrValue::Float(f) => Some(Cow::Owned(f.to_string())),
            AttrValue::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            AttrValue::Json(j) => Some(j.clone()),
            AttrValue::Null => None,
        }
    }

    /// Like [`AttrValue::as_text`], but only the first `max` bytes or more are guaranteed:
    /// an escaped string is decoded only as far as needed. Callers cut the result with
    /// [`crate::head`], which gives the same text as cutting the fully decoded value.
    pub fn text_head(&self, max: usize) -> Option<Cow<'a, str>> {
        match self {
            AttrValue::RawStr(raw) => match decode_prefix(&raw[1..raw.len() - 1], max) {
                Some(text) => (!text.is_empty()).then_some(Cow::Owned(text)),
                None => self.as_text(),
            },
            other => other.as_text(),
        }
    }

    /// The value as an integer: integers, whole floats, and strings holding either.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            AttrValue::Int(i) => Some(*i),
            AttrValue::Float(f) => whole_f64_as_i64(*f),
            AttrValue::RawStr(_) => self.string()?.trim().parse::<i64>().ok(),
            AttrValue::Str(s) => s
                .trim()
                .parse::<i64>()
                .ok()
                .or_else(|| s.trim().parse::<f64>().ok().and_then(whole_f64_as_i64)),
            _ => None,
        }
    }

    /// The value as a float: numbers and numeric strings (costs are often strings).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            AttrValue::Int(i) => Some(*i as f64),
            AttrValue::Float(f) => Some(*f),
            AttrValue::Str(s) => s.trim().parse::<f64>().ok(),
            AttrValue::RawStr(_) => self.string()?.trim().parse::<f64>().ok(),
            _ => None,
        }
    }

    /// The value as a boolean: booleans and the strings `true`/`false`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            AttrValue::Bool(b) => Some(*b),
            AttrValue::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
            AttrValue::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    /// The value as a `serde_json::Value`, for rendering. JSON has no NaN or infinity: they
    /// are the strings protobuf's JSON mapping writes for them (see [`non_finite_name`]).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            AttrValue::Str(s) => serde_json::Value::String(s.to_string()),
            AttrValue::RawStr(raw) => serde_json::Value::String(decode(raw).into_owned()),
            AttrValue::Int(i) => serde_json::Value::from(*i),
            AttrValue::Float(f) => match non_finite_name(*f) {
                Some(name) => serde_json::Value::String(name.to_string()),
                None => serde_json::Value::from(*f),
            },
            AttrValue::Bool(b) => serde_json::Value::Bool(*b),
            AttrValue::Null => serde_json::Value::Null,
            AttrValue::Json(j) => serde_json::from_str(j).unwrap_or(serde_json::Value::Null),
        }
    }

    /// Detaches the value from the input line.
    pub fn into_owned(self) -> AttrValue<'static> {
        match self {
            AttrValue::Str(s) => AttrValue::Str(Cow::Owned(s.into_owned())),
            AttrValue::RawStr(raw) => AttrValue::Str(Cow::Owned(decode(raw).into_owned())),
            AttrValue::Json(s) => AttrValue::Json(Cow::Owned(s.into_owned())),
            AttrValue::Int(i) => AttrValue::Int(i),
            AttrValue::Float(f) => AttrValue::Float(f),
            AttrValue::Bool(b) => AttrValue::Bool(b),
            AttrValue::Null => AttrValue::Null,
        }
    }
}

/// Decodes a JSON string literal (quotes included); a malformed one is kept as written.
fn decode(raw: &str) -> Cow<'_, str> {
    match serde_json::from_str::<CowStr<'_>>(raw) {
        Ok(s) => s.0,
        Err(_) => Cow::Borrowed(raw),
    }
}

/// Decodes the escapes of a JSON string's inner text until more than `max` bytes are out
/// (or the text ends), then cuts on the last character boundary at or before `max`:
/// exactly [`crate::head`] of the full decoding. `None` for an escape it cannot decode (a
/// lone surrogate), which the caller leaves to serde.
///
/// Payloads are JSON in JSON, with an escape every few bytes: the text is copied eight
/// bytes at a time while the same word is searched for a backslash, where a `memchr` and
/// a copy call per plain run cost more than the run.
fn decode_prefix(inner: &str, max: usize) -> Option<String> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let bytes = inner.as_bytes();
    // Decoding never lengthens text, and a word or an escape writes at most 8 bytes past
    // an output of at most `max` bytes: this room is never exceeded.
    let mut out = vec![0u8; max.min(bytes.len()) + 16];
    let mut len = 0;
    let mut at = 0;
    // One byte past `max` tells whether `max` is a character boundary.
    while len <= max && at < bytes.len() {
        if let Some(word) = bytes.get(at..at + 8) {
            out[len..len + 8].copy_from_slice(word);
            // Zero bytes of `x` are backslashes; the lowest flagged byte is exact (a
            // borrow only runs upward from a zero byte).
            let x = u64::from_le_bytes(word.try_into().expect("eight bytes")) ^ (ONES * 0x5C);
            let backslashes = x.wrapping_sub(ONES) & !x & HIGHS;
            let plain = if backslashes == 0 {
                8
            } else {
                backslashes.trailing_zeros() as usize / 8
            };
            len += plain;
            at += plain;
            if plain == 8 {
                continue;
            }
        } else if bytes[at] != b'\\' {
            out[len] = bytes[at];
            len += 1;
            at += 1;
            continue;
        }
        let (ch, escape_len) = match bytes.get(at + 1)? {
            b'"' => ('"', 2),
            b'\\' => ('\\', 2),
            b'/' => ('/', 2),
            b'b' => ('\u{8}', 2),
            b'f' => ('\u{c}', 2),
            b'n' => ('\n', 2),
            b'r' => ('\r', 2),
            b't' => ('\t', 2),
            b'u' => unicode_escape(&inner[at..])?,
            _ => return None,
        };
        len += ch.encode_utf8(&mut out[len..len + 4]).len();
        at += escape_len;
    }
    out.truncate(len);
    if len > max {
        let mut end = max;
        // Back to the start of the character that `max` falls in (continuation bytes
        // are 0b10xxxxxx).
        while out[end] & 0xC0 == 0x80 {
            end -= 1;
        }
        out.truncate(end);
    }
    // SAFETY: `out` is a prefix of the decoding of `inner` (valid UTF-8, whose escapes
    // decode to whole characters): whole when the text ended, else cut above on a
    // character boundary, which drops any character the last word split.
    Some(unsafe { String::from_utf8_unchecked(out) })
}

/// Appends `text` to `out` until `out` holds at least `max` bytes, on a char boundary.
pub(crate) fn push_at_least(out: &mut String, text: &str, max: usize) {
    let need = max.saturating_sub(out.len());
    let mut end = need.min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    out.push_str(&text[..end]);
}

/// A `\uXXXX` escape (or a surrogate pair of two) at the start of `text`: the character
/// and how many bytes it took.
fn unicode_escape(text: &str) -> Option<(char, usize)> {
    let hex = |at: usize| {
        text.get(at..at + 4)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
    };
    let first = hex(2)?;
    if !(0xD800..0xE000).contains(&first) {
        return char::from_u32(first).map(|c| (c, 6));
    }
    if first >= 0xDC00 || !text[6..].starts_with("\\u") {
        return None;
    }
    let second = hex(8).filter(|s| (0xDC00..0xE000).contains(s))?;
    char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)).map(|c| (c, 12))
}

/// An ordered list of attributes, as they appeared in the input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributes<'a>(pub Vec<(Cow<'a, str>, AttrValue<'a>)>);

impl<'a> Attributes<'a> {
    /// The first value stored under `key`.
    pub fn get(&self, key: &str) -> Option<&AttrValue<'a>> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Iterates over the pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &AttrValue<'a>)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// The number of attributes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Detaches the list from the input line.
    pub fn into_owned(self) -> Attributes<'static> {
        Attributes(
            self.0
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k.into_owned()), v.into_owned()))
                .collect(),
        )
    }
}

/// A string that borrows from the input when it has no escapes (serde's own `Cow<str>`
/// always allocates).
#[derive(Debug)]
pub struct CowStr<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = CowStr<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(V(std::marker::PhantomData))
    }
}

/// Deserializes a canonical flat attribute object in one pass, without building a map.
impl<'de: 'a, 'a> serde::Deserialize<'de> for Attributes<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FlatMap<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for FlatMap<'a> {
            type Value = Attributes<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of attributes")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Attributes::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(key) = map.next_key::<CowStr<'a>>()? {
                    let raw: &'a RawValue = map.next_value()?;
                    out.push((key.0, AttrValue::from_raw_json(raw)));
                }
                Ok(Attributes(out))
            }
        }
        deserializer.deserialize_any(FlatMap(std::marker::PhantomData))
    }
}

/// A whole float as an integer, when it is one `i64` holds: `as` would saturate a number
/// past the range (a `u64::MAX` written as a float) into a plausible-looking `i64::MAX`.
fn whole_f64_as_i64(f: f64) -> Option<i64> {
    // 2^63 is exact as an f64; every whole float below it and from -2^63 up fits.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f)).then_some(f as i64)
}

/// The name of a float JSON cannot hold, as protobuf's JSON mapping writes it (`"NaN"`,
/// `"Infinity"`, `"-Infinity"`), or `None` for a finite one.
pub fn non_finite_name(f: f64) -> Option<&'static str> {
    match f {
        _ if f.is_nan() => Some("NaN"),
        f64::INFINITY => Some("Infinity"),
        f64::NEG_INFINITY => Some("-Infinity"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_past_i64_are_not_saturated_into_it() {
        for (value, expected) in [
            (AttrValue::Float(18446744073709551615.0), None),
            (AttrValue::Float(9223372036854775808.0), None),
            (AttrValue::Float(-9223372036854775808.0), Some(i64::MIN)),
            (AttrValue::Float(4096.0), Some(4096)),
            (AttrValue::Float(f64::NAN), None),
            (AttrValue::Float(f64::INFINITY), None),
            (AttrValue::Str("18446744073709551615".into()), None),
            (AttrValue::Str("1e3".into()), Some(1000)),
            (AttrValue::Str("1.5".into()), None),
        ] {
            assert_eq!(value.as_i64(), expected, "{value:?}");
        }
    }

    #[test]
    fn classifies_canonical_values() {
        let attrs: Attributes = serde_json::from_str(
            r#"{"a":"x","b":3,"c":1.5,"d":true,"e":null,"f":[1,2],"g":{"h":1},"i":"q\"uote","j":""}"#,
        )
        .unwrap();
        assert_eq!(attrs.get("a"), Some(&AttrValue::Str("x".into())));
        assert_eq!(attrs.get("b").unwrap().as_i64(), Some(3));
        assert_eq!(attrs.get("c").unwrap().as_f64(), Some(1.5));
        assert_eq!(attrs.get("d").unwrap().as_bool(), Some(true));
        assert_eq!(attrs.get("e"), Some(&AttrValue::Null));
        assert_eq!(attrs.get("f"), Some(&AttrValue::Json("[1,2]".into())));
        assert_eq!(attrs.get("g").unwrap().to_json()["h"], 1);
        assert_eq!(attrs.get("i").unwrap().as_text().unwrap(), "q\"uote");
        assert!(
            matches!(attrs.get("i"), Some(AttrValue::RawStr(_))),
            "escaped strings decode lazily"
        );
        assert_eq!(attrs.get("i").unwrap().to_json(), "q\"uote");
        assert!(matches!(
            attrs.get("a"),
            Some(AttrValue::Str(Cow::Borrowed("x")))
        ));
        assert_eq!(attrs.get("j").unwrap().as_text(), None);
    }

    #[test]
    fn heads_decode_only_what_they_need_and_match_full_decoding() {
        let texts = [
            "plain text that is long enough to be cut somewhere in the middle",
            "esc \\\" quote \\n line \\t tab \\\\ slash \\/ \\u00e9 \\ud83d\\ude00 end",
            "caf\u{e9}\u{e9}\u{e9} multibyte \u{1F600} at the cut",
            "",
        ];
        for inner in texts {
            let raw = format!("\"{inner}\"");
            let value = AttrValue::RawStr(&raw);
            let full = decode(&raw);
            for max in 0..full.len() + 3 {
                let got = value.text_head(max).unwrap_or_default();
                assert_eq!(
                    crate::head(&got, max),
                    crate::head(&full, max),
                    "{inner} at {max}"
                );
            }
        }
        let lone = AttrValue::RawStr(r#""bad \ud800 surrogate""#);
        assert_eq!(lone.text_head(100), lone.as_text());
    }

    #[test]
    fn heads_of_random_escape_dense_texts_match_full_decoding() {
        // Pieces that put escapes, multibyte characters and plain runs of every length
        // at every offset of the eight-byte words.
        const PIECES: [&str; 10] = [
            "a",
            "bcdefgh",
            "\\\"",
            "\\\\",
            "\\n",
            "\\u00e9",
            "\\ud83d\\ude00",
            "\u{e9}",
            "\u{1F600}",
            "0123456789abcdef",
        ];
        let mut rng = crate::test_rng::XorShift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..2_000 {
            let n = (rng.next() % 40) as usize;
            let inner: String = (0..n)
                .map(|_| PIECES[(rng.next() % PIECES.len() as u64) as usize])
                .collect();
            let raw = format!("\"{inner}\"");
            let full = decode(&raw);
            let value = AttrValue::RawStr(&raw);
            for max in 0..full.len() + 2 {
                let got = value.text_head(max).unwrap_or_default();
                assert!(got.len() <= max.max(full.len()), "{inner} at {max}");
                assert_eq!(
                    crate::head(&got, max),
                    crate::head(&full, max),
                    "{inner} at {max}"
                );
            }
        }
    }

    #[test]
    fn numeric_strings_read_as_numbers() {
        assert_eq!(AttrValue::Str("0.0012".into()).as_f64(), Some(0.0012));
        assert_eq!(AttrValue::Str("42".into()).as_i64(), Some(42));
        assert_eq!(AttrValue::Float(42.0).as_i64(), Some(42));
        assert_eq!(AttrValue::Float(f64::NAN).to_json(), "NaN");
        assert_eq!(AttrValue::Float(f64::NEG_INFINITY).to_json(), "-Infinity");
        assert_eq!(AttrValue::Float(0.5).to_json(), 0.5);
    }
}
