//! Simulation of one agent run, producing the spans of one trace.

use std::borrow::Cow;

use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::Rng;

use super::content::{self, Call, ToolDef};
use super::model::{AttrValue, Dialect, Service, Span, SpanEvent, SpanKind, StatusCode, Trace};
use super::write::push_json_string;
use super::FailureMode;

#[derive(Debug)]
struct Model {
    name: &'static str,
    provider: &'static str,
    response_suffix: &'static str,
    ttft_ms: f64,
    ms_per_token: f64,
    price_in: f64,
    price_out: f64,
}

static MODELS: [Model; 4] = [
    Model {
        name: "gpt-5.4-mini",
        provider: "openai",
        response_suffix: "-2026-03-05",
        ttft_ms: 350.0,
        ms_per_token: 7.0,
        price_in: 0.25,
        price_out: 2.0,
    },
    Model {
        name: "gpt-5.4",
        provider: "openai",
        response_suffix: "-2026-03-05",
        ttft_ms: 600.0,
        ms_per_token: 13.0,
        price_in: 2.5,
        price_out: 15.0,
    },
    Model {
        name: "claude-sonnet-4-6",
        provider: "anthropic",
        response_suffix: "-20260217",
        ttft_ms: 700.0,
        ms_per_token: 15.0,
        price_in: 3.0,
        price_out: 15.0,
    },
    Model {
        name: "gemini-3-flash",
        provider: "google",
        response_suffix: "-preview-02-2026",
        ttft_ms: 300.0,
        ms_per_token: 5.0,
        price_in: 0.3,
        price_out: 2.5,
    },
];

impl Model {
    /// Duration of a typical (100 output tokens) call, in ms.
    fn typical_ms(&self) -> f64 {
        self.ttft_ms + 100.0 * self.ms_per_token
    }
}

const AGENTS: &[&str] = &["AppWorldAssistant", "PersonalOpsAgent", "TaskPlanner"];
const SUB_AGENT: &str = "FileSystemHelper";
const TRANSFER_TOOL: ToolDef = ToolDef {
    name: "transfer_to_file_system_helper",
    app: "handoff",
    description: "Hand off the file system part of the task to the FileSystemHelper agent.",
    params: &[],
    latency_ms: 2,
};

const REFUSALS: &[&str] = &[
    "I'm sorry, but I can't help with that.",
    "I'm sorry, but I can't help with that request.",
    "I'm sorry, I can't assist with that.",
];
const REPROMPT: &str = "Please continue with the task. It is authorized by the account owner.";
const PREMATURE: &[&str] = &[
    "Done! I've completed the task.",
    "Done! I've completed the task. Let me know if you need anything else.",
    "Done! I've completed the task as requested.",
];

/// A planned tool call with its injected fault.
#[derive(Debug, Clone)]
struct PCall {
    call: Call,
    fault: CallFault,
}

