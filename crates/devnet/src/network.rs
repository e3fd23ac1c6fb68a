//! A new network's files: validator keys, the genesis, every validator's config on free
//! loopback ports (`localnet.json` lists them), and a new node's keys to join a running network.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use alloy_primitives::{Address, B256};
use anyhow::{Context, bail};
use rand::RngCore;
use xiebao_chain::config::{
    GenesisFile, GenesisValidator, NodeConfig, OracleSettings, PeerConfig, Timing,
};
use xiebao_types::Nrlc;
use xiebao_types::crypto::SecretKey;

/// Faucet balance at genesis, RLC.
pub const FAUCET_RLC: u64 = 1_000_000_000;

/// 32 random bytes from the operating system (a new key's seed).
pub fn random_32() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// Writes a 32-byte secret as a `0x…` hex line.
///
/// # Errors
/// When the file cannot be written.
pub fn write_secret(path: &Path, bytes: &[u8; 32]) -> anyhow::Result<()> {
    std::fs::write(path, format!("0x{}\n", alloy_primitives::hex::encode(bytes)))
        .with_context(|| format!("writing {}", path.display()))
}

/// What a new network's genesis starts from, before validators and the faucet are added.
pub enum GenesisBase {
    /// A fresh chain with this id and a new authority key.
    Fresh {
        /// The chain id.
        chain_id: u64,
        /// Extra balances.
        funds: Vec<(Address, Nrlc)>,
        /// Initial worker scores.
        scores: Vec<(Address, u64)>,
        /// Blocks per consensus epoch.
        epoch_length: u64,
    },
    /// A genesis file's chain id, authority, balances, categories and scores.
    Template(GenesisFile),
}

/// Creates keys for `count` validators under `out/validator-i/` and a genesis file.
pub fn create_network(out: &Path, count: usize, base: GenesisBase) -> anyhow::Result<GenesisFile> {
    if count == 0 {
        bail!("a network needs at least 1 validator (got --validators 0)");
    }
    let genesis_path = out.join("genesis.json");
    if genesis_path.exists() {
        bail!("{} exists: refusing to overwrite a network's genesis", genesis_path.display());
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut validators = Vec::new();
    for index in 0..count {
        let dir = out.join(format!("validator-{index}"));
        std::fs::create_dir_all(&dir)?;
        let (signer, consensus_key) = node_keys(&dir)?;
        validators.push(GenesisValidator { address: signer.address(), consensus_key });
    }
    let faucet = new_key(&out.join("faucet.key"))?;
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut genesis = match base {
        GenesisBase::Fresh { chain_id, funds, scores, epoch_length } => {
            if epoch_length < 2 {
                bail!("--epoch-length {epoch_length}: an epoch holds at least 2 blocks");
            }
            let authority = new_key(&out.join("authority.key"))?;
            let mut balances: Vec<(Address, Nrlc)> = Vec::new();
            for (address, amount) in funds {
                if balances.iter().any(|(a, _)| *a == address) {
                    bail!("--fund {address}: the account is funded twice");
                }
                balances.push((address, amount));
            }
            GenesisFile {
                chain_id,
                verifying_contract: Address::repeat_byte(0x11),
                authority: authority.address(),
                timestamp,
                balances,
                validators: Vec::new(),
                categories: xiebao_protocol::Genesis::default_categories(),
                scores,
                epoch_length,
            }
        }
        GenesisBase::Template(template) => GenesisFile { timestamp, ..template },
    };
    genesis.balances.insert(0, (faucet.address(), Nrlc::rlc(FAUCET_RLC)));
    genesis.validators = validators;
    std::fs::write(&genesis_path, serde_json::to_vec_pretty(&genesis)?)?;
    Ok(genesis)
}

/// A new random secp256k1 key, written to `path` as hex.
fn new_key(path: &Path) -> anyhow::Result<SecretKey> {
    let seed = random_32();
    write_secret(path, &seed)?;
    SecretKey::from_bytes(&B256::from(seed))
        .map_err(|e| anyhow::anyhow!("generated key unusable: {e}"))
}

/// A node's new keys in `dir` (`signer.key`, `consensus.key`): its signer and its consensus
/// public key.
fn node_keys(dir: &Path) -> anyhow::Result<(SecretKey, B256)> {
    let consensus_seed = random_32();
    write_secret(&dir.join("consensus.key"), &consensus_seed)?;
    let signer = new_key(&dir.join("signer.key"))?;
    let public = commonware_public(&xiebao_chain::consensus_key(&consensus_seed));
    Ok((signer, xiebao_chain::public_bytes(&public)))
}

/// The ed25519 public key of a consensus key.
pub fn commonware_public(
    key: &commonware_cryptography::ed25519::PrivateKey,
) -> commonware_cryptography::ed25519::PublicKey {
    use commonware_cryptography::Signer as _;
    key.public_key()
}

/// `count` distinct free loopback ports for services started later, chosen below the kernel's
/// ephemeral range (`ip_local_port_range`) so that no outgoing connection made meanwhile (the
/// validators dial each other as they start) can take one first. All are held while choosing,
/// so none repeats. Falls back to port 0 (any free port) when that range is full.
pub fn free_ports(count: usize) -> anyhow::Result<Vec<SocketAddr>> {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next().and_then(|p| p.parse::<u16>().ok()))
        .unwrap_or(32_768);
    let (low, high) = (10_000u16, ephemeral_low.max(10_001));
    let mut held = Vec::with_capacity(count);
    let mut seed = u64::from(std::process::id())
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::from(d.subsec_nanos()));
    let mut attempts = 0;
    while held.len() < count {
        attempts += 1;
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let port = if attempts < 10_000 {
            low + u16::try_from((seed >> 33) % u64::from(high - low)).unwrap_or(0)
        } else {
            0
        };
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(listener);
        }
    }
    held.iter().map(|l| l.local_addr().context("finding a free loopback port")).collect()
}

