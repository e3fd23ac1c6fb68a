//! The scheduler's bookkeeping, without I/O: deals, tasks and their replicates, connected
//! workers, and the decisions (who runs what, when to reveal, finalize or reopen) as
//! [`Action`]s for the service to carry out.
//!
//! Time comes in as arguments: `now_ms` (the service's monotonic milliseconds, for worker
//! timeouts and slow-replicate detection) and `chain_time` (the last block's timestamp, for
//! on-chain deadlines).

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::{Address, B256, U256};
use xiebao_protocol::{ContributionStatus, Task, TaskStatus};
use xiebao_types::tx::AppType;
use xiebao_types::{Nrlc, SecretKey, Tag, Timestamp, ids};

use crate::api::{
    Assignment, Capabilities, DealView, Finish, PoolStatus, Progress, Resource, TaskState,
    TaskView, Work, WorkerView,
};

/// Failed replicates after which a task is given up (reported failed; the chain refunds it at
/// the final deadline).
pub const MAX_FAILED_REPLICATES: usize = 3;
/// Failure stages that fail the same way on every worker: the app's own failure, and bytes
/// (app, image, dataset) that do not match their registry checksum.
const DETERMINISTIC_FAILURES: [&str; 2] = ["running", "verifying"];
/// A replicate running longer than this many times the bag's median gets a twin.
const SLOW_FACTOR: u64 = 3;
/// …and at least this much longer than the median, ms.
const SLOW_MARGIN_MS: u64 = 2_000;
/// Finished replicates a bag needs before its median counts.
const SLOW_MIN_SAMPLES: usize = 3;
/// An uploader that has not uploaded after this long is replaced, ms.
const UPLOAD_TIMEOUT_MS: u64 = 30_000;
/// How long a replicate may take to start running — fetching the app (or pulling its image)
/// and the dataset, each of which a worker bounds to 300 s — before it goes to another
/// worker, ms (the default of [`Board::with_setup_timeout_ms`]).
pub const SETUP_TIMEOUT_MS_DEFAULT: u64 = 600_000;
/// How far past the category's work clock T (the sandbox's own wall-time limit) a replicate
/// may report running before it goes to another worker, ms.
const RUN_GRACE_MS: u64 = 60_000;
/// The longest work clock a worker's sandbox enforces, s (it clamps T to this).
const RUN_LIMIT_S_MAX: u64 = 3_600;
/// Most slots counted for one worker, whatever it claims or stakes.
pub const SLOTS_MAX_PER_WORKER: u32 = 1_024;

/// What the service must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Push work to a connected worker.
    Push {
        /// The worker.
        worker: Address,
        /// The work.
        work: Work,
    },
    /// Send `initialize(deal, idx)`.
    Initialize {
        /// The task.
        task: B256,
        /// The deal.
        deal: B256,
        /// Absolute index.
        idx: U256,
    },
    /// Send `finalize(task, link)`.
    Finalize {
        /// The task.
        task: B256,
        /// The result link.
        link: String,
    },
    /// Send `reopen(task)`.
    Reopen {
        /// The task.
        task: B256,
    },
    /// Fetch the result the designated uploader `worker` reported at `link` and check that
    /// it is the agreed one (its bytes match the link's content id and, unless `sealed`,
    /// their result digest gives `consensus`); answer with [`Board::result_checked`]. Nothing
    /// is finalized with a link before that answer.
    CheckResult {
        /// The task.
        task: B256,
        /// The uploader.
        worker: Address,
        /// The link it reported.
        link: String,
        /// The task's consensus value: `result_hash(task, digest)` of the agreed digest.
        consensus: B256,
        /// Whether the result is sealed for the beneficiary (the scheduler cannot open it:
        /// only its content id and size are checked).
        sealed: bool,
    },
    /// A worker's report was ignored because it may not make it (for the log: it is either
    /// late or an attack).
    Ignored {
        /// The worker.
        worker: Address,
        /// The task.
        task: B256,
        /// Why.
        why: String,
    },
}

/// A deal's fixed facts, as the scheduler needs them.
#[derive(Clone, Debug)]
pub struct DealInfo {
    /// The deal id.
    pub id: B256,
    /// The deal as on chain.
    pub deal: xiebao_protocol::Deal,
    /// The app.
    pub app: Resource,
    /// How it runs.
    pub app_type: AppType,
    /// The dataset, if any.
    pub dataset: Option<Resource>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Status {
    Assigned,
    SettingUp(String),
    Running,
    /// Computed; uploading or contributing (no longer holding a worker slot).
    Computed,
    Contributed(B256),
    Revealed,
    Finished,
    Failed(String),
    Lost,
}

impl Status {
    fn pending(&self) -> bool {
        matches!(self, Self::Assigned | Self::SettingUp(_) | Self::Running | Self::Computed)
    }
}

#[derive(Clone, Debug)]
struct Replicate {
    worker: Address,
    status: Status,
    /// When it was handed out, then when it started running (setting up never counts as
    /// running time).
    assigned_ms: u64,
    /// When its status last changed.
    since_ms: u64,
    slow: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    Initializing,
    Active,
    Revealing,
    Finalizing,
    Reopening,
    Completed(String),
    Failed(String),
}

#[derive(Clone, Debug)]
struct TaskEntry {
    id: B256,
    deal: B256,
    index: u64,
    phase: Phase,
    replicates: Vec<Replicate>,
    /// Contributions seen on chain: worker → result hash.
    contributions: BTreeMap<Address, B256>,
    consensus: Option<B256>,
    reveal_deadline: Timestamp,
    revealed: BTreeSet<Address>,
    /// The result link, once checked: the one finalize sends.
    link: Option<String>,
    /// The designated uploader and since when.
    uploader: Option<(Address, u64)>,
    /// The link the designated uploader reported, while the service checks it.
    checking: Option<(Address, String)>,
    /// Winners whose link failed the check, and when the last one did: they are not asked
    /// again while another winner can upload.
    refused: BTreeSet<Address>,
    refused_ms: u64,
    last_event: String,
}

impl TaskEntry {
    fn replicate_mut(&mut self, worker: &Address) -> Option<&mut Replicate> {
        self.replicates.iter_mut().rev().find(|r| r.worker == *worker)
    }

    fn winners(&self) -> Vec<Address> {
        let Some(consensus) = self.consensus else { return Vec::new() };
        self.contributions.iter().filter(|(_, h)| **h == consensus).map(|(w, _)| *w).collect()
    }
}

#[derive(Clone, Debug)]
struct WorkerEntry {
    session: B256,
    /// What it announced, `slots` bounded by its stake ([`Board::set_slot_limit`]).
    capabilities: Capabilities,
    /// The slots it claimed.
    claimed_slots: u32,
    score: u64,
    busy: BTreeSet<B256>,
}

#[derive(Clone, Debug)]
struct DealEntry {
    info: DealInfo,
    /// Durations of finished replicates, ms, kept sorted: the median the slow-replicate
    /// check reads for every running replicate at every tick is then one lookup (sorting a
    /// copy there cost a 10,000-task bag a third of the scheduler's CPU).
    durations: Vec<u64>,
}

/// The scheduler's whole view.
#[derive(Debug)]
pub struct Board {
    key: SecretKey,
    workerpool: Address,
    deals: BTreeMap<B256, DealEntry>,
    deal_order: Vec<B256>,
    tasks: BTreeMap<B256, TaskEntry>,
    /// Tasks in hand-out order: (deal sequence, index) → task id.
    order: BTreeMap<(usize, u64), B256>,
    /// The keys in `order` of the tasks not known to be final (completed and failed tasks
    /// are dropped from it lazily, by `dispatch`): hand-out never walks finished tasks, so
    /// its cost does not grow with the bags behind it.
    unfinished: BTreeSet<(usize, u64)>,
    workers: BTreeMap<Address, WorkerEntry>,
    scores: BTreeMap<Address, u64>,
    /// Trust-1 replicates end with one `contributeAndFinalize`; when off, they contribute and
    /// the board asks for the reveal and finalizes, as at trust > 1.
    contribute_and_finalize: bool,
    /// Most slots each worker's stake pays for ([`stake_slots`]), kept across sessions.
    slot_limits: BTreeMap<Address, u32>,
    /// How long a replicate may set up before it goes to another worker, ms.
    setup_timeout_ms: u64,
    /// Result links reported by workers that were not the task's designated uploader.
    ignored_links: u64,
}

/// The slots a worker's stake pays for: one per pool minimum stake it has staked (bonded or
/// locked in contributions), at most [`SLOTS_MAX_PER_WORKER`]. A pool without a minimum
/// stake bounds nothing here (the setup and running timeouts still free what a worker
/// holds without working).
pub fn stake_slots(staked: Nrlc, min_stake: Nrlc) -> u32 {
    if min_stake.is_zero() {
        return SLOTS_MAX_PER_WORKER;
    }
    u32::try_from(staked.0 / min_stake.0).unwrap_or(u32::MAX).min(SLOTS_MAX_PER_WORKER)
}

/// PoCo's worker weight: `max(score / 3, 3) − 1` (the protocol's own formula).
pub fn weight(score: u64) -> U256 {
    U256::from(xiebao_protocol::worker_weight(score))
}

/// Reference §4.8: whether consensus is possible with what is contributed and pending.
///
/// `best` is the weight product of the best contributed result, `pending` the product of the
/// pending replicates' weights (each 0 when there are none), `others` the sum of the other
/// results' products.
pub fn consensus_possible(trust: u64, best: U256, pending: U256, others: U256) -> bool {
    if trust <= 1 {
        return best > U256::ZERO || pending > U256::ZERO;
    }
    let prediction = match (best.is_zero(), pending.is_zero()) {
        (true, _) => pending,
        (false, true) => best,
        (false, false) => best.saturating_mul(pending),
    };
    let trust = U256::from(trust);
    prediction.saturating_mul(trust)
        > (U256::from(1) + prediction + others).saturating_mul(trust - U256::from(1))
}

impl Board {
    /// An empty board for `workerpool`, signing authorizations with its owner's `key`.
    pub fn new(key: SecretKey, workerpool: Address) -> Self {
        Self {
            key,
            workerpool,
            deals: BTreeMap::new(),
            deal_order: Vec::new(),
            tasks: BTreeMap::new(),
            order: BTreeMap::new(),
            unfinished: BTreeSet::new(),
            workers: BTreeMap::new(),
            scores: BTreeMap::new(),
            contribute_and_finalize: true,
            slot_limits: BTreeMap::new(),
            setup_timeout_ms: SETUP_TIMEOUT_MS_DEFAULT,
            ignored_links: 0,
        }
    }

