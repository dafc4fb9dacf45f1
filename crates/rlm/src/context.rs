//! Context management: size estimates, compaction units and the store of
//! compacted originals (`get_context_item`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use halo_provider::Message;

/// Prefix of the message that replaces compacted items.
pub(crate) const COMPACTED_PREFIX: &str = "[compacted context]";

/// Originals of compacted items, shared by every agent of a run.
#[derive(Debug, Default)]
pub(crate) struct ContextStore {
    items: Mutex<BTreeMap<String, String>>,
    next: AtomicU64,
}

impl ContextStore {
    pub(crate) fn from_items(items: BTreeMap<String, String>) -> Self {
        let next = items
            .keys()
            .filter_map(|k| k.strip_prefix("ctx-")?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        ContextStore {
            items: Mutex::new(items),
            next: AtomicU64::new(next),
        }
    }

    pub(crate) fn insert(&self, original: String) -> String {
        let id = format!("ctx-{}", self.next.fetch_add(1, Ordering::Relaxed) + 1);
        self.lock().insert(id.clone(), original);
        id
    }

    pub(crate) fn get(&self, id: &str) -> Option<String> {
        self.lock().get(id.trim()).cloned()
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<String, String> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Estimated tokens of a conversation (characters / 4).
pub(crate) fn estimate_tokens(messages: &[Message]) -> usize {
    let chars: usize = messages
        .iter()
        .map(|m| match m {
            Message::System { content } | Message::User { content } => content.len(),
            Message::Assistant {
                content,
                tool_calls,
            } => {
                content.len()
                    + tool_calls
                        .iter()
                        .map(|c| c.name.len() + c.arguments.len() + 16)
                        .sum::<usize>()
            }
            Message::Tool { content, .. } => content.len() + 16,
        })
        .sum();
    chars / 4
}

/// A compactable run of messages: `[start, end)`; `tool` when it is a tool
/// turn (an assistant message with tool calls and all its results).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unit {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) tool: bool,
}

/// Index of the first message after the head (system prompt and task), which
/// is never compacted.
pub(crate) fn head_len(messages: &[Message]) -> usize {
    messages
        .iter()
        .position(|m| matches!(m, Message::User { .. }))
        .map(|i| i + 1)
        .unwrap_or(messages.len())
}

/// Splits `messages[from..]` into units.
pub(crate) fn units(messages: &[Message], from: usize) -> Vec<Unit> {
    let mut out = Vec::new();
    let mut i = from;
    while i < messages.len() {
        match &messages[i] {
            Message::Assistant { tool_calls, .. } if !tool_calls.is_empty() => {
                let mut j = i + 1;
                while j < messages.len() && matches!(messages[j], Message::Tool { .. }) {
                    j += 1;
                }
                out.push(Unit {
                    start: i,
                    end: j,
                    tool: true,
                });
                i = j;
            }
            _ => {
                out.push(Unit {
                    start: i,
                    end: i + 1,
                    tool: false,
                });
                i += 1;
            }
        }
    }
    out
}

/// What a compaction keeps as it is: the most recent units, up to these counts and this
/// estimated size, the newest one always.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Keep {
    pub(crate) tool_turns: usize,
    pub(crate) plain: usize,
    pub(crate) tokens: usize,
}

/// The units to compact: the longest prefix of `units` (of `messages`) such that what
/// follows stays within `keep`. The size matters because a tool turn may carry a turn's
/// whole result budget: three such kept whole would be over the threshold by themselves,
/// and every turn would compact again without getting under it.
pub(crate) fn compactable(messages: &[Message], units: &[Unit], keep: Keep) -> usize {
    let (mut tools, mut plains, mut tokens) = (0, 0, 0);
    for (k, u) in units.iter().enumerate().rev() {
        if u.tool {
            tools += 1;
        } else {
            plains += 1;
        }
        tokens += estimate_tokens(&messages[u.start..u.end]);
        let newest = k + 1 == units.len();
        if tools > keep.tool_turns || plains > keep.plain || (!newest && tokens > keep.tokens) {
            return k + 1;
        }
    }
    0
}

/// The text of a unit, as stored for `get_context_item` and sent to the
/// compaction model.
pub(crate) fn render_unit(messages: &[Message]) -> (String, String) {
    let mut text = String::new();
    let mut label = String::from("message");
    for m in messages {
        match m {
            Message::System { content } => {
                let _ = writeln!(text, "system: {content}");
            }
            Message::User { content } => {
                let _ = writeln!(text, "user: {content}");
            }
            Message::Assistant {
                content,
                tool_calls,
            } => {
                if !content.is_empty() {
                    let _ = writeln!(text, "assistant: {content}");
                }
                if !tool_calls.is_empty() {
                    let names: Vec<&str> = tool_calls.iter().map(|c| c.name.as_str()).collect();
                    label = format!("tool turn: {}", names.join(", "));
                }
                for c in tool_calls {
                    let _ = writeln!(text, "tool call {} {}: {}", c.id, c.name, c.arguments);
                }
            }
            Message::Tool {
                tool_call_id,
                content,
            } => {
                let _ = writeln!(text, "tool result {tool_call_id}: {content}");
            }
        }
    }
    (label, text)
}

#[cfg(test)]
mod tests {
    use halo_provider::ToolCall;

    use super::*;

    /// The head, then `results` tool turns whose results are `chars` long each.
    fn conversation(results: &[usize]) -> Vec<Message> {
        let mut m = vec![Message::system("s"), Message::user("task")];
        for (k, &chars) in results.iter().enumerate() {
            let call = ToolCall {
                id: format!("c{k}"),
                name: "sql".into(),
                arguments: "{}".into(),
            };
            m.push(Message::assistant_with_tools("", vec![call]));
            m.push(Message::tool_result(format!("c{k}"), "x".repeat(chars)));
        }
        m
    }

    fn compactable_of(messages: &[Message], keep: Keep) -> usize {
        compactable(messages, &units(messages, head_len(messages)), keep)
    }

    #[test]
    fn kept_turns_are_bounded_by_count_and_by_size_and_the_newest_always_stays() {
        let keep = Keep {
            tool_turns: 3,
            plain: 12,
            tokens: 1_000,
        };
        // Small turns: the count decides.
        assert_eq!(compactable_of(&conversation(&[400; 5]), keep), 2);
        assert_eq!(compactable_of(&conversation(&[400; 3]), keep), 0);
        // Turns of 1,500 tokens each: only the newest fits, and it stays even though it
        // alone is over the size.
        assert_eq!(compactable_of(&conversation(&[6_000; 5]), keep), 4);
        assert_eq!(compactable_of(&conversation(&[6_000]), keep), 0);
        // Two small newest turns fit beside each other, the large one before them not.
        assert_eq!(
            compactable_of(&conversation(&[400, 6_000, 400, 400]), keep),
            2
        );
    }
}
