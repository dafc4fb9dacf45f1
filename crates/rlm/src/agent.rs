//! One agent: its conversation, turn loop, tool execution and compaction.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use halo_provider::{Message, ModelRequest, ModelResponse, StreamEvent, ToolCall, ToolSpec};

use crate::checkpoint::{RunCheckpoint, CHECKPOINT_VERSION};
use crate::context::{self, COMPACTED_PREFIX};
use crate::engine::{cancelled, Shared};
use crate::events::{AgentInfo, AgentItem, EngineEvent, ItemMark, RequestKind};
use crate::prompts;
use crate::tools::{self, error_json, parse_args, ToolSet};

/// How many tool results a partial report with no conclusions lists.
const FALLBACK_TOOL_RESULTS: usize = 10;

/// Appended to an answer the model was cut short in, so the reader knows.
const CUT_OFF_NOTE: &str = "\n\n[cut short: the model reached its output token limit]";

/// The mark on an answer the provider's content filter stopped.
const FILTERED_NOTE: &str = "\n\n[cut short: the provider's content filter stopped this answer]";

/// The tool result for arguments cut short by the output token limit.
const CUT_OFF_ARGUMENTS: &str = "your output reached its token limit and these arguments were cut short; send a shorter call (or the user can raise --max-output-tokens)";

/// The longest subagent answer or synthesis a parent gets back in one tool result
/// (about 10k tokens); the whole text stays reachable with `get_context_item`.
const MAX_ANSWER_CHARS: usize = 40_000;

/// The fewest `call_subagent` calls one turn may start, whatever `max_parallel`
/// (the default `max_parallel`): a small `--max-parallel` (gentle on a rate limit)
/// only queues subagents, it should not stop a model from splitting its work.
const MIN_SUBAGENTS_PER_TURN: usize = 10;

/// How many `call_subagent` calls of one turn are started; later ones get an error
/// result asking to batch them.
pub(crate) fn subagents_per_turn(max_parallel: usize) -> usize {
    max_parallel.max(MIN_SUBAGENTS_PER_TURN)
}

/// What the tool results of one turn may add to the context together (about 50k
/// tokens). One result may be up to `tools::MAX_RESULT_CHARS`, so a turn of several
/// large results would otherwise fill the model's window in one step.
const TURN_RESULTS_BUDGET_CHARS: usize = 200_000;

/// No result is cut below this share of the per-turn budget, however many there are.
const MIN_RESULT_SHARE_CHARS: usize = 2_000;

/// Tool calls run per turn; the rest are refused. With each result cut to at least
/// [`MIN_RESULT_SHARE_CHARS`] (plus a note), this many stay within the per-turn budget.
const MAX_CALLS_PER_TURN: usize = 50;

/// What stays in the context of a result moved out after the context overflowed.
const OFFLOAD_HEAD_CHARS: usize = 2_000;

/// Why an agent stopped at the token budget.
const TOKEN_BUDGET_REASON: &str = "the token budget of the run (--max-total-tokens) was used up";

/// The tool result of a request refused because the token budget is used up.
const TOKEN_BUDGET_TOOL: &str = "not started: the run's token budget (--max-total-tokens) is used up; answer with what you have";

/// How an agent ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Root: `final_answer`; subagent: a plain answer.
    Answered,
    /// Root stopped without `final_answer` after the re-prompt.
    NoFinalAnswer,
    /// Turn budget used up.
    TurnBudget,
    /// Token budget used up.
    TokenBudget,
    /// Cancelled.
    Cancelled,
    /// A model request failed for good.
    Failed(String),
}

/// What an agent hands back.
#[derive(Debug, Clone)]
pub(crate) struct AgentResult {
    pub(crate) answer: String,
    pub(crate) ending: Ending,
    /// The answer was put together by halo from what the agent found (see
    /// [`Agent::fallback`]), not written by the model.
    pub(crate) synthesized: bool,
}

enum Stop {
    Cancelled,
    Failed(String),
    /// `max_total_tokens` was reached before the request was sent.
    TokenBudget,
}

/// The longest error message a tool result carries.
const MAX_ERROR_CHARS: usize = 4_000;

struct ToolOutput {
    content: String,
    is_error: bool,
    final_answer: Option<String>,
}

impl ToolOutput {
    fn ok(content: String) -> Self {
        ToolOutput {
            content,
            is_error: false,
            final_answer: None,
        }
    }
    fn err(message: &str) -> Self {
        ToolOutput {
            // An error can quote what it was given (a 200 KB identifier in a query): cut,
            // it stays valid JSON within any budget a turn leaves.
            content: error_json(&halo_trace::clip(message, MAX_ERROR_CHARS)),
            is_error: true,
            final_answer: None,
        }
    }
}

pub(crate) struct Agent {
    shared: Arc<Shared>,
    info: AgentInfo,
    pub(crate) messages: Vec<Message>,
    pub(crate) turns_used: u32,
    pub(crate) reprompted: bool,
    items: u64,
    turn: u32,
    findings: Vec<String>,
    compaction_floor: usize,
    /// Names of the tools offered in the current turn; calls to others are refused.
    offered: Vec<String>,
}

impl Agent {
    /// The root agent, fresh.
    pub(crate) fn root(shared: Arc<Shared>, prompt: &str) -> Agent {
        let cfg = &shared.config;
        let system = prompts::root_system(cfg.max_depth > 0, shared.repo.is_some());
        let task = prompts::root_task(prompt, cfg.dataset_context.as_deref());
        Agent::new(
            shared,
            root_info(),
            vec![Message::system(system), Message::user(task)],
        )
    }

    /// The root agent, resumed from a checkpoint.
    pub(crate) fn resumed(shared: Arc<Shared>, cp: &RunCheckpoint) -> Agent {
        let mut a = Agent::new(shared, root_info(), cp.root_messages.clone());
        a.turns_used = cp.turns_used;
        a.reprompted = cp.reprompted;
        a
    }

