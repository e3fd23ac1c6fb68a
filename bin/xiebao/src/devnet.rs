//! `xiebao devnet`: a whole network on this machine in one command — validators, a result
//! store, a workerpool with its scheduler and workers, the demo apps deployed with their
//! orders — and, with `--demo`, a real Bag-of-Tasks job through it: a Mandelbrot picture
//! rendered tile by tile by the workers and assembled here.
//!
//! Every component is a child process of this one (`xiebao node`, `xiebao results serve`,
//! `xiebao scheduler`, `xiebao worker`), logging under the data directory. The network's
//! layout (ports, keys, addresses) is kept in `devnet.json`; running the command again on the
//! same directory resumes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, Bytes, U256};
use anyhow::{Context, bail};
use clap::Args;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use xiebao_apps::mandelbrot::Tiling;
use xiebao_protocol::{Event, Membership};
use xiebao_rpc::{EventFilter, XiebaoApiClient};
use xiebao_scheduler::api::{PoolApiClient, TaskState};
use xiebao_sdk::client::{Node, Sender, SenderOptions};
use xiebao_types::order::SignedOrder as _;
use xiebao_types::tx::{AppType, CreateApp, CreateWorkerpool, MatchOrders, PoolPolicy};
use xiebao_types::{AppOrder, DatasetOrder, Nrlc, RequestOrder, SecretKey, Tag, ids};

use crate::chain::{GenesisBase, free_ports, localnet_configs, spawn_node};

/// App price of the demo apps, nRLC per task.
const APP_PRICE: Nrlc = Nrlc(10_000_000);
/// The pool's price, nRLC per task.
const POOL_PRICE: Nrlc = Nrlc(20_000_000);
/// What each devnet account holds at genesis, RLC.
const ACCOUNT_RLC: u64 = 1_000;
/// What each worker bonds when it joins the pool, RLC.
const WORKER_STAKE_RLC: u64 = 10;

/// `xiebao devnet`.
#[derive(Debug, Args)]
pub(crate) struct DevnetArgs {
    /// Where the network lives (created on first use, resumed after).
    #[arg(long, default_value = "xiebao-devnet")]
    data_dir: PathBuf,
    /// Validators (one process each).
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Workers (one process each).
    #[arg(long, default_value_t = 3)]
    workers: usize,
    /// Replicates each worker runs at once.
    #[arg(long, default_value_t = 2)]
    slots: u32,
    /// Run the demo job: render a Mandelbrot picture as a bag of tasks, write it, exit.
    #[arg(long)]
    demo: bool,
    /// Keep the network running after the demo (stop with Ctrl-C).
    #[arg(long)]
    keep: bool,
    /// The demo's app: `mandelbrot` (a picture, one tile per task), `wordcount` (word counts
    /// over input chunks, one chunk per task) or `oci-wordcount` (the same in a podman container).
    #[arg(long, default_value = "mandelbrot")]
    app: String,
    /// Tasks in the demo's bag (picture tiles, or text chunks).
    #[arg(long, default_value_t = 64)]
    tasks: u64,
    /// Side of one tile, pixels.
    #[arg(long, default_value_t = 96)]
    tile_size: u32,
    /// Mandelbrot iterations per pixel (more: slower tasks).
    #[arg(long, default_value_t = 256)]
    max_iter: u32,
    /// Trust of the demo's request (1: one worker per task; more: replicated, PoCo consensus).
    #[arg(long, default_value_t = 1)]
    trust: u64,
    /// Score every worker starts with (genesis; only when the network is created).
    #[arg(long, default_value_t = 0)]
    initial_score: u64,
    /// Have the results encrypted for the requester (the beneficiary): workers seal them with
    /// its public key, the demo opens them with its key.
    #[arg(long)]
    encrypt: bool,
    /// Give up on the demo after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Print the demo's summary as JSON.
    #[arg(long)]
    json: bool,
    /// Test only: this many workers corrupt their outputs (lying workers).
    #[arg(long, hide = true, default_value_t = 0)]
    lying_workers: usize,
    /// How the network runs: `xiebao` (this project's defaults) or `iexec` (iExec's sidechain,
    /// the baseline benchmarks compare with: 5 s blocks of at most 32 transactions, one call
    /// per transaction, no contributeAndFinalize). The four options below override it.
    #[arg(long, value_enum, default_value_t = Profile::Xiebao)]
    profile: Profile,
    /// Most calls the scheduler and the workers pack into one transaction (1: one call per
    /// transaction) [default: 256; iexec profile: 1].
    #[arg(long, value_name = "N", value_parser = crate::pool::calls_per_tx)]
    max_calls_per_tx: Option<usize>,
    /// Trust-1 tasks take the trust > 1 path — contribute, reveal, finalize — instead of one
    /// contributeAndFinalize [iexec profile: on].
    #[arg(long)]
    no_contribute_and_finalize: bool,
    /// A validator proposes a block every this many milliseconds (0: as soon as it can); fixed
    /// when the network is created [default: 0; iexec profile: 5000].
    #[arg(long, value_name = "MS")]
    block_interval_ms: Option<u64>,
    /// Most transactions in one block; fixed when the network is created [default: 2000;
    /// iexec profile: 32].
    #[arg(long, value_name = "N", value_parser = block_txs)]
    block_txs_max: Option<usize>,
}

/// `devnet --profile`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Profile {
    /// This project's defaults: blocks as fast as consensus allows, batched transactions,
    /// contributeAndFinalize at trust 1.
    Xiebao,
    /// iExec's sidechain as a baseline: 5 s blocks of at most 32 transactions, one call per
    /// transaction, no contributeAndFinalize.
    Iexec,
}

/// `--block-txs-max`: a positive number of transactions.
fn block_txs(text: &str) -> Result<usize, String> {
    let txs: usize = text.parse().map_err(|e| format!("{e}: a number of transactions"))?;
    if txs == 0 {
        return Err("a block must be able to hold at least one transaction".into());
    }
    Ok(txs)
}

/// How the pool's components send their calls and how the validators make blocks, from the
/// profile and the options that override it.
#[derive(Clone, Debug)]
struct Settings {
    max_calls_per_tx: usize,
    contribute_and_finalize: bool,
    /// The validators' timing when the network is created.
    timing: xiebao_chain::config::Timing,
    /// Whether the timing was asked for (a profile or an option), so a resumed network made
    /// with another timing is refused rather than silently run as it was.
    timing_asked: bool,
}

