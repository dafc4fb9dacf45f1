//! Reading Arrow IPC files without copying them: the file is memory-mapped and the record
//! batches point into the map, so loading an index costs page-table work, not memcpy.

use std::path::Path;
use std::ptr::NonNull;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::{read_footer_length, FileDecoder};

use crate::IndexError;

/// Reads every record batch of an IPC file through a memory map.
pub(crate) fn read_batches(path: &Path) -> Result<Vec<RecordBatch>, IndexError> {
    let file = std::fs::File::open(path).map_err(|e| IndexError::Io {
        path: path.to_path_buf(),
        error: e,
    })?;
    // SAFETY: index files are written once under a fresh name and never modified in place;
    // replacing an index renames the directory away before deleting it, which leaves this
    // map valid.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| IndexError::Io {
        path: path.to_path_buf(),
        error: e,
    })?;
    // Arrow's reader checks much of a damaged file, not all of it: it panics on some
    // damaged lengths and types (a flipped byte in a trace table was enough).
    crate::caught_panic::catching(|| decode(path, map))
        .unwrap_or_else(|panic| Err(corrupt(path, &panic)))
}

/// The record batches of the IPC file `path`, mapped as `map`.
fn decode(path: &Path, map: memmap2::Mmap) -> Result<Vec<RecordBatch>, IndexError> {
    let corrupt = |message: String| corrupt(path, &message);
    let len = map.len();
    if len < 16 {
        return Err(corrupt(format!(
            "{len} bytes is too short for an Arrow file"
        )));
    }
    let map = Arc::new(map);
    // One buffer per block, each its own "allocation" over the shared map, rather than
    // slices of one buffer over the whole file: an Arrow buffer reports the size of its
    // allocation, and a query engine that counts what it holds (DataFusion sorting a
    // column) would count the whole file once per batch and give up at its memory limit.
    let region = |start: usize, size: usize| -> Result<Buffer, IndexError> {
        let ptr = NonNull::new(map.as_ptr().wrapping_add(start) as *mut u8)
            .ok_or_else(|| corrupt("empty map".into()))?;
        let owner: Arc<dyn arrow_buffer::alloc::Allocation> = map.clone();
        // SAFETY: `start + size <= len` (checked by the callers), so `ptr` points to
        // `size` readable bytes owned by `map`, which the buffer keeps alive for as long
        // as any batch refers to it.
        Ok(unsafe { Buffer::from_custom_allocation(ptr, size, owner) })
    };
    let buffer = region(0, len)?;
    let trailer: [u8; 10] = buffer[len - 10..].try_into().expect("ten bytes");
    let footer_len = read_footer_length(trailer).map_err(|e| corrupt(e.to_string()))?;
    if footer_len + 10 > len {
        return Err(corrupt("footer is longer than the file".into()));
    }
    let footer = arrow_ipc::root_as_footer(&buffer[len - 10 - footer_len..len - 10])
        .map_err(|e| corrupt(e.to_string()))?;
    let schema = footer
        .schema()
        .ok_or_else(|| corrupt("no schema in footer".into()))?;
    let mut decoder = FileDecoder::new(
        Arc::new(arrow_ipc::convert::fb_to_schema(schema)),
        footer.version(),
    );
    let block_data = |block: &arrow_ipc::Block| -> Result<Buffer, IndexError> {
        let start =
            usize::try_from(block.offset()).map_err(|_| corrupt("negative block offset".into()))?;
        let size = i64::from(block.metaDataLength())
            .checked_add(block.bodyLength())
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| corrupt("a block's length is out of range".into()))?;
        if start.checked_add(size).is_none_or(|end| end > len) {
            return Err(corrupt("a block lies past the end of the file".into()));
        }
        region(start, size)
    };
    for block in footer.dictionaries().iter().flatten() {
        decoder
            .read_dictionary(block, &block_data(block)?)
            .map_err(|e| corrupt(e.to_string()))?;
    }
    let mut batches = Vec::new();
    for block in footer.recordBatches().iter().flatten() {
        let batch = decoder
            .read_record_batch(block, &block_data(block)?)
            .map_err(|e| corrupt(e.to_string()))?
            .ok_or_else(|| corrupt("a record batch block holds no batch".into()))?;
        batches.push(batch);
    }
    Ok(batches)
}

