//! `xiebao genesis`, `xiebao node`, `xiebao localnet` and `xiebao chain status`.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use alloy_primitives::{Address, B256};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use rand::RngCore;
use xiebao_chain::config::{
    GenesisFile, GenesisValidator, NodeConfig, OracleSettings, PeerConfig, Timing,
};
use xiebao_rpc::XiebaoApiClient;
use xiebao_types::Nrlc;
use xiebao_types::crypto::SecretKey;

/// `xiebao genesis`.
#[derive(Debug, Args)]
pub(crate) struct GenesisArgs {
    /// Number of validators.
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Folder to write `genesis.json` and each validator's keys into.
    #[arg(long)]
    out: PathBuf,
    /// Chain id.
    #[arg(long, default_value_t = 65_535)]
    chain_id: u64,
    /// Fund an account at genesis: `0xADDRESS=RLC` (repeatable). A faucet account is always
    /// created and funded with 1,000,000,000 RLC; its key is written to `faucet.key`.
    #[arg(long = "fund", value_name = "ADDRESS=RLC")]
    funds: Vec<String>,
    /// Where validator i is reached by the others, `HOST:PORT` (give one per validator, in
    /// order); each validator's config then listens on `0.0.0.0:PORT`. Without it the configs
    /// use free ports on 127.0.0.1.
    #[arg(long = "p2p", value_name = "HOST:PORT")]
    p2p: Vec<SocketAddr>,
    /// Blocks per consensus epoch (validator-set changes take effect at the next epoch).
    #[arg(long, default_value_t = xiebao_protocol::Genesis::DEFAULT_EPOCH_LENGTH)]
    epoch_length: u64,
    /// Print JSON: the genesis file, each validator's config and keys, the faucet.
    #[arg(long)]
    json: bool,
}

/// `xiebao node`.
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    /// The validator's config file (see `xiebao genesis` and `xiebao localnet`). Given
    /// several times, runs those validators together in this one process, one thread each (the
    /// chain benchmark's one-process network).
    #[arg(long, required = true)]
    config: Vec<PathBuf>,
    /// Once its RPC answers, print one JSON object (its URLs, listen addresses, data
    /// directory) on stdout; logs stay on stderr.
    #[arg(long)]
    json: bool,
}

/// `xiebao localnet`.
#[derive(Debug, Args)]
pub(crate) struct LocalnetArgs {
    /// Number of validators.
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Where the network lives; an existing one is restarted as it was.
    #[arg(long)]
    data_dir: PathBuf,
    /// Chain id of a new network.
    #[arg(long, default_value_t = 65_535)]
    chain_id: u64,
    /// Blocks per consensus epoch of a new network (validator-set changes take effect at the next epoch).
    #[arg(long, default_value_t = xiebao_protocol::Genesis::DEFAULT_EPOCH_LENGTH)]
    epoch_length: u64,
    /// Start a new network from this genesis file instead (chain id, authority, balances,
    /// categories, scores; its validators are replaced by the localnet's).
    #[arg(long)]
    genesis_template: Option<PathBuf>,
    /// Run every validator's bridge oracle against this mainchain JSON-RPC URL (a new
    /// network only; the authority then deploys and sets the bridge: `xiebao bridge deploy`).
    #[arg(long, value_name = "URL")]
    ethereum: Option<String>,
    /// Confirmations a mainchain deposit needs before the oracles attest it.
    #[arg(long, default_value_t = 2, requires = "ethereum")]
    confirmations: u64,
    /// Once every validator's RPC answers, print one JSON object (RPC and metrics URLs,
    /// pids, configs, the faucet key, the data directory) on stdout; the sentences go to
    /// stderr.
    #[arg(long)]
    json: bool,
}

