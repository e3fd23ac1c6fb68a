//! Unpacks a result archive (tar) that may come from anyone: only regular files and
//! directories, every path inside the output, the total size and entry count bounded, into a
//! temporary directory that is renamed into place only once the result digest agreed on chain
//! matches, and removed on any failure.
//!
//! **Invariant:** nothing an archive holds can write outside the output directory or leave
//! anything behind when refused: links, device files, FIFOs, sparse entries, absolute paths and
//! `..` are refused before anything of theirs is written, and no file takes more bytes on disk
//! than the archive carries for it (no sparse expansion), within [`UnpackLimits::bytes_max`].

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use alloy_primitives::B256;

/// Bounds on what one archive may unpack to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Total bytes of all files.
    pub bytes_max: u64,
    /// Entries (files and directories).
    pub entries_max: u64,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        Self { bytes_max: 1 << 30, entries_max: 100_000 }
    }
}

/// What an archive unpacked to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unpacked {
    /// Regular files written.
    pub files: u64,
    /// Their total size, bytes.
    pub bytes: u64,
}

/// An archive breaks an unpacking rule, or unpacking failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    /// An entry that is not a regular file or a directory.
    #[error(
        "entry `{path}` is a {kind}: a result archive holds only regular files and directories"
    )]
    NotRegular {
        /// The entry's path as written in the archive.
        path: String,
        /// What it is (`symbolic link`, `hard link`, `device file`, …).
        kind: String,
    },
    /// A path that is absolute, climbs with `..`, or names nothing.
    #[error(
        "entry `{path}` would be written outside the output directory (absolute, `..` or empty)"
    )]
    UnsafePath {
        /// The entry's path as written in the archive.
        path: String,
    },
    /// A name that is not UTF-8 (the result digest needs UTF-8 names).
    #[error("entry `{path}` has a name that is not UTF-8")]
    NotUtf8 {
        /// The path, lossily decoded.
        path: String,
    },
    /// Two entries with the same file path.
    #[error("entry `{path}` appears twice in the archive")]
    Duplicate {
        /// The path.
        path: String,
    },
    /// More entries than the limit.
    #[error("the archive holds over {limit} entries, the most a result may unpack to")]
    TooManyEntries {
        /// The limit.
        limit: u64,
    },
    /// Files larger in total than the limit.
    #[error(
        "entry `{path}` ({entry_bytes} bytes) takes the result to {total_bytes} bytes, over the {limit_bytes}-byte limit"
    )]
    TooLarge {
        /// The entry that crossed the limit.
        path: String,
        /// Its size.
        entry_bytes: u64,
        /// The total with it.
        total_bytes: u64,
        /// The limit.
        limit_bytes: u64,
    },
    /// An entry's data ends before the size its header gives.
    #[error("entry `{path}` is truncated: {written} of {declared} bytes in the archive")]
    Truncated {
        /// The path.
        path: String,
        /// What the header says.
        declared: u64,
        /// What was there.
        written: u64,
    },
    /// The output is a non-empty directory or not a directory.
    #[error("{path} is not empty: give a new or empty directory")]
    OutputNotEmpty {
        /// The output path.
        path: PathBuf,
    },
    /// The unpacked files do not give the digest agreed on chain.
    #[error("the result's digest {actual} differs from the one agreed on chain {expected}")]
    DigestMismatch {
        /// What the files give.
        actual: B256,
        /// What the chain says.
        expected: B256,
    },
    /// The archive cannot be read (not a tar, or damaged).
    #[error("the archive cannot be read: {reason}")]
    Read {
        /// Why.
        reason: String,
    },
    /// Writing to the output failed (or digesting it).
    #[error("{path}: {reason}")]
    Write {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

fn read_error(error: std::io::Error) -> ArchiveError {
    ArchiveError::Read { reason: error.to_string() }
}

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |error| ArchiveError::Write { path: path.to_owned(), reason: error.to_string() }
}

/// The archive path `raw` as a path of plain names (`.` dropped); refused if absolute or
/// climbing. Empty for the archive's root (`./`).
fn relative(raw: &Path, text: &str) -> Result<PathBuf, ArchiveError> {
    let mut out = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) | Component::ParentDir => {
                return Err(ArchiveError::UnsafePath { path: text.to_owned() });
            }
        }
    }
    Ok(out)
}

fn kind_name(kind: tar::EntryType) -> String {
    match kind {
        tar::EntryType::Symlink => "symbolic link".into(),
        tar::EntryType::Link => "hard link".into(),
        tar::EntryType::Char | tar::EntryType::Block => "device file".into(),
        tar::EntryType::Fifo => "FIFO".into(),
        tar::EntryType::GNUSparse => "sparse file".into(),
        other => format!("special entry (type {:?})", other.as_byte() as char),
    }
}

