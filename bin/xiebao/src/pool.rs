//! `xiebao scheduler` and `xiebao worker`: a workerpool's two halves.

use std::net::SocketAddr;
use std::path::PathBuf;

use alloy_primitives::Address;
use anyhow::Context;
use clap::Args;
use xiebao_scheduler::api::Capabilities;
use xiebao_sdk::client::SenderOptions;

/// `xiebao scheduler`.
#[derive(Debug, Args)]
pub(crate) struct SchedulerArgs {
    /// The node's RPC URL.
    #[arg(long, env = "XIEBAO_RPC", default_value = xiebao_sdk::config::DEFAULT_RPC)]
    rpc: String,
    /// The workerpool's owner key (V3 keystore or hex key file).
    #[arg(long)]
    key_file: PathBuf,
    /// File holding the keystore's password (else XIEBAO_PASSWORD or a prompt).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// The workerpool.
    #[arg(long)]
    workerpool: Address,
    /// Where workers and requesters reach the scheduler (WebSocket and HTTP).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where the scheduler keeps its state (deals, published orders).
    #[arg(long)]
    data_dir: PathBuf,
    /// Price per task of the published workerpool order, RLC.
    #[arg(long, default_value = "0")]
    price: String,
    /// Highest trust the order offers.
    #[arg(long, default_value_t = 100)]
    trust: u64,
    /// Tasks the published workerpool order covers.
    #[arg(long, default_value_t = 1_000_000)]
    volume: u64,
    /// Category (work clock) of the published workerpool order.
    #[arg(long, default_value_t = 0)]
    category: u64,
    /// Most calls the scheduler packs into one transaction (initializations, finalizations;
    /// 1: one call per transaction, the batching baseline).
    #[arg(long, value_name = "N", default_value_t = SenderOptions::DEFAULT_MAX_CALLS, value_parser = crate::common::calls_per_tx)]
    max_calls_per_tx: usize,
    /// Trust-1 tasks take the trust > 1 path — the worker contributes, the scheduler asks for
    /// the reveal, the worker reveals, the scheduler finalizes — instead of one
    /// contributeAndFinalize (iExec's sidechain path, for baselines).
    #[arg(long)]
    no_contribute_and_finalize: bool,
    /// Seconds a replicate may take to start running (fetching the app, its image and the
    /// dataset) before its task goes to another worker.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    setup_timeout: u64,
    /// Once listening, print one JSON object (its URLs, the workerpool, the data directory)
    /// on stdout instead of the sentence; logs stay on stderr.
    #[arg(long)]
    json: bool,
}

/// `xiebao worker`.
#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    /// The node's RPC URL.
    #[arg(long, env = "XIEBAO_RPC", default_value = xiebao_sdk::config::DEFAULT_RPC)]
    rpc: String,
    /// The scheduler's URL (`ws://host:port`).
    #[arg(long, env = "XIEBAO_SCHEDULER")]
    scheduler: String,
    /// The result store's URL (`http://host:port`).
    #[arg(long, env = "XIEBAO_RESULTS")]
    results: String,
    /// The worker's key (V3 keystore or hex key file).
    #[arg(long)]
    key_file: PathBuf,
    /// File holding the keystore's password (else XIEBAO_PASSWORD or a prompt).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Where apps, inputs and outputs are kept.
    #[arg(long)]
    work_dir: PathBuf,
    /// Replicates run at once.
    #[arg(long, default_value_t = 2)]
    slots: u32,
    /// Announce a GPU.
    #[arg(long)]
    gpu: bool,
    /// Do not offer the OCI (podman) runtime even when podman works here.
    #[arg(long)]
    no_oci: bool,
    /// Join this workerpool at start (unless already a member), bonding --stake.
    #[arg(long, requires = "stake")]
    join: Option<Address>,
    /// Stake bonded when joining, RLC.
    #[arg(long)]
    stake: Option<String>,
    /// Most calls the worker packs into one transaction (its contributions and reveals;
    /// 1: one call per transaction, the batching baseline).
    #[arg(long, value_name = "N", default_value_t = SenderOptions::DEFAULT_MAX_CALLS, value_parser = crate::common::calls_per_tx)]
    max_calls_per_tx: usize,
    /// Test only: corrupt every output (a lying worker, for fault tests).
    #[arg(long, hide = true)]
    corrupt_output: bool,
    /// Once the scheduler lists this worker as connected, print one JSON object (its
    /// address, endpoints, work directory) on stdout; logs stay on stderr.
    #[arg(long)]
    json: bool,
}

