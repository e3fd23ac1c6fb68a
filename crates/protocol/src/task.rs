//! The task lifecycle: initialize, contribute, reveal, finalize, reopen, claim,
//! contributeAndFinalize, and the automatic expiry of deals at their final deadline.

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use xiebao_types::Nrlc;
use xiebao_types::ids;
use xiebao_types::tx::{
    Claim, Contribute, ContributeAndFinalize, Finalize, Initialize, Reopen, Reveal,
};

use crate::consensus::{is_consensus, kitty_share, log2_floor, slashed_score, worker_weight};
use crate::ctx::Ctx;
use crate::error::ProtocolError;
use crate::event::{EscrowRef, Event};
use crate::model::{Contribution, ContributionStatus, Deal, ResultGroup, Task, TaskStatus};
use crate::pool;
use crate::verify::{CallSigners, Recovered};
use crate::{CONTRIBUTIONS_MAX, REVEAL_DEADLINE_RATIO};

fn load_deal(ctx: &Ctx<'_>, deal: &B256) -> Result<Deal, ProtocolError> {
    ctx.state.deals().get(deal).cloned().ok_or(ProtocolError::UnknownDeal { deal: *deal })
}

/// A task and its deal, for a call that needs it in one of the open statuses (`expected`,
/// for `action`). A finished task fails on its status before any other check, the same
/// whether its record is in memory or was evicted.
fn load_task(
    ctx: &Ctx<'_>,
    task: &B256,
    expected: &'static str,
    action: &'static str,
) -> Result<(Task, Deal), ProtocolError> {
    let record = match ctx.state.tasks().get(task) {
        Some(record) if record.status.is_open() => record.clone(),
        // Finished, in memory or evicted.
        _ => {
            let status =
                ctx.state.task_status(task).ok_or(ProtocolError::UnknownTask { task: *task })?;
            return Err(ProtocolError::WrongTaskStatus { task: *task, status, expected, action });
        }
    };
    let deal = ctx.state.deals()[&record.deal_id].clone();
    Ok((record, deal))
}

fn expect_status(
    id: &B256,
    task: &Task,
    allowed: &[TaskStatus],
    expected: &'static str,
    action: &'static str,
) -> Result<(), ProtocolError> {
    if allowed.contains(&task.status) {
        Ok(())
    } else {
        Err(ProtocolError::WrongTaskStatus { task: *id, status: task.status, expected, action })
    }
}

/// `now < deadline`, or an error naming both.
fn before(
    ctx: &Ctx<'_>,
    task: &B256,
    deadline: u64,
    which: &'static str,
    action: &'static str,
) -> Result<(), ProtocolError> {
    if ctx.now() < deadline {
        Ok(())
    } else {
        Err(ProtocolError::DeadlinePassed { task: *task, which, action, deadline, now: ctx.now() })
    }
}

/// `now ≥ deadline`, or an error naming both.
fn at_or_after(
    ctx: &Ctx<'_>,
    task: &B256,
    deadline: u64,
    which: &'static str,
    action: &'static str,
) -> Result<(), ProtocolError> {
    if ctx.now() >= deadline {
        Ok(())
    } else {
        Err(ProtocolError::DeadlineNotReached {
            task: *task,
            which,
            action,
            deadline,
            now: ctx.now(),
        })
    }
}

fn check_pool_owner(
    ctx: &Ctx<'_>,
    task: &B256,
    deal: &Deal,
    action: &'static str,
) -> Result<(), ProtocolError> {
    if ctx.sender != deal.workerpool.owner {
        return Err(ProtocolError::NotPoolOwner {
            task: *task,
            owner: deal.workerpool.owner,
            sender: ctx.sender,
            action,
        });
    }
    Ok(())
}

