//! Per-attempt state shared by both wire decoders.

use std::collections::HashMap;

use crate::types::{FinishReason, ToolCall, Usage};

#[derive(Debug, Default)]
struct Slot {
    id: String,
    name: String,
    arguments: String,
}

/// What one HTTP attempt has produced so far.
#[derive(Debug, Default)]
pub(crate) struct Attempt {
    /// Text deltas decoded but not yet handed to the caller.
    pub(crate) text_out: Vec<String>,
    slots: Vec<Slot>,
    slot_by_key: HashMap<String, usize>,
    /// Accumulated refusal text.
    pub(crate) refusal: String,
    pub(crate) usage: Option<Usage>,
    pub(crate) finish_reason: Option<FinishReason>,
    /// The provider said the response is complete.
    pub(crate) complete: bool,
    /// Any text was decoded in this attempt.
    pub(crate) saw_text: bool,
    /// A Chat Completions choice arrived (usage-only chunks carry none).
    pub(crate) saw_choice: bool,
    /// A Chat Completions `choices` list arrived, perhaps empty: the body is a completion,
    /// with or without an answer in it.
    pub(crate) saw_choices_list: bool,
    /// Server-sent events read in this attempt: none means the body was no event stream.
    pub(crate) events: usize,
}

/// An id for a call the provider sent without one, unique in the process: the ids go back
/// to the provider in the history, where two calls must not share one.
fn generated_call_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("call_halo_{n}")
}

impl Attempt {
    pub(crate) fn text(&mut self, delta: &str) {
        if !delta.is_empty() {
            self.saw_text = true;
            self.text_out.push(delta.to_owned());
        }
    }

    pub(crate) fn has_slot(&self, key: &str) -> bool {
        self.slot_by_key.contains_key(key)
    }

    pub(crate) fn has_tool_calls(&self) -> bool {
        !self.slots.is_empty()
    }

    /// Starts a new tool call under `key`, even if `key` was used before.
    pub(crate) fn new_slot(&mut self, key: &str) {
        self.slots.push(Slot::default());
        self.slot_by_key
            .insert(key.to_owned(), self.slots.len() - 1);
    }

    fn slot(&mut self, key: &str) -> &mut Slot {
        if !self.slot_by_key.contains_key(key) {
            self.new_slot(key);
        }
        let i = self.slot_by_key[key];
        &mut self.slots[i]
    }

    /// Merges an id: kept from the first delta that carries one.
    pub(crate) fn tool_id(&mut self, key: &str, id: &str) {
        let slot = self.slot(key);
        if slot.id.is_empty() {
            slot.id = id.to_owned();
        }
    }

    /// Merges a name: set by the first delta; later deltas that repeat it are
    /// ignored, other later pieces are appended.
    pub(crate) fn tool_name(&mut self, key: &str, name: &str) {
        let slot = self.slot(key);
        if slot.name.is_empty() {
            slot.name = name.to_owned();
        } else if slot.name != name {
            slot.name.push_str(name);
        }
    }

    pub(crate) fn tool_args_delta(&mut self, key: &str, delta: &str) {
        self.slot(key).arguments.push_str(delta);
    }

    /// Replaces the arguments with the provider's final, complete version.
    pub(crate) fn tool_args_final(&mut self, key: &str, arguments: &str) {
        self.slot(key).arguments = arguments.to_owned();
    }

    /// The assembled tool calls, in order; missing ids, and ids an earlier call of the
    /// same answer already has, are filled in (each result goes back under its call's
    /// id, and providers refuse a history where two share one).
    pub(crate) fn take_tool_calls(&mut self) -> Vec<ToolCall> {
        self.slot_by_key.clear();
        let mut seen = std::collections::HashSet::new();
        std::mem::take(&mut self.slots)
            .into_iter()
            .map(|s| ToolCall {
                id: if s.id.is_empty() || !seen.insert(s.id.clone()) {
                    generated_call_id()
                } else {
                    s.id
                },
                name: s.name,
                arguments: s.arguments,
            })
            .collect()
    }
}

impl Attempt {
    /// Whether the call under `key` has a name and complete JSON arguments, so a further
    /// name under the same key can only start another call (servers that send neither
    /// ids nor indexes, one whole call per chunk).
    pub(crate) fn slot_is_whole(&self, key: &str) -> bool {
        self.slot_by_key.get(key).is_some_and(|&i| {
            let s = &self.slots[i];
            !s.name.is_empty()
                && !s.arguments.trim().is_empty()
                && serde_json::from_str::<serde::de::IgnoredAny>(&s.arguments).is_ok()
        })
    }

    /// Gives the call with id `id` these arguments when it has none yet.
    pub(crate) fn fill_missing_arguments(&mut self, id: &str, arguments: &str) {
        for slot in self.slots.iter_mut().filter(|s| s.id == id) {
            if slot.arguments.trim().is_empty() {
                slot.arguments = arguments.to_owned();
            }
        }
    }

    /// The name recorded under `key`, if the key is known.
    pub(crate) fn slot_name(&self, key: &str) -> Option<&str> {
        self.slot_by_key
            .get(key)
            .map(|&i| self.slots[i].name.as_str())
    }

    /// The id recorded under `key`, if the key is known.
    pub(crate) fn slot_id(&self, key: &str) -> Option<&str> {
        self.slot_by_key
            .get(key)
            .map(|&i| self.slots[i].id.as_str())
    }
}
