//! Per-trace detection over the index's span tables.
//!
//! Each trace's spans are read straight from the Arrow columns of its segments (no JSON is
//! parsed) and run through every detector once. What needs dataset-wide statistics (latency
//! and token outliers, peer comparisons) is collected here as measurements and decided in
//! [`crate::detect`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ListArray};
use halo_index::{SpanColumns, SpanTable, TraceSummary};

use crate::model::{FindingKey, Mode};
use crate::signals;

/// Typed columns of one segment's batches, with the first row of each batch.
#[derive(Debug)]
pub(crate) struct SegmentView<'a> {
    starts: Vec<u32>,
    cols: Vec<SpanColumns<'a>>,
}

impl<'a> SegmentView<'a> {
    pub(crate) fn new(table: &'a Arc<SpanTable>) -> Result<SegmentView<'a>, String> {
        let mut starts = Vec::new();
        let mut cols = Vec::new();
        let mut row = 0u32;
        for batch in table.batches() {
            starts.push(row);
            row += batch.num_rows() as u32;
            cols.push(SpanColumns::new(batch).map_err(|e| e.0)?);
        }
        Ok(SegmentView { starts, cols })
    }

    fn get(&self, row: u32) -> Option<(SpanColumns<'a>, usize)> {
        let b = self.starts.partition_point(|&s| s <= row).checked_sub(1)?;
        let c = *self.cols.get(b)?;
        let i = (row - self.starts[b]) as usize;
        (i < c.len()).then_some((c, i))
    }
}

/// One span, as the detectors see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span<'a> {
    c: SpanColumns<'a>,
    i: usize,
    pub(crate) span_id: &'a str,
    pub(crate) parent: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) start: i64,
    pub(crate) duration_ms: f64,
    pub(crate) is_error: bool,
}

fn opt(a: &arrow_array::StringArray, i: usize) -> Option<&str> {
    (!a.is_null(i))
        .then(|| a.value(i))
        .filter(|s| !s.is_empty())
}

fn list_items<'a>(list: &'a ListArray, i: usize) -> impl Iterator<Item = &'a str> + 'a {
    let offsets = list.value_offsets();
    let (s, e) = if list.is_null(i) {
        (0, 0)
    } else {
        (offsets[i] as usize, offsets[i + 1] as usize)
    };
    let values = list.values().as_string_opt::<i32>();
    (s..e).filter_map(move |j| values.and_then(|v| (!v.is_null(j)).then(|| v.value(j))))
}

