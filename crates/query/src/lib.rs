//! halo-query (in progress).
