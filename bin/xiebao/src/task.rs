//! `xiebao deal show`, `xiebao task show` and `xiebao result download`: what the chain and the
//! pool's scheduler say about a deal or a task — and why it is not finished yet.

use std::path::PathBuf;

use alloy_primitives::{B256, U256};
use anyhow::{Context, bail};
use clap::Subcommand;
use xiebao_rpc::XiebaoApiClient;
use xiebao_scheduler::api::{PoolApiClient, TaskView};
use xiebao_types::ids;

/// `xiebao deal …`.
#[derive(Debug, Subcommand)]
pub(crate) enum DealCommand {
    /// A deal: prices, trust, and every task's state (with the scheduler's reasons).
    Show {
        /// The deal id.
        deal: B256,
        /// The pool's scheduler (`ws://` or `http://`), for why tasks wait.
        #[arg(long, env = "XIEBAO_SCHEDULER")]
        scheduler: Option<String>,
        #[command(flatten)]
        endpoint: crate::account::Endpoint,
    },
}

/// `xiebao task …`.
#[derive(Debug, Subcommand)]
pub(crate) enum TaskCommand {
    /// A task: its on-chain record and, from the scheduler, why it is not finished yet.
    Show {
        /// The task id.
        task: B256,
        /// The pool's scheduler (`ws://` or `http://`), for why the task waits.
        #[arg(long, env = "XIEBAO_SCHEDULER")]
        scheduler: Option<String>,
        #[command(flatten)]
        endpoint: crate::account::Endpoint,
    },
    /// Claim a task that missed its final deadline: it fails and its escrow goes back to the
    /// requester (anyone may claim; the chain also does it by itself at the deadline).
    Claim {
        /// The task id.
        task: B256,
        #[command(flatten)]
        key: crate::bridge::KeyArgs,
        #[command(flatten)]
        endpoint: crate::account::Endpoint,
    },
}

/// `xiebao result download`.
#[derive(Debug, clap::Args)]
pub(crate) struct DownloadArgs {
    /// The task whose result to fetch.
    task: B256,
    /// Directory the result's files are written to (created).
    #[arg(long)]
    out: PathBuf,
    /// The beneficiary's key (V3 keystore or hex key file), for results encrypted for them.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// File holding the keystore's password (else XIEBAO_PASSWORD or a prompt).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Largest result accepted, bytes: the download and what it unpacks to (default 1 GiB).
    #[arg(long, default_value_t = RESULT_DOWNLOAD_MAX_BYTES)]
    max_bytes: u64,
    #[command(flatten)]
    endpoint: crate::account::Endpoint,
}

pub(crate) fn scheduler_client(
    url: &str,
) -> anyhow::Result<xiebao_rpc::jsonrpsee::http_client::HttpClient> {
    let http = url.replacen("ws://", "http://", 1).replacen("wss://", "https://", 1);
    Ok(xiebao_rpc::http_client(&http)?)
}

async fn scheduler_view(url: Option<&str>, task: B256) -> Option<Result<TaskView, String>> {
    let url = url?;
    let client = match scheduler_client(url) {
        Ok(client) => client,
        Err(e) => return Some(Err(e.to_string())),
    };
    match client.task_view(task).await {
        Ok(Some(view)) => Some(Ok(view)),
        Ok(None) => Some(Err(format!("the scheduler at {url} does not know this task"))),
        Err(e) => Some(Err(format!("the scheduler at {url}: {e}"))),
    }
}