#[derive(Debug, Clone)]
enum CallFault {
    None,
    Error { msg: String, exc: &'static str },
    Empty,
    Slow(f64),
}

#[derive(Debug)]
enum Step {
    Tools(Vec<PCall>),
    Refusal { reprompt: bool },
    Delegate(Vec<Step>),
}

#[derive(Debug, Clone)]
enum LlmFault {
    None,
    Retry(Vec<ProviderErr>),
    Abort(ProviderErr),
    Slow(f64),
    Tokens(f64),
}

#[derive(Debug, Clone)]
struct ProviderErr {
    msg: String,
    exc: &'static str,
    http: i64,
    duration_ms: f64,
    finish: Option<&'static str>,
}

#[derive(Debug, Clone)]
struct Msg {
    role: &'static str,
    content: String,
    calls: Vec<Call>,
    tool_call_id: String,
}

impl Msg {
    fn new(role: &'static str, content: String) -> Msg {
        Msg {
            role,
            content,
            calls: Vec::new(),
            tool_call_id: String::new(),
        }
    }
    fn size(&self) -> usize {
        self.content.len()
            + self
                .calls
                .iter()
                .map(|c| c.args.len() + c.tool.len() + 40)
                .sum::<usize>()
            + 16
    }
}

enum RunEnd {
    Done(String),
    Aborted(String, &'static str),
    Exhausted,
    Refused(String),
}

struct Sim<'a> {
    rng: &'a mut SmallRng,
    svc: &'static Service,
    model: &'static Model,
    trace_id: String,
    spans: Vec<Span>,
    now: u64,
    agent: &'static str,
    session: String,
    user: String,
    llm_index: usize,
    llm_faults: Vec<LlmFault>,
    history_window: usize,
    compact: bool,
    llm_count: usize,
}

type Attrs = Vec<(Cow<'static, str>, AttrValue)>;

fn ms(v: f64) -> u64 {
    (v.max(0.05) * 1_000_000.0) as u64
}

impl Sim<'_> {
    fn oi(&self) -> bool {
        self.svc.dialect == Dialect::OpenInference
    }

    fn span(&mut self, parent: &str, name: String, kind: SpanKind) -> Span {
        Span {
            trace_id: self.trace_id.clone(),
            span_id: content::hex(self.rng, 16),
            parent_span_id: parent.to_owned(),
            name,
            kind,
            start_ns: self.now,
            end_ns: self.now,
            status: if self.oi() {
                StatusCode::Ok
            } else {
                StatusCode::Unset
            },
            status_message: String::new(),
            attributes: Vec::with_capacity(24),
            events: Vec::new(),
        }
    }

    fn gap(&mut self) {
        self.now += ms(self.rng.random_range(1.0..25.0));
    }

    fn inference_keys(&self, a: &mut Attrs, kind: &'static str, agent: &'static str, llm: bool) {
        if !self.svc.inference_keys {
            return;
        }
        a.push(("inference.export.schema_version".into(), AttrValue::Int(1)));
        a.push(("inference.project_id".into(), self.svc.project_id.into()));
        a.push(("inference.observation_kind".into(), kind.into()));
        a.push(("inference.agent_name".into(), agent.into()));
        a.push(("inference.session_id".into(), self.session.clone().into()));
        a.push(("inference.user_id".into(), self.user.clone().into()));
        if !llm && self.svc.dialect == Dialect::OpenInference {
            a.push(("inference.llm.model_name".into(), AttrValue::Null));
            a.push(("inference.llm.input_tokens".into(), AttrValue::Null));
            a.push(("inference.llm.output_tokens".into(), AttrValue::Null));
        }
    }

    fn error(&self, span: &mut Span, msg: &str, exc: &'static str) {
        span.status = StatusCode::Error;
        span.status_message = msg.to_owned();
        if !self.oi() {
            span.attributes.push(("error.type".into(), exc.into()));
        }
        span.attributes.push(("exception.type".into(), exc.into()));
        span.attributes
            .push(("exception.message".into(), msg.into()));
        span.events.push(SpanEvent {
            name: "exception",
            time_ns: span.end_ns,
            attributes: vec![
                ("exception.type".into(), exc.into()),
                ("exception.message".into(), msg.into()),
                ("exception.escaped".into(), AttrValue::Bool(false)),
            ],
        });
    }

    // ---- LLM span ----------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn llm_span(
        &mut self,
        parent: &str,
        agent: &'static str,
        conv: &[Msg],
        tools: &[&ToolDef],
        out: Option<&Msg>,
        finish: &'static str,
        fault: &LlmFault,
        perr: Option<&ProviderErr>,
    ) {
        self.gap();
        let m = self.model;
        let name = match (self.svc.dialect, self.svc.chain_root) {
            (Dialect::GenAi, _) => format!("chat {}", m.name),
            (Dialect::OpenInference, true) => match m.provider {
                "openai" => "ChatOpenAI".to_owned(),
                "anthropic" => "ChatAnthropic".to_owned(),
                _ => "ChatGoogleGenerativeAI".to_owned(),
            },
            (Dialect::OpenInference, false) => "response".to_owned(),
        };
        let mut span = self.span(parent, name, SpanKind::Client);
        // Conversation window: system + user + last N.
        let window: Vec<&Msg> = if conv.len() > 2 + self.history_window {
            conv[..2]
                .iter()
                .chain(conv[conv.len() - self.history_window..].iter())
                .collect()
        } else {
            conv.iter().collect()
        };
        let full_schema_chars: usize = tools
            .iter()
            .map(|t| content::tool_schema(t, false).len())
            .sum();
        let schemas: Vec<String> = tools
            .iter()
            .map(|t| content::tool_schema(t, self.compact))
            .collect();
        let in_chars: usize = window.iter().map(|m| m.size()).sum::<usize>() + full_schema_chars;
        // Compact datasets record the system prompt only on the first LLM call of a trace.
        let window: Vec<&Msg> = if self.compact && self.llm_count > 0 {
            window.into_iter().filter(|m| m.role != "system").collect()
        } else {
            window
        };
        self.llm_count += 1;
        let mut prompt = (in_chars / 4) as i64 + self.rng.random_range(3..40);
        let out_chars = out.map(|o| o.size()).unwrap_or(0);
        let mut completion = (out_chars / 4) as i64 + self.rng.random_range(4..60);
        if let LlmFault::Tokens(f) = fault {
            prompt = (prompt as f64 * f).max(self.rng.random_range(30_000.0..60_000.0)) as i64;
        }
        let mut dur = m.ttft_ms
            + completion as f64 * m.ms_per_token * self.rng.random_range(0.8..1.25)
            + prompt as f64 * 0.03;
        if let LlmFault::Slow(f) = fault {
            dur = m.typical_ms() * f;
        }
        if let Some(e) = perr {
            dur = e.duration_ms;
        }
        self.now += ms(dur);
        span.end_ns = self.now;
        let a = &mut span.attributes;
        let temperature = 0.2;
        let max_tokens = 4096;
        if self.svc.dialect == Dialect::OpenInference {
            a.push(("openinference.span.kind".into(), "LLM".into()));
            a.push(("llm.provider".into(), m.provider.into()));
            a.push(("llm.model_name".into(), m.name.into()));
            a.push(("llm.invocation_parameters".into(), format!("{{\"temperature\":{temperature},\"max_tokens\":{max_tokens},\"parallel_tool_calls\":true}}").into()));
            for (i, msg) in window.iter().enumerate() {
                push_oi_message(a, "llm.input_messages", i, msg);
            }
            if let Some(o) = out {
                push_oi_message(a, "llm.output_messages", 0, o);
                a.push(("output.value".into(), o.content.clone().into()));
            }
            for (i, s) in schemas.into_iter().enumerate() {
                a.push((format!("llm.tools.{i}.tool.json_schema").into(), s.into()));
            }
            if perr.is_none() {
                a.push(("llm.token_count.prompt".into(), prompt.into()));
                a.push(("llm.token_count.completion".into(), completion.into()));
                a.push(("llm.token_count.total".into(), (prompt + completion).into()));
            }
            a.push(("session.id".into(), self.session.clone().into()));
            a.push(("user.id".into(), self.user.clone().into()));
        } else {
            a.push(("gen_ai.operation.name".into(), "chat".into()));
            a.push(("gen_ai.provider.name".into(), m.provider.into()));
            a.push(("gen_ai.request.model".into(), m.name.into()));
            a.push((
                "gen_ai.request.temperature".into(),
                AttrValue::Float(temperature),
            ));
            a.push((
                "gen_ai.request.max_tokens".into(),
                AttrValue::Int(max_tokens),
            ));
            a.push(("gen_ai.agent.name".into(), agent.into()));
            a.push(("gen_ai.conversation.id".into(), self.session.clone().into()));
            a.push((
                "gen_ai.input.messages".into(),
                genai_messages(&window, None).into(),
            ));
            let mut defs = String::from("[");
            for (i, s) in schemas.iter().enumerate() {
                if i > 0 {
                    defs.push(',');
                }
                defs.push_str(s);
            }
            defs.push(']');
            a.push(("gen_ai.tool.definitions".into(), defs.into()));
            if perr.is_none() {
                a.push((
                    "gen_ai.response.model".into(),
                    format!("{}{}", m.name, m.response_suffix).into(),
                ));
                a.push((
                    "gen_ai.response.id".into(),
                    format!("chatcmpl-{}", content::hex(self.rng, 24)).into(),
                ));
                a.push(("gen_ai.usage.input_tokens".into(), prompt.into()));
                a.push(("gen_ai.usage.output_tokens".into(), completion.into()));
                a.push((
                    "gen_ai.response.finish_reasons".into(),
                    AttrValue::StrArray(vec![finish.to_owned()]),
                ));
                if let Some(o) = out {
                    a.push((
                        "gen_ai.output.messages".into(),
                        genai_messages(&[o], Some(finish)).into(),
                    ));
                }
            }
        }
        if let Some(e) = perr {
            if let Some(f) = e.finish {
                let key = if self.oi() {
                    "llm.finish_reason"
                } else {
                    "gen_ai.response.finish_reasons"
                };
                if self.oi() {
                    a.push((key.into(), f.into()));
                } else {
                    a.push((key.into(), AttrValue::StrArray(vec![f.to_owned()])));
                }
            }
            a.push(("http.status_code".into(), e.http.into()));
            completion = 0;
            prompt = 0;
        }
        if self.svc.inference_keys {
            let mut extra = Vec::new();
            self.inference_keys(&mut extra, "LLM", agent, true);
            extra.push(("inference.llm.provider".into(), m.provider.into()));
            extra.push(("inference.llm.model_name".into(), m.name.into()));
            if perr.is_none() {
                extra.push(("inference.llm.input_tokens".into(), prompt.into()));
                extra.push(("inference.llm.output_tokens".into(), completion.into()));
                let cost = prompt as f64 * m.price_in / 1e6 + completion as f64 * m.price_out / 1e6;
                extra.push((
                    "inference.llm.cost.total".into(),
                    format!("{cost:.6}").into(),
                ));
            }
            span.attributes.extend(extra);
        }
        if let Some(e) = perr {
            let (msg, exc) = (e.msg.clone(), e.exc);
            self.error(&mut span, &msg, exc);
        }
        self.spans.push(span);
    }

