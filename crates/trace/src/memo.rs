//! A per-thread memo for facts that are costly to read and repeat across spans.
//!
//! Every LLM span of an agent declares the same tool definitions, often kilobytes of
//! escaped JSON; decoding and parsing them once per distinct text instead of once per span
//! took a large share off index builds. The memo is keyed by the attribute's raw text
//! (compared in full, so a hash collision cannot return another list) and bounded.

use std::cell::RefCell;

use rustc_hash::FxHashMap;

/// Distinct texts kept per thread before the memo starts over.
const CAPACITY: usize = 256;

/// Texts shorter than this are read directly: memoizing them costs more than it saves.
const MIN_TEXT: usize = 256;

thread_local! {
    static TOOL_NAMES: RefCell<FxHashMap<Box<str>, Vec<String>>> =
        RefCell::new(FxHashMap::default());
}

/// The tool names of a tool-definition attribute whose raw text is `raw`, computed by
/// `read` the first time this thread sees the text.
pub(crate) fn tool_names(raw: &str, read: impl FnOnce() -> Vec<String>) -> Vec<String> {
    if raw.len() < MIN_TEXT {
        return read();
    }
    if let Some(names) = TOOL_NAMES.with_borrow(|memo| memo.get(raw).cloned()) {
        return names;
    }
    let names = read();
    TOOL_NAMES.with_borrow_mut(|memo| {
        if memo.len() >= CAPACITY {
            memo.clear();
        }
        memo.insert(raw.into(), names.clone());
    });
    names
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
    fn a_full_memo_starts_over_and_still_answers() {
        for i in 0..CAPACITY + 10 {
            let text = format!("{i:0>300}");
            assert_eq!(tool_names(&text, || vec![i.to_string()]), [i.to_string()]);
        }
        let first = format!("{:0>300}", 0);
        assert_eq!(tool_names(&first, || vec!["again".into()]), ["again"]);
    }
}