/// Unpacks the tar `archive` into `out`, an existing directory this process just created
/// empty (nothing in it may be a link), under `limits`. File modes, owners and times are not
/// restored: files are created with this process's defaults.
///
/// # Errors
/// [`ArchiveError`]; what was written before the failure stays in `out` (see
/// [`unpack_verified`], which removes it).
pub fn unpack(
    archive: impl Read,
    out: &Path,
    limits: &UnpackLimits,
) -> Result<Unpacked, ArchiveError> {
    let mut archive = tar::Archive::new(archive);
    let mut unpacked = Unpacked::default();
    let mut entries: u64 = 0;
    for entry in archive.entries().map_err(read_error)? {
        let mut entry = entry.map_err(read_error)?;
        entries += 1;
        if entries > limits.entries_max {
            return Err(ArchiveError::TooManyEntries { limit: limits.entries_max });
        }
        let raw = entry.path().map_err(read_error)?.into_owned();
        let Some(text) = raw.to_str().map(str::to_owned) else {
            return Err(ArchiveError::NotUtf8 { path: raw.to_string_lossy().into_owned() });
        };
        let kind = entry.header().entry_type();
        let is_file = kind.is_file() || kind.is_contiguous();
        if !is_file && !kind.is_dir() {
            return Err(ArchiveError::NotRegular { path: text, kind: kind_name(kind) });
        }
        let relative = relative(&raw, &text)?;
        let target = out.join(&relative);
        if kind.is_dir() {
            std::fs::create_dir_all(&target).map_err(write_error(&target))?;
            continue;
        }
        if relative.as_os_str().is_empty() {
            return Err(ArchiveError::UnsafePath { path: text });
        }
        let declared = entry.size();
        let total_bytes = unpacked.bytes.saturating_add(declared);
        if total_bytes > limits.bytes_max {
            return Err(ArchiveError::TooLarge {
                path: text,
                entry_bytes: declared,
                total_bytes,
                limit_bytes: limits.bytes_max,
            });
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(write_error(parent))?;
        }
        let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).open(&target)
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(ArchiveError::Duplicate { path: text });
            }
            Err(e) => return Err(write_error(&target)(e)),
        };
        // `take`: never more than the header declared (and checked against the limit).
        let written =
            std::io::copy(&mut (&mut entry).take(declared), &mut file).map_err(read_error)?;
        if written != declared {
            return Err(ArchiveError::Truncated { path: text, declared, written });
        }
        unpacked.files += 1;
        unpacked.bytes += written;
    }
    Ok(unpacked)
}

