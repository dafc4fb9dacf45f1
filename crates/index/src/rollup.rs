//! Per-trace rollups: what overview, query and count answer from without touching spans.

use std::sync::Arc;

use halo_trace::{error_template, SpanKind};

use crate::span_view::SpanColumns;

/// Calls and errors of one tool within a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolUsage {
    /// Tool name.
    pub name: Arc<str>,
    /// Tool spans with this name.
    pub calls: u32,
    /// Of those, error spans.
    pub errors: u32,
}

/// Error spans of one error group within a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorGroupCount {
    /// The group label: what failed and the masked message (see [`error_group_label`]).
    pub group: Arc<str>,
    /// Error spans in the group.
    pub spans: u32,
}

/// Where a trace's spans are: rows of one segment's span table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracePart {
    /// Index of the segment within the dataset.
    pub segment: u32,
    /// Row numbers within that segment's span table, in file order.
    pub rows: Vec<u32>,
}

/// The rollup of one trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSummary {
    /// Trace id.
    pub trace_id: String,
    /// Spans, duplicates included.
    pub span_count: u32,
    /// Earliest span start, Unix ns.
    pub start_ns: i64,
    /// Latest span end, Unix ns.
    pub end_ns: i64,
    /// Name of the root span (the earliest span without a parent; else the earliest span
    /// whose parent is missing).
    pub root_span_name: String,
    /// Whether the root came from a span without a parent.
    pub has_root: bool,
    /// Spans with OTel status ERROR.
    pub error_span_count: u32,
    /// Error spans of kind TOOL.
    pub tool_error_span_count: u32,
    /// Service names seen, sorted.
    pub services: Vec<Arc<str>>,
    /// Models seen, sorted.
    pub models: Vec<Arc<str>>,
    /// Agent names seen, sorted.
    pub agents: Vec<Arc<str>>,
    /// Tools called, sorted by name.
    pub tools: Vec<ToolUsage>,
    /// Input tokens of the trace's model calls (see [`TraceSummary::tokens_from_calls`]).
    pub input_tokens: i64,
    /// Output tokens of the trace's model calls.
    pub output_tokens: i64,
    /// Total tokens of the trace's model calls.
    pub total_tokens: i64,
    /// Whether the token sums come from spans other than agents and chains. Agent and
    /// chain spans often carry the usage of the calls under them (the GenAI conventions
    /// put it on `invoke_agent`), so adding them to their calls would count tokens twice;
    /// their tokens count only in a trace where no other span has any.
    pub tokens_from_calls: bool,
    /// Input, output and total tokens on agent and chain spans, kept so that parts of a
    /// trace in other files merge by the same rule.
    pub aggregate_tokens: [i64; 3],
    /// Cost over the spans that carry one; `None` when none does.
    pub cost: Option<f64>,
    /// How many spans carry a cost, so a total can say what it covers.
    pub priced_span_count: u32,
    /// Spans whose parent id is set but not among the trace's spans.
    pub missing_parent_count: u32,
    /// Spans whose id repeats an earlier span's id in the trace.
    pub duplicate_span_count: u32,
    /// First session id seen.
    pub session_id: Option<String>,
    /// First user id seen.
    pub user_id: Option<String>,
    /// First project id seen.
    pub project_id: Option<String>,
    /// Bytes of the trace's spans in the source.
    pub raw_bytes: u64,
    /// LLM spans.
    pub llm_call_count: u32,
    /// Tool spans.
    pub tool_call_count: u32,
    /// Error groups, sorted by label.
    pub error_groups: Vec<ErrorGroupCount>,
    /// The root's outcome marker, else the first one seen.
    pub outcome: Option<String>,
    /// Where the spans are.
    pub parts: Vec<TracePart>,
}

impl TraceSummary {
    /// Whether any span is an error span (the reference's `has_errors`).
    pub fn has_errors(&self) -> bool {
        self.error_span_count > 0
    }

    /// End minus start, in milliseconds.
    pub fn duration_ms(&self) -> f64 {
        self.end_ns.saturating_sub(self.start_ns).max(0) as f64 / 1e6
    }
}

