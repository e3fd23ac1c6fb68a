//! Signing keys from files: Ethereum V3 keystores (interoperable with other Ethereum tools)
//! or plain hex private keys. Passwords and keys are never printed or logged.

use std::path::{Path, PathBuf};

use alloy_primitives::{Address, B256};
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
    /// The mnemonic is not a valid English BIP-39 phrase.
    #[error(
        "not a valid BIP-39 mnemonic ({words} words; expected 12, 15, 18, 21 or 24 English words with a valid checksum)"
    )]
    BadMnemonic {
        /// Words given.
        words: usize,
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

/// A new random key (from the operating system's generator).
pub fn generate_key() -> SecretKey {
    use rand::RngCore;
    loop {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        if let Ok(key) = SecretKey::from_bytes(&B256::from(bytes)) {
            return key;
        }
    }
}

/// The key at `m/44'/60'/0'/0/{index}` of a BIP-39 mnemonic (no passphrase), as Ethereum
/// wallets derive their accounts.
///
/// # Errors
/// [`WalletError::BadMnemonic`].
pub fn key_from_mnemonic(phrase: &str, index: u32) -> Result<SecretKey, WalletError> {
    let words = phrase.split_whitespace().collect::<Vec<_>>().join(" ");
    let count = words.split(' ').filter(|w| !w.is_empty()).count();
    let mnemonic = bip39::Mnemonic::parse_in(bip39::Language::English, words.as_str())
        .map_err(|_| WalletError::BadMnemonic { words: count })?;
    let path: bip32::DerivationPath = format!("m/44'/60'/0'/0/{index}")
        .parse()
        .map_err(|_| WalletError::BadMnemonic { words: 0 })?;
    let xprv = bip32::XPrv::derive_from_path(mnemonic.to_seed(""), &path)
        .map_err(|_| WalletError::BadMnemonic { words: count })?;
    SecretKey::from_bytes(&B256::from(xprv.to_bytes()))
        .map_err(|_| WalletError::BadMnemonic { words: count })
}

/// The keystores in `dir`: (address, file), sorted by address. The address is read from the
/// keystore's `address` field (written by us and by geth-style tools) or its file name.
///
/// # Errors
/// [`WalletError::Read`] when the directory cannot be listed.
pub fn list_keystores(dir: &Path) -> Result<Vec<(Address, PathBuf)>, WalletError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(WalletError::Read { path: dir.to_owned(), source }),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if let Some(address) = keystore_address(&path) {
            out.push((address, path));
        }
    }
    out.sort();
    Ok(out)
}

/// The address a keystore file declares, if it is a keystore that declares one.
pub fn keystore_address(path: &Path) -> Option<Address> {
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let object = json.as_object()?;
    if !object.contains_key("crypto") && !object.contains_key("Crypto") {
        return None;
    }
    if let Some(address) = object.get("address").and_then(|a| a.as_str()) {
        let hex = address.strip_prefix("0x").unwrap_or(address);
        return hex.parse().ok();
    }
    let stem = path.file_stem()?.to_str()?;
    let tail = stem.rsplit("--").next()?;
    tail.parse().ok()
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
    let path = dir.join(&name);
    if path.exists() {
        return Err(WalletError::Write {
            dir: dir.to_owned(),
            detail: format!("a keystore for {} already exists: {}", key.address(), path.display()),
        });
    }
    eth_keystore::encrypt_key(dir, &mut rng, key.to_bytes().as_slice(), password, Some(&name))
        .map_err(|e| WalletError::Write { dir: dir.to_owned(), detail: e.to_string() })?;
    // Add the (public) address, as geth-style keystores carry it, so lists need no password.
    let write_error = |e: String| WalletError::Write { dir: dir.to_owned(), detail: e };
    let text = std::fs::read_to_string(&path).map_err(|e| write_error(e.to_string()))?;
    let mut json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| write_error(e.to_string()))?;
    json["address"] = serde_json::Value::String(format!("{:x}", key.address()));
    std::fs::write(&path, json.to_string()).map_err(|e| write_error(e.to_string()))?;
    Ok(path)
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
    fn mnemonic_derives_the_standard_first_account() {
        // The well-known development mnemonic's first account.
        let key =
            key_from_mnemonic("test test test test test test test test test test test junk", 0)
                .unwrap();
        assert_eq!(
            key.address(),
            alloy_primitives::address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
        );
        assert!(matches!(
            key_from_mnemonic("not a mnemonic", 0),
            Err(WalletError::BadMnemonic { words: 3 })
        ));
    }

    #[test]
    fn keystores_are_listed_by_address_without_a_password() {
        let dir = tempfile::tempdir().unwrap();
        let a = generate_key();
        let b = generate_key();
        create_keystore(&a, "x", dir.path()).unwrap();
        create_keystore(&b, "y", dir.path()).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a keystore").unwrap();
        let listed: Vec<Address> =
            list_keystores(dir.path()).unwrap().into_iter().map(|(a, _)| a).collect();
        let mut expected = vec![a.address(), b.address()];
        expected.sort();
        assert_eq!(listed, expected);
        assert!(matches!(create_keystore(&a, "x", dir.path()), Err(WalletError::Write { .. })));
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