/// Initializes task `idx`; returns its id.
pub(crate) fn initialize(ctx: &mut Ctx<'_>, call: &Initialize) -> Result<B256, ProtocolError> {
    let mut deal = load_deal(ctx, &call.deal_id)?;
    let end = deal.bot_first + U256::from(deal.bot_size);
    if call.idx < deal.bot_first || call.idx >= end {
        return Err(ProtocolError::TaskIndexOutOfRange {
            deal: call.deal_id,
            idx: call.idx,
            first: deal.bot_first,
            size: deal.bot_size,
        });
    }
    if deal.expired || ctx.now() >= deal.final_deadline() {
        return Err(ProtocolError::DealExpired {
            deal: call.deal_id,
            deadline: deal.final_deadline(),
            now: ctx.now(),
        });
    }
    let task_id = ids::task_id(&call.deal_id, call.idx);
    if ctx.state.task_status(&task_id).is_some() {
        return Err(ProtocolError::TaskAlreadyInitialized { task: task_id });
    }
    let task = Task {
        status: TaskStatus::Active,
        deal_id: call.deal_id,
        idx: call.idx,
        time_ref_s: deal.time_ref_s,
        contribution_deadline: deal.contribution_deadline(),
        reveal_deadline: 0,
        final_deadline: deal.final_deadline(),
        consensus_value: B256::ZERO,
        reveal_counter: 0,
        winner_counter: 0,
        result_digest: B256::ZERO,
        results: Bytes::new(),
        results_callback: Bytes::new(),
        contributions: Vec::new(),
        groups: Vec::new(),
        total_weight: U256::from(1),
    };
    deal.initialized += 1;
    let workerpool = deal.workerpool.pointer;
    ctx.state.put_deal(call.deal_id, deal);
    ctx.state.put_task(task_id, task);
    ctx.emit(Event::TaskInitialize { task: task_id, workerpool });
    Ok(task_id)
}

/// The checks shared by contribute and contributeAndFinalize: authorization, TEE, membership.
fn check_contribution(
    ctx: &Ctx<'_>,
    task_id: &B256,
    task: &Task,
    deal: &Deal,
    enclave_challenge: Address,
    signers: &CallSigners,
) -> Result<(), ProtocolError> {
    let worker = ctx.sender;
    expect_status(task_id, task, &[TaskStatus::Active], "ACTIVE", "contribute to")?;
    before(ctx, task_id, task.contribution_deadline, "contribution", "contribution")?;
    if task.contribution(&worker).is_some() {
        return Err(ProtocolError::AlreadyContributed { task: *task_id, worker });
    }
    if task.contributions.len() >= CONTRIBUTIONS_MAX {
        return Err(ProtocolError::TooManyContributions {
            task: *task_id,
            count: CONTRIBUTIONS_MAX,
        });
    }
    if deal.tag.is_tee() && enclave_challenge.is_zero() {
        return Err(ProtocolError::EnclaveChallengeRequired { task: *task_id, tag: deal.tag });
    }
    let CallSigners::Contribution { authorization, enclave } = signers else {
        unreachable!("contributions carry contribution signers")
    };
    let tee_broker = ctx.state.globals().tee_broker;
    let authorized = match authorization {
        Ok(signer) => {
            *signer == deal.workerpool.owner
                || (!enclave_challenge.is_zero() && !tee_broker.is_zero() && *signer == tee_broker)
        }
        Err(_) => false,
    };
    if !authorized {
        return Err(ProtocolError::BadAuthorization {
            task: *task_id,
            worker,
            signer: describe(authorization),
            expected: deal.workerpool.owner,
        });
    }
    if let Some(enclave) = enclave
        && enclave.as_ref().ok() != Some(&enclave_challenge)
    {
        return Err(ProtocolError::BadEnclaveSignature {
            task: *task_id,
            signer: describe(enclave),
            expected: enclave_challenge,
        });
    }
    Ok(())
}

fn describe(recovered: &Recovered) -> String {
    match recovered {
        Ok(address) => address.to_string(),
        Err(error) => format!("nobody ({error})"),
    }
}

