//! The engine: runs, their handles, outcomes and the convenience entry points.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use futures::{Stream, StreamExt};
use halo_index::Dataset;
use halo_provider::ModelClient;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::agent::{root_info, Agent, Ending};
use crate::checkpoint::{CheckpointWriter, RunCheckpoint};
use crate::config::EngineConfig;
use crate::context::ContextStore;
use crate::events::{AgentItem, AgentOutputItem, Emitter, EngineEvent, ItemMark};
use crate::record::{RunRecord, RunStatus, Tracker, UsageProbe};
use crate::tools::repo::RepoTools;
use crate::tools::sql::SqlTool;
use crate::EngineError;
use halo_query::check_citations;

/// State shared by every agent of one run.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: EngineConfig,
    pub(crate) client: ModelClient,
    pub(crate) dataset: Arc<Dataset>,
    pub(crate) repo: Option<RepoTools>,
    pub(crate) sql: SqlTool,
    pub(crate) emitter: Emitter,
    pub(crate) usage: Tracker,
    pub(crate) contexts: ContextStore,
    pub(crate) slots: Semaphore,
    pub(crate) cancel: watch::Receiver<bool>,
    pub(crate) run_id: String,
    pub(crate) prompt: String,
    pub(crate) last_checkpoint: Mutex<Option<RunCheckpoint>>,
    pub(crate) checkpoints: CheckpointWriter,
}

/// Resolves when the run is cancelled (never, if the canceller is gone).
pub(crate) async fn cancelled(rx: &watch::Receiver<bool>) {
    let mut rx = rx.clone();
    if rx.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A configured engine over one dataset. Start any number of runs with
/// [`Engine::start`] or [`Engine::resume`].
#[derive(Debug, Clone)]
pub struct Engine {
    config: EngineConfig,
    client: ModelClient,
    dataset: Arc<Dataset>,
    repo: Option<RepoTools>,
}

/// Cancels a run from anywhere (cheap to clone).
#[derive(Debug, Clone)]
pub struct Canceller(Arc<watch::Sender<bool>>);

impl Canceller {
    /// Asks every agent of the run to stop. The run then ends with the report
    /// so far and [`RunStatus::Cancelled`].
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }
}

/// The end of a run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Run id.
    pub run_id: String,
    /// How it ended.
    pub status: RunStatus,
    /// The report (Markdown), citations checked.
    pub report: String,
    /// The run record.
    pub record: RunRecord,
    /// The latest checkpoint, if the root completed a turn.
    pub checkpoint: Option<RunCheckpoint>,
    /// What went wrong, for `Failed` (never contains the API key).
    pub error: Option<String>,
    /// Checkpoint files that could not be written.
    pub checkpoint_errors: Vec<String>,
    /// The report was put together by halo from what the agents found, because the model
    /// wrote none before the run ended (a budget ran out, a request failed): it is not a
    /// finished report.
    pub report_synthesized: bool,
}

/// A running run: a [`Stream`] of its [`EngineEvent`]s, then its outcome.
///
/// The event stream ends when the run ends; call [`RunHandle::outcome`] then
/// (or at any time: it waits for the end). Events not consumed are buffered.
#[derive(Debug)]
pub struct RunHandle {
    run_id: String,
    events: mpsc::UnboundedReceiver<EngineEvent>,
    task: tokio::task::JoinHandle<RunOutcome>,
    canceller: Canceller,
    probe: UsageProbe,
}

impl RunHandle {
    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// A handle to cancel the run (e.g. from a Ctrl-C handler).
    pub fn canceller(&self) -> Canceller {
        self.canceller.clone()
    }

    /// Live token counters.
    pub fn usage(&self) -> UsageProbe {
        self.probe.clone()
    }

    /// Waits for the end of the run and returns its outcome. Unconsumed
    /// events are dropped.
    pub async fn outcome(self) -> Result<RunOutcome, EngineError> {
        drop(self.events);
        self.task
            .await
            .map_err(|e| EngineError::Runtime(format!("the run task failed: {e}")))
    }

    /// Completed items only.
    pub fn output_items(self) -> OutputItems {
        OutputItems(self)
    }

    /// Runs to the end and collects every completed item.
    pub async fn collect(mut self) -> Result<(Vec<AgentOutputItem>, RunOutcome), EngineError> {
        let mut items = Vec::new();
        while let Some(ev) = self.next().await {
            if let EngineEvent::OutputItem(i) = ev {
                items.push(i);
            }
        }
        Ok((items, self.outcome().await?))
    }
}

impl Stream for RunHandle {
    type Item = EngineEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<EngineEvent>> {
        self.events.poll_recv(cx)
    }
}

/// A stream of completed items only (see [`RunHandle::output_items`]).
#[derive(Debug)]
pub struct OutputItems(RunHandle);

impl OutputItems {
    /// Waits for the end of the run and returns its outcome.
    pub async fn outcome(self) -> Result<RunOutcome, EngineError> {
        self.0.outcome().await
    }
}