/// A directory removed (with what is in it) when dropped, unless kept.
struct Scratch {
    path: PathBuf,
    keep: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.keep {
            // It holds only files and directories this process made (no links).
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Unpacks `archive` (see [`unpack`]) into a temporary directory beside `out`, checks that the
/// files give the result digest `expected` (rule v1), and only then renames the directory to
/// `out`, which must not exist or be an empty directory. On any failure nothing is left: not
/// `out`, not the temporary directory.
///
/// # Errors
/// [`ArchiveError`], [`ArchiveError::DigestMismatch`] when the files are not the agreed ones.
pub fn unpack_verified(
    archive: impl Read,
    out: &Path,
    limits: &UnpackLimits,
    expected: B256,
) -> Result<Unpacked, ArchiveError> {
    match std::fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(ArchiveError::OutputNotEmpty { path: out.to_owned() });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(_) => return Err(ArchiveError::OutputNotEmpty { path: out.to_owned() }),
    }
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let parent = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(write_error(&parent))?;
    static SCRATCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SCRATCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut scratch = Scratch {
        path: parent.join(format!(".{name}.unpacking-{}-{n}", std::process::id())),
        keep: false,
    };
    std::fs::create_dir(&scratch.path).map_err(write_error(&scratch.path))?;
    let unpacked = unpack(archive, &scratch.path, limits)?;
    let actual = crate::digest::digest_dir(&scratch.path)
        .map_err(|e| ArchiveError::Write { path: scratch.path.clone(), reason: e.to_string() })?;
    if actual != expected {
        return Err(ArchiveError::DigestMismatch { actual, expected });
    }
    // Onto a missing path or an empty directory: both are what rename(2) allows.
    std::fs::rename(&scratch.path, out).map_err(write_error(out))?;
    scratch.keep = true;
    Ok(unpacked)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One raw tar entry: a ustar header with `name`, type `kind`, `size` declared, and `data`
    /// (which may be shorter or longer than `size`, for lying archives).
    fn raw_entry(name: &[u8], kind: u8, size: u64, link: &[u8], data: &[u8]) -> Vec<u8> {
        let mut header = tar::Header::new_gnu();
        {
            let bytes = header.as_mut_bytes();
            bytes[..name.len()].copy_from_slice(name);
            bytes[157..157 + link.len()].copy_from_slice(link);
        }
        header.set_mode(0o644);
        header.set_size(size);
        header.set_entry_type(tar::EntryType::new(kind));
        if kind == b'S' {
            // The attack: `size` stored bytes placed at the end of a 2 GiB file.
            let gnu = header.as_gnu_mut().expect("a GNU header");
            gnu.set_real_size(2 << 30);
            gnu.sparse[0].set_offset((2 << 30) - size);
            gnu.sparse[0].set_length(size);
        }
        header.set_cksum();
        let mut out = header.as_bytes().to_vec();
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    fn archive(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut out: Vec<u8> = entries.concat();
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    fn file(name: &str, data: &[u8]) -> Vec<u8> {
        raw_entry(name.as_bytes(), b'0', data.len() as u64, b"", data)
    }

    const LIMITS: UnpackLimits = UnpackLimits { bytes_max: 1000, entries_max: 5 };

    /// Unpacks `entries` with [`LIMITS`] into a fresh `out`, and checks the outcome and that a
    /// refusal leaves nothing beside `out` and nothing at it.
    fn check(entries: &[Vec<u8>], expected: Result<Unpacked, ArchiveError>) {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        let bytes = archive(entries);
        let digest = {
            // The digest of what a correct unpacking gives, when it succeeds.
            let probe = tempfile::tempdir().unwrap();
            let _ = unpack(bytes.as_slice(), probe.path(), &LIMITS);
            crate::digest::digest_dir(probe.path()).unwrap_or_default()
        };
        let outcome = unpack_verified(bytes.as_slice(), &out, &LIMITS, digest);
        assert_eq!(outcome, expected);
        let left: Vec<_> =
            std::fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        if expected.is_ok() {
            assert_eq!(left, ["out"]);
        } else {
            assert!(left.is_empty(), "left behind: {left:?}");
        }
    }

    #[test]
    fn regular_files_and_directories_unpack() {
        check(
            &[
                raw_entry(b"./", b'5', 0, b"", b""),
                file("./result.txt", b"42\n"),
                raw_entry(b"frames/", b'5', 0, b"", b""),
                file("frames/0001.png", &[7u8; 600]),
            ],
            Ok(Unpacked { files: 2, bytes: 603 }),
        );
    }

    #[test]
    fn links_devices_fifos_and_sparse_entries_are_refused() {
        let refused = |kind: u8, what: &str| {
            check(
                &[file("ok.txt", b"fine"), raw_entry(b"leak", kind, 0, b"/etc/passwd", b"")],
                Err(ArchiveError::NotRegular { path: "leak".into(), kind: what.into() }),
            );
        };
        refused(b'2', "symbolic link");
        refused(b'1', "hard link");
        refused(b'3', "device file");
        refused(b'4', "device file");
        refused(b'6', "FIFO");
        check(
            &[raw_entry(b"sparse.bin", b'S', 1, b"", b"x")],
            Err(ArchiveError::NotRegular { path: "sparse.bin".into(), kind: "sparse file".into() }),
        );
    }

    #[test]
    fn paths_leaving_the_output_are_refused() {
        for path in ["/etc/cron.d/x", "../outside.txt", "a/../../outside.txt", "."] {
            check(
                &[file("ok.txt", b"fine"), file(path, b"evil")],
                Err(ArchiveError::UnsafePath { path: path.into() }),
            );
        }
    }

    /// A header that declares 3 GB with a few bytes behind it: refused from the header, before
    /// anything is written (before, unpacking wrote what the archive claimed).
    #[test]
    fn sizes_and_entry_counts_are_bounded_and_lies_are_caught() {
        check(
            &[file("a.bin", &[1u8; 600]), file("b.bin", &[2u8; 600])],
            Err(ArchiveError::TooLarge {
                path: "b.bin".into(),
                entry_bytes: 600,
                total_bytes: 1200,
                limit_bytes: 1000,
            }),
        );
        check(
            &[raw_entry(b"huge.bin", b'0', 3_000_000_000, b"", b"tiny")],
            Err(ArchiveError::TooLarge {
                path: "huge.bin".into(),
                entry_bytes: 3_000_000_000,
                total_bytes: 3_000_000_000,
                limit_bytes: 1000,
            }),
        );
        let many: Vec<Vec<u8>> = (0..6).map(|i| file(&format!("f{i}"), b"x")).collect();
        check(&many, Err(ArchiveError::TooManyEntries { limit: 5 }));
        check(
            &[file("a.txt", b"one"), file("a.txt", b"two")],
            Err(ArchiveError::Duplicate { path: "a.txt".into() }),
        );
    }

    #[test]
    fn a_digest_other_than_the_agreed_one_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        let bytes = archive(&[file("result.txt", b"forged")]);
        let error = unpack_verified(bytes.as_slice(), &out, &LIMITS, B256::ZERO).unwrap_err();
        assert!(
            matches!(error, ArchiveError::DigestMismatch { expected, .. } if expected == B256::ZERO)
        );
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
        // An empty existing directory is fine; a non-empty one is refused untouched.
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("mine"), b"keep").unwrap();
        let error = unpack_verified(bytes.as_slice(), &out, &LIMITS, B256::ZERO).unwrap_err();
        assert_eq!(error, ArchiveError::OutputNotEmpty { path: out.clone() });
        assert_eq!(std::fs::read(out.join("mine")).unwrap(), b"keep");
    }
}
