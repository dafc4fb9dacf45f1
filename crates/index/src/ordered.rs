//! An ordered parallel map with bounded look-ahead, the shape of an index build: chunks
//! are parsed on every core, and their results are absorbed strictly in file order (line
//! numbers and row ids depend on it) without ever holding more than a few chunks' worth.
//!
//! Rayon's `par_iter` would split the chunk list in halves, so one core would parse far
//! ahead of what can be absorbed; fixed waves fix that but leave cores idle at each
//! wave's end. Here workers take the next chunk from a shared counter, as long as it lies
//! within `window` chunks of the next one to absorb.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};

struct State<R> {
    /// Items taken by workers so far.
    taken: usize,
    /// How many results the sink has taken.
    absorbed: usize,
    /// The number of items, once the source has run dry.
    total: Option<usize>,
    /// Finished results waiting for their turn.
    ready: BTreeMap<usize, R>,
    /// Set when the sink failed: workers stop taking items.
    stop: bool,
}

/// Maps `work` over `items` on `workers` threads and passes each result to `sink` in
/// item order, on the calling thread. At most `window` items are taken beyond the last one
/// the sink has seen. The first error of `sink` stops the work and is returned.
///
/// `items` is pulled by the workers themselves, one at a time under a lock, so a source
/// that does work of its own (inflating a gzip stream) runs on whichever worker needs the
/// next item, interleaved with the parsing of earlier ones.
pub(crate) fn ordered_map<T: Send, R: Send, E>(
    items: impl Iterator<Item = T> + Send,
    workers: usize,
    window: usize,
    work: impl Fn(T) -> R + Sync,
    mut sink: impl FnMut(usize, R) -> Result<(), E>,
) -> Result<(), E> {
    let window = window.max(1);
    let state = Mutex::new(State {
        taken: 0,
        absorbed: 0,
        total: None,
        ready: BTreeMap::new(),
        stop: false,
    });
    // The source keeps its own lock, so waiting for the next item never blocks the sink.
    let source = Mutex::new((items, 0usize));
    let room = Condvar::new();
    let done = Condvar::new();
    let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            scope.spawn(|| loop {
                {
                    let mut s = lock();
                    while !s.stop && s.total.is_none() && s.taken >= s.absorbed + window {
                        s = room.wait(s).unwrap_or_else(|e| e.into_inner());
                    }
                    if s.stop || s.total.is_some() {
                        return;
                    }
                    s.taken += 1;
                }
                let (i, item) = {
                    let mut src = source.lock().unwrap_or_else(|e| e.into_inner());
                    let i = src.1;
                    match src.0.next() {
                        Some(item) => {
                            src.1 += 1;
                            (i, item)
                        }
                        None => {
                            lock().total = Some(i);
                            room.notify_all();
                            done.notify_all();
                            return;
                        }
                    }
                };
                let result = work(item);
                lock().ready.insert(i, result);
                done.notify_all();
            });
        }
        let mut i = 0;
        loop {
            let result = {
                let mut s = lock();
                loop {
                    if let Some(r) = s.ready.remove(&i) {
                        break Some(r);
                    }
                    if s.total.is_some_and(|t| i >= t) {
                        break None;
                    }
                    s = done.wait(s).unwrap_or_else(|e| e.into_inner());
                }
            };
            let Some(result) = result else {
                return Ok(());
            };
            let outcome = sink(i, result);
            i += 1;
            let mut s = lock();
            s.absorbed = i;
            s.stop = outcome.is_err();
            drop(s);
            room.notify_all();
            outcome?;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn results_arrive_in_order_whatever_the_timing() {
        let items: Vec<u64> = (0..200).collect();
        let mut seen = Vec::new();
        ordered_map(
            items.iter(),
            4,
            3,
            |&i| {
                // Uneven work, so later items often finish first.
                std::thread::sleep(std::time::Duration::from_micros((i * 7919) % 500));
                i * 2
            },
            |i, r| {
                seen.push((i, r));
                Ok::<(), ()>(())
            },
        )
        .unwrap();
        assert_eq!(
            seen,
            (0..200).map(|i| (i as usize, i * 2)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn never_runs_more_than_the_window_ahead() {
        let items: Vec<usize> = (0..100).collect();
        let absorbed = AtomicUsize::new(0);
        let worst = AtomicUsize::new(0);
        ordered_map(
            items.iter(),
            3,
            5,
            |&i| {
                let ahead = i - absorbed.load(Ordering::SeqCst);
                worst.fetch_max(ahead, Ordering::SeqCst);
            },
            |i, ()| {
                absorbed.store(i + 1, Ordering::SeqCst);
                Ok::<(), ()>(())
            },
        )
        .unwrap();
        assert!(worst.load(Ordering::SeqCst) < 5, "{worst:?}");
    }

    #[test]
    fn a_failing_sink_stops_the_work_and_returns_its_error() {
        let items: Vec<usize> = (0..1000).collect();
        let worked = AtomicUsize::new(0);
        let err = ordered_map(
            items.iter(),
            2,
            4,
            |_| {
                worked.fetch_add(1, Ordering::SeqCst);
            },
            |i, ()| if i == 10 { Err(i) } else { Ok(()) },
        );
        assert_eq!(err, Err(10));
        assert!(worked.load(Ordering::SeqCst) < 20, "{worked:?}");
    }

    #[test]
    fn no_items_and_one_worker_are_fine() {
        let none: [u8; 0] = [];
        ordered_map(none.iter(), 4, 4, |_| (), |_, ()| Ok::<(), ()>(())).unwrap();
        let mut sum = 0;
        ordered_map(
            [1, 2, 3].into_iter(),
            1,
            1,
            |x| x,
            |_, x| {
                sum += x;
                Ok::<(), ()>(())
            },
        )
        .unwrap();
        assert_eq!(sum, 6);
    }
}