pub(crate) fn contribute(
    ctx: &mut Ctx<'_>,
    call: &Contribute,
    signers: &CallSigners,
) -> Result<(), ProtocolError> {
    let worker = ctx.sender;
    let task_id = call.task_id;
    let (mut task, deal) = load_task(ctx, &task_id, "ACTIVE", "contribute to")?;
    check_contribution(ctx, &task_id, &task, &deal, call.enclave_challenge, signers)?;
    pool::lock_contribution_stake(ctx, worker, deal.workerpool.pointer, deal.worker_stake)?;

    let weight = worker_weight(ctx.state.score(&worker));
    let group = task.group_weight(&call.result_hash);
    let grown = group
        .max(U256::from(1))
        .checked_mul(U256::from(weight))
        .ok_or(ProtocolError::WeightOverflow { task: task_id })?;
    let delta = grown - group;
    task.total_weight = task
        .total_weight
        .checked_add(delta)
        .ok_or(ProtocolError::WeightOverflow { task: task_id })?;
    match task.groups.iter_mut().find(|g| g.result_hash == call.result_hash) {
        Some(g) => g.weight = grown,
        None => task.groups.push(ResultGroup { result_hash: call.result_hash, weight: grown }),
    }
    task.contributions.push(Contribution {
        worker,
        status: ContributionStatus::Contributed,
        result_hash: call.result_hash,
        result_seal: call.result_seal,
        enclave_challenge: call.enclave_challenge,
        weight: log2_floor(weight),
        stake: deal.worker_stake,
    });
    ctx.emit(Event::TaskContribute { task: task_id, worker, result_hash: call.result_hash });

    if is_consensus(grown, task.total_weight, deal.trust) {
        let reveal_deadline = ctx.now() + REVEAL_DEADLINE_RATIO * task.time_ref_s;
        task.status = TaskStatus::Revealing;
        task.consensus_value = call.result_hash;
        task.reveal_deadline = reveal_deadline;
        task.reveal_counter = 0;
        task.winner_counter = task
            .contributions
            .iter()
            .filter(|c| {
                c.status == ContributionStatus::Contributed && c.result_hash == call.result_hash
            })
            .count() as u32;
        ctx.emit(Event::TaskConsensus {
            task: task_id,
            consensus: call.result_hash,
            reveal_deadline,
        });
    }
    ctx.state.put_task(task_id, task);
    Ok(())
}

pub(crate) fn reveal(ctx: &mut Ctx<'_>, call: &Reveal) -> Result<(), ProtocolError> {
    let worker = ctx.sender;
    let task_id = call.task_id;
    let (mut task, _) = load_task(ctx, &task_id, "REVEALING", "reveal on")?;
    expect_status(&task_id, &task, &[TaskStatus::Revealing], "REVEALING", "reveal on")?;
    before(ctx, &task_id, task.reveal_deadline, "reveal", "reveal")?;
    let consensus = task.consensus_value;
    let contribution = task
        .contributions
        .iter_mut()
        .find(|c| c.worker == worker)
        .ok_or(ProtocolError::NoContribution { task: task_id, worker })?;
    if contribution.status != ContributionStatus::Contributed {
        return Err(ProtocolError::CannotReveal {
            task: task_id,
            worker,
            reason: format!("its contribution is already {:?}", contribution.status),
        });
    }
    if contribution.result_hash != consensus {
        return Err(ProtocolError::CannotReveal {
            task: task_id,
            worker,
            reason: format!(
                "it contributed {} but the consensus is {consensus}",
                contribution.result_hash
            ),
        });
    }
    if ids::result_hash(&task_id, &call.result_digest) != contribution.result_hash {
        return Err(ProtocolError::RevealMismatch {
            task: task_id,
            worker,
            digest: call.result_digest,
            what: "result hash",
        });
    }
    if ids::result_seal(&worker, &task_id, &call.result_digest) != contribution.result_seal {
        return Err(ProtocolError::RevealMismatch {
            task: task_id,
            worker,
            digest: call.result_digest,
            what: "result seal",
        });
    }
    contribution.status = ContributionStatus::Proved;
    task.reveal_counter += 1;
    task.result_digest = call.result_digest;
    ctx.state.put_task(task_id, task);
    ctx.emit(Event::TaskReveal { task: task_id, worker, digest: call.result_digest });
    Ok(())
}

/// `(no callback and no callback data) or keccak256(callback data) == digest`.
fn check_callback(
    task_id: &B256,
    deal: &Deal,
    digest: &B256,
    results_callback: &Bytes,
) -> Result<(), ProtocolError> {
    if deal.callback.is_zero() && results_callback.is_empty() {
        return Ok(());
    }
    let got = keccak256(results_callback);
    if got == *digest {
        Ok(())
    } else {
        Err(ProtocolError::CallbackMismatch {
            task: *task_id,
            digest: *digest,
            got,
            callback: deal.callback,
        })
    }
}

