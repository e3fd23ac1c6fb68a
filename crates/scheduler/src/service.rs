//! The running scheduler: follows the chain over WebSocket, serves workers and requesters, and
//! carries out the [`Board`]'s actions (pushes to workers, batched transactions).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, Bytes, U256};
use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::server::{PendingSubscriptionSink, PingConfig, ServerConfig, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;
use tokio::sync::mpsc;
use xiebao_protocol::{Event, Membership, MembershipStatus, Task};
use xiebao_rpc::{EventFilter, XiebaoApiClient};
use xiebao_sdk::client::{Node, Sender, SenderOptions};
use xiebao_types::digest::{OutputEntry, output_digest_v1};
use xiebao_types::order::SignedOrder as _;
use xiebao_types::tx::{Finalize, Initialize, Reopen};
use xiebao_types::{Nrlc, SecretKey, Tag, WorkerpoolOrder, ids};

use crate::api::{
    DealView, Hello, PoolApiServer, PoolStatus, Report, Resource, TaskView, Work, hello_hash,
};
use crate::board::{Action, Board, DealInfo, stake_slots};

/// Connections the worker API accepts at once.
const CONNECTIONS_MAX: usize = 10_000;
/// Connections the worker API accepts at once from one IP address.
const CONNECTIONS_PER_IP_MAX: usize = 512;
/// How often timeouts, slow replicates and hand-out are looked at.
const TICK: Duration = Duration::from_millis(100);
/// How often unfinished tasks are re-read from the chain (a fallback for missed events)…
const SWEEP: Duration = Duration::from_secs(5);
/// …and how many per round.
const SWEEP_TASKS: usize = 100;
/// Longest a result check may take to fetch a result (connection included).
const RESULT_FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest result the scheduler fetches to check it: the result store's own limit.
pub const RESULT_SIZE_MAX_BYTES: usize = xiebao_results::gateway::RESULT_SIZE_MAX_BYTES;
/// Tries of a result check that fails in a way that may pass (the store busy or down), one
/// second apart, then twice that, …
const RESULT_CHECK_TRIES: u32 = 4;
/// Result checks at once (each holds up to [`RESULT_SIZE_MAX_BYTES`] in memory and one
/// connection to a result store, which bounds the connections one address may open).
const RESULT_CHECKS_MAX: usize = 4;
/// The event types the scheduler follows.
const EVENT_TYPES: [&str; 9] = [
    "PoolLeaving",
    "SchedulerNotice",
    "TaskInitialize",
    "TaskContribute",
    "TaskConsensus",
    "TaskReveal",
    "TaskFinalize",
    "TaskClaimed",
    "TaskReopen",
];

/// The workerpool order the scheduler publishes.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct OrderPolicy {
    /// Price per task, nRLC.
    pub price: Nrlc,
    /// Tasks sold by the order.
    pub volume: u64,
    /// Category.
    pub category: u64,
    /// Highest trust offered.
    pub trust: u64,
    /// Tag offered (e.g. GPU when the pool has GPU workers).
    pub tag: Tag,
}

impl Default for OrderPolicy {
    fn default() -> Self {
        Self { price: Nrlc(0), volume: 1_000_000, category: 0, trust: 100, tag: Tag::NONE }
    }
}

/// How to run a scheduler.
#[derive(Clone, Debug)]
pub struct Config {
    /// The node's HTTP RPC URL.
    pub rpc: String,
    /// The pool owner's key.
    pub key: SecretKey,
    /// The workerpool.
    pub workerpool: Address,
    /// Where workers and requesters reach the scheduler.
    pub listen: SocketAddr,
    /// Where its state lives.
    pub data_dir: PathBuf,
    /// The order it publishes.
    pub order: OrderPolicy,
    /// Most calls in one of its transactions (at least 1; 1: one call per transaction, the
    /// baseline benchmarks compare batching with).
    pub max_calls_per_tx: usize,
    /// Trust-1 tasks end with the worker's `contributeAndFinalize`; off, they take the
    /// trust > 1 path (contribute, reveal, finalize), as on iExec's sidechain.
    pub contribute_and_finalize: bool,
    /// How long a replicate may take to start running (fetching the app, its image and the
    /// dataset) before it goes to another worker ([`crate::board::SETUP_TIMEOUT_MS_DEFAULT`]).
    pub setup_timeout: Duration,
}

/// Starting the scheduler failed.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The node is unreachable.
    #[error(transparent)]
    Node(#[from] xiebao_sdk::client::NodeError),
    /// The node answered with an error.
    #[error("node: {0}")]
    Rpc(String),
    /// The key does not own the workerpool.
    #[error("workerpool {workerpool} is owned by {owner}, not by the scheduler's key {key}")]
    NotOwner {
        /// The pool.
        workerpool: Address,
        /// Its owner.
        owner: Address,
        /// The key's address.
        key: Address,
    },
    /// No such workerpool.
    #[error("workerpool {0} is not registered on chain")]
    UnknownPool(Address),
    /// A local file or socket failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

/// The bytes behind a result link are not the task's agreed result, or cannot be fetched.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResultCheckError {
    /// Not an `http(s)://…/{cid}` link.
    #[error("`{link}` is not an http(s) result link ending with a content id")]
    BadLink {
        /// The link.
        link: String,
    },
    /// The fetch failed (connection, timeout).
    #[error("fetching {link}: {reason}")]
    Fetch {
        /// The link.
        link: String,
        /// Why.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("fetching {link}: HTTP {status}")]
    Status {
        /// The link.
        link: String,
        /// The HTTP status.
        status: u16,
    },
    /// More bytes than a result may have.
    #[error("the result at {link} is larger than {size_max_bytes} bytes")]
    TooLarge {
        /// The link.
        link: String,
        /// The limit.
        size_max_bytes: usize,
    },
    /// The bytes do not hash to the content id the link names.
    #[error("the bytes at the link hash to {actual}, not to the content id {cid} it names")]
    CidMismatch {
        /// The content id in the link.
        cid: String,
        /// What the bytes hash to.
        actual: String,
    },
    /// Not a result archive the digest rule accepts.
    #[error("the result is not a valid result archive: {reason}")]
    BadArchive {
        /// Why.
        reason: String,
    },
    /// The archive's result digest is not the one the winners agreed on.
    #[error(
        "the result's digest {digest} gives result hash {result_hash}, not the task's consensus {consensus}"
    )]
    DigestMismatch {
        /// The digest of the archive's contents.
        digest: B256,
        /// `result_hash(task, digest)`.
        result_hash: B256,
        /// The task's consensus value.
        consensus: B256,
    },
}