    fn new(shared: Arc<Shared>, info: AgentInfo, messages: Vec<Message>) -> Agent {
        Agent {
            shared,
            info,
            messages,
            turns_used: 0,
            reprompted: false,
            items: 0,
            turn: 0,
            findings: Vec::new(),
            compaction_floor: 0,
            offered: Vec::new(),
        }
    }

    fn is_root(&self) -> bool {
        self.info.depth == 0
    }

    fn can_delegate(&self) -> bool {
        self.info.depth < self.shared.config.max_depth
    }

    fn tool_set(&self) -> ToolSet {
        ToolSet {
            subagents: self.can_delegate(),
            final_answer: self.is_root(),
            repo: self.shared.repo.is_some(),
            git: self.shared.repo.as_ref().is_some_and(|r| r.is_git()),
        }
    }

    /// `agent:turn.n`: the turn the item belongs to (the one being asked or answered), and
    /// the agent's item count. The colon keeps item ids apart from subagent ids
    /// (`agent/turn.index`), which name the call that started them.
    fn next_item_id(&mut self) -> String {
        self.items += 1;
        let turn = match self.turn {
            0 => self.turns_used + 1,
            current => current,
        };
        format!("{}:{}.{}", self.info.agent_id, turn, self.items)
    }

    fn emit(&self, item: AgentItem, mark: ItemMark) {
        self.shared.emitter.item(&self.info, item, mark);
    }

    /// Counts a completed request's tokens, estimated when the provider reported none
    /// (warning once per run that it did).
    fn count_call(&self, req: &ModelRequest, resp: &ModelResponse) {
        let first_estimate = self
            .shared
            .usage
            .add_call(&req.model, resp.usage, || estimate_usage(req, resp));
        if first_estimate {
            self.shared.emitter.warning(
                &self.info,
                format!(
                    "the provider reported no token usage for a request to {}; such requests are counted as characters / 4, so --max-total-tokens and the token totals are estimates",
                    req.model
                ),
            );
        }
    }

    fn is_cancelled(&self) -> bool {
        *self.shared.cancel.borrow()
    }

    fn tokens_exceeded(&self) -> bool {
        self.shared
            .config
            .max_total_tokens
            .is_some_and(|max| self.shared.usage.total_tokens() >= max)
    }

    fn tokens_near(&self) -> bool {
        self.shared.config.max_total_tokens.is_some_and(|max| {
            let used = self.shared.usage.total_tokens();
            used.saturating_mul(100) >= max.saturating_mul(85)
        })
    }

