//! The scheduler's API for its workers and for requesters: one jsonrpsee trait (`pool_`
//! namespace) that generates both the server and the typed client.
//!
//! A worker asks for a [`PoolApiClient::challenge`], signs it ([`hello_hash`]) and opens the
//! long-lived [`PoolApiClient::subscribe_work`] subscription: the scheduler pushes
//! [`Work`] over it (the first item is [`Work::Welcome`] with the session token), and the
//! worker answers with [`PoolApiClient::report`]. When the connection drops the scheduler
//! counts the worker lost and hands its unfinished replicates to others; the worker reconnects
//! and is told again what it still owes (reveals, uploads).

use alloy_primitives::{Address, B256, Bytes, Keccak256};
use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::types::ErrorObjectOwned;
use serde::{Deserialize, Serialize};
use xiebao_types::tx::AppType;
use xiebao_types::{Timestamp, WorkerpoolOrder};

/// Signing domain of a worker's hello; renaming it is a breaking change.
const HELLO_DOMAIN: &[u8] = b"_XIEBAO_POOL_HELLO";

/// What a worker signs (as an `eth_sign` message) to open a session:
/// `keccak256("_XIEBAO_POOL_HELLO" ‖ workerpool ‖ worker ‖ challenge)`.
pub fn hello_hash(workerpool: &Address, worker: &Address, challenge: &B256) -> B256 {
    let mut hasher = Keccak256::new();
    hasher.update(HELLO_DOMAIN);
    hasher.update(workerpool);
    hasher.update(worker);
    hasher.update(challenge);
    hasher.finalize()
}

/// What a worker can do.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Replicates it runs at once.
    pub slots: u32,
    /// CPU cores.
    pub cores: u32,
    /// Memory, MiB.
    pub memory_mib: u64,
    /// Runtimes it has (`WASM`, `OCI`).
    pub runtimes: Vec<String>,
    /// Whether it has a GPU the apps can use.
    pub gpu: bool,
    /// Whether it runs TEE enclaves.
    pub tee: bool,
}

/// A worker opening its session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The worker's account (must be an active member of the pool).
    pub worker: Address,
    /// The challenge from [`PoolApiClient::challenge`].
    pub challenge: B256,
    /// The worker's `eth_sign` of [`hello_hash`].
    pub signature: Bytes,
    /// What it can do.
    pub capabilities: Capabilities,
}

/// Where an app or dataset is and what its bytes hash to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    /// Its registry address.
    pub address: Address,
    /// Where the bytes are (an `http(s)://` URL).
    pub multiaddr: String,
    /// sha256 of the bytes.
    pub checksum: B256,
}

/// How a worker finishes a replicate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// Trust ≤ 1: upload, then `contributeAndFinalize` with the result link (one transaction).
    ContributeAndFinalize,
    /// Trust > 1: `contribute`, then wait for [`Work::Reveal`] / [`Work::Upload`].
    Contribute,
}

/// One replicate handed to a worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// The task id.
    pub task: B256,
    /// Its deal.
    pub deal: B256,
    /// The task's index within the deal (0-based, `IEXEC_BOT_TASK_INDEX`).
    pub index: u64,
    /// Tasks in the deal (`IEXEC_BOT_SIZE`).
    pub bot_size: u64,
    /// The app.
    pub app: Resource,
    /// How to run it.
    pub app_type: AppType,
    /// The deal's dataset, if any.
    pub dataset: Option<Resource>,
    /// The request's parameters (the app's arguments).
    pub params: String,
    /// Who reads the results (encrypted results are sealed for this account's key).
    pub beneficiary: Address,
    /// The deal's start (the guest clock shows it).
    pub start_time: Timestamp,
    /// The category's work clock T, seconds: the execution time limit.
    pub time_ref_s: u64,
    /// Contributions must be final strictly before this time.
    pub contribution_deadline: Timestamp,
    /// The pool owner's authorization (`eth_sign` of the authorization hash).
    pub authorization: Bytes,
    /// How to finish.
    pub finish: Finish,
}

/// What the scheduler pushes to a worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Work {
    /// The session opened; reports carry `session`.
    Welcome {
        /// The session token.
        session: B256,
        /// The pool.
        workerpool: Address,
    },
    /// Run a replicate.
    Run(Box<Assignment>),
    /// Consensus was reached on your result: reveal it.
    Reveal {
        /// The task.
        task: B256,
    },
    /// Upload your result to the result store and report its link.
    Upload {
        /// The task.
        task: B256,
    },
    /// Stop working on the task and forget it.
    Abort {
        /// The task.
        task: B256,
        /// Why.
        reason: String,
    },
    /// The task is finalized: forget it.
    Complete {
        /// The task.
        task: B256,
    },
}

/// How far a worker is with a replicate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Progress {
    /// Fetching the app or the dataset (never counted as execution time).
    SettingUp {
        /// What, e.g. `fetching app 40 %`.
        detail: String,
    },
    /// The app runs.
    Running,
    /// The app finished and the result is computed; the worker's slot is free again while the
    /// result goes to the store and the chain.
    Computed,
    /// The contribution is final on chain.
    Contributed {
        /// Its result hash.
        result_hash: B256,
    },
    /// The reveal is final on chain.
    Revealed,
    /// The result is in the store.
    Uploaded {
        /// The result link written on chain at finalize.
        link: String,
    },
    /// `contributeAndFinalize` is final: the task is done.
    Finalized,
    /// The replicate failed.
    Failed {
        /// Where (`setting-up`, `running`, `contributing`, …).
        stage: String,
        /// Why.
        reason: String,
    },
}

