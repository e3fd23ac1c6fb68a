//! secp256k1 keys, recoverable signatures and the Ethereum message rules around them.

use std::fmt;

use alloy_primitives::{Address, B256, Bytes, Signature, U256, eip191_hash_message};
use k256::ecdsa::SigningKey;

/// A signature could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Neither 65 bytes (r, s, v) nor 64 bytes (EIP-2098 r, vs).
    #[error("signature must be 65 bytes (r,s,v) or 64 bytes (EIP-2098), got {len} bytes")]
    BadLength {
        /// Length given.
        len: usize,
    },
    /// `v` is not one of 0, 1, 27, 28.
    #[error("signature v must be 0, 1, 27 or 28, got {v}")]
    BadV {
        /// The `v` byte.
        v: u8,
    },
    /// The curve rejects the signature (r or s out of range, no point).
    #[error("signature does not recover to any public key")]
    Unrecoverable,
    /// Not the one canonical form required of transaction signatures.
    #[error("transaction signatures must be 65 bytes with v = 27 or 28 and a low s (EIP-2)")]
    NotCanonical,
    /// The private key bytes are not a valid secp256k1 scalar.
    #[error("private key is not a valid secp256k1 scalar (zero or ≥ the curve order)")]
    BadPrivateKey,
    /// The bytes are not a SEC1-encoded secp256k1 public key.
    #[error("not a secp256k1 public key (33 or 65 SEC1 bytes), got {len} bytes")]
    BadPublicKey {
        /// Length given.
        len: usize,
    },
}

/// The Ethereum address of a SEC1-encoded secp256k1 public key (compressed or not).
///
/// # Errors
/// [`SignatureError::BadPublicKey`] when the bytes are not a point on the curve.
pub fn public_key_address(sec1: &[u8]) -> Result<Address, SignatureError> {
    let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(sec1)
        .map_err(|_| SignatureError::BadPublicKey { len: sec1.len() })?;
    let point = key.to_encoded_point(false);
    Ok(Address::from_raw_public_key(&point.as_bytes()[1..]))
}

/// Parses a 65-byte `(r, s, v)` or a 64-byte EIP-2098 `(r, vs)` signature.
///
/// `v ∈ {0, 1}` is treated as `{27, 28}`, as PoCo's signature verifier does.
///
/// # Errors
/// [`SignatureError::BadLength`] or [`SignatureError::BadV`].
pub fn parse_signature(sig: &[u8]) -> Result<Signature, SignatureError> {
    match sig.len() {
        65 => {
            let v = sig[64];
            let parity = match v {
                0 | 27 => false,
                1 | 28 => true,
                _ => return Err(SignatureError::BadV { v }),
            };
            Ok(Signature::from_bytes_and_parity(&sig[..64], parity))
        }
        64 => Ok(Signature::from_erc2098(sig)),
        len => Err(SignatureError::BadLength { len }),
    }
}

/// Recovers the address that signed `hash` (no prefix added).
///
/// # Errors
/// Any [`SignatureError`] of [`parse_signature`], or [`SignatureError::Unrecoverable`].
pub fn recover(hash: &B256, sig: &[u8]) -> Result<Address, SignatureError> {
    let signature = parse_signature(sig)?;
    if signature.r().is_zero() || signature.s().is_zero() || signature.r() >= SECP256K1_N {
        return Err(SignatureError::Unrecoverable);
    }
    signature.recover_address_from_prehash(hash).map_err(|_| SignatureError::Unrecoverable)
}

/// Recovers the signer of a transaction signature, which has exactly one accepted form:
/// 65 bytes, `v ∈ {27, 28}` and `s` in the lower half of the curve order (EIP-2), so a
/// transaction's bytes, and hence its id, cannot be altered without the key.
///
/// # Errors
/// [`SignatureError::NotCanonical`], or any error of [`recover`].
pub fn recover_canonical(hash: &B256, sig: &[u8]) -> Result<Address, SignatureError> {
    if sig.len() != 65 || !matches!(sig[64], 27 | 28) {
        return Err(SignatureError::NotCanonical);
    }
    let s = U256::from_be_slice(&sig[32..64]);
    if s > SECP256K1_N >> 1 {
        return Err(SignatureError::NotCanonical);
    }
    recover(hash, sig)
}

/// Recovers the signer of an `eth_sign` (EIP-191 personal message) signature over a 32-byte hash:
/// the message signed is `"\x19Ethereum Signed Message:\n32" ‖ hash`.
///
/// # Errors
/// As [`recover`].
pub fn recover_eth_signed(hash: &B256, sig: &[u8]) -> Result<Address, SignatureError> {
    recover(&eth_signed_message_hash(hash), sig)
}

/// `keccak256("\x19Ethereum Signed Message:\n32" ‖ hash)`.
pub fn eth_signed_message_hash(hash: &B256) -> B256 {
    eip191_hash_message(hash)
}

/// The order n of the secp256k1 group.
const SECP256K1_N: U256 = U256::from_be_bytes([
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
]);

/// A secp256k1 private key, with the Ethereum address it controls.
#[derive(Clone)]
pub struct SecretKey {
    key: SigningKey,
    address: Address,
}

