//! Splitting input into lines, in the same pass that clears each line for the scanner.
//!
//! Every byte of an index build's input goes through here first, so the one pass does all
//! the per-byte work a line needs before parsing: it finds the line's end, notes whether
//! the line has control bytes (which the JSON scanner must not meet), and notes whether
//! it has bytes above 0x7f. A line without such bytes is ASCII, hence UTF-8, and needs no
//! second pass to be checked; exporters that write JSON with `\u` escapes (Python's
//! default) produce nothing else.

use std::str::Utf8Error;

/// One line of input, as [`next_line`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    /// Where the line ends: the index of its `\n`, or the end of the input. The next line
    /// starts one byte later.
    pub end: usize,
    /// The line (a `\r` before the `\n` included) as text, or why it is not UTF-8.
    pub text: Result<&'a str, Utf8Error>,
    /// The line has no control bytes (a `\r` right before the `\n` excepted), so it can be
    /// handed to [`crate::parse_line_checked`] as such.
    pub control_free: bool,
}

/// The line of `bytes` that starts at `from` (which must be at most `bytes.len()`).
pub fn next_line(bytes: &[u8], from: usize) -> Line<'_> {
    let found = first_control_byte(bytes, from);
    let (end, control_free, ascii) = match found.at {
        None => (bytes.len(), true, found.ascii_before),
        Some(at) if bytes[at] == b'\n' => (at, true, found.ascii_before),
        Some(at) if bytes[at] == b'\r' && bytes.get(at + 1) == Some(&b'\n') => {
            (at + 1, true, found.ascii_before)
        }
        // A control byte inside the line: the rest of it was not looked at.
        Some(at) => {
            let end = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |i| at + i);
            (end, false, false)
        }
    };
    let raw = &bytes[from..end];
    let text = if ascii {
        // SAFETY: `ascii` is true only when every byte of `raw` was seen below 0x80 (the
        // bytes before the first control byte, and that byte with the `\n` after it, are
        // all of `raw` in those arms), and ASCII text is valid UTF-8.
        Ok(unsafe { std::str::from_utf8_unchecked(raw) })
    } else {
        std::str::from_utf8(raw)
    };
    Line {
        end,
        text,
        control_free,
    }
}

/// What the search for a line's first control byte saw.
#[derive(Debug, PartialEq)]
struct Found {
    /// The first byte below 0x20 at or after the start, if any.
    at: Option<usize>,
    /// Every byte from the start up to `at` (or the end) is below 0x80.
    ascii_before: bool,
}

/// The first byte below 0x20 at or after `from`, noting on the way whether any byte
/// before it is above 0x7f.
///
/// Lines are kilobytes long and their only control byte is usually the final `\n`, so the
/// loop tests 64 bytes per step (one AVX-512 compare, or two AVX2 ones folded into one
/// mask, or four SSE2 ones, by what the CPU has) and looks closer only at the block that
/// has a hit. Bytes above 0x7f are the ones whose sign bit is set, which one OR per block
/// collects for free.
#[cfg(target_arch = "x86_64")]
fn first_control_byte(bytes: &[u8], from: usize) -> Found {
    let plain_blocks = if std::is_x86_feature_detected!("avx512bw") {
        // SAFETY: the CPU has AVX-512BW, as just checked.
        Some(unsafe { plain_blocks_avx512(bytes, from) })
    } else if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, as just checked.
        Some(unsafe { plain_blocks_avx2(bytes, from) })
    } else {
        None
    };
    if let Some((at, high_before)) = plain_blocks {
        let rest = first_control_byte_sse2(bytes, at);
        return Found {
            at: rest.at,
            ascii_before: !high_before && rest.ascii_before,
        };
    }
    first_control_byte_sse2(bytes, from)
}

