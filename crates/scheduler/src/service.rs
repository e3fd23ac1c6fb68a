//! The running scheduler: follows the chain over WebSocket, serves workers and requesters, and
//! carries out the [`Board`]'s actions (pushes to workers, batched transactions).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, Bytes, U256};
use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::server::{PendingSubscriptionSink, PingConfig, Server, ServerConfig, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;
use tokio::sync::mpsc;
use xiebao_protocol::{Event, MembershipStatus, Task};
use xiebao_rpc::{EventFilter, XiebaoApiClient};
use xiebao_sdk::client::{Node, Sender, SenderOptions};
use xiebao_types::order::SignedOrder as _;
use xiebao_types::tx::{Finalize, Initialize, Reopen};
use xiebao_types::{Nrlc, SecretKey, Tag, WorkerpoolOrder, ids};

use crate::api::{
    DealView, Hello, PoolApiServer, PoolStatus, Report, Resource, TaskView, Work, hello_hash,
};
use crate::board::{Action, Board, DealInfo};

/// How often timeouts, slow replicates and hand-out are looked at.
const TICK: Duration = Duration::from_millis(100);
/// How often unfinished tasks are re-read from the chain (a fallback for missed events)…
const SWEEP: Duration = Duration::from_secs(5);
/// …and how many per round.
const SWEEP_TASKS: usize = 100;
/// The event types the scheduler follows.
const EVENT_TYPES: [&str; 8] = [
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

/// Checks a worker's hello (signature, active membership of this pool); returns its score.
async fn check_hello(shared: &Shared, hello: &Hello) -> Result<u64, String> {
    let pool = shared.workerpool;
    let hash = hello_hash(&pool, &hello.worker, &hello.challenge);
    match xiebao_types::crypto::recover_eth_signed(&hash, &hello.signature) {
        Ok(signer) if signer == hello.worker => {}
        Ok(signer) => {
            return Err(format!("hello signed by {signer}, not by the worker {}", hello.worker));
        }
        Err(e) => return Err(format!("hello signature: {e}")),
    }
    match shared.node.rpc.membership(hello.worker).await {
        Ok(Some(m)) if m.workerpool == pool && m.status == MembershipStatus::Active => {}
        Ok(other) => {
            let now = match other {
                Some(m) => format!("its membership is {:?} in {}", m.status, m.workerpool),
                None => "it has no membership".into(),
            };
            return Err(format!(
                "worker {} is not an active member of workerpool {pool} ({now}): join it by staking (JoinPool)",
                hello.worker
            ));
        }
        Err(e) => return Err(format!("cannot check the membership: {e}")),
    }
    Ok(shared.node.rpc.score(hello.worker).await.unwrap_or(0))
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
        let score = match check_hello(shared, &hello).await {
            Ok(score) => score,
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
        tracing::info!(worker = %hello.worker, slots = hello.capabilities.slots, "worker connected");
        let worker = hello.worker;
        shared.with_board(|b, now, _| b.connect(worker, session, hello.capabilities, score, now));
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
        self.shared
            .with_board(|b, now, chain_time| b.report(worker, &task, progress, now, chain_time));
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
    let deals_file = config.data_dir.join("deals.json");
    let known: Vec<B256> = std::fs::read(&deals_file)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner {
            board: Board::new(config.key.clone(), config.workerpool)
                .with_contribute_and_finalize(config.contribute_and_finalize),
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
        .max_connections(10_000)
        .enable_ws_ping(
            PingConfig::new()
                .ping_interval(Duration::from_secs(2))
                .inactive_limit(Duration::from_secs(10)),
        )
        .build();
    let server = Server::builder()
        .set_config(server_config)
        .build(config.listen)
        .await
        .map_err(io(format!("listening on {}", config.listen)))?;
    let address = server.local_addr().map_err(io("reading the bound address"))?;
    tokio::spawn(publish_orders(shared.clone(), address));
    let handle = server.start(Api { shared }.into_rpc());
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
