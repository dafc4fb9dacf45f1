//! halo-ingest (in progress).
