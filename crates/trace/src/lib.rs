//! halo-trace (in progress).
