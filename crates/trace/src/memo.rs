//! A per-thread memo for facts that are costly to read and repeat across spans.
//!
//! Every LLM span of an agent declares the same tool definitions, often kilobytes of
//! escaped JSON; decoding and parsing them once per distinct text instead of once per span
//! took a large share off index builds. The memo is keyed by the attribute's raw text
//! (compared in full, so a hash collision cannot return another list) and bounded.

use std::borrow::Cow;
use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::ops::Range;

use rustc_hash::{FxHashMap, FxHasher};

/// Distinct texts kept per thread before the memo starts over.
const CAPACITY: usize = 256;

/// Texts shorter than this are read directly: memoizing them costs more than it saves.
const MIN_TEXT: usize = 256;

/// How many bytes at each end of a text its hash reads. Hashing kilobytes per lookup was
/// most of a lookup's cost; equal hashes are still compared in full.
const HASHED_END: usize = 64;

/// Texts kept per hash. Texts alike at both ends (a tool list with a date or an id in a
/// description) share a hash; past this many, such texts are read directly rather than
/// compared against ever more candidates.
const MAX_BUCKET: usize = 4;

/// A name as the memo keeps it.
enum Name {
    /// Where the name is written in the text as it reads (no escapes), so that a span
    /// whose text is the same borrows it from its own line.
    In(Range<usize>),
    /// A name that needed decoding.
    Decoded(Box<str>),
}

/// Texts with the same hash, each with its names.
type Bucket = Vec<(Box<str>, Vec<Name>)>;

thread_local! {
    static TOOL_NAMES: RefCell<(FxHashMap<u64, Bucket>, usize)> =
        RefCell::new((FxHashMap::default(), 0));
}

/// The hash of a text's length and its first and last [`HASHED_END`] bytes.
fn sampled_hash(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut hasher = FxHasher::default();
    bytes.len().hash(&mut hasher);
    bytes[..HASHED_END.min(bytes.len())].hash(&mut hasher);
    bytes[bytes.len().saturating_sub(HASHED_END)..].hash(&mut hasher);
    hasher.finish()
}

/// The tool names of a tool-definition attribute whose raw text is `raw`, computed by
/// `read` the first time this thread sees the text. A name written in `raw` as it reads
/// is borrowed from `raw`.
pub(crate) fn tool_names<'t>(
    raw: &'t str,
    read: impl FnOnce() -> Vec<String>,
) -> Vec<Cow<'t, str>> {
    if raw.len() < MIN_TEXT {
        return read().into_iter().map(Cow::Owned).collect();
    }
    let hash = sampled_hash(raw);
    let known = TOOL_NAMES.with_borrow(|(memo, _)| {
        let (_, names) = memo.get(&hash)?.iter().find(|(text, _)| **text == *raw)?;
        Some(
            names
                .iter()
                .map(|name| match name {
                    // `raw` equals the text the range was found in.
                    Name::In(range) => Cow::Borrowed(&raw[range.clone()]),
                    Name::Decoded(name) => Cow::Owned(name.to_string()),
                })
                .collect(),
        )
    });
    if let Some(names) = known {
        return names;
    }
    let names = read();
    let kept = names
        .iter()
        .map(
            |name| match memchr::memmem::find(raw.as_bytes(), name.as_bytes()) {
                // Any place the name is written gives the same text.
                Some(at) if !name.is_empty() => Name::In(at..at + name.len()),
                _ => Name::Decoded(name.as_str().into()),
            },
        )
        .collect();
    TOOL_NAMES.with_borrow_mut(|(memo, texts)| {
        if *texts >= CAPACITY {
            memo.clear();
            *texts = 0;
        }
        let bucket = memo.entry(hash).or_default();
        if bucket.len() < MAX_BUCKET {
            bucket.push((raw.into(), kept));
            *texts += 1;
        }
    });
    names.into_iter().map(Cow::Owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_long_text_once_and_short_texts_every_time() {
        let long = "x".repeat(MIN_TEXT);
        let mut reads = 0;
        for _ in 0..3 {
            let names = tool_names(&long, || {
                reads += 1;
                vec!["a".to_string()]
            });
            assert_eq!(names, ["a"]);
        }
        assert_eq!(reads, 1);
        let mut short_reads = 0;
        for _ in 0..3 {
            tool_names("short", || {
                short_reads += 1;
                Vec::new()
            });
        }
        assert_eq!(short_reads, 3);
    }

    #[test]
    fn names_written_as_they_read_are_borrowed_and_others_decoded() {
        let text = format!("[\"get_weather\", \"caf\\u00e9\"] {}", " ".repeat(MIN_TEXT));
        let read = || vec!["get_weather".to_string(), "caf\u{e9}".to_string()];
        let first = tool_names(&text, read);
        let again = tool_names(&text, || unreachable!("read once"));
        assert_eq!(first, again);
        assert_eq!(again, ["get_weather", "caf\u{e9}"]);
        assert!(matches!(again[0], Cow::Borrowed(_)));
        assert!(matches!(again[1], Cow::Owned(_)));
    }

    #[test]
    fn texts_alike_at_both_ends_are_told_apart() {
        // Same length and the same 64 bytes at each end: the same sampled hash.
        let a = format!("{}a{}", "x".repeat(300), "y".repeat(300));
        let b = format!("{}b{}", "x".repeat(300), "y".repeat(300));
        assert_eq!(sampled_hash(&a), sampled_hash(&b));
        assert_eq!(tool_names(&a, || vec!["from_a".into()]), ["from_a"]);
        assert_eq!(tool_names(&b, || vec!["from_b".into()]), ["from_b"]);
        assert_eq!(tool_names(&a, || unreachable!("memoized")), ["from_a"]);
        // Many such texts: each still gets its own names, and past the bucket's room they
        // are read every time instead of compared against a growing list.
        let texts: Vec<String> = (0..10)
            .map(|i| format!("{}{i}{}", "x".repeat(300), "y".repeat(300)))
            .collect();
        let mut reads = 0;
        for _ in 0..2 {
            for (i, text) in texts.iter().enumerate() {
                let names = tool_names(text, || {
                    reads += 1;
                    vec![format!("n{i}")]
                });
                assert_eq!(names, [format!("n{i}")]);
            }
        }
        // The first pass reads all ten; the second only those that found no room.
        assert!(reads > 10 && reads < 20, "{reads}");
    }

    #[test]
    fn a_full_memo_starts_over_and_still_answers() {
        for i in 0..CAPACITY + 10 {
            let text = format!("{i:0>300}");
            assert_eq!(tool_names(&text, || vec![i.to_string()]), [i.to_string()]);
        }
        let first = format!("{:0>300}", 0);
        assert_eq!(tool_names(&first, || vec!["again".into()]), ["again"]);
    }
}
