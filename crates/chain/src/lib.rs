//! Run a Xiebao validator: commonware simplex consensus with marshal over authenticated p2p, durable execution, JSON-RPC.
//!
//! [`run`] wires one validator: `authenticated::lookup` p2p between the genesis validators,
//! `buffered` block broadcast and marshal backfill, simplex consensus (ed25519, round-robin
//! leaders) wrapped by marshal's `Inline` verifier around [`app::App`], the
//! [`app::Finalizer`] that executes finalized blocks and writes them to the store, a
//! transaction relay channel, and the JSON-RPC server.

pub mod app;
pub mod block;
pub mod config;
pub mod epoch;
mod eth;
mod market;
mod poco;
pub mod rpc;
mod run;

use std::path::PathBuf;

pub use run::{
    Channels, QUOTA, consensus_key, max_message_size, open_chain, public_bytes, run,
    start_validator,
};

/// A validator cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A configuration file is unusable.
    #[error("config {path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The genesis and the keys or peers disagree.
    #[error("genesis: {0}")]
    Genesis(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] xiebao_store::StoreError),
}
