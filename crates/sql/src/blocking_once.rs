//! A value made once by blocking work (reading span tables, mapping a source or inflating
//! a gzip copy), awaited by any number of queries.
//!
//! Table providers are polled on the query runtime's workers. Doing such work inline there
//! (or waiting for another thread to finish it, as `OnceLock::get_or_init` does) holds up
//! every other task of that runtime, and a query's time limit cannot cancel a task that
//! never yields. So the work runs on tokio's blocking pool and queries await it: the
//! workers stay free, and a query whose time limit passes stops waiting at once. The work
//! itself cannot be interrupted; it runs on, and the next query gets its result instead
//! of starting again.

use std::sync::Mutex;

use futures::future::{BoxFuture, FutureExt, Shared};

/// The work under way or done: one future, awaited by every query that needs the value.
type Making<T> = Shared<BoxFuture<'static, Result<T, String>>>;

/// A value made on first use by blocking work, without blocking whoever waits for it.
pub(crate) struct BlockingOnce<T> {
    making: Mutex<Option<Making<T>>>,
}

impl<T> std::fmt::Debug for BlockingOnce<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let started = self.making.lock().map(|m| m.is_some()).unwrap_or_default();
        f.debug_struct("BlockingOnce")
            .field("started", &started)
            .finish()
    }
}

impl<T: Clone + Send + Sync + 'static> BlockingOnce<T> {
    /// Nothing made yet.
    pub(crate) fn new() -> BlockingOnce<T> {
        BlockingOnce {
            making: Mutex::new(None),
        }
    }

    /// Already made.
    pub(crate) fn ready(value: T) -> BlockingOnce<T> {
        BlockingOnce {
            making: Mutex::new(Some(futures::future::ready(Ok(value)).boxed().shared())),
        }
    }

    /// The value, made by `make` on the blocking pool if no one has started it yet.
    ///
    /// A failure is not kept: the next call tries again, as a source file may be readable
    /// by then (the disk had no room for a gzip copy, say). Outside a tokio runtime,
    /// where no other task can be held up, `make` runs on the caller's thread.
    pub(crate) async fn get_or_make<F>(&self, make: F) -> Result<T, String>
    where
        F: FnOnce() -> Result<T, String> + Send + 'static,
    {
        let making = self.lock().get_or_insert_with(|| start(make)).clone();
        let made = making.clone().await;
        if made.is_err() {
            let mut slot = self.lock();
            // Only this attempt is forgotten: another may have started since.
            if slot.as_ref().is_some_and(|m| m.ptr_eq(&making)) {
                *slot = None;
            }
        }
        made
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Making<T>>> {
        // The lock is held only to read or replace the slot, never across the work, so a
        // poisoned one holds nothing half-done.
        self.making.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn start<T, F>(make: F) -> Making<T>
where
    T: Clone + Send + Sync + 'static,
    F: FnOnce() -> Result<T, String> + Send + 'static,
{
    // What is made is kept for the process's life: a query's memory watch leaves it out.
    let make = move || crate::memory_watch::keeping(make);
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            let task = runtime.spawn_blocking(make);
            async move {
                task.await
                    .unwrap_or_else(|e| Err(format!("reading the data stopped: {e}")))
            }
            .boxed()
            .shared()
        }
        Err(_) => futures::future::ready(make()).boxed().shared(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::Duration;

    use super::*;

    /// Long enough never to pass in a working test; it only turns a hang into a failure.
    const DEADLOCK_GUARD: Duration = Duration::from_secs(30);

    #[test]
    fn the_runtime_keeps_running_while_the_work_blocks_and_a_cancelled_wait_loses_nothing() {
        // One thread: if the work ran inline, or a waiter blocked, nothing else could run.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let once = Arc::new(BlockingOnce::<u32>::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let (release, released) = mpsc::channel::<()>();
        let released = Mutex::new(released);
        let work = {
            let runs = runs.clone();
            move || {
                runs.fetch_add(1, Ordering::SeqCst);
                released
                    .lock()
                    .unwrap()
                    .recv_timeout(DEADLOCK_GUARD)
                    .map(|()| 7)
                    .map_err(|_| "never released: the runtime was blocked".to_string())
            }
        };
        rt.block_on(async {
            // Two waiters, both given up on by their time limit while the work blocks.
            let first = tokio::time::timeout(Duration::from_millis(20), once.get_or_make(work));
            let second = tokio::time::timeout(
                Duration::from_millis(20),
                once.get_or_make(|| Ok::<u32, String>(0)),
            );
            let (first, second) = tokio::join!(first, second);
            assert!(first.is_err() && second.is_err(), "both waits time out");
            // Other tasks still run.
            assert!(tokio::spawn(async { true }).await.unwrap());
        });
        release.send(()).unwrap();
        let value = rt.block_on(once.get_or_make(|| Ok(0)));
        assert_eq!(
            value,
            Ok(7),
            "the cancelled waiters' work is what the next one gets"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the work ran once");
    }

    #[test]
    fn failures_are_tried_again_values_are_kept() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let once = BlockingOnce::<u32>::new();
        let failed = rt.block_on(once.get_or_make(|| Err("disk full".into())));
        assert_eq!(failed, Err("disk full".to_string()));
        assert_eq!(rt.block_on(once.get_or_make(|| Ok(1))), Ok(1));
        assert_eq!(rt.block_on(once.get_or_make(|| Ok(2))), Ok(1));
        // A panic in the work is an error, not a crash of the query.
        let once = BlockingOnce::<u32>::new();
        let crashed = rt.block_on(once.get_or_make(|| panic!("bad data")));
        assert!(crashed.unwrap_err().contains("stopped"));
        // Outside a runtime the caller's thread does the work.
        let once = BlockingOnce::<u32>::new();
        assert_eq!(
            futures::executor::block_on(once.get_or_make(|| Ok(3))),
            Ok(3)
        );
        let ready = BlockingOnce::ready(4);
        assert_eq!(
            futures::executor::block_on(ready.get_or_make(|| Ok(5))),
            Ok(4)
        );
    }
}