impl<'a> Span<'a> {
    fn new(c: SpanColumns<'a>, i: usize) -> Span<'a> {
        Span {
            c,
            i,
            span_id: c.span_id.value(i),
            parent: c.parent_span_id.value(i),
            kind: c.kind.value(i),
            start: c.start_time.value(i),
            duration_ms: c.duration_ms.value(i),
            is_error: c.is_error.value(i),
        }
    }
    /// The model, without a dated snapshot suffix (`gpt-4o-2024-08-06` is `gpt-4o`): one
    /// model under two names would split its baselines and findings.
    fn model(&self) -> Option<&'a str> {
        opt(self.c.model, self.i).map(halo_trace::model_family)
    }
    fn tool(&self) -> Option<&'a str> {
        opt(self.c.tool_name, self.i)
    }
    fn tool_args(&self) -> Option<&'a str> {
        opt(self.c.tool_args, self.i)
    }
    fn tool_result(&self) -> Option<&'a str> {
        opt(self.c.tool_result, self.i)
    }
    fn output(&self) -> Option<&'a str> {
        opt(self.c.output_head, self.i)
    }
    fn finish_reason(&self) -> Option<&'a str> {
        opt(self.c.finish_reason, self.i)
    }
    fn refusal(&self) -> Option<&'a str> {
        opt(self.c.refusal, self.i)
    }
    fn outcome(&self) -> Option<&'a str> {
        opt(self.c.outcome, self.i)
    }
    fn http(&self) -> Option<i64> {
        SpanColumns::opt_i64(self.c.http_status, self.i)
    }
    fn error_type(&self) -> Option<&'a str> {
        opt(self.c.error_type, self.i)
    }
    /// The error's message (for a failed tool whose status only says that it failed,
    /// the index already holds the message of its result).
    fn error_message(&self) -> Option<&'a str> {
        opt(self.c.error_message, self.i).or_else(|| opt(self.c.status_message, self.i))
    }
    fn error_text(&self) -> String {
        match (self.error_type(), self.error_message()) {
            (Some(t), Some(m)) if m.contains(t) => m.to_string(),
            (Some(t), Some(m)) => format!("{t}: {m}"),
            (Some(t), None) => t.to_string(),
            (None, Some(m)) => m.to_string(),
            (None, None) => String::new(),
        }
    }
    fn agent(&self) -> Option<&'a str> {
        opt(self.c.agent_name, self.i)
    }
    /// What this span shows about a failure of `mode`, in a line.
    fn detail(&self, mode: Mode) -> Option<String> {
        let text = match mode {
            // The tool too: a loop finding may list several.
            Mode::RepeatedToolLoop => self
                .tool_args()
                .map(|args| format!("{} {args}", self.tool().unwrap_or("(unnamed tool)"))),
            Mode::HallucinatedTool if self.kind == LLM => {
                let asked: Vec<&str> = self.requested().collect();
                (!asked.is_empty()).then(|| format!("asked for {}", asked.join(", ")))
            }
            Mode::Refusal | Mode::RefusalLoop | Mode::PrematureSuccess | Mode::SilentFailure => {
                self.refusal().or(self.output()).map(str::to_string)
            }
            _ if self.is_error => Some(self.error_text()).filter(|t| !t.is_empty()),
            // A run stopped at its limit without an error: the runtime's answer says so.
            Mode::TurnExhaustion => self.output().map(str::to_string),
            _ => self.tool_args().map(str::to_string),
        }?;
        Some(halo_trace::head(text.trim(), DETAIL_CHARS).to_string())
    }
    fn tokens(&self) -> Option<i64> {
        let input = SpanColumns::opt_i64(self.c.input_tokens, self.i);
        let total = SpanColumns::opt_i64(self.c.total_tokens, self.i);
        total.or(input).filter(|&t| t > 0)
    }
    fn declared(&self) -> impl Iterator<Item = &'a str> + 'a {
        list_items(self.c.declared_tools, self.i)
    }
    fn requested(&self) -> impl Iterator<Item = &'a str> + 'a {
        list_items(self.c.requested_tools, self.i)
    }
}

/// The spans of one trace, from all its parts.
pub(crate) fn spans_of<'a>(t: &TraceSummary, segments: &[SegmentView<'a>]) -> Vec<Span<'a>> {
    let mut out = Vec::with_capacity(t.span_count as usize);
    for part in &t.parts {
        let Some(seg) = segments.get(part.segment as usize) else {
            continue;
        };
        for &row in &part.rows {
            if let Some((c, i)) = seg.get(row) {
                out.push(Span::new(c, i));
            }
        }
    }
    out.sort_by(|a, b| a.start.cmp(&b.start).then(a.span_id.cmp(b.span_id)));
    out
}

/// A failure seen in one trace: the finding it belongs to and the spans that show it.
#[derive(Debug, Clone)]
pub(crate) struct Hit<'a> {
    pub(crate) key: FindingKey,
    pub(crate) argument: Option<String>,
    pub(crate) spans: Vec<&'a str>,
    /// What the first span shows, in a line: the error, the arguments, the answer.
    pub(crate) detail: Option<String>,
    /// The agents whose spans show it (not every agent of the trace).
    pub(crate) agents: Vec<&'a str>,
}

/// What a measurement is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum MeasureKind {
    /// Duration of a successful LLM span, grouped by model.
    LlmLatency,
    /// Duration of a successful tool span, grouped by tool.
    ToolLatency,
    /// Tokens of an LLM span, grouped by model.
    LlmTokens,
}