impl DevnetArgs {
    fn settings(&self) -> Settings {
        let iexec = self.profile == Profile::Iexec;
        let default = xiebao_chain::config::Timing::default();
        let interval_ms = self.block_interval_ms.unwrap_or(if iexec {
            crate::chain::IEXEC_BLOCK_INTERVAL_MS
        } else {
            0
        });
        let txs_max = self.block_txs_max.unwrap_or(if iexec {
            crate::chain::IEXEC_BLOCK_TXS_MAX
        } else {
            default.block_txs_max
        });
        Settings {
            max_calls_per_tx: self.max_calls_per_tx.unwrap_or(if iexec {
                1
            } else {
                SenderOptions::DEFAULT_MAX_CALLS
            }),
            contribute_and_finalize: !(iexec || self.no_contribute_and_finalize),
            timing: crate::chain::block_timing(interval_ms, txs_max),
            timing_asked: iexec || self.block_interval_ms.is_some() || self.block_txs_max.is_some(),
        }
    }
}

/// `timing`'s blocks in words.
fn describe_blocks(timing: &xiebao_chain::config::Timing) -> String {
    let pace = match timing.block_interval_ms {
        0 => "blocks as fast as consensus allows".to_owned(),
        ms => format!("a block every {ms} ms"),
    };
    format!("{pace}, at most {} transactions each", timing.block_txs_max)
}

/// The timing a validator config file holds.
fn configured_timing(config: &Path) -> anyhow::Result<xiebao_chain::config::Timing> {
    let bytes = std::fs::read(config).with_context(|| format!("reading {}", config.display()))?;
    let config: xiebao_chain::config::NodeConfig = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is damaged", config.display()))?;
    Ok(config.timing)
}

/// A deployed demo app.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct DeployedApp {
    address: Address,
    order: AppOrder,
}

