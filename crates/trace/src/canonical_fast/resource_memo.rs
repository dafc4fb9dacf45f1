//! Resource objects seen lately on this thread, recognized by their bytes.
//!
//! A file's spans come from a few services, and every line carries its service's resource
//! object word for word. Reading it again cost about a thirtieth of a span's parse. A
//! resource kept here is recognized by comparing bytes, and its attributes are rebuilt
//! from where they sat in its text. That is exact: a JSON object ends where its text
//! closes it, so a line whose value starts with a kept object's bytes holds that object,
//! and the line's escapes and control bytes were already checked as a whole.

use std::borrow::Cow;
use std::cell::RefCell;
use std::ops::Range;

use crate::attr::{AttrValue, Attributes};

/// How many resources a thread keeps, most recent first.
const KEPT: usize = 8;

/// Resource objects longer than this are not kept.
const MAX_TEXT: usize = 2048;

/// After this many misses in a row (a file whose resources all differ), the memo rests
/// for [`REST`] resources instead of paying for copies that are never used.
const MISSES_BEFORE_REST: u32 = 64;
const REST: u32 = 4096;

/// A value as a place in the kept text, or as itself.
#[derive(Clone)]
enum Value {
    Str(Range<usize>),
    RawStr(Range<usize>),
    Json(Range<usize>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
}

struct Resource {
    text: Box<[u8]>,
    attrs: Vec<(Range<usize>, Value)>,
}

#[derive(Default)]
struct Memo {
    kept: Vec<Resource>,
    misses: u32,
    resting: u32,
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::default();
}

/// The attributes of a kept resource whose text starts `line` at `at`, and where that
/// text ends.
pub(super) fn recall(line: &str, at: usize) -> Option<(Attributes<'_>, usize)> {
    MEMO.with_borrow_mut(|memo| {
        if memo.resting > 0 {
            memo.resting -= 1;
            return None;
        }
        let rest = &line.as_bytes()[at..];
        let Some(hit) = memo.kept.iter().position(|r| rest.starts_with(&r.text)) else {
            memo.misses += 1;
            if memo.misses >= MISSES_BEFORE_REST {
                memo.misses = 0;
                memo.resting = REST;
            }
            return None;
        };
        memo.misses = 0;
        let resource = &memo.kept[hit];
        let text = &line[at..at + resource.text.len()];
        let mut attrs = crate::spare_buffers::resource_list(resource.attrs.len());
        attrs.extend(resource.attrs.iter().map(|(key, value)| {
            let value = match value {
                Value::Str(r) => AttrValue::Str(Cow::Borrowed(&text[r.clone()])),
                Value::RawStr(r) => AttrValue::RawStr(&text[r.clone()]),
                Value::Json(r) => AttrValue::Json(Cow::Borrowed(&text[r.clone()])),
                Value::Int(i) => AttrValue::Int(*i),
                Value::Float(f) => AttrValue::Float(*f),
                Value::Bool(b) => AttrValue::Bool(*b),
                Value::Null => AttrValue::Null,
            };
            (Cow::Borrowed(&text[key.clone()]), value)
        }));
        if hit > 0 {
            // Most recent first, so that a file's usual service is found first.
            let found = memo.kept.remove(hit);
            memo.kept.insert(0, found);
        }
        Some((Attributes(attrs), at + text.len()))
    })
}

/// Keeps the resource read from `line[range]` as `attrs`, unless some of it is not
/// borrowed from the line (decoded keys) or it is long.
pub(super) fn keep(line: &str, range: Range<usize>, attrs: &Attributes<'_>) {
    if range.len() > MAX_TEXT {
        return;
    }
    let text = &line[range];
    let Some(kept) = attrs
        .0
        .iter()
        .map(|(key, value)| placed(text, key, value))
        .collect::<Option<Vec<_>>>()
    else {
        return;
    };
    MEMO.with_borrow_mut(|memo| {
        memo.kept.insert(
            0,
            Resource {
                text: text.as_bytes().into(),
                attrs: kept,
            },
        );
        memo.kept.truncate(KEPT);
    });
}

/// An attribute as places in `text`; `None` when part of it is not borrowed from there.
// The key is taken as a `Cow` because whether it is borrowed is the question.
#[allow(clippy::ptr_arg)]
fn placed(text: &str, key: &Cow<'_, str>, value: &AttrValue<'_>) -> Option<(Range<usize>, Value)> {
    let place = |part: &str| {
        let start = (part.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
        (start + part.len() <= text.len()).then(|| start..start + part.len())
    };
    let Cow::Borrowed(key) = key else { return None };
    let value = match value {
        AttrValue::Str(Cow::Borrowed(s)) => Value::Str(place(s)?),
        AttrValue::RawStr(s) => Value::RawStr(place(s)?),
        AttrValue::Json(Cow::Borrowed(s)) => Value::Json(place(s)?),
        AttrValue::Int(i) => Value::Int(*i),
        AttrValue::Float(f) => Value::Float(*f),
        AttrValue::Bool(b) => Value::Bool(*b),
        AttrValue::Null => Value::Null,
        AttrValue::Str(Cow::Owned(_)) | AttrValue::Json(Cow::Owned(_)) => return None,
    };
    Some((place(key)?, value))
}
