//! The result digest rule, version 1: what workers agree on for a task's output.
//!
//! - A task with callback data: `digest = keccak256(callback data)` (PoCo's rule, which
//!   finalize checks against `resultsCallback`).
//! - Otherwise the output directory, as a list of entries sorted by their relative path
//!   (UTF-8, `/`-separated, bytewise order): each regular file is
//!   `0x01 ‖ u32be(len(path)) ‖ path ‖ sha256(content)`, each empty directory
//!   `0x02 ‖ u32be(len(path)) ‖ path`, and
//!   `digest = keccak256("XIEBAO_RESULT_DIGEST_V1" ‖ u64be(entry count) ‖ entries)`.
//!   Symbolic links, special files and non-UTF-8 names are not allowed in an output.
//!
//! Unlike PoCo's rule (sha256 of a single file, or keccak over the sha256 of direct children
//! only), every file at every depth counts, names included, and the rule is versioned. The
//! specification with test vectors is in `docs/result-digest.md`.

use alloy_primitives::{B256, Keccak256, keccak256};
use sha2::{Digest as _, Sha256};

/// Domain prefix of version 1; changing it (or the rule) makes a new version.
pub const RESULT_DIGEST_V1_DOMAIN: &[u8] = b"XIEBAO_RESULT_DIGEST_V1";

/// One entry of an output directory.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OutputEntry {
    /// A regular file: its relative path and the sha256 of its content.
    File {
        /// `/`-separated relative path.
        path: String,
        /// sha256 of the content.
        sha256: [u8; 32],
    },
    /// An empty directory: its relative path.
    EmptyDir {
        /// `/`-separated relative path.
        path: String,
    },
}

impl OutputEntry {
    /// A file entry from its content.
    pub fn file(path: impl Into<String>, content: &[u8]) -> Self {
        Self::File { path: path.into(), sha256: Sha256::digest(content).into() }
    }

    fn path(&self) -> &str {
        match self {
            Self::File { path, .. } | Self::EmptyDir { path } => path,
        }
    }
}

/// The version-1 digest of an output directory's entries (sorted here, so callers need not).
///
/// # Panics
/// If a path is longer than 4 GiB (impossible on real file systems).
pub fn output_digest_v1(entries: &[OutputEntry]) -> B256 {
    let mut sorted: Vec<&OutputEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path().as_bytes().cmp(b.path().as_bytes()));
    let mut hasher = Keccak256::new();
    hasher.update(RESULT_DIGEST_V1_DOMAIN);
    hasher.update((sorted.len() as u64).to_be_bytes());
    for entry in sorted {
        let path = entry.path().as_bytes();
        let len = u32::try_from(path.len()).expect("path shorter than 4 GiB");
        match entry {
            OutputEntry::File { sha256, .. } => {
                hasher.update([1u8]);
                hasher.update(len.to_be_bytes());
                hasher.update(path);
                hasher.update(sha256);
            }
            OutputEntry::EmptyDir { .. } => {
                hasher.update([2u8]);
                hasher.update(len.to_be_bytes());
                hasher.update(path);
            }
        }
    }
    hasher.finalize()
}

/// The digest of a task with callback data: `keccak256(data)`.
pub fn callback_digest(data: &[u8]) -> B256 {
    keccak256(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors of `docs/result-digest.md`; a change here is a new version of the rule.
    #[test]
    fn documented_vectors() {
        let check = |entries: &[OutputEntry], expected: &str| {
            assert_eq!(output_digest_v1(entries).to_string(), expected, "{entries:?}");
        };
        check(&[], "0x62afa0b9d87f0850bbec7656fd2454d8ad21e17b297e3418d1ed891b7b4b6b41");
        check(
            &[OutputEntry::file("result.txt", b"hello\n")],
            "0x03ec1f1ba2b537de73110819afe391782b32605490bfb602d82451152c39bd52",
        );
        check(
            &[
                OutputEntry::file("dir/sub/zero.bin", b""),
                OutputEntry::file("a.txt", b"hello"),
                OutputEntry::EmptyDir { path: "empty".into() },
                OutputEntry::file("dir/b.txt", b"world"),
            ],
            "0x67d228524f1a29a1da13406cafd99bb8643f69839bcecf42c22b22b2ab806a43",
        );
        assert_eq!(
            callback_digest(b"").to_string(),
            "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
    }

    #[test]
    fn order_of_listing_does_not_matter_but_names_and_contents_do() {
        let a = OutputEntry::file("a.txt", b"hello");
        let b = OutputEntry::file("dir/b.txt", b"world");
        let one = output_digest_v1(&[a.clone(), b.clone()]);
        assert_eq!(one, output_digest_v1(&[b.clone(), a.clone()]));
        assert_ne!(one, output_digest_v1(&[a.clone(), OutputEntry::file("dir/c.txt", b"world")]));
        assert_ne!(one, output_digest_v1(&[a.clone(), OutputEntry::file("dir/b.txt", b"World")]));
        assert_ne!(one, output_digest_v1(&[a, b, OutputEntry::EmptyDir { path: "e".into() }]));
    }
}
