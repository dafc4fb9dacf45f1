//! Durations given on the command line in seconds (`--time-budget`, `--timeout`).

/// The longest wait accepted: a week. Far beyond any useful budget, and far below where
/// turning seconds into a `Duration` would overflow.
const MAX_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

/// Parses a positive, finite number of seconds of at most a week, for clap.
pub(crate) fn parse_seconds(text: &str) -> Result<f64, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= MAX_SECONDS) {
        return Err(format!(
            "`{text}` is out of range: give a number of seconds above 0 and at most {MAX_SECONDS:.0} (a week)"
        ));
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::parse_seconds;

    #[test]
    fn seconds_must_be_positive_finite_and_bounded() {
        assert_eq!(parse_seconds("2.5"), Ok(2.5));
        assert_eq!(parse_seconds("0.001"), Ok(0.001));
        for bad in ["0", "-1", "nan", "NaN", "inf", "1e20", "abc", ""] {
            assert!(parse_seconds(bad).is_err(), "{bad} accepted");
        }
    }
}
