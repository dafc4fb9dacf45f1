//! Finding a trace's position by its id without keeping a copy of every id.
//!
//! A map from id strings to positions held a second copy of each id: tens of thousands
//! of small allocations, made while a fresh build's other cores sat idle. This table
//! holds each id's hash and position only, and compares ids against the traces
//! themselves.

use std::hash::BuildHasher;

use crate::rollup::TraceSummary;

/// Positions of traces in a list, by trace id.
#[derive(Debug, Default)]
pub(crate) struct TraceIds {
    table: hashbrown::HashTable<(u64, u32)>,
}

fn hash(id: &str) -> u64 {
    rustc_hash::FxBuildHasher.hash_one(id)
}

impl TraceIds {
    /// The table of `traces`, whose ids are distinct.
    pub(crate) fn of(traces: &[TraceSummary]) -> TraceIds {
        let mut ids = TraceIds::default();
        ids.reserve(traces.len());
        for (i, t) in traces.iter().enumerate() {
            ids.insert_new(&t.trace_id, i as u32);
        }
        ids
    }

    /// Makes room for `more` ids.
    pub(crate) fn reserve(&mut self, more: usize) {
        self.table.reserve(more, |&(h, _)| h);
    }

    /// The position of the trace `id` in `traces`, the list this table indexes.
    pub(crate) fn find(&self, id: &str, traces: &[TraceSummary]) -> Option<u32> {
        let h = hash(id);
        self.table
            .find(h, |&(eh, i)| eh == h && traces[i as usize].trace_id == id)
            .map(|&(_, i)| i)
    }

    /// Notes that the trace `id`, not yet in the table, is at `position`.
    pub(crate) fn insert_new(&mut self, id: &str, position: u32) {
        let h = hash(id);
        self.table.insert_unique(h, (h, position), |&(h, _)| h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_trace_and_nothing_else() {
        let traces: Vec<TraceSummary> = (0..1000)
            .map(|i| crate::rollup::TraceAcc::new(&format!("{i:032x}"), 0).finish())
            .collect();
        let mut ids = TraceIds::default();
        ids.reserve(10);
        for (i, t) in traces.iter().enumerate() {
            ids.insert_new(&t.trace_id, i as u32);
        }
        for (i, t) in traces.iter().enumerate() {
            assert_eq!(ids.find(&t.trace_id, &traces), Some(i as u32));
        }
        assert_eq!(ids.find("not a trace", &traces), None);
        let all_at_once = TraceIds::of(&traces);
        assert_eq!(all_at_once.find(&traces[999].trace_id, &traces), Some(999));
        assert_eq!(ids.find(&format!("{:032x}", 1000), &traces), None);
    }
}
