//! halo-rlm (in progress).