    /// How long a replicate may take to start running (assigned or setting up) before it is
    /// handed to another worker, ms (default [`SETUP_TIMEOUT_MS_DEFAULT`]). Setting up still
    /// never counts as running time for the slow-replicate check; this only bounds it.
    pub fn with_setup_timeout_ms(mut self, setup_timeout_ms: u64) -> Self {
        self.setup_timeout_ms = setup_timeout_ms;
        self
    }

    /// Bounds `worker`'s slots to `limit` (what its stake pays for, [`stake_slots`]), now and
    /// for its later sessions. Lowering it takes nothing from the worker; it gets no new
    /// replicate until it is under the limit. Returns new work when raised.
    pub fn set_slot_limit(&mut self, worker: Address, limit: u32, now_ms: u64) -> Vec<Action> {
        let limit = limit.min(SLOTS_MAX_PER_WORKER);
        self.slot_limits.insert(worker, limit);
        if let Some(w) = self.workers.get_mut(&worker) {
            w.capabilities.slots = w.claimed_slots.min(limit);
        }
        self.dispatch(now_ms)
    }

    /// The slot limit set for `worker`, if any.
    pub fn slot_limit(&self, worker: &Address) -> Option<u32> {
        self.slot_limits.get(worker).copied()
    }

    /// The connected workers.
    pub fn workers(&self) -> Vec<Address> {
        self.workers.keys().copied().collect()
    }

    /// `worker`'s membership of the pool ended (it is leaving, left, or its stake fell below
    /// the pool's minimum): its session is closed (the service drops its connection) and its
    /// unfinished replicates go to others. Returns the hand-out.
    pub fn membership_ended(&mut self, worker: Address, why: &str, now_ms: u64) -> Vec<Action> {
        if !self.workers.contains_key(&worker) {
            return Vec::new();
        }
        self.lose(worker);
        self.workers.remove(&worker);
        for task in self.tasks.values_mut() {
            if task.uploader.is_some_and(|(w, _)| w == worker) && task.link.is_none() {
                task.uploader = None;
            }
            if task.replicates.iter().any(|r| r.worker == worker && r.status == Status::Lost) {
                task.last_event = format!("worker {worker} {why}");
            }
        }
        self.dispatch(now_ms)
    }

    /// Whether trust-1 replicates end with one `contributeAndFinalize` (the default). Off,
    /// a trust-1 task takes the trust > 1 path — contribute, reveal when asked, upload,
    /// finalize — which is what iExec's sidechain does: the baseline benchmarks compare with it.
    pub fn with_contribute_and_finalize(mut self, enabled: bool) -> Self {
        self.contribute_and_finalize = enabled;
        self
    }

    /// Whether the deal is known.
    pub fn knows_deal(&self, deal: &B256) -> bool {
        self.deals.contains_key(deal)
    }

    /// Every known deal, in arrival order.
    pub fn deal_ids(&self) -> Vec<B256> {
        self.deal_order.clone()
    }

    /// Adds a deal; `tasks[i]` is task `i`'s on-chain record if it is initialized. Returns the
    /// initializations to send.
    pub fn add_deal(&mut self, info: DealInfo, tasks: &[Option<Task>]) -> Vec<Action> {
        let id = info.id;
        if self.deals.contains_key(&id) {
            return Vec::new();
        }
        let seq = self.deal_order.len();
        let deal = info.deal.clone();
        self.deal_order.push(id);
        self.deals.insert(id, DealEntry { info, durations: Vec::new() });
        let mut actions = Vec::new();
        for index in 0..deal.bot_size {
            let idx = deal.bot_first + U256::from(index);
            let task = ids::task_id(&id, idx);
            let mut entry = TaskEntry {
                id: task,
                deal: id,
                index,
                phase: Phase::Initializing,
                replicates: Vec::new(),
                contributions: BTreeMap::new(),
                consensus: None,
                reveal_deadline: 0,
                revealed: BTreeSet::new(),
                link: None,
                uploader: None,
                checking: None,
                refused: BTreeSet::new(),
                refused_ms: 0,
                last_event: "deal matched".into(),
            };
            match tasks.get(usize::try_from(index).unwrap_or(usize::MAX)).cloned().flatten() {
                Some(on_chain) => sync(&mut entry, &on_chain),
                None => actions.push(Action::Initialize { task, deal: id, idx }),
            }
            self.order.insert((seq, index), task);
            if !matches!(entry.phase, Phase::Completed(_) | Phase::Failed(_)) {
                self.unfinished.insert((seq, index));
            }
            self.tasks.insert(task, entry);
        }
        actions
    }

    /// A worker opened a session; returns what it still owes (reveals, uploads) and new work.
    pub fn connect(
        &mut self,
        worker: Address,
        session: B256,
        capabilities: Capabilities,
        score: u64,
        now_ms: u64,
    ) -> Vec<Action> {
        self.lose(worker);
        self.scores.insert(worker, score);
        let mut capabilities = capabilities;
        let claimed_slots = capabilities.slots;
        let limit = self.slot_limits.get(&worker).copied().unwrap_or(SLOTS_MAX_PER_WORKER);
        capabilities.slots = claimed_slots.min(limit);
        self.workers.insert(
            worker,
            WorkerEntry { session, capabilities, claimed_slots, score, busy: BTreeSet::new() },
        );
        let mut actions = Vec::new();
        for task in self.tasks.values() {
            if task.phase != Phase::Revealing {
                continue;
            }
            if task.winners().contains(&worker) && !task.revealed.contains(&worker) {
                actions.push(Action::Push { worker, work: Work::Reveal { task: task.id } });
            }
            if task.uploader.is_some_and(|(w, _)| w == worker)
                && task.link.is_none()
                && task.checking.is_none()
            {
                actions.push(Action::Push { worker, work: Work::Upload { task: task.id } });
            }
        }
        actions.extend(self.dispatch(now_ms));
        actions
    }

    /// Up to `limit` unfinished tasks after `cursor` (in id order, wrapping), skipping those
    /// whose initialization is on its way: the service re-reads them from the chain in case an
    /// event was missed.
    pub fn open_tasks_after(&self, cursor: &B256, limit: usize) -> Vec<B256> {
        let open = |(id, t): (&B256, &TaskEntry)| {
            (!matches!(t.phase, Phase::Initializing | Phase::Completed(_) | Phase::Failed(_)))
                .then_some(*id)
        };
        let mut out: Vec<B256> = self
            .tasks
            .range((std::ops::Bound::Excluded(*cursor), std::ops::Bound::Unbounded))
            .filter_map(open)
            .take(limit)
            .collect();
        if out.len() < limit {
            let more: Vec<B256> = self
                .tasks
                .range(..=*cursor)
                .filter_map(open)
                .take(limit - out.len())
                .filter(|id| !out.contains(id))
                .collect();
            out.extend(more);
        }
        out
    }

    /// The session a connected worker holds.
    pub fn session(&self, worker: &Address) -> Option<B256> {
        self.workers.get(worker).map(|w| w.session)
    }

    /// The worker holding `session`.
    pub fn worker_of(&self, session: &B256) -> Option<Address> {
        self.workers.iter().find(|(_, w)| w.session == *session).map(|(a, _)| *a)
    }

    /// A worker's connection dropped: its unfinished replicates go to others.
    pub fn disconnect(&mut self, worker: Address, session: B256, now_ms: u64) -> Vec<Action> {
        if self.session(&worker) != Some(session) {
            return Vec::new();
        }
        self.lose(worker);
        self.workers.remove(&worker);
        self.dispatch(now_ms)
    }

    fn lose(&mut self, worker: Address) {
        for task in self.tasks.values_mut() {
            if let Some(replicate) = task.replicate_mut(&worker)
                && replicate.status.pending()
            {
                replicate.status = Status::Lost;
                task.last_event = format!("worker {worker} lost");
            }
        }
    }

    /// Task `task` is initialized on chain.
    pub fn initialized(&mut self, task: &B256, now_ms: u64) -> Vec<Action> {
        if let Some(entry) = self.tasks.get_mut(task)
            && entry.phase == Phase::Initializing
        {
            entry.phase = Phase::Active;
            entry.last_event = "initialized".into();
        }
        self.dispatch(now_ms)
    }

    /// Syncs a task with its on-chain record (after a failed call or a restart).
    pub fn sync_task(&mut self, task: &B256, on_chain: Option<&Task>, now_ms: u64) -> Vec<Action> {
        let Some(entry) = self.tasks.get_mut(task) else { return Vec::new() };
        match on_chain {
            Some(record) => sync(entry, record),
            None => {
                let deal = &self.deals[&entry.deal].info.deal;
                return vec![Action::Initialize {
                    task: *task,
                    deal: entry.deal,
                    idx: deal.bot_first + U256::from(entry.index),
                }];
            }
        }
        self.dispatch(now_ms)
    }

    /// A contribution landed on chain.
    pub fn contributed(
        &mut self,
        task: &B256,
        worker: Address,
        result_hash: B256,
        now_ms: u64,
    ) -> Vec<Action> {
        let Some(entry) = self.tasks.get_mut(task) else { return Vec::new() };
        entry.contributions.insert(worker, result_hash);
        entry.last_event = format!("{worker} contributed");
        let deal_id = entry.deal;
        if let Some(replicate) = entry.replicate_mut(&worker) {
            if replicate.status.pending()
                && let Some(deal) = self.deals.get_mut(&deal_id)
            {
                let duration = now_ms.saturating_sub(replicate.assigned_ms);
                let at = deal.durations.partition_point(|d| *d <= duration);
                deal.durations.insert(at, duration);
            }
            replicate.status = Status::Contributed(result_hash);
        }
        if let Some(w) = self.workers.get_mut(&worker) {
            w.busy.remove(task);
        }
        self.dispatch(now_ms)
    }

