//! Blocks: a header committing to the transactions and the state after executing them.

use alloy_primitives::{Address, B256, Keccak256, keccak256};
use alloy_rlp::{Encodable, RlpDecodable, RlpEncodable};
use xiebao_types::{SignedTransaction, Timestamp};

/// A block header.
#[derive(Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Header {
    /// The chain.
    pub chain_id: u64,
    /// Height (genesis is 0).
    pub height: u64,
    /// Hash of the parent header.
    pub parent: B256,
    /// The proposer's time, seconds; never earlier than the parent's.
    pub timestamp: Timestamp,
    /// Who proposed it.
    pub proposer: Address,
    /// Commitment to the transactions (see [`tx_root`]).
    pub tx_root: B256,
    /// The state digest after executing the block, its end-of-block timers included.
    pub state_root: B256,
}

impl Header {
    /// The block's id: `keccak256(rlp(header))`.
    pub fn hash(&self) -> B256 {
        let mut buf = Vec::with_capacity(self.length());
        self.encode(&mut buf);
        keccak256(buf)
    }
}

/// A block: its header and transactions.
#[derive(Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// The transactions, in execution order.
    pub txs: Vec<SignedTransaction>,
}

/// `keccak256` over the transactions' ids in order.
pub fn tx_root(tx_hashes: impl IntoIterator<Item = B256>) -> B256 {
    let mut hasher = Keccak256::new();
    hasher.update(b"_XIEBAO_NODE_TX_ROOT");
    for hash in tx_hashes {
        hasher.update(hash);
    }
    hasher.finalize()
}