/// `xiebao chain …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ChainCommand {
    /// Height, last block time, validators and sync state of a node.
    Status {
        /// The node's RPC URL.
        #[arg(long, env = "XIEBAO_RPC", default_value = crate::config::DEFAULT_RPC)]
        rpc: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a validator from the next epoch (the authority's key signs)
    AddValidator {
        /// Its Ethereum address (block proposer field, bridge signatures).
        #[arg(long)]
        address: Address,
        /// Its ed25519 consensus public key (32 bytes, hex).
        #[arg(long)]
        consensus_key: alloy_primitives::B256,
        /// Where the other validators reach it (IP:PORT).
        #[arg(long)]
        p2p: std::net::SocketAddr,
        #[command(flatten)]
        key: crate::bridge::KeyArgs,
        #[command(flatten)]
        endpoint: crate::account::Endpoint,
    },
    /// Prepare a new node (keys and config) to join a running network, from one of its
    /// validators' configs; prints what the authority runs to make it a validator
    Join {
        /// A config of the network's (genesis, peers and timing are taken from it).
        #[arg(long)]
        from: PathBuf,
        /// Folder for the new node's keys, config and data.
        #[arg(long)]
        out: PathBuf,
        /// Its p2p listen address (default: a free port on 127.0.0.1).
        #[arg(long, value_name = "IP:PORT")]
        p2p: Option<SocketAddr>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a validator from the next epoch (the authority's key signs)
    RemoveValidator {
        /// Its Ethereum address.
        #[arg(long)]
        address: Address,
        #[command(flatten)]
        key: crate::bridge::KeyArgs,
        #[command(flatten)]
        endpoint: crate::account::Endpoint,
    },
}

/// Writes a new node's keys and config under `out`, from the network config `from`.
#[allow(clippy::print_stdout, reason = "the command's output")]
fn join(from: &Path, out: &Path, p2p: Option<SocketAddr>, json: bool) -> anyhow::Result<()> {
    let network = NodeConfig::load(from)?;
    let config_path = out.join("config.json");
    if config_path.exists() {
        bail!("{} exists already; choose another --out", config_path.display());
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let out = std::fs::canonicalize(out)?;
    let consensus_seed = random_32();
    write_secret(&out.join("consensus.key"), &consensus_seed)?;
    let signer_seed = random_32();
    write_secret(&out.join("signer.key"), &signer_seed)?;
    let signer = SecretKey::from_bytes(&B256::from(signer_seed))
        .map_err(|e| anyhow::anyhow!("generated key unusable: {e}"))?;
    let consensus_key = xiebao_chain::public_bytes(&commonware_public(
        &xiebao_chain::consensus_key(&consensus_seed),
    ));
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
    let address = signer.address();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "config": config_path,
                "address": address,
                "consensus_key": consensus_key,
                "p2p": p2p_listen,
                "rpc": format!("http://{}", ports[1]),
            })
        );
    } else {
        println!("new node {address} (consensus key {consensus_key})");
        println!("  config {}", config_path.display());
        println!("  rpc    http://{}", ports[1]);
        println!("1. the authority adds it (from the next epoch):");
        println!(
            "   xiebao chain add-validator --address {address} --consensus-key {consensus_key} --p2p {p2p_listen} --key-file AUTHORITY.key --rpc URL"
        );
        println!("2. start it (it follows the chain until its epoch begins):");
        println!("   xiebao node --config {}", config_path.display());
    }
    Ok(())
}

/// Sends one governance call signed by the authority's key and says when it takes effect.
#[allow(clippy::print_stdout, reason = "the command's output")]
fn governance(
    call: xiebao_types::tx::Call,
    what: String,
    key: &crate::bridge::KeyArgs,
    endpoint: &crate::account::Endpoint,
) -> anyhow::Result<()> {
    let key = crate::secret::signing_key(&key.key_file, key.password_file.as_deref())?;
    crate::client_runtime()?.block_on(async {
        let node = xiebao_sdk::client::Node::connect(&endpoint.rpc).await?;
        let applied = crate::send_call(&node, key, call, "it").await?;
        let status = node.rpc.chain_status().await?;
        let from = status.epoch_length * (status.epoch + 1);
        if endpoint.json {
            println!(
                "{}",
                serde_json::json!({ "block": applied.height, "effective_from_block": from })
            );
        } else {
            println!("{what} (block {}); takes effect at block {from}", applied.height);
        }
        Ok(())
    })
}

/// Faucet balance at genesis, RLC.
const FAUCET_RLC: u64 = 1_000_000_000;

fn random_32() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

fn write_secret(path: &Path, bytes: &[u8; 32]) -> anyhow::Result<()> {
    std::fs::write(path, format!("0x{}\n", alloy_primitives::hex::encode(bytes)))
        .with_context(|| format!("writing {}", path.display()))
}

