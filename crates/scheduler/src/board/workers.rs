//! The pool's workers: their sessions, the slots their stake pays for, and taking work back
//! from workers that are lost (a dropped connection, an ended membership), stuck (setting up,
//! running or holding a computed result too long) or slow (far past the bag's median running
//! time; setting up never counts as running).

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::{Address, B256};
use xiebao_types::Nrlc;

use super::{Action, Board, DealEntry, Phase, Status, TaskEntry, WorkerEntry};
use crate::api::{Capabilities, Work};

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

/// A replicate running longer than this many times the bag's median gets a twin.
const SLOW_FACTOR: u64 = 3;

/// …and at least this much longer than the median, ms.
const SLOW_MARGIN_MS: u64 = 2_000;

/// Finished replicates a bag needs before its median counts.
const SLOW_MIN_SAMPLES: usize = 3;

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

impl Board {
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

    /// Updates a worker's score (read from the chain).
    pub fn set_score(&mut self, worker: Address, score: u64) {
        self.scores.insert(worker, score);
        if let Some(w) = self.workers.get_mut(&worker) {
            w.score = score;
        }
    }
}

/// Takes an active task back from the replicates that hold it too long: setting up (from
/// their assignment, `setup_timeout_ms`), running (past the work clock and its grace) or
/// handing in a computed result (`setup_timeout_ms` again). Such a replicate is lost; its
/// worker, if connected, gets the slot back and is told to drop the task. Hand-out then gives
/// the task to another worker.
pub(super) fn take_back_held(
    entry: &mut TaskEntry,
    deal: &DealEntry,
    workers: &mut BTreeMap<Address, WorkerEntry>,
    setup_timeout_ms: u64,
    now_ms: u64,
) -> Vec<Action> {
    let mut actions = Vec::new();
    let run_limit_ms = deal.info.deal.time_ref_s.clamp(1, RUN_LIMIT_S_MAX) * 1_000 + RUN_GRACE_MS;
    for r in &mut entry.replicates {
        // A replicate cannot hold a task forever: setting up (from its assignment), running
        // (past the sandbox's own limit) and handing in a computed result are each bounded;
        // past that the task goes to another worker, and this one is told to drop it.
        let (held, since_ms, limit_ms) = match r.status {
            Status::Assigned | Status::SettingUp(_) => {
                ("has not started the app", r.assigned_ms, setup_timeout_ms)
            }
            Status::Running => {
                ("has been running past the work clock", r.assigned_ms, run_limit_ms)
            }
            Status::Computed => {
                ("has not handed in its computed result", r.since_ms, setup_timeout_ms)
            }
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
        if let Some(w) = workers.get_mut(&worker) {
            w.busy.remove(&entry.id);
            actions.push(Action::Push {
                worker,
                work: Work::Abort { task: entry.id, reason: format!("{held} in time") },
            });
        }
    }
    actions
}

/// Marks the replicates of an active task that have run far past the bag's median as slow
/// ([`slow_threshold`]): hand-out then gives the task to another worker too.
pub(super) fn mark_slow(entry: &mut TaskEntry, deal: &DealEntry, now_ms: u64) {
    if let Some(threshold) = slow_threshold(&deal.durations) {
        for r in &mut entry.replicates {
            // Only running time counts: a replicate setting up (fetching the app, its image
            // or the dataset) is never slow, and `assigned_ms` restarts when it runs. One that
            // never reported (its reports lost, or hung before setting up) counts from its
            // assignment.
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