/// What `devnet.json` keeps.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Layout {
    rpc: Vec<String>,
    results_listen: String,
    scheduler_listen: String,
    workerpool: Address,
    apps: BTreeMap<String, DeployedApp>,
    keys: Keys,
    workers: Vec<WorkerLayout>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct WorkerLayout {
    address: Address,
    key_file: PathBuf,
    lying: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Keys {
    requester: PathBuf,
    app_owner: PathBuf,
    pool_owner: PathBuf,
    faucet: PathBuf,
}

/// The pids of the running components (`pids.json`), for operators and fault tests.
#[derive(Debug, Serialize, Deserialize)]
struct Pids {
    validators: Vec<u32>,
    results: u32,
    scheduler: u32,
    workers: Vec<u32>,
    scheduler_url: String,
    results_url: String,
    rpc: Vec<String>,
}

/// How a component process is started (again).
#[derive(Clone, Debug)]
enum Launch {
    /// `xiebao node --config` (logs beside its config).
    Node(PathBuf),
    /// `xiebao ARGS…`, logging to `logs/LOG`.
    Xiebao { args: Vec<String>, log: String },
}

/// A component and its process.
struct Component {
    name: String,
    launch: Launch,
    child: Child,
    restarts: u32,
}

/// Most restarts of one component before the devnet gives up on it.
const RESTARTS_MAX: u32 = 5;

/// The devnet's processes: restarted when they die, stopped (SIGTERM, then waited for) when
/// dropped.
struct Children {
    dir: PathBuf,
    all: Vec<Component>,
}

impl Children {
    fn new(dir: &Path) -> Self {
        Self { dir: dir.to_owned(), all: Vec::new() }
    }

    fn start(&mut self, name: impl Into<String>, launch: Launch) -> anyhow::Result<u32> {
        let child = self.launch(&launch)?;
        let pid = child.id();
        self.all.push(Component { name: name.into(), launch, child, restarts: 0 });
        Ok(pid)
    }

    fn launch(&self, launch: &Launch) -> anyhow::Result<Child> {
        match launch {
            Launch::Node(config) => spawn_node(config),
            Launch::Xiebao { args, log } => spawn(&self.dir, log, args),
        }
    }

    fn pids(&self, prefix: &str) -> Vec<u32> {
        self.all.iter().filter(|c| c.name.starts_with(prefix)).map(|c| c.child.id()).collect()
    }

    /// Restarts every component that exited; returns whether any was.
    fn supervise(&mut self) -> anyhow::Result<bool> {
        let mut restarted = false;
        for index in 0..self.all.len() {
            let Ok(Some(status)) = self.all[index].child.try_wait() else { continue };
            let component = &self.all[index];
            if component.restarts >= RESTARTS_MAX {
                bail!(
                    "{} exited ({status}) after {} restarts; see {}",
                    component.name,
                    component.restarts,
                    self.dir.join("logs").display()
                );
            }
            eprintln!("{} exited ({status}): restarting it", component.name);
            let child = self.launch(&component.launch)?;
            let component = &mut self.all[index];
            component.child = child;
            component.restarts += 1;
            restarted = true;
        }
        Ok(restarted)
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for component in self.all.iter().rev() {
            let pid = component.child.id().to_string();
            let _ = Command::new("kill").arg(&pid).status();
            // A stopped (SIGSTOP) process acts on SIGTERM only once continued: without this,
            // waiting for a hung component would never end.
            let _ = Command::new("kill").args(["-CONT", &pid]).status();
        }
        for component in &mut self.all {
            let _ = component.child.wait();
        }
    }
}

fn write_key(path: &Path) -> anyhow::Result<SecretKey> {
    if path.exists() {
        return Ok(xiebao_sdk::wallet::load_key(path, None)?);
    }
    let key = xiebao_sdk::wallet::generate_key();
    std::fs::write(path, format!("0x{}\n", alloy_primitives::hex::encode(key.to_bytes())))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(key)
}

fn spawn(data_dir: &Path, log: &str, args: &[String]) -> anyhow::Result<Child> {
    let log_path = data_dir.join("logs").join(log);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    Command::new(std::env::current_exe()?)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting `xiebao {}`", args.first().map_or("", String::as_str)))
}

/// Creates the network's files: validator configs, keys, genesis with every account funded.
fn create(args: &DevnetArgs) -> anyhow::Result<(Layout, bool)> {
    let dir = &args.data_dir;
    let layout_path = dir.join("devnet.json");
    if layout_path.exists() {
        let layout: Layout = serde_json::from_slice(&std::fs::read(&layout_path)?)
            .with_context(|| format!("{} is damaged", layout_path.display()))?;
        return Ok((layout, false));
    }
    if args.workers == 0 {
        bail!("a devnet needs at least 1 worker (got --workers 0)");
    }
    if args.lying_workers >= args.workers {
        bail!(
            "--lying-workers {} must leave an honest worker among --workers {}",
            args.lying_workers,
            args.workers
        );
    }
    let keys_dir = dir.join("keys");
    std::fs::create_dir_all(&keys_dir)?;
    std::fs::create_dir_all(dir.join("logs"))?;
    let keys = Keys {
        requester: keys_dir.join("requester.key"),
        app_owner: keys_dir.join("app-owner.key"),
        pool_owner: keys_dir.join("pool-owner.key"),
        faucet: dir.join("chain").join("faucet.key"),
    };
    let mut funds = Vec::new();
    for path in [&keys.requester, &keys.app_owner, &keys.pool_owner] {
        funds.push((write_key(path)?.address(), Nrlc::rlc(ACCOUNT_RLC)));
    }
    let mut workers = Vec::new();
    let mut scores = Vec::new();
    for i in 0..args.workers {
        let key_file = keys_dir.join(format!("worker-{i}.key"));
        let address = write_key(&key_file)?.address();
        funds.push((address, Nrlc::rlc(ACCOUNT_RLC)));
        if args.initial_score > 0 {
            scores.push((address, args.initial_score));
        }
        workers.push(WorkerLayout { address, key_file, lying: i < args.lying_workers });
    }
    let chain = localnet_configs(
        &dir.join("chain"),
        args.validators,
        GenesisBase::Fresh {
            chain_id: 65_535,
            funds,
            scores,
            epoch_length: xiebao_protocol::Genesis::DEFAULT_EPOCH_LENGTH,
        },
        &crate::chain::NodeOptions { timing: args.settings().timing, bridge: None },
    )?;
    let pool_owner = xiebao_sdk::wallet::load_key(&keys.pool_owner, None)?;
    let pool = pool_call(&pool_owner);
    let ports = free_ports(2)?;
    let layout = Layout {
        rpc: chain.rpc,
        results_listen: ports[0].to_string(),
        scheduler_listen: ports[1].to_string(),
        workerpool: xiebao_protocol::workerpool_address(&pool),
        apps: BTreeMap::new(),
        keys,
        workers,
    };
    Ok((layout, true))
}

fn pool_call(owner: &SecretKey) -> CreateWorkerpool {
    CreateWorkerpool {
        owner: owner.address(),
        description: "devnet pool".into(),
        policy: PoolPolicy {
            worker_stake_ratio: 30,
            scheduler_reward_ratio: 1,
            min_worker_stake: Nrlc::rlc(1),
            unbonding_delay_s: 60,
        },
    }
}

/// Builds the OCI demo app's image archive (needs podman and a static busybox).
fn oci_image(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let build = dir.join("oci-build");
    let oci = xiebao_runtime::oci::OciRuntime::new(&build.join("state"))?;
    let context = xiebao_apps::oci_wordcount::write_context(
        &build.join("context"),
        Path::new(xiebao_apps::oci_wordcount::BUSYBOX),
    )
    .context("a static busybox is needed (apt-get install busybox-static)")?;
    let archive = build.join("oci-wordcount.tar");
    oci.build_archive(&context, "localhost/xiebao-oci-wordcount:1", &archive)?;
    let bytes = std::fs::read(&archive)?;
    let _ = std::fs::remove_dir_all(&build);
    Ok(bytes)
}

fn app_call(
    owner: &SecretKey,
    name: &str,
    app_type: AppType,
    bytes: &[u8],
    results_url: &str,
) -> CreateApp {
    let checksum = B256::from(<[u8; 32]>::from(Sha256::digest(bytes)));
    let cid = xiebao_results::cid_of(bytes);
    CreateApp {
        owner: owner.address(),
        name: name.into(),
        app_type,
        multiaddr: Bytes::from(format!("{results_url}/v1/results/{cid}").into_bytes()),
        checksum,
        mrenclave: Bytes::new(),
    }
}

/// Registers the pool and the demo apps, signs the app orders.
async fn deploy(layout: &mut Layout, dir: &Path, node: &Node) -> anyhow::Result<()> {
    let results_url = format!("http://{}", layout.results_listen);
    let store = xiebao_results::ResultStore::open(&dir.join("results"))?;
    let app_owner = xiebao_sdk::wallet::load_key(&layout.keys.app_owner, None)?;
    let pool_owner = xiebao_sdk::wallet::load_key(&layout.keys.pool_owner, None)?;
    let mut apps: Vec<(&str, AppType, Vec<u8>)> = vec![
        ("mandelbrot", AppType::Wasm, xiebao_apps::MANDELBROT_WASM.to_vec()),
        ("wordcount", AppType::Wasm, xiebao_apps::WORDCOUNT_WASM.to_vec()),
    ];
    match oci_image(dir) {
        Ok(archive) => apps.push(("oci-wordcount", AppType::Oci, archive)),
        Err(e) => eprintln!("the OCI demo app is not deployed: {e:#}"),
    }
    let mut calls = Vec::new();
    for (name, app_type, bytes) in apps {
        store.put(&bytes)?;
        let call = app_call(&app_owner, name, app_type, &bytes, &results_url);
        let address = xiebao_protocol::app_address(&call);
        let mut order = AppOrder {
            app: address,
            appprice: APP_PRICE.to_u256(),
            volume: U256::from(1_000_000_000u64),
            tag: Tag::NONE,
            datasetrestrict: Address::ZERO,
            workerpoolrestrict: Address::ZERO,
            requesterrestrict: Address::ZERO,
            salt: B256::from(rand::random::<[u8; 32]>()),
            sign: Bytes::new(),
        };
        order.sign_with(&node.domain, &app_owner);
        layout.apps.insert(name.to_owned(), DeployedApp { address, order });
        calls.push(call.into());
    }
    let sender = Sender::spawn(node.clone(), app_owner, SenderOptions::default());
    for result in sender.send_all(calls).await {
        result.context("registering the demo apps")?;
    }
    let pool_sender = Sender::spawn(node.clone(), pool_owner.clone(), SenderOptions::default());
    pool_sender.send(pool_call(&pool_owner).into()).await.context("registering the workerpool")?;
    // In the market, so `xiebao run` finds them.
    for app in layout.apps.values() {
        let json = serde_json::to_value(&app.order)?;
        xiebao_rpc::MarketApiClient::publish(&node.rpc, json, None)
            .await
            .context("publishing a demo app order in the market")?;
    }
    Ok(())
}

/// Waits until `probe` gives a value, restarting components that die meanwhile.
async fn wait_until<T, F, Fut>(
    what: &str,
    timeout: Duration,
    children: &mut Children,
    mut probe: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return Ok(value);
        }
        children.supervise()?;
        if start.elapsed() > timeout {
            bail!(
                "{what}: still not ready after {} s (see the logs under {})",
                timeout.as_secs(),
                children.dir.join("logs").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn say(json: bool, line: &str) {
    if !json {
        eprintln!("{line}");
    }
}

pub(crate) fn run(args: &DevnetArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        tokio::select! {
            result = devnet(args) => result,
            stop = crate::chain::wait_for_stop() => {
                say(args.json, "stopping the devnet");
                stop
            }
        }
    })
}

async fn devnet(args: &DevnetArgs) -> anyhow::Result<()> {
    let dir = args.data_dir.clone();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (mut layout, fresh) = create(args)?;
    std::fs::create_dir_all(dir.join("logs"))?;
    let mut children = Children::new(&dir);
    let started = Instant::now();
    say(
        args.json,
        &format!("devnet in {}: starting {} validators", dir.display(), layout.rpc.len()),
    );
    let chain_dir = dir.join("chain");
    let localnet: crate::chain::LocalnetFile =
        serde_json::from_slice(&std::fs::read(chain_dir.join("localnet.json"))?)?;
    let settings = args.settings();
    let first_config = localnet.configs.first().context("the devnet has no validator")?;
    let timing = configured_timing(first_config)?;
    let asked = &settings.timing;
    if settings.timing_asked
        && (timing.block_interval_ms, timing.block_txs_max)
            != (asked.block_interval_ms, asked.block_txs_max)
    {
        bail!(
            "{} was created with {}, not {}: a devnet's block timing is fixed when it is created (use another --data-dir)",
            dir.display(),
            describe_blocks(&timing),
            describe_blocks(asked),
        );
    }
    for (i, config) in localnet.configs.iter().enumerate() {
        children.start(format!("validator {i}"), Launch::Node(config.clone()))?;
    }
    let rpc = layout.rpc[0].clone();
    let (node, first) =
        wait_until("the chain", Duration::from_secs(120), &mut children, || async {
            let node = Node::connect(&rpc).await.ok()?;
            let status = node.rpc.chain_status().await.ok()?;
            Some((node, status.height))
        })
        .await?;
    // Live once it finalizes new blocks (restarted validators first agree on a view).
    wait_until("the chain's first blocks", Duration::from_secs(120), &mut children, || async {
        let status = node.rpc.chain_status().await.ok()?;
        (status.height >= first + 2).then_some(())
    })
    .await?;
    if fresh {
        say(args.json, "deploying the demo apps and the workerpool");
        deploy(&mut layout, &dir, &node).await?;
        std::fs::write(dir.join("devnet.json"), serde_json::to_vec_pretty(&layout)?)?;
    }
    let results_url = format!("http://{}", layout.results_listen);
    let scheduler_url = format!("ws://{}", layout.scheduler_listen);
    children.start(
        "result store",
        xiebao(
            "results.log",
            vec![
                "results".into(),
                "serve".into(),
                "--dir".into(),
                dir.join("results").display().to_string(),
                "--listen".into(),
                layout.results_listen.clone(),
                "--rpc".into(),
                rpc.clone(),
            ],
        ),
    )?;
    children.start(
        "scheduler",
        xiebao(
            "scheduler.log",
            vec![
                "scheduler".into(),
                "--rpc".into(),
                rpc.clone(),
                "--key-file".into(),
                layout.keys.pool_owner.display().to_string(),
                "--workerpool".into(),
                layout.workerpool.to_string(),
                "--listen".into(),
                layout.scheduler_listen.clone(),
                "--data-dir".into(),
                dir.join("scheduler").display().to_string(),
                "--price".into(),
                crate::account::format_rlc(POOL_PRICE).trim_end_matches(" RLC").to_owned(),
                "--max-calls-per-tx".into(),
                settings.max_calls_per_tx.to_string(),
            ]
            .into_iter()
            .chain(
                (!settings.contribute_and_finalize).then(|| "--no-contribute-and-finalize".into()),
            )
            .collect(),
        ),
    )?;
    for (i, worker) in layout.workers.iter().enumerate() {
        let mut worker_args = vec![
            "worker".into(),
            "--rpc".into(),
            layout.rpc[i % layout.rpc.len()].clone(),
            "--scheduler".into(),
            scheduler_url.clone(),
            "--results".into(),
            results_url.clone(),
            "--key-file".into(),
            worker.key_file.display().to_string(),
            "--work-dir".into(),
            dir.join(format!("worker-{i}")).display().to_string(),
            "--slots".into(),
            args.slots.to_string(),
            "--join".into(),
            layout.workerpool.to_string(),
            "--stake".into(),
            WORKER_STAKE_RLC.to_string(),
            "--max-calls-per-tx".into(),
            settings.max_calls_per_tx.to_string(),
        ];
        if worker.lying {
            worker_args.push("--corrupt-output".into());
        }
        children.start(format!("worker {i}"), xiebao(&format!("worker-{i}.log"), worker_args))?;
    }
    let urls = (scheduler_url.clone(), results_url.clone(), layout.rpc.clone());
    write_pids(&dir, &children, &urls)?;
    let pool_http = format!("http://{}", layout.scheduler_listen);
    let pool = xiebao_rpc::http_client(&pool_http)?;
    let want = layout.workers.len();
    wait_until("the workers", Duration::from_secs(120), &mut children, || async {
        let status = pool.pool_status().await.ok()?;
        (status.workers.len() >= want).then_some(())
    })
    .await?;
    write_pids(&dir, &children, &urls)?;
    say(
        args.json,
        &format!(
            "devnet ready in {:.1} s: rpc {rpc}, scheduler {scheduler_url}, results {results_url}, {want} workers",
            started.elapsed().as_secs_f64()
        ),
    );
    if children.supervise()? {
        write_pids(&dir, &children, &urls)?;
    }
    if args.demo {
        let facts = RunFacts {
            max_calls_per_tx: settings.max_calls_per_tx,
            contribute_and_finalize: settings.contribute_and_finalize,
            block_interval_ms: timing.block_interval_ms,
            block_txs_max: timing.block_txs_max,
            metrics: localnet.metrics.first().cloned(),
        };
        let summary = demo(args, &facts, &layout, &node, &pool, &mut children, &urls).await?;
        if args.json {
            #[allow(clippy::print_stdout, reason = "the command's output")]
            {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            }
        } else {
            #[allow(clippy::print_stdout, reason = "the command's output")]
            {
                println!("{}", summary.picture.display());
            }
        }
        if !args.keep {
            return Ok(());
        }
    }
    say(args.json, "the devnet runs; stop it with Ctrl-C");
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if children.supervise()? {
            write_pids(&dir, &children, &urls)?;
        }
    }
}

