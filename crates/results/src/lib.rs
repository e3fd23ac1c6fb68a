//! Store task results by content (CIDv1, sha2-256) on disk, verifying every read, behind an HTTP gateway with signed uploads.
//!
//! A result is addressed by its CIDv1 (codec `raw`, multihash sha2-256, written in base32 as
//! `bafkrei…`, the form IPFS uses), so a task's on-chain `results` link names exactly the
//! bytes workers uploaded and anyone can check what they download. Writes are atomic
//! (temporary file, then rename); reads re-hash the bytes and refuse a damaged file.

pub mod gateway;
pub mod sealed;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use cid::Cid;
use multihash::Multihash;
use sha2::{Digest as _, Sha256};

/// Multicodec of raw bytes.
const RAW: u64 = 0x55;
/// Multihash code of sha2-256.
const SHA2_256: u64 = 0x12;

/// The store failed or a result is not what its address says.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// Not a CIDv1 raw/sha2-256 address.
    #[error("`{text}` is not a result address (CIDv1, raw codec, sha2-256)")]
    BadCid {
        /// The text given.
        text: String,
    },
    /// No such result.
    #[error("no result {cid} in this store")]
    NotFound {
        /// The address.
        cid: String,
    },
    /// The stored bytes no longer hash to their address.
    #[error("result {cid} is damaged: its bytes hash to {actual}")]
    Damaged {
        /// The address.
        cid: String,
        /// What the bytes hash to.
        actual: String,
    },
    /// A file-system error.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The CIDv1 (raw, sha2-256) of `bytes`, in base32 (`bafkrei…`).
pub fn cid_of(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hash = Multihash::<64>::wrap(SHA2_256, &digest).expect("32 bytes fit a 64-byte multihash");
    Cid::new_v1(RAW, hash).to_string()
}

fn parse(text: &str) -> Result<Cid, ResultsError> {
    let bad = || ResultsError::BadCid { text: text.to_owned() };
    let cid = Cid::from_str(text).map_err(|_| bad())?;
    if cid.version() != cid::Version::V1 || cid.codec() != RAW || cid.hash().code() != SHA2_256 {
        return Err(bad());
    }
    Ok(cid)
}

/// A content-addressed result store in a directory.
#[derive(Clone, Debug)]
pub struct ResultStore {
    dir: PathBuf,
}

impl ResultStore {
    /// Opens (creating it if needed) the store in `dir`.
    ///
    /// # Errors
    /// [`ResultsError::Io`].
    pub fn open(dir: &Path) -> Result<Self, ResultsError> {
        std::fs::create_dir_all(dir)
            .map_err(|source| ResultsError::Io { path: dir.to_owned(), source })?;
        Ok(Self { dir: dir.to_owned() })
    }

    fn path(&self, cid: &Cid) -> PathBuf {
        self.dir.join(cid.to_string())
    }

    /// Stores `bytes` and returns their address; storing the same bytes twice is a no-op.
    ///
    /// # Errors
    /// [`ResultsError::Io`].
    pub fn put(&self, bytes: &[u8]) -> Result<String, ResultsError> {
        let text = cid_of(bytes);
        let cid = parse(&text).expect("our own CIDs parse");
        let path = self.path(&cid);
        if path.exists() {
            return Ok(text);
        }
        // One temporary file per write: two workers storing the same bytes at once (tasks
        // with identical outputs) each rename a whole file over the other's, where a shared
        // temporary name made the second rename fail.
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let write = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temporary = self.dir.join(format!(".{text}.{}-{write}.partial", std::process::id()));
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ResultsError::Io { path, source }
        };
        std::fs::write(&temporary, bytes).map_err(io(&temporary))?;
        std::fs::rename(&temporary, &path).map_err(io(&path))?;
        Ok(text)
    }

    /// The bytes at `cid`, checked against it.
    ///
    /// # Errors
    /// [`ResultsError::BadCid`], [`ResultsError::NotFound`], [`ResultsError::Damaged`] or I/O.
    pub fn get(&self, cid: &str) -> Result<Vec<u8>, ResultsError> {
        let parsed = parse(cid)?;
        let path = self.path(&parsed);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(ResultsError::NotFound { cid: cid.to_owned() });
            }
            Err(source) => return Err(ResultsError::Io { path, source }),
        };
        let actual = cid_of(&bytes);
        if actual != parsed.to_string() {
            return Err(ResultsError::Damaged { cid: cid.to_owned(), actual });
        }
        Ok(bytes)
    }

    /// Whether `cid` is stored.
    pub fn contains(&self, cid: &str) -> bool {
        parse(cid).is_ok_and(|c| self.path(&c).exists())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cids_are_the_ipfs_raw_sha256_form() {
        // `ipfs add --cid-version 1 --raw-leaves` of "hello\n" gives this address.
        assert_eq!(
            cid_of(b"hello\n"),
            "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"
        );
        assert!(cid_of(b"").starts_with("bafkrei"));
    }

    #[test]
    fn the_same_bytes_stored_at_once_by_many_writers_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(ResultStore::open(dir.path()).unwrap());
        for round in 0..20u8 {
            let bytes = vec![round; 256 * 1024];
            let cids: Vec<String> = std::thread::scope(|scope| {
                let writers: Vec<_> =
                    (0..8).map(|_| scope.spawn(|| store.put(&bytes).expect("stored"))).collect();
                writers.into_iter().map(|w| w.join().unwrap()).collect()
            });
            assert!(cids.iter().all(|c| *c == cids[0]), "{cids:?}");
            assert_eq!(store.get(&cids[0]).unwrap(), bytes);
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().ends_with(".partial"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }

    #[test]
    fn put_get_round_trip_and_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let store = ResultStore::open(dir.path()).unwrap();
        let cid = store.put(b"frame 1").unwrap();
        assert_eq!(store.put(b"frame 1").unwrap(), cid);
        assert_eq!(store.get(&cid).unwrap(), b"frame 1");
        // Survives reopening.
        let store = ResultStore::open(dir.path()).unwrap();
        assert!(store.contains(&cid));
        std::fs::write(dir.path().join(&cid), b"frame 2").unwrap();
        assert!(matches!(store.get(&cid), Err(ResultsError::Damaged { .. })));
        let other = cid_of(b"never stored");
        assert!(matches!(store.get(&other), Err(ResultsError::NotFound { .. })));
        assert!(matches!(store.get("../../etc/passwd"), Err(ResultsError::BadCid { .. })));
        // A CIDv0 / dag-pb address is refused.
        assert!(matches!(
            store.get("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"),
            Err(ResultsError::BadCid { .. })
        ));
    }
}
