//! The call dispatch: checks a transaction's chain and nonce, hands each call to its rule
//! module with a fresh [`Ctx`], and fires the timers due at a block.

use alloy_primitives::Address;
use xiebao_types::tx::Call;

use crate::ctx::Ctx;
use crate::error::ProtocolError;
use crate::event::Event;
use crate::model::Timer;
use crate::state::State;
use crate::verify::{CallSigners, VerifiedTx};
use crate::{BlockContext, bridge, market, pool, registry, task};

pub(crate) fn apply_calls(
    state: &mut State,
    tx: &VerifiedTx,
    block: &BlockContext,
) -> Result<Vec<Event>, ProtocolError> {
    let globals = state.globals();
    if tx.tx.chain_id != globals.chain_id {
        return Err(ProtocolError::WrongChain { expected: globals.chain_id, got: tx.tx.chain_id });
    }
    assert_eq!(
        tx.domain_separator,
        state.domain().separator(),
        "transaction verified under another domain"
    );
    let mut account = state.account(&tx.sender);
    if tx.tx.nonce != account.nonce {
        return Err(ProtocolError::BadNonce {
            sender: tx.sender,
            expected: account.nonce,
            got: tx.tx.nonce,
        });
    }
    account.nonce += 1;
    state.put_account(tx.sender, account);

    // Room for a settlement's events (a trust-1 one emits about ten), so a batch of
    // calls seldom regrows the list.
    let events = Vec::with_capacity(tx.tx.calls.len() * 12);
    let mut ctx = Ctx { state, block, sender: tx.sender, events };
    let batch = tx.tx.calls.len() > 1;
    for (index, (call, signers)) in tx.tx.calls.iter().zip(&tx.signers).enumerate() {
        dispatch(&mut ctx, call, signers).map_err(|source| {
            if batch {
                ProtocolError::Call { index, call: call.name(), source: Box::new(source) }
            } else {
                source
            }
        })?;
        debug_assert!(ctx.state.pot.is_zero(), "call {} left seized value", call.name());
    }
    Ok(ctx.events)
}

fn dispatch(ctx: &mut Ctx<'_>, call: &Call, signers: &CallSigners) -> Result<(), ProtocolError> {
    match call {
        Call::Transfer(c) => ctx.transfer(c.to, c.amount),
        Call::CreateApp(c) => registry::create_app(ctx, c),
        Call::CreateDataset(c) => registry::create_dataset(ctx, c),
        Call::CreateWorkerpool(c) => registry::create_workerpool(ctx, c),
        Call::TransferAsset(c) => registry::transfer_asset(ctx, c),
        Call::ChangePoolPolicy(c) => registry::change_pool_policy(ctx, c),
        Call::CreateCategory(c) => registry::create_category(ctx, c),
        Call::SetTeeBroker(c) => registry::set_tee_broker(ctx, c),
        Call::AddValidator(c) => registry::add_validator(ctx, c),
        Call::RemoveValidator(c) => registry::remove_validator(ctx, c),
        Call::CreateGroup(c) => registry::create_group(ctx, c),
        Call::SetGroupMember(c) => registry::set_group_member(ctx, c),
        Call::ManageAppOrder(c) => market::manage_app_order(ctx, c, signers),
        Call::ManageDatasetOrder(c) => market::manage_dataset_order(ctx, c, signers),
        Call::ManageWorkerpoolOrder(c) => market::manage_workerpool_order(ctx, c, signers),
        Call::ManageRequestOrder(c) => market::manage_request_order(ctx, c, signers),
        Call::MatchOrders(c) => market::match_orders(ctx, c, signers).map(|_| ()),
        Call::Initialize(c) => task::initialize(ctx, c).map(|_| ()),
        Call::Contribute(c) => task::contribute(ctx, c, signers),
        Call::Reveal(c) => task::reveal(ctx, c),
        Call::Finalize(c) => task::finalize(ctx, c),
        Call::Reopen(c) => task::reopen(ctx, c),
        Call::Claim(c) => task::claim(ctx, c),
        Call::ContributeAndFinalize(c) => task::contribute_and_finalize(ctx, c, signers),
        Call::JoinPool(c) => pool::join(ctx, c),
        Call::LeavePool(c) => pool::leave(ctx, c),
        Call::SetBridge(c) => bridge::set_bridge(ctx, c),
        Call::AttestDeposit(c) => bridge::attest_deposit(ctx, c),
        Call::Withdraw(c) => bridge::withdraw(ctx, c),
        Call::SignWithdrawal(c) => bridge::sign_withdrawal(ctx, c),
    }
}

pub(crate) fn fire_timers(state: &mut State, block: &BlockContext) -> Vec<Event> {
    let mut ctx = Ctx { state, block, sender: Address::ZERO, events: Vec::new() };
    while let Some(((at, timer), ())) = ctx.state.timers().first_key_value() {
        let (at, timer) = (*at, *timer);
        if at > block.timestamp {
            break;
        }
        ctx.state.remove_timer(&(at, timer));
        match timer {
            Timer::DealExpiry(deal) => task::expire_deal(&mut ctx, deal),
            Timer::Unbond(worker) => pool::release(&mut ctx, worker),
        }
    }
    ctx.events
}
