//! What requesters and operators are shown: each task's state, last event and next deadline,
//! why a task still waits for a worker (worked out when a view asks, never during hand-out),
//! a deal's tasks, and the pool at a glance.

use std::collections::BTreeMap;

use alloy_primitives::{Address, B256};

use super::handout::{candidate, capable, free_slots, needs_replicate};
use super::{Board, DealInfo, Phase, Replicate, Status, TaskEntry, WorkerEntry};
use crate::api::{DealView, PoolStatus, TaskState, TaskView, WorkerView};

impl Board {
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

    /// The workers that took part in `task`.
    pub fn task_workers(&self, task: &B256) -> Vec<Address> {
        self.tasks
            .get(task)
            .map(|t| t.replicates.iter().map(|r| r.worker).collect())
            .unwrap_or_default()
    }

    /// Result links ignored so far because their reporter was not the task's designated
    /// uploader.
    pub fn ignored_links(&self) -> u64 {
        self.ignored_links
    }
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
