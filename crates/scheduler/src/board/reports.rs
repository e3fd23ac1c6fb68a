//! What workers report about their replicates: setting up, running (the running clock starts
//! there), computed, a result link (taken only from the designated uploader, and only to be
//! checked), and failures — after which another worker gets the task, or the task is given
//! up when failures repeat or every capable worker failed it the same way.

use std::collections::BTreeSet;

use alloy_primitives::{Address, B256};

use super::handout::capable;
use super::{Action, Board, Phase, Status};
use crate::api::Progress;

/// Failed replicates after which a task is given up (reported failed; the chain refunds it at
/// the final deadline).
pub const MAX_FAILED_REPLICATES: usize = 3;

/// Failure stages that fail the same way on every worker: the app's own failure, and bytes
/// (app, image, dataset) that do not match their registry checksum.
const DETERMINISTIC_FAILURES: [&str; 2] = ["running", "verifying"];

impl Board {
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
}