/// The 64-byte steps of [`first_control_byte`] with AVX2 (two loads a step instead of
/// four): where the first block with a control byte starts (or where fewer than 64
/// bytes are left), and whether a byte above 0x7f came before it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn plain_blocks_avx2(bytes: &[u8], from: usize) -> (usize, bool) {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_max_epu8, _mm256_movemask_epi8,
        _mm256_or_si256, _mm256_set1_epi8, _mm256_setzero_si256,
    };
    let limit = _mm256_set1_epi8(0x1f);
    // max(b, 0x1f) == 0x1f exactly when b <= 0x1f (unsigned).
    let low = |block: __m256i| _mm256_cmpeq_epi8(_mm256_max_epu8(block, limit), limit);
    let mut high = _mm256_setzero_si256();
    let mut at = from;
    while at + 64 <= bytes.len() {
        // SAFETY: the loop condition keeps both 32-byte loads inside `bytes`, and
        // `_mm256_loadu_si256` needs no alignment.
        let (a, b) = unsafe {
            (
                _mm256_loadu_si256(bytes.as_ptr().add(at).cast::<__m256i>()),
                _mm256_loadu_si256(bytes.as_ptr().add(at + 32).cast::<__m256i>()),
            )
        };
        if _mm256_movemask_epi8(_mm256_or_si256(low(a), low(b))) != 0 {
            break;
        }
        high = _mm256_or_si256(high, _mm256_or_si256(a, b));
        at += 64;
    }
    (at, _mm256_movemask_epi8(high) != 0)
}

/// [`plain_blocks_avx2`] with AVX-512BW: one load and one compare into a mask per 64
/// bytes, two blocks a step.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512bw")]
fn plain_blocks_avx512(bytes: &[u8], from: usize) -> (usize, bool) {
    use std::arch::x86_64::{
        __m512i, _mm512_cmple_epu8_mask, _mm512_loadu_si512, _mm512_movepi8_mask, _mm512_or_si512,
        _mm512_set1_epi8, _mm512_setzero_si512,
    };
    let limit = _mm512_set1_epi8(0x1f);
    // SAFETY (both loads): callers keep the 64 bytes read inside `bytes`, and
    // `_mm512_loadu_si512` needs no alignment.
    let load = |at: usize| unsafe { _mm512_loadu_si512(bytes.as_ptr().add(at).cast::<__m512i>()) };
    let mut high = _mm512_setzero_si512();
    let mut at = from;
    while at + 128 <= bytes.len() {
        let (a, b) = (load(at), load(at + 64));
        if _mm512_cmple_epu8_mask(a, limit) | _mm512_cmple_epu8_mask(b, limit) != 0 {
            break;
        }
        high = _mm512_or_si512(high, _mm512_or_si512(a, b));
        at += 128;
    }
    while at + 64 <= bytes.len() {
        let a = load(at);
        if _mm512_cmple_epu8_mask(a, limit) != 0 {
            break;
        }
        high = _mm512_or_si512(high, a);
        at += 64;
    }
    (at, _mm512_movepi8_mask(high) != 0)
}

/// [`first_control_byte`] with SSE2 only (part of the x86_64 baseline).
#[cfg(target_arch = "x86_64")]
fn first_control_byte_sse2(bytes: &[u8], from: usize) -> Found {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8, _mm_setzero_si128,
    };
    let mut at = from;
    // SAFETY: SSE2 is part of the x86_64 baseline; every load reads 16 bytes that the
    // loop conditions keep inside `bytes`, with no alignment requirement.
    unsafe {
        let limit = _mm_set1_epi8(0x1f);
        let load = |offset: usize| _mm_loadu_si128(bytes.as_ptr().add(offset).cast::<__m128i>());
        // max(b, 0x1f) == 0x1f exactly when b <= 0x1f (unsigned).
        let low = |block: __m128i| _mm_cmpeq_epi8(_mm_max_epu8(block, limit), limit);
        let mut high = _mm_setzero_si128();
        while at + 64 <= bytes.len() {
            let (a, b, c, d) = (load(at), load(at + 16), load(at + 32), load(at + 48));
            let any = _mm_or_si128(_mm_or_si128(low(a), low(b)), _mm_or_si128(low(c), low(d)));
            if _mm_movemask_epi8(any) != 0 {
                break;
            }
            high = _mm_or_si128(high, _mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d)));
            at += 64;
        }
        while at + 16 <= bytes.len() {
            let block = load(at);
            let mask = _mm_movemask_epi8(low(block)) as u32;
            if mask != 0 {
                let before = (1u32 << mask.trailing_zeros()) - 1;
                let high_before = (_mm_movemask_epi8(block) as u32) & before;
                return Found {
                    at: Some(at + mask.trailing_zeros() as usize),
                    ascii_before: _mm_movemask_epi8(high) == 0 && high_before == 0,
                };
            }
            high = _mm_or_si128(high, block);
            at += 16;
        }
        let ascii_so_far = _mm_movemask_epi8(high) == 0;
        let tail = first_control_byte_bytewise(bytes, at);
        Found {
            at: tail.at,
            ascii_before: ascii_so_far && tail.ascii_before,
        }
    }
}