impl ResultCheckError {
    /// Whether trying again later may succeed: the connection failed or timed out, or the
    /// server is busy or failing (429, 5xx). A mismatch, a bad link or a refusal is final.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Fetch { .. } => true,
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// Fetches a task's result from the link its uploader reported and checks it is the agreed
/// one, before the scheduler finalizes with that link: the service's half of
/// [`Action::CheckResult`].
#[derive(Clone, Debug)]
pub struct ResultChecker {
    http: reqwest::Client,
    size_max_bytes: usize,
}

impl ResultChecker {
    /// A checker that gives up on a fetch after `timeout` and on a result larger than
    /// `size_max_bytes`. It follows no redirect (a link names the bytes' location itself)
    /// and keeps no idle connection open: a result store counts open connections per client
    /// address, and on one host the scheduler shares that count with the workers and
    /// requesters.
    ///
    /// # Errors
    /// [`ResultCheckError::Fetch`] when the HTTP client cannot be built.
    pub fn new(timeout: Duration, size_max_bytes: usize) -> Result<Self, ResultCheckError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| ResultCheckError::Fetch { link: String::new(), reason: e.to_string() })?;
        Ok(Self { http, size_max_bytes })
    }

    /// Fetches `link` (streaming, at most the size limit, within the timeout) and checks the
    /// bytes with [`check_result`].
    ///
    /// # Errors
    /// [`ResultCheckError`]: the link, the fetch, the size, the content id or the digest.
    pub async fn check(
        &self,
        task: &B256,
        link: &str,
        consensus: &B256,
        sealed: bool,
    ) -> Result<(), ResultCheckError> {
        let bad_link = || ResultCheckError::BadLink { link: link.to_owned() };
        if !(link.starts_with("http://") || link.starts_with("https://")) {
            return Err(bad_link());
        }
        let cid = link_cid(link).ok_or_else(bad_link)?;
        let fetch = |reason: String| ResultCheckError::Fetch { link: link.to_owned(), reason };
        let too_large = || ResultCheckError::TooLarge {
            link: link.to_owned(),
            size_max_bytes: self.size_max_bytes,
        };
        let mut response = self.http.get(link).send().await.map_err(|e| fetch(e.to_string()))?;
        if !response.status().is_success() {
            return Err(ResultCheckError::Status {
                link: link.to_owned(),
                status: response.status().as_u16(),
            });
        }
        if response.content_length().is_some_and(|n| n > self.size_max_bytes as u64) {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| fetch(e.to_string()))? {
            if bytes.len() + chunk.len() > self.size_max_bytes {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        check_result(task, cid, &bytes, consensus, sealed)
    }
}

/// The content id a result link names: its last path segment (`…/v1/results/{cid}`).
fn link_cid(link: &str) -> Option<&str> {
    let path = link.split(['?', '#']).next()?;
    path.rsplit('/').next().filter(|cid| !cid.is_empty())
}

/// Checks a fetched result against the task: its bytes hash to `cid` (the link's content
/// id), and — unless the result is `sealed` for the beneficiary, which only their key opens
/// — the version-1 digest of the archive's contents gives the task's `consensus` value
/// (`result_hash(task, digest)`), the way the requester checks it after download.
///
/// # Errors
/// [`ResultCheckError::CidMismatch`], [`ResultCheckError::BadArchive`] or
/// [`ResultCheckError::DigestMismatch`].
pub fn check_result(
    task: &B256,
    cid: &str,
    bytes: &[u8],
    consensus: &B256,
    sealed: bool,
) -> Result<(), ResultCheckError> {
    let actual = xiebao_results::cid_of(bytes);
    if actual != cid {
        return Err(ResultCheckError::CidMismatch { cid: cid.to_owned(), actual });
    }
    if sealed {
        // The scheduler cannot open a result sealed for the beneficiary: what it checked is
        // that the link names these bytes and that they fit the size limit.
        return Ok(());
    }
    let digest = archive_digest(bytes)?;
    let result_hash = ids::result_hash(task, &digest);
    if result_hash != *consensus {
        return Err(ResultCheckError::DigestMismatch {
            digest,
            result_hash,
            consensus: *consensus,
        });
    }
    Ok(())
}

/// The version-1 result digest of a result archive's contents, as if unpacked: regular
/// files, and directories with nothing beneath them; a later entry for the same path
/// replaces an earlier one. Links, devices, absolute or `..` paths are refused.
///
/// # Errors
/// [`ResultCheckError::BadArchive`].
pub fn archive_digest(bytes: &[u8]) -> Result<B256, ResultCheckError> {
    use std::io::Read as _;
    let bad = |reason: String| ResultCheckError::BadArchive { reason };
    let mut files: BTreeMap<String, OutputEntry> = BTreeMap::new();
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    let mut archive = tar::Archive::new(bytes);
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::XGlobalHeader {
            continue;
        }
        let raw = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        let mut parts = Vec::new();
        for component in raw.components() {
            match component {
                std::path::Component::Normal(part) => parts.push(
                    part.to_str()
                        .ok_or_else(|| {
                            bad(format!("{} has a name that is not UTF-8", raw.display()))
                        })?
                        .to_owned(),
                ),
                std::path::Component::CurDir => {}
                _ => return Err(bad(format!("{} leaves the output directory", raw.display()))),
            }
        }
        if parts.is_empty() {
            continue;
        }
        let path = parts.join("/");
        if kind.is_file() {
            let mut content = Vec::new();
            entry.read_to_end(&mut content).map_err(|e| bad(e.to_string()))?;
            dirs.remove(&path);
            files.insert(path.clone(), OutputEntry::file(path, &content));
        } else if kind.is_dir() {
            files.remove(&path);
            dirs.insert(path);
        } else {
            return Err(bad(format!("{path} is not a regular file or directory")));
        }
    }
    let mut entries: Vec<OutputEntry> = files.values().cloned().collect();
    for dir in &dirs {
        let prefix = format!("{dir}/");
        let beneath = |keys: &mut dyn Iterator<Item = &String>| {
            keys.next().is_some_and(|k| k.starts_with(&prefix))
        };
        let has_file = beneath(&mut files.range(prefix.clone()..).map(|(k, _)| k));
        let has_dir = beneath(&mut dirs.range(prefix.clone()..));
        if !has_file && !has_dir {
            entries.push(OutputEntry::EmptyDir { path: dir.clone() });
        }
    }
    Ok(output_digest_v1(&entries))
}

