//! halo-testkit (in progress).
