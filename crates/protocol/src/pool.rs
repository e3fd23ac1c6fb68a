//! Workerpool membership: workers bond RLC to join a pool, contributions lock part of that
//! bond, wrong contributions lose it, and leaving releases it after the pool's unbonding delay.

use alloy_primitives::Address;
use xiebao_types::Nrlc;
use xiebao_types::tx::{JoinPool, LeavePool};

use crate::ctx::Ctx;
use crate::error::{EntryKind, ProtocolError};
use crate::event::Event;
use crate::model::{Membership, MembershipStatus, Timer};

pub(crate) fn join(ctx: &mut Ctx<'_>, call: &JoinPool) -> Result<(), ProtocolError> {
    let worker = ctx.sender;
    let pool = ctx.state.workerpools().get(&call.workerpool).cloned().ok_or(
        ProtocolError::UnknownEntry { kind: EntryKind::Workerpool, address: call.workerpool },
    )?;
    let mut membership = match ctx.state.memberships().get(&worker).cloned() {
        Some(m) if m.workerpool != call.workerpool => {
            return Err(ProtocolError::MemberElsewhere {
                worker,
                current: m.workerpool,
                requested: call.workerpool,
            });
        }
        Some(mut m) => {
            // Joining again cancels a pending leave.
            if m.status == MembershipStatus::Unbonding {
                ctx.state.remove_timer(&(m.release_at, Timer::Unbond(worker)));
            }
            m.status = MembershipStatus::Active;
            m.release_at = 0;
            m
        }
        None => Membership {
            workerpool: call.workerpool,
            status: MembershipStatus::Active,
            bonded: Nrlc::ZERO,
            in_contributions: Nrlc::ZERO,
            release_at: 0,
        },
    };
    ctx.lock(worker, call.stake, "the stake bonded in the workerpool")?;
    membership.bonded = membership.bonded.checked_add(call.stake)?;
    let staked = membership.bonded.checked_add(membership.in_contributions)?;
    if staked < pool.policy.min_worker_stake {
        return Err(ProtocolError::StakeTooLow {
            worker,
            bonded: staked,
            needed: pool.policy.min_worker_stake,
            rule: "the workerpool's minimum worker stake",
        });
    }
    ctx.state.put_membership(worker, membership);
    ctx.emit(Event::PoolJoined { worker, workerpool: call.workerpool, stake: call.stake });
    Ok(())
}

pub(crate) fn leave(ctx: &mut Ctx<'_>, call: &LeavePool) -> Result<(), ProtocolError> {
    let worker = ctx.sender;
    let mut membership = active_membership(ctx, worker, call.workerpool)?;
    let delay = ctx.state.workerpools()[&call.workerpool].policy.unbonding_delay_s;
    let release_at = ctx.now() + delay;
    membership.status = MembershipStatus::Unbonding;
    membership.release_at = release_at;
    ctx.state.put_membership(worker, membership);
    ctx.state.put_timer((release_at, Timer::Unbond(worker)), ());
    ctx.emit(Event::PoolLeaving { worker, workerpool: call.workerpool, release_at });
    Ok(())
}

/// The worker's membership, which must be active in `workerpool`.
pub(crate) fn active_membership(
    ctx: &Ctx<'_>,
    worker: Address,
    workerpool: Address,
) -> Result<Membership, ProtocolError> {
    let not_member = |detail: String| ProtocolError::NotMember { worker, workerpool, detail };
    match ctx.state.memberships().get(&worker) {
        None => Err(not_member("it has no stake in any pool".into())),
        Some(m) if m.workerpool != workerpool => {
            Err(not_member(format!("it is a member of {}", m.workerpool)))
        }
        Some(m) if m.status != MembershipStatus::Active => {
            Err(not_member(format!("it is leaving the pool (release at {})", m.release_at)))
        }
        Some(m) => Ok(m.clone()),
    }
}

/// Checks that `worker` may contribute to a deal of `workerpool` and, if `stake` is non-zero,
/// moves it from the bond into the contribution.
pub(crate) fn lock_contribution_stake(
    ctx: &mut Ctx<'_>,
    worker: Address,
    workerpool: Address,
    stake: Nrlc,
) -> Result<(), ProtocolError> {
    let mut membership = active_membership(ctx, worker, workerpool)?;
    let min_stake = ctx.state.workerpools()[&workerpool].policy.min_worker_stake;
    let staked = membership.bonded.checked_add(membership.in_contributions)?;
    if staked < min_stake {
        return Err(ProtocolError::StakeTooLow {
            worker,
            bonded: staked,
            needed: min_stake,
            rule: "the workerpool's minimum worker stake",
        });
    }
    if membership.bonded < stake {
        return Err(ProtocolError::StakeTooLow {
            worker,
            bonded: membership.bonded,
            needed: stake,
            rule: "the deal's stake per contribution",
        });
    }
    if !stake.is_zero() {
        membership.bonded = membership.bonded.checked_sub(stake)?;
        membership.in_contributions = membership.in_contributions.checked_add(stake)?;
        ctx.state.put_membership(worker, membership);
    }
    Ok(())
}

/// Returns a contribution's stake to the worker's bond (or, once it left, its free balance).
pub(crate) fn return_contribution_stake(ctx: &mut Ctx<'_>, worker: Address, stake: Nrlc) {
    if stake.is_zero() {
        return;
    }
    let mut membership =
        ctx.state.memberships().get(&worker).cloned().expect("a locked stake has a membership");
    membership.in_contributions =
        membership.in_contributions.checked_sub(stake).expect("returned stake was locked");
    if membership.status == MembershipStatus::Left {
        ctx.unlock(worker, stake);
    } else {
        membership.bonded =
            membership.bonded.checked_add(stake).expect("bond overflows the supply");
    }
    put_or_drop(ctx, worker, membership);
}

/// Slashes a wrong contribution's stake into the call's pot without its `Seize` event, which
/// the caller emits where PoCo's event order puts it.
pub(crate) fn slash_contribution_stake_quietly(ctx: &mut Ctx<'_>, worker: Address, stake: Nrlc) {
    if stake.is_zero() {
        return;
    }
    let mut membership =
        ctx.state.memberships().get(&worker).cloned().expect("a locked stake has a membership");
    membership.in_contributions =
        membership.in_contributions.checked_sub(stake).expect("slashed stake was locked");
    put_or_drop(ctx, worker, membership);
    ctx.seize_quietly(worker, stake);
}

/// Releases a leaving worker's bond at the end of its unbonding delay.
pub(crate) fn release(ctx: &mut Ctx<'_>, worker: Address) {
    let mut membership =
        ctx.state.memberships().get(&worker).cloned().expect("an unbond timer has a membership");
    assert_eq!(
        membership.status,
        MembershipStatus::Unbonding,
        "unbond timer on a non-leaving member"
    );
    let amount = membership.bonded;
    ctx.unlock(worker, amount);
    membership.bonded = Nrlc::ZERO;
    membership.status = MembershipStatus::Left;
    ctx.emit(Event::StakeReleased { worker, workerpool: membership.workerpool, amount });
    put_or_drop(ctx, worker, membership);
}

fn put_or_drop(ctx: &mut Ctx<'_>, worker: Address, membership: Membership) {
    if membership.status == MembershipStatus::Left && membership.in_contributions.is_zero() {
        ctx.state.remove_membership(&worker);
    } else {
        ctx.state.put_membership(worker, membership);
    }
}
