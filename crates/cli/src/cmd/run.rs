//! `halo TRACE_PATH... -p PROMPT`: diagnose a dataset with the RLM engine.
//!
//! Flags keep the reference's names and defaults. Progress goes to stderr
//! (indented by agent depth: what each agent says, which tools it calls, what
//! comes back, tokens so far), the final report to stdout. With `--json`,
//! stdout carries the engine's event stream instead, one JSON object a line
//! (`output_item`, `text_delta`, `checkpoint`, `provider_retry`, `warning`; schema documented in
//! `halo_rlm::events`), followed by one closing object:
//! `{"type":"run_finished","run_id","status","error","report_path",
//! "record_path","checkpoint_path"}`.
//!
//! Exit codes: 0 when the model wrote a report (also when a budget ran out and it wrote
//! one then), 3 when the model provider failed, 4 when no report was written (no
//! `final_answer`, or a budget ran out first), 130 when interrupted, 143 when terminated
//! (SIGTERM). In every case the
//! report so far, the run record and (once the root finished a turn) a
//! checkpoint are saved and their paths printed.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::Args;
use futures::StreamExt;
use halo_index::Dataset;
use halo_provider::{parse_header, ApiKey, ProviderConfig, ReasoningEffort, WireApi};
use halo_rlm::{
    AgentItem, AgentOutputItem, ArtifactPaths, Engine, EngineConfig, EngineEvent, RunCheckpoint,
    RunStatus, UsageProbe,
};

/// The provider used when neither --base-url nor OPENAI_BASE_URL is given.
pub(crate) const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

fn parse_key(s: &str) -> Result<ApiKey, String> {
    Ok(ApiKey::new(s))
}

fn parse_effort(s: &str) -> Result<ReasoningEffort, String> {
    s.parse()
}

fn parse_temperature(s: &str) -> Result<f64, String> {
    let t: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=2.0).contains(&t) {
        Ok(t)
    } else {
        Err("the temperature must be between 0 and 2".to_owned())
    }
}

