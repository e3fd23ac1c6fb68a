//! Hand-out: which task gets a replicate and which worker runs it — tasks in deal then index
//! order, a free capable worker that has not run the task yet, the least busy first — and
//! PoCo §4.8's prediction of how many replicates a task needs for consensus given the
//! workers' scores. Every assignment carries the pool owner's signed authorization.

use std::collections::BTreeMap;

use alloy_primitives::{Address, B256, U256};
use xiebao_types::tx::AppType;
use xiebao_types::{Tag, ids};

use super::{Action, Board, DealInfo, Phase, Replicate, Status, TaskEntry, WorkerEntry};
use crate::api::{Assignment, Capabilities, Finish, Work};

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
    /// Hands replicates to free capable workers, tasks in deal order then index order.
    pub(super) fn dispatch(&mut self, now_ms: u64) -> Vec<Action> {
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
}

pub(super) fn capable(caps: &Capabilities, tag: Tag, app_type: AppType) -> bool {
    (!tag.is_gpu() || caps.gpu)
        && (!tag.is_tee() || caps.tee)
        && caps.runtimes.iter().any(|r| r.eq_ignore_ascii_case(app_type.as_str()))
}

/// Slots free over every connected worker.
pub(super) fn free_slots(workers: &BTreeMap<Address, WorkerEntry>) -> usize {
    workers.values().map(|w| (w.capabilities.slots as usize).saturating_sub(w.busy.len())).sum()
}

/// The worker the next replicate of `entry` goes to: a free, capable one that has not run it
/// yet, the least busy first (then the lowest address).
pub(super) fn candidate(
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

pub(super) fn needs_replicate(
    entry: &TaskEntry,
    trust: u64,
    scores: &BTreeMap<Address, u64>,
) -> bool {
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