fn xiebao(log: &str, args: Vec<String>) -> Launch {
    Launch::Xiebao { args, log: log.to_owned() }
}

/// Scheduler, result store and node URLs.
type Urls = (String, String, Vec<String>);

fn write_pids(dir: &Path, children: &Children, urls: &Urls) -> anyhow::Result<()> {
    let pids = Pids {
        validators: children.pids("validator"),
        results: children.pids("result store").first().copied().unwrap_or(0),
        scheduler: children.pids("scheduler").first().copied().unwrap_or(0),
        workers: children.pids("worker"),
        scheduler_url: urls.0.clone(),
        results_url: urls.1.clone(),
        rpc: urls.2.clone(),
    };
    let path = dir.join("pids.json");
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&pids)?)?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

/// What the demo did, for people and for tests.
#[derive(Debug, Serialize)]
struct Summary {
    deal: B256,
    tasks: u64,
    task_ids: Vec<B256>,
    trust: u64,
    seconds: f64,
    first_result_seconds: f64,
    /// The demo's output: the picture, or the word counts.
    picture: PathBuf,
    /// The counting demos' total word count (checked against the inputs).
    words: Option<u64>,
    app_price: Nrlc,
    pool_price: Nrlc,
    scheduler_reward_ratio: u8,
    before: BTreeMap<String, Balance>,
    after: BTreeMap<String, Balance>,
    /// Per task (by index): every worker the scheduler handed it to.
    task_workers: Vec<Vec<Address>>,
    /// Per task: the contributions on chain (worker, proved, payout weight — floor(log2) of
    /// the worker's weight when it contributed —, stake locked).
    contributions: Vec<Vec<(Address, bool, u32, Nrlc)>>,
    /// The events that read or change scores, in chain order: (what, task index, worker).
    score_events: Vec<(ScoreEvent, u64, Address)>,
    workers: Vec<WorkerSummary>,
    /// CPU time (user + system) from the match to the last result in hand.
    cpu_us: CpuUse,
    /// Most calls the scheduler and the workers packed into one transaction.
    max_calls_per_tx: usize,
    /// Whether trust-1 tasks ended with contributeAndFinalize (else contribute, reveal,
    /// finalize).
    contribute_and_finalize: bool,
    /// The validators' block interval, ms (0: as fast as consensus allows).
    block_interval_ms: u64,
    /// Most transactions in one block.
    block_txs_max: usize,
    /// Transactions and calls finalized from just before the match to the end of the demo,
    /// as validator 0's metrics count them; `None` if they could not be read.
    finalized: Option<Finalized>,
}

