//! Tool results that stay valid JSON under the result cap.
//!
//! The agent loop cuts any tool result longer than [`MAX_RESULT_CHARS`] bytes at that
//! length (`cap_text`), which in the middle of a JSON document leaves the model invalid
//! JSON. So the trace tools fit their own answers under the cap first: whole items are
//! left out from the end of the answer's long list (trace rows, search matches, the
//! overview's name lists), and the JSON says so, in the vocabulary the results already
//! use: `truncated` and `truncation_note` as in the `sql` result, `next_offset` as in
//! `view_trace`, plus how many items were left out. Whatever still does not fit is
//! replaced by a short JSON note ([`guard`]) rather than cut.

use halo_query::{Overview, SearchResult, TraceList};
use serde::Serialize;

use super::MAX_RESULT_CHARS;

/// Largest JSON answer a trace tool returns, in bytes: what `cap_text` passes untouched.
pub(crate) const JSON_BUDGET: usize = MAX_RESULT_CHARS;

/// A result with fields added beside its own (a struct's fields are flattened into one
/// object, so the model sees one flat answer).
#[derive(Serialize)]
struct Noted<'a, T: Serialize, E: Serialize> {
    #[serde(flatten)]
    inner: &'a T,
    #[serde(flatten)]
    extra: E,
}

fn to_json<T: Serialize + ?Sized>(v: &T) -> Result<String, String> {
    serde_json::to_string(v).map_err(|e| format!("cannot encode result: {e}"))
}

/// How many leading `items` fit in `room` bytes of a JSON array's inside (commas counted).
fn items_that_fit<I: Serialize>(items: &[I], room: usize) -> usize {
    let mut used = 0usize;
    for (i, item) in items.iter().enumerate() {
        let len = serde_json::to_string(item).map_or(usize::MAX, |s| s.len());
        used = used.saturating_add(len).saturating_add(usize::from(i > 0));
        if used > room {
            return i;
        }
    }
    items.len()
}

/// Leaves out items from the end of the list `items` selects until `encode(value)` fits
/// in `budget` bytes, and returns that encoding (or, when even an empty list does not fit,
/// the encoding with an empty list, for [`guard`] to replace).
fn shrink_list<T, I: Serialize>(
    value: &mut T,
    items: fn(&mut T) -> &mut Vec<I>,
    budget: usize,
    encode: impl Fn(&T) -> Result<String, String>,
) -> Result<String, String> {
    // Measured once without the items and once per item, rather than re-encoding the
    // whole answer for every item left out.
    let all = std::mem::take(items(value));
    let envelope = encode(value)?.len();
    let keep = items_that_fit(&all, budget.saturating_sub(envelope));
    let list = items(value);
    *list = all;
    list.truncate(keep);
    // The notes name counts, so the estimate can be off by a few digits: re-check.
    loop {
        let text = encode(value)?;
        if text.len() <= budget || items(value).pop().is_none() {
            return Ok(text);
        }
    }
}