/// One measured value of one span, for the outlier detectors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measure<'a> {
    pub(crate) kind: MeasureKind,
    pub(crate) group: &'a str,
    pub(crate) value: f64,
    pub(crate) span: &'a str,
}

/// Detector settings needed per trace.
#[derive(Debug, Clone)]
pub(crate) struct TraceContext<'o> {
    pub(crate) repeat_threshold: usize,
    pub(crate) refusal_loop_threshold: usize,
    /// The share of the trace's peers (same root span name, five runs or more) that
    /// call a tool at all.
    pub(crate) peer_tool_share: &'o HashMap<String, f64>,
    /// The same share over every run, for traces without enough peers.
    pub(crate) global_tool_share: f64,
}

/// The least share of its peers that call tools for a run without any to count as one
/// that skipped its work, when its model was offered no tools to see. Low, so that an
/// agent that skips its tools in most runs is still caught (a median would stop seeing a
/// regression the moment it passed half the runs); not zero, so that an agent that needs
/// a tool only now and then is not held to it.
const MIN_PEER_TOOL_SHARE: f64 = 0.1;

/// Everything one trace contributes.
#[derive(Debug, Default)]
pub(crate) struct TraceOut<'a> {
    pub(crate) hits: Vec<Hit<'a>>,
    pub(crate) measures: Vec<Measure<'a>>,
}

impl<'a> TraceOut<'a> {
    /// An argument problem of a call of `tool`, seen on `span`.
    fn arg_problem(&mut self, tool: &str, p: signals::ArgProblem, span: &'a str) {
        let template = match &p.argument {
            Some(a) => format!("{} '{a}'", p.kind),
            None => p.kind.to_string(),
        };
        self.hit(
            key(Mode::InvalidToolArgs, Some(tool), None, Some(template)),
            p.argument,
            vec![span],
        );
    }

    fn hit(&mut self, key: FindingKey, argument: Option<String>, spans: Vec<&'a str>) {
        if let Some(h) = self.hits.iter_mut().find(|h| h.key == key) {
            for s in spans {
                if !h.spans.contains(&s) {
                    h.spans.push(s);
                }
            }
            if h.argument.is_none() {
                h.argument = argument;
            }
        } else {
            self.hits.push(Hit {
                key,
                argument,
                spans,
                detail: None,
                agents: Vec::new(),
            });
        }
    }
}

fn key(
    mode: Mode,
    tool: Option<&str>,
    model: Option<&str>,
    template: Option<String>,
) -> FindingKey {
    FindingKey {
        mode,
        tool: tool.map(str::to_string),
        model: model.map(str::to_string),
        template,
    }
}

/// A provider failure's template: its kind (`rate_limit`, ...), or for a failure of no
/// known kind, `other: ` and the masked message, so that what failed stays visible.
fn provider_template(s: &Span<'_>, text: &str) -> String {
    match signals::provider_kind(s.http(), text, s.finish_reason()) {
        "other" => format!(
            "other: {}",
            signals::template_of(s.error_type(), s.error_message())
        ),
        kind => kind.to_string(),
    }
}

/// How many calls may come between two repeats of a call in one loop (always the same
/// ones): two, for cycles of up to three calls.
const MAX_CALLS_BETWEEN_REPEATS: usize = 2;

/// How long an example's detail line may be.
const DETAIL_CHARS: usize = 200;

const LLM: &str = "LLM";
const TOOL: &str = "TOOL";

