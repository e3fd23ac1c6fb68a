//! Fetching a task's result from wherever its link points, trusting nothing the server says:
//! the bytes are bounded as they stream in, checked against the link's content id, opened when
//! sealed for the beneficiary, and unpacked only if they hash to the digest agreed on chain.

use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy_primitives::{Address, B256};
use xiebao_types::{SecretKey, ids};

use crate::archive::{ArchiveError, UnpackLimits, unpack_verified};

/// Largest result `xiebao result download` and `xiebao run` accept unless told otherwise.
pub const RESULT_DOWNLOAD_MAX_BYTES: u64 = 1 << 30;
/// A download that delivers no byte for this long is abandoned.
pub const DOWNLOAD_IDLE_MAX: Duration = Duration::from_secs(60);

/// Why a result was not fetched or not accepted. Nothing is left behind in any case.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The on-chain link does not end in a content id, so its bytes could not be checked.
    #[error("the result link `{link}` does not end in a content id: {reason}")]
    NotAContentId {
        /// The link.
        link: String,
        /// Why the last segment is not a content id.
        reason: String,
    },
    /// The request failed (connection, protocol).
    #[error("GET {link}: {reason}")]
    Request {
        /// The link.
        link: String,
        /// What failed.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("GET {link}: HTTP {status}")]
    Status {
        /// The link.
        link: String,
        /// The HTTP status.
        status: String,
    },
    /// The result is (or grew) larger than the limit.
    #[error(
        "result of task {task} is {bytes} bytes, over the {limit} limit: refusing it (from {link})"
    )]
    TooLarge {
        /// The task.
        task: B256,
        /// Its size as far as known, grouped (`over N` when counted while streaming).
        bytes: String,
        /// The limit, as people say it.
        limit: String,
        /// The link.
        link: String,
    },
    /// The server stopped sending.
    #[error("GET {link}: no byte for {idle_s} s after {bytes} bytes: abandoned")]
    Idle {
        /// The link.
        link: String,
        /// How long nothing came, seconds.
        idle_s: u64,
        /// Bytes received before, grouped.
        bytes: String,
    },
    /// The bytes are not the ones the link names.
    #[error(
        "the bytes at {link} do not match the content id {cid} (they hash to {actual}): refusing them"
    )]
    WrongContent {
        /// The link.
        link: String,
        /// The content id it names.
        cid: String,
        /// The content id of what came.
        actual: String,
    },
    /// The result is sealed and no key was given.
    #[error(
        "this result is encrypted for the beneficiary {beneficiary}: give --key-file with its key"
    )]
    KeyNeeded {
        /// The deal's beneficiary.
        beneficiary: Address,
    },
    /// The key given is not the beneficiary's.
    #[error("the result is encrypted for {beneficiary}, and the key given is {given}'s")]
    WrongKey {
        /// The deal's beneficiary.
        beneficiary: Address,
        /// The address of the key given.
        given: Address,
    },
    /// The sealed result does not open with the beneficiary's key.
    #[error("the sealed result does not open with the beneficiary's key: {reason}")]
    Sealed {
        /// Why.
        reason: String,
    },
    /// The archive was refused (limits, layout, or its digest differs from the chain's).
    #[error("result of task {task} refused; nothing written to {out}: {source}")]
    Refused {
        /// The task.
        task: B256,
        /// Where it would have been unpacked.
        out: PathBuf,
        /// The rule the archive broke.
        source: Box<ArchiveError>,
    },
    /// A local file could not be written or read.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The result is not an archive holding the file asked for (see [`fetch_file`]).
    #[error("{0}")]
    Archive(String),
}

impl DownloadError {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}

/// `3000000000` as `3,000,000,000`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A byte limit as people say it: `1 GiB`, `64 MiB`, else grouped bytes.
pub fn limit_text(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{} {unit}", bytes / size);
        }
    }
    format!("{} bytes", grouped(bytes))
}