/// Options of an analysis run (the dataset paths are taken separately).
#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
    /// The question for the root agent, e.g. "Diagnose errors you find and suggest fixes".
    /// Without -p (and without --resume) `halo TRACES` runs the offline diagnosis instead.
    #[arg(short = 'p', long)]
    pub(crate) prompt: Option<String>,
    /// Model of the root agent and subagents; also the fallback for the two below.
    #[arg(
        short = 'm',
        long,
        default_value = "gpt-5.4-mini",
        value_parser = clap::builder::NonEmptyStringValueParser::new(),
        help_heading = "Models"
    )]
    pub(crate) model: String,
    /// Model for synthesize_traces (trace summaries); a small cheap model is recommended.
    #[arg(long, value_name = "MODEL", value_parser = clap::builder::NonEmptyStringValueParser::new(), help_heading = "Models")]
    pub(crate) synthesis_model: Option<String>,
    /// Model for context compaction; a small cheap model is recommended.
    #[arg(long, value_name = "MODEL", value_parser = clap::builder::NonEmptyStringValueParser::new(), help_heading = "Models")]
    pub(crate) compaction_model: Option<String>,
    /// Deepest subagent level (0: the root works alone).
    #[arg(long, value_name = "N", default_value_t = 2, help_heading = "Agents")]
    pub(crate) max_depth: u32,
    /// Model turns per agent; an agent that used them all gets one more request, with
    /// no tools but its answer, to write it.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Agents")]
    pub(crate) max_turns: u32,
    /// Subagent model requests in flight at once, over the whole run (a subagent waiting
    /// on its tools or its own subagents holds no slot, so deep trees cannot deadlock);
    /// one turn starts at most max(this, 10) subagents.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Agents")]
    pub(crate) max_parallel: u32,
    /// Source tree of the agent harness: read-only code tools (and git tools in a work tree).
    #[arg(long, value_name = "DIR", help_heading = "Agents")]
    pub(crate) repo_path: Option<PathBuf>,
    /// Hard token budget of the whole run (input + output, all models), checked before every
    /// request with the requests on their way counted (the last one let through may pass
    /// it by its own size); near it the root is told to finish, and the run ends with the
    /// best report so far.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Agents")]
    pub(crate) max_total_tokens: Option<u64>,
    /// Extra context about the dataset, given to every agent.
    #[arg(long, value_name = "TEXT", help_heading = "Agents")]
    pub(crate) dataset_context: Option<String>,
    /// Resume the run saved in this checkpoint (on the same trace files).
    #[arg(long, value_name = "CHECKPOINT", help_heading = "Agents")]
    pub(crate) resume: Option<PathBuf>,
    /// OpenAI-compatible API base URL. (Its value from the environment is not shown in
    /// --help: a URL may carry `user:password@`.)
    #[arg(long, env = "OPENAI_BASE_URL", hide_env_values = true, default_value = DEFAULT_BASE_URL, help_heading = "Provider")]
    pub(crate) base_url: String,
    /// Provider API key (not needed by local servers that ask for none).
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true, value_parser = parse_key, help_heading = "Provider")]
    pub(crate) api_key: Option<ApiKey>,
    /// Provider header as "NAME: VALUE"; repeat for several (curl's -H convention).
    #[arg(
        short = 'H',
        long = "header",
        value_name = "NAME: VALUE",
        help_heading = "Provider"
    )]
    pub(crate) headers: Vec<String>,
    /// Use the Responses API instead of Chat Completions.
    #[arg(long, help_heading = "Provider")]
    pub(crate) responses_api: bool,
    /// Sampling temperature (0 to 2); provider default when absent.
    #[arg(long, value_name = "T", value_parser = parse_temperature, help_heading = "Provider")]
    pub(crate) temperature: Option<f64>,
    /// Output token limit per model request; provider default when absent.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), help_heading = "Provider")]
    pub(crate) max_output_tokens: Option<u32>,
    /// Ask for several tool calls per model turn (without either flag, nothing is sent
    /// and the provider's default applies: several, for OpenAI).
    #[arg(
        long,
        overrides_with = "no_parallel_tool_calls",
        help_heading = "Provider"
    )]
    pub(crate) parallel_tool_calls: bool,
    /// Allow only one tool call per model turn.
    #[arg(
        long,
        overrides_with = "parallel_tool_calls",
        help_heading = "Provider"
    )]
    pub(crate) no_parallel_tool_calls: bool,
    /// Seconds to wait for a model's response to start, or for the next part of it,
    /// before the request is tried again.
    #[arg(long, value_name = "SECS", default_value_t = 600.0, value_parser = super::number_args::parse_seconds, allow_negative_numbers = true, help_heading = "Provider")]
    pub(crate) request_timeout: f64,
    /// Seconds one model request may take in all, its retries included, however steadily
    /// its answer arrives; past it the run fails rather than wait on a server that never
    /// finishes.
    #[arg(long, value_name = "SECS", default_value_t = 1800.0, value_parser = super::number_args::parse_seconds, allow_negative_numbers = true, help_heading = "Provider")]
    pub(crate) request_deadline: f64,
    /// Retry an agent request this many times when the model refuses.
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "Provider")]
    pub(crate) refusal_retries: u32,
    /// Reasoning effort of root and subagent requests: none, minimal, low, medium, high, xhigh.
    #[arg(long, value_parser = parse_effort, value_name = "EFFORT", help_heading = "Provider")]
    pub(crate) reasoning_effort: Option<ReasoningEffort>,
    /// Emit telemetry of HALO's own activity (not available yet: refused).
    #[arg(long, help_heading = "Output")]
    pub(crate) telemetry: bool,
    /// Write the report here (default: RUN_ID.md in the current directory, e.g. halo-20261126-003143-87670c.md).
    #[arg(short = 'o', long, value_name = "FILE", help_heading = "Output")]
    pub(crate) output: Option<PathBuf>,
}

fn is_default_openai(base_url: &str) -> bool {
    base_url.trim_end_matches('/').contains("://api.openai.com")
}

