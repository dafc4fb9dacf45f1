//! Finding the next of two bytes, cheaply when it is near.
//!
//! Inside nested JSON strings an escape often comes within a few bytes of the last one.
//! Each `memchr2` call pays for a dispatch and a vector setup before it reads anything,
//! more than such a short run costs; one 16-byte probe in place answers those, and
//! `memchr2` takes the long runs, where it is fastest.

/// The index of the first `a` or `b` in `bytes`.
#[inline]
pub(crate) fn find2(bytes: &[u8], a: u8, b: u8) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if let Some(block) = bytes.first_chunk::<16>() {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of x86_64; the load reads the 16 bytes of `block`.
        let hits = unsafe {
            let v = _mm_loadu_si128(block.as_ptr().cast());
            let found = _mm_or_si128(
                _mm_cmpeq_epi8(v, _mm_set1_epi8(a as i8)),
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8)),
            );
            _mm_movemask_epi8(found) as u32
        };
        if hits != 0 {
            return Some(hits.trailing_zeros() as usize);
        }
        return memchr::memchr2(a, b, &bytes[16..]).map(|n| n + 16);
    }
    memchr::memchr2(a, b, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_of_either_byte_at_every_distance() {
        for len in 0..80 {
            for at in 0..=len {
                for (first, second) in [(b'\\', b'"'), (b'"', b'\\')] {
                    // High bytes and near misses around the targets must not count.
                    let mut bytes: Vec<u8> =
                        (0..len).map(|i| [b'x', 0xDD, b'[', b']'][i % 4]).collect();
                    if at < len {
                        bytes[at] = first;
                        if at + 2 < len {
                            bytes[at + 2] = second;
                        }
                    }
                    let expected = (at < len).then_some(at);
                    assert_eq!(find2(&bytes, b'\\', b'"'), expected, "{len} {at}");
                }
            }
        }
    }
}