#[allow(clippy::print_stdout, reason = "the command's output")]
pub(crate) fn run_task(command: &TaskCommand) -> anyhow::Result<()> {
    let (task, scheduler, endpoint) = match command {
        TaskCommand::Show { task, scheduler, endpoint } => (task, scheduler, endpoint),
        TaskCommand::Claim { task, key, endpoint } => return claim(*task, key, endpoint),
    };
    crate::client_runtime()?.block_on(async {
        let node = xiebao_rpc::http_client(&endpoint.rpc)?;
        let record = node
            .task(*task)
            .await
            .with_context(|| format!("asking {} for task {task}", endpoint.rpc))?;
        let view = scheduler_view(scheduler.as_deref(), *task).await;
        if endpoint.json {
            let view = match &view {
                Some(Ok(view)) => serde_json::to_value(view)?,
                Some(Err(e)) => serde_json::json!({ "error": e }),
                None => serde_json::Value::Null,
            };
            println!("{}", serde_json::json!({ "task": task, "chain": record, "scheduler": view }));
            return Ok(());
        }
        println!("task {task}");
        match &record {
            None => println!("  chain: not initialized yet (or no such task)"),
            Some(t) => {
                println!("  chain: {} (deal {}, index {})", t.status, t.deal_id, t.idx);
                println!(
                    "  deadlines: contribution {}, reveal {}, final {}",
                    t.contribution_deadline, t.reveal_deadline, t.final_deadline
                );
                println!("  contributions: {}", t.contributions.len());
                for c in &t.contributions {
                    println!("    {} {:?}", c.worker, c.status);
                }
                if !t.results.is_empty() {
                    println!("  result: {}", String::from_utf8_lossy(&t.results));
                }
            }
        }
        match view {
            Some(Ok(view)) => {
                println!("  scheduler: {}", serde_json::to_string(&view.state)?);
                println!("  last event: {}", view.last_event);
                println!("  next deadline: {}", view.next_deadline);
            }
            Some(Err(e)) => println!("  scheduler: {e}"),
            None => println!("  scheduler: not asked (give --scheduler or XIEBAO_SCHEDULER)"),
        }
        Ok(())
    })
}

#[allow(clippy::print_stdout, reason = "the command's output")]
pub(crate) fn run_deal(command: &DealCommand) -> anyhow::Result<()> {
    let DealCommand::Show { deal, scheduler, endpoint } = command;
    crate::client_runtime()?.block_on(async {
        let node = xiebao_rpc::http_client(&endpoint.rpc)?;
        let Some(record) = node
            .deal(*deal)
            .await
            .with_context(|| format!("asking {} for deal {deal}", endpoint.rpc))?
        else {
            bail!("deal {deal} is not on chain (check the id and the --rpc endpoint)");
        };
        let view = match scheduler {
            Some(url) => Some(
                scheduler_client(url)?
                    .deal_view(*deal)
                    .await
                    .with_context(|| format!("asking the scheduler at {url}"))?,
            ),
            None => None,
        };
        if endpoint.json {
            println!("{}", serde_json::json!({ "deal": deal, "chain": record, "scheduler": view }));
            return Ok(());
        }
        println!("deal {deal}");
        println!(
            "  app {} · workerpool {} · trust {} · {} tasks from index {}",
            record.app.pointer,
            record.workerpool.pointer,
            record.trust,
            record.bot_size,
            record.bot_first
        );
        println!(
            "  completed {} · failed {} · initialized {}{}",
            record.completed,
            record.failed,
            record.initialized,
            if record.expired { " · expired" } else { "" }
        );
        match view.flatten() {
            Some(view) => {
                for t in view.tasks.iter().filter(|t| !t.state.is_final()) {
                    println!(
                        "  task {} ({}): {} — {}",
                        t.index,
                        t.task,
                        serde_json::to_string(&t.state)?,
                        t.last_event
                    );
                }
            }
            None => {
                for i in 0..record.bot_size.min(20) {
                    let id = ids::task_id(deal, record.bot_first + U256::from(i));
                    println!("  task {i}: {id}");
                }
            }
        }
        Ok(())
    })
}

/// Largest result `xiebao result download` and `xiebao run` accept unless told otherwise.
pub(crate) const RESULT_DOWNLOAD_MAX_BYTES: u64 = 1 << 30;
/// A download that delivers no byte for this long is abandoned.
const DOWNLOAD_IDLE_MAX: std::time::Duration = std::time::Duration::from_secs(60);

/// `3000000000` as `3,000,000,000`.
pub(crate) fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A byte limit as people say it: `1 GiB`, `64 MiB`, else grouped bytes.
pub(crate) fn limit_text(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{} {unit}", bytes / size);
        }
    }
    format!("{} bytes", grouped(bytes))
}