/// Checks what can be checked before any indexing: flags, the API key, the
/// checkpoint file and the repository path.
pub(crate) fn preflight(args: &RunArgs) -> anyhow::Result<()> {
    if args.telemetry {
        bail!(
            "--telemetry is not available in this release (telemetry of HALO's own activity comes in a later one); run without it"
        );
    }
    if args.prompt.as_deref().is_some_and(|p| p.trim().is_empty()) {
        bail!("-p/--prompt is empty: ask the root agent something, e.g. -p \"Diagnose errors you find and suggest fixes\"");
    }
    // The mistakes in the command line come before the missing key: fixing the key first
    // and then meeting these would take two tries.
    if let Some(cp) = &args.resume {
        if !cp.is_file() {
            bail!("--resume {}: no such checkpoint file", cp.display());
        }
    }
    let has_key = args.api_key.as_ref().is_some_and(|k| !k.is_empty()) || header_auth(args);
    if !has_key && is_default_openai(&args.base_url) {
        bail!(
            "no API key for {}: set OPENAI_API_KEY or pass --api-key (a local server that needs no key can be used with --base-url)",
            args.base_url
        );
    }
    check_base_url(&args.base_url)?;
    if let Some(key) = &args.api_key {
        if key.expose().chars().any(char::is_control) {
            bail!(
                "the API key contains a line break or another control character, which no HTTP header can carry; check how it was pasted or exported"
            );
        }
    }
    for h in &args.headers {
        parse_header(h).with_context(|| {
            // The name only: a header's value is often a credential.
            match h.split(':').next().map(str::trim).filter(|n| !n.is_empty()) {
                Some(name) => format!("bad -H/--header {name:?}"),
                None => "bad -H/--header".to_owned(),
            }
        })?;
    }
    if let Some(repo) = &args.repo_path {
        if !repo.is_dir() {
            bail!("--repo-path {} is not a directory", repo.display());
        }
    }
    if let Some(cp) = &args.resume {
        // Refused before indexing: a completed run, or another prompt than its own.
        RunCheckpoint::load(cp)?.check_resumable(args.prompt.as_deref())?;
    }
    if let Some(out) = &args.output {
        if out.is_dir() {
            bail!(
                "-o/--output: {} is a directory; give the report's file name (the record and checkpoint go beside it)",
                out.display()
            );
        }
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                bail!("-o/--output: directory {} does not exist", dir.display());
            }
        }
    }
    Ok(())
}

/// Whether a `-H` header carries the credential (`Authorization`, Azure's `api-key`).
fn header_auth(args: &RunArgs) -> bool {
    args.headers.iter().any(|h| {
        let name = h.split(':').next().unwrap_or("").trim();
        name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("api-key")
    })
}

/// Refuses base URLs that cannot work, before anything is indexed or sent.
fn check_base_url(url: &str) -> anyhow::Result<()> {
    if url.is_empty() {
        bail!(
            "the base URL is empty: OPENAI_BASE_URL is set to nothing, or --base-url \"\" was given; unset it for OpenAI, or give the server's URL"
        );
    }
    if url.trim() != url || url.chars().any(char::is_whitespace) {
        bail!("--base-url {:?} has white space in it", shown_url(url));
    }
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        match url.split_once("://") {
            Some((scheme, _)) => bail!(
                "--base-url {:?}: halo speaks http:// and https://, not {scheme}://",
                shown_url(url)
            ),
            None => bail!(
                "--base-url {:?} has no scheme; write it as http://{} (or https://)",
                shown_url(url),
                shown_url(url)
            ),
        }
    }
    if url.contains('#') {
        bail!(
            "--base-url has a fragment (#...), which would swallow the endpoint halo adds; leave it out"
        );
    }
    let path = lower
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .trim_end_matches('/');
    for endpoint in ["/chat/completions", "/responses"] {
        if path.ends_with(endpoint) {
            bail!(
                "--base-url ends with the endpoint {endpoint}; give the base it sits under (e.g. http://host:port/v1): halo adds the endpoint itself"
            );
        }
    }
    if lower.contains('?') {
        bail!(
            "--base-url has a query string, which would end up before the endpoint; pass query parameters another way (Azure's api-version: use its /openai/v1 base)"
        );
    }
    Ok(())
}

/// The base URL as printed: a password in it (`http://user:pass@host`) is not.
fn shown_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let sep = if scheme.is_empty() { "" } else { "://" };
            format!("{scheme}{sep}***@{}", &rest[at + 1..])
        }
        None => url.to_string(),
    }
}

