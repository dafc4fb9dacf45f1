//! A seeded pseudo-random sequence for the crate's randomized tests: the same cases on
//! every run, so a failure reproduces.

/// Marsaglia's xorshift64; the seed must not be zero.
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    /// The next number of the sequence.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
