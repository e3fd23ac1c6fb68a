//! The demo job: a real Bag-of-Tasks deal through the devnet — a Mandelbrot picture rendered
//! tile by tile, or word counts over text chunks — and its summary (timings, balances,
//! contributions, scores, CPU use, finalized transactions).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, Bytes, U256};
use anyhow::{Context, bail};
use serde::Serialize;
use xiebao_apps::mandelbrot::Tiling;
use xiebao_protocol::{Event, Membership};
use xiebao_rpc::pool::PoolApiClient as _;
use xiebao_rpc::{EventFilter, XiebaoApiClient};
use xiebao_sdk::client::{Node, Sender, SenderOptions};
use xiebao_types::order::SignedOrder as _;
use xiebao_types::tx::MatchOrders;
use xiebao_types::{DatasetOrder, Nrlc, RequestOrder, SecretKey, Tag, ids};

use crate::layout::{APP_PRICE, Layout, POOL_PRICE, Urls, write_pids};
use crate::supervisor::Children;
use crate::{Observer, Options};

/// What the demo did, for people and for tests (its JSON form is `xiebao devnet --demo
/// --json`'s output).
#[derive(Debug, Serialize)]
pub struct Summary {
    deal: B256,
    tasks: u64,
    task_ids: Vec<B256>,
    trust: u64,
    seconds: f64,
    first_result_seconds: f64,
    /// The demo's output: the picture, or the word counts.
    pub picture: PathBuf,
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
pub(crate) struct RunFacts {
    pub(crate) max_calls_per_tx: usize,
    pub(crate) contribute_and_finalize: bool,
    pub(crate) block_interval_ms: u64,
    pub(crate) block_txs_max: usize,
    pub(crate) metrics: Option<String>,
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

fn tiling(args: &Options) -> anyhow::Result<Tiling> {
    tiling_for(args.tasks, args.tile_size, args.max_iter)
}

/// The demo's picture for `n` tiles of `tile_size` px: the most square tiling, wider than tall.
pub fn tiling_for(n: u64, tile_size: u32, max_iter: u32) -> anyhow::Result<Tiling> {
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

#[allow(clippy::too_many_arguments, reason = "the devnet's parts, borrowed apart")]
pub(crate) async fn demo(
    args: &Options,
    facts: &RunFacts,
    layout: &Layout,
    node: &Node,
    pool: &xiebao_rpc::jsonrpsee::http_client::HttpClient,
    children: &mut Children,
    urls: &Urls,
    observer: &dyn Observer,
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
    observer.say(&format!("requesting {} (trust {})", job.describe(), args.trust));
    let http = reqwest::Client::new();
    let metrics = facts.metrics.as_deref();
    let finalized_before = match metrics {
        Some(url) => Finalized::read(&http, url).await,
        None => None,
    };
    let cpu_before = CpuSample::take(children);
    let matched = Instant::now();
    let deal_made = xiebao_sdk::requester::match_deal(node, &sender, orders).await?;
    let (deal, record, task_ids) = (deal_made.deal, deal_made.record, deal_made.tasks);
    let index_of: BTreeMap<B256, u64> =
        task_ids.iter().enumerate().map(|(i, t)| (*t, i as u64)).collect();
    observer.say(&format!("deal {deal}: {}", tasks_text(task_ids.len())));
    let mut tiles: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut downloads = tokio::task::JoinSet::new();
    let mut failed: Vec<B256> = Vec::new();
    let mut score_events = Vec::new();
    let progress = observer.bag(task_ids.len() as u64);
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
        if children.supervise(observer)? {
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
    observer.say(&format!(
        "{} in {seconds:.2} s from match to last result (first result after {:.2} s): {}",
        tasks_text(task_ids.len()),
        first_result.unwrap_or(seconds),
        picture.display()
    ));
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
    Ok(xiebao_sdk::download::fetch_file(http, task, link, name, key, max_bytes).await?)
}

/// `1 task`, `16 tasks`.
fn tasks_text(n: usize) -> String {
    if n == 1 { "1 task".to_owned() } else { format!("{n} tasks") }
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
    fn new(args: &Options, layout: &Layout) -> anyhow::Result<Self> {
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