fn parse_fund(spec: &str) -> anyhow::Result<(Address, Nrlc)> {
    let (address, amount) = spec
        .split_once('=')
        .with_context(|| format!("--fund {spec}: expected ADDRESS=RLC, e.g. 0xabc…=1000"))?;
    let address: Address =
        address.parse().with_context(|| format!("--fund {spec}: {address} is not an address"))?;
    let rlc: u64 = amount
        .parse()
        .with_context(|| format!("--fund {spec}: {amount} is not a whole number of RLC"))?;
    Ok((address, Nrlc::rlc(rlc)))
}

/// What a new network's genesis starts from, before validators and the faucet are added.
pub(crate) enum GenesisBase {
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
fn create_network(out: &Path, count: usize, base: GenesisBase) -> anyhow::Result<GenesisFile> {
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
        let consensus_seed = random_32();
        write_secret(&dir.join("consensus.key"), &consensus_seed)?;
        let signer_seed = random_32();
        write_secret(&dir.join("signer.key"), &signer_seed)?;
        let signer = SecretKey::from_bytes(&B256::from(signer_seed))
            .map_err(|e| anyhow::anyhow!("generated key unusable: {e}"))?;
        let public = xiebao_chain::consensus_key(&consensus_seed);
        validators.push(GenesisValidator {
            address: signer.address(),
            consensus_key: xiebao_chain::public_bytes(&commonware_public(&public)),
        });
    }
    let faucet_seed = random_32();
    write_secret(&out.join("faucet.key"), &faucet_seed)?;
    let faucet = SecretKey::from_bytes(&B256::from(faucet_seed))
        .map_err(|e| anyhow::anyhow!("generated key unusable: {e}"))?;
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut genesis = match base {
        GenesisBase::Fresh { chain_id, funds, scores, epoch_length } => {
            if epoch_length < 2 {
                bail!("--epoch-length {epoch_length}: an epoch holds at least 2 blocks");
            }
            let authority_seed = random_32();
            write_secret(&out.join("authority.key"), &authority_seed)?;
            let authority = SecretKey::from_bytes(&B256::from(authority_seed))
                .map_err(|e| anyhow::anyhow!("generated key unusable: {e}"))?;
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

fn commonware_public(
    key: &commonware_cryptography::ed25519::PrivateKey,
) -> commonware_cryptography::ed25519::PublicKey {
    use commonware_cryptography::Signer as _;
    key.public_key()
}

pub(crate) fn genesis(args: &GenesisArgs) -> anyhow::Result<()> {
    let funds = args.funds.iter().map(|f| parse_fund(f)).collect::<anyhow::Result<Vec<_>>>()?;
    if !args.p2p.is_empty() && args.p2p.len() != args.validators {
        bail!(
            "--p2p was given {} times for {} validators: give one HOST:PORT per validator",
            args.p2p.len(),
            args.validators
        );
    }
    let base = GenesisBase::Fresh {
        chain_id: args.chain_id,
        funds,
        scores: Vec::new(),
        epoch_length: args.epoch_length,
    };
    let genesis = create_network(&args.out, args.validators, base)?;
    let (peers, listen) = if args.p2p.is_empty() {
        let ports = free_ports(args.validators)?;
        (ports.clone(), ports)
    } else {
        let listen = args.p2p.iter().map(|a| SocketAddr::from(([0, 0, 0, 0], a.port()))).collect();
        (args.p2p.clone(), listen)
    };
    let rpc = free_ports(args.validators)?;
    let configs =
        write_configs(&args.out, &genesis, &peers, &listen, &rpc, None, &NodeOptions::default())?;
    let mut out = std::io::stdout().lock();
    use std::io::Write as _;
    let genesis_path = args.out.join("genesis.json");
    let faucet = genesis.balances[0].0;
    if args.json {
        let validators: Vec<serde_json::Value> = genesis
            .validators
            .iter()
            .zip(&configs)
            .map(|(v, config)| {
                serde_json::json!({
                    "address": v.address,
                    "consensus_key": v.consensus_key,
                    "config": config,
                })
            })
            .collect();
        let summary = serde_json::json!({
            "genesis": genesis_path,
            "chain_id": genesis.chain_id,
            "authority": { "address": genesis.authority, "key_file": args.out.join("authority.key") },
            "faucet": {
                "address": faucet,
                "key_file": args.out.join("faucet.key"),
                "balance_nrlc": Nrlc::rlc(FAUCET_RLC).0,
            },
            "validators": validators,
        });
        writeln!(out, "{summary}")?;
        return Ok(());
    }
    writeln!(out, "genesis: {}", genesis_path.display())?;
    for config in &configs {
        writeln!(out, "config: {} (run: xiebao node --config {0})", config.display())?;
    }
    writeln!(out, "chain id {}; {} validators:", genesis.chain_id, genesis.validators.len())?;
    for (index, v) in genesis.validators.iter().enumerate() {
        writeln!(out, "  validator-{index}: {} (consensus key {})", v.address, v.consensus_key)?;
    }
    writeln!(out, "faucet: {faucet} holds {FAUCET_RLC} RLC (key in faucet.key)")?;
    Ok(())
}

pub(crate) fn node(args: &NodeArgs) -> anyhow::Result<()> {
    let configs = args
        .config
        .iter()
        .map(|path| Ok((path, NodeConfig::load(path)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    init_logs();
    for (path, config) in &configs {
        if let Some(bridge) = &config.bridge {
            start_oracle(bridge, config.rpc_listen)?;
        }
        if args.json {
            announce_node(path, config)?;
        }
    }
    // Each validator on a thread of its own (each runs its own runtime); the process ends
    // when the first one does.
    let (done, first) = std::sync::mpsc::channel();
    for (path, config) in configs {
        let done = done.clone();
        let name = format!("validator {}", path.display());
        std::thread::Builder::new().name(name.clone()).spawn(move || {
            let _ = done.send(xiebao_chain::run(config).with_context(|| name));
        })?;
    }
    drop(done);
    first.recv().context("every validator thread ended without a result")?
}

/// The URL a local client reaches a listen address at (an unspecified IP means loopback).
fn local_url(scheme: &str, listen: SocketAddr) -> String {
    let host =
        if listen.ip().is_unspecified() { "127.0.0.1".to_owned() } else { listen.ip().to_string() };
    format!("{scheme}://{host}:{}", listen.port())
}

/// Waits until `url` answers `chain_status` (polling every 100 ms, at most `timeout`).
async fn wait_for_rpc(url: &str, timeout: std::time::Duration) -> anyhow::Result<()> {
    let client = xiebao_rpc::http_client(url)?;
    let start = std::time::Instant::now();
    loop {
        match client.chain_status().await {
            Ok(_) => return Ok(()),
            Err(error) if start.elapsed() >= timeout => {
                bail!("{url} did not answer within {} s: {error}", timeout.as_secs())
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}

/// Prints the node's JSON summary (`node --json`) from a thread of its own once its RPC
/// answers, so that the validator starts unhindered; says on stderr if it never does.
#[allow(clippy::print_stdout, reason = "the command's output")]
fn announce_node(config_path: &Path, config: &NodeConfig) -> anyhow::Result<()> {
    let rpc = local_url("http", config.rpc_listen);
    let summary = serde_json::json!({
        "config": config_path,
        "rpc": rpc,
        "ws": local_url("ws", config.rpc_listen),
        "rpc_listen": config.rpc_listen,
        "p2p_listen": config.p2p_listen,
        "metrics": config.metrics_listen.map(|m| format!("{}/metrics", local_url("http", m))),
        "data_dir": config.data_dir,
        "pid": std::process::id(),
    });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new()
        .name("announce".into())
        .spawn(move || {
            match runtime.block_on(wait_for_rpc(&rpc, std::time::Duration::from_secs(600))) {
                Ok(()) => {
                    use std::io::Write as _;
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{summary}");
                    let _ = out.flush();
                }
                Err(error) => eprintln!("node --json: nothing printed: {error:#}"),
            }
        })
        .context("starting the node's announcer thread")?;
    Ok(())
}

/// Starts the validator's bridge oracle on its own thread, talking to this node's RPC.
fn start_oracle(settings: &OracleSettings, rpc: SocketAddr) -> anyhow::Result<()> {
    let key = xiebao_sdk::wallet::load_key(&settings.signer_key_file, None).with_context(|| {
        format!("the bridge oracle's key {}", settings.signer_key_file.display())
    })?;
    let host =
        if rpc.ip().is_unspecified() { "127.0.0.1".to_owned() } else { rpc.ip().to_string() };
    let url = format!("http://{host}:{}", rpc.port());
    let config = xiebao_bridge::oracle::OracleConfig {
        ethereum_rpc: settings.ethereum_rpc.clone(),
        confirmations: settings.confirmations,
        from_block: settings.from_block,
        poll: std::time::Duration::from_millis(settings.poll_ms),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new()
        .name("bridge-oracle".into())
        .spawn(move || runtime.block_on(xiebao_bridge::oracle::run(config, url, key)))
        .context("starting the bridge oracle")?;
    Ok(())
}

/// Logs to stderr, filter from `RUST_LOG` (default: warnings, and the node's own info).
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,xiebao_chain=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// `count` distinct free loopback ports for services started later, chosen below the kernel's
/// ephemeral range (`ip_local_port_range`) so that no outgoing connection made meanwhile (the
/// validators dial each other as they start) can take one first. All are held while choosing,
/// so none repeats. Falls back to port 0 (any free port) when that range is full.
pub(crate) fn free_ports(count: usize) -> anyhow::Result<Vec<SocketAddr>> {
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
pub(crate) const IEXEC_BLOCK_INTERVAL_MS: u64 = 5_000;
/// …of at most 32 transactions, standing in for its gas limit (≈ 4 transactions of ≈ 0.2 M gas
/// per task, 8 tasks per block).
pub(crate) const IEXEC_BLOCK_TXS_MAX: usize = 32;

/// The default timing, except that a leader waits `interval_ms` before each proposal (0: it
/// proposes as soon as asked) — the view timeouts leave it that long — and that a block holds
/// at most `block_txs_max` transactions.
pub(crate) fn block_timing(interval_ms: u64, block_txs_max: usize) -> Timing {
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
pub(crate) struct NodeOptions {
    /// Consensus and block-building settings.
    pub(crate) timing: Timing,
    /// The bridge oracle, if the validators run one.
    pub(crate) bridge: Option<OracleSettings>,
}

/// What `localnet` writes for scripts: every validator's RPC URL and config.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct LocalnetFile {
    /// Each validator's RPC URL.
    pub(crate) rpc: Vec<String>,
    /// Each validator's Prometheus metrics URL.
    pub(crate) metrics: Vec<String>,
    /// Each validator's config file.
    pub(crate) configs: Vec<PathBuf>,
}

/// Reads the network under `data_dir`, or creates one (genesis, keys, configs on free
/// loopback ports) with `validators` validators and the given extra balances.
pub(crate) fn localnet_configs(
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
fn write_configs(
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

/// Starts `xiebao node --config config`, logging to `node.log` beside the config.
pub(crate) fn spawn_node(config: &Path) -> anyhow::Result<Child> {
    spawn_nodes(&[config])
}

/// Starts one `xiebao node` process running the validators of `configs` (one thread each),
/// logging to the first one's folder (`node.log`).
pub(crate) fn spawn_nodes(configs: &[&Path]) -> anyhow::Result<Child> {
    let first = configs.first().context("no validator config to start")?;
    let dir = first.parent().unwrap_or(Path::new("."));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("node.log"))
        .with_context(|| format!("opening {}/node.log", dir.display()))?;
    let mut command = Command::new(std::env::current_exe()?);
    command.arg("node");
    for config in configs {
        command.arg("--config").arg(config);
    }
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting a validator process")
}

pub(crate) fn localnet(args: &LocalnetArgs) -> anyhow::Result<()> {
    let base = match &args.genesis_template {
        Some(path) => GenesisBase::Template(GenesisFile::load(path)?),
        None => GenesisBase::Fresh {
            chain_id: args.chain_id,
            funds: Vec::new(),
            scores: Vec::new(),
            epoch_length: args.epoch_length,
        },
    };
    let bridge = args.ethereum.as_ref().map(|url| OracleSettings {
        ethereum_rpc: url.clone(),
        confirmations: args.confirmations,
        from_block: 0,
        signer_key_file: PathBuf::from("signer.key"),
        poll_ms: 200,
    });
    let options = NodeOptions { timing: Timing::default(), bridge };
    let file = localnet_configs(&args.data_dir, args.validators, base, &options)?;
    let mut children = Vec::new();
    for config in &file.configs {
        children.push(spawn_node(config)?);
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    {
        use std::io::Write as _;
        // With --json the sentences are logs (stderr); stdout carries the one JSON object.
        let mut out: Box<dyn std::io::Write> = if args.json {
            Box::new(std::io::stderr().lock())
        } else {
            Box::new(std::io::stdout().lock())
        };
        for (index, (url, config)) in file.rpc.iter().zip(&file.configs).enumerate() {
            writeln!(
                out,
                "validator {index}: rpc {url} pid {} config {} metrics {}",
                children[index].id(),
                config.display(),
                file.metrics[index],
            )?;
        }
        writeln!(out, "faucet key: {}", args.data_dir.join("faucet.key").display())?;
        writeln!(out, "stop with Ctrl-C")?;
        out.flush()?;
    }
    if args.json {
        let ready = runtime.block_on(async {
            for url in &file.rpc {
                wait_for_rpc(url, std::time::Duration::from_secs(120)).await?;
            }
            anyhow::Ok(())
        });
        if let Err(error) = ready {
            stop_children(&mut children);
            return Err(error.context("the localnet did not come up"));
        }
        let validators: Vec<serde_json::Value> = (0..file.rpc.len())
            .map(|index| {
                serde_json::json!({
                    "rpc": file.rpc[index],
                    "metrics": file.metrics[index],
                    "config": file.configs[index],
                    "pid": children[index].id(),
                })
            })
            .collect();
        let summary = serde_json::json!({
            "rpc": file.rpc.first(),
            "validators": validators,
            "faucet_key": args.data_dir.join("faucet.key"),
            "data_dir": args.data_dir,
            "pid": std::process::id(),
        });
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{summary}")?;
        out.flush()?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(wait_for_stop())?;
    stop_children(&mut children);
    Ok(())
}

/// SIGTERMs each validator (they persist every finalized block as it comes) and reaps it.
fn stop_children(children: &mut [Child]) {
    for child in children.iter_mut() {
        let _ = Command::new("kill").arg(child.id().to_string()).status();
    }
    for child in children.iter_mut() {
        let _ = child.wait();
    }
}

/// Waits for Ctrl-C or SIGTERM.
pub(crate) async fn wait_for_stop() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    Ok(())
}

pub(crate) fn run(command: &ChainCommand) -> anyhow::Result<()> {
    match command {
        ChainCommand::Join { from, out, p2p, json } => join(from, out, *p2p, *json),
        ChainCommand::AddValidator { address, consensus_key, p2p, key, endpoint } => {
            let call = xiebao_types::tx::AddValidator {
                address: *address,
                consensus_key: *consensus_key,
                p2p: p2p.to_string(),
            };
            governance(call.into(), format!("validator {address} added"), key, endpoint)
        }
        ChainCommand::RemoveValidator { address, key, endpoint } => {
            let call = xiebao_types::tx::RemoveValidator { address: *address };
            governance(call.into(), format!("validator {address} removed"), key, endpoint)
        }
        ChainCommand::Status { rpc, json } => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let status = runtime.block_on(async {
                let client = xiebao_rpc::http_client(rpc)?;
                client.chain_status().await.with_context(|| format!("asking {rpc} for its status"))
            })?;
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            if *json {
                writeln!(out, "{}", serde_json::to_string(&status)?)?;
                return Ok(());
            }
            writeln!(
                out,
                "chain {} at height {} ({})",
                status.chain_id, status.height, status.head
            )?;
            writeln!(out, "last block time {} (unix seconds)", status.timestamp)?;
            writeln!(
                out,
                "sync: {}",
                if status.syncing {
                    format!("catching up to {}", status.finalized_tip)
                } else {
                    "up to date".to_owned()
                }
            )?;
            writeln!(out, "mempool: {} transactions", status.mempool_txs)?;
            let next = status.epoch_length * (status.epoch + 1);
            writeln!(
                out,
                "epoch {} ({} blocks each; the next starts at block {next})",
                status.epoch, status.epoch_length
            )?;
            let list = |out: &mut dyn std::io::Write, set: &[xiebao_rpc::ValidatorView]| {
                for v in set {
                    let me = if v.consensus_key == status.node_key { "  (this node)" } else { "" };
                    let p2p = if v.p2p.is_empty() { String::new() } else { format!(" {}", v.p2p) };
                    writeln!(out, "  {} {}{p2p}{me}", v.address, v.consensus_key)?;
                }
                std::io::Result::Ok(())
            };
            writeln!(
                out,
                "validators of epoch {} ({}):",
                status.epoch,
                status.epoch_validators.len()
            )?;
            list(&mut out, &status.epoch_validators)?;
            if status.validators != status.epoch_validators {
                writeln!(out, "from block {next} ({}):", status.validators.len())?;
                list(&mut out, &status.validators)?;
            }
            Ok(())
        }
    }
}
