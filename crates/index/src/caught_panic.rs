//! Running code that panics on damaged input (Arrow's IPC decoder) so that its panics
//! become errors, without the panic message and backtrace on the terminal.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::sync::Once;

thread_local! {
    /// Set while this thread runs [`catching`]: its panics are expected and reported as
    /// errors, so the panic hook stays silent.
    static CATCHING: Cell<bool> = const { Cell::new(false) };
}

/// Installs, on the first [`catching`], a hook that stays silent on this module's caught
/// panics and hands every other to the hook before it. A hook set after that replaces it:
/// the panics are still caught, only their message is printed again.
static QUIET_HOOK: Once = Once::new();

/// Runs `f`; a panic in it is returned as its message. Other threads' panics, and this
/// thread's outside `f`, are reported by the panic hook as before.
pub(crate) fn catching<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CATCHING.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was = CATCHING.with(|c| c.replace(true));
    // The closure's state is dropped with the panic; nothing it touched is used after.
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(was));
    outcome.map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        format!("the Arrow reader failed: {message}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message_and_a_value_passes_through() {
        assert_eq!(catching(|| 7), Ok(7));
        let caught = catching(|| -> u8 { panic!("slice {} out of range", 3) });
        assert_eq!(
            caught,
            Err("the Arrow reader failed: slice 3 out of range".into())
        );
        let caught = catching(|| -> u8 { panic!("plain") });
        assert_eq!(caught, Err("the Arrow reader failed: plain".into()));
        // Nested: the outer call still catches after the inner one returned.
        let outer = catching(|| {
            let _ = catching(|| 1);
            panic!("after")
        });
        assert!(outer.is_err());
        assert!(!CATCHING.with(Cell::get));
    }
}