/// Runs every per-trace detector over one trace.
pub(crate) fn analyze<'a>(
    t: &TraceSummary,
    spans: &[Span<'a>],
    ctx: &TraceContext<'_>,
) -> TraceOut<'a> {
    let mut out = TraceOut::default();
    let trace_model = t
        .models
        .first()
        .map(|m| halo_trace::model_family(m.as_ref()));

    // Declared tools over the whole trace (LLM and agent spans).
    let mut declared_all: HashSet<&'a str> = HashSet::new();
    for s in spans {
        if s.kind == LLM || s.kind == "AGENT" {
            declared_all.extend(s.declared());
        }
    }

    let mut llm_errors = false;
    let mut refusals: Vec<&'a str> = Vec::new();
    let mut tool_calls: Vec<(&'a str, &'a str, &'a str)> = Vec::new();

    for s in spans {
        if s.kind == LLM {
            // Hallucinated tools: requested but not declared on the same span.
            let declared: Vec<&str> = s.declared().collect();
            if !declared.is_empty() {
                for r in s.requested() {
                    if !declared.contains(&r) {
                        out.hit(
                            key(Mode::HallucinatedTool, Some(r), None, None),
                            None,
                            vec![s.span_id],
                        );
                    }
                }
            }
            if s.is_error {
                let text = s.error_text();
                if signals::says_turn_limit(&text) {
                    out.hit(
                        key(
                            Mode::TurnExhaustion,
                            None,
                            None,
                            Some(signals::template_of(s.error_type(), s.error_message())),
                        ),
                        None,
                        vec![s.span_id],
                    );
                } else {
                    llm_errors = true;
                    out.hit(
                        key(
                            Mode::ProviderError,
                            None,
                            s.model().or(trace_model),
                            Some(provider_template(s, &text)),
                        ),
                        None,
                        vec![s.span_id],
                    );
                }
            } else {
                let refused = s.refusal().is_some()
                    || s.finish_reason()
                        .is_some_and(|f| f.eq_ignore_ascii_case("content_filter"))
                    || s.output().is_some_and(signals::says_refusal);
                if refused {
                    refusals.push(s.span_id);
                }
                if let Some(model) = s.model() {
                    out.measures.push(Measure {
                        kind: MeasureKind::LlmLatency,
                        group: model,
                        value: s.duration_ms,
                        span: s.span_id,
                    });
                    if let Some(tokens) = s.tokens() {
                        out.measures.push(Measure {
                            kind: MeasureKind::LlmTokens,
                            group: model,
                            value: tokens as f64,
                            span: s.span_id,
                        });
                    }
                }
            }
        } else if s.kind == TOOL {
            let tool = s.tool().unwrap_or("(unnamed tool)");
            // LangChain answers a made-up tool with its `invalid_tool`: the finding is
            // about the tool asked for.
            if let Some(asked) = signals::invented_tool(tool, s.tool_args()) {
                out.hit(
                    key(Mode::HallucinatedTool, Some(asked), None, None),
                    None,
                    vec![s.span_id],
                );
                continue;
            }
            if let Some(args) = s.tool_args() {
                tool_calls.push((tool, args, s.span_id));
            }
            let undeclared = !declared_all.is_empty() && !declared_all.contains(tool);
            if s.is_error {
                let text = s.error_text();
                if undeclared || signals::says_unknown_tool(&text, tool) {
                    out.hit(
                        key(Mode::HallucinatedTool, Some(tool), None, None),
                        None,
                        vec![s.span_id],
                    );
                } else if let Some(p) = signals::arg_problem(&text) {
                    out.arg_problem(tool, p, s.span_id);
                } else {
                    let template = signals::template_of(s.error_type(), s.error_message());
                    out.hit(
                        key(Mode::ToolError, Some(tool), None, Some(template)),
                        None,
                        vec![s.span_id],
                    );
                }
            } else {
                if undeclared {
                    out.hit(
                        key(Mode::HallucinatedTool, Some(tool), None, None),
                        None,
                        vec![s.span_id],
                    );
                }
                // Rejected arguments handed back to the model as the result, with no
                // error status (Pydantic AI's retry prompt).
                if let Some(p) = s
                    .tool_result()
                    .filter(|r| signals::is_retry_prompt(r))
                    .and_then(signals::arg_problem)
                {
                    out.arg_problem(tool, p, s.span_id);
                }
                out.measures.push(Measure {
                    kind: MeasureKind::ToolLatency,
                    group: tool,
                    value: s.duration_ms,
                    span: s.span_id,
                });
            }
        } else if s.is_error {
            let text = s.error_text();
            if signals::says_turn_limit(&text) {
                out.hit(
                    key(
                        Mode::TurnExhaustion,
                        None,
                        None,
                        Some(signals::template_of(s.error_type(), s.error_message())),
                    ),
                    None,
                    vec![s.span_id],
                );
            }
        }
    }

    // Provider failures recorded only on an agent/chain span.
    if !llm_errors {
        for s in spans
            .iter()
            .filter(|s| s.is_error && s.kind != TOOL && s.kind != LLM)
        {
            let text = s.error_text();
            if !signals::says_turn_limit(&text) && signals::says_provider_failure(s.http(), &text) {
                out.hit(
                    key(
                        Mode::ProviderError,
                        None,
                        s.model().or(trace_model),
                        Some(provider_template(s, &text)),
                    ),
                    None,
                    vec![s.span_id],
                );
            }
        }
    }

    // Repeated identical tool calls, in start order: the same tool with the same
    // arguments (compared as JSON, so spacing and key order do not matter) again and
    // again, back to back or in a cycle with the same one or two other calls.
    let keys: Vec<(&'a str, String)> = tool_calls
        .iter()
        .map(|&(tool, args, _)| (tool, signals::comparable_args(args)))
        .collect();
    // Per call: where its chain of repeats was last seen, the calls between its repeats
    // as first seen, and the spans so far.
    type Chain<'s> = (usize, Option<std::ops::Range<usize>>, Vec<&'s str>);
    let mut chains: HashMap<&(&'a str, String), Chain<'a>> = HashMap::new();
    let mut best: Option<(&'a str, Vec<&'a str>)> = None;
    for (n, &(tool, _, span)) in tool_calls.iter().enumerate() {
        let chain = chains.entry(&keys[n]).or_insert((n, None, Vec::new()));
        let between = chain.0 + 1..n;
        let continues = match between.len() {
            _ if chain.2.is_empty() => true,
            0 => true,
            // Calls between the repeats: always the same ones (A B A B, A B C A B C), not
            // any (an edit-test cycle with different edits is work, not a loop).
            k if k <= MAX_CALLS_BETWEEN_REPEATS => match &chain.1 {
                None => {
                    chain.1 = Some(between);
                    true
                }
                Some(first) => keys[first.clone()] == keys[between],
            },
            _ => false,
        };
        if !continues {
            chain.1 = None;
            chain.2.clear();
        }
        chain.0 = n;
        chain.2.push(span);
        if chain.2.len() >= ctx.repeat_threshold
            && best.as_ref().is_none_or(|(_, b)| chain.2.len() > b.len())
        {
            best = Some((tool, chain.2.clone()));
        }
    }
    if let Some((tool, spans)) = best {
        out.hit(
            key(Mode::RepeatedToolLoop, Some(tool), None, None),
            None,
            spans,
        );
    }

    // Refusals and refusal loops. A run marked as refused whose refusal wording no
    // pattern knows still counts, with its root span as the evidence.
    let marked_refused = t.outcome.as_deref().is_some_and(signals::outcome_refused);
    if marked_refused && refusals.is_empty() {
        if let Some(root) = spans.iter().find(|s| s.parent.is_empty()) {
            refusals.push(root.span_id);
        }
    }
    if refusals.len() >= ctx.refusal_loop_threshold {
        out.hit(
            key(Mode::RefusalLoop, None, None, None),
            None,
            refusals.clone(),
        );
    } else if !refusals.is_empty() {
        out.hit(key(Mode::Refusal, None, None, None), None, refusals.clone());
    }

    let root = spans
        .iter()
        .find(|s| s.parent.is_empty())
        .or_else(|| spans.first());
    let last_llm = spans.iter().rev().find(|s| s.kind == LLM);
    let final_text = root
        .and_then(|r| r.output())
        .or_else(|| last_llm.and_then(|s| s.output()));

    // A runtime that stops a run at its iteration limit may answer in its place with a
    // fixed text and no error status. A trace whose error already said so counts once.
    if let Some((text, sentence)) =
        final_text.and_then(|t| signals::stopped_at_limit(t).map(|s| (t, s)))
    {
        let said = out.hits.iter().any(|h| h.key.mode == Mode::TurnExhaustion);
        let evidence = root
            .filter(|r| r.output() == Some(text))
            .or(last_llm)
            .map(|s| s.span_id);
        if let (false, Some(span)) = (said, evidence) {
            out.hit(
                key(
                    Mode::TurnExhaustion,
                    None,
                    None,
                    Some(halo_trace::error_template(sentence)),
                ),
                None,
                vec![span],
            );
        }
    }

    // Outcome-based modes only apply to runs without any error status.
    if t.error_span_count == 0 && refusals.len() < ctx.refusal_loop_threshold {
        let outcome_span = spans
            .iter()
            .find(|s| s.outcome().is_some() && s.parent.is_empty())
            .or_else(|| spans.iter().find(|s| s.outcome().is_some()));
        let outcome = t.outcome.as_deref();
        let refused = outcome.is_some_and(signals::outcome_refused);
        let failed = outcome.is_some_and(signals::outcome_failed);
        let says_not_done = final_text.is_some_and(signals::says_not_done);
        if !refused && (failed || says_not_done) {
            let mut ev: Vec<&'a str> = Vec::new();
            if let Some(s) = outcome_span.filter(|_| failed) {
                ev.push(s.span_id);
            }
            if let Some(s) = last_llm.filter(|s| s.output().is_some_and(signals::says_not_done)) {
                ev.push(s.span_id);
            }
            if ev.is_empty() {
                if let Some(r) = root {
                    ev.push(r.span_id);
                }
            }
            let template = if failed {
                format!(
                    "outcome={}",
                    outcome.unwrap_or_default().to_ascii_lowercase()
                )
            } else {
                "final answer says not done".to_string()
            };
            out.hit(
                key(Mode::SilentFailure, None, None, Some(template)),
                None,
                ev,
            );
        } else if !refused
            && refusals.is_empty()
            // A marker claims success itself; without one, the final answer must.
            && match outcome {
                Some(_) => signals::outcome_claims_success(outcome),
                None => final_text.is_some_and(signals::claims_done),
            }
            && !final_text.is_some_and(signals::asks_a_question)
            && t.tool_call_count == 0
            && t.llm_call_count >= 1
        {
            // The work was there to do: the model was offered tools, or its peers use them.
            let peers = ctx
                .peer_tool_share
                .get(&t.root_span_name)
                .copied()
                .unwrap_or(ctx.global_tool_share);
            if !declared_all.is_empty() || peers >= MIN_PEER_TOOL_SHARE {
                let mut ev: Vec<&'a str> = Vec::new();
                if let Some(r) = root {
                    ev.push(r.span_id);
                }
                if let Some(s) = last_llm {
                    if !ev.contains(&s.span_id) {
                        ev.push(s.span_id);
                    }
                }
                out.hit(
                    key(
                        Mode::PrematureSuccess,
                        None,
                        None,
                        Some("claims success with no tool call".to_string()),
                    ),
                    None,
                    ev,
                );
            }
        }
    }
    // Each hit's detail and agents, from its spans.
    let by_id: HashMap<&str, &Span<'a>> = if out.hits.is_empty() {
        HashMap::new()
    } else {
        spans.iter().map(|s| (s.span_id, s)).collect()
    };
    for h in &mut out.hits {
        let shown: Vec<&Span<'a>> = h
            .spans
            .iter()
            .filter_map(|id| by_id.get(id).copied())
            .collect();
        h.detail = shown.iter().find_map(|s| s.detail(h.key.mode));
        h.agents = shown.iter().filter_map(|s| s.agent()).collect();
    }
    out
}