/// What `/metrics` counts: transactions and calls in finalized blocks.
#[derive(Clone, Copy, Debug, Serialize)]
struct Finalized {
    txs: u64,
    calls: u64,
}

impl Finalized {
    /// Reads a validator's counters from its Prometheus endpoint.
    async fn read(http: &reqwest::Client, url: &str) -> Option<Self> {
        let text = http.get(url).send().await.ok()?.text().await.ok()?;
        let metric = |name: &str| {
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .find(|l| l.split(['{', ' ']).next() == Some(name))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<u64>().ok())
        };
        Some(Self {
            txs: metric("xiebao_finalized_txs_total")?,
            calls: metric("xiebao_finalized_calls_total")?,
        })
    }

    fn since(self, before: Self) -> Option<Self> {
        Some(Self {
            txs: self.txs.checked_sub(before.txs)?,
            calls: self.calls.checked_sub(before.calls)?,
        })
    }
}

/// How this run's components send calls and make blocks, and where the chain's counters are
/// read (validator 0's `/metrics`).
struct RunFacts {
    max_calls_per_tx: usize,
    contribute_and_finalize: bool,
    block_interval_ms: u64,
    block_txs_max: usize,
    metrics: Option<String>,
}

/// A score-related event of the demo's deal.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum ScoreEvent {
    /// A contribution (its payout weight comes from the worker's score at this point).
    Contribute,
    /// A winner of a replicated task: score + 1.
    Accurate,
    /// A loser: score cut to floor(2·score/3), stake seized.
    Faulty,
}

/// CPU time the pool's processes spent, µs; `None` where it cannot be measured (no `/proc`,
/// or the process was restarted meanwhile).
#[derive(Debug, Serialize)]
struct CpuUse {
    scheduler: Option<u64>,
    /// All workers together.
    workers: Option<u64>,
    /// The clock ticks per second `/proc` counts in.
    clock_ticks_per_s: u64,
}

/// The scheduler's and workers' pids and CPU times (µs) at one moment.
struct CpuSample {
    scheduler: Vec<(u32, Option<u64>)>,
    workers: Vec<(u32, Option<u64>)>,
}

impl CpuSample {
    fn take(children: &Children) -> Self {
        let read = |prefix: &str| {
            children.pids(prefix).into_iter().map(|pid| (pid, process_cpu_us(pid))).collect()
        };
        Self { scheduler: read("scheduler"), workers: read("worker") }
    }

    /// CPU used since `before`, per role; `None` for a role whose processes changed.
    fn since(&self, before: &Self) -> CpuUse {
        fn delta(now: &[(u32, Option<u64>)], then: &[(u32, Option<u64>)]) -> Option<u64> {
            if now.len() != then.len() || now.is_empty() {
                return None;
            }
            let mut sum = 0;
            for ((pid, now), (was, then)) in now.iter().zip(then) {
                if pid != was {
                    return None;
                }
                sum += now.as_ref()?.checked_sub(*then.as_ref()?)?;
            }
            Some(sum)
        }
        CpuUse {
            scheduler: delta(&self.scheduler, &before.scheduler),
            workers: delta(&self.workers, &before.workers),
            clock_ticks_per_s: clock_ticks_per_s(),
        }
    }
}

/// `getconf CLK_TCK`, read once; 100 (Linux's usual) if it cannot be asked.
fn clock_ticks_per_s() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// A process's CPU time (utime + stime of `/proc/PID/stat`, all its threads), µs.
fn process_cpu_us(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_cpu_ticks(&stat).map(|ticks| ticks * 1_000_000 / clock_ticks_per_s())
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line, clock ticks. The command
/// name (field 2, in parentheses) may hold spaces and parentheses, so fields are counted
/// after its last `)`.
fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state).
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

