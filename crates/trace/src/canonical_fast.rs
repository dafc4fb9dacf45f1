//! The fast reader of the canonical flat format: one pass of [`Scanner`] over the line,
//! producing exactly the [`RawSpan`] that the serde reader ([`parse_canonical_serde`])
//! would, or `None` to hand the line to it.
//!
//! The contract, checked by the differential tests below: whenever [`parse`] returns a
//! span, the serde reader returns `Ok` with an equal span. Anything unusual (duplicate
//! fields, a field of an unexpected type, deep nesting, tabs, an invalid timestamp) is
//! declined rather than interpreted, so error messages always come from one place.
//!
//! [`parse_canonical_serde`]: crate::span::parse_canonical_serde

use std::borrow::Cow;

use crate::attr::{AttrValue, Attributes, CowStr};
use crate::json_scan::{JsonStr, Scanner};
use crate::kind::StatusCode;
use crate::span::{nanos_of, status_code_of, RawSpan};
use crate::spare_buffers;

/// Reads a canonical line, or `None` when the serde reader should. `control_free` says
/// the caller has already checked the line for control bytes.
pub(crate) fn parse(line: &str, control_free: bool) -> Option<RawSpan<'_>> {
    let mut s = if control_free {
        Scanner::new_control_free(line)?
    } else {
        Scanner::new(line)?
    };
    let mut f = Fields::default();
    s.object(|s, key| f.member(s, key))?;
    if !s.at_end() {
        return None;
    }
    f.finish()
}

/// The top-level fields seen so far; a field seen twice declines the line, as serde's
/// derived reader rejects duplicates.
#[derive(Default)]
struct Fields<'a> {
    trace_id: Option<Cow<'a, str>>,
    span_id: Option<Cow<'a, str>>,
    parent_span_id: Option<Option<Cow<'a, str>>>,
    trace_state: Option<Option<Cow<'a, str>>>,
    name: Option<Option<Cow<'a, str>>>,
    kind: Option<Option<Cow<'a, str>>>,
    start_time: Option<Cow<'a, str>>,
    end_time: Option<Cow<'a, str>>,
    status: Option<Option<Status<'a>>>,
    resource: Option<Option<Attributes<'a>>>,
    scope: Option<Option<(Cow<'a, str>, Cow<'a, str>)>>,
    attributes: Option<Option<Attributes<'a>>>,
}

#[derive(Default)]
struct Status<'a> {
    code: Option<Option<&'a str>>,
    message: Option<Option<Cow<'a, str>>>,
}

/// Stores `value` in an empty slot; a full slot means a duplicate field.
fn fill<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

/// A string's text: borrowed, or decoded when it has escapes. `None` when an escape
/// does not decode (a lone surrogate), which serde rejects.
#[inline(always)]
fn text<'a>(line: &'a str, s: JsonStr<'a>) -> Option<Cow<'a, str>> {
    if s.escaped {
        decoded(line, s)
    } else {
        Some(Cow::Borrowed(s.inner))
    }
}

/// [`text`] of a string with escapes: rare in keys and top-level fields, so kept out of
/// line to leave the common case small enough to inline.
#[cold]
#[inline(never)]
fn decoded<'a>(line: &'a str, s: JsonStr<'a>) -> Option<Cow<'a, str>> {
    serde_json::from_str::<CowStr>(s.quoted(line))
        .ok()
        .map(|c| c.0)
}

fn string<'a>(s: &mut Scanner<'a>) -> Option<Cow<'a, str>> {
    let value = s.string()?;
    text(s.text(), value)
}

/// `null` or a string, as serde reads an `Option<Cow<str>>`.
fn optional_string<'a>(s: &mut Scanner<'a>) -> Option<Option<Cow<'a, str>>> {
    if s.null() {
        return Some(None);
    }
    string(s).map(Some)
}

/// A key that names a known field; escaped keys are decoded first, as serde does.
fn key_text<'a>(s: &Scanner<'a>, key: JsonStr<'a>) -> Option<Cow<'a, str>> {
    text(s.text(), key)
}

impl<'a> Fields<'a> {
    fn member(&mut self, s: &mut Scanner<'a>, key: JsonStr<'a>) -> Option<()> {
        match key_text(s, key)?.as_ref() {
            "trace_id" => fill(&mut self.trace_id, string(s)?),
            "span_id" => fill(&mut self.span_id, string(s)?),
            "parent_span_id" => fill(&mut self.parent_span_id, optional_string(s)?),
            "trace_state" => fill(&mut self.trace_state, optional_string(s)?),
            "name" => fill(&mut self.name, optional_string(s)?),
            "kind" => fill(&mut self.kind, optional_string(s)?),
            "start_time" => fill(&mut self.start_time, string(s)?),
            "end_time" => fill(&mut self.end_time, string(s)?),
            "status" => {
                let status = if s.null() { None } else { Some(status(s)?) };
                fill(&mut self.status, status)
            }
            "resource" => {
                let resource = if s.null() { None } else { Some(resource(s)?) };
                fill(&mut self.resource, resource)
            }
            "scope" => {
                let scope = if s.null() { None } else { Some(scope(s)?) };
                fill(&mut self.scope, scope)
            }
            // LLM spans carry 40-80 attributes (flattened messages and tool schemas);
            // starting big saves the reallocations.
            "attributes" => fill(
                &mut self.attributes,
                attributes(s, spare_buffers::attribute_list(64))?,
            ),
            _ => s.value().map(drop),
        }
    }

