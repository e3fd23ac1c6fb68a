//! From consensus to finalize: which winner uploads the result (another when it is gone, late
//! or its link is refused), the service's check of the uploaded link, finalizing once the
//! winners revealed (or the reveal deadline passed) with a checked link, and reopening a task
//! none of whose winners revealed in time. **Invariant:** nothing is finalized with a link
//! whose bytes the service has not checked.

use std::collections::BTreeSet;

use alloy_primitives::{Address, B256};
use xiebao_types::Timestamp;

use super::{Action, Board, Phase, TaskEntry};
use crate::api::Work;

/// An uploader that has not uploaded after this long is replaced, ms.
const UPLOAD_TIMEOUT_MS: u64 = 30_000;

impl Board {
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
}

/// A task in reveal at a tick: reopened once the reveal deadline passed without any reveal;
/// else another uploader when the designated one is gone or late (never while its link is
/// being checked), and finalized once it may be ([`maybe_finalize`]).
pub(super) fn reveal_timeouts(
    entry: &mut TaskEntry,
    connected: &BTreeSet<Address>,
    now_ms: u64,
    chain_time: Timestamp,
) -> Vec<Action> {
    if entry.revealed.is_empty() && chain_time >= entry.reveal_deadline {
        entry.phase = Phase::Reopening;
        entry.last_event = "reveal deadline passed without a reveal".into();
        return vec![Action::Reopen { task: entry.id }];
    }
    let mut actions = Vec::new();
    let stale = match entry.uploader {
        None => true,
        Some((w, since)) => {
            !connected.contains(&w) || now_ms.saturating_sub(since) > UPLOAD_TIMEOUT_MS
        }
    };
    // While a reported link is being checked, its uploader is not replaced.
    if entry.link.is_none() && entry.checking.is_none() && stale {
        actions.extend(pick_uploader(entry, connected, now_ms));
    }
    actions.extend(maybe_finalize(entry, chain_time));
    actions
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

pub(super) fn maybe_finalize(entry: &mut TaskEntry, chain_time: Timestamp) -> Vec<Action> {
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