pub(crate) fn finalize(ctx: &mut Ctx<'_>, call: &Finalize) -> Result<(), ProtocolError> {
    let task_id = call.task_id;
    let (mut task, deal) = load_task(ctx, &task_id, "REVEALING", "finalize")?;
    check_pool_owner(ctx, &task_id, &deal, "finalize")?;
    expect_status(&task_id, &task, &[TaskStatus::Revealing], "REVEALING", "finalize")?;
    before(ctx, &task_id, task.final_deadline, "final", "finalize")?;
    let all_revealed = task.reveal_counter == task.winner_counter;
    let late_enough = task.reveal_counter > 0 && ctx.now() >= task.reveal_deadline;
    if !(all_revealed || late_enough) {
        return Err(ProtocolError::RevealsIncomplete {
            task: task_id,
            reveals: task.reveal_counter,
            winners: task.winner_counter,
            deadline: task.reveal_deadline,
            now: ctx.now(),
        });
    }
    check_callback(&task_id, &deal, &task.result_digest, &call.results_callback)?;

    task.status = TaskStatus::Completed;
    task.results = call.results.clone();
    task.results_callback = call.results_callback.clone();
    settle_success(ctx, &task_id, &deal)?;
    distribute_rewards(ctx, &task_id, &mut task, &deal)?;
    ctx.emit(Event::TaskFinalize { task: task_id, results: call.results.clone() });
    close_task(ctx, task_id, task, deal, true);
    Ok(())
}

/// Pays for one successful task: the requester's price is seized, the app and dataset owners
/// are paid, the pool owner's stake for the task comes back and it gets its kitty share.
fn settle_success(ctx: &mut Ctx<'_>, task_id: &B256, deal: &Deal) -> Result<(), ProtocolError> {
    let reference = EscrowRef::Task(*task_id);
    ctx.seize(deal.requester, deal.task_price()?, reference.clone());
    ctx.reward(deal.app.owner, deal.app.price, reference.clone());
    if !deal.dataset.pointer.is_zero() {
        ctx.reward(deal.dataset.owner, deal.dataset.price, reference);
    }
    ctx.unlock(deal.workerpool.owner, deal.pool_stake());
    let kitty = xiebao_types::ids::kitty_address();
    let share = kitty_share(ctx.state.account(&kitty).frozen);
    ctx.seize(kitty, share, EscrowRef::Kitty(*task_id));
    ctx.reward(deal.workerpool.owner, share, EscrowRef::Kitty(*task_id));
    Ok(())
}

/// Pays the winners by log2 weight, slashes the losers, gives the rest to the scheduler.
///
/// Events come in PoCo's order: for each contribution in contribution order, a winner's
/// `Reward` then `AccurateContribution`, a loser's `Seize` then `FaultyContribution`; then
/// the scheduler's `Reward`. The losers' stakes move into the pot before any reward is paid
/// (so the pot never runs short), each `Seize` event being emitted at its contribution's place.
fn distribute_rewards(
    ctx: &mut Ctx<'_>,
    task_id: &B256,
    task: &mut Task,
    deal: &Deal,
) -> Result<(), ProtocolError> {
    let reference = EscrowRef::Task(*task_id);
    let replicated = task.contributions.len() > 1;
    let mut total_reward = deal.workerpool.price;
    let mut winners_weight: u128 = 0;
    for contribution in &task.contributions {
        if contribution.status == ContributionStatus::Proved {
            winners_weight += u128::from(contribution.weight);
        } else {
            total_reward = total_reward.checked_add(contribution.stake)?;
            pool::slash_contribution_stake_quietly(ctx, contribution.worker, contribution.stake);
        }
    }
    // The requester's pool price is in the pot (seized by settle_success); losers' stakes too.
    let workers_reward = total_reward.mul_div(100 - u128::from(deal.scheduler_reward_ratio), 100);
    let mut paid = Nrlc::ZERO;
    for contribution in &task.contributions {
        let worker = contribution.worker;
        if contribution.status == ContributionStatus::Proved {
            pool::return_contribution_stake(ctx, worker, contribution.stake);
            let share = workers_reward.mul_div(u128::from(contribution.weight), winners_weight);
            ctx.reward(worker, share, reference.clone());
            paid = paid.checked_add(share)?;
            if replicated {
                let score = ctx.state.score(&worker);
                ctx.state.put_score(worker, score.saturating_add(1));
                ctx.emit(Event::AccurateContribution { worker, task: *task_id });
            }
        } else {
            if !contribution.stake.is_zero() {
                let (owner, amount) = (worker, contribution.stake);
                ctx.emit(Event::Seize { owner, amount, reference: reference.clone() });
            }
            let score = ctx.state.score(&worker);
            ctx.state.put_score(worker, slashed_score(score));
            ctx.emit(Event::FaultyContribution { worker, task: *task_id });
        }
    }
    ctx.reward(deal.workerpool.owner, total_reward.checked_sub(paid)?, reference);
    Ok(())
}