/// Any JSON object answer cut to `budget` bytes on whole items: items are left out from
/// the end of its longest top-level list, and the answer's paging fields follow
/// (`has_more`, `next_offset` moved back by the items left out, or set from `offset`,
/// and `omitted_<list>` grown by them); `truncated` and a new `truncation_note` (what was
/// kept, then `why`) say so. `None` when the text is no JSON object, or does not fit
/// even with that list empty: the caller cuts it as text then.
pub(crate) fn json_within(text: &str, budget: usize, why: &str) -> Option<String> {
    use serde_json::Value;
    let Value::Object(mut object) = serde_json::from_str(text).ok()? else {
        return None;
    };
    let (field, _) = object
        .iter()
        .filter(|(_, v)| v.is_array())
        .map(|(k, v)| (k.clone(), json_len(v)))
        .max_by_key(|(_, len)| *len)?;
    let items = match object.get_mut(&field) {
        Some(Value::Array(items)) => std::mem::take(items),
        _ => return None,
    };
    let all = items.len();
    let next_before = object.get("next_offset").and_then(Value::as_u64);
    let offset = object.get("offset").and_then(Value::as_u64);
    let omitted_key = format!("omitted_{field}");
    let omitted_before = object
        .get(&omitted_key)
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let encode = |object: &mut serde_json::Map<String, Value>, kept: usize| {
        let dropped = (all - kept) as u64;
        // The next page starts right after the last item kept.
        let next = match (next_before, offset) {
            (Some(next), _) => Some(next.saturating_sub(dropped)),
            (None, Some(offset)) => Some(offset + kept as u64),
            (None, None) => None,
        };
        if let Some(next) = next.filter(|_| dropped > 0) {
            object.insert("next_offset".into(), next.into());
            object.insert("has_more".into(), true.into());
        }
        object.insert(omitted_key.clone(), (omitted_before + dropped).into());
        object.insert("truncated".into(), true.into());
        let page_on = match next {
            Some(next) if dropped > 0 => format!(" Page on with offset: {next}."),
            _ => String::new(),
        };
        object.insert(
            "truncation_note".into(),
            format!("{kept} of the {all} items of `{field}` kept: {why}.{page_on}").into(),
        );
        serde_json::to_string(&*object).ok()
    };
    let envelope = encode(&mut object, all)?.len();
    let kept = items_that_fit(&items, budget.saturating_sub(envelope));
    let mut items = items;
    items.truncate(kept);
    object.insert(field.clone(), Value::Array(items));
    // The note names counts, so the estimate can be off by a few digits: re-check.
    loop {
        let kept = object
            .get(&field)
            .and_then(|v| v.as_array())
            .map_or(0, Vec::len);
        let text = encode(&mut object, kept)?;
        if text.len() <= budget {
            return Some(text);
        }
        match object.get_mut(&field) {
            Some(Value::Array(items)) if !items.is_empty() => {
                items.pop();
            }
            _ => return None,
        }
    }
}

/// Fields added to a `query_traces` page that was cut to fit.
#[derive(Serialize)]
struct PageCut {
    truncated: bool,
    /// Rows of the requested page left out.
    omitted_traces: usize,
    /// The `offset` that continues right after the last row shown.
    next_offset: usize,
    truncation_note: String,
}

/// Encodes a `query_traces` page, leaving out rows from its end when the page would pass
/// `budget` bytes, with `next_offset` to fetch them.
pub(crate) fn trace_list(mut list: TraceList, budget: usize) -> Result<String, String> {
    let text = to_json(&list)?;
    if text.len() <= budget {
        return Ok(text);
    }
    let asked = list.traces.len();
    // Rows are about to be left out, so more follow whatever the page held.
    list.has_more = true;
    let encode = |l: &TraceList| {
        let kept = l.traces.len();
        let next_offset = l.offset + kept;
        let omitted = asked - kept;
        let truncation_note = if kept == 0 {
            format!(
                "even one trace row is over the {budget}-byte result cap; read trace rows with sql (SELECT ... FROM traces ... OFFSET {next_offset}) or view_trace"
            )
        } else {
            format!(
                "only {kept} of the {asked} rows of this page fit in the {budget}-byte result cap; the other {omitted} were left out: call query_traces again with offset={next_offset} (and limit={kept} or less) to get them"
            )
        };
        to_json(&Noted {
            inner: l,
            extra: PageCut {
                truncated: true,
                omitted_traces: omitted,
                next_offset,
                truncation_note,
            },
        })
    };
    shrink_list(&mut list, |l| &mut l.traces, budget, encode)
}

/// Fields added to a search answer that holds fewer matches than were asked for.
#[derive(Serialize)]
struct SearchCut {
    truncated: bool,
    /// Matches asked for (within `max_matches` and the total) that are not in `matches`.
    omitted_matches: usize,
    truncation_note: String,
}

