//! Bridge RLC between Ethereum (the mainchain) and the Xiebao chain.
//!
//! - [`contracts`]: bindings of the mainchain `Rlc` token and `Bridge` contract, deployment,
//!   and their reverts explained in words.
//! - [`oracle`]: what every validator runs — attest confirmed deposits so the chain mints them
//!   on an M-of-N quorum, and sign the release of withdrawals burned on the chain.
//! - [`client`]: the user's side — deposit, withdraw (burn, collect signatures, release) and
//!   each transfer's stage.

pub mod client;
pub mod contracts;
pub mod oracle;

use std::path::PathBuf;

pub use alloy::providers::DynProvider;

/// Something on the way between the two chains failed.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The mainchain node refused or could not be reached.
    #[error("mainchain: {0}")]
    Mainchain(String),
    /// The Xiebao node refused or could not be reached.
    #[error("chain node: {0}")]
    Node(String),
    /// A compiled contract is missing or damaged.
    #[error("{}: {reason}", path.display())]
    Artifacts {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The request cannot be carried out as given.
    #[error("{0}")]
    Refused(String),
}
