//! Model names: a dated snapshot belongs to its family.

/// A model name without a dated snapshot suffix: `gpt-4o-2024-08-06` and
/// `claude-3-5-sonnet-20241022` are the families `gpt-4o` and `claude-3-5-sonnet`; other
/// names are their own family.
///
/// ```
/// use halo_trace::model_family;
/// assert_eq!(model_family("gpt-4.1-2025-04-14"), "gpt-4.1");
/// assert_eq!(model_family("claude-3-5-sonnet-20241022"), "claude-3-5-sonnet");
/// assert_eq!(model_family("gpt-4o"), "gpt-4o");
/// ```
pub fn model_family(model: &str) -> &str {
    let b = model.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    // `-YYYY-MM-DD`
    if let Some(cut) = b.len().checked_sub(11) {
        let tail = &b[cut..];
        if cut > 0
            && tail[0] == b'-'
            && tail[1..3] == *b"20"
            && digits(&tail[3..5])
            && tail[5] == b'-'
            && digits(&tail[6..8])
            && tail[8] == b'-'
            && digits(&tail[9..11])
        {
            return &model[..cut];
        }
    }
    // `-YYYYMMDD`
    if let Some(cut) = b.len().checked_sub(9) {
        let tail = &b[cut..];
        if cut > 0 && tail[0] == b'-' && tail[1..3] == *b"20" && digits(&tail[3..9]) {
            return &model[..cut];
        }
    }
    model
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_of_snapshots_and_plain_names() {
        assert_eq!(model_family("gpt-5.4-mini-2026-03-05"), "gpt-5.4-mini");
        assert_eq!(
            model_family("claude-3-5-sonnet-20241022"),
            "claude-3-5-sonnet"
        );
        assert_eq!(model_family("gpt-4o"), "gpt-4o");
        assert_eq!(
            model_family("-2024-08-06"),
            "-2024-08-06",
            "nothing before it"
        );
        assert_eq!(model_family("x-1999-08-06"), "x-1999-08-06");
        assert_eq!(model_family("x-2024-8-06"), "x-2024-8-06");
        assert_eq!(model_family("é-20241022"), "é");
        assert_eq!(model_family(""), "");
    }
}