    // ---- TOOL span ---------------------------------------------------------------

    fn tool_span(
        &mut self,
        parent: &str,
        agent: &'static str,
        pc: &PCall,
        result: &str,
        start: u64,
    ) -> u64 {
        let tool = pc.call.tool.as_str();
        let def = content::tool_def(tool);
        let base = def
            .map(|d| d.latency_ms as f64)
            .unwrap_or(if tool.starts_with("transfer_to") {
                2.0
            } else {
                15.0
            });
        let dur = match pc.fault {
            CallFault::Slow(f) => base * f,
            CallFault::Error { .. } if def.is_none() => self.rng.random_range(0.3..3.0),
            _ => base * self.rng.random_range(0.6..1.6),
        };
        let name = match (self.svc.dialect, self.svc.chain_root) {
            (Dialect::GenAi, _) => format!("execute_tool {tool}"),
            (Dialect::OpenInference, true) => tool.to_owned(),
            (Dialect::OpenInference, false) => format!("function.{tool}"),
        };
        self.now = start;
        let mut span = self.span(parent, name, SpanKind::Internal);
        span.end_ns = start + ms(dur);
        let output = match &pc.fault {
            CallFault::Error { msg, .. } => format!("Error: {msg}"),
            _ if self.compact => shorten(result.to_owned(), 400),
            _ => result.to_owned(),
        };
        let a = &mut span.attributes;
        if self.oi() {
            a.push(("openinference.span.kind".into(), "TOOL".into()));
            a.push(("tool.name".into(), tool.to_owned().into()));
            if let Some(d) = def {
                a.push(("tool.description".into(), d.description.into()));
            }
            a.push(("tool.parameters".into(), pc.call.args.clone().into()));
            a.push(("tool_call.id".into(), pc.call.id.clone().into()));
            a.push(("input.value".into(), pc.call.args.clone().into()));
            a.push(("input.mime_type".into(), "application/json".into()));
            a.push(("output.value".into(), output.into()));
            a.push(("session.id".into(), self.session.clone().into()));
        } else {
            a.push(("gen_ai.operation.name".into(), "execute_tool".into()));
            a.push(("gen_ai.tool.name".into(), tool.to_owned().into()));
            a.push(("gen_ai.tool.type".into(), "function".into()));
            if let Some(d) = def {
                a.push(("gen_ai.tool.description".into(), d.description.into()));
            }
            a.push(("gen_ai.tool.call.id".into(), pc.call.id.clone().into()));
            a.push((
                "gen_ai.tool.call.arguments".into(),
                pc.call.args.clone().into(),
            ));
            a.push(("gen_ai.tool.call.result".into(), output.into()));
            a.push(("gen_ai.agent.name".into(), agent.into()));
            a.push(("gen_ai.conversation.id".into(), self.session.clone().into()));
        }
        let mut extra = Vec::new();
        self.inference_keys(&mut extra, "TOOL", agent, false);
        span.attributes.extend(extra);
        if let CallFault::Error { msg, exc } = &pc.fault {
            self.error(&mut span, msg, exc);
        }
        let end = span.end_ns;
        self.spans.push(span);
        end
    }

