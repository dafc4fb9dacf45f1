//! Where every string of a line ends, settled for the whole line before it is walked.
//!
//! Strings in traces are escape-dense (JSON nested in JSON: a tool schema has an escaped
//! quote every few bytes) and many (about 70 in a 3 KB span). Finding each one's end with
//! its own vector probes cost over a hundred instructions per string. Here one pass over
//! the line, 64 bytes at a time, builds two bit masks per block: the quotes that are not
//! escaped, and the backslashes. The end of the string that starts at any offset is then
//! the next bit of the first mask, and whether it has escapes is a test on the second.
//!
//! The same pass checks every escape of the line. That is exact for JSON: a backslash is
//! only valid inside a string, where it must start a valid escape, so a line with any
//! invalid escape is not JSON and is declined as a whole (serde_json then names the error).
//! And a run of backslashes never spans a quote, so whether a quote is escaped depends only
//! on the text of the string it is in.

use std::cell::Cell;

/// Bits at even positions: a run of backslashes that starts on one escapes on its even
/// offsets.
const EVEN: u64 = 0x5555_5555_5555_5555;

/// Mask buffers above this many words are not kept for the next line (a 100 MB span
/// should not pin 3 MB per thread for the rest of the build).
const MAX_SPARE_WORDS: usize = 1 << 16;

thread_local! {
    /// The last line's buffer, reused: lines come one after another on each thread.
    static SPARE: Cell<Vec<u64>> = const { Cell::new(Vec::new()) };
}

/// The quote and backslash masks of one line.
#[derive(Debug)]
pub(crate) struct LineMasks {
    /// Two words per 64-byte block: the quotes that end strings (not escaped), then the
    /// backslashes. Bit `i` of block `k` stands for byte `64 * k + i`.
    words: Vec<u64>,
}

impl Drop for LineMasks {
    fn drop(&mut self) {
        if self.words.capacity() <= MAX_SPARE_WORDS {
            SPARE.set(std::mem::take(&mut self.words));
        }
    }
}

impl LineMasks {
    /// The masks of `bytes`, or `None` when one of its escapes is invalid (a backslash
    /// followed by anything but `"\/bfnrt` or `u` and four hex digits), which no JSON has.
    pub(crate) fn of(bytes: &[u8]) -> Option<LineMasks> {
        let mut words = SPARE.take();
        #[cfg(target_arch = "x86_64")]
        let settled = if std::is_x86_feature_detected!("avx512bw") {
            // SAFETY: the CPU has AVX-512BW, as just checked.
            unsafe { settle_line_avx512(bytes, &mut words) }
        } else if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, as just checked.
            unsafe { settle_line_avx2(bytes, &mut words) }
        } else {
            settle_line(bytes, &mut words, block_masks)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let settled = settle_line(bytes, &mut words, block_masks);
        if !settled {
            // The buffer is still good for the next line.
            SPARE.set(words);
            return None;
        }
        Some(LineMasks { words })
    }

    /// The closing quote of the string whose text starts at `from` (one past its opening
    /// quote), and whether the text has escapes; `None` when the line ends first.
    #[inline]
    pub(crate) fn string_end(&self, from: usize) -> Option<(usize, bool)> {
        let mut block = from / 64;
        let from_bit = !0u64 << (from % 64);
        let mut ends = self.words.get(2 * block)? & from_bit;
        let mut backslashes = self.words.get(2 * block + 1)? & from_bit;
        let mut escaped = false;
        loop {
            if ends != 0 {
                let bit = ends.trailing_zeros();
                let before_end = (1u64 << bit) - 1;
                let end = 64 * block + bit as usize;
                return Some((end, escaped || backslashes & before_end != 0));
            }
            escaped |= backslashes != 0;
            block += 1;
            ends = *self.words.get(2 * block)?;
            backslashes = self.words[2 * block + 1];
        }
    }
}

/// Fills `words` with the two words of every block of `bytes`, reading each block with
/// `masks`; `false` when an escape is invalid.
#[inline(always)]
fn settle_line(
    bytes: &[u8],
    words: &mut Vec<u64>,
    masks: impl Fn(&[u8; 64]) -> (u64, u64),
) -> bool {
    // Sized up front and written in place: a push per word would check the capacity.
    words.clear();
    words.resize(2 * bytes.len().div_ceil(64), 0);
    let mut out = words.chunks_exact_mut(2);
    // Whether the first byte of the next block is escaped by the last of this one.
    let mut carry = false;
    let (blocks, tail) = bytes.as_chunks::<64>();
    for ((k, block), pair) in blocks.iter().enumerate().zip(&mut out) {
        let (quotes, backslashes) = masks(block);
        match settle_block(bytes, 64 * k, quotes, backslashes, &mut carry) {
            Some(settled) => pair.copy_from_slice(&settled),
            None => return false,
        }
    }
    if let Some(pair) = out.next() {
        // The tail, padded with zeros: a zero byte is neither a quote nor a backslash,
        // and an escape of one is invalid, as an escape that runs past the line must be.
        let mut block = [0u8; 64];
        block[..tail.len()].copy_from_slice(tail);
        let (quotes, backslashes) = masks(&block);
        let at = bytes.len() - tail.len();
        match settle_block(bytes, at, quotes, backslashes, &mut carry) {
            Some(settled) => pair.copy_from_slice(&settled),
            None => return false,
        }
    }
    // A line that ends with an escaping backslash (its next byte is past the end).
    !carry
}

