//! Results encrypted for their beneficiary: ECIES over secp256k1 (the `ecies` crate: an
//! ephemeral secp256k1 key, HKDF-SHA256 of the shared point, AES-256-GCM), so a result can be
//! sealed to the public key of the beneficiary's Ethereum account and opened only with that
//! account's key. No home-made cryptography.

use xiebao_types::SecretKey;

/// Encrypting or decrypting failed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The public key is not a SEC1 secp256k1 point.
    #[error("not a secp256k1 public key ({len} bytes; expected 33 or 65)")]
    BadPublicKey {
        /// Bytes given.
        len: usize,
    },
    /// The ciphertext is damaged or not for this key.
    #[error("cannot open the sealed result: it is damaged or sealed for another key")]
    CannotOpen,
}

/// Seals `plaintext` for the holder of `public_key` (33 or 65 SEC1 bytes).
///
/// # Errors
/// [`SealError::BadPublicKey`].
pub fn seal(public_key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    ecies::encrypt(public_key, plaintext)
        .map_err(|_| SealError::BadPublicKey { len: public_key.len() })
}

/// Opens a sealed result with the beneficiary's key.
///
/// # Errors
/// [`SealError::CannotOpen`] when the bytes were altered or sealed for another key.
pub fn open(key: &SecretKey, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    ecies::decrypt(key.to_bytes().as_slice(), sealed).map_err(|_| SealError::CannotOpen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_beneficiary_opens_and_tampering_is_detected() {
        let beneficiary = SecretKey::from_label("beneficiary");
        let other = SecretKey::from_label("other");
        let result = b"the requester's secret frames".to_vec();
        let sealed = seal(&beneficiary.public_key(), &result).unwrap();
        assert_ne!(sealed, result);
        assert_eq!(open(&beneficiary, &sealed).unwrap(), result);
        // Each sealing uses a fresh ephemeral key.
        assert_ne!(seal(&beneficiary.public_key(), &result).unwrap(), sealed);
        assert!(matches!(open(&other, &sealed), Err(SealError::CannotOpen)));
        let mut damaged = sealed;
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert!(matches!(open(&beneficiary, &damaged), Err(SealError::CannotOpen)));
        assert!(matches!(seal(&[1, 2, 3], &result), Err(SealError::BadPublicKey { len: 3 })));
    }
}
