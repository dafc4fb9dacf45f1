//! Checkpoints: the root conversation and budgets, bound to one dataset.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use halo_provider::Message;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::EngineError;

/// Format version of [`RunCheckpoint`].
pub const CHECKPOINT_VERSION: u32 = 1;

/// Everything needed to resume a run where its root agent was.
///
/// Taken after every completed root turn (all tool results in), so the root
/// conversation is always well formed. Subagents are not checkpointed: they
/// finish inside one root turn. The API key is never part of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunCheckpoint {
    /// [`CHECKPOINT_VERSION`].
    pub version: u32,
    /// The run that wrote it.
    pub run_id: String,
    /// The user's prompt.
    pub prompt: String,
    /// Content fingerprint of the dataset (see `Dataset::fingerprint`).
    pub dataset_fingerprint: String,
    /// The dataset's source files.
    pub dataset_paths: Vec<PathBuf>,
    /// The root conversation, system prompt included.
    pub root_messages: Vec<Message>,
    /// Root turns used.
    pub turns_used: u32,
    /// Tokens (input + output, all models) used so far.
    pub tokens_used: u64,
    /// Whether the root was already re-prompted for a missing final answer.
    #[serde(default)]
    pub reprompted: bool,
    /// Originals of compacted context items, by id.
    #[serde(default)]
    pub context_items: BTreeMap<String, String>,
    /// Whether the run ended with its report (the root called `final_answer`): nothing is
    /// left to resume, and resuming would only pay for model calls again.
    #[serde(default)]
    pub completed: bool,
}

impl RunCheckpoint {
    /// Reads a checkpoint file.
    pub fn load(path: &Path) -> Result<RunCheckpoint, EngineError> {
        let text = std::fs::read_to_string(path).map_err(|e| EngineError::Checkpoint {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let cp: RunCheckpoint =
            serde_json::from_str(&text).map_err(|e| EngineError::Checkpoint {
                path: path.to_path_buf(),
                message: format!("not a halo checkpoint: {e}"),
            })?;
        if cp.version != CHECKPOINT_VERSION {
            return Err(EngineError::Checkpoint {
                path: path.to_path_buf(),
                message: format!(
                    "checkpoint format {} is not supported (expected {CHECKPOINT_VERSION})",
                    cp.version
                ),
            });
        }
        Ok(cp)
    }

    /// Whether this checkpoint can be resumed with `prompt` (the `-p` given beside
    /// `--resume`, if any): not when the run already completed, and not with another
    /// prompt, since a resumed run continues the conversation its own prompt started.
    pub fn check_resumable(&self, prompt: Option<&str>) -> Result<(), EngineError> {
        if self.completed {
            return Err(EngineError::NotResumable {
                run_id: self.run_id.clone(),
                message: "it already completed with its report; nothing is left to resume (start a new run instead)".to_owned(),
            });
        }
        if let Some(prompt) = prompt.filter(|p| *p != self.prompt) {
            return Err(EngineError::NotResumable {
                run_id: self.run_id.clone(),
                message: format!(
                    "it continues its own prompt ({:?}), not {prompt:?}; drop -p to resume, or start a new run for the new prompt",
                    self.prompt
                ),
            });
        }
        Ok(())
    }

    /// Writes the checkpoint atomically (temporary file, then rename).
    ///
    /// Compact JSON: the file holds the whole root conversation and is rewritten after
    /// every root turn, so indentation would only cost time and disk.
    pub fn save(&self, path: &Path) -> Result<(), EngineError> {
        let err = |e: std::io::Error| EngineError::Checkpoint {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let bytes = serde_json::to_vec(self).map_err(|e| EngineError::Checkpoint {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        write_atomic(path, &bytes).map_err(err)
    }
}

/// Writes a run's checkpoints on tokio's blocking threads, so that serializing and
/// writing a large root conversation never stalls the async workers the agents run on.
///
/// Writes are serialized (they share one temporary file name) and a write older than
/// the last one written is skipped, so the file always ends with the newest snapshot.
#[derive(Debug, Default)]
pub(crate) struct CheckpointWriter {
    next: AtomicU64,
    /// The generation last written; its lock serializes the writes.
    written: Arc<Mutex<u64>>,
    pending: Mutex<Vec<JoinHandle<()>>>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl CheckpointWriter {
    /// Starts writing `cp` to `path` in the background (must run inside a runtime).
    pub(crate) fn save(&self, cp: RunCheckpoint, path: PathBuf) {
        let generation = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let written = Arc::clone(&self.written);
        let errors = Arc::clone(&self.errors);
        let handle = tokio::task::spawn_blocking(move || {
            let mut last = written.lock().unwrap_or_else(|e| e.into_inner());
            if *last > generation {
                return; // a newer snapshot is already on disk
            }
            match cp.save(&path) {
                Ok(()) => *last = generation,
                Err(e) => errors
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(e.to_string()),
            }
        });
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.retain(|h| !h.is_finished());
        pending.push(handle);
    }

    /// Waits for every write started so far.
    pub(crate) async fn flush(&self) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for h in pending {
            // A write that panicked left the previous file in place; nothing to add.
            let _ = h.await;
        }
    }

    /// The writes that failed so far.
    pub(crate) fn errors(&self) -> Vec<String> {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkpoint".to_owned());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