    // ---- agent loop ----------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn run_agent(
        &mut self,
        parent: &str,
        agent: &'static str,
        conv: &mut Vec<Msg>,
        tools: &[&ToolDef],
        steps: Vec<Step>,
        turn_spans: bool,
        final_text: Option<String>,
    ) -> RunEnd {
        let mut prev_error: Option<String> = None;
        let mut refusals = 0usize;
        let mut last_refusal = String::new();
        let n_steps = steps.len();
        let mut results_cache: Vec<(String, String, String)> = Vec::new();
        for (t, step) in steps.into_iter().enumerate() {
            let mut turn = None;
            let mut lparent = parent.to_owned();
            if turn_spans {
                self.gap();
                let s = self.turn_span(parent, agent, t + 1);
                lparent = s.span_id.clone();
                turn = Some(s);
            }
            if let Some(end) = self.provider_faults(&lparent, agent, conv, tools) {
                if let Some(mut s) = turn {
                    self.close(&mut s);
                }
                return end;
            }
            let fault = self.take_fault();
            match step {
                Step::Refusal { reprompt } => {
                    let text = REFUSALS
                        .choose(self.rng)
                        .unwrap_or(&REFUSALS[0])
                        .to_string();
                    let out = Msg::new("assistant", text.clone());
                    self.llm_span(
                        &lparent,
                        agent,
                        conv,
                        tools,
                        Some(&out),
                        "stop",
                        &fault,
                        None,
                    );
                    conv.push(out);
                    refusals += 1;
                    last_refusal = text;
                    if reprompt {
                        conv.push(Msg::new("user", REPROMPT.to_owned()));
                    }
                }
                Step::Tools(calls) => {
                    let text = self.reasoning(&calls, prev_error.take(), t == 0);
                    let mut out = Msg::new("assistant", text);
                    out.calls = calls.iter().map(|c| c.call.clone()).collect();
                    self.llm_span(
                        &lparent,
                        agent,
                        conv,
                        tools,
                        Some(&out),
                        "tool_calls",
                        &fault,
                        None,
                    );
                    conv.push(out);
                    self.gap();
                    let start = self.now;
                    let mut end = start;
                    for pc in &calls {
                        let empty = matches!(pc.fault, CallFault::Empty);
                        let cached = results_cache
                            .iter()
                            .find(|(tn, a, _)| *tn == pc.call.tool && *a == pc.call.args)
                            .map(|(_, _, r)| r.clone());
                        let result = match cached {
                            Some(r) => r,
                            None => {
                                let r = content::tool_result(self.rng, &pc.call, empty);
                                results_cache.push((
                                    pc.call.tool.clone(),
                                    pc.call.args.clone(),
                                    r.clone(),
                                ));
                                if results_cache.len() > 4 {
                                    results_cache.remove(0);
                                }
                                r
                            }
                        };
                        let s = start + ms(self.rng.random_range(0.0..3.0));
                        let e = self.tool_span(&lparent, agent, pc, &result, s);
                        end = end.max(e);
                        let mut tm = Msg::new(
                            "tool",
                            match &pc.fault {
                                CallFault::Error { msg, .. } => {
                                    prev_error = Some(msg.clone());
                                    format!("Error: {msg}")
                                }
                                _ => shorten(result, 700),
                            },
                        );
                        tm.tool_call_id = pc.call.id.clone();
                        conv.push(tm);
                    }
                    self.now = end;
                }
                Step::Delegate(sub_steps) => {
                    let mut out = Msg::new("assistant", "The file system part is best handled by the FileSystemHelper agent, so I'll hand it off.".to_owned());
                    let call =
                        content::call(self.rng, TRANSFER_TOOL.name, content::Args::default());
                    out.calls = vec![call.clone()];
                    self.llm_span(
                        &lparent,
                        agent,
                        conv,
                        tools,
                        Some(&out),
                        "tool_calls",
                        &fault,
                        None,
                    );
                    conv.push(out);
                    self.gap();
                    let start = self.now;
                    let pc = PCall {
                        call: call.clone(),
                        fault: CallFault::None,
                    };
                    let result = format!("{{\"assistant\":\"{SUB_AGENT}\"}}");
                    self.now = self.tool_span(&lparent, agent, &pc, &result, start);
                    let mut tm = Msg::new("tool", result);
                    tm.tool_call_id = call.id.clone();
                    conv.push(tm);
                    // Nested agent.
                    self.gap();
                    let mut agent_span = self.agent_span(&lparent, SUB_AGENT, 1);
                    let sub_tools: Vec<&ToolDef> = content::TOOLS
                        .iter()
                        .filter(|t| t.app == "file_system")
                        .collect();
                    let sys = content::SYSTEM_PROMPT
                        .replace("{agent}", SUB_AGENT)
                        .replace("{apps}", "file_system");
                    let task = "Handle the file system steps of the supervisor's request, then report back.".to_owned();
                    let mut sub_conv =
                        vec![Msg::new("system", sys), Msg::new("user", task.clone())];
                    let summary = "I finished the file system steps: the files were read and written as requested.".to_owned();
                    let saved = std::mem::take(&mut self.llm_faults);
                    let saved_idx = self.llm_index;
                    let _ = self.run_agent(
                        &agent_span.span_id.clone(),
                        SUB_AGENT,
                        &mut sub_conv,
                        &sub_tools,
                        sub_steps,
                        false,
                        Some(summary.clone()),
                    );
                    self.llm_faults = saved;
                    self.llm_index = saved_idx;
                    agent_attrs(self, &mut agent_span, SUB_AGENT, &task, &summary, None);
                    self.close(&mut agent_span);
                    conv.push(Msg::new("assistant", format!("[{SUB_AGENT}] {summary}")));
                }
            }
            if let Some(mut s) = turn {
                self.close(&mut s);
            }
        }
        if refusals >= 3 || (refusals > 0 && final_text.is_none()) {
            return RunEnd::Refused(last_refusal);
        }
        let Some(text) = final_text else {
            return RunEnd::Exhausted;
        };
        // Final turn.
        let mut turn = None;
        let mut lparent = parent.to_owned();
        if turn_spans {
            self.gap();
            let s = self.turn_span(parent, agent, n_steps + 1);
            lparent = s.span_id.clone();
            turn = Some(s);
        }
        if let Some(end) = self.provider_faults(&lparent, agent, conv, tools) {
            if let Some(mut s) = turn {
                self.close(&mut s);
            }
            return end;
        }
        let fault = self.take_fault();
        let out = Msg::new("assistant", text.clone());
        self.llm_span(
            &lparent,
            agent,
            conv,
            tools,
            Some(&out),
            "stop",
            &fault,
            None,
        );
        conv.push(out);
        if let Some(mut s) = turn {
            self.close(&mut s);
        }
        RunEnd::Done(text)
    }

    fn take_fault(&mut self) -> LlmFault {
        let f = self
            .llm_faults
            .get(self.llm_index)
            .cloned()
            .unwrap_or(LlmFault::None);
        self.llm_index += 1;
        match f {
            LlmFault::Retry(_) | LlmFault::Abort(_) => LlmFault::None,
            other => other,
        }
    }

    /// Emits failing LLM attempts planned for the current LLM call; returns Some if the run aborts.
    fn provider_faults(
        &mut self,
        parent: &str,
        agent: &'static str,
        conv: &[Msg],
        tools: &[&ToolDef],
    ) -> Option<RunEnd> {
        match self.llm_faults.get(self.llm_index).cloned() {
            Some(LlmFault::Retry(errs)) => {
                for e in &errs {
                    self.llm_span(
                        parent,
                        agent,
                        conv,
                        tools,
                        None,
                        "error",
                        &LlmFault::None,
                        Some(e),
                    );
                    self.now += ms(self.rng.random_range(400.0..2500.0));
                }
                None
            }
            Some(LlmFault::Abort(e)) => {
                self.llm_span(
                    parent,
                    agent,
                    conv,
                    tools,
                    None,
                    "error",
                    &LlmFault::None,
                    Some(&e),
                );
                Some(RunEnd::Aborted(e.msg.clone(), e.exc))
            }
            _ => None,
        }
    }

    fn close(&mut self, s: &mut Span) {
        self.now += ms(self.rng.random_range(0.5..4.0));
        s.end_ns = self.now;
        self.spans.push(s.clone());
    }

    fn turn_span(&mut self, parent: &str, agent: &'static str, n: usize) -> Span {
        let name = match (self.svc.dialect, self.svc.chain_root) {
            (Dialect::GenAi, _) => format!("turn {n}"),
            (Dialect::OpenInference, true) => "agent".to_owned(),
            (Dialect::OpenInference, false) => "custom.turn".to_owned(),
        };
        let mut s = self.span(parent, name, SpanKind::Internal);
        let mut a: Attrs = Vec::new();
        match (self.svc.dialect, self.svc.chain_root) {
            (Dialect::GenAi, _) => {
                a.push(("gen_ai.agent.name".into(), agent.into()));
                a.push(("agent.turn".into(), (n as i64).into()));
            }
            (Dialect::OpenInference, true) => {
                a.push(("openinference.span.kind".into(), "CHAIN".into()));
                a.push(("langgraph.node".into(), "agent".into()));
                a.push(("langgraph.step".into(), (2 * n as i64 - 1).into()));
                a.push(("session.id".into(), self.session.clone().into()));
            }
            (Dialect::OpenInference, false) => {
                a.push(("openinference.span.kind".into(), "CHAIN".into()));
                a.push(("sdk.span.type".into(), "custom".into()));
                a.push(("sdk.data.turn".into(), (n as i64).into()));
                a.push(("sdk.data.agent_name".into(), agent.into()));
            }
        }
        self.inference_keys(&mut a, "SPAN", agent, false);
        s.attributes = a;
        s
    }

    fn agent_span(&mut self, parent: &str, agent: &'static str, depth: i64) -> Span {
        let (name, kind) = match (self.svc.dialect, self.svc.chain_root && depth == 0) {
            (Dialect::GenAi, _) => (
                format!("invoke_agent {agent}"),
                if depth == 0 && !self.svc.turn_spans {
                    SpanKind::Server
                } else {
                    SpanKind::Internal
                },
            ),
            (Dialect::OpenInference, true) => ("LangGraph".to_owned(), SpanKind::Internal),
            (Dialect::OpenInference, false) => (format!("agent.{agent}"), SpanKind::Internal),
        };
        let mut s = self.span(parent, name, kind);
        s.attributes.push(("agent.depth".into(), depth.into()));
        s
    }

    fn reasoning(&mut self, calls: &[PCall], prev_error: Option<String>, first: bool) -> String {
        let mut s = String::new();
        if let Some(e) = prev_error {
            if content::tool_def(calls[0].call.tool.as_str()).is_some() {
                s.push_str(&format!("The last call returned an error ({e}). I'll adjust and continue with the next step. "));
            }
        }
        if self.model.provider == "openai" && s.is_empty() && self.rng.random_bool(0.25) {
            return s;
        }
        let tool = &calls[0].call.tool;
        if first && tool.ends_with("__login") {
            s.push_str("I'll start by logging in so I can use the app APIs. ");
        } else if calls.len() > 1 {
            s.push_str(&format!(
                "I can do the next {} calls in parallel, starting with `{tool}`. ",
                calls.len()
            ));
        } else if let Some(d) = content::tool_def(tool) {
            s.push_str(&format!("Next I'll call `{tool}`: {} ", d.description));
        } else {
            s.push_str(&format!("I'll use `{tool}` to get this directly. "));
        }
        for _ in 0..self.rng.random_range(0..3) {
            s.push_str(content::filler(self.rng));
            s.push(' ');
        }
        s.truncate(s.trim_end().len());
        s
    }
}