/// How long a run may be silent (no event: the model has not started answering) before
/// the terminal is told that it is still waiting.
const QUIET_NOTE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// What to check, for the provider failures a setting explains; empty otherwise.
fn provider_hint(error: &str) -> &'static str {
    let names_a_model = error.contains("model_not_found")
        || (error.contains("HTTP 404") && error.to_ascii_lowercase().contains("model"));
    if names_a_model {
        "\nhalo: check --model (and --synthesis-model, --compaction-model): the provider does not know the model named"
    } else if error.contains("HTTP 404") {
        "\nhalo: check --base-url: an OpenAI-compatible server's base URL usually ends in /v1"
    } else if error.contains("HTTP 401") || error.contains("HTTP 403") {
        "\nhalo: check the API key (--api-key or OPENAI_API_KEY) and that it may use this model"
    } else if error.contains("onnection refused") || error.contains("dns error") {
        "\nhalo: check --base-url: is a server running there?"
    } else if error.contains("parallel_tool_calls")
        && (error.contains("HTTP 400") || error.contains("HTTP 422"))
    {
        "\nhalo: the provider does not take parallel_tool_calls, which --no-parallel-tool-calls sends: run without that flag"
    } else {
        ""
    }
}

/// Waits for Ctrl-C or SIGTERM; the exit code the run then ends with (130 or 143).
/// Either way the agents are stopped and the report so far is saved: a run bounded by
/// `timeout` or stopped by `docker stop` keeps what it found, as one stopped by Ctrl-C.
async fn stop_signal() -> Option<u8> {
    let ctrl_c = async {
        tokio::signal::ctrl_c()
            .await
            .ok()
            .map(|()| crate::exit::INTERRUPTED)
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                code = ctrl_c => code,
                _ = term.recv() => Some(crate::exit::TERMINATED),
            };
        }
    }
    ctrl_c.await
}

/// Refuses a report path (`-o`) whose report, record or checkpoint would overwrite one of
/// the dataset's trace files: `-o traces.jsonl` would replace the data with its report.
pub(crate) fn artifacts_clear_of_sources(
    output: &std::path::Path,
    dataset: &Dataset,
) -> Result<(), crate::exit::Failure> {
    let paths = ArtifactPaths::for_run(Some(output), "run", std::path::Path::new("."));
    super::dataset::written_clear_of_sources(
        output,
        &[
            ("the report", &paths.report),
            ("the run record", &paths.record),
            ("the checkpoint", &paths.checkpoint),
        ],
        &[dataset],
    )
}

fn engine_config(
    args: &RunArgs,
    run_id: &str,
    checkpoint: PathBuf,
) -> anyhow::Result<EngineConfig> {
    let mut provider = ProviderConfig::new(args.base_url.clone());
    // Credentials given as headers (a gateway's Authorization, Azure's api-key) are the
    // ones to send: a key from OPENAI_API_KEY must not travel along to that server.
    let header_auth = header_auth(args);
    if let Some(key) = args
        .api_key
        .clone()
        .filter(|k| !k.is_empty() && !header_auth)
    {
        provider = provider.with_api_key(key);
    }
    for h in &args.headers {
        let (name, value) = parse_header(h)?;
        provider = provider.with_header(name, value);
    }
    if args.responses_api {
        provider = provider.with_wire(WireApi::Responses);
    }
    provider.timeout = std::time::Duration::from_secs_f64(args.request_timeout);
    provider.deadline = std::time::Duration::from_secs_f64(args.request_deadline);
    let mut cfg = EngineConfig::new(provider, args.model.clone());
    cfg.synthesis_model = args.synthesis_model.clone();
    cfg.compaction_model = args.compaction_model.clone();
    cfg.max_depth = args.max_depth;
    cfg.max_turns = args.max_turns;
    cfg.max_parallel = args.max_parallel as usize;
    cfg.repo_path = args.repo_path.clone();
    cfg.temperature = args.temperature;
    cfg.max_output_tokens = args.max_output_tokens;
    // Neither flag: nothing is sent, and the provider's default applies.
    cfg.parallel_tool_calls = match (args.parallel_tool_calls, args.no_parallel_tool_calls) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    cfg.refusal_retries = args.refusal_retries;
    cfg.reasoning_effort = args.reasoning_effort;
    cfg.max_total_tokens = args.max_total_tokens;
    cfg.dataset_context = args.dataset_context.clone();
    cfg.checkpoint_path = Some(checkpoint);
    cfg.run_id = Some(run_id.to_owned());
    Ok(cfg)
}

/// How a run reports while it works.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    /// Print the event stream as JSON lines on stdout (and a `run_finished` line).
    pub(crate) json: bool,
    /// Print no progress on stderr: only failures and warnings.
    pub(crate) quiet: bool,
}

