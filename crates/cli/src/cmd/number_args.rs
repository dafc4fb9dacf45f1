//! Numbers given on the command line, checked where clap reads them, so that a value no
//! one means (`NaN`, `inf`, a cap of 0) is a usage error instead of a silent no-op.

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

/// A duration bound in milliseconds (`--min-duration-ms`): a finite number. `NaN` compared
/// false with every duration and so filtered nothing out; `inf` is no bound anyone means.
pub(crate) fn finite_millis(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(ms) if ms.is_finite() => Ok(ms),
        Ok(_) => Err("must be a finite number of milliseconds".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// A cap (`--max-rows`, `--max-bytes`) of at least 1: a cap of 0 would return nothing and
/// call that a cut. Refused, as `--timeout 0` is.
pub(crate) fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1 (a cap of 0 returns nothing)".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::{at_least_one, finite_millis, parse_seconds};

    #[test]
    fn bounds_and_caps_refuse_what_no_one_means() {
        assert_eq!(finite_millis("-5.5"), Ok(-5.5));
        for bad in ["NaN", "inf", "-inf", "x"] {
            assert!(finite_millis(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(at_least_one("3"), Ok(3));
        for bad in ["0", "-1", "x"] {
            assert!(at_least_one(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn seconds_must_be_positive_finite_and_bounded() {
        assert_eq!(parse_seconds("2.5"), Ok(2.5));
        assert_eq!(parse_seconds("0.001"), Ok(0.001));
        for bad in ["0", "-1", "nan", "NaN", "inf", "1e20", "abc", ""] {
            assert!(parse_seconds(bad).is_err(), "{bad} accepted");
        }
    }
}