/// A worker's progress report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The session token from [`Work::Welcome`].
    pub session: B256,
    /// The task.
    pub task: B256,
    /// Where it stands.
    pub progress: Progress,
}

/// Why a task is not finished yet (or how it ended): always an answer to "why is my task stuck?".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum TaskState {
    /// Initialize is on its way to the chain.
    Initializing,
    /// No capable worker is free.
    WaitingForWorker {
        /// Which requirement nothing satisfies, or that all are busy.
        why: String,
    },
    /// A worker fetches the app or dataset.
    SettingUp {
        /// What it fetches.
        detail: String,
    },
    /// Workers run it.
    Running {
        /// Replicates running.
        replicates: u32,
    },
    /// Some contributed; more are needed.
    WaitingForConsensus {
        /// Contributions on chain.
        contributions: u32,
        /// Replicates still computing.
        pending: u32,
    },
    /// Consensus reached; winners reveal.
    Revealing {
        /// Reveals on chain.
        revealed: u32,
        /// Winners.
        winners: u32,
    },
    /// Waiting for a winner's upload.
    Uploading,
    /// Finalize is on its way to the chain.
    Finalizing,
    /// No winner revealed before the reveal deadline: reopening.
    RevealTimeout,
    /// Finalized: the result is at `link`.
    Completed {
        /// The result link.
        link: String,
    },
    /// Failed and refunded.
    Failed {
        /// Why.
        why: String,
    },
}

impl TaskState {
    /// Whether the task reached an end.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Completed { .. } | Self::Failed { .. })
    }
}

/// A task as its scheduler sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskView {
    /// The task id.
    pub task: B256,
    /// Its deal.
    pub deal: B256,
    /// Index within the deal.
    pub index: u64,
    /// Where it stands and why.
    pub state: TaskState,
    /// The last thing that happened to it.
    pub last_event: String,
    /// The next deadline that matters (contribution, reveal or final), seconds.
    pub next_deadline: Timestamp,
    /// Workers that got a replicate, in order.
    pub workers: Vec<Address>,
}

/// A deal as its scheduler sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealView {
    /// The deal id.
    pub deal: B256,
    /// Tasks in the deal.
    pub bot_size: u64,
    /// Completed tasks.
    pub completed: u64,
    /// Failed tasks.
    pub failed: u64,
    /// Every task, by index.
    pub tasks: Vec<TaskView>,
}

/// A connected worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerView {
    /// Its account.
    pub worker: Address,
    /// What it can do (`slots`: what it claimed, bounded by what its stake pays for).
    pub capabilities: Capabilities,
    /// Replicates it holds now.
    pub busy: u32,
    /// Its on-chain score when it connected.
    pub score: u64,
}

/// The scheduler at a glance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolStatus {
    /// The workerpool.
    pub workerpool: Address,
    /// Connected workers.
    pub workers: Vec<WorkerView>,
    /// Deals known.
    pub deals: u64,
    /// Tasks not finished.
    pub open_tasks: u64,
    /// Tasks completed.
    pub completed_tasks: u64,
    /// Tasks failed.
    pub failed_tasks: u64,
    /// Result links ignored because the worker reporting them was not the task's designated
    /// uploader (late reports, or attempts to hijack a result).
    #[serde(default)]
    pub ignored_links: u64,
}

/// The scheduler's API.
#[rpc(server, client, namespace = "pool")]
pub trait PoolApi {
    /// A fresh single-use challenge for [`Hello`].
    #[method(name = "challenge")]
    async fn challenge(&self) -> Result<B256, ErrorObjectOwned>;

    /// Opens a worker's session: the scheduler pushes [`Work`] until the connection drops.
    #[subscription(name = "subscribeWork" => "work", unsubscribe = "unsubscribeWork", item = Work)]
    async fn subscribe_work(&self, hello: Hello) -> SubscriptionResult;

    /// A worker's progress on a replicate.
    #[method(name = "report")]
    async fn report(&self, report: Report) -> Result<(), ErrorObjectOwned>;

    /// A task: where it stands, why, its last event and next deadline.
    #[method(name = "task")]
    async fn task_view(&self, task: B256) -> Result<Option<TaskView>, ErrorObjectOwned>;

    /// A deal and all of its tasks.
    #[method(name = "deal")]
    async fn deal_view(&self, deal: B256) -> Result<Option<DealView>, ErrorObjectOwned>;

    /// Workers, deals and task counts.
    #[method(name = "status")]
    async fn pool_status(&self) -> Result<PoolStatus, ErrorObjectOwned>;

    /// The pool's current workerpool orders (signed by the pool owner), for requesters.
    #[method(name = "orders")]
    async fn orders(&self) -> Result<Vec<WorkerpoolOrder>, ErrorObjectOwned>;
}
