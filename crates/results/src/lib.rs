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
    /// A result is larger than the limit it is received under.
    #[error(
        "the result is over {limit_bytes} bytes, the limit it is received under ({received_bytes} bytes so far)"
    )]
    TooLarge {
        /// Bytes received when the limit was crossed.
        received_bytes: u64,
        /// The limit.
        limit_bytes: u64,
    },
    /// Received bytes do not hash to the address they were announced under.
    #[error("the bytes received hash to {actual}, not to the announced address {claimed}")]
    Mismatch {
        /// The announced address.
        claimed: String,
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

/// The CIDv1 (raw, sha2-256) of bytes fed in pieces: the same address as [`cid_of`] over
/// their concatenation, without holding them all.
#[derive(Clone, Debug, Default)]
pub struct CidHasher {
    hasher: Sha256,
    bytes: u64,
}

impl CidHasher {
    /// A hasher that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next piece.
    pub fn update(&mut self, piece: &[u8]) {
        self.hasher.update(piece);
        self.bytes += piece.len() as u64;
    }

    /// How many bytes were fed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The address of everything fed, in base32 (`bafkrei…`).
    pub fn finish(self) -> String {
        let digest = self.hasher.finalize();
        let hash =
            Multihash::<64>::wrap(SHA2_256, &digest).expect("32 bytes fit a 64-byte multihash");
        Cid::new_v1(RAW, hash).to_string()
    }
}

/// Whether `text` is a result address (CIDv1, raw codec, sha2-256), in its canonical form.
///
/// # Errors
/// [`ResultsError::BadCid`].
pub fn check_cid(text: &str) -> Result<(), ResultsError> {
    let cid = parse(text)?;
    if cid.to_string() != text {
        return Err(ResultsError::BadCid { text: text.to_owned() });
    }
    Ok(())
}

/// Reading and hashing go through buffers of this size: no file is ever read whole.
const CHUNK_BYTES: usize = 256 * 1024;

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
        let temporary = self.temporary(&text);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ResultsError::Io { path, source }
        };
        std::fs::write(&temporary, bytes).map_err(io(&temporary))?;
        std::fs::rename(&temporary, &path).map_err(io(&path))?;
        Ok(text)
    }

    /// Starts receiving a result of at most `limit_bytes` bytes into a temporary file of the
    /// store; nothing is visible under an address until [`Incoming::commit`]. Dropping the
    /// [`Incoming`] removes the temporary file.
    ///
    /// # Errors
    /// [`ResultsError::Io`].
    pub fn begin(&self, limit_bytes: u64) -> Result<Incoming, ResultsError> {
        let path = self.temporary("incoming");
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| ResultsError::Io { path: path.clone(), source })?;
        Ok(Incoming {
            store: self.clone(),
            path,
            file: Some(file),
            hasher: CidHasher::new(),
            limit_bytes,
        })
    }

    /// A unique temporary path in the store (ignored by readers: its name is no address).
    fn temporary(&self, what: &str) -> PathBuf {
        // One temporary file per write: two workers storing the same bytes at once (tasks
        // with identical outputs) each rename a whole file over the other's, where a shared
        // temporary name made the second rename fail.
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let write = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.dir.join(format!(".{what}.{}-{write}.partial", std::process::id()))
    }

    /// The file at `cid` and its length, after checking (reading it in chunks) that its bytes
    /// hash to `cid`; the file is positioned at its start, ready to be streamed.
    ///
    /// # Errors
    /// [`ResultsError::BadCid`], [`ResultsError::NotFound`], [`ResultsError::Damaged`] or I/O.
    pub fn open_verified(&self, cid: &str) -> Result<(std::fs::File, u64), ResultsError> {
        use std::io::{Read as _, Seek as _};
        let parsed = parse(cid)?;
        let path = self.path(&parsed);
        let io = |source| ResultsError::Io { path: path.clone(), source };
        let mut file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(ResultsError::NotFound { cid: cid.to_owned() });
            }
            Err(source) => return Err(io(source)),
        };
        let mut hasher = CidHasher::new();
        let mut buffer = vec![0u8; CHUNK_BYTES];
        loop {
            let read = file.read(&mut buffer).map_err(io)?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
        }
        let length = hasher.bytes();
        let actual = hasher.finish();
        if actual != parsed.to_string() {
            return Err(ResultsError::Damaged { cid: cid.to_owned(), actual });
        }
        file.rewind().map_err(io)?;
        Ok((file, length))
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