/// [`first_control_byte`] one byte at a time: the portable version, and the tail of the
/// vectorized one.
fn first_control_byte_bytewise(bytes: &[u8], from: usize) -> Found {
    let at = bytes[from..]
        .iter()
        .position(|&b| b < 0x20)
        .map(|i| from + i);
    let before = &bytes[from..at.unwrap_or(bytes.len())];
    Found {
        at,
        ascii_before: before.is_ascii(),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn first_control_byte(bytes: &[u8], from: usize) -> Found {
    first_control_byte_bytewise(bytes, from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What [`next_line`] must answer, computed the plain way.
    fn expected(bytes: &[u8], from: usize) -> Line<'_> {
        let end = memchr::memchr(b'\n', &bytes[from..]).map_or(bytes.len(), |i| from + i);
        let raw = &bytes[from..end];
        let body = raw.strip_suffix(b"\r").unwrap_or(raw);
        let crlf_end = raw.len() > body.len() && end < bytes.len();
        let control_free = !body.iter().any(|&b| b < 0x20)
            && (crlf_end || raw.len() == body.len() || raw.last() != Some(&b'\r'));
        Line {
            end,
            text: std::str::from_utf8(raw),
            control_free,
        }
    }

    /// Every line of `bytes`, split by [`next_line`] and checked against [`expected`].
    fn check_all(bytes: &[u8]) {
        let mut from = 0;
        while from < bytes.len() {
            let got = next_line(bytes, from);
            assert_eq!(got, expected(bytes, from), "line at {from} of {bytes:?}");
            from = got.end + 1;
        }
    }

    #[test]
    fn splits_lines_and_clears_them_for_the_scanner() {
        let text = b"{\"a\":1}\n{\"b\":\"\x01\"}\r\n{\"c\":2}\r\n{\"d\":3}";
        let first = next_line(text, 0);
        assert_eq!((first.end, first.control_free), (7, true));
        assert_eq!(first.text, Ok("{\"a\":1}"));
        let second = next_line(text, 8);
        assert!(!second.control_free, "a control byte inside the line");
        let third = next_line(text, second.end + 1);
        assert!(third.control_free, "a \\r before the \\n is allowed");
        assert_eq!(third.text, Ok("{\"c\":2}\r"));
        let last = next_line(text, third.end + 1);
        assert_eq!((last.end, last.control_free), (text.len(), true));
        check_all(text);
    }

    #[test]
    fn a_byte_above_0x7f_anywhere_is_checked_as_utf8() {
        // A line end at every offset the 64-byte loop, the 16-byte loop and the tail can
        // meet it, and before it, at every offset, a lone continuation byte (invalid) or a
        // two-byte character (valid); with nothing after the line, a few bytes, or enough
        // for the vector loads to reach past the line end.
        for end in 0..140usize {
            for at in 0..end {
                for (insert, valid) in [(&b"\x80"[..], false), (&b"\xc3\xa9"[..], true)] {
                    if at + insert.len() > end {
                        continue;
                    }
                    let mut line = vec![b'x'; end];
                    line[at..at + insert.len()].copy_from_slice(insert);
                    for (next, after) in [("", 0), ("\n", 0), ("\r\n", 3), ("\n", 80)] {
                        let mut bytes = line.clone();
                        bytes.extend_from_slice(next.as_bytes());
                        bytes.extend(std::iter::repeat_n(b'z', after));
                        let got = next_line(&bytes, 0);
                        assert_eq!(got.text.is_ok(), valid, "end {end} at {at} {next:?}");
                        check_all(&bytes);
                    }
                }
            }
        }
    }

    #[test]
    fn a_control_byte_inside_the_line_leaves_the_rest_to_the_utf8_check() {
        for at in [0usize, 15, 16, 63, 64, 70] {
            for bad in [at + 1, at + 20, at + 90] {
                let mut bytes = vec![b'x'; 200];
                bytes[at] = 0x01;
                bytes[bad] = 0x80;
                bytes[150] = b'\n';
                let got = next_line(&bytes, 0);
                assert!(!got.control_free);
                assert_eq!(
                    got.text.is_ok(),
                    bad > 150,
                    "control at {at}, 0x80 at {bad}"
                );
                check_all(&bytes);
            }
        }
    }

    #[test]
    fn a_high_byte_after_the_line_end_is_not_this_lines() {
        // The block holding the `\n` also holds the next line's bytes.
        for at in 0..80 {
            let mut bytes = vec![b'a'; at];
            bytes.push(b'\n');
            bytes.extend_from_slice("é".repeat(40).as_bytes());
            let first = next_line(&bytes, 0);
            assert_eq!(first.end, at);
            assert!(first.text.is_ok() && first.control_free, "at {at}");
            check_all(&bytes);
        }
    }

    #[test]
    fn control_bytes_and_line_ends_at_every_offset() {
        for len in [40usize, 70, 130] {
            for at in 0..len {
                let mut line = vec![b'a'; len];
                line[at] = 0x01;
                line.push(b'\n');
                let got = next_line(&line, 0);
                assert_eq!((got.end, got.control_free), (len, false), "at {at}");
                let mut line = vec![b'a'; len];
                line[at] = b'\n';
                let got = next_line(&line, 0);
                assert_eq!((got.end, got.control_free), (at, true), "at {at}");
                check_all(&line);
            }
        }
    }

    /// Every vector path finds what the byte-by-byte search finds, from every start, with
    /// control bytes and high bytes scattered over several 64-byte blocks.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn every_vector_path_agrees_with_the_bytewise_search() {
        let mut rng = crate::test_rng::XorShift(0x6a09_e667_f3bc_c909);
        for _ in 0..300 {
            let len = (rng.next() % 300) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| match rng.next() % 200 {
                    0 => b'\n',
                    1 => 0x01,
                    2 => 0xc3,
                    _ => b'a',
                })
                .collect();
            for from in 0..=len {
                let expected = first_control_byte_bytewise(&bytes, from);
                assert_eq!(
                    first_control_byte_sse2(&bytes, from),
                    expected,
                    "{bytes:?} {from}"
                );
                assert_eq!(
                    first_control_byte(&bytes, from),
                    expected,
                    "{bytes:?} {from}"
                );
                if std::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2, as just checked.
                    let (at, high) = unsafe { plain_blocks_avx2(&bytes, from) };
                    let rest = first_control_byte_sse2(&bytes, at);
                    assert_eq!(rest.at, expected.at, "{bytes:?} {from}");
                    assert_eq!(!high && rest.ascii_before, expected.ascii_before);
                }
            }
        }
    }

    #[test]
    fn starts_anywhere_and_handles_empty_input() {
        assert_eq!(next_line(b"", 0), expected(b"", 0));
        let bytes = b"abc\n\n\ndef";
        assert_eq!(next_line(bytes, 3).end, 3);
        assert_eq!(next_line(bytes, 4).text, Ok(""));
        assert_eq!(next_line(bytes, bytes.len()).end, bytes.len());
        check_all(bytes);
    }
}
