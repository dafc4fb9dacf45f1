//! Small statistics: robust location/scale and Fisher's exact test.

/// The `q` quantile (0..=1) of `values` by nearest rank; `None` when empty. Reorders `values`.
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let k = ((values.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    let (_, v, _) = values.select_nth_unstable_by(k, f64::total_cmp);
    Some(*v)
}

/// Median and median absolute deviation of `values`; `None` when empty. Reorders `values`.
pub fn median_mad(values: &mut [f64]) -> Option<(f64, f64)> {
    let median = quantile(values, 0.5)?;
    let mut dev: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
    let mad = quantile(&mut dev, 0.5)?;
    Some((median, mad))
}

/// `ln(n!)` for `n` in `0..=max`, as one table.
fn ln_factorials(max: usize) -> Vec<f64> {
    let mut t = Vec::with_capacity(max + 1);
    let mut acc = 0.0f64;
    t.push(0.0);
    for n in 1..=max {
        acc += (n as f64).ln();
        t.push(acc);
    }
    t
}

/// Two-sided Fisher's exact test for the 2x2 table `[[a, b], [c, d]]`.
///
/// The p-value is the probability, under the hypergeometric distribution with the table's
/// margins, of every table at most as likely as the observed one. Computed with
/// log-factorials, so large tables (tens of thousands of traces) are exact and fast.
pub fn fisher_exact(a: u64, b: u64, c: u64, d: u64) -> f64 {
    let n = (a + b + c + d) as usize;
    if n == 0 {
        return 1.0;
    }
    let lf = ln_factorials(n);
    let row1 = (a + b) as usize;
    let row2 = (c + d) as usize;
    let col1 = (a + c) as usize;
    let col2 = (b + d) as usize;
    let fixed = lf[row1] + lf[row2] + lf[col1] + lf[col2] - lf[n];
    // ln P(X = x) for the top-left cell x.
    let ln_p = |x: usize| -> f64 {
        let b = row1 - x;
        let c = col1 - x;
        let d = row2 - c;
        fixed - lf[x] - lf[b] - lf[c] - lf[d]
    };
    let lo = col1.saturating_sub(row2);
    let hi = row1.min(col1);
    let observed = ln_p(a as usize);
    let tolerance = 1e-7;
    let mut p = 0.0f64;
    for x in lo..=hi {
        let l = ln_p(x);
        if l <= observed + tolerance {
            p += l.exp();
        }
    }
    p.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fisher_matches_known_values() {
        // R: fisher.test(matrix(c(1, 9, 11, 3), 2, byrow = TRUE))$p.value = 0.002759456
        let p = fisher_exact(1, 9, 11, 3);
        assert!((p - 0.002_759_456).abs() < 1e-8, "{p}");
        // Lady tasting tea: fisher.test(matrix(c(3,1,1,3),2))$p.value = 0.4857143
        let p = fisher_exact(3, 1, 1, 3);
        assert!((p - 0.485_714_3).abs() < 1e-6, "{p}");
        assert!((fisher_exact(5, 5, 5, 5) - 1.0).abs() < 1e-9);
        assert_eq!(fisher_exact(0, 0, 0, 0), 1.0);
        // Large, clearly different rates.
        assert!(fisher_exact(240, 2760, 0, 3000) < 1e-60);
    }

    #[test]
    fn robust_stats() {
        let mut v = vec![1.0, 2.0, 3.0, 4.0, 100.0];
        assert_eq!(median_mad(&mut v), Some((3.0, 1.0)));
        assert_eq!(quantile(&mut [], 0.5), None);
    }
}
