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
    let corrupt = |message: String| IndexError::Corrupt {
        path: path.to_path_buf(),
        message,
    };
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
    let len = map.len();
    if len < 16 {
        return Err(corrupt(format!(
            "{len} bytes is too short for an Arrow file"
        )));
    }
    let ptr = NonNull::new(map.as_ptr() as *mut u8).ok_or_else(|| corrupt("empty map".into()))?;
    // SAFETY: `ptr` points to `len` readable bytes owned by `map`, which the buffer keeps
    // alive for as long as any batch refers to it.
    let buffer = unsafe { Buffer::from_custom_allocation(ptr, len, Arc::new(map)) };
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
        let size = usize::try_from(i64::from(block.metaDataLength()) + block.bodyLength())
            .map_err(|_| corrupt("negative block length".into()))?;
        if start.checked_add(size).is_none_or(|end| end > len) {
            return Err(corrupt("a block lies past the end of the file".into()));
        }
        Ok(buffer.slice_with_length(start, size))
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
