//! Apply Xiebao transactions to the PoCo state: a pure, deterministic state machine with no I/O.
//!
//! `apply(state, verified tx, block) -> events | error` is the only way the state changes,
//! besides [`end_block`], which fires the timers (deal expiry, stake release) due at the block's
//! time. The crate never reads a clock, randomness, the environment or floating point, and
//! iterates only ordered maps: the same blocks give the same state on every node.
//!
//! **Invariant:** a rejected transaction changes nothing (writes are journaled and rolled
//! back). **Invariant:** Σ free + Σ frozen = minted − burned after every transaction.
#![deny(clippy::float_arithmetic)]

mod bridge;
mod consensus;
mod ctx;
mod error;
mod event;
mod exec;
mod market;
mod model;
mod pool;
mod registry;
mod state;
mod task;
mod verify;

pub use consensus::{
    contributions_needed, is_consensus, kitty_share, log2_floor, slashed_score, worker_weight,
};
pub mod testkit;
pub use error::{EntryKind, ProtocolError};
pub use event::{EscrowRef, Event};
pub use model::*;
pub use registry::{app_address, dataset_address, group_address, workerpool_address};
pub use state::{Change, FinishedTasks, State};
pub use verify::{Recovered, VerifiedTx, call_recoveries};

use alloy_primitives::{Address, B256};
use xiebao_types::order::Domain;
use xiebao_types::{Nrlc, SignedTransaction, Timestamp};

/// Contribution deadline = deal start + 7·T.
pub const CONTRIBUTION_DEADLINE_RATIO: u64 = 7;
/// Reveal deadline = consensus time + 2·T.
pub const REVEAL_DEADLINE_RATIO: u64 = 2;
/// Final deadline = deal start + 10·T.
pub const FINAL_DEADLINE_RATIO: u64 = 10;
/// The pool owner's stake per task, percent of the workerpool price.
pub const WORKERPOOL_STAKE_RATIO: u128 = 30;
/// The kitty share paid at each successful finalize, percent of the kitty.
pub const KITTY_RATIO: u128 = 10;
/// The least kitty share (1 RLC), unless the kitty holds less.
pub const KITTY_MIN_NRLC: u128 = 1_000_000_000;
/// Most contributions one task accepts.
pub const CONTRIBUTIONS_MAX: usize = 256;
/// Most tasks one deal may carry; a larger match takes this many and leaves the rest of the
/// orders' volume for further deals, like any partial fill.
pub const DEAL_VOLUME_MAX: u64 = 1 << 32;

/// The block a transaction is applied in: the protocol's only source of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockContext {
    /// Block height.
    pub height: u64,
    /// The proposer's timestamp, seconds.
    pub timestamp: Timestamp,
}

/// The initial state of a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Genesis {
    /// Chain id.
    pub chain_id: u64,
    /// The EIP-712 `verifyingContract` orders are signed for.
    pub verifying_contract: Address,
    /// The governance account.
    pub authority: Address,
    /// Initial balances (minted at genesis).
    pub balances: Vec<(Address, Nrlc)>,
    /// Initial categories: (name, description, T seconds).
    pub categories: Vec<(String, String, u64)>,
    /// Initial validators: (Ethereum address, ed25519 key).
    pub validators: Vec<(Address, B256)>,
    /// Imported worker scores (as PoCo v5 imported v3 scores once).
    pub scores: Vec<(Address, u64)>,
    /// Blocks per consensus epoch (at least 2): validator-set changes take effect at the
    /// first block of the next epoch.
    pub epoch_length: u64,
}

impl Genesis {
    /// Blocks per epoch when a genesis does not say.
    pub const DEFAULT_EPOCH_LENGTH: u64 = 1_000;

    /// PoCo's five categories XS, S, M, L, XL (T = 300 s … 36 000 s).
    pub fn default_categories() -> Vec<(String, String, u64)> {
        [("XS", 300), ("S", 1_200), ("M", 3_600), ("L", 10_800), ("XL", 36_000)]
            .into_iter()
            .map(|(name, t)| (name.to_owned(), format!("{{\"T\":{t}}}"), t))
            .collect()
    }
}