/// [`settle_line`] compiled for AVX2, which reads a block in two loads instead of four.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn settle_line_avx2(bytes: &[u8], words: &mut Vec<u64>) -> bool {
    settle_line(bytes, words, |block| block_masks_avx2(block))
}

/// [`settle_line`] compiled for AVX-512BW, which reads a block in one load and compares
/// straight into bit masks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512bw")]
fn settle_line_avx512(bytes: &[u8], words: &mut Vec<u64>) -> bool {
    settle_line(bytes, words, |block| block_masks_avx512(block))
}

/// The two words of the block at `at`: its quotes that are not escaped and its
/// backslashes; `None` when one of its escapes is invalid. `carry` says whether the
/// block's first byte is escaped, and is set for the next block.
#[inline(always)]
fn settle_block(
    bytes: &[u8],
    at: usize,
    quotes: u64,
    backslashes: u64,
    carry: &mut bool,
) -> Option<[u64; 2]> {
    if backslashes == 0 && !*carry {
        return Some([quotes, 0]);
    }
    let escaped = escaped_bytes(backslashes, carry);
    // Escaped quotes and backslashes are valid escapes; check the other escaped bytes.
    let mut others = escaped & !quotes & !backslashes;
    while others != 0 {
        let i = at + others.trailing_zeros() as usize;
        if !valid_escape_at(bytes, i) {
            return None;
        }
        others &= others - 1;
    }
    Some([quotes & !escaped, backslashes])
}

/// Bit `i` set where byte `i` of a block is escaped: it follows a backslash that starts
/// an escape. `carry` says whether byte 0 is escaped by the previous block, and is set to
/// whether the next block's byte 0 is escaped by this one.
///
/// In a run of backslashes the first starts an escape, the second is escaped, the third
/// starts one, and so on. A run that starts on an even bit has its starters on even bits,
/// one that starts on an odd bit on odd bits. Adding each run's first bit to the
/// backslash mask clears exactly that run's bits (the carry stops at the zero after it),
/// which tells the two kinds of runs apart in a few word operations.
#[inline(always)]
fn escaped_bytes(backslashes: u64, carry: &mut bool) -> u64 {
    let carried = u64::from(*carry);
    // An escaped backslash at byte 0 starts nothing.
    let live = backslashes & !carried;
    let run_starts = live & !(live << 1);
    let in_even_runs = live & !live.wrapping_add(run_starts & EVEN);
    let in_odd_runs = live & !in_even_runs;
    let starters = (in_even_runs & EVEN) | (in_odd_runs & !EVEN);
    *carry = starters >> 63 == 1;
    (starters << 1) | carried
}

/// Whether the byte at `i` (escaped, and neither a quote nor a backslash) completes a
/// valid escape: `/bfnrt`, or `u` and four hex digits. Bytes past the line are not.
fn valid_escape_at(bytes: &[u8], i: usize) -> bool {
    match bytes.get(i) {
        Some(b'/' | b'b' | b'f' | b'n' | b'r' | b't') => true,
        Some(b'u') => bytes
            .get(i + 1..i + 5)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)),
        _ => false,
    }
}

/// Bit `i` set where byte `i` of the block is a quote, and where it is a backslash.
#[cfg(target_arch = "x86_64")]
fn block_masks(block: &[u8; 64]) -> (u64, u64) {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    let mut quotes = 0u64;
    let mut backslashes = 0u64;
    for part in 0..4 {
        // SAFETY: SSE2 is part of the x86_64 baseline; the 16 bytes read lie inside the
        // 64-byte block, and `_mm_loadu_si128` needs no alignment.
        let (q, b) = unsafe {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * part).cast::<__m128i>());
            (
                _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8))) as u16,
                _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8))) as u16,
            )
        };
        quotes |= u64::from(q) << (16 * part);
        backslashes |= u64::from(b) << (16 * part);
    }
    (quotes, backslashes)
}