fn push_oi_message(a: &mut Attrs, prefix: &str, i: usize, m: &Msg) {
    a.push((format!("{prefix}.{i}.message.role").into(), m.role.into()));
    if !m.content.is_empty() || m.calls.is_empty() {
        a.push((
            format!("{prefix}.{i}.message.content").into(),
            m.content.clone().into(),
        ));
    }
    if !m.tool_call_id.is_empty() {
        a.push((
            format!("{prefix}.{i}.message.tool_call_id").into(),
            m.tool_call_id.clone().into(),
        ));
    }
    for (j, c) in m.calls.iter().enumerate() {
        a.push((
            format!("{prefix}.{i}.message.tool_calls.{j}.tool_call.id").into(),
            c.id.clone().into(),
        ));
        a.push((
            format!("{prefix}.{i}.message.tool_calls.{j}.tool_call.function.name").into(),
            c.tool.clone().into(),
        ));
        a.push((
            format!("{prefix}.{i}.message.tool_calls.{j}.tool_call.function.arguments").into(),
            c.args.clone().into(),
        ));
    }
}

fn genai_messages(msgs: &[&Msg], finish: Option<&str>) -> String {
    let mut s = String::from("[");
    for (i, m) in msgs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str("{\"role\":\"");
        s.push_str(m.role);
        s.push_str("\",\"parts\":[");
        let mut first = true;
        if m.role == "tool" {
            s.push_str("{\"type\":\"tool_call_response\",\"id\":");
            push_json_string(&mut s, &m.tool_call_id);
            s.push_str(",\"response\":");
            push_json_string(&mut s, &m.content);
            s.push('}');
        } else {
            if !m.content.is_empty() || m.calls.is_empty() {
                s.push_str("{\"type\":\"text\",\"content\":");
                push_json_string(&mut s, &m.content);
                s.push('}');
                first = false;
            }
            for c in &m.calls {
                if !first {
                    s.push(',');
                }
                first = false;
                s.push_str("{\"type\":\"tool_call\",\"id\":");
                push_json_string(&mut s, &c.id);
                s.push_str(",\"name\":");
                push_json_string(&mut s, &c.tool);
                s.push_str(",\"arguments\":");
                s.push_str(&c.args);
                s.push('}');
            }
        }
        s.push(']');
        if let Some(f) = finish {
            s.push_str(",\"finish_reason\":");
            push_json_string(&mut s, f);
        }
        s.push('}');
    }
    s.push(']');
    s
}

fn agent_attrs(
    sim: &mut Sim<'_>,
    span: &mut Span,
    agent: &'static str,
    input: &str,
    output: &str,
    outcome: Option<(&str, bool)>,
) {
    let mut a: Attrs = Vec::new();
    if sim.oi() {
        a.push((
            "openinference.span.kind".into(),
            if span.name == "LangGraph" {
                "CHAIN"
            } else {
                "AGENT"
            }
            .into(),
        ));
        a.push(("agent.name".into(), agent.into()));
        a.push(("input.value".into(), input.into()));
        a.push(("output.value".into(), output.into()));
        a.push(("session.id".into(), sim.session.clone().into()));
        a.push(("user.id".into(), sim.user.clone().into()));
    } else {
        a.push(("gen_ai.operation.name".into(), "invoke_agent".into()));
        a.push(("gen_ai.agent.name".into(), agent.into()));
        a.push((
            "gen_ai.agent.id".into(),
            format!("asst_{}", agent.to_lowercase()).into(),
        ));
        a.push(("gen_ai.conversation.id".into(), sim.session.clone().into()));
        a.push(("gen_ai.request.model".into(), sim.model.name.into()));
        a.push(("user.id".into(), sim.user.clone().into()));
        a.push((
            "gen_ai.input.messages".into(),
            genai_messages(&[&Msg::new("user", input.to_owned())], None).into(),
        ));
        a.push((
            "gen_ai.output.messages".into(),
            genai_messages(&[&Msg::new("assistant", output.to_owned())], None).into(),
        ));
    }
    if let Some((o, success)) = outcome {
        a.push(("agent.outcome".into(), o.into()));
        a.push(("success".into(), success.into()));
    }
    sim.inference_keys(&mut a, "AGENT", agent, false);
    a.append(&mut span.attributes);
    span.attributes = a;
}