impl Stream for OutputItems {
    type Item = AgentOutputItem;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<AgentOutputItem>> {
        loop {
            match self.0.events.poll_recv(cx) {
                Poll::Ready(Some(EngineEvent::OutputItem(i))) => return Poll::Ready(Some(i)),
                Poll::Ready(Some(_)) => continue,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// A fresh run id: `halo-YYYYMMDD-HHMMSS-xxxxxx` (UTC time and random hex).
pub fn new_run_id() -> String {
    let now = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    format!("halo-{now}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

impl Engine {
    /// Builds an engine: the provider client and, with a repo path, the code
    /// tools. No network traffic happens here.
    pub fn new(config: EngineConfig, dataset: Arc<Dataset>) -> Result<Engine, EngineError> {
        let client = ModelClient::new(config.provider.clone()).map_err(EngineError::Provider)?;
        let repo = match &config.repo_path {
            Some(p) => Some(RepoTools::open(p).map_err(EngineError::Repo)?),
            None => None,
        };
        Ok(Engine {
            config,
            client,
            dataset,
            repo,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The dataset.
    pub fn dataset(&self) -> &Arc<Dataset> {
        &self.dataset
    }

    /// Starts a run of `prompt`. Must be called inside a tokio runtime.
    pub fn start(&self, prompt: &str) -> RunHandle {
        self.launch(prompt.to_owned(), None)
    }

    /// Resumes a run from a checkpoint. Refused when the checkpoint belongs to
    /// other data (its dataset fingerprint differs) or its run already completed.
    /// Must be called inside a tokio runtime.
    pub fn resume(&self, checkpoint: RunCheckpoint) -> Result<RunHandle, EngineError> {
        checkpoint.check_resumable(None)?;
        let found = self.dataset.fingerprint();
        if checkpoint.dataset_fingerprint != found {
            return Err(EngineError::DatasetMismatch {
                expected: checkpoint.dataset_fingerprint,
                found,
                paths: checkpoint.dataset_paths,
            });
        }
        Ok(self.launch(checkpoint.prompt.clone(), Some(checkpoint)))
    }

    fn launch(&self, prompt: String, resume: Option<RunCheckpoint>) -> RunHandle {
        let run_id = self.config.run_id.clone().unwrap_or_else(new_run_id);
        let (tx, rx) = mpsc::unbounded_channel();
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let usage = Tracker::with_total(resume.as_ref().map_or(0, |c| c.tokens_used));
        let contexts = match &resume {
            Some(cp) => ContextStore::from_items(cp.context_items.clone()),
            None => ContextStore::default(),
        };
        let shared = Arc::new(Shared {
            config: self.config.clone(),
            client: self.client.clone(),
            dataset: Arc::clone(&self.dataset),
            repo: self.repo.clone(),
            sql: SqlTool::default(),
            emitter: Emitter::new(Some(tx)),
            usage,
            contexts,
            slots: Semaphore::new(self.config.max_parallel.max(1)),
            cancel: cancel_rx,
            run_id: run_id.clone(),
            prompt: prompt.clone(),
            last_checkpoint: Mutex::new(resume.clone()),
            checkpoints: CheckpointWriter::default(),
        });
        let root = match &resume {
            Some(cp) => Agent::resumed(Arc::clone(&shared), cp),
            None => Agent::root(Arc::clone(&shared), &prompt),
        };
        let resumed_from = resume.map(|c| c.run_id);
        let task = tokio::spawn(drive(Arc::clone(&shared), root, resumed_from));
        RunHandle {
            run_id,
            events: rx,
            task,
            canceller: Canceller(Arc::new(cancel_tx)),
            probe: UsageProbe(shared),
        }
    }
}

async fn drive(shared: Arc<Shared>, root: Agent, resumed_from: Option<String>) -> RunOutcome {
    let started = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339();
    let turns_before = root.turns_used;
    let result = root.run().await;
    let (status, error) = match &result.ending {
        Ending::Answered => (RunStatus::Completed, None),
        Ending::NoFinalAnswer => (RunStatus::NoFinalAnswer, None),
        Ending::TurnBudget => (RunStatus::TurnBudgetExhausted, None),
        Ending::TokenBudget => (RunStatus::TokenBudgetExhausted, None),
        Ending::Cancelled => (RunStatus::Cancelled, None),
        Ending::Failed(e) => (RunStatus::Failed, Some(e.clone())),
    };
    let ds = Arc::clone(&shared.dataset);
    let answer = result.answer.clone();
    let (report, unverified) = tokio::task::spawn_blocking(move || {
        let check = check_citations(&answer, &ds);
        let unverified: Vec<String> = check.unknown_citations().map(|c| c.text.clone()).collect();
        let mut report = check.markdown.clone();
        report.extend(check.closing_note());
        (report, unverified)
    })
    .await
    .unwrap_or_else(|_| (result.answer.clone(), Vec::new()));
    shared.emitter.item(
        &root_info(),
        AgentItem::Message {
            id: "root/report".to_owned(),
            role: "assistant".to_owned(),
            content: report.clone(),
        },
        // Partial when assembled from findings or taken from a message that was not an
        // answer: a run that used its turns can still end with a report the model wrote
        // on its last chance.
        if result.synthesized || matches!(result.ending, Ending::NoFinalAnswer) {
            ItemMark::RunPartial
        } else {
            ItemMark::RunFinal
        },
    );
    let mut checkpoint = shared
        .last_checkpoint
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if status == RunStatus::Completed {
        // Marked so that `--resume` refuses it instead of paying for the run again.
        if let Some(cp) = checkpoint.as_mut() {
            cp.completed = true;
            if let Some(path) = &shared.config.checkpoint_path {
                shared.checkpoints.save(cp.clone(), path.clone());
            }
        }
    }
    // The caller reads (or resumes from) the file once the outcome is out.
    shared.checkpoints.flush().await;
    let root_turns = checkpoint.as_ref().map_or(turns_before, |c| c.turns_used);
    let cfg = &shared.config;
    let by_model = shared.usage.by_model();
    let record = RunRecord {
        run_id: shared.run_id.clone(),
        status,
        error: error.clone(),
        started_at,
        duration_ms: started.elapsed().as_millis() as u64,
        model: cfg.model.clone(),
        synthesis_model: cfg.synthesis_model().to_owned(),
        compaction_model: cfg.compaction_model().to_owned(),
        input_tokens: by_model.values().map(|u| u.input_tokens).sum(),
        output_tokens: by_model.values().map(|u| u.output_tokens).sum(),
        model_calls: by_model.values().map(|u| u.calls).sum(),
        failed_model_calls: shared.usage.failed_calls(),
        usage_by_model: by_model,
        tools: shared.usage.tools(),
        subagents: shared
            .usage
            .subagents
            .load(std::sync::atomic::Ordering::Relaxed),
        root_turns,
        compactions: shared
            .usage
            .compactions
            .load(std::sync::atomic::Ordering::Relaxed),
        estimated_usage_calls: shared.usage.estimated_calls(),
        unverified_citations: unverified,
        dataset_fingerprint: shared.dataset.fingerprint(),
        resumed_from,
    };
    shared.emitter.close();
    let checkpoint_errors = shared.checkpoints.errors();
    RunOutcome {
        run_id: shared.run_id.clone(),
        status,
        report,
        record,
        checkpoint,
        error,
        checkpoint_errors,
        report_synthesized: result.synthesized,
    }
}

/// Starts a run and returns its event stream (the handle is the stream).
pub fn stream_events(engine: &Engine, prompt: &str) -> RunHandle {
    engine.start(prompt)
}

/// Starts a run and returns a stream of its completed items only.
pub fn stream_output(engine: &Engine, prompt: &str) -> OutputItems {
    engine.start(prompt).output_items()
}

/// Runs to the end; returns every completed item and the outcome.
pub async fn run(
    engine: &Engine,
    prompt: &str,
) -> Result<(Vec<AgentOutputItem>, RunOutcome), EngineError> {
    engine.start(prompt).collect().await
}

fn runtime() -> Result<tokio::runtime::Runtime, EngineError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| EngineError::Runtime(format!("cannot start a tokio runtime: {e}")))
}

/// Blocking [`run`] (on a private runtime; do not call from async code).
pub fn run_blocking(
    engine: &Engine,
    prompt: &str,
) -> Result<(Vec<AgentOutputItem>, RunOutcome), EngineError> {
    let rt = runtime()?;
    rt.block_on(run(engine, prompt))
}

/// A blocking iterator over the events of a run, driven on a private runtime.
#[derive(Debug)]
pub struct BlockingEvents {
    rt: tokio::runtime::Runtime,
    handle: Option<RunHandle>,
}

impl BlockingEvents {
    /// Waits for the end of the run and returns its outcome.
    pub fn outcome(mut self) -> Result<RunOutcome, EngineError> {
        let handle = self
            .handle
            .take()
            .ok_or_else(|| EngineError::Runtime("outcome already taken".to_owned()))?;
        self.rt.block_on(handle.outcome())
    }

    /// A handle to cancel the run.
    pub fn canceller(&self) -> Option<Canceller> {
        self.handle.as_ref().map(RunHandle::canceller)
    }
}

impl Iterator for BlockingEvents {
    type Item = EngineEvent;

    fn next(&mut self) -> Option<EngineEvent> {
        let handle = self.handle.as_mut()?;
        self.rt.block_on(handle.next())
    }
}

/// Blocking [`stream_events`]: an iterator of every event.
pub fn stream_events_blocking(
    engine: &Engine,
    prompt: &str,
) -> Result<BlockingEvents, EngineError> {
    let rt = runtime()?;
    let handle = {
        let _guard = rt.enter();
        engine.start(prompt)
    };
    Ok(BlockingEvents {
        rt,
        handle: Some(handle),
    })
}

/// Blocking [`stream_output`]: an iterator of completed items only.
pub fn stream_output_blocking(
    engine: &Engine,
    prompt: &str,
) -> Result<impl Iterator<Item = AgentOutputItem>, EngineError> {
    Ok(
        stream_events_blocking(engine, prompt)?.filter_map(|e| match e {
            EngineEvent::OutputItem(i) => Some(i),
            _ => None,
        }),
    )
}
