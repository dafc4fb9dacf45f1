//! Reading a provider's `usage` object, whichever names and number forms it uses.
//!
//! Providers differ: OpenAI's Chat Completions says `prompt_tokens`/`completion_tokens`,
//! the Responses API and several Chat Completions servers `input_tokens`/`output_tokens`,
//! some send only `total_tokens`, some send counts as floats (`1000.0`) or strings, and
//! some send `{}` or zeros. A usage the engine cannot read must not count as "reported",
//! or a token budget would see zero and never stop a run: such a usage is `None`, and the
//! engine estimates instead.

use serde_json::Value;

use crate::types::Usage;

/// A token count: a whole number from 0 up, written as an integer, an integral float or
/// a string of digits.
fn count(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f < 1.8e19)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The first of `names` present in `u` as a count.
fn first_count(u: &Value, names: &[&str]) -> Option<u64> {
    names.iter().find_map(|name| count(u.get(*name)))
}

/// The usage `u` reports, or `None` when it reports no count (absent, unreadable or all
/// zero). With only a total, the total is taken as input: budgets count the sum.
pub(crate) fn usage_from(u: &Value) -> Option<Usage> {
    if !u.is_object() {
        return None;
    }
    let input = first_count(u, &["prompt_tokens", "input_tokens"]);
    let output = first_count(u, &["completion_tokens", "output_tokens"]);
    let total = first_count(u, &["total_tokens"]);
    let (input_tokens, output_tokens) = match (input, output, total) {
        (None, None, None) => return None,
        (None, None, Some(total)) => (total, 0),
        (input, output, _) => (input.unwrap_or(0), output.unwrap_or(0)),
    };
    if input_tokens == 0 && output_tokens == 0 {
        return None;
    }
    let detail = |paths: &[&str]| paths.iter().find_map(|p| count(u.pointer(p)));
    Some(Usage {
        input_tokens,
        output_tokens,
        cached_input_tokens: detail(&[
            "/prompt_tokens_details/cached_tokens",
            "/input_tokens_details/cached_tokens",
        ]),
        reasoning_tokens: detail(&[
            "/completion_tokens_details/reasoning_tokens",
            "/output_tokens_details/reasoning_tokens",
        ]),
    })
}

#[cfg(test)]
mod tests {
    use super::usage_from;
    use serde_json::json;

    fn counts(u: serde_json::Value) -> Option<(u64, u64)> {
        usage_from(&u).map(|u| (u.input_tokens, u.output_tokens))
    }

    #[test]
    fn every_name_and_number_form_a_provider_sends() {
        assert_eq!(
            counts(json!({"prompt_tokens": 1000, "completion_tokens": 100})),
            Some((1000, 100))
        );
        assert_eq!(
            counts(json!({"prompt_tokens": 1000.0, "completion_tokens": 100.0})),
            Some((1000, 100))
        );
        assert_eq!(
            counts(json!({"input_tokens": 7, "output_tokens": 3})),
            Some((7, 3))
        );
        assert_eq!(
            counts(json!({"prompt_tokens": "12", "completion_tokens": "4"})),
            Some((12, 4))
        );
        assert_eq!(counts(json!({"total_tokens": 900})), Some((900, 0)));
        assert_eq!(counts(json!({"prompt_tokens": 5})), Some((5, 0)));
        let u = usage_from(&json!({
            "input_tokens": 10, "output_tokens": 2,
            "input_tokens_details": {"cached_tokens": 4},
            "output_tokens_details": {"reasoning_tokens": 1.0}
        }))
        .expect("a usage");
        assert_eq!(
            (u.cached_input_tokens, u.reasoning_tokens),
            (Some(4), Some(1))
        );
    }

    #[test]
    fn a_usage_that_reports_nothing_is_none() {
        for u in [
            json!({}),
            json!(null),
            json!({"prompt_tokens": null, "completion_tokens": null}),
            json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}),
            json!({"prompt_tokens": -3, "completion_tokens": 1.5}),
            json!({"prompt_tokens": "many"}),
        ] {
            assert_eq!(counts(u.clone()), None, "{u}");
        }
    }
}