    /// Runs the agent to its end (boxed: agents start agents).
    pub(crate) fn run(self) -> BoxFuture<'static, AgentResult> {
        self.run_inner().boxed()
    }

    async fn run_inner(mut self) -> AgentResult {
        let max = self.shared.config.max_turns.max(1);
        loop {
            if self.is_cancelled() {
                return self.fallback(Ending::Cancelled, "the run was cancelled");
            }
            if self.tokens_exceeded() {
                return self.fallback(Ending::TokenBudget, TOKEN_BUDGET_REASON);
            }
            if self.turns_used >= max {
                return self.exhausted().await;
            }
            if let Err(Stop::Cancelled) = self.maybe_compact(false).await {
                return self.fallback(Ending::Cancelled, "the run was cancelled");
            }
            let turn = self.turns_used + 1;
            self.turn = turn;
            let finish_now = self.tokens_near();
            let tools = if finish_now {
                if self.is_root() {
                    tools::final_answer_only()
                } else {
                    Vec::new()
                }
            } else {
                tools::specs(self.tool_set())
            };
            self.offered = tools.iter().map(|t| t.name.clone()).collect();
            let note = prompts::turn_note(turn, max, self.is_root(), finish_now);
            let (resp, message_id) = match self.call_model(tools, Some(note)).await {
                Ok(r) => r,
                Err(Stop::Cancelled) => {
                    return self.fallback(Ending::Cancelled, "the run was cancelled")
                }
                Err(Stop::TokenBudget) => {
                    return self.fallback(Ending::TokenBudget, TOKEN_BUDGET_REASON)
                }
                Err(Stop::Failed(e)) => {
                    // A subagent's parent is told of the failure with the error once (see
                    // `subagent`), so only the root's report carries it here.
                    let reason = format!("a model request failed: {e}");
                    return self.fallback(Ending::Failed(e), &reason);
                }
            };
            self.turns_used = turn;
            if let Some(result) = self.apply(resp, message_id).await {
                return result;
            }
        }
    }

    /// Records a response, runs its tool calls; `Some` when the agent is done.
    async fn apply(&mut self, resp: ModelResponse, message_id: String) -> Option<AgentResult> {
        let mut text = resp.text.clone();
        if text.trim().is_empty() && resp.tool_calls.is_empty() {
            if let Some(r) = &resp.refusal {
                text = format!("(the model refused) {r}");
            }
        }
        // The model hit its output limit: an answer is marked as cut short, and cut-off
        // tool arguments are explained as such (not as bad JSON) to the model.
        let cut_off = resp.finish_reason == halo_provider::FinishReason::Length;
        if cut_off && resp.tool_calls.is_empty() && !text.trim().is_empty() {
            text.push_str(CUT_OFF_NOTE);
        }
        // The provider's content filter stopped the answer: said where it shows, so a
        // cut answer is not read as the model's whole reply.
        if resp.finish_reason == halo_provider::FinishReason::ContentFilter {
            text.push_str(FILTERED_NOTE);
            self.shared.emitter.warning(
                &self.info,
                "the provider's content filter stopped an answer (finish_reason content_filter); it is marked as cut".to_owned(),
            );
        }
        let calls = resp.tool_calls;
        if calls.is_empty() {
            self.messages.push(Message::assistant(text.clone()));
            if self.is_root() {
                if !text.trim().is_empty() {
                    self.findings.push(text.clone());
                }
                self.emit(
                    AgentItem::Message {
                        id: message_id,
                        role: "assistant".into(),
                        content: text.clone(),
                    },
                    ItemMark::Plain,
                );
                if !self.reprompted {
                    self.reprompted = true;
                    self.messages
                        .push(Message::user(prompts::REPROMPT_FINAL_ANSWER));
                    self.checkpoint();
                    return None;
                }
                if text.trim().is_empty() {
                    return Some(self.fallback(
                        Ending::NoFinalAnswer,
                        "the root agent stopped without calling final_answer",
                    ));
                }
                // Often a whole report all the same, so it is kept as written, but said to
                // be what it is: a person opening the file, or a script, must not take it
                // for a finished one.
                return Some(AgentResult {
                    answer: format!(
                        "_Not a finished report: the root agent ended without calling \
                         final_answer, after being asked to once. Its last message follows, \
                         unedited._\n\n{text}"
                    ),
                    ending: Ending::NoFinalAnswer,
                    synthesized: false,
                });
            }
            self.emit(
                AgentItem::Message {
                    id: message_id,
                    role: "assistant".into(),
                    content: text.clone(),
                },
                ItemMark::AgentFinished,
            );
            return Some(AgentResult {
                answer: if text.trim().is_empty() {
                    "(the subagent returned an empty answer)".to_owned()
                } else {
                    text
                },
                ending: Ending::Answered,
                synthesized: false,
            });
        }
        if !text.trim().is_empty() {
            self.findings.push(text.clone());
            self.emit(
                AgentItem::Message {
                    id: message_id,
                    role: "assistant".into(),
                    content: text.clone(),
                },
                ItemMark::Plain,
            );
        }
        self.messages
            .push(Message::assistant_with_tools(text, calls.clone()));
        for c in &calls {
            let id = self.next_item_id();
            self.emit(
                AgentItem::ToolCall {
                    id,
                    call_id: c.id.clone(),
                    name: c.name.clone(),
                    arguments: c.arguments.clone(),
                },
                ItemMark::Plain,
            );
        }
        let turn = self.turns_used;
        // Subagents beyond the per-turn cap are not started: the semaphore gates model
        // requests only, so a turn of 100 calls would otherwise hold 100 agents (and
        // their contexts) at once and pay for all of them.
        // Nor are calls past MAX_CALLS_PER_TURN: the per-turn budget cuts results in
        // proportion, but hundreds of them, each with its note, would still overflow
        // the model's window in one step.
        let cap = subagents_per_turn(self.shared.config.max_parallel);
        let mut subagent_calls = 0;
        let refusals: Vec<Option<String>> = calls
            .iter()
            .enumerate()
            .map(|(k, c)| {
                if c.name == "call_subagent" {
                    subagent_calls += 1;
                }
                if k >= MAX_CALLS_PER_TURN {
                    Some(format!(
                        "not run: at most {MAX_CALLS_PER_TURN} tool calls run per turn; ask for more per call (filters, pages) or send the rest in your next turn"
                    ))
                } else if c.name == "call_subagent" && subagent_calls > cap {
                    Some(format!(
                        "not started: at most {cap} call_subagent calls run per turn; batch related questions into one subagent's task, or send the rest in your next turn"
                    ))
                } else {
                    None
                }
            })
            .collect();
        let outputs = {
            let this = &*self;
            let refusals = &refusals;
            let all =
                futures::future::join_all(calls.iter().enumerate().map(|(k, c)| async move {
                    if cut_off && c.parse_arguments().is_err() {
                        return ToolOutput::err(CUT_OFF_ARGUMENTS);
                    }
                    if let Some(refusal) = &refusals[k] {
                        return ToolOutput::err(refusal);
                    }
                    this.execute(c, turn, k + 1).await
                }));
            // Raced against Ctrl-C: a long tool (SQL, a scan of the dataset or repo)
            // must not hold the run's end. Dropping the futures stops subagents and
            // async tools; blocking tools finish in the background, unheard. Results
            // that are all in when the cancel comes are taken (biased), so a report
            // written in this turn is not lost to a coin toss.
            tokio::select! {
                biased;
                outs = all => Some(outs),
                _ = cancelled(&this.shared.cancel) => None,
            }
        };
        // Cancelled subagents answer at once, with an error, so the results can win the
        // race against the cancel: a turn that ended while the run was being cancelled is
        // stopped all the same, or its checkpoint would keep those errors as its results.
        let stopped = outputs.is_none() || self.is_cancelled();
        let mut outputs = outputs.unwrap_or_else(|| {
            calls
                .iter()
                .map(|_| {
                    ToolOutput::err("cancelled: the run was stopped before this tool finished")
                })
                .collect()
        });
        if !stopped {
            self.fit_turn_budget(&mut outputs);
        }
        let mut final_answer: Option<String> = None;
        for (c, mut out) in calls.iter().zip(outputs) {
            if final_answer.is_some() && out.final_answer.is_some() {
                // The first answer of the turn ends the agent; a later one (a model sending
                // its report twice, in parallel calls) is not used, and its result says so
                // in the transcript instead of "recorded".
                out.final_answer = None;
                out.content =
                    "not used: an earlier final_answer in this turn is the answer".to_owned();
            }
            self.shared.usage.add_tool(&c.name, out.is_error);
            if c.name == "call_subagent" && !out.is_error {
                self.findings
                    .push(format!("Subagent answer:\n{}", out.content));
            }
            let id = self.next_item_id();
            self.emit(
                AgentItem::ToolResult {
                    id,
                    call_id: c.id.clone(),
                    name: c.name.clone(),
                    content: out.content.clone(),
                    is_error: out.is_error,
                },
                ItemMark::Plain,
            );
            self.messages.push(Message::tool_result(&c.id, out.content));
            if out.final_answer.is_some() {
                final_answer = out.final_answer;
            }
        }
        if stopped {
            // A report finished in the turn the cancel came in is the run's answer.
            if let Some(answer) = final_answer.filter(|_| self.is_root()) {
                return Some(AgentResult {
                    answer,
                    ending: Ending::Answered,
                    synthesized: false,
                });
            }
            // No checkpoint of a turn whose results never came: the last one (before
            // this turn) resumes cleanly.
            return Some(self.fallback(Ending::Cancelled, "the run was cancelled"));
        }
        if self.is_root() {
            self.checkpoint();
        } else if let Some(answer) = &final_answer {
            // A subagent's answer is its last message, as when it answers in text: a
            // consumer pairs each subagent with the item marked agent_finished.
            let id = self.next_item_id();
            self.emit(
                AgentItem::Message {
                    id,
                    role: "assistant".into(),
                    content: answer.clone(),
                },
                ItemMark::AgentFinished,
            );
        }
        final_answer.map(|answer| AgentResult {
            answer,
            ending: Ending::Answered,
            synthesized: false,
        })
    }

    /// Cuts the results of one turn in proportion when together they pass
    /// [`TURN_RESULTS_BUDGET_CHARS`], keeping each whole original as a context item.
    fn fit_turn_budget(&self, outputs: &mut [ToolOutput]) {
        let total: usize = outputs.iter().map(|o| o.content.len()).sum();
        if total <= TURN_RESULTS_BUDGET_CHARS {
            return;
        }
        let n = outputs.len();
        for o in outputs.iter_mut() {
            let len = o.content.len();
            let share = (TURN_RESULTS_BUDGET_CHARS as u128 * len as u128 / total as u128) as usize;
            let share = share.max(MIN_RESULT_SHARE_CHARS);
            if len <= share {
                continue;
            }
            let whole = std::mem::take(&mut o.content);
            let id = self.shared.contexts.insert(whole.clone());
            let why = format!(
                "the {n} tool results of this turn came to {total} bytes, over the per-turn budget of {TURN_RESULTS_BUDGET_CHARS}, so each was cut in proportion. The whole result is context item {id}: fetch it with get_context_item(item_id), or ask for less per call and spread the calls over turns"
            );
            // A JSON answer stays JSON: whole items are left out of its longest list.
            o.content = tools::fit::json_within(&whole, share, &why).unwrap_or_else(|| {
                let head = halo_trace::head(&whole, share);
                format!("{head}\n... [cut to {} of {len} bytes: {why}]", head.len())
            });
        }
    }

    /// `text` (a subagent's answer or a synthesis) capped at [`MAX_ANSWER_CHARS`]; a
    /// longer text is kept whole as a context item the head points to.
    fn cap_answer(&self, text: String, what: &str) -> String {
        if text.len() <= MAX_ANSWER_CHARS {
            return text;
        }
        let len = text.len();
        head_with_whole_stored(&self.shared.contexts, text, MAX_ANSWER_CHARS, |kept, id| {
            format!(
                "{what} cut at {kept} of {len} bytes; the whole text is context item {id}: fetch it with get_context_item(item_id)"
            )
        })
    }

    /// After the context overflowed: moves the results of the newest tool turn (most
    /// likely what overflowed it) to the context store, leaving their heads in place.
    /// Returns whether anything moved.
    fn offload_newest_results(&mut self) -> bool {
        let head = context::head_len(&self.messages);
        let Some(unit) = context::units(&self.messages, head)
            .into_iter()
            .rev()
            .find(|u| u.tool)
        else {
            return false;
        };
        let mut moved = false;
        for m in &mut self.messages[unit.start..unit.end] {
            let Message::Tool { content, .. } = m else {
                continue;
            };
            if content.len() <= OFFLOAD_HEAD_CHARS + 400 {
                continue;
            }
            let len = content.len();
            let original = std::mem::take(content);
            *content = head_with_whole_stored(
                &self.shared.contexts,
                original,
                OFFLOAD_HEAD_CHARS,
                |_, id| {
                    format!(
                    "moved out of the context, which it overflowed: {len} bytes in full, kept as context item {id}; fetch it with get_context_item(item_id) only if you need more, or narrow the request"
                )
                },
            );
            moved = true;
        }
        moved
    }

    /// The error for a call of a tool not offered this turn, naming the offered ones.
    fn not_offered(&self, name: &str) -> String {
        let offered = if self.offered.is_empty() {
            "none (answer in plain text now)".to_owned()
        } else {
            self.offered.join(", ")
        };
        if tools::specs(self.tool_set()).iter().any(|s| s.name == name) {
            format!("{name:?} is not offered this turn; tools offered this turn: {offered}")
        } else if name == "call_subagent" && !self.can_delegate() {
            // A real tool, withheld by the depth budget: saying "unknown" would send the
            // model looking for a typo.
            format!(
                "call_subagent is not available at depth {} (the run's --max-depth is {}): do the work yourself with the tools offered this turn: {offered}",
                self.info.depth, self.shared.config.max_depth
            )
        } else {
            format!("unknown tool {name:?}; tools offered this turn: {offered}")
        }
    }

    /// Runs one tool call. Never fails: problems become error results.
    async fn execute(&self, call: &ToolCall, turn: u32, index: usize) -> ToolOutput {
        // Only what was offered runs: tools are withheld for a reason (e.g. near the
        // token budget only final_answer is offered), which a model must not bypass.
        // final_answer is the exception: it only ends the agent (see below).
        if call.name != "final_answer" && !self.offered.contains(&call.name) {
            return ToolOutput::err(&self.not_offered(&call.name));
        }
        let args = match call.parse_arguments() {
            Ok(v) if v.is_object() => v,
            // `null` for "no arguments", as for a tool whose arguments are all optional.
            Ok(serde_json::Value::Null) => serde_json::Value::Object(Default::default()),
            Ok(_) => return ToolOutput::err("arguments must be a JSON object"),
            Err(e) => {
                return ToolOutput::err(&format!(
                    "the arguments are not valid JSON ({e}); send a JSON object matching the tool's schema"
                ))
            }
        };
        let shared = &self.shared;
        match call.name.as_str() {
            // Subagents are told to answer in plain text, but a model that calls
            // final_answer anyway has answered: its text is what the parent gets.
            "final_answer" => match parse_args::<tools::FinalAnswerArgs>(&args) {
                Ok(a) if !a.answer.trim().is_empty() => ToolOutput {
                    content: match tools::ignored_final_answer_fields(&args).as_slice() {
                        [] => "final answer recorded".to_owned(),
                        extra => format!(
                            "final answer recorded (ignored: {}; only `answer` is read)",
                            extra.join(", ")
                        ),
                    },
                    is_error: false,
                    final_answer: Some(a.answer),
                },
                Ok(_) => ToolOutput::err("the answer is empty; pass the complete report"),
                Err(e) => ToolOutput::err(&e),
            },
            "call_subagent" if self.can_delegate() => {
                match parse_args::<tools::SubagentArgs>(&args) {
                    Ok(a) => self.subagent(call, a.input, turn, index).await,
                    Err(e) => ToolOutput::err(&e),
                }
            }
            "get_context_item" => match parse_args::<tools::ContextItemArgs>(&args) {
                Ok(a) => match shared.contexts.get(&a.item_id) {
                    // A compacted turn can be larger than any one tool result may be: it
                    // comes in parts.
                    Some(text) => {
                        match tools::context_item_part(&a.item_id, &text, a.offset.unwrap_or(0)) {
                            Ok(part) => ToolOutput::ok(part),
                            Err(e) => ToolOutput::err(&e),
                        }
                    }
                    None => ToolOutput::err(&format!("no context item {:?}", a.item_id)),
                },
                Err(e) => ToolOutput::err(&e),
            },
            "sql" => match parse_args::<tools::sql::SqlArgs>(&args) {
                Ok(a) => match shared.sql.run(&shared.dataset, a).await {
                    // JSON, so never cut: rows are capped by the engine, but one column
                    // name (a long expression without AS) can pass the cap alone.
                    Ok(text) => ToolOutput::ok(tools::fit::guard(
                        text,
                        tools::MAX_RESULT_CHARS,
                        "select fewer or shorter columns (name long expressions with AS) or fewer rows",
                    )),
                    Err(e) => ToolOutput::err(&e),
                },
                Err(e) => ToolOutput::err(&e),
            },
            "synthesize_traces" => match parse_args::<tools::SynthesizeArgs>(&args) {
                Ok(a) => self.synthesize(a).await,
                Err(e) => ToolOutput::err(&e),
            },
            name => {
                let ds = Arc::clone(&shared.dataset);
                let repo = shared.repo.clone();
                let name_owned = name.to_owned();
                let joined = tokio::task::spawn_blocking(move || {
                    tools::run_trace_tool(&ds, &name_owned, &args)
                        .or_else(|| repo.as_ref().and_then(|r| r.run(&name_owned, &args)))
                })
                .await;
                match joined {
                    Ok(Some(Ok(text))) => {
                        ToolOutput::ok(tools::cap_text(text, tools::MAX_RESULT_CHARS))
                    }
                    Ok(Some(Err(e))) => ToolOutput::err(&e),
                    Ok(None) => {
                        let offered: Vec<String> = tools::specs(self.tool_set())
                            .into_iter()
                            .map(|s| s.name)
                            .collect();
                        ToolOutput::err(&format!(
                            "unknown tool {name:?}; available tools: {}",
                            offered.join(", ")
                        ))
                    }
                    Err(e) => ToolOutput::err(&format!("the tool crashed: {e}")),
                }
            }
        }
    }

    async fn subagent(
        &self,
        call: &ToolCall,
        input: String,
        turn: u32,
        index: usize,
    ) -> ToolOutput {
        if input.trim().is_empty() {
            return ToolOutput::err("input is empty; give the subagent a complete task");
        }
        if self.tokens_exceeded() {
            return ToolOutput::err(TOKEN_BUDGET_TOOL);
        }
        let depth = self.info.depth + 1;
        let info = AgentInfo {
            agent_id: format!("{}/{turn}.{index}", self.info.agent_id),
            parent_agent_id: Some(self.info.agent_id.clone()),
            parent_tool_call_id: Some(call.id.clone()),
            agent_name: "subagent".to_owned(),
            depth,
        };
        self.shared
            .usage
            .subagents
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let cfg = &self.shared.config;
        let system =
            prompts::subagent_system(depth, depth < cfg.max_depth, self.shared.repo.is_some());
        let task = prompts::subagent_task(&input, cfg.dataset_context.as_deref());
        let child = Agent::new(
            Arc::clone(&self.shared),
            info,
            vec![Message::system(system), Message::user(task)],
        );
        let r = child.run().await;
        let answer = self.cap_answer(r.answer, "the subagent's answer");
        match r.ending {
            Ending::Answered => ToolOutput::ok(answer),
            Ending::Cancelled => ToolOutput::err("the subagent was cancelled"),
            Ending::Failed(e) => ToolOutput::err(&format!(
                "the subagent failed ({e}). What it found before failing:\n{answer}"
            )),
            Ending::TurnBudget => ToolOutput::ok(format!(
                "(the subagent used up its turns before it answered; what it found may be incomplete)\n{answer}"
            )),
            Ending::TokenBudget => ToolOutput::ok(format!(
                "(the run's token budget ran out before the subagent answered; what it found may be incomplete)\n{answer}"
            )),
            Ending::NoFinalAnswer => ToolOutput::ok(format!(
                "(the subagent stopped before it answered; what it found may be incomplete)\n{answer}"
            )),
        }
    }

    async fn synthesize(&self, a: tools::SynthesizeArgs) -> ToolOutput {
        if a.trace_ids.is_empty() {
            return ToolOutput::err("trace_ids is empty");
        }
        if a.trace_ids.len() > 20 {
            return ToolOutput::err("at most 20 trace_ids per call");
        }
        let per_trace = (48_000 / a.trace_ids.len()).clamp(2_000, 8_000);
        let ds = Arc::clone(&self.shared.dataset);
        let ids = a.trace_ids.clone();
        let rendered = tokio::task::spawn_blocking(move || {
            let mut out = String::new();
            let mut missing = Vec::new();
            for id in &ids {
                match halo_query::render_trace(&ds, id, per_trace) {
                    Ok(r) => {
                        out.push_str(&format!("=== trace {id} ===\n{r}\n\n"));
                    }
                    Err(e) => missing.push(format!("{id}: {e}")),
                }
            }
            (out, missing)
        })
        .await;
        let (text, missing) = match rendered {
            Ok(r) => r,
            Err(e) => return ToolOutput::err(&format!("rendering failed: {e}")),
        };
        if text.is_empty() {
            return ToolOutput::err(&format!(
                "no trace could be rendered: {}",
                missing.join("; ")
            ));
        }
        let cfg = &self.shared.config;
        let model = cfg.synthesis_model().to_owned();
        let mut req = ModelRequest::new(
            model.clone(),
            vec![
                Message::system(prompts::SYNTHESIS_SYSTEM),
                Message::user(prompts::synthesis_request(a.focus.as_deref(), &text)),
            ],
        );
        req.temperature = cfg.temperature;
        req.max_output_tokens = cfg.max_output_tokens;
        if self.tokens_exceeded() {
            return ToolOutput::err(TOKEN_BUDGET_TOOL);
        }
        let resp = {
            let _permit = if self.info.depth > 0 {
                match self.slot().await {
                    Some(p) => Some(p),
                    None => return ToolOutput::err("cancelled"),
                }
            } else {
                None
            };
            tokio::select! {
                r = self.complete_announcing(&req, RequestKind::Synthesis) => r,
                _ = cancelled(&self.shared.cancel) => return ToolOutput::err("cancelled"),
            }
        };
        match resp {
            Ok(r) => {
                self.count_call(&req, &r);
                let mut s = self.cap_answer(r.text, "the synthesis");
                if !missing.is_empty() {
                    s.push_str(&format!("\n\n(not rendered: {})", missing.join("; ")));
                }
                ToolOutput::ok(s)
            }
            Err(e) => {
                self.shared.usage.add_failed_call();
                ToolOutput::err(&format!("the synthesis model failed: {e}"))
            }
        }
    }

    /// A request of this agent's other than its turn (a synthesis, a compaction), whose
    /// retries are announced as the turn's are: a wait on a rate limit is never silent.
    async fn complete_announcing(
        &self,
        req: &ModelRequest,
        request: RequestKind,
    ) -> Result<ModelResponse, halo_provider::ProviderError> {
        let shared = &self.shared;
        shared
            .client
            .complete_with(req, |ev| {
                if let StreamEvent::Retrying(retry) = ev {
                    shared.emitter.retry(&self.info, request, retry);
                }
            })
            .await
    }

    async fn slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        tokio::select! {
            p = self.shared.slots.acquire() => p.ok(),
            _ = cancelled(&self.shared.cancel) => None,
        }
    }

    /// One model request with refusal retries; returns the response and the
    /// id its text streamed under.
    async fn call_model(
        &mut self,
        tools: Vec<ToolSpec>,
        note: Option<String>,
    ) -> Result<(ModelResponse, String), Stop> {
        let mut refusals = 0;
        let mut compacted_for_length = false;
        loop {
            // Also checked here, not only at the start of a turn: a refusal retry or a
            // retry after compaction is one more request the budget must allow.
            if self.tokens_exceeded() {
                return Err(Stop::TokenBudget);
            }
            let cfg = &self.shared.config;
            let mut messages = self.messages.clone();
            if let Some(n) = &note {
                messages.push(Message::user(n.clone()));
            }
            let req = ModelRequest {
                model: cfg.model.clone(),
                messages,
                parallel_tool_calls: cfg.parallel_tool_calls.filter(|_| !tools.is_empty()),
                tools: tools.clone(),
                temperature: cfg.temperature,
                max_output_tokens: cfg.max_output_tokens,
                reasoning_effort: cfg.reasoning_effort,
            };
            let item_id = self.next_item_id();
            let mut current = item_id.clone();
            let result = {
                let shared = &*self.shared;
                let info = &self.info;
                let _permit = if info.depth > 0 {
                    match self.slot().await {
                        Some(p) => Some(p),
                        None => return Err(Stop::Cancelled),
                    }
                } else {
                    None
                };
                // The budget is checked counting the requests on their way (each holds its
                // estimated size until it is counted), once this one may be sent (agents
                // waiting for a slot hold nothing): requests side by side cannot all pass
                // it at once.
                let held = estimated_input_tokens(&req)
                    + u64::from(shared.config.max_output_tokens.unwrap_or(0));
                let _held = match shared.config.max_total_tokens {
                    Some(max) if !shared.usage.reserve(held, max) => return Err(Stop::TokenBudget),
                    Some(_) => Some(Held(&shared.usage, held)),
                    None => None,
                };
                let current = &mut current;
                let fut = shared.client.complete_with(&req, |ev| match ev {
                    StreamEvent::TextDelta(t) => shared.emitter.delta(info, current, t),
                    StreamEvent::Restart { attempt } => *current = format!("{item_id}~{attempt}"),
                    StreamEvent::Retrying(retry) => {
                        shared.emitter.retry(info, RequestKind::Agent, retry)
                    }
                    _ => {}
                });
                tokio::select! {
                    r = fut => r,
                    _ = cancelled(&shared.cancel) => return Err(Stop::Cancelled),
                }
            };
            match result {
                Ok(resp) => {
                    self.count_call(&req, &resp);
                    if resp.refusal.is_some()
                        && resp.tool_calls.is_empty()
                        && refusals < self.shared.config.refusal_retries
                    {
                        refusals += 1;
                        continue;
                    }
                    return Ok((resp, current));
                }
                Err(e) if e.is_context_length_exceeded() && !compacted_for_length => {
                    self.shared.usage.add_failed_call();
                    compacted_for_length = true;
                    // The newest results are most likely what overflowed the window, and
                    // compaction keeps the newest tool turn: move those out first.
                    let moved = self.offload_newest_results();
                    match self.maybe_compact(true).await {
                        Ok(compacted) if compacted || moved => continue,
                        Ok(_) => return Err(Stop::Failed(e.to_string())),
                        Err(stop) => return Err(stop),
                    }
                }
                Err(e) => {
                    self.shared.usage.add_failed_call();
                    return Err(Stop::Failed(e.to_string()));
                }
            }
        }
    }

    /// Compacts older context when it is over the threshold (or `force`).
    /// Returns whether anything was compacted.
    async fn maybe_compact(&mut self, force: bool) -> Result<bool, Stop> {
        // A compaction request is a request too: none past the token budget.
        if self.tokens_exceeded() {
            return Ok(false);
        }
        let cfg = self.shared.config.compaction.clone();
        let size = context::estimate_tokens(&self.messages);
        if !force && (size <= cfg.threshold_tokens || size <= self.compaction_floor) {
            return Ok(false);
        }
        let head = context::head_len(&self.messages);
        let units = context::units(&self.messages, head);
        let (tool_turns, plain) = if force {
            (1, 1)
        } else {
            (cfg.keep_recent_tool_turns, cfg.keep_recent_messages)
        };
        let keep = context::Keep {
            tool_turns,
            plain,
            // Room for the turns to come before the next compaction.
            tokens: cfg.threshold_tokens / 2,
        };
        let n = context::compactable(&self.messages, &units, keep);
        if n == 0 {
            return Ok(false);
        }
        let start = units[0].start;
        let end = units[n - 1].end;
        let mut listing = Vec::new();
        let mut originals = String::new();
        let mut ids = Vec::new();
        for u in &units[..n] {
            let (label, text) = context::render_unit(&self.messages[u.start..u.end]);
            ids.push((label, text.clone()));
            originals.push_str(&text);
            originals.push('\n');
        }
        let model = self.shared.config.compaction_model().to_owned();
        let mut req = ModelRequest::new(
            model.clone(),
            vec![
                Message::system(prompts::COMPACTION_SYSTEM),
                Message::user(prompts::compaction_request(&tools::cap_text(
                    originals, 400_000,
                ))),
            ],
        );
        req.temperature = self.shared.config.temperature;
        let resp = {
            let _permit = if self.info.depth > 0 {
                match self.slot().await {
                    Some(p) => Some(p),
                    None => return Err(Stop::Cancelled),
                }
            } else {
                None
            };
            tokio::select! {
                r = self.complete_announcing(&req, RequestKind::Compaction) => r,
                _ = cancelled(&self.shared.cancel) => return Err(Stop::Cancelled),
            }
        };
        let summary = match resp {
            Ok(r) => {
                self.count_call(&req, &r);
                r.text
            }
            Err(_) => {
                self.shared.usage.add_failed_call();
                // Leave the context as it was; try again only after it grew.
                self.compaction_floor = size + size / 4;
                return Ok(false);
            }
        };
        if summary.trim().is_empty() {
            self.compaction_floor = size + size / 4;
            return Ok(false);
        }
        for (label, text) in ids {
            let id = self.shared.contexts.insert(text);
            listing.push(format!("{id} ({label})"));
        }
        let message = format!(
            "{COMPACTED_PREFIX} Earlier work was summarized to save context. Originals: {}. Fetch any of them in full with get_context_item(item_id).\n\n{}",
            listing.join(", "),
            summary.trim()
        );
        self.messages.splice(start..end, [Message::user(message)]);
        self.shared
            .usage
            .compactions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Still over (a long summary, a newest turn near the threshold alone): compacting
        // again before the context grew would summarize the summary for nothing.
        let after = context::estimate_tokens(&self.messages);
        self.compaction_floor = if after > cfg.threshold_tokens {
            after + after / 4
        } else {
            0
        };
        Ok(true)
    }

    /// The turn budget is used up: ask once more for the answer, without tools.
    async fn exhausted(&mut self) -> AgentResult {
        let reason = "the turn budget (--max-turns) was used up";
        if self.tokens_exceeded() {
            return self.fallback(Ending::TokenBudget, TOKEN_BUDGET_REASON);
        }
        // The last request carries the last turn's results too.
        if let Err(Stop::Cancelled) = self.maybe_compact(false).await {
            return self.fallback(Ending::Cancelled, "the run was cancelled");
        }
        self.turn = self.turns_used + 1;
        self.messages
            .push(Message::user(prompts::budget_exhausted(self.is_root())));
        let tools = if self.is_root() {
            tools::final_answer_only()
        } else {
            Vec::new()
        };
        match self.call_model(tools, None).await {
            Ok((resp, message_id)) => {
                let from_call = resp
                    .tool_calls
                    .iter()
                    .find(|c| c.name == "final_answer")
                    .and_then(|c| {
                        parse_args::<tools::FinalAnswerArgs>(&c.parse_arguments().ok()?).ok()
                    })
                    .map(|a| a.answer);
                let answer = from_call.unwrap_or(resp.text);
                if answer.trim().is_empty() {
                    return self.fallback(Ending::TurnBudget, reason);
                }
                self.emit(
                    AgentItem::Message {
                        id: message_id,
                        role: "assistant".into(),
                        content: answer.clone(),
                    },
                    // The root's answer becomes the report, which is the run's final item.
                    if self.is_root() {
                        ItemMark::Plain
                    } else {
                        ItemMark::AgentFinished
                    },
                );
                AgentResult {
                    answer,
                    ending: Ending::TurnBudget,
                    synthesized: false,
                }
            }
            Err(Stop::Cancelled) => self.fallback(Ending::Cancelled, "the run was cancelled"),
            Err(Stop::TokenBudget) => self.fallback(Ending::TokenBudget, TOKEN_BUDGET_REASON),
            // The provider failed: that is how the run ended (exit 3), whatever the budget.
            Err(Stop::Failed(e)) => self.fallback(
                Ending::Failed(e.clone()),
                &format!("{reason}, and the last request failed: {e}"),
            ),
        }
    }

    /// A report assembled from what the agent found, when the model could not
    /// write one.
    fn fallback(&mut self, ending: Ending, reason: &str) -> AgentResult {
        // A subagent's result goes to its parent as a tool result, which already says why
        // the subagent stopped (see `subagent`): only the root's is a report, with a
        // report's heading.
        let mut s = match self.is_root() {
            // The reason may be a provider's message that ends its own sentence.
            true => format!(
                "# Partial report\n\n_The investigation ended before a final answer was written: {}. \
What follows is what was found so far, unedited._\n",
                reason.trim_end().trim_end_matches('.')
            ),
            false => String::new(),
        };
        if self.findings.is_empty() {
            let calls = self.last_tool_results(FALLBACK_TOOL_RESULTS);
            if calls.is_empty() {
                s.push_str(match self.is_root() {
                    true => "\nNothing was found before the run ended.\n",
                    false => "\nNothing was found before the subagent stopped.\n",
                });
            } else {
                s.push_str(
                    "\nNo conclusions were written yet. The last tool results the agent had, \
                     in order (heads):\n\n",
                );
                for line in calls {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        }
        let mut total = 0;
        let mut parts = Vec::new();
        for f in self.findings.iter().rev() {
            total += f.len();
            if total > 60_000 {
                break;
            }
            parts.push(f.as_str());
        }
        for f in parts.into_iter().rev() {
            s.push_str("\n---\n\n");
            s.push_str(f.trim());
            s.push('\n');
        }
        // A subagent that failed or ran out of budget ends with an item marked
        // agent_finished too (what it hands back), so that a consumer can pair every
        // subagent with its end. A cancelled run stops emitting instead.
        if !self.is_root() && !matches!(ending, Ending::Cancelled) {
            let id = self.next_item_id();
            self.emit(
                AgentItem::Message {
                    id,
                    role: "assistant".into(),
                    content: s.trim_start().to_owned(),
                },
                ItemMark::AgentFinished,
            );
        }
        AgentResult {
            answer: s,
            ending,
            synthesized: true,
        }
    }

    /// The last `n` tool calls of this agent with the heads of their results, one
    /// Markdown list item each, oldest first.
    fn last_tool_results(&self, n: usize) -> Vec<String> {
        let mut calls: std::collections::HashMap<&str, &ToolCall> = Default::default();
        let mut lines = Vec::new();
        for m in &self.messages {
            match m {
                Message::Assistant { tool_calls, .. } => {
                    calls.extend(tool_calls.iter().map(|c| (c.id.as_str(), c)));
                }
                Message::Tool {
                    tool_call_id,
                    content,
                } => {
                    let (name, args) = calls
                        .get(tool_call_id.as_str())
                        .map_or(("tool", ""), |c| (c.name.as_str(), c.arguments.as_str()));
                    lines.push(format!(
                        "- `{name}` {} → {}",
                        halo_trace::one_line(args, 200),
                        halo_trace::one_line(content, 400)
                    ));
                }
                _ => {}
            }
        }
        let skip = lines.len().saturating_sub(n);
        lines.split_off(skip)
    }

    /// Emits (and saves) a checkpoint of the root.
    fn checkpoint(&self) {
        let shared = &self.shared;
        let cp = RunCheckpoint {
            version: CHECKPOINT_VERSION,
            run_id: shared.run_id.clone(),
            prompt: shared.prompt.clone(),
            dataset_fingerprint: shared.dataset.fingerprint(),
            dataset_paths: shared.dataset.sources().map(|p| p.to_path_buf()).collect(),
            root_messages: self.messages.clone(),
            turns_used: self.turns_used,
            tokens_used: shared.usage.total_tokens(),
            reprompted: self.reprompted,
            context_items: shared.contexts.snapshot(),
            completed: false,
        };
        let path = shared.config.checkpoint_path.clone();
        if let Some(p) = &path {
            shared.checkpoints.save(cp.clone(), p.clone());
        }
        // The event names the file; only without one is the stream the snapshot's home.
        shared.emitter.emit(|sequence| {
            EngineEvent::Checkpoint(crate::events::CheckpointEvent {
                sequence,
                turns_used: cp.turns_used,
                tokens_used: cp.tokens_used,
                checkpoint: path.is_none().then(|| cp.clone()),
                path,
            })
        });
        *shared
            .last_checkpoint
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(cp);
    }
}

/// The first `keep` bytes of `text` (on a character boundary), followed by `... [note]`;
/// the whole text goes to `contexts`, where `get_context_item` finds it. `note` gets the
/// length kept and the item's id.
fn head_with_whole_stored(
    contexts: &crate::context::ContextStore,
    text: String,
    keep: usize,
    note: impl FnOnce(usize, &str) -> String,
) -> String {
    let head = halo_trace::head(&text, keep).to_owned();
    let id = contexts.insert(text);
    format!("{head}\n... [{}]", note(head.len(), &id))
}

/// Tokens held against the budget while a request is on its way; let go when dropped.
struct Held<'u>(&'u crate::record::Tracker, u64);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.release(self.1);
    }
}

/// A request's input in tokens, estimated as characters / 4.
fn estimated_input_tokens(req: &ModelRequest) -> u64 {
    let tools: usize = req
        .tools
        .iter()
        .map(|t| t.name.len() + t.description.len() + t.parameters.to_string().len())
        .sum();
    (context::estimate_tokens(&req.messages) + tools / 4) as u64
}

/// Tokens of a request and its response by characters / 4, for providers that report
/// no usage.
fn estimate_usage(req: &ModelRequest, resp: &ModelResponse) -> halo_provider::Usage {
    let output = resp.text.len()
        + resp.refusal.as_ref().map_or(0, String::len)
        + resp
            .tool_calls
            .iter()
            .map(|c| c.name.len() + c.arguments.len())
            .sum::<usize>();
    halo_provider::Usage {
        input_tokens: estimated_input_tokens(req),
        output_tokens: output.div_ceil(4) as u64,
        ..Default::default()
    }
}

pub(crate) fn root_info() -> AgentInfo {
    AgentInfo {
        agent_id: "root".to_owned(),
        parent_agent_id: None,
        parent_tool_call_id: None,
        agent_name: "root".to_owned(),
        depth: 0,
    }
}
