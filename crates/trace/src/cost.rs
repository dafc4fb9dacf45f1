//! Adding up costs, in dollars, so that a total does not depend on the order of its parts.

/// `a + b`, added in whole picodollars: a float sum depends on its order, and spans and
/// traces are added in another order when they come in appended parts, or in a shuffled
/// file, than in one build (0.017598000000000003 against 0.017598). Exact, whatever the
/// order, up to about $9,000 in all; past that (or for a cost that is no finite number)
/// a plain float sum.
pub fn add_costs(a: f64, b: f64) -> f64 {
    const PER_DOLLAR: f64 = 1e12;
    const EXACT: f64 = (1u64 << 53) as f64;
    let (pa, pb) = ((a * PER_DOLLAR).round(), (b * PER_DOLLAR).round());
    if pa.abs() < EXACT && pb.abs() < EXACT && (pa + pb).abs() < EXACT {
        (pa + pb) / PER_DOLLAR
    } else {
        a + b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_add_up_the_same_in_any_order() {
        let costs = [0.000_002_5, 0.017_5, 0.000_098, 0.1, 0.2, 0.3];
        let forward = costs.iter().fold(0.0, |t, &c| add_costs(t, c));
        let backward = costs.iter().rev().fold(0.0, |t, &c| add_costs(t, c));
        let pairs = add_costs(
            costs[..3].iter().fold(0.0, |t, &c| add_costs(t, c)),
            costs[3..].iter().fold(0.0, |t, &c| add_costs(t, c)),
        );
        assert_eq!(forward.to_bits(), backward.to_bits());
        assert_eq!(forward.to_bits(), pairs.to_bits());
        assert_eq!(forward, 0.6176005);
        // Beyond exactness, still a sum.
        assert_eq!(add_costs(1e9, 1.0), 1e9 + 1.0);
        assert!(add_costs(f64::NAN, 1.0).is_nan());
    }
}