#[derive(Debug, Clone, Serialize)]
struct Balance {
    address: Address,
    free: Nrlc,
    frozen: Nrlc,
}

#[derive(Debug, Serialize)]
struct WorkerSummary {
    address: Address,
    lying: bool,
    score_before: u64,
    score_after: u64,
    membership: Option<Membership>,
}

async fn balances(node: &Node, layout: &Layout) -> anyhow::Result<BTreeMap<String, Balance>> {
    let mut named = vec![
        ("requester".to_owned(), key_address(&layout.keys.requester)?),
        ("app_owner".to_owned(), key_address(&layout.keys.app_owner)?),
        ("pool_owner".to_owned(), key_address(&layout.keys.pool_owner)?),
        ("kitty".to_owned(), ids::kitty_address()),
    ];
    for (i, w) in layout.workers.iter().enumerate() {
        named.push((format!("worker_{i}"), w.address));
    }
    let mut out = BTreeMap::new();
    for (name, address) in named {
        let account = node.rpc.account(address).await?;
        out.insert(name, Balance { address, free: account.free, frozen: account.frozen });
    }
    Ok(out)
}

fn key_address(path: &Path) -> anyhow::Result<Address> {
    Ok(xiebao_sdk::wallet::load_key(path, None)?.address())
}

fn tiling(args: &DevnetArgs) -> anyhow::Result<Tiling> {
    tiling_for(args.tasks, args.tile_size, args.max_iter)
}

/// The demo's picture for `n` tiles of `tile_size` px: the most square tiling, wider than tall.
pub(crate) fn tiling_for(n: u64, tile_size: u32, max_iter: u32) -> anyhow::Result<Tiling> {
    if n == 0 {
        bail!("--tasks must be at least 1");
    }
    let tiles_y =
        (1..=n).take_while(|x| x * x <= n).filter(|x| n.is_multiple_of(*x)).last().unwrap_or(1);
    let tiles_x = n / tiles_y;
    let side = u64::from(tile_size);
    let (tx, ty) = (u32::try_from(tiles_x)?, u32::try_from(tiles_y)?);
    let width = u32::try_from(tiles_x * side)?;
    let height = u32::try_from(tiles_y * side)?;
    Tiling::new(width, height, tx, ty, max_iter)
        .with_context(|| format!("--tasks {n} with --tile-size {side}"))
}

