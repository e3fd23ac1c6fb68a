//! The protocol state: ordered tables, a journal that makes every `apply` all-or-nothing, and a
//! deterministic digest.

use std::collections::BTreeMap;

use alloy_primitives::{Address, B256, Keccak256, U256};
use alloy_rlp::Encodable;
use xiebao_types::{Nrlc, Timestamp};

use crate::model::{
    Account, App, Category, Dataset, Deal, Globals, Group, Membership, Task, Timer, Validator,
    Workerpool,
};

/// A key's canonical bytes, for the state digest.
pub(crate) trait KeyBytes {
    fn key_bytes(&self, out: &mut Vec<u8>);
}
impl KeyBytes for Address {
    fn key_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_slice());
    }
}
impl KeyBytes for B256 {
    fn key_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_slice());
    }
}
impl KeyBytes for u64 {
    fn key_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
}
impl<A: KeyBytes, B: KeyBytes> KeyBytes for (A, B) {
    fn key_bytes(&self, out: &mut Vec<u8>) {
        self.0.key_bytes(out);
        self.1.key_bytes(out);
    }
}
impl KeyBytes for Timer {
    fn key_bytes(&self, out: &mut Vec<u8>) {
        match self {
            Self::DealExpiry(deal) => {
                out.push(1);
                deal.key_bytes(out);
            }
            Self::Unbond(worker) => {
                out.push(2);
                worker.key_bytes(out);
            }
        }
    }
}

/// A table's value bytes, for the state digest.
pub(crate) trait ValueBytes {
    fn value_bytes(&self, out: &mut Vec<u8>);
}
macro_rules! rlp_values {
    ($($ty:ty),*) => {$(
        impl ValueBytes for $ty {
            fn value_bytes(&self, out: &mut Vec<u8>) {
                self.encode(out);
            }
        }
    )*};
}
rlp_values!(
    Account, App, Dataset, Workerpool, Group, Category, Address, U256, Deal, Task, u64, Membership,
    Validator, Globals
);
impl ValueBytes for () {
    fn value_bytes(&self, _out: &mut Vec<u8>) {}
}