/// Marks a task final and updates its deal's counters.
/// `deal` is the task's deal as loaded by the caller (no call changes it in between).
fn close_task(ctx: &mut Ctx<'_>, task_id: B256, task: Task, mut deal: Deal, completed: bool) {
    let deal_id = task.deal_id;
    debug_assert_eq!(ctx.state.deals().get(&deal_id), Some(&deal), "stale deal");
    if completed {
        deal.completed += 1;
    } else {
        deal.failed += 1;
    }
    ctx.state.put_deal(deal_id, deal);
    ctx.state.put_task(task_id, task);
}

pub(crate) fn reopen(ctx: &mut Ctx<'_>, call: &Reopen) -> Result<(), ProtocolError> {
    let task_id = call.task_id;
    let (mut task, deal) = load_task(ctx, &task_id, "REVEALING", "reopen")?;
    check_pool_owner(ctx, &task_id, &deal, "reopen")?;
    expect_status(&task_id, &task, &[TaskStatus::Revealing], "REVEALING", "reopen")?;
    before(ctx, &task_id, task.final_deadline, "final", "reopen")?;
    at_or_after(ctx, &task_id, task.reveal_deadline, "reveal", "reopen")?;
    if task.reveal_counter != 0 {
        return Err(ProtocolError::ReopenWithReveals {
            task: task_id,
            reveals: task.reveal_counter,
        });
    }
    let consensus = task.consensus_value;
    for contribution in &mut task.contributions {
        if contribution.result_hash == consensus {
            contribution.status = ContributionStatus::Rejected;
        }
    }
    let group = task.group_weight(&consensus);
    task.total_weight -= group;
    if let Some(g) = task.groups.iter_mut().find(|g| g.result_hash == consensus) {
        g.weight = U256::ZERO;
    }
    task.status = TaskStatus::Active;
    task.consensus_value = B256::ZERO;
    task.reveal_deadline = 0;
    task.winner_counter = 0;
    ctx.state.put_task(task_id, task);
    ctx.emit(Event::TaskReopen { task: task_id });
    Ok(())
}

pub(crate) fn claim(ctx: &mut Ctx<'_>, call: &Claim) -> Result<(), ProtocolError> {
    let task_id = call.task_id;
    let (task, deal) = load_task(ctx, &task_id, "ACTIVE or REVEALING", "claim")?;
    expect_status(
        &task_id,
        &task,
        &[TaskStatus::Active, TaskStatus::Revealing],
        "ACTIVE or REVEALING",
        "claim",
    )?;
    at_or_after(ctx, &task_id, task.final_deadline, "final", "claim")?;
    fail_task(ctx, task_id, task, deal)
}

/// Fails a task: the requester is refunded, the pool's stake goes to the kitty and every
/// contributor's stake comes back (no one is slashed, no score changes).
fn fail_task(
    ctx: &mut Ctx<'_>,
    task_id: B256,
    mut task: Task,
    deal: Deal,
) -> Result<(), ProtocolError> {
    ctx.unlock(deal.requester, deal.task_price()?);
    ctx.seize(deal.workerpool.owner, deal.pool_stake(), EscrowRef::Task(task_id));
    ctx.fill_kitty(deal.pool_stake(), EscrowRef::Task(task_id));
    for contribution in &task.contributions {
        pool::return_contribution_stake(ctx, contribution.worker, contribution.stake);
    }
    task.status = TaskStatus::Failed;
    ctx.emit(Event::TaskClaimed { task: task_id });
    close_task(ctx, task_id, task, deal, false);
    Ok(())
}