    fn finish(self) -> Option<RawSpan<'a>> {
        let trace_id = self.trace_id.filter(|t| !t.is_empty())?;
        let span_id = self.span_id.filter(|t| !t.is_empty())?;
        let start_ns = nanos_of("start_time", &self.start_time?).ok()?;
        let end_ns = nanos_of("end_time", &self.end_time?).ok()?;
        let (status_code, status_message) = match self.status.flatten() {
            Some(st) => (
                status_code_of(st.code.flatten()).ok()?,
                st.message.flatten().unwrap_or_default(),
            ),
            None => (StatusCode::Unset, Cow::Borrowed("")),
        };
        let (scope_name, scope_version) = self.scope.flatten().unwrap_or_default();
        Some(RawSpan {
            trace_id: crate::span::lower_hex_id(trace_id),
            span_id: crate::span::lower_hex_id(span_id),
            parent_span_id: crate::span::parent_or_none(self.parent_span_id.flatten()),
            trace_state: self.trace_state.flatten().unwrap_or_default(),
            name: self.name.flatten().unwrap_or_default(),
            otel_kind: self
                .kind
                .flatten()
                .unwrap_or(Cow::Borrowed("SPAN_KIND_INTERNAL")),
            start_ns,
            end_ns,
            status_code,
            status_message,
            resource: self.resource.flatten().unwrap_or_default(),
            scope_name,
            scope_version,
            attributes: self.attributes.flatten().unwrap_or_default(),
        })
    }
}

fn status<'a>(s: &mut Scanner<'a>) -> Option<Status<'a>> {
    let mut st = Status::default();
    s.object(|s, key| match key_text(s, key)?.as_ref() {
        "code" => {
            let raw = s.value()?;
            fill(&mut st.code, (raw != "null").then_some(raw))
        }
        "message" => fill(&mut st.message, optional_string(s)?),
        _ => s.value().map(drop),
    })?;
    Some(st)
}

/// `{"attributes": {...}}`; the resource's other members are ignored. A resource this
/// thread read lately is recalled instead (see [`resource_memo`]).
fn resource<'a>(s: &mut Scanner<'a>) -> Option<Attributes<'a>> {
    s.skip_spaces();
    let start = s.pos();
    if let Some((attrs, end)) = resource_memo::recall(s.text(), start) {
        s.skip_to(end);
        return Some(attrs);
    }
    let mut attrs: Option<Option<Attributes<'a>>> = None;
    s.object(|s, key| match key_text(s, key)?.as_ref() {
        // A service name, version and environment, typically.
        "attributes" => fill(&mut attrs, attributes(s, spare_buffers::resource_list(8))?),
        _ => s.value().map(drop),
    })?;
    let attrs = attrs.flatten().unwrap_or_default();
    resource_memo::keep(s.text(), start..s.pos(), &attrs);
    Some(attrs)
}

fn scope<'a>(s: &mut Scanner<'a>) -> Option<(Cow<'a, str>, Cow<'a, str>)> {
    let mut name = None;
    let mut version = None;
    s.object(|s, key| match key_text(s, key)?.as_ref() {
        "name" => fill(&mut name, optional_string(s)?),
        "version" => fill(&mut version, optional_string(s)?),
        _ => s.value().map(drop),
    })?;
    Some((
        name.flatten().unwrap_or_default(),
        version.flatten().unwrap_or_default(),
    ))
}

/// A flat attribute object (or `null`), keys in order, duplicates kept, read into `out`
/// (an empty list with room for the usual number of them).
fn attributes<'a>(
    s: &mut Scanner<'a>,
    mut out: Vec<(Cow<'a, str>, AttrValue<'a>)>,
) -> Option<Option<Attributes<'a>>> {
    if s.null() {
        return Some(None);
    }
    s.object(|s, key| {
        let key = key_text(s, key)?;
        // Strings are most values; the scanner already knows whether they have escapes.
        let value = match s.string_if_next() {
            Some(Some(text)) if text.escaped => AttrValue::RawStr(text.quoted(s.text())),
            Some(Some(text)) => AttrValue::Str(Cow::Borrowed(text.inner)),
            Some(None) => return None,
            None => AttrValue::from_json_text(s.value()?),
        };
        out.push((key, value));
        Some(())
    })?;
    Some(Some(Attributes(out)))
}

mod resource_memo;
#[cfg(test)]
mod tests;
