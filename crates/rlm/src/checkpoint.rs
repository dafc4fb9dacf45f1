//! Checkpoints: the root conversation and budgets, bound to one dataset.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use halo_provider::Message;
use serde::{Deserialize, Serialize};

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
    pub fn save(&self, path: &Path) -> Result<(), EngineError> {
        let err = |e: std::io::Error| EngineError::Checkpoint {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let text = serde_json::to_string_pretty(self).map_err(|e| EngineError::Checkpoint {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        write_atomic(path, text.as_bytes()).map_err(err)
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
