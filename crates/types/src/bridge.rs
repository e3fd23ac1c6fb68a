//! The messages the mainchain bridge contract checks, computed exactly as it computes them.
//!
//! A release is signed as a raw ECDSA signature (no EIP-191 prefix) over
//! `keccak256(abi.encode(keccak256("XIEBAO_RELEASE_V1"), mainchainId, bridge, xiebaoChainId,
//! id, recipient, amount))`, every field one 32-byte ABI word.

use alloy_primitives::{Address, B256, U256, keccak256};

use crate::Nrlc;

/// What identifies the bridge a release message is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BridgeDomain {
    /// The mainchain's chain id.
    pub mainchain_id: u64,
    /// The bridge contract on the mainchain.
    pub contract: Address,
    /// This chain's id.
    pub xiebao_chain_id: u64,
}

/// The digest validators sign to release withdrawal `id` of `amount` to `recipient`.
pub fn release_digest(domain: &BridgeDomain, id: u64, recipient: Address, amount: Nrlc) -> B256 {
    let words: [B256; 7] = [
        keccak256(b"XIEBAO_RELEASE_V1"),
        U256::from(domain.mainchain_id).into(),
        domain.contract.into_word(),
        U256::from(domain.xiebao_chain_id).into(),
        U256::from(id).into(),
        recipient.into_word(),
        U256::from(amount.0).into(),
    ];
    keccak256(words.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_changes_the_digest() {
        let domain = BridgeDomain {
            mainchain_id: 31_337,
            contract: Address::repeat_byte(0xbb),
            xiebao_chain_id: 65_535,
        };
        let recipient = Address::repeat_byte(0x0a);
        let base = release_digest(&domain, 3, recipient, Nrlc(10));
        let variants = [
            release_digest(&BridgeDomain { mainchain_id: 1, ..domain }, 3, recipient, Nrlc(10)),
            release_digest(
                &BridgeDomain { contract: Address::repeat_byte(0xbc), ..domain },
                3,
                recipient,
                Nrlc(10),
            ),
            release_digest(&BridgeDomain { xiebao_chain_id: 1, ..domain }, 3, recipient, Nrlc(10)),
            release_digest(&domain, 4, recipient, Nrlc(10)),
            release_digest(&domain, 3, Address::repeat_byte(0x0b), Nrlc(10)),
            release_digest(&domain, 3, recipient, Nrlc(11)),
        ];
        for variant in variants {
            assert_ne!(variant, base);
        }
        // The ABI layout: seven words, the amount last.
        let mut encoded = Vec::new();
        encoded.extend_from_slice(keccak256(b"XIEBAO_RELEASE_V1").as_slice());
        for word in [31_337u64, 0, 65_535, 3, 0, 10] {
            encoded.extend_from_slice(&U256::from(word).to_be_bytes::<32>());
        }
        encoded[64 + 12..96].copy_from_slice(domain.contract.as_slice());
        encoded[160 + 12..192].copy_from_slice(recipient.as_slice());
        assert_eq!(keccak256(&encoded), base);
    }
}
