//! The scheduler's bookkeeping, without I/O: deals, tasks and their replicates, connected
//! workers, and the decisions (who runs what, when to reveal, finalize or reopen) as
//! [`Action`]s for the service to carry out.
//!
//! Time comes in as arguments: `now_ms` (the service's monotonic milliseconds, for worker
//! timeouts and slow-replicate detection) and `chain_time` (the last block's timestamp, for
//! on-chain deadlines).
//!
//! This file holds the board's state, its set-up and the periodic [`Board::tick`]; each kind
//! of decision has its own file, all `impl Board` blocks over this state:
//!
//! - `lifecycle`: a task's life as the chain reports it — deal, initialize, contributions,
//!   consensus, reveals, finalize, failure, reopen — and re-syncs from the chain;
//! - `handout`: who runs what — the hand-out order, capable and free workers, and how many
//!   replicates PoCo's consensus prediction needs;
//! - `workers`: sessions, the slots a worker's stake pays for, and taking work back from lost,
//!   stuck and slow workers;
//! - `reports`: what workers report about their replicates, and giving a task up;
//! - `reveal`: from consensus to finalize — the designated uploader, its checked link, reopen;
//! - `views`: what requesters and operators are shown, and why a task waits.

mod handout;
mod lifecycle;
mod reports;
mod reveal;
#[cfg(test)]
mod tests;
mod views;
mod workers;

pub use handout::{consensus_possible, weight};
pub use reports::MAX_FAILED_REPLICATES;
pub use workers::{SETUP_TIMEOUT_MS_DEFAULT, SLOTS_MAX_PER_WORKER, stake_slots};

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::{Address, B256, U256};
use xiebao_types::tx::AppType;
use xiebao_types::{SecretKey, Timestamp};

use crate::api::{Capabilities, Resource, Work};

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

    /// Periodic work: replicates that set up, run or hold a result too long, slow replicates,
    /// reveal and upload timeouts, then hand-out.
    pub fn tick(&mut self, now_ms: u64, chain_time: Timestamp) -> Vec<Action> {
        let mut actions = Vec::new();
        let connected: BTreeSet<Address> = self.workers.keys().copied().collect();
        for entry in self.tasks.values_mut() {
            match entry.phase {
                Phase::Active => {
                    let Some(deal) = self.deals.get(&entry.deal) else { continue };
                    actions.extend(workers::take_back_held(
                        entry,
                        deal,
                        &mut self.workers,
                        self.setup_timeout_ms,
                        now_ms,
                    ));
                    workers::mark_slow(entry, deal, now_ms);
                }
                Phase::Revealing => {
                    actions.extend(reveal::reveal_timeouts(entry, &connected, now_ms, chain_time));
                }
                _ => {}
            }
        }
        actions.extend(self.dispatch(now_ms));
        actions
    }
}
