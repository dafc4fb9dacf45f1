//! The provider error type.

/// Why a model request failed.
///
/// No variant ever contains the API key: messages taken from provider
/// responses are scrubbed of the key before they are stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The request does not fit the model's context window (never retried).
    #[error("context length exceeded ({}): {message}", if *status == 200 { "reported inside the stream".to_owned() } else { format!("HTTP {status}") })]
    ContextLengthExceeded {
        /// HTTP status (usually 400; 200 when reported inside the stream).
        status: u16,
        /// The provider's message.
        message: String,
    },
    /// The provider answered with a non-success HTTP status.
    #[error("HTTP {status}: {message}")]
    Http {
        /// HTTP status code.
        status: u16,
        /// The provider's error message (or a prefix of the body).
        message: String,
    },
    /// The provider reported an error inside an otherwise successful stream
    /// (`response.failed`, an `error` event, or an `error` object in a chunk).
    #[error("provider error{}: {message}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Api {
        /// The provider's error code, e.g. `server_error`.
        code: Option<String>,
        /// The provider's message.
        message: String,
    },
    /// No response headers or no stream data within the configured timeout.
    #[error("timed out: {0}")]
    Timeout(String),
    /// Could not connect or the connection failed before a response.
    #[error("connection error: {0}")]
    Connect(String),
    /// The response stream ended or broke before the provider said it was
    /// complete.
    #[error("stream dropped before completion: {0}")]
    StreamDropped(String),
    /// The provider sent something this client cannot understand.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The configuration is unusable (e.g. an invalid header).
    #[error("invalid provider configuration: {0}")]
    InvalidConfig(String),
    /// Every attempt failed with a transient error.
    // The status only when the last attempt got one: a stream that broke, or an error
    // inside a 200, has no status of its own to show.
    #[error(
        "model request failed after {attempts} attempt{}{}: {last_error}",
        if *attempts == 1 { "" } else { "s" },
        last_status.map(|s| format!(" (last HTTP status {s})")).unwrap_or_default()
    )]
    RetriesExhausted {
        /// Attempts made (`max_retries + 1`).
        attempts: u32,
        /// HTTP status of the last attempt, when it got one.
        last_status: Option<u16>,
        /// The last attempt's error.
        last_error: Box<ProviderError>,
    },
}

impl ProviderError {
    /// This error with `note` added to its message (what the client made of it).
    pub(crate) fn with_note(mut self, note: &str) -> ProviderError {
        match &mut self {
            ProviderError::ContextLengthExceeded { message, .. }
            | ProviderError::Http { message, .. }
            | ProviderError::Api { message, .. }
            | ProviderError::Timeout(message)
            | ProviderError::Connect(message)
            | ProviderError::StreamDropped(message)
            | ProviderError::Protocol(message)
            | ProviderError::InvalidConfig(message) => {
                message.push_str("; ");
                message.push_str(note);
            }
            ProviderError::RetriesExhausted { last_error, .. } => {
                let inner =
                    std::mem::replace(last_error.as_mut(), ProviderError::Protocol(String::new()));
                **last_error = inner.with_note(note);
            }
        }
        self
    }

    /// The HTTP status behind this error, if any (for `RetriesExhausted`, the
    /// last attempt's).
    pub fn status(&self) -> Option<u16> {
        match self {
            ProviderError::ContextLengthExceeded { status, .. }
            | ProviderError::Http { status, .. } => Some(*status),
            ProviderError::RetriesExhausted { last_status, .. } => *last_status,
            _ => None,
        }
    }

    /// True for [`ProviderError::ContextLengthExceeded`], also when wrapped.
    pub fn is_context_length_exceeded(&self) -> bool {
        match self {
            ProviderError::ContextLengthExceeded { .. } => true,
            ProviderError::RetriesExhausted { last_error, .. } => {
                last_error.is_context_length_exceeded()
            }
            _ => false,
        }
    }
}