impl SecretKey {
    /// Builds a key from its 32 bytes.
    ///
    /// # Errors
    /// [`SignatureError::BadPrivateKey`] when the bytes are zero or not below the curve order.
    pub fn from_bytes(bytes: &B256) -> Result<Self, SignatureError> {
        let key = SigningKey::from_bytes(bytes.as_slice().into())
            .map_err(|_| SignatureError::BadPrivateKey)?;
        let address = Address::from_private_key(&key);
        Ok(Self { key, address })
    }

    /// A key derived deterministically from a label, for tests, demos and benchmarks only.
    pub fn from_label(label: &str) -> Self {
        let mut seed = alloy_primitives::keccak256(label.as_bytes());
        loop {
            if let Ok(key) = Self::from_bytes(&seed) {
                return key;
            }
            seed = alloy_primitives::keccak256(seed);
        }
    }

    /// The 32 private-key bytes. Handle with care: never log them.
    pub fn to_bytes(&self) -> B256 {
        B256::from_slice(&self.key.to_bytes())
    }

    /// The Ethereum address of this key.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The public key, SEC1 uncompressed (65 bytes, `0x04 ‖ x ‖ y`): what others encrypt to.
    pub fn public_key(&self) -> Bytes {
        Bytes::from(self.key.verifying_key().to_encoded_point(false).as_bytes().to_vec())
    }

    /// Signs a 32-byte hash as is, returning 65 bytes `r ‖ s ‖ v` with `v ∈ {27, 28}`.
    pub fn sign_hash(&self, hash: &B256) -> Bytes {
        let (sig, recid) = self
            .key
            .sign_prehash_recoverable(hash.as_slice())
            .expect("signing a 32-byte prehash cannot fail");
        let signature = Signature::from((sig, recid));
        Bytes::from(signature.as_bytes().to_vec())
    }

    /// Signs `hash` as an `eth_sign` personal message (see [`eth_signed_message_hash`]).
    pub fn eth_sign(&self, hash: &B256) -> Bytes {
        self.sign_hash(&eth_signed_message_hash(hash))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_keys_give_their_address_compressed_or_not() {
        let key = SecretKey::from_label("beneficiary");
        assert_eq!(public_key_address(&key.public_key()), Ok(key.address()));
        let compressed = k256::ecdsa::VerifyingKey::from_sec1_bytes(&key.public_key())
            .unwrap()
            .to_encoded_point(true);
        assert_eq!(public_key_address(compressed.as_bytes()), Ok(key.address()));
        assert_eq!(public_key_address(&[4; 10]), Err(SignatureError::BadPublicKey { len: 10 }));
    }

    #[test]
    fn known_key_has_known_address() {
        // The first default account of Ethereum development nodes.
        let key = SecretKey::from_bytes(&alloy_primitives::b256!(
            "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
        ))
        .unwrap();
        assert_eq!(
            key.address(),
            alloy_primitives::address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
        );
    }

    #[test]
    fn every_accepted_signature_form_recovers_the_signer() {
        let key = SecretKey::from_label("alice");
        let hash = alloy_primitives::keccak256(b"hello");
        let sig = key.sign_hash(&hash);
        assert_eq!(recover(&hash, &sig), Ok(key.address()));
        // v in {0, 1}
        let mut low_v = sig.to_vec();
        low_v[64] -= 27;
        assert_eq!(recover(&hash, &low_v), Ok(key.address()));
        // EIP-2098 compact form
        let compact = parse_signature(&sig).unwrap().as_erc2098();
        assert_eq!(recover(&hash, &compact), Ok(key.address()));
        // eth_sign
        assert_eq!(recover_eth_signed(&hash, &key.eth_sign(&hash)), Ok(key.address()));
    }

    #[test]
    fn malformed_signatures_are_rejected_with_the_reason() {
        let hash = B256::ZERO;
        assert_eq!(recover(&hash, &[0u8; 10]), Err(SignatureError::BadLength { len: 10 }));
        let mut bad_v = [1u8; 65];
        bad_v[64] = 37;
        assert_eq!(recover(&hash, &bad_v), Err(SignatureError::BadV { v: 37 }));
        assert_eq!(recover(&hash, &[0u8; 65]), Err(SignatureError::Unrecoverable));
    }

    #[test]
    fn transaction_signatures_have_one_form() {
        let key = SecretKey::from_label("alice");
        let hash = alloy_primitives::keccak256(b"tx");
        let sig = key.sign_hash(&hash);
        assert_eq!(recover_canonical(&hash, &sig), Ok(key.address()));
        let mut low_v = sig.to_vec();
        low_v[64] -= 27;
        assert_eq!(recover_canonical(&hash, &low_v), Err(SignatureError::NotCanonical));
        // The high-s twin of a valid signature recovers the same key but is refused.
        let parsed = parse_signature(&sig).unwrap();
        let high_s = SECP256K1_N - parsed.s();
        let mut twin = sig.to_vec();
        twin[32..64].copy_from_slice(&high_s.to_be_bytes::<32>());
        twin[64] = if sig[64] == 27 { 28 } else { 27 };
        assert_eq!(recover(&hash, &twin), Ok(key.address()));
        assert_eq!(recover_canonical(&hash, &twin), Err(SignatureError::NotCanonical));
    }
}
