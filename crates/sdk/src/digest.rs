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
            let content = std::fs::read(&path).map_err(|e| read(&path, e))?;
            out.push(OutputEntry::file(relative, &content));
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

/// The version-1 result digest of the directory `root`.
///
/// # Errors
/// [`DigestError`].
pub fn digest_dir(root: &Path) -> Result<B256, DigestError> {
    Ok(output_digest_v1(&output_entries(root)?))
}