fn init_logs(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

#[allow(clippy::print_stdout, reason = "the command prints where it serves")]
pub(crate) fn scheduler(args: &SchedulerArgs) -> anyhow::Result<()> {
    init_logs("warn,xiebao_scheduler=info");
    if args.volume == 0 {
        anyhow::bail!("--volume 0: the workerpool order must cover at least one task");
    }
    let key = crate::common::signing_key(&args.key_file, args.password_file.as_deref())?;
    let config = xiebao_scheduler::service::Config {
        rpc: args.rpc.clone(),
        key,
        workerpool: args.workerpool,
        listen: args.listen,
        data_dir: args.data_dir.clone(),
        order: xiebao_scheduler::service::OrderPolicy {
            price: crate::common::parse_rlc(&args.price)?,
            trust: args.trust,
            volume: args.volume,
            category: args.category,
            ..Default::default()
        },
        max_calls_per_tx: args.max_calls_per_tx,
        contribute_and_finalize: !args.no_contribute_and_finalize,
        setup_timeout: std::time::Duration::from_secs(args.setup_timeout),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let running =
            xiebao_scheduler::service::start(config).await.context("starting the scheduler")?;
        let address = running.address;
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "workerpool": args.workerpool,
                    "url": format!("ws://{address}"),
                    "http": format!("http://{address}"),
                    "listen": address,
                    "rpc": args.rpc,
                    "data_dir": args.data_dir,
                    "pid": std::process::id(),
                })
            );
        } else {
            println!("scheduler for {} on ws://{address}", args.workerpool);
        }
        use std::io::Write as _;
        std::io::stdout().flush()?;
        crate::common::wait_for_stop().await?;
        let _ = running.handle.stop();
        anyhow::Ok(())
    })
}

pub(crate) fn worker(args: &WorkerArgs) -> anyhow::Result<()> {
    init_logs("warn,xiebao_worker=info");
    let key = crate::common::signing_key(&args.key_file, args.password_file.as_deref())?;
    let address = key.address();
    let join = match (&args.join, &args.stake) {
        (Some(pool), Some(stake)) => Some((*pool, crate::common::parse_rlc(stake)?)),
        _ => None,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let config = xiebao_worker::Config {
        rpc: args.rpc.clone(),
        scheduler: args.scheduler.clone(),
        results: args.results.clone(),
        key,
        work_dir: args.work_dir.clone(),
        capabilities: Capabilities {
            slots: args.slots,
            cores: u32::try_from(cores).unwrap_or(u32::MAX),
            memory_mib: 0,
            runtimes: vec!["WASM".into()],
            gpu: args.gpu,
            tee: false,
        },
        fault: args.corrupt_output.then_some(xiebao_worker::Fault::CorruptOutput),
        oci: !args.no_oci,
        join,
        max_calls_per_tx: args.max_calls_per_tx,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let announce = async {
            if args.json {
                announce_worker(args, address).await;
            }
            std::future::pending::<()>().await;
        };
        tokio::select! {
            result = xiebao_worker::run(config) => result.context("worker"),
            stop = crate::common::wait_for_stop() => stop,
            () = announce => Ok(()),
        }
    })
}

/// The scheduler's HTTP URL from the URL workers use (`ws://h:p` → `http://h:p`).
fn scheduler_http(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("ws://") {
        format!("http://{rest}")
    } else if let Some(rest) = url.strip_prefix("wss://") {
        format!("https://{rest}")
    } else {
        url.to_owned()
    }
}

/// `worker --json`: waits until the scheduler lists `address` among its connected workers
/// (polling every 200 ms), then prints the worker's JSON summary.
#[allow(clippy::print_stdout, reason = "the command's output")]
async fn announce_worker(args: &WorkerArgs, address: Address) {
    use xiebao_scheduler::api::PoolApiClient as _;
    let http = scheduler_http(&args.scheduler);
    let Ok(pool) = xiebao_rpc::http_client(&http) else {
        eprintln!("worker --json: {http} is not a scheduler URL; nothing printed");
        return;
    };
    loop {
        if let Ok(status) = pool.pool_status().await
            && status.workers.iter().any(|w| w.worker == address)
        {
            println!(
                "{}",
                serde_json::json!({
                    "address": address,
                    "workerpool": status.workerpool,
                    "rpc": args.rpc,
                    "scheduler": args.scheduler,
                    "results": args.results,
                    "work_dir": args.work_dir,
                    "slots": args.slots,
                    "pid": std::process::id(),
                })
            );
            use std::io::Write as _;
            let _ = std::io::stdout().flush();
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
