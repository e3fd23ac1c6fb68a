//! Signing keys from files: Ethereum V3 keystores (interoperable with other Ethereum tools)
//! or plain hex private keys. Passwords and keys are never printed or logged.

use std::path::{Path, PathBuf};

use alloy_primitives::B256;
use xiebao_types::SecretKey;

/// A key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// The file could not be read.
    #[error("cannot read key file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Neither a keystore nor a hex key.
    #[error(
        "file {path} is neither an Ethereum V3 keystore (JSON with `crypto`) nor a hex private key (64 hex digits, optional 0x)"
    )]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// A keystore needs a password and none was given.
    #[error(
        "keystore {path} is encrypted: give its password with --password-file or the XIEBAO_PASSWORD environment variable"
    )]
    PasswordRequired {
        /// The file.
        path: PathBuf,
    },
    /// The password does not open the keystore.
    #[error("wrong password for keystore {path}")]
    WrongPassword {
        /// The file.
        path: PathBuf,
    },
    /// The keystore is malformed.
    #[error("keystore {path} is malformed: {detail}")]
    BadKeystore {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        detail: String,
    },
    /// The key bytes are not a valid secp256k1 key.
    #[error("key in {path} is not a valid secp256k1 private key")]
    BadKey {
        /// The file.
        path: PathBuf,
    },
    /// Writing a keystore failed.
    #[error("cannot write keystore into {dir}: {detail}")]
    Write {
        /// The directory.
        dir: PathBuf,
        /// Why.
        detail: String,
    },
}

/// What a key file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFileKind {
    /// An Ethereum V3 keystore (encrypted).
    Keystore,
    /// A hex private key (plain).
    HexKey,
}

fn parse_hex_key(text: &str) -> Option<B256> {
    let hex = text.trim();
    let hex = hex.strip_prefix("0x").or_else(|| hex.strip_prefix("0X")).unwrap_or(hex);
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    hex.parse::<B256>().ok()
}

/// Tells a keystore from a hex key file.
///
/// # Errors
/// [`WalletError::Read`] or [`WalletError::UnknownFormat`].
pub fn key_file_kind(path: &Path) -> Result<KeyFileKind, WalletError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| WalletError::Read { path: path.to_owned(), source })?;
    if parse_hex_key(&text).is_some() {
        return Ok(KeyFileKind::HexKey);
    }
    let json: Option<serde_json::Value> = serde_json::from_str(&text).ok();
    let is_keystore = json
        .as_ref()
        .and_then(|v| v.as_object())
        .is_some_and(|o| o.contains_key("crypto") || o.contains_key("Crypto"));
    if is_keystore {
        Ok(KeyFileKind::Keystore)
    } else {
        Err(WalletError::UnknownFormat { path: path.to_owned() })
    }
}

/// Loads a signing key from a keystore (with `password`) or a hex key file.
///
/// # Errors
/// Any [`WalletError`], naming the file.
pub fn load_key(path: &Path, password: Option<&str>) -> Result<SecretKey, WalletError> {
    let bytes = match key_file_kind(path)? {
        KeyFileKind::HexKey => {
            let text = std::fs::read_to_string(path)
                .map_err(|source| WalletError::Read { path: path.to_owned(), source })?;
            parse_hex_key(&text)
                .ok_or_else(|| WalletError::UnknownFormat { path: path.to_owned() })?
        }
        KeyFileKind::Keystore => {
            let password =
                password.ok_or_else(|| WalletError::PasswordRequired { path: path.to_owned() })?;
            let key = eth_keystore::decrypt_key(path, password).map_err(|error| match error {
                eth_keystore::KeystoreError::MacMismatch => {
                    WalletError::WrongPassword { path: path.to_owned() }
                }
                other => {
                    WalletError::BadKeystore { path: path.to_owned(), detail: other.to_string() }
                }
            })?;
            if key.len() != 32 {
                return Err(WalletError::BadKey { path: path.to_owned() });
            }
            B256::from_slice(&key)
        }
    };
    SecretKey::from_bytes(&bytes).map_err(|_| WalletError::BadKey { path: path.to_owned() })
}

/// Writes `key` as an Ethereum V3 keystore (scrypt) named after its address into `dir`;
/// returns the file's path.
///
/// # Errors
/// [`WalletError::Write`].
pub fn create_keystore(
    key: &SecretKey,
    password: &str,
    dir: &Path,
) -> Result<PathBuf, WalletError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| WalletError::Write { dir: dir.to_owned(), detail: e.to_string() })?;
    let name = format!("{:x}.json", key.address());
    let mut rng = rand::rngs::OsRng;
    eth_keystore::encrypt_key(dir, &mut rng, key.to_bytes().as_slice(), password, Some(&name))
        .map_err(|e| WalletError::Write { dir: dir.to_owned(), detail: e.to_string() })?;
    Ok(dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystore_round_trips_and_rejects_a_wrong_password() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::from_label("wallet test");
        let path = create_keystore(&key, "correct horse", dir.path()).unwrap();
        assert_eq!(key_file_kind(&path).unwrap(), KeyFileKind::Keystore);
        assert_eq!(load_key(&path, Some("correct horse")).unwrap().address(), key.address());
        assert!(matches!(load_key(&path, Some("wrong")), Err(WalletError::WrongPassword { .. })));
        assert!(matches!(load_key(&path, None), Err(WalletError::PasswordRequired { .. })));
    }

    #[test]
    fn hex_key_files_load_with_or_without_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::from_label("hex");
        let hex = format!("{:x}", key.to_bytes());
        for (name, text) in [("a", format!("{hex}\n")), ("b", format!("  0x{hex}  "))] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            assert_eq!(load_key(&path, None).unwrap().address(), key.address());
        }
        let path = dir.path().join("bad");
        std::fs::write(&path, "hello").unwrap();
        assert!(matches!(load_key(&path, None), Err(WalletError::UnknownFormat { .. })));
    }
}