async fn demo(
    args: &DevnetArgs,
    facts: &RunFacts,
    layout: &Layout,
    node: &Node,
    pool: &xiebao_rpc::jsonrpsee::http_client::HttpClient,
    children: &mut Children,
    urls: &Urls,
) -> anyhow::Result<Summary> {
    let job = DemoJob::new(args, layout)?;
    let app = layout.apps.get(&args.app).with_context(|| {
        format!(
            "the {} app is not deployed on this devnet (deployed: {})",
            args.app,
            layout.apps.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })?;
    let requester = xiebao_sdk::wallet::load_key(&layout.keys.requester, None)?;
    let workerpool_order = pool
        .orders()
        .await
        .context("asking the scheduler for its workerpool order")?
        .into_iter()
        .next()
        .context("the scheduler publishes no workerpool order")?;
    let mut request = RequestOrder {
        app: app.address,
        appmaxprice: APP_PRICE.to_u256(),
        dataset: Address::ZERO,
        datasetmaxprice: U256::ZERO,
        workerpool: layout.workerpool,
        workerpoolmaxprice: POOL_PRICE.to_u256(),
        requester: requester.address(),
        volume: U256::from(job.tasks()),
        tag: Tag::NONE,
        category: U256::ZERO,
        trust: U256::from(args.trust),
        beneficiary: requester.address(),
        callback: Address::ZERO,
        params: job.params(args.encrypt.then(|| requester.public_key())),
        salt: B256::from(rand::random::<[u8; 32]>()),
        sign: Bytes::new(),
    };
    request.sign_with(&node.domain, &requester);
    let before = balances(node, layout).await?;
    let mut scores_before = Vec::new();
    for w in &layout.workers {
        scores_before.push(node.rpc.score(w.address).await?);
    }
    // Subscribe before matching so no result is missed.
    let ws = xiebao_rpc::ws_client(&node.ws_url()).await?;
    let filter = EventFilter {
        types: [
            "TaskFinalize",
            "TaskClaimed",
            "TaskContribute",
            "AccurateContribution",
            "FaultyContribution",
        ]
        .map(String::from)
        .to_vec(),
        ..EventFilter::default()
    };
    let mut events = ws.subscribe_events(filter).await?;
    let opener = args.encrypt.then(|| requester.clone());
    let sender = Sender::spawn(node.clone(), requester, SenderOptions::default());
    let orders = MatchOrders {
        app: app.order.clone(),
        dataset: DatasetOrder::none(),
        workerpool: workerpool_order,
        request,
    };
    say(args.json, &format!("requesting {} (trust {})", job.describe(), args.trust));
    let http = reqwest::Client::new();
    let metrics = facts.metrics.as_deref();
    let finalized_before = match metrics {
        Some(url) => Finalized::read(&http, url).await,
        None => None,
    };
    let cpu_before = CpuSample::take(children);
    let matched = Instant::now();
    let (deal, record, task_ids) = crate::run::match_deal(node, &sender, orders).await?;
    let index_of: BTreeMap<B256, u64> =
        task_ids.iter().enumerate().map(|(i, t)| (*t, i as u64)).collect();
    say(args.json, &format!("deal {deal}: {} tasks", task_ids.len()));
    let mut tiles: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut downloads = tokio::task::JoinSet::new();
    let mut failed: Vec<B256> = Vec::new();
    let mut score_events = Vec::new();
    let progress = Progress::new(args.json, task_ids.len() as u64);
    let mut first_result: Option<f64> = None;
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut last_report = Instant::now();
    while tiles.len() + failed.len() < task_ids.len() {
        tokio::select! {
            event = events.next() => {
                let view = event.context("the node closed the event stream")??;
                match view.event {
                    Event::TaskFinalize { task, results } if index_of.contains_key(&task) => {
                        let link = String::from_utf8_lossy(&results).into_owned();
                        let index = index_of[&task];
                        let http = http.clone();
                        let file = job.result_file();
                        let key = opener.clone();
                        downloads.spawn(async move {
                            (index, download_file(&http, task, &link, file, key.as_ref()).await)
                        });
                    }
                    Event::TaskClaimed { task } if index_of.contains_key(&task) => {
                        failed.push(task);
                        progress.failed();
                    }
                    Event::TaskContribute { task, worker, .. } if index_of.contains_key(&task) => {
                        score_events.push((ScoreEvent::Contribute, index_of[&task], worker));
                    }
                    Event::AccurateContribution { worker, task } if index_of.contains_key(&task) => {
                        score_events.push((ScoreEvent::Accurate, index_of[&task], worker));
                    }
                    Event::FaultyContribution { worker, task } if index_of.contains_key(&task) => {
                        score_events.push((ScoreEvent::Faulty, index_of[&task], worker));
                    }
                    _ => {}
                }
            }
            Some(done) = downloads.join_next(), if !downloads.is_empty() => {
                let (index, tile) = done?;
                tiles.push((index, tile?));
                first_result.get_or_insert(matched.elapsed().as_secs_f64());
                progress.done();
            }
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        if children.supervise()? {
            write_pids(&args.data_dir, children, urls)?;
        }
        if last_report.elapsed() > Duration::from_secs(2) {
            last_report = Instant::now();
            if let Ok(Some(view)) = pool.deal_view(deal).await {
                progress.waiting(&view.tasks);
            }
        }
        if Instant::now() > deadline {
            let view = pool.deal_view(deal).await.ok().flatten();
            let stuck: Vec<String> = view
                .map(|v| {
                    v.tasks
                        .into_iter()
                        .filter(|t| !t.state.is_final())
                        .take(10)
                        .map(|t| {
                            format!(
                                "  task {} ({}): {:?}; last: {}",
                                t.index, t.task, t.state, t.last_event
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let mut nodes = Vec::new();
            for url in &layout.rpc {
                let line = match xiebao_rpc::http_client(url)?.chain_status().await {
                    Ok(s) => format!(
                        "  node {url}: height {}, finalized tip {}, mempool {}",
                        s.height, s.finalized_tip, s.mempool_txs
                    ),
                    Err(e) => format!("  node {url}: {e}"),
                };
                nodes.push(line);
            }
            bail!(
                "the demo did not finish in {} s: {} of {} tasks done; unfinished:\n{}\nnodes:\n{}",
                args.timeout,
                tiles.len(),
                task_ids.len(),
                stuck.join("\n"),
                nodes.join("\n")
            );
        }
    }
    let seconds = matched.elapsed().as_secs_f64();
    let cpu_us = CpuSample::take(children).since(&cpu_before);
    progress.finish();
    if !failed.is_empty() {
        bail!("{} tasks failed and were refunded: {:?}", failed.len(), failed);
    }
    let out_dir = args.data_dir.join("demo");
    std::fs::create_dir_all(&out_dir)?;
    let (picture, words) = job.finish(&tiles, &out_dir, &deal)?;
    say(
        args.json,
        &format!(
            "{} tasks in {seconds:.2} s from match to last result (first result after {:.2} s): {}",
            task_ids.len(),
            first_result.unwrap_or(seconds),
            picture.display()
        ),
    );
    // Give the scheduler's view a moment to settle before reading who ran what.
    let view = pool.deal_view(deal).await?.context("the scheduler does not know the deal")?;
    let task_workers = view.tasks.iter().map(|t| t.workers.clone()).collect();
    let mut contributions = Vec::new();
    for task in &task_ids {
        let record =
            XiebaoApiClient::task(&node.rpc, *task).await?.context("task missing on chain")?;
        contributions.push(
            record
                .contributions
                .iter()
                .map(|c| {
                    let proved = c.status == xiebao_protocol::ContributionStatus::Proved;
                    (c.worker, proved, c.weight, c.stake)
                })
                .collect(),
        );
    }
    let after = balances(node, layout).await?;
    let mut workers = Vec::new();
    for (w, before_score) in layout.workers.iter().zip(scores_before) {
        workers.push(WorkerSummary {
            address: w.address,
            lying: w.lying,
            score_before: before_score,
            score_after: node.rpc.score(w.address).await?,
            membership: node.rpc.membership(w.address).await?,
        });
    }
    // Read last: every transaction of the bag is final by now (the demo has read each task's
    // final record), and nothing of the bag comes after.
    let finalized = match (metrics, finalized_before) {
        (Some(url), Some(before)) => {
            Finalized::read(&http, url).await.and_then(|after| after.since(before))
        }
        _ => None,
    };
    Ok(Summary {
        deal,
        tasks: task_ids.len() as u64,
        task_ids: task_ids.clone(),
        trust: args.trust,
        seconds,
        first_result_seconds: first_result.unwrap_or(seconds),
        picture,
        words,
        app_price: APP_PRICE,
        pool_price: POOL_PRICE,
        scheduler_reward_ratio: record.scheduler_reward_ratio,
        before,
        after,
        task_workers,
        contributions,
        score_events,
        workers,
        cpu_us,
        max_calls_per_tx: facts.max_calls_per_tx,
        contribute_and_finalize: facts.contribute_and_finalize,
        block_interval_ms: facts.block_interval_ms,
        block_txs_max: facts.block_txs_max,
        finalized,
    })
}

/// Downloads a result archive (at most the store's size limit, checked against its content id)
/// and takes the regular file `name` out of it.
async fn download_file(
    http: &reqwest::Client,
    task: B256,
    link: &str,
    name: &str,
    key: Option<&SecretKey>,
) -> anyhow::Result<Vec<u8>> {
    let max_bytes = xiebao_results::gateway::RESULT_SIZE_MAX_BYTES as u64;
    let mut bytes = crate::task::fetch_result(http, task, link, max_bytes).await?;
    if let Some(key) = key {
        bytes = xiebao_results::sealed::open(key, &bytes)
            .with_context(|| format!("opening the sealed result at {link}"))?;
    }
    let mut archive = tar::Archive::new(bytes.as_slice());
    for entry in archive.entries()? {
        let entry = entry?;
        // A regular file only: a sparse entry would expand far past the archive's size.
        if entry.header().entry_type().is_file() && entry.path()?.as_os_str() == name {
            let size = entry.size();
            if size > max_bytes {
                bail!("{name} in the result at {link} is {size} bytes, over {max_bytes}");
            }
            let mut file = Vec::new();
            std::io::Read::read_to_end(&mut std::io::Read::take(entry, size), &mut file)?;
            return Ok(file);
        }
    }
    bail!("the result at {link} holds no {name}")
}

/// What the demo computes.
enum DemoJob {
    /// A Mandelbrot picture, one tile per task.
    Picture(Tiling),
    /// Word counts, one text chunk (an input file in the result store) per task.
    Count {
        /// The chunks' URLs.
        urls: Vec<String>,
        /// Words in all chunks, counted here.
        expected: u64,
    },
}

/// Vocabulary of the generated text chunks.
const WORDS: [&str; 16] = [
    "task", "bag", "deal", "worker", "pool", "result", "proof", "stake", "order", "chain", "block",
    "score", "trust", "reveal", "seal", "kitty",
];

/// A deterministic text chunk of about 300 words.
fn chunk(index: u64) -> String {
    let mut state =
        index.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    let mut text = String::new();
    for i in 0..(250 + index % 100) {
        state =
            state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        text.push_str(WORDS[usize::try_from(state >> 60).unwrap_or(0)]);
        text.push(if i % 12 == 11 { '\n' } else { ' ' });
    }
    text
}

impl DemoJob {
    fn new(args: &DevnetArgs, layout: &Layout) -> anyhow::Result<Self> {
        if args.app == "mandelbrot" {
            return Ok(Self::Picture(tiling(args)?));
        }
        if args.tasks == 0 || args.tasks > 10_000 {
            bail!("--tasks must be between 1 and 10000 for --app {}, got {}", args.app, args.tasks);
        }
        let store = xiebao_results::ResultStore::open(&args.data_dir.join("results"))?;
        let mut urls = Vec::new();
        let mut expected = 0;
        for index in 0..args.tasks {
            let text = chunk(index);
            expected += text.split_whitespace().count() as u64;
            let cid = store.put(text.as_bytes())?;
            urls.push(format!("http://{}/v1/results/{cid}", layout.results_listen));
        }
        Ok(Self::Count { urls, expected })
    }

    fn tasks(&self) -> u64 {
        match self {
            Self::Picture(tiling) => tiling.tasks(),
            Self::Count { urls, .. } => urls.len() as u64,
        }
    }

    /// The request's params; with `sealed_for`, results are encrypted for that public key.
    fn params(&self, sealed_for: Option<Bytes>) -> String {
        let mut json = match self {
            Self::Picture(tiling) => match sealed_for {
                None => return tiling.params(),
                Some(_) => serde_json::json!({ "iexec_args": tiling.params() }),
            },
            Self::Count { urls, .. } => serde_json::json!({ "iexec_input_files": urls }),
        };
        if let Some(key) = sealed_for {
            json["iexec_result_encryption"] = true.into();
            json["result_public_key"] = alloy_primitives::hex::encode_prefixed(&key).into();
        }
        json.to_string()
    }

    fn describe(&self) -> String {
        match self {
            Self::Picture(t) => format!(
                "{} tasks of mandelbrot ({}×{} px in {}×{} tiles)",
                t.tasks(),
                t.width,
                t.height,
                t.tiles_x,
                t.tiles_y
            ),
            Self::Count { urls, expected } => {
                format!("word counts over {} chunks ({expected} words)", urls.len())
            }
        }
    }

    fn result_file(&self) -> &'static str {
        match self {
            Self::Picture(_) => xiebao_apps::mandelbrot::TILE_FILE,
            Self::Count { .. } => xiebao_apps::oci_wordcount::COUNTS_FILE,
        }
    }

    /// Writes the demo's output under `dir`; returns its path and, for counts, the total.
    fn finish(
        &self,
        results: &[(u64, Vec<u8>)],
        dir: &Path,
        deal: &B256,
    ) -> anyhow::Result<(PathBuf, Option<u64>)> {
        let short = &deal.to_string()[2..10];
        match self {
            Self::Picture(tiling) => {
                let png = tiling.assemble(results).context("assembling the picture")?;
                let path = dir.join(format!("mandelbrot-{short}.png"));
                std::fs::write(&path, png)?;
                Ok((path, None))
            }
            Self::Count { expected, .. } => {
                let mut words = 0;
                for (index, counts) in results {
                    let counts: serde_json::Value = serde_json::from_slice(counts)
                        .with_context(|| format!("task {index}'s counts are not JSON"))?;
                    words += counts["words"].as_u64().with_context(|| {
                        format!("task {index}'s counts have no words: {counts}")
                    })?;
                }
                if words != *expected {
                    bail!("the tasks counted {words} words; the chunks hold {expected}");
                }
                let path = dir.join(format!("wordcount-{short}.json"));
                let json = serde_json::json!({ "tasks": results.len(), "words": words });
                std::fs::write(&path, serde_json::to_vec_pretty(&json)?)?;
                Ok((path, Some(words)))
            }
        }
    }
}

/// The bag's progress: a bar on a terminal, a line per tenth otherwise.
pub(crate) struct Progress {
    bar: indicatif::ProgressBar,
    total: u64,
    quiet: bool,
}

impl Progress {
    pub(crate) fn new(quiet: bool, total: u64) -> Self {
        let bar = if quiet {
            indicatif::ProgressBar::hidden()
        } else {
            indicatif::ProgressBar::new(total)
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} done {msg} [{elapsed_precise}, eta {eta}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Self { bar, total, quiet }
    }

    pub(crate) fn done(&self) {
        self.bar.inc(1);
        let done = self.bar.position();
        if !self.quiet
            && self.bar.is_hidden()
            && (done * 10 / self.total.max(1)) != ((done - 1) * 10 / self.total.max(1))
        {
            eprintln!("{done}/{} tasks done", self.total);
        }
    }

    pub(crate) fn failed(&self) {
        self.bar.set_message("(some failed)");
    }

    pub(crate) fn waiting(&self, tasks: &[xiebao_scheduler::api::TaskView]) {
        let waiting = tasks
            .iter()
            .find_map(|t| match &t.state {
                TaskState::WaitingForWorker { why } => Some(format!("waiting: {why}")),
                _ => None,
            })
            .unwrap_or_default();
        let running = tasks.iter().filter(|t| matches!(t.state, TaskState::Running { .. })).count();
        self.bar.set_message(format!("{running} running {waiting}"));
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_utime_plus_stime_even_when_the_command_name_holds_spaces() {
        let stat = "4242 (xiebao (worker) 1) S 1 4242 4242 0 -1 4194560 2311 0 0 0 137 29 0 0 20 0 9 0 5125 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(137 + 29));
        assert_eq!(parse_stat_cpu_ticks("4242 (x) S 1 2"), None);
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        assert!(process_cpu_us(std::process::id()).is_some());
        assert_eq!(process_cpu_us(u32::MAX), None);
    }
}
