//! A task's life as the chain reports it: a matched deal's tasks to initialize, then
//! initialization, contributions, consensus (asking the winners to reveal and one to upload),
//! reveals, finalization, failure and reopening; and re-syncing a task from its on-chain
//! record after a failed call, a missed event or a restart. **Invariant:** only these move a
//! task to completed, failed or revealing: the chain is the truth.

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::{Address, B256, U256};
use xiebao_protocol::{ContributionStatus, Task, TaskStatus};
use xiebao_types::{Timestamp, ids};

use super::reveal::maybe_finalize;
use super::{Action, Board, DealEntry, DealInfo, Phase, Status, TaskEntry};
use crate::api::Work;

impl Board {
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
