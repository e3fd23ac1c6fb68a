//! The execution context of one transaction — the state, the block, the sender and the events
//! so far — and the escrow primitives (lock, unlock, seize, reward, kitty, transfer) with which
//! every rule module moves value.
//!
//! It sits apart from the dispatcher (`exec.rs`) so that the rule modules depend on it alone,
//! never back on the module that calls them.

use alloy_primitives::Address;
use xiebao_types::Nrlc;

use crate::BlockContext;
use crate::error::ProtocolError;
use crate::event::{EscrowRef, Event};
use crate::state::State;

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
