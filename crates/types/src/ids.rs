//! Identifiers and hashes derived exactly as PoCo v5 derives them (`abi.encodePacked` + keccak256).

use alloy_primitives::{Address, B256, U256, keccak256};

/// `dealid = keccak256(requestOrderHash ‖ uint256 consumed-before-match)`.
pub fn deal_id(request_hash: &B256, bot_first: U256) -> B256 {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(request_hash.as_slice());
    buf[32..].copy_from_slice(&bot_first.to_be_bytes::<32>());
    keccak256(buf)
}

/// `taskid = keccak256(dealid ‖ uint256 idx)`, idx absolute within the request order.
pub fn task_id(deal_id: &B256, idx: U256) -> B256 {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(deal_id.as_slice());
    buf[32..].copy_from_slice(&idx.to_be_bytes::<32>());
    keccak256(buf)
}

/// `resultHash = keccak256(taskid ‖ resultDigest)`.
pub fn result_hash(task_id: &B256, digest: &B256) -> B256 {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(task_id.as_slice());
    buf[32..].copy_from_slice(digest.as_slice());
    keccak256(buf)
}

/// `resultSeal = keccak256(worker ‖ taskid ‖ resultDigest)` (worker as 20 bytes).
pub fn result_seal(worker: &Address, task_id: &B256, digest: &B256) -> B256 {
    let mut buf = [0u8; 84];
    buf[..20].copy_from_slice(worker.as_slice());
    buf[20..52].copy_from_slice(task_id.as_slice());
    buf[52..].copy_from_slice(digest.as_slice());
    keccak256(buf)
}

/// The hash a workerpool owner (or TEE broker) `eth_sign`s to authorize a contribution:
/// `keccak256(worker ‖ taskid ‖ enclaveChallenge)` (addresses as 20 bytes).
pub fn authorization_hash(worker: &Address, task_id: &B256, enclave_challenge: &Address) -> B256 {
    let mut buf = [0u8; 72];
    buf[..20].copy_from_slice(worker.as_slice());
    buf[20..52].copy_from_slice(task_id.as_slice());
    buf[52..].copy_from_slice(enclave_challenge.as_slice());
    keccak256(buf)
}

/// The hash an enclave `eth_sign`s with its challenge key: `keccak256(resultHash ‖ resultSeal)`.
pub fn enclave_message_hash(result_hash: &B256, result_seal: &B256) -> B256 {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(result_hash.as_slice());
    buf[32..].copy_from_slice(result_seal.as_slice());
    keccak256(buf)
}

/// Address of the reward kitty: the first 20 bytes of `keccak256("iExecKitty")`, minus one,
/// i.e. `0x99c2268479b93fDe36232351229815DF80837e23`.
/// (A constant: every task's settlement pays the kitty, and the derivation is a hash.)
pub const fn kitty_address() -> Address {
    alloy_primitives::address!("99c2268479b93fDe36232351229815DF80837e23")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kitty_address_is_the_derivation() {
        let hash = keccak256(b"iExecKitty");
        let high = U256::from_be_slice(&hash[..20]) - U256::from(1);
        assert_eq!(kitty_address(), Address::from_slice(&high.to_be_bytes::<32>()[12..]));
    }
}