/// Runs the analysis over an opened dataset and saves its report, record and
/// checkpoint.
pub(crate) fn execute(
    args: &RunArgs,
    dataset: Arc<Dataset>,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let json = output.json;
    // Progress lines: none under -q, and none beside the JSON stream but its own.
    let chatty = !output.quiet;
    preflight(args)?;
    let checkpoint = match &args.resume {
        Some(p) => Some(RunCheckpoint::load(p)?),
        None => None,
    };
    let run_id = halo_rlm::new_run_id();
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let paths = ArtifactPaths::for_run(args.output.as_deref(), &run_id, &cwd);
    let cfg = engine_config(args, &run_id, paths.checkpoint.clone())?;
    let engine = Engine::new(cfg, dataset)?;
    let prompt = args.prompt.clone().unwrap_or_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // The exit code of the signal that stopped the run (130 for Ctrl-C, 143 for SIGTERM,
    // which `timeout`, CI cancellation and `docker stop` send), 0 while none has.
    let interrupted = Arc::new(AtomicU8::new(0));
    let outcome = rt.block_on(async {
        let mut handle = match checkpoint {
            Some(cp) => engine.resume(cp)?,
            None => engine.start(&prompt),
        };
        let canceller = handle.canceller();
        let flag = Arc::clone(&interrupted);
        tokio::spawn(async move {
            if let Some(code) = stop_signal().await {
                flag.store(code, Ordering::SeqCst);
                crate::errln!(
                    "\nhalo: interrupted; stopping the agents and saving the report so far"
                );
                canceller.cancel();
            }
        });
        if !json && chatty {
            crate::errln!(
                "halo: run {} with {} at {}",
                handle.run_id(),
                args.model,
                shown_url(&args.base_url)
            );
        }
        let mut progress = Progress {
            probe: handle.usage(),
            json,
            quiet: output.quiet,
            stdout_closed: false,
        };
        // A model that thinks for minutes before its first token sends nothing: a line
        // every minute of silence says the run is alive, and what bounds the wait.
        let mut silent = std::time::Duration::ZERO;
        loop {
            match tokio::time::timeout(QUIET_NOTE_EVERY, handle.next()).await {
                Ok(Some(event)) => {
                    silent = std::time::Duration::ZERO;
                    progress.show(&event)?;
                }
                Ok(None) => break,
                Err(_) => {
                    silent += QUIET_NOTE_EVERY;
                    if !json && chatty {
                        crate::errln!(
                            "halo: still waiting for the model ({}s without news; a request is tried again after {}s of silence, --request-timeout)",
                            silent.as_secs(),
                            args.request_timeout
                        );
                    }
                }
            }
        }
        anyhow::Ok(handle.outcome().await?)
    })?;
    // After Ctrl-C a tool may still run on a blocking thread (the engine stopped
    // waiting for it); dropping the runtime would wait for it before saving the report.
    rt.shutdown_background();

    if let Err(e) = paths.save(&outcome) {
        // The run was paid for: the report still reaches stdout before the error (under
        // --json its text went out in the stream already).
        if !json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", halo_trace::printable(outcome.report.trim_end()));
        }
        return Err(anyhow::Error::new(e).context(format!(
            "cannot save the report to {}",
            paths.report.display()
        )));
    }
    let checkpoint_path = outcome
        .checkpoint
        .as_ref()
        .map(|_| paths.checkpoint.clone())
        .filter(|p| p.exists());
    let mut out = std::io::stdout().lock();
    if json {
        let line = serde_json::json!({
            "type": "run_finished",
            "schema_version": halo_rlm::EVENTS_SCHEMA_VERSION,
            "run_id": outcome.run_id,
            "status": outcome.status,
            "error": outcome.error,
            "report_path": paths.report,
            "record_path": paths.record,
            "checkpoint_path": checkpoint_path,
        });
        // A reader that went away (`| head`) does not change how the run ended: the exit
        // code below still says it (3, 4, 130), and the report is saved.
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    } else {
        // The report quotes trace text (through the model): shown escaped, like all
        // output for people, and as its file holds it.
        writeln!(out, "{}", halo_trace::printable(outcome.report.trim_end()))?;
        out.flush()?;
    }
    let r = &outcome.record;
    if chatty {
        crate::errln!(
            "halo: {} · {} · {} tokens in / {} out · {:.1}s",
            status_text(outcome.status),
            model_calls_text(r.model_calls, r.failed_model_calls),
            r.input_tokens,
            r.output_tokens,
            r.duration_ms as f64 / 1000.0
        );
        if !r.unverified_citations.is_empty() {
            crate::errln!(
                "halo: {} citation(s) in the report do not match the dataset (marked in the report)",
                r.unverified_citations.len()
            );
        }
        crate::errln!("halo: report saved to {}", paths.report.display());
        crate::errln!("halo: run record saved to {}", paths.record.display());
        match &checkpoint_path {
            // A completed run's checkpoint is kept for the record; --resume refuses it.
            Some(p) if outcome.status == RunStatus::Completed => {
                crate::errln!("halo: checkpoint saved to {}", p.display())
            }
            Some(p) => crate::errln!(
                "halo: checkpoint saved to {} (resume with --resume)",
                p.display()
            ),
            None => crate::errln!("halo: no checkpoint (the root agent finished no turn)"),
        }
    }
    for e in &outcome.checkpoint_errors {
        crate::errln!("halo: warning: {e}");
    }
    let signal_code = interrupted.load(Ordering::SeqCst);
    Ok(match outcome.status {
        RunStatus::Cancelled if signal_code == 0 => ExitCode::from(crate::exit::INTERRUPTED),
        RunStatus::Cancelled => ExitCode::from(signal_code),
        RunStatus::Failed => {
            let error = outcome.error.as_deref().unwrap_or("unknown error");
            crate::errln!(
                "halo: the model provider at {} failed: {error}{}",
                shown_url(&args.base_url),
                provider_hint(error)
            );
            ExitCode::from(3)
        }
        _ if signal_code != 0 => ExitCode::from(signal_code),
        // A budget ran out before the model wrote any report: what halo put together from
        // the findings is saved, but it is not a report either.
        RunStatus::TurnBudgetExhausted | RunStatus::TokenBudgetExhausted
            if outcome.report_synthesized =>
        {
            crate::errln!(
                "halo: the {} budget ran out before the root agent wrote a report; what it found is saved, but it is not a finished report (exit code {})",
                if outcome.status == RunStatus::TurnBudgetExhausted { "turn" } else { "token" },
                crate::exit::NO_FINAL_REPORT
            );
            ExitCode::from(crate::exit::NO_FINAL_REPORT)
        }
        // Saved, but not a report: a script must not take it for one.
        RunStatus::NoFinalAnswer => {
            crate::errln!(
                "halo: the root agent ended without a final answer; what it wrote is saved, but it is not a finished report (exit code {})",
                crate::exit::NO_FINAL_REPORT
            );
            ExitCode::from(crate::exit::NO_FINAL_REPORT)
        }
        _ => ExitCode::SUCCESS,
    })
}

