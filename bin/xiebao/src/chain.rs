//! `xiebao genesis`, `xiebao node`, `xiebao localnet` and `xiebao chain status`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use alloy_primitives::Address;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use xiebao_chain::config::{GenesisFile, NodeConfig, OracleSettings, Timing};
use xiebao_devnet::network::{
    FAUCET_RLC, GenesisBase, NewNode, NodeOptions, create_network, free_ports, localnet_configs,
    write_configs,
};
use xiebao_devnet::process::{local_url, spawn_node, stop_children, wait_for_rpc};
use xiebao_rpc::XiebaoApiClient;
use xiebao_types::Nrlc;

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
        #[arg(long, env = "XIEBAO_RPC", default_value = xiebao_sdk::config::DEFAULT_RPC)]
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
        key: crate::common::KeyArgs,
        #[command(flatten)]
        endpoint: crate::common::Endpoint,
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
        key: crate::common::KeyArgs,
        #[command(flatten)]
        endpoint: crate::common::Endpoint,
    },
}

/// Writes a new node's keys and config under `out`, from the network config `from`.
#[allow(clippy::print_stdout, reason = "the command's output")]
fn join(from: &Path, out: &Path, p2p: Option<SocketAddr>, json: bool) -> anyhow::Result<()> {
    let NewNode { config: config_path, address, consensus_key, p2p: p2p_listen, rpc } =
        xiebao_devnet::network::new_node(from, out, p2p)?;
    let ports = [p2p_listen, rpc];
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
    key: &crate::common::KeyArgs,
    endpoint: &crate::common::Endpoint,
) -> anyhow::Result<()> {
    let key = crate::common::signing_key(&key.key_file, key.password_file.as_deref())?;
    crate::common::client_runtime()?.block_on(async {
        let node = xiebao_sdk::client::Node::connect(&endpoint.rpc).await?;
        let applied = crate::common::send_call(&node, key, call, "it").await?;
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
        children.push(spawn_node(&std::env::current_exe()?, config)?);
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
    runtime.block_on(crate::common::wait_for_stop())?;
    stop_children(&mut children);
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
            writeln!(
                out,
                "hub {} (PoCo's accessors through eth_call; the orders' EIP-712 verifying contract)",
                status.verifying_contract
            )?;
            // How long ago by this machine's clock: the head is the chain's own clock.
            writeln!(
                out,
                "last block time {}",
                crate::common::when(status.timestamp, crate::common::local_now())
            )?;
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