fn tool_error_msg(rng: &mut SmallRng, c: &Call) -> (String, &'static str) {
    let app = c.tool.split("__").next().unwrap_or("");
    let n = rng.random_range(2..500);
    match (app, rng.random_range(0..3)) {
        ("venmo", 0) => (format!("User {n} not found"), "NotFoundError"),
        ("venmo", 1) => (
            format!(
                "Permission denied for account acct_{}",
                content::hex(rng, 4)
            ),
            "PermissionError",
        ),
        ("venmo", _) => (
            format!(
                "Insufficient balance: requested ${n}.00, available ${}.{:02}",
                rng.random_range(0..n),
                rng.random_range(0..100)
            ),
            "APIError",
        ),
        ("file_system", 0 | 1) => (
            format!("File '{}' does not exist", content::path(rng)),
            "FileNotFoundError",
        ),
        ("file_system", _) => (
            format!("Permission denied for path '{}'", content::path(rng)),
            "PermissionError",
        ),
        ("spotify", 0) => (format!("Playlist {n} not found"), "NotFoundError"),
        ("spotify", _) => (
            format!(
                "Song with id {} does not exist",
                rng.random_range(1000..9999)
            ),
            "NotFoundError",
        ),
        ("gmail", 0) => (
            format!("Email thread {} not found", rng.random_range(1000..99999)),
            "NotFoundError",
        ),
        ("gmail", _) => (
            format!("Access token expired for user {}", content::person(rng).1),
            "AuthenticationError",
        ),
        ("phone", _) => (
            format!("Contact '{}' not found", content::person(rng).0),
            "NotFoundError",
        ),
        _ => (format!("Calendar event {n} not found"), "NotFoundError"),
    }
}

fn provider_err(rng: &mut SmallRng, model: &Model, fatal: bool, late: bool) -> ProviderErr {
    let mut e = ProviderErr {
        msg: String::new(),
        exc: "APIError",
        http: 500,
        duration_ms: rng.random_range(150.0..900.0),
        finish: None,
    };
    if fatal {
        if late && rng.random_bool(0.5) {
            let limit = if model.provider == "openai" {
                128_000
            } else {
                200_000
            };
            e.msg = format!(
                "context_length_exceeded: This model's maximum context length is {limit} tokens. However, your messages resulted in {} tokens. Please reduce the length of the messages.",
                limit + rng.random_range(100..20_000)
            );
            e.exc = "BadRequestError";
            e.http = 400;
        } else {
            e.msg = "content_filter: The response was filtered due to the prompt triggering the content management policy.".to_owned();
            e.exc = "ContentFilterError";
            e.http = 400;
            e.finish = Some("content_filter");
        }
        return e;
    }
    match rng.random_range(0..5) {
        0 | 1 => {
            e.msg = format!(
                "Rate limit reached for {} in organization org-{} on tokens per min (TPM): Limit 200000, Used {}, Requested {}. Please try again in {}ms.",
                model.name,
                content::hex(rng, 12),
                rng.random_range(190_000..200_000),
                rng.random_range(1500..9000),
                rng.random_range(200..2000)
            );
            e.exc = "RateLimitError";
            e.http = 429;
        }
        2 => {
            e.msg = "502 Bad Gateway".to_owned();
            e.exc = "APIStatusError";
            e.http = 502;
        }
        3 => {
            e.msg = "InternalServerError: Error code: 500 - The server had an error while processing your request.".to_owned();
            e.exc = "InternalServerError";
            e.http = 500;
        }
        _ => {
            e.msg = "Request timed out.".to_owned();
            e.exc = "APITimeoutError";
            e.http = 408;
            e.duration_ms = rng.random_range(7_500.0..8_500.0);
        }
    }
    e
}

fn generic_arg(rng: &mut SmallRng, p: &str, ty: &str, i: usize) -> String {
    let mut s = String::new();
    match (p, ty) {
        ("page_index", _) => return i.to_string(),
        (_, "integer") => return rng.random_range(100..99_999).to_string(),
        (_, "number") => {
            return format!(
                "{}.{:02}",
                rng.random_range(1..300),
                rng.random_range(0..100)
            )
        }
        ("path", _) => push_json_string(&mut s, &content::path(rng)),
        ("date", _) => push_json_string(&mut s, &content::date(rng)),
        ("label", _) => push_json_string(&mut s, ["inbox", "sent", "archive"][i % 3]),
        _ => push_json_string(&mut s, &format!("{} {i}", content::title(rng))),
    }
    s
}

