//! Bounded downloads: a task's sources (input files, apps, datasets) are streamed to a file,
//! hashed on the way, refused early on a declared length above the limit, stopped once they
//! exceed it or their time limit. Nothing a source sends is held whole in memory.
//!
//! **Invariant:** a download keeps at most one network chunk in memory, writes at most its byte
//! limit to disk, and leaves no file behind when it fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;

/// What a worker accepts from one task's download sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FetchLimits {
    /// Most input files in a task's params.
    pub(crate) input_files: usize,
    /// Most bytes of a task's input files together.
    pub(crate) input_bytes: u64,
    /// Largest app: a WebAssembly module or an OCI image archive.
    pub(crate) app_bytes: u64,
    /// Largest dataset.
    pub(crate) dataset_bytes: u64,
    /// Longest one download may take (setting up, never counted as execution time).
    pub(crate) timeout: Duration,
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self {
            input_files: 64,
            input_bytes: 1 << 30,
            app_bytes: 1 << 30,
            dataset_bytes: 1 << 30,
            timeout: crate::FETCH_TIMEOUT,
        }
    }
}

/// A download failed; each variant says which bound or step.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FetchError {
    /// The request or the body transfer failed.
    #[error("GET {url}: {detail}")]
    Transport { url: String, detail: String },
    /// The source answered with an error status.
    #[error("GET {url}: HTTP {status}")]
    Status { url: String, status: u16 },
    /// The source declared a length above the limit: nothing was read.
    #[error("GET {url}: the source declares {declared} bytes, above the limit of {limit} bytes")]
    Declared { url: String, declared: u64, limit: u64 },
    /// The source sent more than the limit: stopped there.
    #[error("GET {url}: the source sent more than the limit of {limit} bytes; stopped")]
    TooLarge { url: String, limit: u64 },
    /// The download took longer than its limit: stopped.
    #[error("GET {url}: not done within {limit:?}; stopped")]
    Timeout { url: String, limit: Duration },
    /// A result-store URL's bytes are not its content id.
    #[error("GET {url}: the bytes do not match the content id {cid}")]
    ContentId { url: String, cid: String },
    /// The file could not be written.
    #[error("{path}: {detail}")]
    Io { path: PathBuf, detail: String },
}

/// A completed download.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Downloaded {
    /// Bytes written.
    pub(crate) bytes: u64,
    /// Their sha256.
    pub(crate) sha256: [u8; 32],
}

/// Streams `url` into `dest` (created or truncated), at most `bytes_max` bytes within
/// `timeout`. A result-store URL (`…/v1/results/{cid}`) is checked against its content id.
/// On any error `dest` is removed.
///
/// # Errors
/// [`FetchError`] naming the bound or the step that failed.
pub(crate) async fn download(
    http: &reqwest::Client,
    url: &str,
    dest: &Path,
    bytes_max: u64,
    timeout: Duration,
) -> Result<Downloaded, FetchError> {
    let result = match tokio::time::timeout(timeout, stream_to(http, url, dest, bytes_max)).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::Timeout { url: url.to_owned(), limit: timeout }),
    };
    let result = result.and_then(|got| match url.rsplit_once("/v1/results/") {
        Some((_, cid)) if !cid_matches(cid, &got.sha256) => {
            Err(FetchError::ContentId { url: url.to_owned(), cid: cid.to_owned() })
        }
        _ => Ok(got),
    });
    if result.is_err() {
        let _ = tokio::fs::remove_file(dest).await;
    }
    result
}

async fn stream_to(
    http: &reqwest::Client,
    url: &str,
    dest: &Path,
    bytes_max: u64,
) -> Result<Downloaded, FetchError> {
    let transport = |e: reqwest::Error| FetchError::Transport {
        url: url.to_owned(),
        detail: e.without_url().to_string(),
    };
    let io = |e: std::io::Error| FetchError::Io { path: dest.to_owned(), detail: e.to_string() };
    let mut response = http.get(url).send().await.map_err(transport)?;
    if !response.status().is_success() {
        return Err(FetchError::Status { url: url.to_owned(), status: response.status().as_u16() });
    }
    if let Some(declared) = response.content_length()
        && declared > bytes_max
    {
        return Err(FetchError::Declared { url: url.to_owned(), declared, limit: bytes_max });
    }
    let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        bytes = bytes.saturating_add(chunk.len() as u64);
        if bytes > bytes_max {
            return Err(FetchError::TooLarge { url: url.to_owned(), limit: bytes_max });
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    Ok(Downloaded { bytes, sha256: hasher.finalize().into() })
}

/// Whether `text` is the CIDv1 (raw, sha2-256) of bytes whose sha256 is `sha256` — the result
/// store's addresses ([`xiebao_results::cid_of`]), checked without holding the bytes.
fn cid_matches(text: &str, sha256: &[u8; 32]) -> bool {
    const RAW: u64 = 0x55;
    const SHA2_256: u64 = 0x12;
    match cid::Cid::try_from(text) {
        Ok(cid) => {
            cid.version() == cid::Version::V1
                && cid.codec() == RAW
                && cid.hash().code() == SHA2_256
                && cid.hash().digest() == sha256
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ids_are_checked_from_the_sha256() {
        for bytes in [&b""[..], b"hello\n", &[7u8; 100_000]] {
            let sha: [u8; 32] = Sha256::digest(bytes).into();
            assert!(cid_matches(&xiebao_results::cid_of(bytes), &sha));
            assert!(!cid_matches(&xiebao_results::cid_of(b"other"), &sha));
        }
        assert!(!cid_matches("not a cid", &[0; 32]));
    }
}
