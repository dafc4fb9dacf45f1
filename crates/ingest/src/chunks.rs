use std::ops::Range;

/// A run of whole lines, for one worker to parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineChunk {
    /// Byte range within the file; starts at a line start and ends after a newline (or at
    /// the end of the indexed range).
    pub bytes: Range<usize>,
}

/// The end of the last complete line of `data`: just past its final newline.
///
/// A last line without a newline is complete only when `accept_unterminated` says so (the
/// caller checks whether it parses, so a file being appended to is not indexed mid-line).
pub fn complete_end(data: &[u8], accept_unterminated: impl FnOnce(&[u8]) -> bool) -> usize {
    match memchr::memrchr(b'\n', data) {
        Some(i) if i + 1 == data.len() => data.len(),
        Some(i) => {
            if accept_unterminated(&data[i + 1..]) {
                data.len()
            } else {
                i + 1
            }
        }
        None if data.is_empty() => 0,
        None => {
            if accept_unterminated(data) {
                data.len()
            } else {
                0
            }
        }
    }
}

/// Splits `data[range]` into chunks of about `target` bytes that end on line boundaries.
pub fn split_lines(data: &[u8], range: Range<usize>, target: usize) -> Vec<LineChunk> {
    let mut chunks = Vec::new();
    let mut start = range.start;
    while start < range.end {
        let mut end = (start + target.max(1)).min(range.end);
        if end < range.end {
            end = match memchr::memchr(b'\n', &data[end..range.end]) {
                Some(i) => end + i + 1,
                None => range.end,
            };
        }
        chunks.push(LineChunk { bytes: start..end });
        start = end;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_end_on_newlines_and_cover_everything() {
        let data = b"aaa\nbb\ncccc\nd\n";
        let chunks = split_lines(data, 0..data.len(), 3);
        assert_eq!(chunks.first().unwrap().bytes.start, 0);
        assert_eq!(chunks.last().unwrap().bytes.end, data.len());
        for w in chunks.windows(2) {
            assert_eq!(w[0].bytes.end, w[1].bytes.start);
            assert_eq!(data[w[0].bytes.end - 1], b'\n');
        }
    }

    #[test]
    fn unterminated_tail_is_complete_only_when_accepted() {
        assert_eq!(complete_end(b"a\nb", |_| false), 2);
        assert_eq!(complete_end(b"a\nb", |_| true), 3);
        assert_eq!(complete_end(b"a\n", |_| false), 2);
        assert_eq!(complete_end(b"", |_| true), 0);
    }
}