    /// Consensus was reached on chain.
    pub fn consensus(
        &mut self,
        task: &B256,
        consensus: B256,
        reveal_deadline: Timestamp,
        now_ms: u64,
    ) -> Vec<Action> {
        let Some(entry) = self.tasks.get_mut(task) else { return Vec::new() };
        if self.contribute_and_finalize
            && self.deals.get(&entry.deal).is_none_or(|d| d.info.deal.trust <= 1)
        {
            // contributeAndFinalize: consensus, reveal and finalize come in one transaction.
            entry.consensus = Some(consensus);
            return Vec::new();
        }
        entry.phase = Phase::Revealing;
        entry.consensus = Some(consensus);
        entry.reveal_deadline = reveal_deadline;
        entry.last_event = "consensus reached".into();
        let winners = entry.winners();
        let mut actions = Vec::new();
        for replicate in &mut entry.replicates {
            if replicate.status.pending() {
                replicate.status = Status::Failed("consensus reached without it".into());
                actions.push(Action::Push {
                    worker: replicate.worker,
                    work: Work::Abort { task: *task, reason: "consensus reached".into() },
                });
                if let Some(w) = self.workers.get_mut(&replicate.worker) {
                    w.busy.remove(task);
                }
            }
        }
        for winner in &winners {
            actions.push(Action::Push { worker: *winner, work: Work::Reveal { task: *task } });
        }
        if let Some(uploader) = winners.iter().find(|w| self.workers.contains_key(*w)) {
            entry.uploader = Some((*uploader, now_ms));
            actions.push(Action::Push { worker: *uploader, work: Work::Upload { task: *task } });
        }
        actions.extend(self.dispatch(now_ms));
        actions
    }

    /// A reveal landed on chain.
    pub fn revealed(&mut self, task: &B256, worker: Address, chain_time: Timestamp) -> Vec<Action> {
        let Some(entry) = self.tasks.get_mut(task) else { return Vec::new() };
        entry.revealed.insert(worker);
        entry.last_event = format!("{worker} revealed");
        if let Some(replicate) = entry.replicate_mut(&worker) {
            replicate.status = Status::Revealed;
        }
        maybe_finalize(entry, chain_time)
    }

    /// The task was finalized on chain.
    pub fn finalized(&mut self, task: &B256, link: String, now_ms: u64) -> Vec<Action> {
        let Some(entry) = self.tasks.get_mut(task) else { return Vec::new() };
        let mut actions = Vec::new();
        entry.phase = Phase::Completed(link);
        entry.last_event = "finalized".into();
        for replicate in &mut entry.replicates {
            if let Some(w) = self.workers.get_mut(&replicate.worker) {
                w.busy.remove(task);
                actions.push(Action::Push {
                    worker: replicate.worker,
                    work: Work::Complete { task: *task },
                });
            }
            if replicate.status.pending() || replicate.status == Status::Revealed {
                replicate.status = Status::Finished;
            }
        }
        actions.extend(self.dispatch(now_ms));
        actions
    }

    /// The task failed on chain (claimed or expired).
    pub fn failed_on_chain(&mut self, task: &B256, now_ms: u64) -> Vec<Action> {
        let Some(entry) = self.tasks.get_mut(task) else { return Vec::new() };
        let mut actions = Vec::new();
        entry.phase = Phase::Failed("failed on chain at its final deadline and refunded".into());
        entry.last_event = "refunded".into();
        for replicate in &entry.replicates {
            if let Some(w) = self.workers.get_mut(&replicate.worker) {
                w.busy.remove(task);
                actions.push(Action::Push {
                    worker: replicate.worker,
                    work: Work::Abort { task: *task, reason: "the task failed on chain".into() },
                });
            }
        }
        actions.extend(self.dispatch(now_ms));
        actions
    }

    /// The task was reopened on chain: the winners' contributions are void.
    pub fn reopened(&mut self, task: &B256, now_ms: u64) -> Vec<Action> {
        let Some(entry) = self.tasks.get_mut(task) else { return Vec::new() };
        if let Some(consensus) = entry.consensus.take() {
            entry.contributions.retain(|_, h| *h != consensus);
            for replicate in &mut entry.replicates {
                if replicate.status == Status::Contributed(consensus) {
                    replicate.status = Status::Failed("rejected by reopen".into());
                }
            }
        }
        entry.phase = Phase::Active;
        entry.revealed.clear();
        entry.uploader = None;
        entry.link = None;
        entry.checking = None;
        entry.refused.clear();
        entry.last_event = "reopened: no winner revealed in time".into();
        self.dispatch(now_ms)
    }

    /// A call for `task` failed; the service syncs it from the chain next.
    pub fn call_failed(&mut self, task: &B256, what: &str, reason: &str) {
        if let Some(entry) = self.tasks.get_mut(task) {
            entry.last_event = format!("{what} failed: {reason}");
        }
    }

    /// A worker's report.
    pub fn report(
        &mut self,
        worker: Address,
        task: &B256,
        progress: Progress,
        now_ms: u64,
    ) -> Vec<Action> {
        let Some(entry) = self.tasks.get_mut(task) else { return Vec::new() };
        let mut actions = Vec::new();
        match progress {
            Progress::SettingUp { detail } => {
                entry.last_event = format!("{worker}: {detail}");
                if let Some(r) = entry.replicate_mut(&worker)
                    && r.status.pending()
                {
                    r.status = Status::SettingUp(detail);
                }
            }
            Progress::Running => {
                entry.last_event = format!("{worker} started the app");
                if let Some(r) = entry.replicate_mut(&worker)
                    && r.status.pending()
                {
                    r.status = Status::Running;
                    // Setting up never counts against the execution time.
                    r.assigned_ms = now_ms;
                }
            }
            Progress::Computed => {
                entry.last_event = format!("{worker} computed the result");
                if let Some(r) = entry.replicate_mut(&worker)
                    && r.status.pending()
                {
                    r.status = Status::Computed;
                    r.since_ms = now_ms;
                }
                if let Some(w) = self.workers.get_mut(&worker) {
                    w.busy.remove(task);
                }
            }
            Progress::Contributed { .. } | Progress::Revealed | Progress::Finalized => {}
            Progress::Uploaded { link } => {
                // Only the winner the board asked to upload gives the link, and the link is
                // finalized only once the service has checked the bytes behind it: anyone
                // else's report (an attacker's, or a replaced uploader's late one) is ignored
                // without touching the task.
                let designated = entry.phase == Phase::Revealing
                    && entry.uploader.is_some_and(|(w, _)| w == worker);
                if !designated {
                    self.ignored_links += 1;
                    actions.push(Action::Ignored {
                        worker,
                        task: *task,
                        why: format!(
                            "a result link ({link}) from a worker that is not the task's designated uploader"
                        ),
                    });
                } else if entry.link.is_none()
                    && entry.checking.is_none()
                    && let Some(consensus) = entry.consensus
                {
                    entry.last_event = format!("{worker} uploaded the result; checking it");
                    entry.checking = Some((worker, link.clone()));
                    let sealed = self.deals.get(&entry.deal).is_some_and(|d| {
                        xiebao_sdk::params::TaskParams::parse(&d.info.deal.params)
                            .is_ok_and(|p| p.result_key.is_some())
                    });
                    actions.push(Action::CheckResult {
                        task: *task,
                        worker,
                        link,
                        consensus,
                        sealed,
                    });
                }
            }
            Progress::Failed { stage, reason } => {
                entry.last_event = format!("{worker} failed while {stage}: {reason}");
                // The designated uploader of an agreed result (it contributed, or revealed)
                // failed: another winner uploads. A replicate that failed to upload its own
                // result before contributing (trust 1) failed like any other, and the task
                // goes to another worker.
                let uploader_failed = stage == "uploading"
                    && entry.replicate_mut(&worker).is_some_and(|r| {
                        matches!(r.status, Status::Contributed(_) | Status::Revealed)
                    });
                if uploader_failed {
                    entry.uploader = None;
                } else if let Some(r) = entry.replicate_mut(&worker)
                    && !matches!(r.status, Status::Failed(_))
                {
                    if !matches!(r.status, Status::Contributed(_) | Status::Revealed) {
                        r.status = Status::Failed(format!("{stage}: {reason}"));
                    }
                    if let Some(w) = self.workers.get_mut(&worker) {
                        w.busy.remove(task);
                    }
                }
                let failures = entry
                    .replicates
                    .iter()
                    .filter(|r| matches!(r.status, Status::Failed(_)))
                    .count();
                // An app that fails when it runs fails the same way everywhere, and so do
                // bytes that do not match their registry checksum (stage `verifying`): once
                // every connected capable worker has failed it and none is still at it, say
                // so now instead of waiting for workers that may never come.
                let tried: BTreeSet<Address> = entry.replicates.iter().map(|r| r.worker).collect();
                let pending = entry.replicates.iter().any(|r| r.status.pending());
                let untried = self.deals.get(&entry.deal).is_some_and(|deal| {
                    self.workers.iter().any(|(address, w)| {
                        !tried.contains(address)
                            && capable(&w.capabilities, deal.info.deal.tag, deal.info.app_type)
                    })
                });
                let everyone_failed =
                    DETERMINISTIC_FAILURES.contains(&stage.as_str()) && !pending && !untried;
                if entry.phase == Phase::Active
                    && (failures >= MAX_FAILED_REPLICATES || everyone_failed)
                {
                    entry.phase = Phase::Failed(format!(
                        "{failures} replicate(s) failed and no other capable worker is connected, the last while {stage}: {reason}; the chain refunds it at the final deadline"
                    ));
                }
            }
        }
        actions.extend(self.dispatch(now_ms));
        actions
    }

    /// The service's answer to [`Action::CheckResult`]: `outcome` is `Ok` when the bytes at
    /// `link` are the agreed result. A good link is finalized (once the winners revealed); a
    /// bad one is refused, its uploader is not asked again, and another winner uploads.
    pub fn result_checked(
        &mut self,
        task: &B256,
        worker: Address,
        link: &str,
        outcome: Result<(), String>,
        now_ms: u64,
        chain_time: Timestamp,
    ) -> Vec<Action> {
        let Some(entry) = self.tasks.get_mut(task) else { return Vec::new() };
        // A stale answer (the task was reopened or synced since) changes nothing.
        if entry.checking.as_ref().is_none_or(|(w, l)| *w != worker || l != link) {
            return Vec::new();
        }
        entry.checking = None;
        match outcome {
            Ok(()) => {
                entry.link = Some(link.to_owned());
                entry.last_event = format!("{worker} uploaded the result, checked");
                maybe_finalize(entry, chain_time)
            }
            Err(why) => {
                entry.refused.insert(worker);
                entry.refused_ms = now_ms;
                if entry.uploader.is_some_and(|(w, _)| w == worker) {
                    entry.uploader = None;
                }
                entry.last_event =
                    format!("refused {worker}'s result link {link}: {why}; another winner uploads");
                let connected: BTreeSet<Address> = self.workers.keys().copied().collect();
                pick_uploader(entry, &connected, now_ms).into_iter().collect()
            }
        }
    }

    /// Result links ignored so far because their reporter was not the task's designated
    /// uploader.
    pub fn ignored_links(&self) -> u64 {
        self.ignored_links
    }

