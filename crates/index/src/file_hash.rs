//! Checksums of an index's Arrow tables: taken as they are written, checked by
//! `halo index` (which reads them whole), so damage that keeps a file's size (a bad disk, a
//! stray write) is found and the index rebuilt rather than trusted.
//!
//! Ordinary opens check sizes only: hashing a few hundred megabytes of span table at every
//! query would cost more than the whole query.

use std::path::Path;

/// The hash of the whole file at `path`, as `halo_ingest::HashingWriter` computed it when
/// writing.
pub(crate) fn hash_file(path: &Path) -> std::io::Result<u64> {
    let file = std::fs::File::open(path)?;
    // SAFETY: index files are written once under a fresh name and never modified in
    // place; a concurrent swap renames the directory, which leaves this map valid.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    Ok(xxhash_rust::xxh3::xxh3_64(&map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use halo_ingest::HashingWriter;
    use std::io::Write;

    #[test]
    fn the_written_hash_is_the_files_hash() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        let mut w = HashingWriter::new(std::fs::File::create(&path).unwrap());
        for i in 0..1000u32 {
            w.write_all(&i.to_le_bytes()).unwrap();
        }
        w.flush().unwrap();
        assert_eq!(hash_file(&path).unwrap(), w.digest());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[1234] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert_ne!(hash_file(&path).unwrap(), w.digest(), "one bit, same size");
    }
}
