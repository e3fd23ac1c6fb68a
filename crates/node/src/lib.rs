//! Order transactions into blocks and execute them: mempool, block format and executor of the Xiebao chain.
//!
//! This crate holds the chain's deterministic core that consensus drives: which transactions a
//! proposer may put in a block ([`mempool`]), what a block is ([`block`]), and how a block is
//! executed against the protocol state ([`executor`]). Networking, consensus and storage plug
//! in around it.
//!
//! **Invariant:** a block contains only transactions that apply successfully, in order; a
//! block with a failing transaction, or whose state root differs, is invalid and changes
//! nothing.

pub mod block;
pub mod executor;
pub mod mempool;

pub use block::{Block, Header};
pub use executor::{
    BlockError, KnownTxs, Proposal, Receipt, apply_block, apply_block_known, build_block,
    execute_block, execute_block_known, propose_block, verify_all, verify_all_known,
};
pub use mempool::{Mempool, MempoolError, MempoolLimits, Quota, SenderState};
