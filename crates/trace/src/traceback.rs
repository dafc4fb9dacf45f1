//! The exception a Python traceback ends with.
//!
//! Some tracers (LangChain's, for one) set a failed run's whole traceback as the span's
//! status message. Its first lines are frames (`File "...", line 543, in ...`), and a
//! message kept by its head would keep only those: no exception name, and line numbers
//! that read like HTTP status codes. The last lines say what failed.

const HEADER: &str = "Traceback (most recent call last):";

/// The exception at the end of `text` when `text` holds a Python traceback
/// (`anthropic.RateLimitError: Error code: 429 - ...`), else `None`. LangChain's tracer
/// writes the exception's `repr` first and the traceback right after it: without an
/// exception line at the end, that `repr` is the answer.
pub fn traceback_exception(text: &str) -> Option<&str> {
    let at = text.find(HEADER)?;
    let before = text[..at].trim();
    exception_after_frames(&text[at + HEADER.len()..]).or((!before.is_empty()).then_some(before))
}

fn exception_after_frames(body: &str) -> Option<&str> {
    // The exception begins at the first line after the last frame that is not indented
    // (a frame is `  File ...` and its indented source line).
    let last_frame = body.rfind("\n  File ")?;
    let after_frame = &body[last_frame + 1..];
    let mut offset = 0;
    for line in after_frame.split_inclusive('\n') {
        if offset > 0 && !line.starts_with(' ') && !line.trim().is_empty() {
            let exception = after_frame[offset..].trim();
            return (!exception.is_empty()).then_some(exception);
        }
        offset += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exception_after_the_last_frame() {
        let tb = "Traceback (most recent call last):\n  File \"/app/agent.py\", line 543, in run\n    resp = client.messages.create(**kw)\n  File \"/venv/anthropic/_base_client.py\", line 1061, in request\n    raise self._make_status_error_from_response(err.response) from None\nanthropic.RateLimitError: Error code: 429 - {'type': 'error'}\n";
        assert_eq!(
            traceback_exception(tb),
            Some("anthropic.RateLimitError: Error code: 429 - {'type': 'error'}")
        );
        // A chained traceback: the last exception is the one that ended the run.
        let chained = format!(
            "{tb}\nDuring handling of the above exception, another exception occurred:\n\nTraceback (most recent call last):\n  File \"/app/graph.py\", line 9, in invoke\n    raise GraphRecursionError(msg)\nlanggraph.errors.GraphRecursionError: Recursion limit of 25 reached\nwithout hitting a stop condition."
        );
        assert_eq!(
            traceback_exception(&chained),
            Some("langgraph.errors.GraphRecursionError: Recursion limit of 25 reached\nwithout hitting a stop condition.")
        );
        assert_eq!(traceback_exception("ValueError: bad"), None);
        // LangChain's tracer: the repr, then the traceback with blank lines between frames.
        let langchain = "RateLimitError('Error code: 429')Traceback (most recent call last):\n\n  File \"/venv/langchain_core/runnables/base.py\", line 5093, in invoke\n    return self.bound.invoke(input)\n\n  File \"/venv/openai/_base_client.py\", line 1061, in request\n    raise self._make_status_error_from_response(err.response) from None\n\nopenai.RateLimitError: Error code: 429 - rate limited";
        assert_eq!(
            traceback_exception(langchain),
            Some("openai.RateLimitError: Error code: 429 - rate limited")
        );
        let cut = "RateLimitError('Error code: 429')Traceback (most recent call last):\n\n  File \"/venv/x.py\", line 5";
        assert_eq!(
            traceback_exception(cut),
            Some("RateLimitError('Error code: 429')")
        );
        assert_eq!(
            traceback_exception("Traceback (most recent call last):\n  File \"x\""),
            None
        );
    }
}
