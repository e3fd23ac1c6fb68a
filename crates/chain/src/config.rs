//! A network's genesis file and a validator's configuration file (both JSON).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use alloy_primitives::{Address, B256};
use serde::{Deserialize, Serialize};
use xiebao_node::{Block, Header, block::tx_root};
use xiebao_protocol::{Genesis, State};
use xiebao_types::{Nrlc, Timestamp};

use crate::ChainError;

/// One validator as genesis lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisValidator {
    /// Its Ethereum address (block proposer field, bridge signatures).
    pub address: Address,
    /// Its ed25519 consensus public key.
    pub consensus_key: B256,
}

/// A network's genesis: everything every node must agree on before the first block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisFile {
    /// The chain id (transactions and orders are bound to it).
    pub chain_id: u64,
    /// The EIP-712 `verifyingContract` orders are signed for.
    pub verifying_contract: Address,
    /// The governance account.
    pub authority: Address,
    /// Genesis time, seconds since the Unix epoch (the genesis block's timestamp).
    pub timestamp: Timestamp,
    /// Initial balances, nRLC.
    pub balances: Vec<(Address, Nrlc)>,
    /// The validator set.
    pub validators: Vec<GenesisValidator>,
    /// Categories: (name, description, T seconds); PoCo's XS…XL when absent.
    #[serde(default = "Genesis::default_categories")]
    pub categories: Vec<(String, String, u64)>,
    /// Imported worker scores.
    #[serde(default)]
    pub scores: Vec<(Address, u64)>,
    /// Blocks per consensus epoch; validator-set changes take effect at the next epoch.
    #[serde(default = "default_epoch_length")]
    pub epoch_length: u64,
}

fn default_epoch_length() -> u64 {
    Genesis::DEFAULT_EPOCH_LENGTH
}

impl GenesisFile {
    /// Reads a genesis file.
    ///
    /// # Errors
    /// [`ChainError::Config`] naming the file and the problem.
    pub fn load(path: &Path) -> Result<Self, ChainError> {
        read_json(path)
    }

    /// The protocol genesis (PoCo's default categories).
    pub fn protocol_genesis(&self) -> Genesis {
        Genesis {
            chain_id: self.chain_id,
            verifying_contract: self.verifying_contract,
            authority: self.authority,
            balances: self.balances.clone(),
            categories: self.categories.clone(),
            validators: self.validators.iter().map(|v| (v.address, v.consensus_key)).collect(),
            scores: self.scores.clone(),
            epoch_length: self.epoch_length,
        }
    }

    /// A genesis file holding a protocol genesis (its validators' consensus keys as given).
    pub fn from_protocol(genesis: &Genesis, timestamp: Timestamp) -> Self {
        Self {
            chain_id: genesis.chain_id,
            verifying_contract: genesis.verifying_contract,
            authority: genesis.authority,
            timestamp,
            balances: genesis.balances.clone(),
            validators: genesis
                .validators
                .iter()
                .map(|(address, key)| GenesisValidator { address: *address, consensus_key: *key })
                .collect(),
            categories: genesis.categories.clone(),
            scores: genesis.scores.clone(),
            epoch_length: genesis.epoch_length,
        }
    }

    /// The genesis state and block (height 0, no transactions).
    pub fn genesis_block(&self) -> (State, Block) {
        let state = State::genesis(&self.protocol_genesis());
        let header = Header {
            chain_id: self.chain_id,
            height: 0,
            parent: B256::ZERO,
            timestamp: self.timestamp,
            proposer: Address::ZERO,
            tx_root: tx_root([]),
            state_root: state.digest(),
        };
        (state, Block { header, txs: Vec::new() })
    }
}

/// Where a validator reaches another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerConfig {
    /// The peer's ed25519 consensus key.
    pub consensus_key: B256,
    /// Its p2p address.
    pub address: SocketAddr,
}

/// Consensus, block-building and retention settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// A proposer with an empty mempool waits this long for transactions before proposing
    /// an empty block (so an idle chain does not spin).
    pub empty_block_wait_ms: u64,
    /// How long validators wait for a leader's proposal before voting to skip its view.
    pub leader_timeout_ms: u64,
    /// How long validators wait for a notarized proposal to be certified.
    pub certification_timeout_ms: u64,
    /// Most transactions in one block.
    pub block_txs_max: usize,
    /// Keep only the last this-many finalized blocks (the state, receipts and the newest
    /// blocks stay); `None` keeps every block. A pruned node cannot serve the pruned blocks to
    /// a new node syncing from genesis.
    #[serde(default)]
    pub keep_blocks: Option<u64>,
    /// A leader waits this long before each proposal (0: propose as soon as asked). Set to
    /// emulate a fixed-interval chain such as iExec's sidechain (5 s blocks) in benchmarks;
    /// `leader_timeout_ms` must then exceed it.
    #[serde(default)]
    pub block_interval_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            empty_block_wait_ms: 400,
            leader_timeout_ms: 1_500,
            certification_timeout_ms: 2_000,
            block_txs_max: 2_000,
            keep_blocks: None,
            block_interval_ms: 0,
        }
    }
}