/// The content id a result link (`…/v1/results/{cid}`) ends in, checked to be one.
fn link_cid(link: &str) -> anyhow::Result<&str> {
    let cid = link.rsplit('/').next().unwrap_or_default();
    xiebao_results::check_cid(cid)
        .with_context(|| format!("the result link `{link}` does not end in a content id"))?;
    Ok(cid)
}

/// Streams the result of `task` at `link` into `sink`, refusing it from its Content-Length or,
/// counting, at the first byte over `max_bytes`, and checks the bytes against the link's
/// content id. Returns the byte count.
async fn fetch_result_into(
    http: &reqwest::Client,
    task: B256,
    link: &str,
    max_bytes: u64,
    sink: &mut impl std::io::Write,
) -> anyhow::Result<u64> {
    let cid = link_cid(link)?;
    let too_large = |bytes: String| {
        anyhow::anyhow!(
            "result of task {task} is {bytes} bytes, over the {} limit: refusing it (from {link})",
            limit_text(max_bytes)
        )
    };
    let mut response = http.get(link).send().await.with_context(|| format!("GET {link}"))?;
    if !response.status().is_success() {
        bail!("GET {link}: HTTP {}", response.status());
    }
    if let Some(length) = response.content_length()
        && length > max_bytes
    {
        return Err(too_large(grouped(length)));
    }
    let mut hasher = xiebao_results::CidHasher::new();
    loop {
        let chunk = tokio::time::timeout(DOWNLOAD_IDLE_MAX, response.chunk())
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "GET {link}: no byte for {} s after {} bytes: abandoned",
                    DOWNLOAD_IDLE_MAX.as_secs(),
                    grouped(hasher.bytes())
                )
            })?
            .with_context(|| format!("GET {link}"))?;
        let Some(chunk) = chunk else { break };
        if hasher.bytes() + chunk.len() as u64 > max_bytes {
            return Err(too_large(format!("over {}", grouped(max_bytes))));
        }
        hasher.update(&chunk);
        // Chunks are a few KiB: writing them where they arrive blocks no longer than a
        // page-cache copy.
        sink.write_all(&chunk).context("writing the downloaded result")?;
    }
    let bytes = hasher.bytes();
    let actual = hasher.finish();
    if actual != cid {
        bail!(
            "the bytes at {link} do not match the content id {cid} (they hash to {actual}): refusing them"
        );
    }
    Ok(bytes)
}

/// Fetches the result of `task` at `link` (`…/v1/results/{cid}`) into memory, at most
/// `max_bytes`, and checks it against its content id.
pub(crate) async fn fetch_result(
    http: &reqwest::Client,
    task: B256,
    link: &str,
    max_bytes: u64,
) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    fetch_result_into(http, task, link, max_bytes, &mut bytes).await?;
    Ok(bytes)
}

/// A file removed when dropped.
struct TemporaryFile(std::path::PathBuf);

impl Drop for TemporaryFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[allow(clippy::print_stdout, reason = "the command's output")]
pub(crate) fn download(args: &DownloadArgs) -> anyhow::Result<()> {
    crate::client_runtime()?.block_on(async {
        let node = xiebao_rpc::http_client(&args.endpoint.rpc)?;
        let Some(record) = node.task(args.task).await? else {
            bail!("task {} is not on chain yet: it has no result", args.task);
        };
        if record.results.is_empty() {
            bail!(
                "task {} is {} and has no result yet; see `xiebao task show {}`",
                args.task,
                record.status,
                args.task
            );
        }
        if args.out.exists()
            && !std::fs::read_dir(&args.out).is_ok_and(|mut d| d.next().is_none())
        {
            bail!("{} is not empty: give a new or empty directory", args.out.display());
        }
        let deal = node.deal(record.deal_id).await?.context("the task's deal is not on chain")?;
        let key = match &args.key_file {
            Some(key_file) => Some(crate::secret::signing_key(key_file, args.password_file.as_deref())?),
            None => None,
        };
        let (cid, digest) =
            save_result(&reqwest::Client::new(), &record, &deal, key.as_ref(), &args.out, args.max_bytes)
                .await?;
        if args.endpoint.json {
            println!("{}", serde_json::json!({ "task": args.task, "cid": cid, "digest": digest, "out": args.out }));
        } else {
            println!("{} (digest {digest}, verified)", args.out.display());
        }
        Ok(())
    })
}