impl State {
    /// Builds the state a chain starts from.
    ///
    /// # Panics
    /// If the genesis balances overflow the supply type or repeat an account (a malformed
    /// genesis file is a configuration error caught before the chain starts).
    pub fn genesis(genesis: &Genesis) -> Self {
        let mut state = Self::default();
        let mut minted = Nrlc::ZERO;
        for (address, amount) in &genesis.balances {
            assert!(!state.accounts().contains_key(address), "genesis repeats account {address}");
            state.put_account(*address, Account { nonce: 0, free: *amount, frozen: Nrlc::ZERO });
            minted = minted.checked_add(*amount).expect("genesis supply overflows");
        }
        for (id, (name, description, t)) in genesis.categories.iter().enumerate() {
            state.put_category(
                id as u64,
                Category {
                    name: name.clone(),
                    description: description.clone(),
                    work_clock_time_ref_s: *t,
                },
            );
        }
        for (worker, score) in &genesis.scores {
            state.put_score(*worker, *score);
        }
        assert!(genesis.epoch_length >= 2, "an epoch holds at least 2 blocks");
        for (address, key) in &genesis.validators {
            state.put_validator(*address, Validator { consensus_key: *key, p2p: String::new() });
        }
        let members = state.current_validators();
        state.put_epoch(0, EpochValidators { members });
        state.set_globals(Globals {
            chain_id: genesis.chain_id,
            verifying_contract: genesis.verifying_contract,
            authority: genesis.authority,
            tee_broker: Address::ZERO,
            minted,
            burned: Nrlc::ZERO,
            category_count: genesis.categories.len() as u64,
            epoch_length: genesis.epoch_length,
        });
        state.commit();
        state
    }

    /// The validators as the state holds them now, ordered by address (they become the next
    /// epoch's set at the end of this epoch's last block).
    pub fn current_validators(&self) -> Vec<EpochMember> {
        self.validators()
            .iter()
            .map(|(address, v)| EpochMember {
                address: *address,
                consensus_key: v.consensus_key,
                p2p: v.p2p.clone(),
            })
            .collect()
    }

    /// The consensus epoch a block height belongs to.
    pub fn epoch_of(&self, height: u64) -> u64 {
        height / self.globals().epoch_length
    }

    /// The validators of `epoch`, once the state has fixed them (the end of the previous
    /// epoch's last block).
    pub fn epoch_validators(&self, epoch: u64) -> Option<&EpochValidators> {
        self.epochs().get(&epoch)
    }

    /// The EIP-712 domain of orders on this chain.
    pub fn domain(&self) -> Domain {
        Domain::new(self.globals().chain_id, self.globals().verifying_contract)
    }
}

/// Applies one verified transaction. On error the state is exactly as before.
///
/// # Errors
/// [`ProtocolError`] naming the rule broken and the values involved.
pub fn apply(
    state: &mut State,
    tx: &VerifiedTx,
    block: &BlockContext,
) -> Result<Vec<Event>, ProtocolError> {
    let result = exec::apply_calls(state, tx, block);
    match result {
        Ok(events) => {
            assert!(state.pot.is_zero(), "seized value left unassigned: {}", state.pot);
            state.commit();
            Ok(events)
        }
        Err(error) => {
            state.rollback();
            Err(error)
        }
    }
}

/// Recovers the signatures of `signed` (see [`VerifiedTx::new`]) and applies it.
///
/// # Errors
/// [`ProtocolError::TxSignature`] or any error of [`apply`].
pub fn apply_signed(
    state: &mut State,
    signed: SignedTransaction,
    block: &BlockContext,
) -> Result<Vec<Event>, ProtocolError> {
    let verified = VerifiedTx::new(signed, &state.domain()).map_err(ProtocolError::TxSignature)?;
    apply(state, &verified, block)
}

/// Fires every timer due at or before the block's time: fails and refunds the unfinished
/// tasks of deals past their final deadline, and releases the stakes of workers whose
/// unbonding ended. Nobody has to send a transaction for either. The last block of each
/// epoch also fixes the next epoch's validators ([`State::epoch_validators`]).
pub fn end_block(state: &mut State, block: &BlockContext) -> Vec<Event> {
    let mut events = exec::fire_timers(state, block);
    assert!(state.pot.is_zero(), "seized value left unassigned at end of block");
    let length = state.globals().epoch_length;
    if (block.height + 1).is_multiple_of(length) {
        // The last block of an epoch fixes the next epoch's validators.
        let epoch = (block.height + 1) / length;
        let members = state.current_validators();
        events.push(Event::EpochValidatorsFixed {
            epoch,
            validators: members.iter().map(|m| m.address).collect(),
        });
        state.put_epoch(epoch, EpochValidators { members });
    }
    state.commit();
    events
}
