//! Where a scan that reads spans back from their source files gets the files' bytes.
//!
//! The index keeps byte ranges, not text: the `attributes` column of `spans` and the
//! `messages` table parse spans again from the same memory maps the index reads.

use std::sync::Arc;

use halo_index::{Dataset, IndexError};

use crate::blocking_once::BlockingOnce;

/// The mapped bytes of one source file.
///
/// A trait object because the mapping's type belongs to halo-ingest, which this crate does
/// not depend on; [`hold`] erases it.
pub(crate) trait SourceBytes: Send + Sync {
    /// The file's bytes, as the index read them.
    fn bytes(&self) -> &[u8];
}

struct Held<T>(Arc<T>, fn(&T) -> &[u8]);

impl<T: Send + Sync> SourceBytes for Held<T> {
    fn bytes(&self) -> &[u8] {
        (self.1)(&self.0)
    }
}

fn hold<T: Send + Sync + 'static>(value: Arc<T>, bytes: fn(&T) -> &[u8]) -> Arc<dyn SourceBytes> {
    Arc::new(Held(value, bytes))
}

/// Where each segment's source bytes come from.
pub(crate) enum Sources {
    /// No data (the schema-only state).
    None,
    /// Mapped when the engine was opened over a borrowed dataset; the engine outlives the
    /// borrow, so it keeps the mappings (which that opening makes anyway, for `messages`).
    Mapped(Vec<Result<Arc<dyn SourceBytes>, String>>),
    /// Mapped by the shared dataset the first time a scan needs them, one segment at a
    /// time, on the blocking pool: for a gzip source that first time makes the whole
    /// inflated copy.
    Shared(Arc<Dataset>, Vec<BlockingOnce<Arc<dyn SourceBytes>>>),
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sources::None => f.write_str("Sources::None"),
            Sources::Mapped(files) => write!(f, "Sources::Mapped({} segments)", files.len()),
            Sources::Shared(..) => f.write_str("Sources::Shared"),
        }
    }
}

impl Sources {
    /// Every segment's source, mapped now.
    pub(crate) fn mapped(ds: &Dataset) -> Sources {
        Sources::Mapped(
            (0..ds.segment_count())
                .map(|s| {
                    ds.segment_data(s)
                        .map(|m| hold(m, |m| m.bytes()))
                        .map_err(source_error)
                })
                .collect(),
        )
    }

    /// Every segment's source, mapped when first asked for.
    pub(crate) fn shared(ds: Arc<Dataset>) -> Sources {
        let segments = (0..ds.segment_count())
            .map(|_| BlockingOnce::new())
            .collect();
        Sources::Shared(ds, segments)
    }

    /// Segment `s`'s source bytes, or why they cannot be read.
    pub(crate) async fn segment(&self, s: u32) -> Result<Arc<dyn SourceBytes>, String> {
        let no_segment = || format!("no segment {s}");
        match self {
            Sources::None => Err("no dataset".into()),
            Sources::Mapped(files) => files
                .get(s as usize)
                .cloned()
                .unwrap_or_else(|| Err(no_segment())),
            Sources::Shared(ds, segments) => {
                let once = segments.get(s as usize).ok_or_else(no_segment)?;
                let ds = ds.clone();
                once.get_or_make(move || {
                    ds.segment_data(s)
                        .map(|m| hold(m, |m| m.bytes()))
                        .map_err(source_error)
                })
                .await
            }
        }
    }
}

impl Sources {
    /// Segment `s`'s source bytes for a scan of `what` (named in the error): a file replaced
    /// or gone is the data's failure (exit code 2), not the query's.
    pub(crate) async fn for_scan(
        &self,
        s: u32,
        what: &str,
    ) -> datafusion::error::Result<Arc<dyn SourceBytes>> {
        self.segment(s).await.map_err(|e| {
            crate::error::TableUnreadable::into_datafusion(format!(
                "{what} is read from the source file, which cannot be read: {e}"
            ))
        })
    }
}

/// The index calls any unreadable file a corrupt index; here it is the source that is
/// missing or unreadable, so only the path and the cause are shown.
fn source_error(e: IndexError) -> String {
    match e {
        IndexError::Corrupt { path, message } => format!("{}: {message}", path.display()),
        other => other.to_string(),
    }
}