/// A result being received: a temporary file in the store, hashed as it is written and
/// bounded in size. Removed when dropped uncommitted.
#[derive(Debug)]
pub struct Incoming {
    store: ResultStore,
    path: PathBuf,
    file: Option<std::fs::File>,
    hasher: CidHasher,
    limit_bytes: u64,
}

impl Incoming {
    /// Appends `piece`.
    ///
    /// # Errors
    /// [`ResultsError::TooLarge`] once the bytes received pass the limit (nothing of the
    /// piece is written then), or I/O.
    pub fn write(&mut self, piece: &[u8]) -> Result<(), ResultsError> {
        use std::io::Write as _;
        let received_bytes = self.hasher.bytes() + piece.len() as u64;
        if received_bytes > self.limit_bytes {
            return Err(ResultsError::TooLarge { received_bytes, limit_bytes: self.limit_bytes });
        }
        let file = self.file.as_mut().expect("an Incoming holds its file until committed");
        file.write_all(piece)
            .map_err(|source| ResultsError::Io { path: self.path.clone(), source })?;
        self.hasher.update(piece);
        Ok(())
    }

    /// Bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.hasher.bytes()
    }

    /// Stores what was received under its address if that is `claimed`, and returns the
    /// address; storing bytes already there is a no-op.
    ///
    /// # Errors
    /// [`ResultsError::Mismatch`] (the temporary file is removed), or I/O.
    pub fn commit(mut self, claimed: &str) -> Result<String, ResultsError> {
        let file = self.file.take().expect("an Incoming holds its file until committed");
        drop(file);
        let hasher = std::mem::take(&mut self.hasher);
        let actual = hasher.finish();
        if actual != claimed {
            return Err(ResultsError::Mismatch { claimed: claimed.to_owned(), actual });
        }
        let cid = parse(&actual).expect("our own CIDs parse");
        let path = self.store.path(&cid);
        std::fs::rename(&self.path, &path)
            .map_err(|source| ResultsError::Io { path: path.clone(), source })?;
        Ok(actual)
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        // Committed: the path was renamed away and this fails harmlessly.
        let _ = std::fs::remove_file(&self.path);
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
    fn pieces_hash_to_the_address_of_the_whole() {
        let bytes: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut hasher = CidHasher::new();
        for piece in bytes.chunks(4093) {
            hasher.update(piece);
        }
        assert_eq!(hasher.bytes(), 1_000_000);
        assert_eq!(hasher.finish(), cid_of(&bytes));
        assert!(check_cid(&cid_of(b"x")).is_ok());
        assert!(matches!(check_cid("../x"), Err(ResultsError::BadCid { .. })));
    }

    #[test]
    fn incoming_results_are_bounded_checked_against_their_claim_and_leave_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = ResultStore::open(dir.path()).unwrap();
        let files = || std::fs::read_dir(dir.path()).unwrap().count();
        // Over the limit: refused at the piece that crosses it.
        let mut incoming = store.begin(10).unwrap();
        incoming.write(b"0123456789").unwrap();
        let error = incoming.write(b"x").unwrap_err();
        assert!(
            matches!(error, ResultsError::TooLarge { received_bytes: 11, limit_bytes: 10 }),
            "{error}"
        );
        drop(incoming);
        assert_eq!(files(), 0);
        // Bytes that are not what was announced: nothing stored.
        let mut incoming = store.begin(100).unwrap();
        incoming.write(b"forged").unwrap();
        let claimed = cid_of(b"genuine");
        let error = incoming.commit(&claimed).unwrap_err();
        assert!(
            matches!(&error, ResultsError::Mismatch { actual, .. } if *actual == cid_of(b"forged"))
        );
        assert_eq!(files(), 0);
        // The announced bytes: stored under their address, readable, verified.
        let mut incoming = store.begin(100).unwrap();
        incoming.write(b"gen").unwrap();
        incoming.write(b"uine").unwrap();
        assert_eq!(incoming.commit(&claimed).unwrap(), claimed);
        assert_eq!(store.get(&claimed).unwrap(), b"genuine");
        let (_, length) = store.open_verified(&claimed).unwrap();
        assert_eq!(length, 7);
        assert_eq!(files(), 1);
        std::fs::write(dir.path().join(&claimed), b"rotten!").unwrap();
        assert!(matches!(store.open_verified(&claimed), Err(ResultsError::Damaged { .. })));
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
