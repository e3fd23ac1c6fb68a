//! The execution context of one transaction, the escrow primitives and the call dispatch.

use alloy_primitives::Address;
use xiebao_types::Nrlc;
use xiebao_types::tx::Call;

use crate::error::ProtocolError;
use crate::event::{EscrowRef, Event};
use crate::model::Timer;
use crate::state::State;
use crate::verify::{CallSigners, VerifiedTx};
use crate::{BlockContext, bridge, market, pool, registry, task};

/// What a call handler sees: the state, the block, the sender and the events so far.
pub(crate) struct Ctx<'a> {
    pub(crate) state: &'a mut State,
    pub(crate) block: &'a BlockContext,
    pub(crate) sender: Address,
    pub(crate) events: Vec<Event>,
}

impl Ctx<'_> {
    pub(crate) fn now(&self) -> u64 {
        self.block.timestamp
    }

    pub(crate) fn emit(&mut self, event: Event) {
        self.events.push(event);
    }

    /// Free → frozen; fails when the free balance is short.
    pub(crate) fn lock(
        &mut self,
        owner: Address,
        amount: Nrlc,
        purpose: &'static str,
    ) -> Result<(), ProtocolError> {
        if amount.is_zero() {
            return Ok(());
        }
        let mut account = self.state.account(&owner);
        account.free = debit(owner, account.free, amount, purpose)?;
        account.frozen = account.frozen.checked_add(amount)?;
        self.state.put_account(owner, account);
        self.emit(Event::Lock { owner, amount });
        Ok(())
    }

    /// Frozen → free. The frozen balance must cover it (a bug otherwise).
    pub(crate) fn unlock(&mut self, owner: Address, amount: Nrlc) {
        if amount.is_zero() {
            return;
        }
        let mut account = self.state.account(&owner);
        account.frozen = account.frozen.checked_sub(amount).expect("unlock exceeds frozen balance");
        account.free = account.free.checked_add(amount).expect("free balance overflows the supply");
        self.state.put_account(owner, account);
        self.emit(Event::Unlock { owner, amount });
    }

    /// Takes frozen value into the call's pot, to be rewarded to someone.
    pub(crate) fn seize(&mut self, owner: Address, amount: Nrlc, reference: EscrowRef) {
        if amount.is_zero() {
            return;
        }
        self.seize_quietly(owner, amount);
        self.emit(Event::Seize { owner, amount, reference });
    }

    /// [`Self::seize`] without its event: the caller emits it (PoCo's event order).
    pub(crate) fn seize_quietly(&mut self, owner: Address, amount: Nrlc) {
        let mut account = self.state.account(&owner);
        account.frozen = account.frozen.checked_sub(amount).expect("seize exceeds frozen balance");
        self.state.put_account(owner, account);
        self.state.pot = self.state.pot.checked_add(amount).expect("pot overflows the supply");
    }

    /// Gives value from the pot to `owner`'s free balance.
    pub(crate) fn reward(&mut self, owner: Address, amount: Nrlc, reference: EscrowRef) {
        if amount.is_zero() {
            return;
        }
        self.state.pot = self.state.pot.checked_sub(amount).expect("reward exceeds seized value");
        let mut account = self.state.account(&owner);
        account.free = account.free.checked_add(amount).expect("free balance overflows the supply");
        self.state.put_account(owner, account);
        self.emit(Event::Reward { owner, amount, reference });
    }

    /// Moves value from the pot into the kitty (frozen on the kitty address).
    pub(crate) fn fill_kitty(&mut self, amount: Nrlc, reference: EscrowRef) {
        if amount.is_zero() {
            return;
        }
        let kitty = xiebao_types::ids::kitty_address();
        self.reward(kitty, amount, reference);
        let mut account = self.state.account(&kitty);
        account.free = account.free.checked_sub(amount).expect("just rewarded");
        account.frozen = account.frozen.checked_add(amount).expect("kitty overflows the supply");
        self.state.put_account(kitty, account);
        self.emit(Event::Lock { owner: kitty, amount });
    }

    /// Moves free balance between accounts.
    pub(crate) fn transfer(&mut self, to: Address, amount: Nrlc) -> Result<(), ProtocolError> {
        let from = self.sender;
        let mut source = self.state.account(&from);
        source.free = debit(from, source.free, amount, "transfer")?;
        self.state.put_account(from, source);
        let mut target = self.state.account(&to);
        target.free = target.free.checked_add(amount)?;
        self.state.put_account(to, target);
        self.emit(Event::Transfer { from, to, amount });
        Ok(())
    }
}

/// `free − amount`, or the error that says how much is missing and what for.
pub(crate) fn debit(
    account: Address,
    free: Nrlc,
    amount: Nrlc,
    purpose: &'static str,
) -> Result<Nrlc, ProtocolError> {
    free.checked_sub(amount).map_err(|_| ProtocolError::InsufficientBalance {
        account,
        available: free,
        needed: amount,
        missing: Nrlc(amount.0 - free.0),
        purpose,
    })
}

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