macro_rules! tables {
    ($( $(#[$doc:meta])* $field:ident : $k:ty => $v:ty, $undo:ident, $put:ident, $remove:ident; )*) => {
        /// The whole protocol state. Every table is ordered (no hash-map iteration anywhere).
        ///
        /// Reads are free; writes go through methods that journal the previous value, so a
        /// failed transaction is rolled back exactly.
        #[derive(Clone, Debug, Default)]
        pub struct State {
            $( $(#[$doc])* pub(crate) $field: BTreeMap<$k, $v>, )*
            pub(crate) globals: Globals,
            journal: Vec<Undo>,
            /// Value seized and not yet rewarded inside the current call (must return to zero).
            pub(crate) pot: Nrlc,
        }

        #[derive(Clone, Debug)]
        enum Undo {
            $( $undo($k, Option<$v>), )*
            Globals(Globals),
        }

        impl State {
            $(
                $(#[$doc])*
                pub fn $field(&self) -> &BTreeMap<$k, $v> {
                    &self.$field
                }

                pub(crate) fn $put(&mut self, key: $k, value: $v) {
                    let old = self.$field.insert(key.clone(), value);
                    self.journal.push(Undo::$undo(key, old));
                }

                #[allow(dead_code, reason = "not every table has removals yet")]
                pub(crate) fn $remove(&mut self, key: &$k) {
                    if let Some(old) = self.$field.remove(key) {
                        self.journal.push(Undo::$undo(key.clone(), Some(old)));
                    }
                }
            )*

            /// Rolls every journaled write back, newest first.
            pub(crate) fn rollback(&mut self) {
                while let Some(undo) = self.journal.pop() {
                    match undo {
                        $(
                            Undo::$undo(key, Some(old)) => { self.$field.insert(key, old); }
                            Undo::$undo(key, None) => { self.$field.remove(&key); }
                        )*
                        Undo::Globals(old) => self.globals = old,
                    }
                }
                self.pot = Nrlc::ZERO;
            }

            /// Forgets the journal: the writes so far are final.
            pub(crate) fn commit(&mut self) {
                self.journal.clear();
            }

            /// A deterministic digest of the whole state: keccak256 over every table in a fixed
            /// order, every entry in key order, keys and values in their canonical encoding.
            ///
            /// O(size of the state); the node maintains an incremental commitment instead.
            pub fn digest(&self) -> B256 {
                let mut hasher = Keccak256::new();
                let mut buf = Vec::with_capacity(256);
                buf.clear();
                self.globals.value_bytes(&mut buf);
                hasher.update(&buf);
                $(
                    hasher.update(stringify!($field).as_bytes());
                    hasher.update((self.$field.len() as u64).to_be_bytes());
                    for (key, value) in &self.$field {
                        buf.clear();
                        key.key_bytes(&mut buf);
                        value.value_bytes(&mut buf);
                        hasher.update(&buf);
                    }
                )*
                hasher.finalize()
            }
        }
    };
}

tables! {
    /// Balances and nonces.
    accounts: Address => Account, Account, put_account, remove_account;
    /// Registered apps.
    apps: Address => App, App, put_app, remove_app;
    /// Registered datasets.
    datasets: Address => Dataset, Dataset, put_dataset, remove_dataset;
    /// Registered workerpools.
    workerpools: Address => Workerpool, Workerpool, put_workerpool, remove_workerpool;
    /// Restriction groups.
    groups: Address => Group, Group, put_group, remove_group;
    /// Group memberships: (group, member).
    group_members: (Address, Address) => (), GroupMember, put_group_member, remove_group_member;
    /// Categories by id.
    categories: u64 => Category, Category, put_category, remove_category;
    /// Presigned orders: order hash → signer.
    presigned: B256 => Address, Presigned, put_presigned, remove_presigned;
    /// Consumed volume per order hash.
    consumed: B256 => U256, Consumed, put_consumed, remove_consumed;
    /// Deals by id.
    deals: B256 => Deal, Deal, put_deal, remove_deal;
    /// Tasks by id.
    tasks: B256 => Task, Task, put_task, remove_task;
    /// Unfinished initialized tasks per deal: (deal, task).
    open_tasks: (B256, B256) => (), OpenTask, put_open_task, remove_open_task;
    /// Worker scores.
    scores: Address => u64, Score, put_score, remove_score;
    /// Pool memberships by worker.
    memberships: Address => Membership, Membership, put_membership, remove_membership;
    /// Timers by (time, what).
    timers: (Timestamp, Timer) => (), Timer, put_timer, remove_timer;
    /// Validators by Ethereum address.
    validators: Address => Validator, Validator, put_validator, remove_validator;
}

impl State {
    /// Chain-wide settings and totals.
    pub fn globals(&self) -> &Globals {
        &self.globals
    }

    pub(crate) fn set_globals(&mut self, globals: Globals) {
        let old = std::mem::replace(&mut self.globals, globals);
        self.journal.push(Undo::Globals(old));
    }

    /// The account of `address` (an empty one if it never received anything).
    pub fn account(&self, address: &Address) -> Account {
        self.accounts.get(address).cloned().unwrap_or_default()
    }

    /// The score of `worker` (0 if it never contributed).
    pub fn score(&self, worker: &Address) -> u64 {
        self.scores.get(worker).copied().unwrap_or(0)
    }

    /// Remaining volume of an order: `volume − consumed`.
    pub fn consumed_of(&self, order_hash: &B256) -> U256 {
        self.consumed.get(order_hash).copied().unwrap_or(U256::ZERO)
    }

    /// The sum of every free and frozen balance.
    pub fn total_balances(&self) -> Nrlc {
        self.accounts.values().fold(Nrlc::ZERO, |sum, account| {
            sum.checked_add(account.free)
                .and_then(|s| s.checked_add(account.frozen))
                .expect("balances exceed the supply type")
        })
    }

    /// Checks the invariants that must hold between transactions; returns the first broken one.
    ///
    /// - money is conserved: Σ free + Σ frozen = minted − burned;
    /// - nothing is left seized-but-unassigned;
    /// - every membership's stakes are covered by its account's frozen balance.
    pub fn check_invariants(&self) -> Result<(), String> {
        let supply =
            self.globals.minted.checked_sub(self.globals.burned).map_err(|e| e.to_string())?;
        let total = self.total_balances();
        if total != supply {
            return Err(format!("money not conserved: balances {total} ≠ supply {supply}"));
        }
        if !self.pot.is_zero() {
            return Err(format!("{} nRLC seized and never rewarded", self.pot));
        }
        for (worker, membership) in &self.memberships {
            let staked = membership
                .bonded
                .checked_add(membership.in_contributions)
                .map_err(|e| e.to_string())?;
            let frozen = self.account(worker).frozen;
            if staked > frozen {
                return Err(format!(
                    "{worker}: pool stake {staked} exceeds frozen balance {frozen}"
                ));
            }
        }
        Ok(())
    }
}