/// "3 model calls", and how many failed when any did: a run whose provider never
/// answered made requests all the same, and "0 model calls" alone hid that.
fn model_calls_text(answered: u64, failed: u64) -> String {
    let calls = halo_diagnose::counted(answered, "model call", "model calls");
    match failed {
        0 => calls,
        n => format!("{calls} ({n} failed)"),
    }
}

fn status_text(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Completed => "completed",
        RunStatus::NoFinalAnswer => "completed without final_answer",
        RunStatus::TurnBudgetExhausted => "turn budget used up; report from what was found",
        RunStatus::TokenBudgetExhausted => "token budget used up; report from what was found",
        RunStatus::Cancelled => "interrupted; partial report",
        RunStatus::Failed => "failed; partial report",
    }
}

struct Progress {
    probe: UsageProbe,
    json: bool,
    quiet: bool,
    /// Writing the JSON stream failed (its reader is gone): print no more of it.
    stdout_closed: bool,
}

fn tokens(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.1}M", n as f64 / 1e6)
    } else if n >= 1_000 {
        format!("{:.1}k", n as f64 / 1e3)
    } else {
        n.to_string()
    }
}

impl Progress {
    fn show(&mut self, event: &EngineEvent) -> anyhow::Result<()> {
        if self.json {
            if self.stdout_closed {
                return Ok(());
            }
            let mut out = std::io::stdout().lock();
            let written = serde_json::to_writer(&mut out, event)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"));
            // A reader that went away (`| head`) must not cost the run its report: the
            // events stop, the run goes on and is saved.
            if written.is_err() {
                self.stdout_closed = true;
            }
            return Ok(());
        }
        if self.quiet {
            return Ok(());
        }
        if let EngineEvent::OutputItem(item) = event {
            if item.is_final && item.agent.depth == 0 {
                return Ok(()); // the report is printed at the end
            }
            crate::errln!("{}", self.line(item));
        }
        if let EngineEvent::Warning(w) = event {
            let indent = "  ".repeat(w.agent.depth as usize);
            crate::errln!("{indent}{} ⚠ {}", w.agent.agent_id, w.message);
        }
        if let EngineEvent::ProviderRetry(r) = event {
            let indent = "  ".repeat(r.agent.depth as usize);
            let whose = match r.request {
                halo_rlm::RequestKind::Agent => "provider",
                halo_rlm::RequestKind::Synthesis => "synthesis model",
                halo_rlm::RequestKind::Compaction => "compaction model",
            };
            crate::errln!(
                "{indent}{} ↻ {whose}: {}; trying again in {:.1}s (attempt {} failed)",
                r.agent.agent_id,
                halo_trace::one_line(&r.reason, 160),
                r.delay_ms as f64 / 1e3,
                r.attempt
            );
        }
        Ok(())
    }