/// Encodes a `search_trace` / `search_span` answer. `requested` is the caller's
/// `max_matches`, which may be above what one search returns (`per_call`): the answer then
/// says how many of the asked-for matches are missing. Matches are left out from the end
/// when the answer would pass `budget` bytes.
pub(crate) fn search_result(
    mut result: SearchResult,
    requested: usize,
    offset: usize,
    per_call: usize,
    budget: usize,
) -> Result<String, String> {
    let total = usize::try_from(result.total_matches).unwrap_or(usize::MAX);
    let wanted = total.saturating_sub(offset).min(requested);
    let found = result.matches.len();
    let text = to_json(&result)?;
    if text.len() <= budget && found >= wanted {
        return Ok(text);
    }
    result.has_more = true;
    let limited = found < wanted && found >= per_call;
    let encode = |r: &SearchResult| {
        let kept = r.matches.len();
        // The next page starts right after the last match shown.
        let r = &SearchResult {
            next_offset: Some((offset + kept) as u64),
            ..r.clone()
        };
        let mut notes = Vec::new();
        if limited {
            notes.push(format!(
                "a search returns at most {per_call} matches per call"
            ));
        }
        if kept < found {
            notes.push(format!(
                "only {kept} of the {found} matches found fit in the {budget}-byte result cap"
            ));
        }
        let truncation_note = format!(
            "{}; {} of the matches asked for are not shown: page on with offset: {} (next_offset), lower context_buffer_chars, or use a narrower regex_pattern",
            notes.join(", and "),
            wanted - kept,
            offset + kept
        );
        to_json(&Noted {
            inner: r,
            extra: SearchCut {
                truncated: true,
                omitted_matches: wanted - kept,
                truncation_note,
            },
        })
    };
    shrink_list(&mut result, |r| &mut r.matches, budget, encode)
}

/// Fields added to an overview whose name lists were cut to fit.
#[derive(Serialize)]
struct OverviewCut {
    truncated: bool,
    truncation_note: String,
}

fn json_len<T: Serialize>(v: &T) -> usize {
    serde_json::to_string(v).map_or(0, |s| s.len())
}

/// Cuts `v` to the items that fit in `room` bytes, and by one item at least.
fn trim<I: Serialize>(v: &mut Vec<I>, room: usize) {
    let keep = items_that_fit(v, room).min(v.len().saturating_sub(1));
    v.truncate(keep);
}

/// Lengths of an overview's name lists: services, models, agents, projects, tools.
fn list_lens(o: &Overview) -> [usize; 5] {
    [
        o.services.len(),
        o.models.len(),
        o.agents.len(),
        o.projects.len(),
        o.tools.len(),
    ]
}

/// Encodes an overview. Its name lists (services, models, agents, projects, tools) grow
/// with the data; when the overview would pass `budget` bytes, the largest of them is cut
/// from its end (they are ranked, so the most frequent names stay), by at most half at a
/// time, until it fits.
pub(crate) fn overview(mut o: Overview, budget: usize) -> Result<String, String> {
    let full = list_lens(&o);
    let encode = |o: &Overview| {
        let now = list_lens(o);
        let names = ["services", "models", "agents", "projects", "tools"];
        let cut: Vec<String> = (0..names.len())
            .filter(|&i| now[i] < full[i])
            .map(|i| format!("{} (top {} of {})", names[i], now[i], full[i]))
            .collect();
        if cut.is_empty() {
            return to_json(o);
        }
        to_json(&Noted {
            inner: o,
            extra: OverviewCut {
                truncated: true,
                truncation_note: format!(
                    "lists cut to fit the {budget}-byte result cap: {}; count or list the rest with sql, or narrow the filters",
                    cut.join(", ")
                ),
            },
        })
    };
    loop {
        let text = encode(&o)?;
        if text.len() <= budget {
            return Ok(text);
        }
        let over = text.len() - budget;
        let sizes = [
            json_len(&o.services),
            json_len(&o.models),
            json_len(&o.agents),
            json_len(&o.projects),
            json_len(&o.tools),
        ];
        let Some((largest, &size)) = sizes.iter().enumerate().max_by_key(|(_, s)| **s) else {
            return Ok(text);
        };
        // An empty list is `[]`: nothing is left to cut, so the guard answers instead.
        if size <= 2 {
            return Ok(text);
        }
        // At most half of a list goes at a time, so that several long lists are cut in
        // turn, evenly, rather than the largest one emptied.
        let room = size.saturating_sub(over + 2).max(size / 2);
        match largest {
            0 => trim(&mut o.services, room),
            1 => trim(&mut o.models, room),
            2 => trim(&mut o.agents, room),
            3 => trim(&mut o.projects, room),
            _ => trim(&mut o.tools, room),
        }
    }
}