/// iExec's sidechain profile (the baseline the benchmarks compare with): a block every 5 s…
pub const IEXEC_BLOCK_INTERVAL_MS: u64 = 5_000;
/// …of at most 32 transactions, standing in for its gas limit (≈ 4 transactions of ≈ 0.2 M gas
/// per task, 8 tasks per block).
pub const IEXEC_BLOCK_TXS_MAX: usize = 32;

/// The default timing, except that a leader waits `interval_ms` before each proposal (0: it
/// proposes as soon as asked) — the view timeouts leave it that long — and that a block holds
/// at most `block_txs_max` transactions.
pub fn block_timing(interval_ms: u64, block_txs_max: usize) -> Timing {
    let default = Timing::default();
    if interval_ms == 0 {
        return Timing { block_txs_max, ..default };
    }
    Timing {
        block_interval_ms: interval_ms,
        leader_timeout_ms: interval_ms + 3_000,
        certification_timeout_ms: interval_ms + 4_000,
        block_txs_max,
        ..default
    }
}

/// What every validator of a new network is configured with besides its addresses.
#[derive(Clone, Debug, Default)]
pub struct NodeOptions {
    /// Consensus and block-building settings.
    pub timing: Timing,
    /// The bridge oracle, if the validators run one.
    pub bridge: Option<OracleSettings>,
}

/// What `localnet` writes for scripts: every validator's RPC URL and config.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct LocalnetFile {
    /// Each validator's RPC URL.
    pub rpc: Vec<String>,
    /// Each validator's Prometheus metrics URL.
    pub metrics: Vec<String>,
    /// Each validator's config file.
    pub configs: Vec<PathBuf>,
}

/// Reads the network under `data_dir`, or creates one (genesis, keys, configs on free
/// loopback ports) with `validators` validators and the given extra balances.
pub fn localnet_configs(
    data_dir: &Path,
    validators: usize,
    base: GenesisBase,
    options: &NodeOptions,
) -> anyhow::Result<LocalnetFile> {
    let index_path = data_dir.join("localnet.json");
    if index_path.exists() {
        let bytes = std::fs::read(&index_path)?;
        return serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is damaged", index_path.display()));
    }
    let genesis = create_network(data_dir, validators, base)?;
    let mut p2p = Vec::new();
    let mut rpc = Vec::new();
    let mut metrics = Vec::new();
    let ports = free_ports(3 * validators)?;
    for chunk in ports.chunks(3) {
        p2p.push(chunk[0]);
        rpc.push(chunk[1]);
        metrics.push(chunk[2]);
    }
    let configs = write_configs(data_dir, &genesis, &p2p, &p2p, &rpc, Some(&metrics), options)?;
    let file = LocalnetFile {
        rpc: rpc.iter().map(|a| format!("http://{a}")).collect(),
        metrics: metrics.iter().map(|a| format!("http://{a}/metrics")).collect(),
        configs,
    };
    std::fs::write(&index_path, serde_json::to_vec_pretty(&file)?)?;
    Ok(file)
}