/// Downloads task `record`'s result into a temporary file beside `out` (at most `max_bytes`),
/// checks its content id before anything else, opens it when sealed for the beneficiary (`key`
/// must be theirs), unpacks it (regular files and directories only, at most `max_bytes` in
/// all) into a temporary directory and renames that to `out` only once the digest agreed on
/// chain matches: a refused result leaves nothing behind. Returns the content id and the
/// digest.
pub(crate) async fn save_result(
    http: &reqwest::Client,
    record: &xiebao_rpc::Task,
    deal: &xiebao_rpc::Deal,
    key: Option<&xiebao_types::SecretKey>,
    out: &std::path::Path,
    max_bytes: u64,
) -> anyhow::Result<(String, alloy_primitives::B256)> {
    let task = ids::task_id(&record.deal_id, record.idx);
    let link = String::from_utf8_lossy(&record.results).into_owned();
    let cid = link_cid(&link)?.to_owned();
    let sealed =
        xiebao_sdk::params::TaskParams::parse(&deal.params).is_ok_and(|p| p.result_key.is_some());
    if sealed {
        match key {
            None => bail!(
                "this result is encrypted for the beneficiary {}: give --key-file with its key",
                deal.beneficiary
            ),
            Some(key) if key.address() != deal.beneficiary => bail!(
                "the result is encrypted for {}, and the key given is {}'s",
                deal.beneficiary,
                key.address()
            ),
            Some(_) => {}
        }
    }
    let parent = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    static DOWNLOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = DOWNLOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let download =
        TemporaryFile(parent.join(format!(".{name}.download-{}-{n}", std::process::id())));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&download.0)
        .with_context(|| format!("creating {}", download.0.display()))?;
    fetch_result_into(http, task, &link, max_bytes, &mut file).await?;
    let limits = xiebao_sdk::archive::UnpackLimits {
        bytes_max: max_bytes,
        ..xiebao_sdk::archive::UnpackLimits::default()
    };
    let (out_owned, expected, key) = (out.to_owned(), record.result_digest, key.cloned());
    let unpacked = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        use std::io::Seek as _;
        file.rewind()?;
        let unpacked = if let Some(key) = key.filter(|_| sealed) {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut file, &mut bytes)?;
            let plain = xiebao_results::sealed::open(&key, &bytes)
                .context("the sealed result does not open with the beneficiary's key")?;
            xiebao_sdk::archive::unpack_verified(plain.as_slice(), &out_owned, &limits, expected)
        } else {
            xiebao_sdk::archive::unpack_verified(
                std::io::BufReader::new(file),
                &out_owned,
                &limits,
                expected,
            )
        };
        unpacked.with_context(|| {
            format!("result of task {task} refused; nothing written to {}", out_owned.display())
        })?;
        Ok(())
    })
    .await;
    drop(download);
    unpacked.context("the unpacking task failed")??;
    Ok((cid, expected))
}

#[allow(clippy::print_stdout, reason = "the command's output")]
fn claim(
    task: B256,
    key: &crate::bridge::KeyArgs,
    endpoint: &crate::account::Endpoint,
) -> anyhow::Result<()> {
    let key = crate::secret::signing_key(&key.key_file, key.password_file.as_deref())?;
    crate::client_runtime()?.block_on(async {
        let node = xiebao_sdk::client::Node::connect(&endpoint.rpc).await?;
        let call = xiebao_types::tx::Claim { task_id: task }.into();
        let applied = crate::send_call(&node, key, call, "the claim").await?;
        if endpoint.json {
            println!("{}", serde_json::json!({ "task": task, "block": applied.height }));
        } else {
            println!("task {task} claimed in block {}: failed and refunded", applied.height);
        }
        Ok(())
    })
}