/// A validator's configuration file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeConfig {
    /// The genesis file (relative paths are relative to this config file).
    pub genesis: PathBuf,
    /// Where the node keeps its data.
    pub data_dir: PathBuf,
    /// File holding the ed25519 consensus key's 32-byte seed, hex.
    pub consensus_key_file: PathBuf,
    /// The p2p listen address.
    pub p2p_listen: SocketAddr,
    /// The JSON-RPC (HTTP and WebSocket) listen address.
    pub rpc_listen: SocketAddr,
    /// The Prometheus metrics listen address (`/metrics`), if any.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// Web origins browsers may call the RPC from (`*`: any; empty: none).
    #[serde(default = "NodeConfig::default_rpc_cors")]
    pub rpc_cors: Vec<String>,
    /// Every validator's p2p address (this node's own entry may be included).
    pub peers: Vec<PeerConfig>,
    /// Timing.
    #[serde(default)]
    pub timing: Timing,
    /// The bridge oracle this validator runs, if it takes part in the bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<OracleSettings>,
}

/// Where a validator's bridge oracle watches the mainchain, and the key it signs with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OracleSettings {
    /// The mainchain's JSON-RPC URL.
    pub ethereum_rpc: String,
    /// Confirmations a deposit's block needs before it is attested (the block counts as one).
    #[serde(default = "OracleSettings::default_confirmations")]
    pub confirmations: u64,
    /// The first mainchain block scanned for deposits (the contract's deployment block).
    #[serde(default)]
    pub from_block: u64,
    /// The validator's secp256k1 key (its genesis address), hex; relative to the config file.
    #[serde(default = "OracleSettings::default_key_file")]
    pub signer_key_file: PathBuf,
    /// How often both chains are polled, milliseconds.
    #[serde(default = "OracleSettings::default_poll_ms")]
    pub poll_ms: u64,
}

impl OracleSettings {
    /// Ethereum's usual safety margin.
    pub fn default_confirmations() -> u64 {
        12
    }

    fn default_key_file() -> PathBuf {
        PathBuf::from("signer.key")
    }

    fn default_poll_ms() -> u64 {
        500
    }
}

impl NodeConfig {
    /// Browsers may call a node's RPC from any origin: it serves public chain data and takes
    /// only signed transactions.
    pub fn default_rpc_cors() -> Vec<String> {
        vec!["*".to_owned()]
    }

    /// Reads a config file, resolving its relative paths against the file's folder.
    ///
    /// # Errors
    /// [`ChainError::Config`] naming the file and the problem.
    pub fn load(path: &Path) -> Result<Self, ChainError> {
        let mut config: Self = read_json(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let oracle_key = config.bridge.as_mut().map(|b| &mut b.signer_key_file);
        for p in [&mut config.genesis, &mut config.data_dir, &mut config.consensus_key_file]
            .into_iter()
            .chain(oracle_key)
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(config)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ChainError> {
    let bytes = std::fs::read(path).map_err(|e| ChainError::Config {
        path: path.to_owned(),
        reason: format!("cannot read: {e}"),
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ChainError::Config { path: path.to_owned(), reason: e.to_string() })
}

/// Reads a 32-byte hex seed (an optional `0x` prefix and surrounding whitespace allowed).
///
/// # Errors
/// [`ChainError::Config`] if the file is unreadable or not 32 bytes of hex.
pub fn read_seed(path: &Path) -> Result<[u8; 32], ChainError> {
    let text = std::fs::read_to_string(path).map_err(|e| ChainError::Config {
        path: path.to_owned(),
        reason: format!("cannot read: {e}"),
    })?;
    let text = text.trim();
    let text = text.strip_prefix("0x").unwrap_or(text);
    let bytes = alloy_primitives::hex::decode(text).map_err(|e| ChainError::Config {
        path: path.to_owned(),
        reason: format!("not hex: {e}"),
    })?;
    bytes.try_into().map_err(|b: Vec<u8>| ChainError::Config {
        path: path.to_owned(),
        reason: format!("a key seed is 32 bytes, this is {}", b.len()),
    })
}