    /// Periodic work: replicates that set up, run or hold a result too long, slow replicates,
    /// reveal and upload timeouts, then hand-out.
    pub fn tick(&mut self, now_ms: u64, chain_time: Timestamp) -> Vec<Action> {
        let mut actions = Vec::new();
        let connected: BTreeSet<Address> = self.workers.keys().copied().collect();
        for entry in self.tasks.values_mut() {
            match entry.phase {
                Phase::Active => {
                    let Some(deal) = self.deals.get(&entry.deal) else { continue };
                    let run_limit_ms =
                        deal.info.deal.time_ref_s.clamp(1, RUN_LIMIT_S_MAX) * 1_000 + RUN_GRACE_MS;
                    for r in &mut entry.replicates {
                        // A replicate cannot hold a task forever: setting up (from its
                        // assignment), running (past the sandbox's own limit) and handing in
                        // a computed result are each bounded; past that the task goes to
                        // another worker, and this one is told to drop it.
                        let (held, since_ms, limit_ms) = match r.status {
                            Status::Assigned | Status::SettingUp(_) => {
                                ("has not started the app", r.assigned_ms, self.setup_timeout_ms)
                            }
                            Status::Running => (
                                "has been running past the work clock",
                                r.assigned_ms,
                                run_limit_ms,
                            ),
                            Status::Computed => (
                                "has not handed in its computed result",
                                r.since_ms,
                                self.setup_timeout_ms,
                            ),
                            _ => continue,
                        };
                        let elapsed_ms = now_ms.saturating_sub(since_ms);
                        if elapsed_ms <= limit_ms {
                            continue;
                        }
                        let worker = r.worker;
                        r.status = Status::Lost;
                        entry.last_event = format!(
                            "{worker} {held} after {} s: handing the task to another worker",
                            elapsed_ms / 1_000
                        );
                        if let Some(w) = self.workers.get_mut(&worker) {
                            w.busy.remove(&entry.id);
                            actions.push(Action::Push {
                                worker,
                                work: Work::Abort {
                                    task: entry.id,
                                    reason: format!("{held} in time"),
                                },
                            });
                        }
                    }
                    if let Some(threshold) = slow_threshold(&deal.durations) {
                        for r in &mut entry.replicates {
                            // Only running time counts: a replicate setting up (fetching the
                            // app, its image or the dataset) is never slow, and `assigned_ms`
                            // restarts when it runs. One that never reported (its reports
                            // lost, or hung before setting up) counts from its assignment.
                            if matches!(r.status, Status::Assigned | Status::Running)
                                && !r.slow
                                && now_ms.saturating_sub(r.assigned_ms) > threshold
                            {
                                r.slow = true;
                                entry.last_event = format!(
                                    "{} is slow ({} ms, bag median {} ms): handing the task to another worker too",
                                    r.worker,
                                    now_ms.saturating_sub(r.assigned_ms),
                                    median(&deal.durations)
                                );
                            }
                        }
                    }
                }
                Phase::Revealing => {
                    if entry.revealed.is_empty() && chain_time >= entry.reveal_deadline {
                        entry.phase = Phase::Reopening;
                        entry.last_event = "reveal deadline passed without a reveal".into();
                        actions.push(Action::Reopen { task: entry.id });
                        continue;
                    }
                    let stale = match entry.uploader {
                        None => true,
                        Some((w, since)) => {
                            !connected.contains(&w)
                                || now_ms.saturating_sub(since) > UPLOAD_TIMEOUT_MS
                        }
                    };
                    // While a reported link is being checked, its uploader is not replaced.
                    if entry.link.is_none() && entry.checking.is_none() && stale {
                        actions.extend(pick_uploader(entry, &connected, now_ms));
                    }
                    actions.extend(maybe_finalize(entry, chain_time));
                }
                _ => {}
            }
        }
        actions.extend(self.dispatch(now_ms));
        actions
    }

    /// Hands replicates to free capable workers, tasks in deal order then index order.
    fn dispatch(&mut self, now_ms: u64) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut free = free_slots(&self.workers);
        let mut finished = Vec::new();
        for key in &self.unfinished {
            // Every slot taken: the tasks still waiting say why when asked (`task_view`).
            if free == 0 {
                break;
            }
            let Some(task_id) = self.order.get(key) else { continue };
            let Some(entry) = self.tasks.get_mut(task_id) else { continue };
            if matches!(entry.phase, Phase::Completed(_) | Phase::Failed(_)) {
                finished.push(*key);
                continue;
            }
            if entry.phase != Phase::Active {
                continue;
            }
            let deal = &self.deals[&entry.deal].info;
            if !needs_replicate(entry, deal.deal.trust, &self.scores) {
                continue;
            }
            let Some(worker) = candidate(&self.workers, entry, deal) else { continue };
            let authorization =
                self.key.eth_sign(&ids::authorization_hash(&worker, task_id, &Address::ZERO));
            let d = &deal.deal;
            let assignment = Assignment {
                task: *task_id,
                deal: entry.deal,
                index: entry.index,
                bot_size: d.bot_size,
                app: deal.app.clone(),
                app_type: deal.app_type,
                dataset: deal.dataset.clone(),
                params: d.params.clone(),
                beneficiary: d.beneficiary,
                start_time: d.start_time,
                time_ref_s: d.time_ref_s,
                contribution_deadline: d.contribution_deadline(),
                authorization,
                finish: if d.trust <= 1 && self.contribute_and_finalize {
                    Finish::ContributeAndFinalize
                } else {
                    Finish::Contribute
                },
            };
            let slow =
                entry.replicates.iter().find(|r| r.slow && r.status.pending()).map(|r| r.worker);
            entry.replicates.push(Replicate {
                worker,
                status: Status::Assigned,
                assigned_ms: now_ms,
                since_ms: now_ms,
                slow: false,
            });
            entry.last_event = match slow {
                Some(slow) => format!("handed to {worker} too: {slow} is slow"),
                None => format!("handed to {worker}"),
            };
            if let Some(w) = self.workers.get_mut(&worker) {
                w.busy.insert(*task_id);
            }
            free -= 1;
            actions.push(Action::Push { worker, work: Work::Run(Box::new(assignment)) });
        }
        for key in finished {
            self.unfinished.remove(&key);
        }
        actions
    }

    /// Why an active task that needs another replicate has none: no worker at all, none
    /// capable, every slot taken, or every free capable worker already ran it (`None`: a
    /// worker is free for it, the next hand-out gives it one).
    fn waiting(&self, entry: &TaskEntry, deal: &DealInfo) -> Option<String> {
        if free_slots(&self.workers) == 0 {
            return Some(waiting_reason(&self.workers, deal, "all"));
        }
        candidate(&self.workers, entry, deal)
            .is_none()
            .then(|| waiting_reason(&self.workers, deal, "capable"))
    }

    /// A task's view.
    pub fn task_view(&self, task: &B256) -> Option<TaskView> {
        let entry = self.tasks.get(task)?;
        let info = &self.deals.get(&entry.deal)?.info;
        let deal = &info.deal;
        let pending: Vec<&Replicate> =
            entry.replicates.iter().filter(|r| r.status.pending()).collect();
        let state = match &entry.phase {
            Phase::Initializing => TaskState::Initializing,
            Phase::Active => {
                let contributions = u32::try_from(entry.contributions.len()).unwrap_or(u32::MAX);
                let setting_up = pending.iter().find_map(|r| match &r.status {
                    Status::SettingUp(detail) => Some(detail.clone()),
                    _ => None,
                });
                let count = u32::try_from(pending.len()).unwrap_or(u32::MAX);
                let waiting = (pending.is_empty()
                    && needs_replicate(entry, deal.trust, &self.scores))
                .then(|| self.waiting(entry, info))
                .flatten();
                if let Some(waiting) = waiting.as_ref().filter(|_| contributions > 0) {
                    TaskState::WaitingForWorker {
                        why: format!(
                            "{contributions} contributions are not enough for consensus and {waiting}"
                        ),
                    }
                } else if contributions > 0 {
                    TaskState::WaitingForConsensus { contributions, pending: count }
                } else if pending.is_empty() {
                    TaskState::WaitingForWorker {
                        why: waiting.unwrap_or_else(|| "next in line".into()),
                    }
                } else if let Some(detail) =
                    setting_up.filter(|_| !pending.iter().any(|r| r.status == Status::Running))
                {
                    TaskState::SettingUp { detail }
                } else {
                    TaskState::Running { replicates: count }
                }
            }
            Phase::Revealing => {
                let winners = u32::try_from(entry.winners().len()).unwrap_or(u32::MAX);
                let revealed = u32::try_from(entry.revealed.len()).unwrap_or(u32::MAX);
                if revealed < winners {
                    TaskState::Revealing { revealed, winners }
                } else {
                    TaskState::Uploading
                }
            }
            Phase::Finalizing => TaskState::Finalizing,
            Phase::Reopening => TaskState::RevealTimeout,
            Phase::Completed(link) => TaskState::Completed { link: link.clone() },
            Phase::Failed(why) => TaskState::Failed { why: why.clone() },
        };
        let next_deadline = match entry.phase {
            Phase::Active | Phase::Initializing => deal.contribution_deadline(),
            Phase::Revealing => entry.reveal_deadline,
            _ => deal.final_deadline(),
        };
        Some(TaskView {
            task: *task,
            deal: entry.deal,
            index: entry.index,
            state,
            last_event: entry.last_event.clone(),
            next_deadline,
            workers: entry.replicates.iter().map(|r| r.worker).collect(),
        })
    }

    /// A deal's view.
    pub fn deal_view(&self, deal: &B256) -> Option<DealView> {
        let entry = self.deals.get(deal)?;
        let seq = self.deal_order.iter().position(|d| d == deal)?;
        let tasks: Vec<TaskView> = self
            .order
            .range((seq, 0)..(seq + 1, 0))
            .filter_map(|(_, task)| self.task_view(task))
            .collect();
        let completed =
            tasks.iter().filter(|t| matches!(t.state, TaskState::Completed { .. })).count();
        let failed = tasks.iter().filter(|t| matches!(t.state, TaskState::Failed { .. })).count();
        Some(DealView {
            deal: *deal,
            bot_size: entry.info.deal.bot_size,
            completed: completed as u64,
            failed: failed as u64,
            tasks,
        })
    }