/// The label an error span is grouped under: `tool NAME: TEMPLATE` for tools, else
/// `KIND: TEMPLATE` (with the error type in front of the template when the message does not
/// already say it).
pub fn error_group_label(
    kind: &str,
    tool_name: Option<&str>,
    error_type: Option<&str>,
    error_message: Option<&str>,
) -> String {
    let what = match tool_name {
        Some(t) if kind == SpanKind::Tool.as_str() => format!("tool {t}"),
        _ => kind.to_ascii_lowercase(),
    };
    let text = match (error_type, error_message) {
        (Some(t), Some(m)) if !m.contains(t) => format!("{t}: {m}"),
        (_, Some(m)) => m.to_string(),
        (Some(t), None) => t.to_string(),
        (None, None) => "(no message)".to_string(),
    };
    format!("{what}: {}", error_template(&text))
}

/// Shares equal strings as one `Arc<str>`, and remembers the group label of each error
/// seen (see [`Interner::error_group`]).
#[derive(Debug, Default)]
pub struct Interner {
    strings: rustc_hash::FxHashMap<Box<str>, Arc<str>>,
    /// Error group labels by what they were made from (see [`Interner::error_group`]).
    error_groups: rustc_hash::FxHashMap<Box<[u8]>, Arc<str>>,
    /// The key of the error being looked up, in a buffer kept between lookups.
    error_key: Vec<u8>,
    /// Bytes of the keys and labels in `error_groups`.
    error_bytes: usize,
}

/// How many bytes of error keys and labels are remembered; past that (a dataset whose every
/// message differs), labels are made afresh instead of filling memory.
const REMEMBERED_ERROR_BYTES: usize = 4 << 20;

impl Interner {
    /// The shared copy of `s`.
    pub fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.strings.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.strings.insert(Box::from(s), a.clone());
        a
    }

    /// The shared [`error_group_label`] of an error span. Masking a message costs thousands
    /// of instructions, and most error spans repeat a message seen before (2,833 different
    /// errors among 6,381 error spans in the benchmark's 1 GB).
    pub(crate) fn error_group(
        &mut self,
        kind: &str,
        tool_name: Option<&str>,
        error_type: Option<&str>,
        error_message: Option<&str>,
    ) -> Arc<str> {
        // Each part with its length in front (absent ones with a length no text has), so
        // that different parts never make the same key.
        let key = &mut self.error_key;
        key.clear();
        for part in [Some(kind), tool_name, error_type, error_message] {
            match part {
                Some(text) => {
                    key.extend_from_slice(&(text.len() as u64).to_le_bytes());
                    key.extend_from_slice(text.as_bytes());
                }
                None => key.extend_from_slice(&u64::MAX.to_le_bytes()),
            }
        }
        if let Some(label) = self.error_groups.get(key.as_slice()) {
            return label.clone();
        }
        let label = error_group_label(kind, tool_name, error_type, error_message);
        let label = self.get(&label);
        let bytes = self.error_key.len() + label.len();
        if self.error_bytes + bytes <= REMEMBERED_ERROR_BYTES {
            self.error_bytes += bytes;
            let key: Box<[u8]> = Box::from(self.error_key.as_slice());
            self.error_groups.insert(key, label.clone());
        }
        label
    }
}

/// Adds `value` to a sorted set, interned only when it is new: the spans of a trace
/// mostly repeat their service, model and agent, and hashing each to find its shared copy
/// cost more than looking it up in the trace's short list.
fn add_sorted(set: &mut Vec<Arc<str>>, value: &str, interner: &mut Interner) {
    if let Err(i) = set.binary_search_by(|had| had.as_ref().cmp(value)) {
        set.insert(i, interner.get(value));
    }
}

/// Adds an already shared `value` to a sorted set.
fn insert_sorted(set: &mut Vec<Arc<str>>, value: Arc<str>) {
    if let Err(i) = set.binary_search(&value) {
        set.insert(i, value);
    }
}

impl TraceSummary {
    /// A trace whose only tokens are on agent and chain spans reports those.
    fn settle_tokens(&mut self) {
        if !self.tokens_from_calls {
            [self.input_tokens, self.output_tokens, self.total_tokens] = self.aggregate_tokens;
        }
    }
}

/// A trace's rollup while it is being built.
#[derive(Debug)]
pub(crate) struct TraceAcc {
    pub(crate) summary: TraceSummary,
    span_hashes: Vec<u64>,
    parent_hashes: Vec<u64>,
    root_start: Option<(bool, i64)>,
    outcome_from_root: bool,
}

fn hash_id(s: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(s.as_bytes())
}

/// Room a trace's per-span lists start with: agent traces hold a dozen spans or so, and
/// growing three lists from nothing to that size took three reallocations each, a
/// quarter of a million per GB of input.
const SPANS_EXPECTED: usize = 16;