/// `text` when it fits in `budget` bytes; otherwise a short JSON answer saying how large
/// the result was and `hint` (what to ask for instead), so the model never gets JSON cut
/// in the middle.
pub(crate) fn guard(text: String, budget: usize, hint: &str) -> String {
    if text.len() <= budget {
        return text;
    }
    serde_json::json!({
        "truncated": true,
        "result_bytes": text.len(),
        "truncation_note": format!(
            "the result is {} bytes, over the {budget}-byte result cap, and was left out; {hint}",
            text.len()
        ),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use halo_query::{NameCount, SearchMatch, ToolStats, TraceRow};

    fn row(i: usize) -> TraceRow {
        TraceRow {
            trace_id: format!("trace-{i:04}"),
            start_time: "2026-04-23T05:32:00Z".into(),
            end_time: "2026-04-23T05:32:01Z".into(),
            duration_ms: 1000.0,
            span_count: 3,
            root_span_name: "root".into(),
            has_errors: false,
            error_span_count: 0,
            tool_error_span_count: 0,
            service_names: vec!["s".repeat(300)],
            model_names: vec![],
            agent_names: vec![],
            tools: vec![],
            total_input_tokens: 0,
            total_output_tokens: 0,
            total_tokens: 0,
            cost: None,
            project_id: None,
            session_id: None,
            user_id: None,
            outcome: None,
            raw_jsonl_bytes: 10,
            error_groups: vec![],
        }
    }

    fn page(offset: usize, rows: usize, total: u64) -> TraceList {
        TraceList {
            schema_version: 1,
            total,
            offset,
            limit: rows,
            has_more: ((offset + rows) as u64) < total,
            traces: (offset..offset + rows).map(row).collect(),
            scan: None,
        }
    }

    #[test]
    fn a_page_over_the_cap_keeps_whole_rows_and_says_where_to_go_on() {
        let text = trace_list(page(100, 500, 1000), 20_000).unwrap();
        assert!(text.len() <= 20_000, "{}", text.len());
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let kept = v["traces"].as_array().unwrap().len();
        assert!(kept > 10 && kept < 500, "{kept}");
        assert_eq!(v["truncated"], true);
        assert_eq!(v["has_more"], true);
        assert_eq!(v["omitted_traces"], 500 - kept);
        assert_eq!(v["next_offset"], 100 + kept);
        assert_eq!(
            v["traces"][kept - 1]["trace_id"],
            format!("trace-{:04}", 99 + kept)
        );
        assert!(v["truncation_note"]
            .as_str()
            .unwrap()
            .contains(&format!("offset={}", 100 + kept)));
        // As many rows as fit: the room left is less than one more row.
        let row_len = serde_json::to_string(&row(0)).unwrap().len();
        assert!(
            text.len() + row_len + 1 > 20_000,
            "{} + {row_len}",
            text.len()
        );
    }

    #[test]
    fn a_page_within_the_cap_is_unchanged() {
        let p = page(0, 3, 3);
        let text = trace_list(p.clone(), JSON_BUDGET).unwrap();
        assert_eq!(text, serde_json::to_string(&p).unwrap());
        assert!(!text.contains("truncated"));
    }

    fn search(n: usize, total: u64, context: usize) -> SearchResult {
        SearchResult {
            schema_version: 1,
            trace_id: "t".into(),
            pattern: "x".into(),
            total_matches: total,
            matching_span_count: 1,
            offset: 0,
            has_more: total > n as u64,
            next_offset: (total > n as u64).then_some(n as u64),
            matches: (0..n)
                .map(|i| SearchMatch {
                    span_id: format!("s{i}"),
                    span_name: "n".into(),
                    span_kind: "TOOL".into(),
                    status: "OK".into(),
                    matched: "x".into(),
                    context: "c".repeat(context),
                    offset: i,
                    context_offset: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn search_answers_over_the_cap_keep_whole_matches() {
        let text = search_result(search(200, 200, 4_000), 200, 0, 200, 50_000).unwrap();
        assert!(text.len() <= 50_000);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let kept = v["matches"].as_array().unwrap().len();
        assert!(kept > 5 && kept < 200, "{kept}");
        assert_eq!(v["has_more"], true);
        assert_eq!(v["truncated"], true);
        assert_eq!(v["omitted_matches"], 200 - kept);
        assert_eq!(
            v["next_offset"], kept,
            "the next page starts after the last shown"
        );
        let note = v["truncation_note"].as_str().unwrap();
        assert!(note.contains("context_buffer_chars"), "{note}");
        assert!(note.contains(&format!("offset: {kept}")), "{note}");
    }

    #[test]
    fn search_answers_say_when_max_matches_was_above_the_per_call_limit() {
        let text = search_result(search(200, 300, 10), 500, 0, 200, JSON_BUDGET).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["matches"].as_array().unwrap().len(), 200);
        assert_eq!(v["omitted_matches"], 100);
        assert!(v["truncation_note"]
            .as_str()
            .unwrap()
            .contains("at most 200 matches per call"));
        // Everything asked for is there: the answer is plain.
        let plain = search_result(search(20, 20, 10), 50, 0, 200, JSON_BUDGET).unwrap();
        assert!(!plain.contains("truncated"), "{plain}");
    }

    #[test]
    fn an_overview_with_huge_name_lists_cuts_the_largest_and_names_it() {
        let o = Overview {
            total_traces: 1,
            total_spans: 1,
            services: vec![NameCount {
                name: "svc".into(),
                trace_count: 1,
            }],
            projects: (0..3000)
                .map(|i| NameCount {
                    name: format!("project-{i:05}"),
                    trace_count: 1,
                })
                .collect(),
            tools: (0..3000)
                .map(|i| ToolStats {
                    name: format!("tool-{i:05}-{}", "t".repeat(40)),
                    calls: 1,
                    errors: 0,
                    error_rate: 0.0,
                    trace_count: 1,
                })
                .collect(),
            file_count: 1,
            ..Overview::default()
        };
        let text = overview(o, 60_000).unwrap();
        assert!(text.len() <= 60_000, "{}", text.len());
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["services"].as_array().unwrap().len(), 1);
        let tools = v["tools"].as_array().unwrap().len();
        assert!(tools > 100 && tools < 3000, "{tools}");
        let projects = v["projects"].as_array().unwrap().len();
        assert!(projects > 100 && projects < 3000, "{projects}");
        assert_eq!(
            v["tools"][0]["name"],
            format!("tool-00000-{}", "t".repeat(40))
        );
        let note = v["truncation_note"].as_str().unwrap();
        assert!(
            note.contains(&format!(
                "projects (top {projects} of 3000), tools (top {tools} of 3000)"
            )),
            "{note}"
        );
    }

    #[test]
    fn guard_replaces_an_oversized_answer_with_valid_json() {
        let big = format!("{{\"spans\":\"{}\"}}", "x".repeat(500));
        assert_eq!(guard(big.clone(), 1_000, "h"), big);
        let v: serde_json::Value = serde_json::from_str(&guard(big, 100, "page it")).unwrap();
        assert_eq!(v["truncated"], true);
        assert!(v["truncation_note"].as_str().unwrap().ends_with("page it"));
    }
}