/// The content id a result link (`…/v1/results/{cid}`) ends in, checked to be one.
///
/// # Errors
/// [`DownloadError::NotAContentId`].
pub fn link_cid(link: &str) -> Result<&str, DownloadError> {
    let cid = link.rsplit('/').next().unwrap_or_default();
    xiebao_results::check_cid(cid).map_err(|e| DownloadError::NotAContentId {
        link: link.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(cid)
}

/// Streams the result of `task` at `link` into `sink`, refusing it from its Content-Length or,
/// counting, at the first byte over `max_bytes`, and checks the bytes against the link's
/// content id. Returns the byte count.
///
/// # Errors
/// Any [`DownloadError`] of the transfer or the check.
pub async fn fetch_into(
    http: &reqwest::Client,
    task: B256,
    link: &str,
    max_bytes: u64,
    sink: &mut impl std::io::Write,
) -> Result<u64, DownloadError> {
    let cid = link_cid(link)?;
    let too_large = |bytes: String| DownloadError::TooLarge {
        task,
        bytes,
        limit: limit_text(max_bytes),
        link: link.to_owned(),
    };
    let request = |e: reqwest::Error| DownloadError::Request {
        link: link.to_owned(),
        reason: error_chain(&e),
    };
    let mut response = http.get(link).send().await.map_err(request)?;
    if !response.status().is_success() {
        return Err(DownloadError::Status {
            link: link.to_owned(),
            status: response.status().to_string(),
        });
    }
    if let Some(length) = response.content_length()
        && length > max_bytes
    {
        return Err(too_large(grouped(length)));
    }
    let mut hasher = xiebao_results::CidHasher::new();
    loop {
        let chunk = tokio::time::timeout(DOWNLOAD_IDLE_MAX, response.chunk())
            .await
            .map_err(|_| DownloadError::Idle {
                link: link.to_owned(),
                idle_s: DOWNLOAD_IDLE_MAX.as_secs(),
                bytes: grouped(hasher.bytes()),
            })?
            .map_err(request)?;
        let Some(chunk) = chunk else { break };
        if hasher.bytes() + chunk.len() as u64 > max_bytes {
            return Err(too_large(format!("over {}", grouped(max_bytes))));
        }
        hasher.update(&chunk);
        // Chunks are a few KiB: writing them where they arrive blocks no longer than a
        // page-cache copy.
        sink.write_all(&chunk).map_err(DownloadError::io("writing the downloaded result"))?;
    }
    let bytes = hasher.bytes();
    let actual = hasher.finish();
    if actual != cid {
        return Err(DownloadError::WrongContent {
            link: link.to_owned(),
            cid: cid.to_owned(),
            actual,
        });
    }
    Ok(bytes)
}

/// An error and its sources, `outer: inner: …`.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Fetches the result of `task` at `link` (`…/v1/results/{cid}`) into memory, at most
/// `max_bytes`, and checks it against its content id.
///
/// # Errors
/// As [`fetch_into`].
pub async fn fetch(
    http: &reqwest::Client,
    task: B256,
    link: &str,
    max_bytes: u64,
) -> Result<Vec<u8>, DownloadError> {
    let mut bytes = Vec::new();
    fetch_into(http, task, link, max_bytes, &mut bytes).await?;
    Ok(bytes)
}

/// Fetches a result archive (at most `max_bytes`, checked against its content id), opens it
/// with `key` when sealed, and takes the regular file `name` out of it.
///
/// # Errors
/// As [`fetch_into`]; [`DownloadError::Sealed`]; [`DownloadError::Archive`] when the archive
/// is unreadable, holds no such file or holds it larger than `max_bytes`.
pub async fn fetch_file(
    http: &reqwest::Client,
    task: B256,
    link: &str,
    name: &str,
    key: Option<&SecretKey>,
    max_bytes: u64,
) -> Result<Vec<u8>, DownloadError> {
    let mut bytes = fetch(http, task, link, max_bytes).await?;
    if let Some(key) = key {
        bytes = xiebao_results::sealed::open(key, &bytes).map_err(|e| {
            DownloadError::Archive(format!("opening the sealed result at {link}: {e}"))
        })?;
    }
    let unreadable =
        |e: std::io::Error| DownloadError::Archive(format!("the result at {link}: {e}"));
    let mut archive = tar::Archive::new(bytes.as_slice());
    for entry in archive.entries().map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        // A regular file only: a sparse entry would expand far past the archive's size.
        if entry.header().entry_type().is_file()
            && entry.path().map_err(unreadable)?.as_os_str() == name
        {
            let size = entry.size();
            if size > max_bytes {
                return Err(DownloadError::Archive(format!(
                    "{name} in the result at {link} is {size} bytes, over {max_bytes}"
                )));
            }
            let mut file = Vec::new();
            std::io::Read::read_to_end(&mut std::io::Read::take(entry, size), &mut file)
                .map_err(unreadable)?;
            return Ok(file);
        }
    }
    Err(DownloadError::Archive(format!("the result at {link} holds no {name}")))
}

/// A file removed when dropped.
struct TemporaryFile(PathBuf);

impl Drop for TemporaryFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Downloads task `record`'s result into a temporary file beside `out` (at most `max_bytes`),
/// checks its content id before anything else, opens it when sealed for the beneficiary (`key`
/// must be theirs), unpacks it (regular files and directories only, at most `max_bytes` in
/// all) into a temporary directory and renames that to `out` only once the digest agreed on
/// chain matches: a refused result leaves nothing behind. Returns the content id and the
/// digest.
///
/// # Errors
/// Any [`DownloadError`].
pub async fn save(
    http: &reqwest::Client,
    record: &xiebao_rpc::Task,
    deal: &xiebao_rpc::Deal,
    key: Option<&SecretKey>,
    out: &Path,
    max_bytes: u64,
) -> Result<(String, B256), DownloadError> {
    let task = ids::task_id(&record.deal_id, record.idx);
    let link = String::from_utf8_lossy(&record.results).into_owned();
    let cid = link_cid(&link)?.to_owned();
    let sealed =
        crate::params::TaskParams::parse(&deal.params).is_ok_and(|p| p.result_key.is_some());
    if sealed {
        match key {
            None => return Err(DownloadError::KeyNeeded { beneficiary: deal.beneficiary }),
            Some(key) if key.address() != deal.beneficiary => {
                return Err(DownloadError::WrongKey {
                    beneficiary: deal.beneficiary,
                    given: key.address(),
                });
            }
            Some(_) => {}
        }
    }
    let parent = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .map_err(DownloadError::io(format!("creating {}", parent.display())))?;
    static DOWNLOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = DOWNLOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let download =
        TemporaryFile(parent.join(format!(".{name}.download-{}-{n}", std::process::id())));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&download.0)
        .map_err(DownloadError::io(format!("creating {}", download.0.display())))?;
    fetch_into(http, task, &link, max_bytes, &mut file).await?;
    let limits = UnpackLimits { bytes_max: max_bytes, ..UnpackLimits::default() };
    let (out_owned, expected, key) = (out.to_owned(), record.result_digest, key.cloned());
    let unpacked = tokio::task::spawn_blocking(move || -> Result<(), DownloadError> {
        use std::io::Seek as _;
        file.rewind().map_err(DownloadError::io("reading the downloaded result"))?;
        let unpacked = if let Some(key) = key.filter(|_| sealed) {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut file, &mut bytes)
                .map_err(DownloadError::io("reading the downloaded result"))?;
            let plain = xiebao_results::sealed::open(&key, &bytes)
                .map_err(|e| DownloadError::Sealed { reason: e.to_string() })?;
            unpack_verified(plain.as_slice(), &out_owned, &limits, expected)
        } else {
            unpack_verified(std::io::BufReader::new(file), &out_owned, &limits, expected)
        };
        unpacked.map_err(|source| DownloadError::Refused {
            task,
            out: out_owned,
            source: Box::new(source),
        })?;
        Ok(())
    })
    .await;
    drop(download);
    unpacked.map_err(|e| DownloadError::Io {
        what: "the unpacking task failed".into(),
        source: std::io::Error::other(e.to_string()),
    })??;
    Ok((cid, expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_as_people_say_them() {
        assert_eq!(grouped(3_000_000_000), "3,000,000,000");
        assert_eq!(grouped(999), "999");
        assert_eq!(limit_text(1 << 30), "1 GiB");
        assert_eq!(limit_text(64 << 20), "64 MiB");
        assert_eq!(limit_text(1_000), "1,000 bytes");
    }

    #[test]
    fn a_link_must_end_in_a_content_id() {
        let error = link_cid("http://x/v1/results/not-a-cid").unwrap_err();
        assert!(error.to_string().contains("does not end in a content id"), "{error}");
    }
}