/// The error for the damaged IPC file `path`. Arrow's messages span several lines (one
/// per nesting level, with tabs): one line is what an error message is.
fn corrupt(path: &Path, message: &str) -> IndexError {
    IndexError::Corrupt {
        path: path.to_path_buf(),
        message: halo_trace::one_line(message, usize::MAX),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    /// Each batch reports the memory of its own block, not of the whole file: a query
    /// engine that adds up what it holds (DataFusion sorting spans) would otherwise count
    /// the file once per batch and stop at its memory limit long before memory is short.
    #[test]
    fn each_batch_reports_the_size_of_its_block_not_the_file() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("s", DataType::Utf8, false),
        ]));
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.arrow");
        let file = std::fs::File::create(&path).expect("create");
        let mut writer =
            arrow_ipc::writer::FileWriter::try_new(file, &schema).expect("an IPC writer");
        for b in 0..20i64 {
            let n = Int64Array::from_iter_values((0..1_000).map(|i| b * 1_000 + i));
            let s = StringArray::from_iter_values((0..1_000).map(|i| format!("span {i} of {b}")));
            let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(n), Arc::new(s)])
                .expect("a batch");
            writer.write(&batch).expect("write");
        }
        writer.finish().expect("finish");
        let file_len = std::fs::metadata(&path).expect("metadata").len() as usize;
        let batches = super::read_batches(&path).expect("read back");
        assert_eq!(batches.len(), 20);
        let reported: usize = batches
            .iter()
            .map(|b| {
                b.columns()
                    .iter()
                    .map(|c| c.get_buffer_memory_size())
                    .max()
                    .unwrap_or(0)
            })
            .sum();
        assert!(
            reported < 2 * file_len,
            "batches report {reported} bytes for a file of {file_len}"
        );
    }

    /// A footer whose block length would overflow when added up is a corrupt index, not a
    /// panic (or, in a release build, a wrapped length).
    #[test]
    fn a_block_length_out_of_range_is_corrupt() {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.arrow");
        let file = std::fs::File::create(&path).expect("create");
        let mut writer =
            arrow_ipc::writer::FileWriter::try_new(file, &schema).expect("an IPC writer");
        let n = Int64Array::from_iter_values(0..100);
        writer
            .write(&RecordBatch::try_new(schema.clone(), vec![Arc::new(n)]).expect("a batch"))
            .expect("write");
        writer.finish().expect("finish");
        let mut bytes = std::fs::read(&path).expect("read");
        // The footer's block: offset (i64), metadata length (i32, padded), body length (i64).
        let len = bytes.len();
        let footer_len =
            arrow_ipc::reader::read_footer_length(bytes[len - 10..].try_into().expect("10"))
                .expect("a footer");
        let footer =
            arrow_ipc::root_as_footer(&bytes[len - 10 - footer_len..len - 10]).expect("a footer");
        let block = footer.recordBatches().expect("blocks").get(0);
        let mut pattern = Vec::new();
        pattern.extend_from_slice(&block.offset().to_le_bytes());
        pattern.extend_from_slice(&block.metaDataLength().to_le_bytes());
        pattern.extend_from_slice(&[0; 4]);
        pattern.extend_from_slice(&block.bodyLength().to_le_bytes());
        let at = bytes
            .windows(pattern.len())
            .rposition(|w| w == pattern.as_slice())
            .expect("the block in the footer");
        bytes[at + 16..at + 24].copy_from_slice(&i64::MAX.to_le_bytes());
        std::fs::write(&path, &bytes).expect("write");
        match super::read_batches(&path) {
            Err(crate::IndexError::Corrupt { message, .. }) => {
                assert!(message.contains("out of range"), "{message}")
            }
            other => panic!("expected a corrupt index, got {other:?}"),
        }
    }
}