pub(crate) fn contribute_and_finalize(
    ctx: &mut Ctx<'_>,
    call: &ContributeAndFinalize,
    signers: &CallSigners,
) -> Result<(), ProtocolError> {
    let worker = ctx.sender;
    let task_id = call.task_id;
    let (mut task, deal) = load_task(ctx, &task_id, "ACTIVE", "contribute to")?;
    if deal.trust > 1 {
        return Err(ProtocolError::SingleTxNotAllowed {
            task: task_id,
            reason: format!(
                "the deal's trust is {}; one-call settlement needs trust ≤ 1",
                deal.trust
            ),
        });
    }
    check_contribution(ctx, &task_id, &task, &deal, call.enclave_challenge, signers)?;
    if !task.contributions.is_empty() {
        return Err(ProtocolError::SingleTxNotAllowed {
            task: task_id,
            reason: format!("the task already has {} contributions", task.contributions.len()),
        });
    }
    check_callback(&task_id, &deal, &call.result_digest, &call.results_callback)?;
    // Membership is required, but no stake is locked (as in PoCo).
    pool::lock_contribution_stake(ctx, worker, deal.workerpool.pointer, Nrlc::ZERO)?;

    let result_hash = ids::result_hash(&task_id, &call.result_digest);
    task.contributions.push(Contribution {
        worker,
        status: ContributionStatus::Proved,
        result_hash,
        result_seal: ids::result_seal(&worker, &task_id, &call.result_digest),
        enclave_challenge: call.enclave_challenge,
        weight: log2_floor(worker_weight(ctx.state.score(&worker))),
        stake: Nrlc::ZERO,
    });
    task.status = TaskStatus::Completed;
    task.consensus_value = result_hash;
    task.reveal_counter = 1;
    task.winner_counter = 1;
    task.result_digest = call.result_digest;
    task.results = call.results.clone();
    task.results_callback = call.results_callback.clone();
    ctx.emit(Event::TaskContribute { task: task_id, worker, result_hash });
    ctx.emit(Event::TaskConsensus { task: task_id, consensus: result_hash, reveal_deadline: 0 });
    ctx.emit(Event::TaskReveal { task: task_id, worker, digest: call.result_digest });

    settle_success(ctx, &task_id, &deal)?;
    let reference = EscrowRef::Task(task_id);
    let worker_reward =
        deal.workerpool.price.mul_div(100 - u128::from(deal.scheduler_reward_ratio), 100);
    ctx.reward(worker, worker_reward, reference.clone());
    ctx.reward(deal.workerpool.owner, deal.workerpool.price.checked_sub(worker_reward)?, reference);
    ctx.emit(Event::TaskFinalize { task: task_id, results: call.results.clone() });
    close_task(ctx, task_id, task, deal, true);
    Ok(())
}

/// At a deal's final deadline: fail every unfinished task and refund the never-initialized ones.
pub(crate) fn expire_deal(ctx: &mut Ctx<'_>, deal_id: B256) {
    let open: Vec<B256> = ctx
        .state
        .open_tasks()
        .range((deal_id, B256::ZERO)..=(deal_id, B256::repeat_byte(0xff)))
        .map(|(_, task)| *task)
        .collect();
    for task_id in open {
        let (task, deal) =
            load_task(ctx, &task_id, "ACTIVE or REVEALING", "expire").expect("open tasks exist");
        fail_task(ctx, task_id, task, deal).expect("deal prices were checked at match");
    }
    let mut deal = ctx.state.deals()[&deal_id].clone();
    let uninitialized = deal.bot_size - deal.initialized;
    if uninitialized > 0 {
        let price = deal.task_price().expect("checked at match");
        let refund = price.checked_mul(u128::from(uninitialized)).expect("locked at match");
        ctx.unlock(deal.requester, refund);
        let stake =
            deal.pool_stake().checked_mul(u128::from(uninitialized)).expect("locked at match");
        ctx.seize(deal.workerpool.owner, stake, EscrowRef::Deal(deal_id));
        ctx.fill_kitty(stake, EscrowRef::Deal(deal_id));
        deal.failed += uninitialized;
    }
    deal.expired = true;
    ctx.state.put_deal(deal_id, deal);
    ctx.emit(Event::DealExpired { deal: deal_id, uninitialized });
}
