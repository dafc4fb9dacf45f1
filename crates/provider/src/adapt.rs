//! Adapting requests to servers that reject a parameter halo chose on its own.
//!
//! halo sends `stream_options` (to get token usage in the stream), `store: false` (Responses
//! API) and the output limit as `max_completion_tokens`. Some OpenAI-compatible servers
//! reject one of them with a 400 that names it. The request is then sent again without it
//! (or under the older name `max_tokens`), and the client remembers, per model (one
//! gateway can serve models that disagree), so later requests of the run are built that way
//! from the start.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Map, Value};

/// One change to a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Leave out `stream_options`.
    DropStreamOptions,
    /// Leave out `store`.
    DropStore,
    /// Send the output limit as `max_tokens`.
    MaxTokensName,
}

impl Change {
    const ALL: [Change; 3] = [
        Change::DropStreamOptions,
        Change::DropStore,
        Change::MaxTokensName,
    ];

    fn bit(self) -> u8 {
        1 << self as u8
    }

    /// Makes the change; whether the body had what it changes.
    fn apply(self, body: &mut Map<String, Value>) -> bool {
        match self {
            Change::DropStreamOptions => body.remove("stream_options").is_some(),
            Change::DropStore => body.remove("store").is_some(),
            Change::MaxTokensName => match body.remove("max_completion_tokens") {
                Some(limit) => {
                    body.insert("max_tokens".into(), limit);
                    true
                }
                None => false,
            },
        }
    }

    /// The change a 400 error message asks for, if it says that the server does not know a
    /// parameter halo chose (not, say, that a limit is too large).
    pub(crate) fn asked_by(message: &str) -> Option<Change> {
        let lower = message.to_ascii_lowercase();
        let unknown = [
            "unrecogni",
            "unsupported",
            "not supported",
            "unknown",
            "unexpected",
            "not permitted",
            "not allowed",
            "invalid parameter",
        ]
        .iter()
        .any(|w| lower.contains(w));
        if !unknown {
            return None;
        }
        if names(&lower, "stream_options") {
            Some(Change::DropStreamOptions)
        } else if names(&lower, "max_completion_tokens") {
            Some(Change::MaxTokensName)
        } else if names(&lower, "store") {
            Some(Change::DropStore)
        } else {
            None
        }
    }
}

/// Whether `message` names `parameter` as a word of its own (`store`, not
/// `store-assistant-v2` or `restore`).
fn names(message: &str, parameter: &str) -> bool {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-');
    message.match_indices(parameter).any(|(at, _)| {
        !word(message[..at].chars().next_back())
            && !word(message[at + parameter.len()..].chars().next())
    })
}

/// The changes one client has learnt, per model, shared by its requests.
#[derive(Debug, Default)]
pub(crate) struct Learnt(Mutex<HashMap<String, u8>>);

impl Learnt {
    /// Remembers `change` for the requests to `model` to come.
    pub(crate) fn learn(&self, model: &str, change: Change) {
        let mut learnt = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *learnt.entry(model.to_owned()).or_default() |= change.bit();
    }

    /// Applies every change learnt so far for `model` to `body`.
    pub(crate) fn apply_all(&self, model: &str, body: &mut Value) {
        let learnt = {
            let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            map.get(model).copied().unwrap_or(0)
        };
        if let Value::Object(map) = body {
            for change in Change::ALL {
                if learnt & change.bit() != 0 {
                    change.apply(map);
                }
            }
        }
    }
}

/// Makes `change` to a serialized body; the new body when it changed anything.
pub(crate) fn changed_body(body: &[u8], change: Change) -> Option<Vec<u8>> {
    let Ok(Value::Object(mut map)) = serde_json::from_slice(body) else {
        return None;
    };
    change
        .apply(&mut map)
        .then(|| serde_json::to_vec(&map).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unknown_parameters_ask_for_a_change() {
        assert_eq!(
            Change::asked_by("Unrecognized request argument supplied: stream_options"),
            Some(Change::DropStreamOptions)
        );
        assert_eq!(
            Change::asked_by("Unknown parameter: 'store'."),
            Some(Change::DropStore)
        );
        assert_eq!(
            Change::asked_by("Unsupported parameter: max_completion_tokens"),
            Some(Change::MaxTokensName)
        );
        assert_eq!(
            Change::asked_by("'max_tokens' or 'max_completion_tokens' is too large: 99"),
            None
        );
        assert_eq!(Change::asked_by("Unknown model: gpt-9"), None);
        assert_eq!(Change::asked_by("Unknown model: store-assistant-v2"), None);
        assert_eq!(
            Change::asked_by("Invalid parameter: stream_options"),
            Some(Change::DropStreamOptions)
        );
    }

    #[test]
    fn learnt_changes_apply_to_later_bodies() {
        let learnt = Learnt::default();
        learnt.learn("a", Change::MaxTokensName);
        learnt.learn("a", Change::DropStreamOptions);
        let body =
            serde_json::json!({"stream_options": {}, "max_completion_tokens": 5, "store": false});
        let mut for_a = body.clone();
        learnt.apply_all("a", &mut for_a);
        assert_eq!(for_a, serde_json::json!({"max_tokens": 5, "store": false}));
        // Another model behind the same client keeps what it was sent.
        let mut for_b = body.clone();
        learnt.apply_all("b", &mut for_b);
        assert_eq!(for_b, body);
    }
}
