//! Buffers handed from each parsed line to the next on the same thread.
//!
//! A canonical line becomes a list of one span and an attribute list of a few kilobytes
//! (40-80 pairs for an LLM span, room for 64 reserved up front); both were allocated for
//! every line and freed right after its facts were read. The index build gives them back
//! ([`crate::ParsedLine::recycle`]) and the next line's reader takes them
//! ([`attribute_list`], [`span_list`]), so the same warm buffers serve a whole chunk.
//! The resource's attribute list has a spare of its own ([`resource_list`]): it is read
//! before the span's attributes, and taking the one spare would leave those to allocate.

use std::borrow::Cow;
use std::cell::Cell;
use std::ops::Range;

use crate::attr::{AttrValue, Attributes};
use crate::span::RawSpan;

/// One attribute pair.
type Pair<'a> = (Cow<'a, str>, AttrValue<'a>);

/// One span of a line, with where its JSON is in the line.
type LineSpan<'a> = (RawSpan<'a>, Range<usize>);

/// Lists longer than this many pairs are not kept: one huge span should not pin its
/// buffer for the rest of the build.
const MAX_KEPT_PAIRS: usize = 1024;

/// Span lists longer than this (OTLP lines of many spans) are not kept.
const MAX_KEPT_SPANS: usize = 64;

thread_local! {
    static ATTRIBUTE_LIST: Cell<Vec<Pair<'static>>> = const { Cell::new(Vec::new()) };
    static RESOURCE_LIST: Cell<Vec<Pair<'static>>> = const { Cell::new(Vec::new()) };
    static SPAN_LIST: Cell<Vec<LineSpan<'static>>> = const { Cell::new(Vec::new()) };
}

/// An empty attribute list with room for at least `capacity` pairs: the thread's spare
/// one when it is big enough.
pub(crate) fn attribute_list<'a>(capacity: usize) -> Vec<Pair<'a>> {
    spare_list(&ATTRIBUTE_LIST, capacity)
}

/// [`attribute_list`] for a resource's attributes.
pub(crate) fn resource_list<'a>(capacity: usize) -> Vec<Pair<'a>> {
    spare_list(&RESOURCE_LIST, capacity)
}

fn spare_list<'a>(
    spare: &'static std::thread::LocalKey<Cell<Vec<Pair<'static>>>>,
    capacity: usize,
) -> Vec<Pair<'a>> {
    let spare = spare.take();
    if spare.capacity() >= capacity {
        relabel(spare)
    } else {
        Vec::with_capacity(capacity)
    }
}

/// An empty span list: the thread's spare one, if any.
pub(crate) fn span_list<'a>() -> Vec<LineSpan<'a>> {
    relabel(SPAN_LIST.take())
}

/// `list`'s buffer, emptied, for elements that borrow from another line. An empty
/// vector's elements are never touched, so the map below never runs, and collecting a
/// vector's own iterator into a vector of a type of the same layout (the same type under
/// other lifetimes, here) reuses its buffer.
fn relabel<A, B>(mut list: Vec<A>) -> Vec<B> {
    list.clear();
    list.into_iter()
        .map(|_| unreachable!("the list was emptied"))
        .collect()
}

impl Attributes<'_> {
    /// Gives this list's buffer to the next span this thread reads (see the module docs).
    pub fn recycle(self) {
        self.recycle_into(&ATTRIBUTE_LIST);
    }

    fn recycle_into(self, spare: &'static std::thread::LocalKey<Cell<Vec<Pair<'static>>>>) {
        if self.0.capacity() <= MAX_KEPT_PAIRS {
            spare.set(relabel(self.0));
        }
    }
}

/// Gives the buffers of `spans` (the list and each span's attribute list) to the next
/// line this thread reads.
pub(crate) fn recycle_spans(mut spans: Vec<LineSpan<'_>>) {
    for (span, _) in spans.drain(..) {
        span.attributes.recycle();
        span.resource.recycle_into(&RESOURCE_LIST);
    }
    if spans.capacity() <= MAX_KEPT_SPANS {
        SPAN_LIST.set(relabel(spans));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recycled_list_comes_back_empty_with_its_buffer() {
        let line = String::from("{}");
        let mut list = attribute_list(64);
        list.push((Cow::Borrowed(&line[..1]), AttrValue::Int(1)));
        let buffer = list.as_ptr() as usize;
        Attributes(list).recycle();
        drop(line);
        let again: Vec<Pair<'_>> = attribute_list(64);
        assert!(again.is_empty());
        assert!(again.capacity() >= 64);
        assert_eq!(
            again.as_ptr() as usize,
            buffer,
            "the same buffer is handed out"
        );
        // Taken: the next list is a new one.
        let other: Vec<Pair<'_>> = attribute_list(64);
        assert_ne!(other.as_ptr() as usize, buffer);
    }

    #[test]
    fn huge_lists_are_not_kept_and_small_spares_are_not_used() {
        Attributes(Vec::with_capacity(MAX_KEPT_PAIRS + 1)).recycle();
        assert!(attribute_list(1).capacity() < MAX_KEPT_PAIRS + 1);
        Attributes(Vec::with_capacity(4)).recycle();
        assert!(attribute_list(64).capacity() >= 64);
    }

    #[test]
    fn a_line_gives_back_its_span_list_and_each_attribute_list() {
        let line = r#"{"trace_id":"t","span_id":"s","start_time":"2025-01-01T00:00:00Z","end_time":"2025-01-01T00:00:01Z","attributes":{"a":1}}"#;
        let parsed = crate::parse_line(line).unwrap();
        let spans = parsed.spans.as_ptr() as usize;
        let attrs = parsed.spans[0].0.attributes.0.as_ptr() as usize;
        parsed.recycle();
        let parsed = crate::parse_line(line).unwrap();
        assert_eq!(parsed.spans.as_ptr() as usize, spans);
        assert_eq!(parsed.spans[0].0.attributes.0.as_ptr() as usize, attrs);
        assert_eq!(
            parsed.spans[0].0.attributes.get("a"),
            Some(&AttrValue::Int(1))
        );
    }

    #[test]
    fn a_span_gives_back_its_resource_list_too_whether_read_or_recalled() {
        let line = r#"{"trace_id":"t","span_id":"s","start_time":"2025-01-01T00:00:00Z","end_time":"2025-01-01T00:00:01Z","resource":{"attributes":{"service.name":"spare-test"}},"attributes":{"a":1}}"#;
        // The first read keeps the resource; the next ones recall it.
        let mut seen = Vec::new();
        for _ in 0..3 {
            let parsed = crate::parse_line(line).unwrap();
            let span = &parsed.spans[0].0;
            assert_eq!(
                span.resource
                    .get("service.name")
                    .and_then(|v| v.as_text())
                    .as_deref(),
                Some("spare-test")
            );
            assert_eq!(span.attributes.get("a"), Some(&AttrValue::Int(1)));
            seen.push((
                span.resource.0.as_ptr() as usize,
                span.attributes.0.as_ptr() as usize,
            ));
            parsed.recycle();
        }
        assert_eq!(seen[1], seen[2], "both lists come back for the next line");
        assert_ne!(seen[2].0, seen[2].1, "each list has its own spare");
    }
}