/// The slots a membership pays for in `workerpool` given its minimum stake, or why the
/// worker may not work for it (not an active member, or staked below the minimum).
///
/// # Errors
/// A sentence saying what the membership lacks.
pub fn member_slots(
    membership: Option<&Membership>,
    workerpool: Address,
    min_stake: Nrlc,
) -> Result<u32, String> {
    match membership {
        Some(m) if m.workerpool == workerpool && m.status == MembershipStatus::Active => {
            let staked = Nrlc(m.bonded.0.saturating_add(m.in_contributions.0));
            match stake_slots(staked, min_stake) {
                0 => Err(format!(
                    "has {} nRLC staked, below the pool's minimum stake of {} nRLC",
                    staked.0, min_stake.0
                )),
                slots => Ok(slots),
            }
        }
        Some(m) => Err(format!("is {:?} in {}, not an active member", m.status, m.workerpool)),
        None => Err("has no membership".into()),
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SchedulerError {
    let what = what.into();
    move |source| SchedulerError::Io { what, source }
}

struct Inner {
    board: Board,
    sinks: std::collections::BTreeMap<Address, mpsc::UnboundedSender<Work>>,
    challenges: BTreeSet<B256>,
    chain_time: u64,
    orders: Vec<WorkerpoolOrder>,
}

struct Shared {
    inner: Mutex<Inner>,
    node: Node,
    sender: Sender,
    workerpool: Address,
    started: Instant,
    deals_file: PathBuf,
    /// Deals to resume, loaded once the first event subscription is open.
    resume: Mutex<Vec<B256>>,
    /// Calls on their way to the chain, by task and kind: the board may decide the same call
    /// again (a sync or a tick) while one is queued, and two finalizes of one task in one
    /// batch would make the whole batch fail, again and again.
    in_flight: Mutex<BTreeSet<(B256, &'static str)>>,
    /// Checks uploaded results before they are finalized.
    checker: ResultChecker,
    /// Bounds the result checks at once.
    checks: Arc<tokio::sync::Semaphore>,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, BTreeSet<(B256, &'static str)>> {
        self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the board and carries out what it decides.
    fn with_board(self: &Arc<Self>, f: impl FnOnce(&mut Board, u64, u64) -> Vec<Action>) {
        let now = self.now_ms();
        let actions = {
            let mut inner = self.lock();
            let chain_time = inner.chain_time;
            f(&mut inner.board, now, chain_time)
        };
        self.execute(actions);
    }

    fn execute(self: &Arc<Self>, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Push { worker, work } => {
                    let inner = self.lock();
                    if let Some(sink) = inner.sinks.get(&worker) {
                        let _ = sink.send(work);
                    }
                }
                Action::Initialize { task, deal, idx } => {
                    self.call(task, "initialize", Initialize { deal_id: deal, idx }.into());
                }
                Action::Finalize { task, link } => {
                    let call = Finalize {
                        task_id: task,
                        results: Bytes::from(link.into_bytes()),
                        results_callback: Bytes::new(),
                    };
                    self.call(task, "finalize", call.into());
                }
                Action::Reopen { task } => {
                    self.call(task, "reopen", Reopen { task_id: task }.into());
                }
                Action::CheckResult { task, worker, link, consensus, sealed } => {
                    self.check_result(task, worker, link, consensus, sealed);
                }
                Action::Ignored { worker, task, why } => {
                    tracing::warn!(%worker, %task, "ignored {why}");
                }
            }
        }
    }

    /// Fetches and checks an uploaded result, then tells the board.
    fn check_result(
        self: &Arc<Self>,
        task: B256,
        worker: Address,
        link: String,
        consensus: B256,
        sealed: bool,
    ) {
        let shared = self.clone();
        tokio::spawn(async move {
            let mut outcome = Ok(());
            for attempt in 0..RESULT_CHECK_TRIES {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_secs(1 << (attempt - 1))).await;
                }
                outcome = match shared.checks.clone().acquire_owned().await {
                    Ok(_permit) => shared.checker.check(&task, &link, &consensus, sealed).await,
                    Err(e) => {
                        Err(ResultCheckError::Fetch { link: link.clone(), reason: e.to_string() })
                    }
                };
                if !outcome.as_ref().is_err_and(ResultCheckError::is_transient) {
                    break;
                }
            }
            match &outcome {
                Ok(()) => tracing::info!(%task, %worker, %link, sealed, "result checked"),
                Err(e) => tracing::warn!(%task, %worker, "refused the uploaded result: {e}"),
            }
            let outcome = outcome.map_err(|e| e.to_string());
            shared.with_board(|b, now, chain_time| {
                b.result_checked(&task, worker, &link, outcome, now, chain_time)
            });
        });
    }

    /// Ends `worker`'s session: its replicates go to others and its connection is dropped
    /// (it is refused when it reconnects while it is not an active member).
    fn end_membership(self: &Arc<Self>, worker: Address, why: &str) {
        tracing::warn!(%worker, "closing the worker's session: it {why}");
        self.with_board(|b, now, _| b.membership_ended(worker, why, now));
        self.lock().sinks.remove(&worker);
    }

    /// Re-reads the memberships of the connected workers: a worker that is no longer an
    /// active member (it left, or was slashed below the minimum stake) loses its session,
    /// and every other one's slots follow its stake.
    async fn check_members(self: &Arc<Self>) {
        let workers = self.lock().board.workers();
        if workers.is_empty() {
            return;
        }
        let Ok(Some(pool)) = self.node.rpc.workerpool(self.workerpool).await else { return };
        for worker in workers {
            let Ok(membership) = self.node.rpc.membership(worker).await else { continue };
            match member_slots(membership.as_ref(), self.workerpool, pool.policy.min_worker_stake) {
                Ok(slots) => {
                    if self.lock().board.slot_limit(&worker) != Some(slots) {
                        self.with_board(|b, now, _| b.set_slot_limit(worker, slots, now));
                    }
                }
                Err(why) => self.end_membership(worker, &why),
            }
        }
    }

    /// Sends a call (unless the same call for that task is already on its way); when it
    /// fails, the task is synced from the chain.
    fn call(self: &Arc<Self>, task: B256, what: &'static str, call: xiebao_types::tx::Call) {
        if !self.in_flight().insert((task, what)) {
            return;
        }
        let shared = self.clone();
        tokio::spawn(async move {
            let result = shared.sender.send(call).await;
            shared.in_flight().remove(&(task, what));
            if let Err(e) = result {
                tracing::warn!(%task, "{what} failed: {e}");
                shared.lock().board.call_failed(&task, what, &e.to_string());
                let record = shared.node.rpc.task(task).await.ok().flatten();
                shared.with_board(|b, now, _| b.sync_task(&task, record.as_ref(), now));
            }
        });
    }

    async fn load_deal(self: &Arc<Self>, deal_id: B256, fresh: bool) -> Result<(), String> {
        if self.lock().board.knows_deal(&deal_id) {
            return Ok(());
        }
        let rpc = &self.node.rpc;
        let deal = rpc
            .deal(deal_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("deal {deal_id} not found"))?;
        let app = rpc
            .app(deal.app.pointer)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("app {} not found", deal.app.pointer))?;
        let dataset = if deal.dataset.pointer.is_zero() {
            None
        } else {
            let d = rpc
                .dataset(deal.dataset.pointer)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("dataset {} not found", deal.dataset.pointer))?;
            Some(Resource {
                address: deal.dataset.pointer,
                multiaddr: String::from_utf8_lossy(&d.multiaddr).into_owned(),
                checksum: d.checksum,
            })
        };
        let mut tasks: Vec<Option<Task>> = Vec::new();
        if !fresh {
            for i in 0..deal.bot_size {
                let id = ids::task_id(&deal_id, deal.bot_first + U256::from(i));
                tasks.push(rpc.task(id).await.map_err(|e| e.to_string())?);
            }
        }
        let info = DealInfo {
            id: deal_id,
            app: Resource {
                address: deal.app.pointer,
                multiaddr: String::from_utf8_lossy(&app.multiaddr).into_owned(),
                checksum: app.checksum,
            },
            app_type: app.app_type,
            dataset,
            deal,
        };
        let deals = {
            let mut inner = self.lock();
            if inner.board.knows_deal(&deal_id) {
                return Ok(());
            }
            let now = self.now_ms();
            let actions = inner.board.add_deal(info, &tasks);
            tracing::info!(deal = %deal_id, initializing = actions.len(), "deal loaded");
            let deals = inner.board.deal_ids();
            let chain_time = inner.chain_time;
            let more = inner.board.tick(now, chain_time);
            drop(inner);
            self.execute(actions);
            self.execute(more);
            deals
        };
        let json = serde_json::to_vec(&deals).unwrap_or_default();
        write_atomic(&self.deals_file, &json).map_err(|e| e.to_string())
    }

    fn on_event(self: &Arc<Self>, event: Event) {
        match event {
            Event::SchedulerNotice { workerpool, deal } if workerpool == self.workerpool => {
                let shared = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = shared.load_deal(deal, true).await {
                        tracing::error!(%deal, "cannot load the deal: {e}");
                    }
                });
            }
            Event::TaskInitialize { task, workerpool } if workerpool == self.workerpool => {
                self.with_board(|b, now, _| b.initialized(&task, now));
            }
            Event::TaskContribute { task, worker, result_hash } => {
                self.with_board(|b, now, _| b.contributed(&task, worker, result_hash, now));
            }
            Event::TaskConsensus { task, consensus, reveal_deadline } => {
                self.with_board(|b, now, _| b.consensus(&task, consensus, reveal_deadline, now));
            }
            Event::TaskReveal { task, worker, .. } => {
                self.with_board(|b, _, chain_time| b.revealed(&task, worker, chain_time));
            }
            Event::TaskFinalize { task, results } => {
                let link = String::from_utf8_lossy(&results).into_owned();
                let workers = self.lock().board.task_workers(&task);
                self.with_board(|b, now, _| b.finalized(&task, link, now));
                self.refresh_scores(workers);
            }
            Event::TaskClaimed { task } => {
                self.with_board(|b, now, _| b.failed_on_chain(&task, now));
            }
            Event::TaskReopen { task } => {
                self.with_board(|b, now, _| b.reopened(&task, now));
            }
            Event::PoolLeaving { worker, workerpool, .. } if workerpool == self.workerpool => {
                self.end_membership(worker, "is leaving the pool");
            }
            _ => {}
        }
    }

    fn refresh_scores(self: &Arc<Self>, workers: Vec<Address>) {
        if workers.is_empty() {
            return;
        }
        let shared = self.clone();
        tokio::spawn(async move {
            for worker in workers {
                if let Ok(score) = shared.node.rpc.score(worker).await {
                    shared.lock().board.set_score(worker, score);
                }
            }
        });
    }

    /// Follows the chain; reconnects (and resyncs open deals) when the node goes away.
    async fn follow(self: Arc<Self>) {
        let mut first = true;
        loop {
            match self.follow_once(first).await {
                Ok(()) => tracing::warn!("the node closed the event subscription; reconnecting"),
                Err(e) => tracing::warn!("following the chain: {e}; reconnecting"),
            }
            first = false;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn follow_once(self: &Arc<Self>, first: bool) -> Result<(), String> {
        let ws = xiebao_rpc::ws_client(&self.node.ws_url()).await.map_err(|e| e.to_string())?;
        let filter = EventFilter {
            types: EVENT_TYPES.iter().map(|t| (*t).to_owned()).collect(),
            ..EventFilter::default()
        };
        let mut events = ws.subscribe_events(filter).await.map_err(|e| e.to_string())?;
        let mut heads = ws.subscribe_heads().await.map_err(|e| e.to_string())?;
        if let Ok(status) = self.node.rpc.chain_status().await {
            self.lock().chain_time = status.timestamp;
        }
        if first {
            // Subscribed first, then read: nothing that happens meanwhile is missed.
            let deals = std::mem::take(
                &mut *self.resume.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            for deal in deals {
                if let Err(e) = self.load_deal(deal, false).await {
                    tracing::error!(%deal, "cannot resume the deal: {e}");
                }
            }
        } else {
            // Events may have been missed while disconnected: sync every open task.
            self.resync().await;
        }
        loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(Ok(view)) => self.on_event(view.event),
                    Some(Err(e)) => return Err(e.to_string()),
                    None => return Ok(()),
                },
                head = heads.next() => match head {
                    Some(Ok(head)) => self.lock().chain_time = head.timestamp,
                    Some(Err(e)) => return Err(e.to_string()),
                    None => return Ok(()),
                },
            }
        }
    }

    /// Re-reads a round of unfinished tasks from the chain, forever.
    async fn sweep(self: Arc<Self>) {
        let mut cursor = B256::ZERO;
        loop {
            tokio::time::sleep(SWEEP).await;
            self.check_members().await;
            let tasks = self.lock().board.open_tasks_after(&cursor, SWEEP_TASKS);
            for task in tasks {
                cursor = task;
                if let Ok(record) = self.node.rpc.task(task).await {
                    self.with_board(|b, now, _| b.sync_task(&task, record.as_ref(), now));
                }
            }
        }
    }

    async fn resync(self: &Arc<Self>) {
        let open: Vec<B256> = {
            let inner = self.lock();
            inner
                .board
                .deal_ids()
                .iter()
                .filter_map(|d| inner.board.deal_view(d))
                .flat_map(|d| d.tasks)
                .filter(|t| !t.state.is_final())
                .map(|t| t.task)
                .collect()
        };
        for task in open {
            if let Ok(record) = self.node.rpc.task(task).await {
                self.with_board(|b, now, _| b.sync_task(&task, record.as_ref(), now));
            }
        }
    }
}

fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}

struct Api {
    shared: Arc<Shared>,
}

/// Checks a worker's hello (signature, active membership of this pool); returns its score
/// and the slots its stake pays for.
async fn check_hello(shared: &Shared, hello: &Hello) -> Result<(u64, u32), String> {
    let pool = shared.workerpool;
    let hash = hello_hash(&pool, &hello.worker, &hello.challenge);
    match xiebao_types::crypto::recover_eth_signed(&hash, &hello.signature) {
        Ok(signer) if signer == hello.worker => {}
        Ok(signer) => {
            return Err(format!("hello signed by {signer}, not by the worker {}", hello.worker));
        }
        Err(e) => return Err(format!("hello signature: {e}")),
    }
    let min_stake = match shared.node.rpc.workerpool(pool).await {
        Ok(Some(p)) => p.policy.min_worker_stake,
        Ok(None) => return Err(format!("workerpool {pool} is not on chain")),
        Err(e) => return Err(format!("cannot read the workerpool: {e}")),
    };
    let slots = match shared.node.rpc.membership(hello.worker).await {
        Ok(membership) => member_slots(membership.as_ref(), pool, min_stake).map_err(|why| {
            format!(
                "worker {} {why} of workerpool {pool}: join it by staking (JoinPool)",
                hello.worker
            )
        })?,
        Err(e) => return Err(format!("cannot check the membership: {e}")),
    };
    Ok((shared.node.rpc.score(hello.worker).await.unwrap_or(0), slots))
}

