//! halo-index (in progress).
