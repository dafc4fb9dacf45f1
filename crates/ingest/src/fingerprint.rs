use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// How much of each end of a file the fingerprint hashes.
const BLOCK: u64 = 64 * 1024;

/// What identifies a file's content cheaply: its inode, size, modification time and hashes
/// of its first and last 64 KiB. Size and mtime alone miss a rewrite of the same length
/// within the filesystem's time granularity; the hashes catch that. A file put in place by a
/// rename (an atomic replace, a sync tool) is a new inode, whatever its times and ends say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    /// File size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch (0 where unknown).
    pub mtime_ns: i128,
    /// xxh3 of the first block.
    pub head_hash: u64,
    /// xxh3 of the last block.
    pub tail_hash: u64,
    /// Inode number (0 where the system has none, and in an index written before it was
    /// kept; see [`Fingerprint::same_as`]).
    #[serde(default)]
    pub inode: u64,
}

impl Fingerprint {
    /// Reads the fingerprint of a file.
    pub fn of(path: &Path) -> std::io::Result<Fingerprint> {
        let mut file = std::fs::File::open(path)?;
        let meta = file.metadata()?;
        let size = meta.len();
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        let head_hash = hash_range(&mut file, 0, BLOCK.min(size))?;
        let tail_start = size.saturating_sub(BLOCK);
        let tail_hash = hash_range(&mut file, tail_start, size - tail_start)?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Ok(Fingerprint {
            size,
            mtime_ns,
            head_hash,
            tail_hash,
            inode,
        })
    }

    /// Whether `now` is this fingerprint taken again of an unchanged file. An inode of 0
    /// (an index written before the inode was kept, or a system without them) is not
    /// known, and not compared: such an index is not rebuilt for that alone.
    pub fn same_as(&self, now: &Fingerprint) -> bool {
        self.size == now.size
            && self.mtime_ns == now.mtime_ns
            && self.head_hash == now.head_hash
            && self.tail_hash == now.tail_hash
            && self.same_inode(now)
    }

    /// Whether `now` names the same inode, as far as this fingerprint knows it.
    pub fn same_inode(&self, now: &Fingerprint) -> bool {
        self.inode == 0 || self.inode == now.inode
    }

    /// Whether the file at `path` still starts with the bytes this fingerprint was taken of:
    /// it is the same file, or the same file grown by appends. A grown file is compared on
    /// the hashes of both ends of the old extent; not on its modification time, which an
    /// append changes.
    pub fn still_starts(&self, path: &Path) -> std::io::Result<bool> {
        let now = Fingerprint::of(path)?;
        if self.same_as(&now) {
            return Ok(true);
        }
        if now.size <= self.size || !self.same_inode(&now) {
            return Ok(false);
        }
        let mut file = std::fs::File::open(path)?;
        let head = hash_range(&mut file, 0, BLOCK.min(self.size))?;
        let tail_start = self.size.saturating_sub(BLOCK);
        let tail = hash_range(&mut file, tail_start, self.size - tail_start)?;
        Ok(head == self.head_hash && tail == self.tail_hash)
    }

    /// The hash of bytes `[start, start+len)` of a file; used to check that an indexed prefix
    /// is unchanged when the file has grown.
    pub fn hash_of_range(path: &Path, start: u64, len: u64) -> std::io::Result<u64> {
        let mut file = std::fs::File::open(path)?;
        hash_range(&mut file, start, len)
    }
}

fn hash_range(file: &mut std::fs::File, start: u64, len: u64) -> std::io::Result<u64> {
    file.seek(SeekFrom::Start(start))?;
    let mut buf = vec![0u8; len as usize];
    file.read_exact(&mut buf)?;
    Ok(xxhash_rust::xxh3::xxh3_64(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grown_file_still_starts_with_what_was_fingerprinted_and_a_rewritten_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        for size in [10usize, 200_000] {
            let old: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            std::fs::write(&path, &old).unwrap();
            let fp = Fingerprint::of(&path).unwrap();
            assert!(fp.still_starts(&path).unwrap());
            let mut grown = old.clone();
            grown.extend_from_slice(b"appended");
            std::fs::write(&path, &grown).unwrap();
            assert!(fp.still_starts(&path).unwrap(), "size {size}");
            let mut rewritten = grown.clone();
            rewritten[size - 1] ^= 1;
            std::fs::write(&path, &rewritten).unwrap();
            assert!(!fp.still_starts(&path).unwrap(), "size {size}");
            std::fs::write(&path, &old[..size - 1]).unwrap();
            assert!(!fp.still_starts(&path).unwrap(), "size {size}");
        }
    }
}
