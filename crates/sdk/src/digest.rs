//! Computes the result digest (rule v1, see `xiebao_types::digest`) of an output directory.

use std::path::{Path, PathBuf};

use alloy_primitives::B256;
use xiebao_types::digest::{OutputEntry, output_digest_v1};

/// An output directory breaks the digest rule or cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    /// Reading failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A symbolic link or special file.
    #[error(
        "{path} is not a regular file or directory (links and special files are not allowed in a task's output)"
    )]
    NotRegular {
        /// The path.
        path: PathBuf,
    },
    /// A name that is not UTF-8.
    #[error("{path} has a name that is not UTF-8")]
    NotUtf8 {
        /// The path.
        path: PathBuf,
    },
}

/// The entries of the directory `root`, recursively.
///
/// # Errors
/// [`DigestError`].
pub fn output_entries(root: &Path) -> Result<Vec<OutputEntry>, DigestError> {
    let mut entries = Vec::new();
    walk(root, "", &mut entries)?;
    Ok(entries)
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<OutputEntry>) -> Result<(), DigestError> {
    let read = |path: &Path, source| DigestError::Read { path: path.to_owned(), source };
    let mut children = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| read(dir, e))? {
        let entry = entry.map_err(|e| read(dir, e))?;
        let path = entry.path();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| DigestError::NotUtf8 { path: path.clone() })?;
        let relative = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let kind = entry.file_type().map_err(|e| read(&path, e))?;
        if kind.is_dir() {
            walk(&path, &relative, out)?;
        } else if kind.is_file() {
            let sha256 = sha256_file(&path).map_err(|e| read(&path, e))?;
            out.push(OutputEntry::File { path: relative, sha256 });
        } else {
            return Err(DigestError::NotRegular { path });
        }
        children += 1;
    }
    if children == 0 && !prefix.is_empty() {
        out.push(OutputEntry::EmptyDir { path: prefix.to_owned() });
    }
    Ok(())
}

/// Files are hashed through a buffer of this size: memory does not grow with their size.
const CHUNK_BYTES: usize = 256 * 1024;

/// The sha256 of the file at `path`, read in chunks.
///
/// # Errors
/// Reading fails.
pub fn sha256_file(path: &Path) -> std::io::Result<[u8; 32]> {
    use sha2::Digest as _;
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; CHUNK_BYTES];
    loop {
        let read = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buffer[..read]);
    }
    Ok(hasher.finalize().into())
}

/// The version-1 result digest of the directory `root`.
///
/// # Errors
/// [`DigestError`].
pub fn digest_dir(root: &Path) -> Result<B256, DigestError> {
    Ok(output_digest_v1(&output_entries(root)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_hashed_in_chunks_to_the_same_digest() {
        let dir = tempfile::tempdir().unwrap();
        // Several chunks and a partial one.
        let content: Vec<u8> = (0..(3 * CHUNK_BYTES + 17)).map(|i| (i % 253) as u8).collect();
        std::fs::write(dir.path().join("big.bin"), &content).unwrap();
        std::fs::write(dir.path().join("empty.bin"), b"").unwrap();
        let expected = output_digest_v1(&[
            OutputEntry::file("big.bin", &content),
            OutputEntry::file("empty.bin", b""),
        ]);
        assert_eq!(digest_dir(dir.path()).unwrap(), expected);
    }

    /// A 512 MiB sparse file (no disk blocks): hashing it must not hold it in memory. Before
    /// files were hashed in chunks, this read all 512 MiB into one buffer.
    #[test]
    fn a_large_file_is_digested_without_being_held_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(dir.path().join("sparse.bin")).unwrap();
        file.set_len(512 << 20).unwrap();
        drop(file);
        let before = peak_rss_kib();
        digest_dir(dir.path()).unwrap();
        let grown_kib = peak_rss_kib().saturating_sub(before);
        assert!(grown_kib < 128 * 1024, "peak memory grew by {grown_kib} KiB digesting 512 MiB");
    }

    /// This process's peak resident memory (`VmHWM`), KiB.
    fn peak_rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}