/// [`block_masks`] with AVX2: two 32-byte loads.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn block_masks_avx2(block: &[u8; 64]) -> (u64, u64) {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_set1_epi8,
    };
    let mut quotes = 0u64;
    let mut backslashes = 0u64;
    for half in 0..2 {
        // SAFETY: the 32 bytes read lie inside the 64-byte block, and
        // `_mm256_loadu_si256` needs no alignment.
        let v = unsafe { _mm256_loadu_si256(block.as_ptr().add(32 * half).cast::<__m256i>()) };
        let q = _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'"' as i8))) as u32;
        let b = _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'\\' as i8))) as u32;
        quotes |= u64::from(q) << (32 * half);
        backslashes |= u64::from(b) << (32 * half);
    }
    (quotes, backslashes)
}

/// [`block_masks`] with AVX-512BW: one 64-byte load, each compare a mask already.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512bw")]
fn block_masks_avx512(block: &[u8; 64]) -> (u64, u64) {
    use std::arch::x86_64::{_mm512_cmpeq_epi8_mask, _mm512_loadu_si512, _mm512_set1_epi8};
    // SAFETY: the 64 bytes read are the block, and `_mm512_loadu_si512` needs no
    // alignment.
    let v = unsafe { _mm512_loadu_si512(block.as_ptr().cast()) };
    (
        _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'"' as i8)),
        _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'\\' as i8)),
    )
}

/// Bit `i` set where byte `i` of the block is a quote, and where it is a backslash.
#[cfg(not(target_arch = "x86_64"))]
fn block_masks(block: &[u8; 64]) -> (u64, u64) {
    block.iter().enumerate().fold((0, 0), |(q, b), (i, &byte)| {
        (
            q | u64::from(byte == b'"') << i,
            b | u64::from(byte == b'\\') << i,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The escaped bytes of `bytes`, walked byte by byte: the definition the masks keep.
    fn escaped_by_walking(bytes: &[u8]) -> Vec<bool> {
        let mut out = vec![false; bytes.len() + 1];
        let mut escape_next = false;
        for (i, &b) in bytes.iter().enumerate() {
            if escape_next {
                out[i] = true;
                escape_next = false;
            } else if b == b'\\' {
                escape_next = true;
            }
        }
        out[bytes.len()] = escape_next;
        out
    }

    #[test]
    fn escaped_bytes_agree_with_the_byte_walk_on_random_backslash_runs() {
        let mut rng = crate::test_rng::XorShift(0x2545_f491_4f6c_dd1d);
        let mut next = move || rng.next();
        for _ in 0..200_000 {
            // Dense runs of backslashes (three bits in four), sparse ones, and everything
            // between, over two blocks so runs cross the edge.
            let density = next() % 4;
            let bytes: Vec<u8> = (0..128)
                .map(|_| match next() % 4 < density {
                    true => b'\\',
                    false => b'a',
                })
                .collect();
            let walked = escaped_by_walking(&bytes);
            let mut carry = false;
            for block in 0..2 {
                let mask = (0..64).fold(0u64, |m, i| {
                    m | u64::from(bytes[64 * block + i] == b'\\') << i
                });
                let escaped = escaped_bytes(mask, &mut carry);
                for i in 0..64 {
                    assert_eq!(
                        escaped >> i & 1 == 1,
                        walked[64 * block + i],
                        "byte {} of {:?}",
                        64 * block + i,
                        String::from_utf8_lossy(&bytes)
                    );
                }
            }
            assert_eq!(carry, walked[128]);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn both_vector_widths_read_blocks_alike() {
        if !std::is_x86_feature_detected!("avx2") {
            eprintln!("skipped: this CPU has no AVX2");
            return;
        }
        let mut rng = crate::test_rng::XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let mut block = [0u8; 64];
            for byte in &mut block {
                *byte = [b'"', b'\\', b'a', 0x80, 0xff, b' '][(rng.next() % 6) as usize];
            }
            // SAFETY: the CPU has AVX2, as checked above.
            assert_eq!(unsafe { block_masks_avx2(&block) }, block_masks(&block));
            if std::is_x86_feature_detected!("avx512bw") {
                // SAFETY: the CPU has AVX-512BW, as just checked.
                assert_eq!(unsafe { block_masks_avx512(&block) }, block_masks(&block));
            }
        }
    }

    #[test]
    fn invalid_escapes_anywhere_decline_the_line() {
        for len in [1, 10, 63, 64, 65, 127, 128, 200] {
            for at in 0..len {
                let mut bytes = vec![b'a'; len];
                bytes[at] = b'\\';
                // A backslash then `a` (or the end of the line) is no escape.
                assert!(LineMasks::of(&bytes).is_none(), "{len} {at}");
                if at + 1 < len {
                    bytes[at + 1] = b'n';
                    assert!(LineMasks::of(&bytes).is_some(), "{len} {at}");
                }
            }
        }
        assert!(LineMasks::of(br#""\u00e9""#).is_some());
        assert!(LineMasks::of(br#""\u00g9""#).is_none());
        assert!(LineMasks::of(br#""\u00e"#).is_none());
    }
}