impl TraceAcc {
    pub(crate) fn new(trace_id: &str, segment: u32) -> TraceAcc {
        TraceAcc {
            summary: TraceSummary {
                trace_id: trace_id.to_string(),
                span_count: 0,
                start_ns: i64::MAX,
                end_ns: i64::MIN,
                root_span_name: String::new(),
                has_root: false,
                error_span_count: 0,
                tool_error_span_count: 0,
                services: Vec::new(),
                models: Vec::new(),
                agents: Vec::new(),
                tools: Vec::new(),
                input_tokens: 0,
                output_tokens: 0,
                total_tokens: 0,
                tokens_from_calls: false,
                aggregate_tokens: [0; 3],
                cost: None,
                priced_span_count: 0,
                missing_parent_count: 0,
                duplicate_span_count: 0,
                session_id: None,
                user_id: None,
                project_id: None,
                raw_bytes: 0,
                llm_call_count: 0,
                tool_call_count: 0,
                error_groups: Vec::new(),
                outcome: None,
                parts: vec![TracePart {
                    segment,
                    rows: Vec::with_capacity(SPANS_EXPECTED),
                }],
            },
            span_hashes: Vec::with_capacity(SPANS_EXPECTED),
            parent_hashes: Vec::with_capacity(SPANS_EXPECTED),
            root_start: None,
            outcome_from_root: false,
        }
    }

    /// Adds span `i` of a batch whose first row is segment row `row_base`.
    pub(crate) fn add(
        &mut self,
        c: &SpanColumns<'_>,
        i: usize,
        segment_row: u32,
        interner: &mut Interner,
    ) {
        let s = &mut self.summary;
        s.span_count += 1;
        s.parts[0].rows.push(segment_row);
        let start = c.start_time.value(i);
        let end = c.end_time.value(i);
        s.start_ns = s.start_ns.min(start);
        s.end_ns = s.end_ns.max(end);
        let parent = c.parent_span_id.value(i);
        let is_root = parent.is_empty();
        self.span_hashes.push(hash_id(c.span_id.value(i)));
        if !is_root {
            self.parent_hashes.push(hash_id(parent));
        }
        // Root candidates: parentless spans beat orphans; earlier beats later.
        let candidate = (is_root, start);
        let better = match self.root_start {
            None => true,
            Some((had_root, t)) => (is_root && !had_root) || (is_root == had_root && start < t),
        };
        if better {
            self.root_start = Some(candidate);
            // Reusing the name's buffer: spans often beat the root found before them.
            s.root_span_name.clear();
            s.root_span_name.push_str(c.name.value(i));
            s.has_root = is_root;
        }
        let kind = c.kind.value(i);
        let is_error = c.is_error.value(i);
        let is_tool = kind == SpanKind::Tool.as_str();
        if kind == SpanKind::Llm.as_str() {
            s.llm_call_count += 1;
        }
        if is_error {
            s.error_span_count += 1;
            if is_tool {
                s.tool_error_span_count += 1;
            }
            let label = interner.error_group(
                kind,
                SpanColumns::opt(c.tool_name, i),
                SpanColumns::opt(c.error_type, i),
                SpanColumns::opt(c.error_message, i),
            );
            match s
                .error_groups
                .binary_search_by(|g| g.group.as_ref().cmp(&label))
            {
                Ok(j) => s.error_groups[j].spans += 1,
                Err(j) => s.error_groups.insert(
                    j,
                    ErrorGroupCount {
                        group: label,
                        spans: 1,
                    },
                ),
            }
        }
        if is_tool {
            s.tool_call_count += 1;
        }
        if let Some(tool) = SpanColumns::opt(c.tool_name, i).filter(|_| is_tool) {
            match s.tools.binary_search_by(|t| t.name.as_ref().cmp(tool)) {
                Ok(j) => {
                    s.tools[j].calls += 1;
                    s.tools[j].errors += u32::from(is_error);
                }
                Err(j) => s.tools.insert(
                    j,
                    ToolUsage {
                        name: interner.get(tool),
                        calls: 1,
                        errors: u32::from(is_error),
                    },
                ),
            }
        }
        if let Some(v) = SpanColumns::opt(c.service_name, i) {
            add_sorted(&mut s.services, v, interner);
        }
        if let Some(v) = SpanColumns::opt(c.model, i) {
            add_sorted(&mut s.models, v, interner);
        }
        if let Some(v) = SpanColumns::opt(c.agent_name, i) {
            add_sorted(&mut s.agents, v, interner);
        }
        let tokens = [
            SpanColumns::opt_i64(c.input_tokens, i),
            SpanColumns::opt_i64(c.output_tokens, i),
            SpanColumns::opt_i64(c.total_tokens, i),
        ];
        if tokens.iter().any(Option::is_some) {
            let [input, output, total] = tokens.map(|t| t.unwrap_or(0));
            if kind == SpanKind::Agent.as_str() || kind == SpanKind::Chain.as_str() {
                let a = &mut s.aggregate_tokens;
                (a[0], a[1], a[2]) = (
                    a[0].saturating_add(input),
                    a[1].saturating_add(output),
                    a[2].saturating_add(total),
                );
            } else if input != 0 || output != 0 || total != 0 {
                // Zeros (a call streamed without usage) say nothing about the tokens.
                s.tokens_from_calls = true;
                // Saturating: counts near `i64::MAX` in the data must not wrap to
                // negative totals (or panic in a debug build).
                s.input_tokens = s.input_tokens.saturating_add(input);
                s.output_tokens = s.output_tokens.saturating_add(output);
                s.total_tokens = s.total_tokens.saturating_add(total);
            }
        }
        if let Some(cost) = SpanColumns::opt_f64(c.cost, i) {
            s.cost = Some(halo_trace::add_costs(s.cost.unwrap_or(0.0), cost));
            s.priced_span_count += 1;
        }
        if s.session_id.is_none() {
            s.session_id = SpanColumns::opt(c.session_id, i).map(str::to_string);
        }
        if s.user_id.is_none() {
            s.user_id = SpanColumns::opt(c.user_id, i).map(str::to_string);
        }
        if s.project_id.is_none() {
            s.project_id = SpanColumns::opt(c.project_id, i).map(str::to_string);
        }
        if let Some(outcome) = SpanColumns::opt(c.outcome, i) {
            if s.outcome.is_none() || (is_root && !self.outcome_from_root) {
                s.outcome = Some(outcome.to_string());
                self.outcome_from_root = is_root;
            }
        }
        s.raw_bytes += u64::from(c.byte_len.value(i));
    }

