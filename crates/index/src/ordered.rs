//! An ordered parallel map with bounded look-ahead, the shape of an index build: chunks
//! are parsed on every core, and their results are absorbed strictly in file order (line
//! numbers and row ids depend on it) without ever holding more than a few chunks' worth.
//!
//! Rayon's `par_iter` would split the chunk list in halves, so one core would parse far
//! ahead of what can be absorbed; fixed waves fix that but leave cores idle at each
//! wave's end. Here workers take the next chunk from a shared counter, as long as it lies
//! within `window` chunks of the next one to absorb, and whichever worker finishes the
//! chunk next in line absorbs it.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};

struct State<R, E> {
    /// Items taken by workers so far.
    taken: usize,
    /// How many results the sink has taken.
    absorbed: usize,
    /// The number of items, once the source has run dry.
    total: Option<usize>,
    /// Finished results waiting for their turn.
    ready: BTreeMap<usize, R>,
    /// Whether a worker is running the sink; checked and changed only under this lock, so
    /// a result is never left waiting with nobody to absorb it.
    absorbing: bool,
    /// The sink's first error: workers stop taking items.
    failed: Option<E>,
    /// Set when a worker panicked: the others stop instead of waiting for its result, so
    /// the panic reaches the caller rather than hanging the build.
    panicked: bool,
}

/// Tells the other workers to stop when the worker holding it unwinds.
struct StopOnPanic<'s, R, E> {
    state: &'s Mutex<State<R, E>>,
    room: &'s Condvar,
}

impl<R, E> Drop for StopOnPanic<'_, R, E> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .panicked = true;
            self.room.notify_all();
        }
    }
}

/// Maps `work` over `items` on `workers` of rayon's threads and passes each result to
/// `sink` in item order. At most `window` items are taken beyond the last one the sink has
/// seen. The first error of `sink` stops the work and is returned.
///
/// `work` and `sink` must not use rayon themselves: a thread waiting inside a parallel
/// iterator may start another worker of this map, which could wait for the item held
/// by the worker beneath it on the same thread.
///
/// `items` is pulled by the workers themselves, one at a time under a lock, so a source
/// that does work of its own (inflating a gzip stream) runs on whichever worker needs the
/// next item, interleaved with the parsing of earlier ones. The sink runs on the worker
/// that finished the result next in line (one worker at a time): a separate thread for it
/// put three threads on two cores and woke the sink twice per chunk, and the result is
/// still in the cache of the core that made it.
pub(crate) fn ordered_map<T: Send, R: Send, E: Send>(
    items: impl Iterator<Item = T> + Send,
    workers: usize,
    window: usize,
    work: impl Fn(T) -> R + Sync,
    sink: impl FnMut(usize, R) -> Result<(), E> + Send,
) -> Result<(), E> {
    let window = window.max(1);
    let state = Mutex::new(State {
        taken: 0,
        absorbed: 0,
        total: None,
        ready: BTreeMap::new(),
        absorbing: false,
        failed: None,
        panicked: false,
    });
    // The source keeps its own lock, so waiting for the next item never blocks the sink.
    let source = Mutex::new((items, 0usize));
    // Locked only by the worker that set `absorbing`, so never contended.
    let sink = Mutex::new(sink);
    let room = Condvar::new();
    let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
    let worker = || {
        let _stop_on_panic = StopOnPanic {
            state: &state,
            room: &room,
        };
        loop {
            {
                let mut s = lock();
                let stopped =
                    |s: &State<R, E>| s.failed.is_some() || s.total.is_some() || s.panicked;
                while !stopped(&s) && s.taken >= s.absorbed + window {
                    s = room.wait(s).unwrap_or_else(|e| e.into_inner());
                }
                if stopped(&s) {
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
                        return;
                    }
                }
            };
            let result = work(item);
            let mut s = lock();
            s.ready.insert(i, result);
            if s.absorbing {
                // The absorbing worker looks for this result before it stops.
                continue;
            }
            s.absorbing = true;
            let mut sink = sink.lock().unwrap_or_else(|e| e.into_inner());
            while s.failed.is_none() {
                let next = s.absorbed;
                let Some(result) = s.ready.remove(&next) else {
                    break;
                };
                drop(s);
                let outcome = (*sink)(next, result);
                s = lock();
                s.absorbed = next + 1;
                if let Err(e) = outcome {
                    s.failed = Some(e);
                    s.ready.clear();
                }
                room.notify_all();
            }
            drop(sink);
            s.absorbing = false;
        }
    };
    // On rayon's threads, started once per process: a thread spawned here could wait
    // milliseconds on the spawning core before the scheduler moved it to an idle one, while
    // the caller inflated and parsed alone. The caller, outside the pool, sleeps until all
    // are done.
    rayon::scope(|scope| {
        for _ in 1..workers.max(1) {
            scope.spawn(|_| worker());
        }
        worker();
    });
    match state.into_inner().unwrap_or_else(|e| e.into_inner()).failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
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
    fn no_result_is_left_unabsorbed_when_workers_finish_together() {
        // Trivial work and a small window make workers finish at nearly the same moment,
        // over and over: a result inserted just as the absorbing worker stops must still
        // be absorbed, or the window never opens again and the map hangs.
        for workers in [2, 3, 8] {
            let mut next = 0usize;
            ordered_map(
                0..20_000usize,
                workers,
                2,
                |i| i,
                |i, r| {
                    assert_eq!((i, r), (next, next));
                    next += 1;
                    Ok::<(), ()>(())
                },
            )
            .unwrap();
            assert_eq!(next, 20_000);
        }
    }

    #[test]
    fn a_panicking_worker_stops_the_others_and_the_panic_reaches_the_caller() {
        for panic_at in [0, 5, 99] {
            let outcome = std::panic::catch_unwind(|| {
                ordered_map(
                    0..100usize,
                    2,
                    2,
                    |i| assert_ne!(i, panic_at, "planted"),
                    |_, ()| Ok::<(), ()>(()),
                )
            });
            assert!(outcome.is_err(), "the panic at {panic_at} was swallowed");
        }
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
