//! Define Xiebao's Ethereum-compatible primitives, orders, EIP-712 hashes, transactions and their canonical codec.
//!
//! Everything that is hashed or signed anywhere in Xiebao is built here, from one codec
//! (RLP for transactions and state, the ABI/EIP-712 rules for orders and ids), so two
//! parts of the system can never disagree on the bytes behind a hash.

pub mod amount;
pub mod bridge;
pub mod crypto;
pub mod digest;
pub mod ids;
pub mod json;
pub mod order;
pub mod tag;
pub mod tx;

pub use alloy_primitives::{Address, B256, Bytes, U256, address, b256, keccak256};
pub use amount::{AmountError, Nrlc};
pub use crypto::{SecretKey, SignatureError};
pub use order::{
    AppOrder, DatasetOrder, Domain, OrderKind, OrderOperation, RequestOrder, SignedOrder,
    WorkerpoolOrder,
};
pub use tag::Tag;
pub use tx::{Call, SignedTransaction, Transaction};

#[doc(hidden)]
pub mod __private {
    pub use alloy_rlp;
}

/// Block time in whole seconds since the Unix epoch, as set by the block's proposer.
///
/// The protocol's only clock: every deadline is compared against it.
pub type Timestamp = u64;