fn refuse(message: String) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32_020, message, None::<()>)
}

#[jsonrpsee::core::async_trait]
impl PoolApiServer for Api {
    async fn challenge(&self) -> Result<B256, ErrorObjectOwned> {
        let challenge = B256::from(rand::random::<[u8; 32]>());
        let mut inner = self.shared.lock();
        if inner.challenges.len() > 10_000 {
            inner.challenges.clear();
        }
        inner.challenges.insert(challenge);
        Ok(challenge)
    }

    async fn subscribe_work(
        &self,
        pending: PendingSubscriptionSink,
        hello: Hello,
    ) -> SubscriptionResult {
        let shared = &self.shared;
        let pool = shared.workerpool;
        if !shared.lock().challenges.remove(&hello.challenge) {
            pending
                .reject(refuse("unknown or used challenge: ask pool_challenge first".into()))
                .await;
            return Ok(());
        }
        let (score, slots) = match check_hello(shared, &hello).await {
            Ok(checked) => checked,
            Err(reason) => {
                pending.reject(refuse(reason)).await;
                return Ok(());
            }
        };
        let sink = pending.accept().await?;
        let session = B256::from(rand::random::<[u8; 32]>());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _ = tx.send(Work::Welcome { session, workerpool: pool });
        shared.lock().sinks.insert(hello.worker, tx);
        tracing::info!(
            worker = %hello.worker,
            slots = hello.capabilities.slots,
            staked_for = slots,
            "worker connected"
        );
        let worker = hello.worker;
        shared.with_board(|b, now, _| {
            // The slots its stake pays for bound what it claims, before anything is handed out.
            let mut actions = b.set_slot_limit(worker, slots, now);
            actions.extend(b.connect(worker, session, hello.capabilities, score, now));
            actions
        });
        loop {
            tokio::select! {
                _ = sink.closed() => break,
                work = rx.recv() => match work {
                    Some(work) => {
                        let message = serde_json::value::to_raw_value(&work)?;
                        if sink.send(message).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
            }
        }
        tracing::info!(%worker, "worker disconnected");
        {
            let mut inner = shared.lock();
            if inner.board.session(&worker) == Some(session) {
                inner.sinks.remove(&worker);
            }
        }
        shared.with_board(|b, now, _| b.disconnect(worker, session, now));
        Ok(())
    }

    async fn report(&self, report: Report) -> Result<(), ErrorObjectOwned> {
        let worker = self.shared.lock().board.worker_of(&report.session);
        let Some(worker) = worker else {
            return Err(refuse("unknown session: open one with pool_subscribeWork".into()));
        };
        let Report { task, progress, .. } = report;
        self.shared.with_board(|b, now, _| b.report(worker, &task, progress, now));
        Ok(())
    }

    async fn task_view(&self, task: B256) -> Result<Option<TaskView>, ErrorObjectOwned> {
        Ok(self.shared.lock().board.task_view(&task))
    }

    async fn deal_view(&self, deal: B256) -> Result<Option<DealView>, ErrorObjectOwned> {
        Ok(self.shared.lock().board.deal_view(&deal))
    }

    async fn pool_status(&self) -> Result<PoolStatus, ErrorObjectOwned> {
        Ok(self.shared.lock().board.status())
    }

    async fn orders(&self) -> Result<Vec<WorkerpoolOrder>, ErrorObjectOwned> {
        Ok(self.shared.lock().orders.clone())
    }
}

/// A running scheduler.
#[derive(Debug)]
pub struct Running {
    /// Where its API listens.
    pub address: SocketAddr,
    /// The API server.
    pub handle: ServerHandle,
}

/// Starts the scheduler: checks the pool, publishes its order, resumes known deals, follows
/// the chain and serves the API.
///
/// # Errors
/// [`SchedulerError`] when the node, the pool, the data directory or the socket is unusable.
///
/// # Panics
/// If `config.max_calls_per_tx` is 0.
pub async fn start(config: Config) -> Result<Running, SchedulerError> {
    let node = Node::connect(&config.rpc).await?;
    let pool = node
        .rpc
        .workerpool(config.workerpool)
        .await
        .map_err(|e| SchedulerError::Rpc(e.to_string()))?
        .ok_or(SchedulerError::UnknownPool(config.workerpool))?;
    if pool.owner != config.key.address() {
        return Err(SchedulerError::NotOwner {
            workerpool: config.workerpool,
            owner: pool.owner,
            key: config.key.address(),
        });
    }
    std::fs::create_dir_all(&config.data_dir)
        .map_err(io(format!("creating {}", config.data_dir.display())))?;
    let orders = load_or_make_order(&config, &node)?;
    let options = SenderOptions { max_calls: config.max_calls_per_tx, ..SenderOptions::default() };
    let sender = Sender::spawn(node.clone(), config.key.clone(), options);
    let checker = ResultChecker::new(RESULT_FETCH_TIMEOUT, RESULT_SIZE_MAX_BYTES).map_err(|e| {
        SchedulerError::Io {
            what: "building the result checker's HTTP client".into(),
            source: std::io::Error::other(e),
        }
    })?;
    let deals_file = config.data_dir.join("deals.json");
    let known: Vec<B256> = std::fs::read(&deals_file)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner {
            board: Board::new(config.key.clone(), config.workerpool)
                .with_contribute_and_finalize(config.contribute_and_finalize)
                .with_setup_timeout_ms(
                    u64::try_from(config.setup_timeout.as_millis()).unwrap_or(u64::MAX),
                ),
            sinks: std::collections::BTreeMap::new(),
            challenges: BTreeSet::new(),
            chain_time: 0,
            orders,
        }),
        node,
        sender,
        workerpool: config.workerpool,
        started: Instant::now(),
        deals_file,
        resume: Mutex::new(known),
        in_flight: Mutex::new(BTreeSet::new()),
        checker,
        checks: Arc::new(tokio::sync::Semaphore::new(RESULT_CHECKS_MAX)),
    });
    tokio::spawn(shared.clone().follow());
    tokio::spawn(shared.clone().sweep());
    let ticker = shared.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(TICK).await;
            ticker.with_board(|b, now, chain_time| b.tick(now, chain_time));
        }
    });
    let server_config = ServerConfig::builder()
        .max_connections(CONNECTIONS_MAX as u32)
        .set_first_request_timeout(Some(Duration::from_secs(10)))
        .enable_ws_ping(
            PingConfig::new()
                .ping_interval(Duration::from_secs(2))
                .inactive_limit(Duration::from_secs(10)),
        )
        .build();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(io(format!("listening on {}", config.listen)))?;
    // Workers of one site may share an address, so the per-address cap is generous; what an
    // unauthenticated client can hold is still bounded, and idle connections are cut.
    let limits = xiebao_rpc::ConnectionLimits {
        total_max: CONNECTIONS_MAX,
        per_ip_max: CONNECTIONS_PER_IP_MAX,
        idle_timeout: Duration::from_secs(60),
    };
    let (address, handle) = xiebao_rpc::serve::serve(
        listener,
        server_config,
        Api { shared: shared.clone() }.into_rpc(),
        limits,
        &xiebao_rpc::Cors::Any,
    )
    .map_err(io("reading the bound address"))?;
    tokio::spawn(publish_orders(shared, address));
    Ok(Running { address, handle })
}