/// Writes `dir/validator-i/config.json` for every genesis validator: reached by the others at
/// `peers[i]`, listening on `listen[i]`, serving RPC on `rpc[i]` (and metrics on
/// `metrics[i]`); returns the paths.
pub fn write_configs(
    dir: &Path,
    genesis: &GenesisFile,
    peers: &[SocketAddr],
    listen: &[SocketAddr],
    rpc: &[SocketAddr],
    metrics: Option<&[SocketAddr]>,
    options: &NodeOptions,
) -> anyhow::Result<Vec<PathBuf>> {
    let peer_list: Vec<PeerConfig> = genesis
        .validators
        .iter()
        .zip(peers)
        .map(|(v, address)| PeerConfig { consensus_key: v.consensus_key, address: *address })
        .collect();
    let mut configs = Vec::new();
    for index in 0..genesis.validators.len() {
        let config = NodeConfig {
            genesis: PathBuf::from("../genesis.json"),
            data_dir: PathBuf::from("data"),
            consensus_key_file: PathBuf::from("consensus.key"),
            p2p_listen: listen[index],
            rpc_listen: rpc[index],
            metrics_listen: metrics.map(|m| m[index]),
            rpc_cors: NodeConfig::default_rpc_cors(),
            peers: peer_list.clone(),
            timing: options.timing.clone(),
            bridge: options.bridge.clone(),
        };
        let path = dir.join(format!("validator-{index}")).join("config.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&config)?)
            .with_context(|| format!("writing {}", path.display()))?;
        configs.push(path);
    }
    Ok(configs)
}

/// A node prepared to join a running network ([`new_node`]).
#[derive(Clone, Debug)]
pub struct NewNode {
    /// Its config file.
    pub config: PathBuf,
    /// Its signer's address (block proposer field, bridge signatures).
    pub address: Address,
    /// Its consensus public key.
    pub consensus_key: B256,
    /// Where the other validators reach it.
    pub p2p: SocketAddr,
    /// Its RPC listen address.
    pub rpc: SocketAddr,
}

/// Writes a new node's keys and config under `out`, from the network config `from` (genesis,
/// peers and timing are taken from it), listening for peers on `p2p` (default: a free
/// loopback port).
///
/// # Errors
/// When `out` already holds a config, or a file cannot be read or written.
pub fn new_node(from: &Path, out: &Path, p2p: Option<SocketAddr>) -> anyhow::Result<NewNode> {
    let network = NodeConfig::load(from)?;
    let config_path = out.join("config.json");
    if config_path.exists() {
        bail!("{} exists already; choose another --out", config_path.display());
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let out = std::fs::canonicalize(out)?;
    let (signer, consensus_key) = node_keys(&out)?;
    let ports = free_ports(2)?;
    let p2p_listen = p2p.unwrap_or(ports[0]);
    let config = NodeConfig {
        genesis: std::fs::canonicalize(&network.genesis)
            .with_context(|| format!("the genesis {}", network.genesis.display()))?,
        data_dir: out.join("data"),
        consensus_key_file: out.join("consensus.key"),
        p2p_listen,
        rpc_listen: ports[1],
        metrics_listen: None,
        rpc_cors: NodeConfig::default_rpc_cors(),
        peers: network.peers.clone(),
        timing: network.timing,
        bridge: None,
    };
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)
        .with_context(|| format!("writing {}", config_path.display()))?;
    Ok(NewNode {
        config: config_path,
        address: signer.address(),
        consensus_key,
        p2p: p2p_listen,
        rpc: ports[1],
    })
}