    fn line(&self, item: &AgentOutputItem) -> String {
        let indent = "  ".repeat(item.agent.depth as usize);
        let who = &item.agent.agent_id;
        let tok = tokens(self.probe.total_tokens());
        match &item.item {
            AgentItem::Message { content, .. } => {
                let tag = if item.is_final || item.agent_finished {
                    "answer"
                } else {
                    "says"
                };
                let text = halo_trace::one_line(content, 160);
                if text.trim().is_empty() {
                    // A turn of tool calls alone, or a reasoning model's hidden thought.
                    format!("{indent}{who} {tag}: (no text)")
                } else {
                    format!("{indent}{who} {tag}: {text}")
                }
            }
            AgentItem::ToolCall {
                name, arguments, ..
            } => {
                format!(
                    "{indent}{who} → {name} {} [{tok} tokens]",
                    halo_trace::one_line(arguments, 120)
                )
            }
            AgentItem::ToolResult {
                name,
                content,
                is_error,
                ..
            } => {
                if *is_error {
                    format!(
                        "{indent}{who} ✗ {name}: {}",
                        halo_trace::one_line(content, 160)
                    )
                } else {
                    format!("{indent}{who} ← {name}: {} bytes", content.len())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn a_provider_refusing_parallel_tool_calls_points_at_the_flag() {
        let refused = "HTTP 400: Unrecognized request argument supplied: parallel_tool_calls";
        assert!(provider_hint(refused).contains("--no-parallel-tool-calls"));
        assert!(provider_hint("HTTP 500: parallel_tool_calls").is_empty());
    }

    #[test]
    fn base_urls_that_cannot_work_are_refused_with_the_fix() {
        for ok in [
            "http://127.0.0.1:8080/v1",
            "https://api.openai.com/v1/",
            "HTTP://host/openai/v1",
        ] {
            assert!(check_base_url(ok).is_ok(), "{ok}");
        }
        let err = |u: &str| check_base_url(u).unwrap_err().to_string();
        assert!(err("127.0.0.1:8080/v1").contains("http://127.0.0.1:8080/v1"));
        assert!(err("http://h/v1/chat/completions").contains("halo adds the endpoint"));
        assert!(err("http://h/v1/responses/").contains("halo adds the endpoint"));
        assert!(err("http://h/v1?api-version=2024-10-21").contains("query string"));
        assert!(err("http://h/v1#frag").contains("fragment"));
        assert!(err("ftp://h/v1").contains("not ftp://"));
        assert!(err(" http://h/v1").contains("white space"));
    }

    #[test]
    fn a_password_in_the_base_url_is_not_shown() {
        assert_eq!(
            shown_url("http://alice:hunter2@host:1/v1"),
            "http://***@host:1/v1"
        );
        assert_eq!(shown_url("http://host/v1"), "http://host/v1");
        assert_eq!(shown_url("http://host/a@b"), "http://host/a@b");
    }

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> Result<RunArgs, clap::Error> {
        T::try_parse_from(std::iter::once("halo").chain(args.iter().copied())).map(|t| t.run)
    }

    #[test]
    fn reference_defaults() {
        let a = parse(&["-p", "why", "--base-url", "http://localhost:1/v1"]).unwrap();
        assert_eq!(a.model, "gpt-5.4-mini");
        assert_eq!(
            (a.max_depth, a.max_turns, a.max_parallel, a.refusal_retries),
            (2, 20, 10, 0)
        );
        assert!(!a.no_parallel_tool_calls);
        assert!(preflight(&a).is_ok());
        let a = parse(&[
            "-p",
            "x",
            "--no-parallel-tool-calls",
            "--reasoning-effort",
            "xhigh",
            "-H",
            "X-A: 1",
            "-H",
            "X-B: 2",
        ])
        .unwrap();
        assert!(a.no_parallel_tool_calls);
        assert_eq!(a.reasoning_effort, Some(ReasoningEffort::Xhigh));
        assert_eq!(a.headers.len(), 2);
        assert!(parse(&["-p", "x", "--temperature", "3"]).is_err());
        assert!(parse(&["-p", "x", "--max-turns", "0"]).is_err());
        assert!(parse(&["-p", "x", "--max-total-tokens", "0"]).is_err());
        assert!(
            parse(&[]).unwrap().prompt.is_none(),
            "no prompt means the offline diagnosis"
        );
    }

    #[test]
    fn parallel_tool_calls_are_sent_only_when_asked_for() {
        let sent = |flags: &[&str]| {
            let mut argv = vec!["-p", "x", "--base-url", "http://127.0.0.1:1/v1"];
            argv.extend_from_slice(flags);
            let a = parse(&argv).unwrap();
            engine_config(&a, "run", PathBuf::from("cp.json"))
                .unwrap()
                .parallel_tool_calls
        };
        assert_eq!(sent(&[]), None);
        assert_eq!(sent(&["--parallel-tool-calls"]), Some(true));
        assert_eq!(sent(&["--no-parallel-tool-calls"]), Some(false));
    }

    #[test]
    fn credentials_given_as_headers_keep_the_key_at_home() {
        let key_sent = |header: &str| {
            let mut a = parse(&["-p", "x", "--base-url", "http://gw:1/v1", "-H", header]).unwrap();
            a.api_key = Some(ApiKey::new("sk-env"));
            engine_config(&a, "run", PathBuf::from("cp.json"))
                .unwrap()
                .provider
                .api_key
                .is_some()
        };
        assert!(!key_sent("Authorization: Bearer gw-token"));
        assert!(!key_sent("api-key: azure"));
        assert!(key_sent("X-Title: halo"));
    }

    #[test]
    fn preflight_refuses_telemetry_and_a_missing_key_for_openai() {
        let mut a = parse(&["-p", "x", "--base-url", DEFAULT_BASE_URL]).unwrap();
        a.api_key = None;
        let e = preflight(&a).unwrap_err().to_string();
        assert!(e.contains("OPENAI_API_KEY"), "{e}");
        a.api_key = Some(ApiKey::new("sk-abc"));
        assert!(preflight(&a).is_ok());
        // A credential given as a header is a key too.
        let mut h = parse(&[
            "-p",
            "x",
            "--base-url",
            DEFAULT_BASE_URL,
            "-H",
            "Authorization: Bearer t",
        ])
        .unwrap();
        h.api_key = None;
        assert!(preflight(&h).is_ok());
        assert!(!format!("{a:?}").contains("sk-abc"));
        a.telemetry = true;
        assert!(preflight(&a).unwrap_err().to_string().contains("later"));
        a.telemetry = false;
        // A directory for the report is refused before any model call is paid for.
        let dir = tempfile::tempdir().unwrap();
        a.output = Some(dir.path().to_path_buf());
        let e = preflight(&a).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
    }

    #[test]
    fn an_empty_prompt_and_a_missing_checkpoint_are_named_before_the_key() {
        let mut a = parse(&["-p", "  "]).unwrap();
        a.api_key = None;
        let e = preflight(&a).unwrap_err().to_string();
        assert!(e.contains("-p/--prompt is empty"), "{e}");
        let mut a = parse(&["-p", "why", "--resume", "/nonexistent/cp.json"]).unwrap();
        a.api_key = None;
        let e = preflight(&a).unwrap_err().to_string();
        assert!(e.contains("no such checkpoint file"), "{e}");
    }
}