    /// The pool at a glance.
    pub fn status(&self) -> PoolStatus {
        let mut open = 0;
        let mut completed = 0;
        let mut failed = 0;
        for task in self.tasks.values() {
            match task.phase {
                Phase::Completed(_) => completed += 1,
                Phase::Failed(_) => failed += 1,
                _ => open += 1,
            }
        }
        PoolStatus {
            workerpool: self.workerpool,
            workers: self
                .workers
                .iter()
                .map(|(a, w)| WorkerView {
                    worker: *a,
                    capabilities: w.capabilities.clone(),
                    busy: u32::try_from(w.busy.len()).unwrap_or(u32::MAX),
                    score: w.score,
                })
                .collect(),
            deals: self.deals.len() as u64,
            open_tasks: open,
            completed_tasks: completed,
            failed_tasks: failed,
            ignored_links: self.ignored_links,
        }
    }

    /// Updates a worker's score (read from the chain).
    pub fn set_score(&mut self, worker: Address, score: u64) {
        self.scores.insert(worker, score);
        if let Some(w) = self.workers.get_mut(&worker) {
            w.score = score;
        }
    }

    /// The workers that took part in `task`.
    pub fn task_workers(&self, task: &B256) -> Vec<Address> {
        self.tasks
            .get(task)
            .map(|t| t.replicates.iter().map(|r| r.worker).collect())
            .unwrap_or_default()
    }
}

fn capable(caps: &Capabilities, tag: Tag, app_type: AppType) -> bool {
    (!tag.is_gpu() || caps.gpu)
        && (!tag.is_tee() || caps.tee)
        && caps.runtimes.iter().any(|r| r.eq_ignore_ascii_case(app_type.as_str()))
}

/// Slots free over every connected worker.
fn free_slots(workers: &BTreeMap<Address, WorkerEntry>) -> usize {
    workers.values().map(|w| (w.capabilities.slots as usize).saturating_sub(w.busy.len())).sum()
}

/// The worker the next replicate of `entry` goes to: a free, capable one that has not run it
/// yet, the least busy first (then the lowest address).
fn candidate(
    workers: &BTreeMap<Address, WorkerEntry>,
    entry: &TaskEntry,
    deal: &DealInfo,
) -> Option<Address> {
    workers
        .iter()
        .filter(|(_, w)| (w.capabilities.slots as usize) > w.busy.len())
        .filter(|(_, w)| capable(&w.capabilities, deal.deal.tag, deal.app_type))
        .filter(|(a, _)| !entry.replicates.iter().any(|r| r.worker == **a))
        .min_by_key(|(a, w)| (w.busy.len(), **a))
        .map(|(a, _)| *a)
}

fn waiting_reason(workers: &BTreeMap<Address, WorkerEntry>, deal: &DealInfo, kind: &str) -> String {
    if workers.is_empty() {
        return "no worker is connected to the pool".into();
    }
    let tag = deal.deal.tag;
    let runtime = deal.app_type.as_str();
    if !workers.values().any(|w| capable(&w.capabilities, tag, deal.app_type)) {
        let mut needs = vec![format!("runtime {runtime}")];
        if tag.is_gpu() {
            needs.push("a GPU".into());
        }
        if tag.is_tee() {
            needs.push("a TEE".into());
        }
        return format!("no connected worker has {}", needs.join(" and "));
    }
    if kind == "all" {
        let slots: usize = workers.values().map(|w| w.capabilities.slots as usize).sum();
        format!("every worker is busy ({slots}/{slots} slots)")
    } else {
        "every capable worker is busy or already ran it".into()
    }
}

fn needs_replicate(entry: &TaskEntry, trust: u64, scores: &BTreeMap<Address, u64>) -> bool {
    let weight_of = |w: &Address| weight(scores.get(w).copied().unwrap_or(0));
    let mut groups: BTreeMap<B256, U256> = BTreeMap::new();
    for (worker, hash) in &entry.contributions {
        let product = groups.entry(*hash).or_insert(U256::from(1));
        *product = product.saturating_mul(weight_of(worker));
    }
    let best_hash = groups.iter().max_by_key(|(_, w)| **w).map(|(h, _)| *h);
    let best = best_hash.map_or(U256::ZERO, |h| groups[&h]);
    let others = groups
        .iter()
        .filter(|(h, _)| Some(**h) != best_hash)
        .fold(U256::ZERO, |acc, (_, w)| acc.saturating_add(*w));
    let mut pending = U256::ZERO;
    for r in entry.replicates.iter().filter(|r| r.status.pending() && !r.slow) {
        pending = if pending.is_zero() {
            weight_of(&r.worker)
        } else {
            pending.saturating_mul(weight_of(&r.worker))
        };
    }
    if trust <= 1 {
        // One replicate at a time; a contribution finishes the task.
        return entry.contributions.is_empty() && pending.is_zero();
    }
    if pending.is_zero() {
        // Nothing is pending and the chain has not reached consensus (the task is active):
        // whatever the scores here say, the contributions so far are not enough.
        return true;
    }
    !consensus_possible(trust, best, pending, others)
}

/// Designates the next uploader of a task in reveal whose uploader is gone, late or refused:
/// a connected winner that was not refused, one that revealed first; else the current one
/// again. Once every connected winner was refused, they are asked again after the upload
/// timeout (a refusal may come from a passing outage of the result store).
fn pick_uploader(
    entry: &mut TaskEntry,
    connected: &BTreeSet<Address>,
    now_ms: u64,
) -> Option<Action> {
    let current = entry.uploader.map(|(w, _)| w);
    let winners: Vec<Address> =
        entry.winners().into_iter().filter(|w| connected.contains(w)).collect();
    if !winners.is_empty()
        && winners.iter().all(|w| entry.refused.contains(w))
        && now_ms.saturating_sub(entry.refused_ms) > UPLOAD_TIMEOUT_MS
    {
        entry.refused.clear();
    }
    let candidates: Vec<Address> = winners
        .iter()
        .filter(|w| Some(**w) != current && !entry.refused.contains(*w))
        .copied()
        .collect();
    let worker = candidates
        .iter()
        .find(|w| entry.revealed.contains(*w))
        .or(candidates.first())
        .copied()
        .or(current.filter(|w| connected.contains(w) && !entry.refused.contains(w)))?;
    entry.uploader = Some((worker, now_ms));
    Some(Action::Push { worker, work: Work::Upload { task: entry.id } })
}

fn maybe_finalize(entry: &mut TaskEntry, chain_time: Timestamp) -> Vec<Action> {
    if entry.phase != Phase::Revealing || entry.revealed.is_empty() {
        return Vec::new();
    }
    let Some(link) = entry.link.clone() else { return Vec::new() };
    let all = entry.winners().iter().all(|w| entry.revealed.contains(w));
    if all || chain_time >= entry.reveal_deadline {
        entry.phase = Phase::Finalizing;
        entry.last_event = "finalizing".into();
        return vec![Action::Finalize { task: entry.id, link }];
    }
    Vec::new()
}