/// Generates one trace for `mode` (None = clean).
pub(crate) fn simulate(
    rng: &mut SmallRng,
    mode: Option<FailureMode>,
    start_ns: u64,
    compact: bool,
) -> Trace {
    let svc = {
        let r: f64 = rng.random();
        &super::model::SERVICES[if r < 0.35 {
            0
        } else if r < 0.6 {
            1
        } else if r < 0.8 {
            2
        } else {
            3
        }]
    };
    let model = &MODELS[rng.random_range(0..MODELS.len())];
    let agent = *AGENTS.choose(rng).unwrap_or(&AGENTS[0]);
    let trace_id = content::hex(rng, 32);
    let session = format!("sess_{:04}", rng.random_range(0..240));
    let user = format!("user_{:03}", rng.random_range(0..60));
    let kind = if mode.is_none() && rng.random_bool(0.006) {
        content::BULK_TASK
    } else {
        rng.random_range(0..content::BULK_TASK)
    };
    let task = content::build_task(rng, kind);
    let user_email = format!("{}@example.com", user.replace('_', "."));

    // ---- plan -------------------------------------------------------------------
    let delegate = task.apps.len() > 1
        && task.apps.contains(&"file_system")
        && rng.random_bool(0.25)
        && !matches!(mode, Some(FailureMode::PrematureSuccess));
    let pc = |c: Call| PCall {
        call: c,
        fault: CallFault::None,
    };
    let mut steps: Vec<Step> = Vec::new();
    let mut sub_steps: Vec<Step> = Vec::new();
    let root_apps: Vec<&str> = task
        .apps
        .iter()
        .copied()
        .filter(|a| !(delegate && *a == "file_system"))
        .collect();
    let logins: Vec<PCall> = root_apps
        .iter()
        .map(|a| pc(content::login_call(rng, a, &user_email)))
        .collect();
    if rng.random_bool(0.3) {
        // Pre-authenticated session: no login calls.
    } else if rng.random_bool(0.8) {
        steps.push(Step::Tools(logins));
    } else {
        for l in logins {
            steps.push(Step::Tools(vec![l]));
        }
    }
    if delegate {
        sub_steps.push(Step::Tools(vec![pc(content::login_call(
            rng,
            "file_system",
            &user_email,
        ))]));
    }
    let bulk = kind == content::BULK_TASK;
    let mut pending: Vec<PCall> = Vec::new();
    let mut delegated_slot = false;
    for c in task.steps {
        if delegate && c.tool.starts_with("file_system__") {
            sub_steps.push(Step::Tools(vec![pc(c)]));
            if !delegated_slot {
                delegated_slot = true;
                if !pending.is_empty() {
                    steps.push(Step::Tools(std::mem::take(&mut pending)));
                }
                steps.push(Step::Delegate(Vec::new()));
            }
            continue;
        }
        let same = pending
            .last()
            .map(|p| p.call.tool == c.tool)
            .unwrap_or(false);
        let group = if bulk {
            pending.len() < 10
        } else {
            pending.len() < 3 && rng.random_bool(if same { 0.8 } else { 0.6 })
        };
        if !pending.is_empty() && !group {
            steps.push(Step::Tools(std::mem::take(&mut pending)));
        }
        pending.push(pc(c));
    }
    if !pending.is_empty() {
        steps.push(Step::Tools(pending));
    }
    if let Some(slot) = steps.iter_mut().find(|s| matches!(s, Step::Delegate(_))) {
        *slot = Step::Delegate(sub_steps);
    }
    let mut tools: Vec<&'static ToolDef> = content::TOOLS
        .iter()
        .filter(|t| root_apps.contains(&t.app))
        .collect();
    if delegate {
        tools.push(&TRANSFER_TOOL);
    }

    let mut final_text = Some(task.summary.clone());
    let mut outcome = ("success", true);
    let mut history_window = 4;
    let first_work = steps
        .iter()
        .position(|s| matches!(s, Step::Tools(c) if !c[0].call.tool.ends_with("__login")))
        .unwrap_or(1);
    // Indices of Tools steps with non-login calls (root level).
    let work: Vec<usize> = (0..steps.len())
        .filter(|&i| matches!(&steps[i], Step::Tools(c) if !c[0].call.tool.ends_with("__login")))
        .collect();
    let pick_work = |rng: &mut SmallRng| -> usize { *work.choose(rng).unwrap_or(&first_work) };
    let mut llm_faults: Vec<LlmFault> = Vec::new();
    let agent_turns = |steps: &Vec<Step>| steps.len() + 1;

    match mode {
        None => {}
        Some(FailureMode::ToolError) => {
            let i = pick_work(rng);
            if let Step::Tools(calls) = &mut steps[i] {
                let j = rng.random_range(0..calls.len());
                let (msg, exc) = tool_error_msg(rng, &calls[j].call);
                calls[j].fault = CallFault::Error {
                    msg: msg.clone(),
                    exc,
                };
                if rng.random_bool(0.3) {
                    steps.truncate(i + 1);
                    final_text = Some(format!(
                        "I couldn't finish the task: the app returned an error ({msg})."
                    ));
                    outcome = ("failure", false);
                } else {
                    final_text = Some(format!(
                        "{} Note: one call failed with '{msg}', so please double-check that part.",
                        task.summary
                    ));
                    outcome = ("partial", false);
                }
            }
        }
        Some(FailureMode::HallucinatedTool) => {
            let i = pick_work(rng);
            let candidates: Vec<&(&str, &str)> = content::HALLUCINATED_TOOLS
                .iter()
                .filter(|(a, _)| root_apps.contains(a))
                .collect();
            let (_, fake) = **candidates
                .choose(rng)
                .unwrap_or(&&content::HALLUCINATED_TOOLS[0]);
            let args = content::Args::default().str("query", &content::title(rng));
            let call = content::call(rng, fake, args);
            let msg = match rng.random_range(0..3) {
                0 => format!("Tool {fake} not found"),
                1 => format!("Unknown tool: {fake}"),
                _ => format!("Tool {fake} not found in agent {agent}"),
            };
            steps.insert(
                i,
                Step::Tools(vec![PCall {
                    call,
                    fault: CallFault::Error {
                        msg,
                        exc: "ModelBehaviorError",
                    },
                }]),
            );
        }
        Some(FailureMode::InvalidToolArgs) => {
            let i = pick_work(rng);
            if let Step::Tools(calls) = &steps[i] {
                let orig = calls[0].call.clone();
                let def = content::tool_def(&orig.tool).unwrap_or(&content::TOOLS[0]);
                let mut bad = orig.clone();
                bad.id = content::call_id(rng);
                let typed: Vec<&(&str, &str)> =
                    def.params.iter().filter(|(_, t)| *t != "string").collect();
                let choice = rng.random_range(0..3);
                let (msg, exc) = if choice == 2 && !typed.is_empty() {
                    let (p, t) = **typed.choose(rng).unwrap_or(&typed[0]);
                    bad.args = replace_arg(&orig.args, p, "\"twenty\"");
                    (
                        format!("ValidationError: field '{p}' expected {t}, got string"),
                        "ValidationError",
                    )
                } else if choice == 1 && !def.params.is_empty() {
                    let (p, _) = def.params[rng.random_range(0..def.params.len())];
                    bad.args = remove_arg(&orig.args, p);
                    (
                        format!("TypeError: {}() missing required argument '{p}'", orig.tool),
                        "TypeError",
                    )
                } else {
                    let k =
                        ["note", "memo", "limit", "recipient", "verbose"][rng.random_range(0..5)];
                    bad.args = format!(
                        "{},\"{k}\":\"{}\"}}",
                        orig.args.trim_end_matches('}'),
                        content::title(rng)
                    );
                    if bad.args.starts_with("{,") {
                        bad.args = bad.args.replacen("{,", "{", 1);
                    }
                    (
                        format!(
                            "TypeError: {}() got an unexpected keyword argument '{k}'",
                            orig.tool
                        ),
                        "TypeError",
                    )
                };
                steps.insert(
                    i,
                    Step::Tools(vec![PCall {
                        call: bad,
                        fault: CallFault::Error { msg, exc },
                    }]),
                );
            }
        }
        Some(FailureMode::RepeatedToolLoop) => {
            let i = pick_work(rng);
            if let Step::Tools(calls) = &steps[i] {
                let c = calls[0].call.clone();
                let k = rng.random_range(5..=12);
                let mut reps = Vec::new();
                for _ in 1..k {
                    let mut r = c.clone();
                    r.id = content::call_id(rng);
                    reps.push(Step::Tools(vec![pc(r)]));
                }
                // The step itself becomes the first of the loop (single call), the rest follow.
                steps[i] = Step::Tools(vec![pc(c)]);
                for (n, r) in reps.into_iter().enumerate() {
                    steps.insert(i + 1 + n, r);
                }
            }
        }
        Some(FailureMode::RefusalLoop) => {
            let at = rng.random_range(0..=work.first().copied().unwrap_or(1).min(steps.len()));
            steps.truncate(at);
            let k = rng.random_range(3..=5);
            for n in 0..k {
                steps.push(Step::Refusal {
                    reprompt: n + 1 < k,
                });
            }
            final_text = None;
            outcome = ("refused", false);
        }
        Some(FailureMode::Refusal) => {
            let at = rng.random_range(0..=steps.len().min(3));
            steps.insert(at, Step::Refusal { reprompt: true });
        }
        Some(FailureMode::TurnExhaustion) => {
            let max = if svc.chain_root { 12 } else { 20 };
            let reads: Vec<&ToolDef> = content::TOOLS
                .iter()
                .filter(|t| {
                    root_apps.contains(&t.app)
                        && !t.name.ends_with("__login")
                        && !t.params.is_empty()
                })
                .collect();
            let mut n = 0usize;
            while steps.len() < max {
                let t = reads[(n + rng.random_range(0..2)) % reads.len()];
                n += 1;
                let mut args = content::Args::default();
                for (p, ty) in t.params {
                    args = args.raw(p, &generic_arg(rng, p, ty, n + 1));
                }
                let c = content::call(rng, t.name, args);
                steps.push(Step::Tools(vec![pc(c)]));
            }
            steps.truncate(max);
            final_text = None;
            history_window = 4;
        }
        Some(FailureMode::ProviderError) => {
            let n = agent_turns(&steps);
            let t = rng.random_range(0..n);
            let fatal = rng.random_bool(0.3);
            llm_faults.resize(n + 1, LlmFault::None);
            if fatal {
                llm_faults[t] = LlmFault::Abort(provider_err(rng, model, true, t >= 2));
            } else {
                let k = rng.random_range(1..=2);
                let errs = (0..k)
                    .map(|_| provider_err(rng, model, false, false))
                    .collect();
                llm_faults[t] = LlmFault::Retry(errs);
            }
        }
        Some(FailureMode::PrematureSuccess) => {
            steps.clear();
            final_text = Some(PREMATURE.choose(rng).unwrap_or(&PREMATURE[0]).to_string());
        }
        Some(FailureMode::SilentFailure) => {
            let i = *work.last().unwrap_or(&first_work);
            steps.truncate(i + 1);
            if let Step::Tools(calls) = &mut steps[i] {
                for c in calls.iter_mut() {
                    c.fault = CallFault::Empty;
                }
            }
            final_text = Some(format!(
                "I was unable to complete the task because the lookup returned no results. I did not make any changes. Original request: {}",
                task.text
            ));
            outcome = ("failure", false);
        }
        Some(FailureMode::LatencyOutlier) => {
            let factor = rng.random_range(25.0..50.0);
            let slow_tools: Vec<(usize, usize)> = work
                .iter()
                .filter_map(|&i| match &steps[i] {
                    Step::Tools(c) => c
                        .iter()
                        .position(|p| {
                            content::tool_def(&p.call.tool)
                                .map(|d| d.latency_ms >= 200)
                                .unwrap_or(false)
                        })
                        .map(|j| (i, j)),
                    _ => None,
                })
                .collect();
            if !slow_tools.is_empty() && rng.random_bool(0.4) {
                let (i, j) = *slow_tools.choose(rng).unwrap_or(&slow_tools[0]);
                if let Step::Tools(c) = &mut steps[i] {
                    c[j].fault = CallFault::Slow(factor);
                }
            } else {
                let n = agent_turns(&steps);
                llm_faults.resize(n + 1, LlmFault::None);
                llm_faults[rng.random_range(0..n)] = LlmFault::Slow(factor);
            }
        }
        Some(FailureMode::TokenOutlier) => {
            let n = agent_turns(&steps);
            llm_faults.resize(n + 1, LlmFault::None);
            llm_faults[rng.random_range(0..n)] = LlmFault::Tokens(rng.random_range(12.0..20.0));
        }
    }
    // A delegated run only makes sense if the delegate step survived truncation.
    if !steps.iter().any(|s| matches!(s, Step::Delegate(_))) && delegate {
        tools.retain(|t| t.app != "handoff");
    }

    // ---- run ---------------------------------------------------------------------
    let mut sim = Sim {
        rng,
        svc,
        model,
        trace_id: trace_id.clone(),
        spans: Vec::new(),
        now: start_ns,
        agent,
        session,
        user,
        llm_index: 0,
        llm_faults,
        history_window: if compact { 2 } else { history_window },
        compact,
        llm_count: 0,
    };
    let mut root = sim.agent_span("", agent, 0);
    let apps_list = task.apps.join(", ");
    let sys = content::SYSTEM_PROMPT
        .replace("{agent}", agent)
        .replace("{apps}", &apps_list);
    let mut conv = vec![Msg::new("system", sys), Msg::new("user", task.text.clone())];
    let end = sim.run_agent(
        &root.span_id.clone(),
        agent,
        &mut conv,
        &tools,
        steps,
        svc.turn_spans,
        final_text,
    );
    let agent_name = sim.agent;
    let (output, outcome, err) = match end {
        RunEnd::Done(t) => (t, Some(outcome), None),
        RunEnd::Refused(t) => (t, Some(("refused", false)), None),
        RunEnd::Aborted(msg, exc) => (String::new(), None, Some((msg, exc))),
        RunEnd::Exhausted => {
            let msg = if svc.chain_root {
                "GraphRecursionError: Recursion limit of 25 reached without hitting a stop condition. You can increase the limit by setting the `recursion_limit` config key.".to_owned()
            } else {
                "MaxTurnsExceeded: max_turns (20) exceeded".to_owned()
            };
            let exc = if svc.chain_root {
                "GraphRecursionError"
            } else {
                "MaxTurnsExceeded"
            };
            (String::new(), None, Some((msg, exc)))
        }
    };
    agent_attrs(
        &mut sim, &mut root, agent_name, &task.text, &output, outcome,
    );
    let meta = AttrValue::Map(vec![
        (
            "tenant".to_owned(),
            AttrValue::from(["acme", "globex", "initech"][sim.rng.random_range(0..3)]),
        ),
        (
            "region".to_owned(),
            AttrValue::from(["us-east-1", "eu-west-1"][sim.rng.random_range(0..2)]),
        ),
        (
            "max_turns".to_owned(),
            AttrValue::Int(if svc.chain_root { 25 } else { 20 }),
        ),
    ]);
    root.attributes.push(("agent.metadata".into(), meta));
    sim.now += ms(sim.rng.random_range(1.0..8.0));
    root.end_ns = sim.now;
    if let Some((msg, exc)) = err {
        sim.error(&mut root, &msg, exc);
    }
    sim.spans.push(root);
    Trace {
        trace_id,
        mode,
        service: svc,
        spans: sim.spans,
    }
}

fn replace_arg(args: &str, key: &str, new_val: &str) -> String {
    let mut out = String::from("{");
    let v: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(args).unwrap_or_default();
    for (i, (k, val)) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(&mut out, k);
        out.push(':');
        if k == key {
            out.push_str(new_val);
        } else {
            out.push_str(&val.to_string());
        }
    }
    out.push('}');
    out
}

fn remove_arg(args: &str, key: &str) -> String {
    let mut v: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(args).unwrap_or_default();
    v.remove(key);
    serde_json::Value::Object(v).to_string()
}

/// Harness-side shortening of long tool outputs before they go back into the prompt.
fn shorten(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str(" ...(output shortened)");
    }
    s
}