    /// Counts duplicates and missing parents once every span is in.
    pub(crate) fn finish(mut self) -> TraceSummary {
        let (duplicates, missing) = tree_counts(&mut self.span_hashes, &self.parent_hashes);
        self.summary.duplicate_span_count = duplicates;
        self.summary.missing_parent_count = missing;
        self.summary.settle_tokens();
        self.summary
    }
}

/// Duplicate span ids and parents that are not among the span ids. Sorts `span_hashes`.
pub(crate) fn tree_counts(span_hashes: &mut [u64], parent_hashes: &[u64]) -> (u32, u32) {
    span_hashes.sort_unstable();
    let duplicates = span_hashes.windows(2).filter(|w| w[0] == w[1]).count() as u32;
    let missing = parent_hashes
        .iter()
        .filter(|p| span_hashes.binary_search(p).is_err())
        .count() as u32;
    (duplicates, missing)
}

/// Span-id hashes of a span batch's rows, for recounting a merged trace's tree.
pub(crate) fn id_hashes(c: &SpanColumns<'_>, row: usize) -> (u64, Option<u64>) {
    let parent = c.parent_span_id.value(row);
    (
        hash_id(c.span_id.value(row)),
        (!parent.is_empty()).then(|| hash_id(parent)),
    )
}

/// Merges a later part of a trace (another file, or an appended segment) into `into`.
/// Tree counts must be recomputed by the caller from the spans of all parts.
pub(crate) fn merge_summary(into: &mut TraceSummary, other: TraceSummary) {
    into.span_count += other.span_count;
    let other_root_better = (other.has_root && !into.has_root)
        || (other.has_root == into.has_root && other.start_ns < into.start_ns);
    if other_root_better {
        into.root_span_name = other.root_span_name;
        into.has_root = other.has_root;
    }
    into.start_ns = into.start_ns.min(other.start_ns);
    into.end_ns = into.end_ns.max(other.end_ns);
    into.error_span_count += other.error_span_count;
    into.tool_error_span_count += other.tool_error_span_count;
    // Duplicates within each part; the merged trace is recounted as a whole afterwards.
    into.duplicate_span_count += other.duplicate_span_count;
    for v in other.services {
        insert_sorted(&mut into.services, v);
    }
    for v in other.models {
        insert_sorted(&mut into.models, v);
    }
    for v in other.agents {
        insert_sorted(&mut into.agents, v);
    }
    for t in other.tools {
        match into.tools.binary_search_by(|x| x.name.cmp(&t.name)) {
            Ok(j) => {
                into.tools[j].calls += t.calls;
                into.tools[j].errors += t.errors;
            }
            Err(j) => into.tools.insert(j, t),
        }
    }
    for g in other.error_groups {
        match into
            .error_groups
            .binary_search_by(|x| x.group.cmp(&g.group))
        {
            Ok(j) => into.error_groups[j].spans += g.spans,
            Err(j) => into.error_groups.insert(j, g),
        }
    }
    match (into.tokens_from_calls, other.tokens_from_calls) {
        (true, true) => {
            into.input_tokens = into.input_tokens.saturating_add(other.input_tokens);
            into.output_tokens = into.output_tokens.saturating_add(other.output_tokens);
            into.total_tokens = into.total_tokens.saturating_add(other.total_tokens);
        }
        (false, true) => {
            into.tokens_from_calls = true;
            into.input_tokens = other.input_tokens;
            into.output_tokens = other.output_tokens;
            into.total_tokens = other.total_tokens;
        }
        (_, false) => {}
    }
    for (a, b) in into.aggregate_tokens.iter_mut().zip(other.aggregate_tokens) {
        *a = a.saturating_add(b);
    }
    into.settle_tokens();
    into.priced_span_count += other.priced_span_count;
    into.cost = match (into.cost, other.cost) {
        (Some(a), Some(b)) => Some(halo_trace::add_costs(a, b)),
        (a, b) => a.or(b),
    };
    into.session_id = into.session_id.take().or(other.session_id);
    into.user_id = into.user_id.take().or(other.user_id);
    into.project_id = into.project_id.take().or(other.project_id);
    into.outcome = into.outcome.take().or(other.outcome);
    into.raw_bytes += other.raw_bytes;
    into.llm_call_count += other.llm_call_count;
    into.tool_call_count += other.tool_call_count;
    into.parts.extend(other.parts);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error span's kind, tool name, error type and message.
    type ErrorParts = (
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
    );

    #[test]
    fn remembered_error_labels_are_the_labels_made_afresh() {
        let errors: &[ErrorParts] = &[
            (
                "TOOL",
                Some("venmo__login"),
                None,
                Some("User 17 not found"),
            ),
            ("TOOL", Some("venmo__login"), None, Some("User 4 not found")),
            ("TOOL", None, None, Some("User 4 not found")),
            ("LLM", None, Some("RateLimitError"), Some("slow down")),
            ("LLM", None, Some("RateLimitError"), None),
            ("LLM", None, None, Some("RateLimitError")),
            ("LLM", None, None, None),
            // Parts that would run together if they were only joined.
            ("TOOL", Some("a"), Some("bc"), None),
            ("TOOL", Some("ab"), Some("c"), None),
            ("TOOL", Some("ab"), None, Some("c")),
            ("TOOL", Some(""), None, Some("c")),
            ("TOOL", None, Some(""), Some("c")),
        ];
        let mut interner = Interner::default();
        // Twice over: the second round answers from memory.
        for _ in 0..2 {
            for &(kind, tool, error_type, message) in errors {
                let remembered = interner.error_group(kind, tool, error_type, message);
                let fresh = error_group_label(kind, tool, error_type, message);
                assert_eq!(
                    &*remembered,
                    fresh.as_str(),
                    "{kind} {tool:?} {error_type:?} {message:?}"
                );
            }
        }
        assert_eq!(interner.error_groups.len(), errors.len());
        // Equal labels are one shared string.
        let a = interner.error_group(
            "TOOL",
            Some("venmo__login"),
            None,
            Some("User 17 not found"),
        );
        let b = interner.error_group("TOOL", Some("venmo__login"), None, Some("User 4 not found"));
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn error_labels_stop_being_remembered_past_the_memory_bound() {
        let mut interner = Interner::default();
        let message = "x".repeat(400);
        let mut n = 0;
        while interner.error_bytes + 1000 < REMEMBERED_ERROR_BYTES {
            interner.error_group("TOOL", None, Some(&n.to_string()), Some(&message));
            n += 1;
        }
        let remembered = interner.error_groups.len();
        for more in n..n + 100 {
            let label = interner.error_group("TOOL", None, Some(&more.to_string()), Some(&message));
            assert_eq!(
                &*label,
                error_group_label("TOOL", None, Some(&more.to_string()), Some(&message))
            );
        }
        assert!(interner.error_groups.len() <= remembered + 2);
        assert!(interner.error_bytes <= REMEMBERED_ERROR_BYTES);
    }
}