/// The median of `sorted` (ascending), 0 when empty.
fn median(sorted: &[u64]) -> u64 {
    debug_assert!(sorted.is_sorted());
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

fn slow_threshold(durations: &[u64]) -> Option<u64> {
    if durations.len() < SLOW_MIN_SAMPLES {
        return None;
    }
    let m = median(durations);
    Some((m * SLOW_FACTOR).max(m + SLOW_MARGIN_MS))
}

fn sync(entry: &mut TaskEntry, record: &Task) {
    entry.contributions = record
        .contributions
        .iter()
        .filter(|c| c.status != ContributionStatus::Rejected)
        .map(|c| (c.worker, c.result_hash))
        .collect();
    for replicate in &mut entry.replicates {
        if let Some(hash) = entry.contributions.get(&replicate.worker)
            && replicate.status.pending()
        {
            replicate.status = Status::Contributed(*hash);
        }
    }
    match record.status {
        TaskStatus::Active => {
            if matches!(entry.phase, Phase::Initializing | Phase::Reopening | Phase::Finalizing) {
                entry.phase = Phase::Active;
            }
            entry.consensus = None;
        }
        TaskStatus::Revealing => {
            entry.phase = Phase::Revealing;
            entry.consensus = Some(record.consensus_value);
            entry.reveal_deadline = record.reveal_deadline;
            entry.revealed = record
                .contributions
                .iter()
                .filter(|c| c.status == ContributionStatus::Proved)
                .map(|c| c.worker)
                .collect();
        }
        TaskStatus::Completed => {
            entry.phase = Phase::Completed(String::from_utf8_lossy(&record.results).into_owned());
        }
        TaskStatus::Failed => {
            entry.phase = Phase::Failed("failed on chain and refunded".into());
        }
    }
    entry.last_event = format!("synced from chain: {}", record.status);
}

#[cfg(test)]
mod tests {
    use super::*;
    use xiebao_protocol::{Deal, Resource as DealResource};
    use xiebao_types::Nrlc;

    fn worker(i: u8) -> Address {
        Address::repeat_byte(i)
    }

    fn caps(slots: u32) -> Capabilities {
        Capabilities { slots, runtimes: vec!["WASM".into()], ..Capabilities::default() }
    }

    fn deal_info(trust: u64, bot_size: u64, tag: Tag) -> DealInfo {
        let resource = |b: u8| DealResource {
            pointer: Address::repeat_byte(b),
            owner: Address::repeat_byte(b + 1),
            price: Nrlc(10),
        };
        DealInfo {
            id: B256::repeat_byte(0xde),
            deal: Deal {
                app: resource(0xa0),
                dataset: DealResource::default(),
                workerpool: resource(0xb0),
                trust,
                category: 0,
                tag,
                requester: Address::repeat_byte(0xc0),
                beneficiary: Address::repeat_byte(0xc0),
                callback: Address::ZERO,
                params: "1 2 3".into(),
                start_time: 1_000,
                bot_first: U256::ZERO,
                bot_size,
                worker_stake: Nrlc(3),
                scheduler_reward_ratio: 1,
                request_hash: B256::ZERO,
                time_ref_s: 300,
                initialized: 0,
                completed: 0,
                failed: 0,
                expired: false,
            },
            app: Resource {
                address: Address::repeat_byte(0xa0),
                multiaddr: "http://app".into(),
                checksum: B256::ZERO,
            },
            app_type: AppType::Wasm,
            dataset: None,
        }
    }

    /// A board with one deal whose tasks are all initialized.
    fn board(trust: u64, bot_size: u64, tag: Tag) -> (Board, Vec<B256>) {
        let mut board = Board::new(SecretKey::from_label("pool owner"), Address::repeat_byte(0xb0));
        let info = deal_info(trust, bot_size, tag);
        let actions = board.add_deal(info.clone(), &[]);
        assert_eq!(actions.len() as u64, bot_size, "one initialize per task");
        let tasks: Vec<B256> =
            (0..bot_size).map(|i| ids::task_id(&info.id, U256::from(i))).collect();
        for task in &tasks {
            board.initialized(task, 0);
        }
        (board, tasks)
    }

    fn runs(actions: &[Action]) -> Vec<(Address, B256)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Push { worker, work: Work::Run(assignment) } => {
                    Some((*worker, assignment.task))
                }
                _ => None,
            })
            .collect()
    }

    /// `worker` reports `link` as uploaded: the board asks for it to be checked (and
    /// finalizes nothing yet); the check passes. Returns what the board does then.
    fn upload_checked(
        board: &mut Board,
        worker: Address,
        task: &B256,
        link: &str,
        now_ms: u64,
        chain_time: Timestamp,
    ) -> Vec<Action> {
        let reported = board.report(worker, task, Progress::Uploaded { link: link.into() }, now_ms);
        assert!(
            reported.iter().any(|a| matches!(
                a,
                Action::CheckResult { task: t, worker: w, link: l, .. }
                    if t == task && *w == worker && l == link
            )),
            "the link is checked first: {reported:?}"
        );
        assert!(!reported.iter().any(|a| matches!(a, Action::Finalize { .. })), "{reported:?}");
        board.result_checked(task, worker, link, Ok(()), now_ms, chain_time)
    }

    /// A trust-3 task in reveal: workers 1–3 contributed the agreed result `0x11` (and
    /// revealed), worker 4 a lie, worker 5 (a pool member) never worked on it. Returns the
    /// task and the designated uploader.
    fn trust_3_in_reveal(board: &mut Board, task: B256) -> Address {
        for i in 1..=5 {
            board.connect(worker(i), B256::repeat_byte(i), caps(1), 0, 0);
        }
        let honest = B256::repeat_byte(0x11);
        for i in 1..=3 {
            board.contributed(&task, worker(i), honest, 10);
        }
        board.contributed(&task, worker(4), B256::repeat_byte(0x66), 10);
        let actions = board.consensus(&task, honest, 2_000, 20);
        let uploader = actions
            .iter()
            .find_map(|a| match a {
                Action::Push { worker, work: Work::Upload { .. } } => Some(*worker),
                _ => None,
            })
            .expect("one winner is asked to upload");
        for i in 1..=3 {
            board.revealed(&task, worker(i), 1_000);
        }
        uploader
    }

    #[test]
    fn a_result_link_from_anyone_but_the_designated_uploader_is_ignored() {
        let (mut board, tasks) = board(3, 1, Tag::NONE);
        let task = tasks[0];
        let uploader = trust_3_in_reveal(&mut board, task);
        let other_winner = (1..=3).map(worker).find(|w| *w != uploader).unwrap();
        // A pool member that never worked on the task, the loser, and a winner that was not
        // asked: none of their links is checked, let alone finalized.
        for w in [worker(5), worker(4), other_winner] {
            let link = format!("http://evil/{w}");
            let actions = board.report(w, &task, Progress::Uploaded { link }, 30);
            assert!(
                actions
                    .iter()
                    .all(|a| !matches!(a, Action::Finalize { .. } | Action::CheckResult { .. })),
                "{w}'s link was taken: {actions:?}"
            );
            assert!(
                actions.iter().any(|a| matches!(a, Action::Ignored { worker, .. } if *worker == w)),
                "{actions:?}"
            );
        }
        assert_eq!(board.status().ignored_links, 3);
        assert_eq!(board.task_view(&task).unwrap().state, TaskState::Uploading);
        // The designated uploader's link is checked, then finalized.
        let done = upload_checked(&mut board, uploader, &task, "http://r/good", 40, 1_000);
        assert_eq!(done, vec![Action::Finalize { task, link: "http://r/good".into() }]);
    }

    #[test]
    fn a_link_that_fails_its_check_is_refused_and_another_winner_uploads() {
        let (mut board, tasks) = board(3, 1, Tag::NONE);
        let task = tasks[0];
        let first = trust_3_in_reveal(&mut board, task);
        let bad = Progress::Uploaded { link: "http://r/bad".into() };
        let checking = board.report(first, &task, bad, 30);
        assert!(checking.iter().any(|a| matches!(a, Action::CheckResult { .. })), "{checking:?}");
        // The same uploader reporting again while its link is checked starts no second check.
        let again = board.report(first, &task, Progress::Uploaded { link: "x".into() }, 31);
        assert!(!again.iter().any(|a| matches!(a, Action::CheckResult { .. })), "{again:?}");
        // Nor does the tick replace it meanwhile, however long the check takes.
        assert!(!board.tick(60_000, 1_000).iter().any(|a| matches!(
            a,
            Action::Push { work: Work::Upload { .. }, .. } | Action::Finalize { .. }
        )));
        // A stale answer (another link) changes nothing.
        assert!(board.result_checked(&task, first, "x", Ok(()), 60_001, 1_000).is_empty());
        let why = Err("the result's digest gives 0x22, not the consensus 0x11".to_owned());
        let next = board.result_checked(&task, first, "http://r/bad", why, 60_002, 1_000);
        let second = match next.as_slice() {
            [Action::Push { worker, work: Work::Upload { task: t } }] if *t == task => *worker,
            other => panic!("another winner should upload: {other:?}"),
        };
        assert_ne!(second, first);
        assert!([worker(1), worker(2), worker(3)].contains(&second), "a winner: {second}");
        assert!(board.task_view(&task).unwrap().last_event.contains("refused"));
        // The refused uploader is no longer the one asked: its link is ignored now.
        let late = board.report(first, &task, Progress::Uploaded { link: "y".into() }, 60_003);
        assert!(late.iter().any(|a| matches!(a, Action::Ignored { .. })), "{late:?}");
        let done = upload_checked(&mut board, second, &task, "http://r/good", 60_004, 1_000);
        assert_eq!(done, vec![Action::Finalize { task, link: "http://r/good".into() }]);
    }

    #[test]
    fn a_link_reported_before_consensus_is_ignored() {
        let (mut board, tasks) = board(3, 1, Tag::NONE);
        let task = tasks[0];
        board.connect(worker(1), B256::repeat_byte(1), caps(1), 0, 0);
        let actions =
            board.report(worker(1), &task, Progress::Uploaded { link: "http://e".into() }, 5);
        assert!(actions.iter().any(|a| matches!(a, Action::Ignored { .. })), "{actions:?}");
        board.connect(worker(2), B256::repeat_byte(2), caps(1), 0, 0);
        let honest = B256::repeat_byte(0x11);
        board.contributed(&task, worker(1), honest, 10);
        board.contributed(&task, worker(2), honest, 10);
        board.consensus(&task, honest, 2_000, 20);
        board.revealed(&task, worker(1), 1_000);
        let finalized = board.revealed(&task, worker(2), 1_000);
        assert!(finalized.is_empty(), "the early link is not the task's: {finalized:?}");
    }

    #[test]
    fn stake_pays_for_slots() {
        assert_eq!(stake_slots(Nrlc(25), Nrlc(10)), 2);
        assert_eq!(stake_slots(Nrlc(10), Nrlc(10)), 1);
        assert_eq!(stake_slots(Nrlc(9), Nrlc(10)), 0, "below the minimum: nothing");
        assert_eq!(stake_slots(Nrlc(u128::MAX), Nrlc(1)), SLOTS_MAX_PER_WORKER);
        assert_eq!(stake_slots(Nrlc(0), Nrlc(0)), SLOTS_MAX_PER_WORKER, "no minimum, no bound");
    }

    #[test]
    fn a_worker_gets_no_more_slots_than_its_stake_pays_for() {
        let (mut board, _) = board(1, 30, Tag::NONE);
        // It claims 25 slots but staked twice the pool's minimum.
        board.set_slot_limit(worker(1), stake_slots(Nrlc(20), Nrlc(10)), 0);
        let held = runs(&board.connect(worker(1), B256::repeat_byte(1), caps(25), 0, 0));
        assert_eq!(held.len(), 2, "{held:?}");
        assert_eq!(board.status().workers[0].capabilities.slots, 2);
        // The limit outlives the session, and an honest worker gets the rest.
        board.disconnect(worker(1), B256::repeat_byte(1), 1);
        assert_eq!(runs(&board.connect(worker(1), B256::repeat_byte(9), caps(25), 0, 2)).len(), 2);
        assert_eq!(runs(&board.connect(worker(2), B256::repeat_byte(2), caps(3), 0, 3)).len(), 3);
        // Staking more raises it.
        assert_eq!(runs(&board.set_slot_limit(worker(1), 4, 4)).len(), 2);
    }

    #[test]
    fn a_replicate_setting_up_past_the_setup_timeout_goes_to_another_worker() {
        let (board, tasks) = board(1, 2, Tag::NONE);
        let mut board = board.with_setup_timeout_ms(10_000);
        let held = runs(&board.connect(worker(1), B256::repeat_byte(1), caps(1), 0, 0));
        assert_eq!(held, vec![(worker(1), tasks[0])]);
        let setting_up = Progress::SettingUp { detail: "fetching app".into() };
        board.report(worker(1), &tasks[0], setting_up.clone(), 100);
        // A busy worker 2 finishes the other task and is free at 5 s.
        assert_eq!(runs(&board.connect(worker(2), B256::repeat_byte(2), caps(1), 0, 0)).len(), 1);
        board.finalized(&tasks[1], "l".into(), 5_000);
        // Setting up again and again does not restart the clock.
        board.report(worker(1), &tasks[0], setting_up, 9_000);
        assert!(runs(&board.tick(10_000, 0)).is_empty(), "within the setup timeout");
        let actions = board.tick(10_001, 0);
        assert_eq!(runs(&actions), vec![(worker(2), tasks[0])]);
        assert!(actions.contains(&Action::Push {
            worker: worker(1),
            work: Work::Abort { task: tasks[0], reason: "has not started the app in time".into() },
        }));
        assert_eq!(board.task_view(&tasks[0]).unwrap().workers, vec![worker(1), worker(2)]);
        let w1 = board.status().workers.into_iter().find(|w| w.worker == worker(1)).unwrap();
        assert_eq!(w1.busy, 0, "its slot is free again");
    }

    #[test]
    fn a_replicate_never_reporting_past_the_setup_timeout_goes_to_another_worker() {
        let (board, tasks) = board(3, 1, Tag::NONE);
        let mut board = board.with_setup_timeout_ms(10_000);
        let mut held = Vec::new();
        for i in 1..=3 {
            held.extend(runs(&board.connect(worker(i), B256::repeat_byte(i), caps(1), 0, 0)));
        }
        assert_eq!(held.len(), 2, "two fresh workers are enough at trust 3: {held:?}");
        let idle = (1..=3).map(worker).find(|w| !held.iter().any(|(h, _)| h == w)).unwrap();
        board.report(held[0].0, &tasks[0], Progress::Running, 50);
        let actions = board.tick(10_001, 0);
        assert_eq!(runs(&actions), vec![(idle, tasks[0])], "the silent one is replaced");
    }

    #[test]
    fn a_replicate_running_past_the_work_clock_goes_to_another_worker() {
        let (mut board, tasks) = board(1, 1, Tag::NONE);
        board.connect(worker(1), B256::repeat_byte(1), caps(1), 0, 0);
        board.connect(worker(2), B256::repeat_byte(2), caps(1), 0, 0);
        board.report(worker(1), &tasks[0], Progress::Running, 1_000);
        // T is 300 s; the sandbox stops the app then: 60 s of grace for the reports.
        assert!(runs(&board.tick(361_000, 0)).is_empty());
        assert_eq!(runs(&board.tick(361_001, 0)), vec![(worker(2), tasks[0])]);
    }

    #[test]
    fn a_worker_whose_membership_ends_loses_its_session_and_its_tasks() {
        let (mut board, tasks) = board(1, 3, Tag::NONE);
        let held = runs(&board.connect(worker(1), B256::repeat_byte(1), caps(2), 0, 0));
        assert_eq!(held.len(), 2);
        assert_eq!(runs(&board.connect(worker(2), B256::repeat_byte(2), caps(3), 0, 0)).len(), 1);
        let again = runs(&board.membership_ended(worker(1), "is leaving the pool", 10));
        let moved: BTreeSet<B256> = again.iter().map(|(_, t)| *t).collect();
        assert!(again.iter().all(|(w, _)| *w == worker(2)), "{again:?}");
        assert_eq!(moved, held.iter().map(|(_, t)| *t).collect(), "its tasks go to worker 2");
        assert_eq!(board.session(&worker(1)), None, "the session is closed");
        assert_eq!(board.workers(), vec![worker(2)]);
        assert!(board.task_view(&held[0].1).unwrap().last_event.contains("handed to"));
        assert_eq!(tasks.len(), 3);
    }

    #[test]
    fn weights_follow_poco() {
        assert_eq!(weight(0), U256::from(2));
        assert_eq!(weight(11), U256::from(2));
        assert_eq!(weight(12), U256::from(3));
        assert_eq!(weight(30), U256::from(9));
    }

    #[test]
    fn prediction_needs_two_fresh_workers_at_trust_3() {
        let two = U256::from(2);
        // One pending fresh worker: 2·3 > (1+2)·2 is false.
        assert!(!consensus_possible(3, U256::ZERO, two, U256::ZERO));
        // Two pending: 4·3 > (1+4)·2.
        assert!(consensus_possible(3, U256::ZERO, two * two, U256::ZERO));
        // One contributed, one pending: same.
        assert!(consensus_possible(3, two, two, U256::ZERO));
        // One contributed against one liar, one pending: 4·3 > (1+4+2)·2 = 14 is false.
        assert!(!consensus_possible(3, two, two, two));
        // Trust 1: anything pending or contributed.
        assert!(consensus_possible(1, U256::ZERO, two, U256::ZERO));
        assert!(!consensus_possible(1, U256::ZERO, U256::ZERO, U256::ZERO));
    }

    #[test]
    fn trust_1_hands_each_task_to_one_worker_and_fills_every_slot() {
        let (mut board, tasks) = board(1, 5, Tag::NONE);
        let first = board.connect(worker(1), B256::repeat_byte(1), caps(2), 0, 0);
        // The authorization is the pool owner's signature for that worker and task.
        let Some(Action::Push { work: Work::Run(assignment), .. }) = first.first() else {
            panic!("{first:?}")
        };
        let hash = ids::authorization_hash(&worker(1), &assignment.task, &Address::ZERO);
        assert_eq!(
            xiebao_types::crypto::recover_eth_signed(&hash, &assignment.authorization),
            Ok(SecretKey::from_label("pool owner").address())
        );
        assert_eq!(assignment.finish, Finish::ContributeAndFinalize);
        let mut pushed = runs(&first);
        pushed.extend(runs(&board.connect(worker(2), B256::repeat_byte(2), caps(1), 0, 0)));
        assert_eq!(pushed.len(), 3, "three slots, three replicates: {pushed:?}");
        let distinct: BTreeSet<B256> = pushed.iter().map(|(_, t)| *t).collect();
        assert_eq!(distinct.len(), 3, "never two replicates of a trust-1 task");
        assert_eq!(pushed.iter().filter(|(w, _)| *w == worker(1)).count(), 2);
        let actions = board.tick(0, 0);
        assert!(runs(&actions).is_empty(), "no free slot, nothing more handed out");
        let view = board.task_view(&tasks[4]).unwrap();
        assert_eq!(
            view.state,
            TaskState::WaitingForWorker { why: "every worker is busy (3/3 slots)".into() }
        );
    }

    #[test]
    fn a_large_bag_is_handed_out_once_per_task_and_finished_tasks_leave_the_queue() {
        let (mut board, tasks) = board(1, 2_000, Tag::NONE);
        let mut pushed = runs(&board.connect(worker(1), B256::repeat_byte(1), caps(4), 0, 0));
        let mut handed = BTreeSet::new();
        let mut done: usize = 0;
        while let Some((w, task)) = pushed.pop() {
            assert!(handed.insert(task), "task {task} handed out twice");
            assert_eq!(w, worker(1));
            done += 1;
            pushed.extend(runs(&board.finalized(&task, format!("/results/{done}"), done as u64)));
            assert!(
                board.unfinished.len() <= tasks.len() - done + 1,
                "finished tasks are dropped from the hand-out queue: {} queued after {done}",
                board.unfinished.len()
            );
        }
        assert_eq!(handed.len(), tasks.len(), "every task handed out");
        assert!(board.unfinished.len() <= 1, "{} left queued", board.unfinished.len());
    }

    #[test]
    fn a_trust_1_result_that_fails_to_upload_goes_to_another_worker() {
        let (mut board, tasks) = board(1, 1, Tag::NONE);
        let first = runs(&board.connect(worker(1), B256::repeat_byte(1), caps(1), 0, 0));
        assert_eq!(first, vec![(worker(1), tasks[0])]);
        board.connect(worker(2), B256::repeat_byte(2), caps(1), 0, 0);
        board.report(worker(1), &tasks[0], Progress::Computed, 5);
        let failed = Progress::Failed { stage: "uploading".into(), reason: "HTTP 500".into() };
        let again = runs(&board.report(worker(1), &tasks[0], failed, 6));
        assert_eq!(again, vec![(worker(2), tasks[0])], "handed to the other worker");
    }

    #[test]
    fn trust_1_without_contribute_and_finalize_goes_through_contribute_reveal_and_finalize() {
        let (board, tasks) = board(1, 1, Tag::NONE);
        let mut board = board.with_contribute_and_finalize(false);
        let task = tasks[0];
        let pushed = board.connect(worker(1), B256::repeat_byte(1), caps(1), 0, 0);
        let Some(Action::Push { work: Work::Run(assignment), .. }) = pushed.first() else {
            panic!("{pushed:?}")
        };
        assert_eq!(assignment.finish, Finish::Contribute, "the worker only contributes");
        board.connect(worker(2), B256::repeat_byte(2), caps(1), 0, 0);
        let result = B256::repeat_byte(0x11);
        assert!(runs(&board.contributed(&task, worker(1), result, 10)).is_empty());
        // At trust 1 one contribution is consensus: the contributor reveals and uploads.
        let actions = board.consensus(&task, result, 2_000, 10);
        assert_eq!(
            actions,
            vec![
                Action::Push { worker: worker(1), work: Work::Reveal { task } },
                Action::Push { worker: worker(1), work: Work::Upload { task } },
            ]
        );
        assert_eq!(
            board.task_view(&task).unwrap().state,
            TaskState::Revealing { revealed: 0, winners: 1 }
        );
        assert!(board.revealed(&task, worker(1), 1_500).is_empty(), "no link yet");
        let done = upload_checked(&mut board, worker(1), &task, "http://r/1", 20, 1_500);
        assert_eq!(done, vec![Action::Finalize { task, link: "http://r/1".into() }]);
        board.finalized(&task, "http://r/1".into(), 30);
        let view = board.task_view(&task).unwrap();
        assert_eq!(view.state, TaskState::Completed { link: "http://r/1".into() });
        assert_eq!(view.workers, vec![worker(1)], "never handed to the second worker");
    }

    #[test]
    fn trust_1_consensus_asks_nothing_when_contribute_and_finalize_settles_the_task() {
        let (mut board, tasks) = board(1, 1, Tag::NONE);
        board.connect(worker(1), B256::repeat_byte(1), caps(1), 0, 0);
        let result = B256::repeat_byte(0x11);
        board.contributed(&tasks[0], worker(1), result, 10);
        assert!(board.consensus(&tasks[0], result, 2_000, 10).is_empty());
        assert!(board.tick(20, 1_500).is_empty(), "no reveal, upload or finalize to ask for");
    }

    #[test]
    fn trust_3_asks_for_replicates_until_consensus_is_possible() {
        let (mut board, tasks) = board(3, 1, Tag::NONE);
        let task = tasks[0];
        let mut pushed = Vec::new();
        for i in 1..=4 {
            pushed.extend(runs(&board.connect(worker(i), B256::repeat_byte(i), caps(1), 0, 0)));
        }
        // Fresh workers weigh 2: two agreeing ones are enough (4·3 > 5·2).
        assert_eq!(pushed.len(), 2, "{pushed:?}");
        let honest = B256::repeat_byte(0x11);
        let lie = B256::repeat_byte(0x66);
        let (first, second) = (pushed[0].0, pushed[1].0);
        board.contributed(&task, first, honest, 10);
        // One contributed, one still pending: still possible, nothing new.
        assert!(runs(&board.tick(10, 0)).is_empty());
        let more = runs(&board.contributed(&task, second, lie, 20));
        assert_eq!(more.len(), 1, "a disagreement needs another replicate: {more:?}");
        let view = board.task_view(&task).unwrap();
        assert_eq!(view.state, TaskState::WaitingForConsensus { contributions: 2, pending: 1 });
        let last = runs(&board.contributed(&task, more[0].0, honest, 30));
        assert_eq!(last.len(), 1, "2 honest vs 1 liar at trust 3 needs a fourth: {last:?}");
        // Consensus: winners reveal, one uploads, then finalize once all revealed and uploaded.
        board.contributed(&task, last[0].0, honest, 40);
        let actions = board.consensus(&task, honest, 2_000, 40);
        let reveals = actions
            .iter()
            .filter(|a| matches!(a, Action::Push { work: Work::Reveal { .. }, .. }))
            .count();
        assert_eq!(reveals, 3, "the three winners reveal, the liar does not");
        let uploader = actions
            .iter()
            .find_map(|a| match a {
                Action::Push { worker, work: Work::Upload { .. } } => Some(*worker),
                _ => None,
            })
            .expect("one winner uploads");
        assert_ne!(uploader, second);
        for w in [first, more[0].0, last[0].0] {
            assert!(board.revealed(&task, w, 1_500).is_empty(), "no link yet");
        }
        let done = upload_checked(&mut board, uploader, &task, "http://r/1", 50, 1_500);
        assert!(done.contains(&Action::Finalize { task, link: "http://r/1".into() }), "{done:?}");
    }

    #[test]
    fn contributions_without_consensus_on_chain_always_get_another_replicate() {
        let (mut board, tasks) = board(3, 1, Tag::NONE);
        let task = tasks[0];
        // A high score predicts that one replicate is enough (weight 19: 57 > 40) …
        let first = runs(&board.connect(worker(1), B256::repeat_byte(1), caps(1), 60, 0));
        assert_eq!(first.len(), 1);
        assert!(runs(&board.connect(worker(2), B256::repeat_byte(2), caps(1), 0, 0)).is_empty());
        // … but the chain weighed the contribution with the score it had then and reached no
        // consensus: the scheduler must not wait for one that will not come.
        let more = runs(&board.contributed(&task, worker(1), B256::repeat_byte(0x11), 10));
        assert_eq!(more, vec![(worker(2), task)]);
    }

    #[test]
    fn a_lost_worker_s_replicate_goes_to_another() {
        let (mut board, tasks) = board(1, 1, Tag::NONE);
        let first = runs(&board.connect(worker(1), B256::repeat_byte(1), caps(1), 0, 0));
        assert_eq!(first, vec![(worker(1), tasks[0])]);
        assert!(runs(&board.connect(worker(2), B256::repeat_byte(2), caps(1), 0, 0)).is_empty());
        // A stale session's disconnect is ignored.
        assert!(board.disconnect(worker(1), B256::repeat_byte(9), 5).is_empty());
        let again = runs(&board.disconnect(worker(1), B256::repeat_byte(1), 5));
        assert_eq!(again, vec![(worker(2), tasks[0])]);
        assert_eq!(board.task_view(&tasks[0]).unwrap().workers, vec![worker(1), worker(2)]);
    }

    #[test]
    fn a_slow_replicate_gets_a_twin_on_another_worker() {
        let (mut board, tasks) = board(1, 5, Tag::NONE);
        let a = runs(&board.connect(worker(1), B256::repeat_byte(1), caps(1), 0, 0));
        let b = runs(&board.connect(worker(2), B256::repeat_byte(2), caps(1), 0, 0));
        assert_eq!((a.len(), b.len()), (1, 1));
        // worker 2 finishes three tasks in 100 ms each while worker 1 hangs on its first.
        let mut next = b[0].1;
        for step in 1..=3u64 {
            let pushed =
                runs(&board.contributed(&next, worker(2), B256::repeat_byte(7), step * 100));
            board.finalized(&next, "l".into(), step * 100);
            next = pushed.first().map_or(next, |p| p.1);
        }
        // 2.1 s later (median 100 ms + 2 s margin) worker 1's task is slow: worker 2 gets it.
        board.contributed(&next, worker(2), B256::repeat_byte(7), 400);
        let twin = runs(&board.tick(2_500, 0));
        assert!(twin.contains(&(worker(2), a[0].1)), "{twin:?}");
        assert!(board.task_view(&a[0].1).unwrap().last_event.contains("slow"));
        assert_eq!(tasks.len(), 5);
    }

    #[test]
    fn setting_up_never_counts_against_the_slow_replicate_timer() {
        let (mut board, _) = board(1, 5, Tag::NONE);
        let a = runs(&board.connect(worker(1), B256::repeat_byte(1), caps(1), 0, 0));
        let b = runs(&board.connect(worker(2), B256::repeat_byte(2), caps(1), 0, 0));
        let slow_task = a[0].1;
        let setting_up = Progress::SettingUp { detail: "fetching dataset".into() };
        board.report(worker(1), &slow_task, setting_up, 0);
        // worker 2 runs the other four tasks in 100 ms each: threshold 100 ms + 2 s margin.
        let mut next = b[0].1;
        for step in 1..=4u64 {
            let pushed =
                runs(&board.contributed(&next, worker(2), B256::repeat_byte(7), step * 100));
            board.finalized(&next, "l".into(), step * 100);
            next = pushed.first().map_or(next, |p| p.1);
        }
        // Worker 1 sets up for 60 s: far past the threshold, yet not slow.
        for now in [2_500, 10_000, 60_000] {
            assert!(runs(&board.tick(now, 0)).is_empty(), "twinned while setting up at {now}");
        }
        assert!(matches!(board.task_view(&slow_task).unwrap().state, TaskState::SettingUp { .. }));
        // It starts the app at 60 s: the timer starts there.
        board.report(worker(1), &slow_task, Progress::Running, 60_000);
        assert!(runs(&board.tick(62_000, 0)).is_empty(), "2 s of running is within 2.1 s");
        let twin = runs(&board.tick(62_200, 0));
        assert_eq!(twin, vec![(worker(2), slow_task)], "2.2 s of running is slow");
        assert!(board.task_view(&slow_task).unwrap().last_event.contains("too: "), "twinned");
    }

    #[test]
    fn gpu_tasks_wait_for_a_gpu_worker_and_say_so() {
        let (mut board, tasks) = board(1, 1, Tag::bit(8));
        assert!(runs(&board.connect(worker(1), B256::repeat_byte(1), caps(4), 0, 0)).is_empty());
        assert_eq!(
            board.task_view(&tasks[0]).unwrap().state,
            TaskState::WaitingForWorker {
                why: "no connected worker has runtime WASM and a GPU".into()
            }
        );
        let gpu = Capabilities { gpu: true, ..caps(1) };
        let pushed = runs(&board.connect(worker(2), B256::repeat_byte(2), gpu, 0, 0));
        assert_eq!(pushed, vec![(worker(2), tasks[0])]);
    }

    #[test]
    fn no_reveal_by_the_deadline_reopens_and_hands_the_task_out_again() {
        let (mut board, tasks) = board(2, 1, Tag::NONE);
        let task = tasks[0];
        let mut pushed = Vec::new();
        for i in 1..=3 {
            pushed.extend(runs(&board.connect(worker(i), B256::repeat_byte(i), caps(1), 0, 0)));
        }
        let hash = B256::repeat_byte(0x11);
        for (w, _) in &pushed {
            board.contributed(&task, *w, hash, 10);
        }
        board.consensus(&task, hash, 2_000, 10);
        assert!(board.tick(20, 1_999).iter().all(|a| !matches!(a, Action::Reopen { .. })));
        assert_eq!(board.tick(30, 2_000), vec![Action::Reopen { task }]);
        assert_eq!(board.task_view(&task).unwrap().state, TaskState::RevealTimeout);
        board.reopened(&task, 40);
        let view = board.task_view(&task).unwrap();
        assert!(
            matches!(view.state, TaskState::Running { .. } | TaskState::WaitingForWorker { .. }),
            "{view:?}"
        );
    }

    #[test]
    fn repeated_failures_give_the_task_up_with_the_reason() {
        let (mut board, tasks) = board(1, 1, Tag::NONE);
        let task = tasks[0];
        for i in 1..=3u8 {
            board.connect(worker(i), B256::repeat_byte(i), caps(1), 0, 0);
        }
        for i in 1..=3u8 {
            board.report(
                worker(i),
                &task,
                Progress::Failed { stage: "running".into(), reason: "exit code 2".into() },
                10,
            );
        }
        match board.task_view(&task).unwrap().state {
            TaskState::Failed { why } => assert!(why.contains("exit code 2"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_app_failing_on_every_connected_worker_fails_the_task_at_once() {
        let (mut board, tasks) = board(1, 1, Tag::NONE);
        let task = tasks[0];
        board.connect(worker(1), B256::repeat_byte(1), caps(1), 0, 0);
        // A set-up failure may be passing: the task waits for another try.
        board.report(
            worker(1),
            &task,
            Progress::Failed { stage: "setting up".into(), reason: "timeout".into() },
            10,
        );
        assert!(!matches!(board.task_view(&task).unwrap().state, TaskState::Failed { .. }));
        board.connect(worker(2), B256::repeat_byte(2), caps(1), 20, 0);
        board.report(
            worker(2),
            &task,
            Progress::Failed { stage: "running".into(), reason: "exit code 2".into() },
            30,
        );
        // Both connected workers tried it and the last failure is the app's own.
        match board.task_view(&task).unwrap().state {
            TaskState::Failed { why } => {
                assert!(
                    why.contains("no other capable worker") && why.contains("exit code 2"),
                    "{why}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_checksum_mismatch_on_the_only_worker_fails_the_task_at_once() {
        let (mut board, tasks) = board(1, 1, Tag::NONE);
        let task = tasks[0];
        board.connect(worker(1), B256::repeat_byte(1), caps(1), 0, 0);
        let reason =
            "checksum mismatch: dataset 0x… has sha256 0x01, but its registry entry says 0x02";
        board.report(
            worker(1),
            &task,
            Progress::Failed { stage: "verifying".into(), reason: reason.into() },
            10,
        );
        match board.task_view(&task).unwrap().state {
            TaskState::Failed { why } => {
                assert!(why.contains("while verifying: checksum mismatch"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_app_failure_is_retried_while_an_untried_worker_is_connected() {
        let (mut board, tasks) = board(1, 1, Tag::NONE);
        let task = tasks[0];
        board.connect(worker(1), B256::repeat_byte(1), caps(1), 0, 0);
        board.connect(worker(2), B256::repeat_byte(2), caps(1), 0, 0);
        let first = board.task_view(&task).unwrap().workers[0];
        let actions = board.report(
            first,
            &task,
            Progress::Failed { stage: "running".into(), reason: "exit code 2".into() },
            10,
        );
        assert!(!matches!(board.task_view(&task).unwrap().state, TaskState::Failed { .. }));
        assert!(
            actions.iter().any(
                |a| matches!(a, Action::Push { worker, work: Work::Run(_) } if *worker != first)
            ),
            "handed to the other worker: {actions:?}"
        );
    }
}