/// Publishes the pool's orders in the node's market, with where requesters reach this
/// scheduler; retried until the node takes them.
async fn publish_orders(shared: Arc<Shared>, address: SocketAddr) {
    let host = if address.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        address.ip().to_string()
    };
    let url = format!("ws://{host}:{}", address.port());
    let orders = shared.lock().orders.clone();
    for order in orders {
        let json = serde_json::to_value(&order).unwrap_or_default();
        let mut delay = Duration::from_millis(200);
        loop {
            match xiebao_rpc::MarketApiClient::publish(
                &shared.node.rpc,
                json.clone(),
                Some(url.clone()),
            )
            .await
            {
                Ok(hash) => {
                    tracing::info!(%hash, "workerpool order published in the market");
                    break;
                }
                Err(e) => {
                    tracing::warn!("publishing the workerpool order in the market: {e}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

fn load_or_make_order(
    config: &Config,
    node: &Node,
) -> Result<Vec<WorkerpoolOrder>, SchedulerError> {
    let path = config.data_dir.join("orders.json");
    if let Some(orders) = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Vec<WorkerpoolOrder>>(&bytes).ok())
        .filter(|orders| !orders.is_empty())
    {
        return Ok(orders);
    }
    let policy = &config.order;
    let mut order = WorkerpoolOrder {
        workerpool: config.workerpool,
        workerpoolprice: policy.price.to_u256(),
        volume: U256::from(policy.volume),
        tag: policy.tag,
        category: U256::from(policy.category),
        trust: U256::from(policy.trust),
        apprestrict: Address::ZERO,
        datasetrestrict: Address::ZERO,
        requesterrestrict: Address::ZERO,
        salt: B256::from(rand::random::<[u8; 32]>()),
        sign: Bytes::new(),
    };
    order.sign_with(&node.domain, &config.key);
    let orders = vec![order];
    let json = serde_json::to_vec_pretty(&orders).unwrap_or_default();
    write_atomic(&path, &json).map_err(io(format!("writing {}", path.display())))?;
    Ok(orders)
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;

    fn task() -> B256 {
        B256::repeat_byte(0x7a)
    }

    /// A deterministic archive of `files` (path, content), as a worker makes one.
    fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        builder.mode(tar::HeaderMode::Deterministic);
        for (path, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, path, *content).unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// The consensus value of an output made of `files`: what the winners agreed on.
    fn consensus_of(files: &[(&str, &[u8])]) -> B256 {
        let entries: Vec<OutputEntry> =
            files.iter().map(|(path, content)| OutputEntry::file(*path, content)).collect();
        ids::result_hash(&task(), &output_digest_v1(&entries))
    }

    const OUTPUT: [(&str, &[u8]); 2] = [("result.txt", b"42\n"), ("tiles/0.png", b"\x89PNG")];

    #[test]
    fn an_archive_s_digest_is_the_digest_of_its_unpacked_output() {
        let bytes = archive(&OUTPUT);
        let entries: Vec<OutputEntry> =
            OUTPUT.iter().map(|(path, content)| OutputEntry::file(*path, content)).collect();
        assert_eq!(archive_digest(&bytes), Ok(output_digest_v1(&entries)));
        // An empty directory counts as one, a directory with files beneath it does not.
        let mut builder = tar::Builder::new(Vec::new());
        for dir in ["empty", "tiles"] {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            header.set_cksum();
            builder.append_data(&mut header, dir, std::io::empty()).unwrap();
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(4);
        header.set_cksum();
        builder.append_data(&mut header, "tiles/0.png", &b"\x89PNG"[..]).unwrap();
        let with_dirs = builder.into_inner().unwrap();
        let expected = output_digest_v1(&[
            OutputEntry::EmptyDir { path: "empty".into() },
            OutputEntry::file("tiles/0.png", b"\x89PNG"),
        ]);
        assert_eq!(archive_digest(&with_dirs), Ok(expected));
    }

    #[test]
    fn an_archive_with_a_link_is_refused() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder.append_link(&mut header, "result.txt", "/etc/passwd").unwrap();
        let bytes = builder.into_inner().unwrap();
        assert!(
            matches!(archive_digest(&bytes), Err(ResultCheckError::BadArchive { reason }) if reason.contains("not a regular file")),
        );
    }

    #[test]
    fn only_the_agreed_result_under_its_own_content_id_passes_the_check() {
        let bytes = archive(&OUTPUT);
        let cid = xiebao_results::cid_of(&bytes);
        let consensus = consensus_of(&OUTPUT);
        assert_eq!(check_result(&task(), &cid, &bytes, &consensus, false), Ok(()));
        // Other bytes under that link.
        let other = archive(&[("result.txt", b"41\n")]);
        assert_eq!(
            check_result(&task(), &cid, &other, &consensus, false),
            Err(ResultCheckError::CidMismatch {
                cid: cid.clone(),
                actual: xiebao_results::cid_of(&other)
            })
        );
        // A well-formed link to another result: its own content id, the wrong digest.
        let other_cid = xiebao_results::cid_of(&other);
        match check_result(&task(), &other_cid, &other, &consensus, false) {
            Err(ResultCheckError::DigestMismatch { consensus: c, .. }) => assert_eq!(c, consensus),
            other => panic!("{other:?}"),
        }
        // The same output as another task's result is not this task's.
        assert!(matches!(
            check_result(&B256::repeat_byte(1), &cid, &bytes, &consensus, false),
            Err(ResultCheckError::DigestMismatch { .. })
        ));
        // A sealed result: only the content id can be checked.
        let sealed = b"ciphertext the scheduler cannot open".to_vec();
        let sealed_cid = xiebao_results::cid_of(&sealed);
        assert_eq!(check_result(&task(), &sealed_cid, &sealed, &consensus, true), Ok(()));
        assert!(matches!(
            check_result(&task(), &cid, &sealed, &consensus, true),
            Err(ResultCheckError::CidMismatch { .. })
        ));
    }

    /// Serves one canned HTTP response per connection, `responses.len()` connections, on a
    /// free loopback port; returns the base URL.
    fn serve(responses: Vec<Vec<u8>>) -> (String, std::thread::JoinHandle<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            for response in responses {
                let (mut stream, _) = listener.accept().unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 16_384 {
                    if stream.read(&mut byte).unwrap_or(0) == 0 {
                        break;
                    }
                    head.push(byte[0]);
                }
                // The client may hang up early (too large): that is fine.
                let _ = stream.write_all(&response);
            }
        });
        (url, handle)
    }

    fn ok(body: &[u8], content_length: bool) -> Vec<u8> {
        let mut response = b"HTTP/1.1 200 OK\r\nconnection: close\r\n".to_vec();
        if content_length {
            response.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        }
        response.extend_from_slice(b"\r\n");
        response.extend_from_slice(body);
        response
    }

    #[tokio::test]
    async fn the_checker_fetches_a_bounded_result_and_checks_it() {
        let bytes = archive(&OUTPUT);
        let cid = xiebao_results::cid_of(&bytes);
        let consensus = consensus_of(&OUTPUT);
        let big = vec![7u8; 16_384];
        let responses = vec![
            ok(&bytes, true),
            ok(&big, true),
            ok(&big, false),
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec(),
            b"HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:1/x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec(),
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                .to_vec(),
        ];
        let (url, server) = serve(responses);
        let checker = ResultChecker::new(Duration::from_secs(10), 8_192).unwrap();
        let link = format!("{url}/v1/results/{cid}");
        assert_eq!(checker.check(&task(), &link, &consensus, false).await, Ok(()));
        for streamed in ["with a length", "without a length"] {
            assert_eq!(
                checker.check(&task(), &link, &consensus, false).await,
                Err(ResultCheckError::TooLarge { link: link.clone(), size_max_bytes: 8_192 }),
                "{streamed}"
            );
        }
        for status in [404, 302] {
            let refused = checker.check(&task(), &link, &consensus, false).await;
            assert_eq!(refused, Err(ResultCheckError::Status { link: link.clone(), status }));
            assert!(!refused.unwrap_err().is_transient(), "{status} is final");
        }
        let busy = checker.check(&task(), &link, &consensus, false).await;
        assert_eq!(busy, Err(ResultCheckError::Status { link: link.clone(), status: 503 }));
        assert!(busy.unwrap_err().is_transient(), "a busy store is tried again");
        server.join().unwrap();
        for link in ["file:///etc/passwd", "http://127.0.0.1:1/"] {
            assert_eq!(
                checker.check(&task(), link, &consensus, false).await,
                Err(ResultCheckError::BadLink { link: link.into() })
            );
        }
    }

    fn membership(workerpool: Address, status: MembershipStatus, bonded: u128) -> Membership {
        Membership {
            workerpool,
            status,
            bonded: Nrlc(bonded),
            in_contributions: Nrlc(5),
            release_at: 0,
        }
    }

    #[test]
    fn a_membership_pays_for_slots_while_it_is_active_and_staked() {
        let pool = Address::repeat_byte(0xb0);
        let active = membership(pool, MembershipStatus::Active, 25);
        assert_eq!(member_slots(Some(&active), pool, Nrlc(10)), Ok(3), "bonded + locked: 30");
        let slashed = membership(pool, MembershipStatus::Active, 4);
        assert!(member_slots(Some(&slashed), pool, Nrlc(10)).unwrap_err().contains("below"));
        let leaving = membership(pool, MembershipStatus::Unbonding, 25);
        assert!(member_slots(Some(&leaving), pool, Nrlc(10)).unwrap_err().contains("Unbonding"));
        let elsewhere = membership(Address::repeat_byte(1), MembershipStatus::Active, 25);
        assert!(member_slots(Some(&elsewhere), pool, Nrlc(10)).is_err());
        assert!(member_slots(None, pool, Nrlc(10)).is_err());
    }
}
