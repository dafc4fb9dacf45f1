//! halo-provider (in progress).
