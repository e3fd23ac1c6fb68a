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
use xiebao_types::{SecretKey, Tag, Timestamp, ids};

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
    assigned_ms: u64,
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
    link: Option<String>,
    uploader: Option<(Address, u64)>,
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
    capabilities: Capabilities,
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
        }
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
        self.workers
            .insert(worker, WorkerEntry { session, capabilities, score, busy: BTreeSet::new() });
        let mut actions = Vec::new();
        for task in self.tasks.values() {
            if task.phase != Phase::Revealing {
                continue;
            }
            if task.winners().contains(&worker) && !task.revealed.contains(&worker) {
                actions.push(Action::Push { worker, work: Work::Reveal { task: task.id } });
            }
            if task.uploader.is_some_and(|(w, _)| w == worker) && task.link.is_none() {
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
        chain_time: Timestamp,
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
                }
                if let Some(w) = self.workers.get_mut(&worker) {
                    w.busy.remove(task);
                }
            }
            Progress::Contributed { .. } | Progress::Revealed | Progress::Finalized => {}
            Progress::Uploaded { link } => {
                entry.last_event = format!("{worker} uploaded the result");
                if entry.link.is_none() {
                    entry.link = Some(link);
                }
                actions.extend(maybe_finalize(entry, chain_time));
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

    /// Periodic work: slow replicates, reveal and upload timeouts, then hand-out.
    pub fn tick(&mut self, now_ms: u64, chain_time: Timestamp) -> Vec<Action> {
        let mut actions = Vec::new();
        let connected: BTreeSet<Address> = self.workers.keys().copied().collect();
        for entry in self.tasks.values_mut() {
            match entry.phase {
                Phase::Active => {
                    let Some(deal) = self.deals.get(&entry.deal) else { continue };
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
                    if entry.link.is_none() && stale {
                        let current = entry.uploader.map(|(w, _)| w);
                        let candidates: Vec<Address> = entry
                            .winners()
                            .into_iter()
                            .filter(|w| connected.contains(w) && Some(*w) != current)
                            .collect();
                        let pick = candidates
                            .iter()
                            .find(|w| entry.revealed.contains(*w))
                            .or(candidates.first())
                            .copied()
                            .or(current.filter(|w| connected.contains(w)));
                        if let Some(worker) = pick {
                            entry.uploader = Some((worker, now_ms));
                            actions.push(Action::Push {
                                worker,
                                work: Work::Upload { task: entry.id },
                            });
                        }
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
        board.report(worker(1), &tasks[0], Progress::Computed, 5, 0);
        let failed = Progress::Failed { stage: "uploading".into(), reason: "HTTP 500".into() };
        let again = runs(&board.report(worker(1), &tasks[0], failed, 6, 0));
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
        let link = Progress::Uploaded { link: "http://r/1".into() };
        let done = board.report(worker(1), &task, link, 20, 1_500);
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
        let done = board.report(
            uploader,
            &task,
            Progress::Uploaded { link: "http://r/1".into() },
            50,
            1_500,
        );
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
        board.report(worker(1), &slow_task, setting_up, 0, 0);
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
        board.report(worker(1), &slow_task, Progress::Running, 60_000, 0);
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
                0,
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
            0,
        );
        assert!(!matches!(board.task_view(&task).unwrap().state, TaskState::Failed { .. }));
        board.connect(worker(2), B256::repeat_byte(2), caps(1), 20, 0);
        board.report(
            worker(2),
            &task,
            Progress::Failed { stage: "running".into(), reason: "exit code 2".into() },
            30,
            0,
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
            0,
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
            0,
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
