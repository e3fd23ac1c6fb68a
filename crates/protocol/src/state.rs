//! The protocol state: ordered tables, a journal that makes every `apply` all-or-nothing, and a
//! deterministic digest.

use std::collections::BTreeMap;

use alloy_primitives::{Address, B256, Keccak256, U256};
use alloy_rlp::Encodable;
use xiebao_types::{Nrlc, Timestamp};

use crate::model::{
    Account, App, Bridge, Category, Dataset, Deal, DepositClaim, EpochValidators, Globals, Group,
    Membership, Task, TaskStatus, Timer, Validator, Withdrawal, Workerpool,
};

/// Which finished tasks a state keeps in memory.
///
/// A finished task (completed or failed) never changes again and every call on it fails on
/// its status, so a node that has persisted it may drop the record and keep only the status:
/// the entry stays in the state (and its root), in the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FinishedTasks {
    /// Every task's record stays in memory (tests, tools, a state without a store).
    #[default]
    Keep,
    /// A finished task's record leaves memory once its entry is taken by
    /// [`State::take_changes`] (so persisted by the caller); only its status stays.
    Evict,
}

/// A key's canonical bytes (order-preserving for fixed-size keys), for the digest and stores.
pub(crate) trait KeyBytes: Sized {
    /// Encoded length when fixed.
    const LEN: Option<usize>;
    fn key_bytes(&self, out: &mut Vec<u8>);
    fn from_key_bytes(bytes: &[u8]) -> Option<Self>;
}
impl KeyBytes for Address {
    const LEN: Option<usize> = Some(20);
    fn key_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_slice());
    }
    fn from_key_bytes(bytes: &[u8]) -> Option<Self> {
        (bytes.len() == 20).then(|| Address::from_slice(bytes))
    }
}
impl KeyBytes for B256 {
    const LEN: Option<usize> = Some(32);
    fn key_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_slice());
    }
    fn from_key_bytes(bytes: &[u8]) -> Option<Self> {
        (bytes.len() == 32).then(|| B256::from_slice(bytes))
    }
}
impl KeyBytes for u64 {
    const LEN: Option<usize> = Some(8);
    fn key_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn from_key_bytes(bytes: &[u8]) -> Option<Self> {
        Some(u64::from_be_bytes(bytes.try_into().ok()?))
    }
}
impl<A: KeyBytes, B: KeyBytes> KeyBytes for (A, B) {
    const LEN: Option<usize> = match (A::LEN, B::LEN) {
        (Some(a), Some(b)) => Some(a + b),
        _ => None,
    };
    fn key_bytes(&self, out: &mut Vec<u8>) {
        self.0.key_bytes(out);
        self.1.key_bytes(out);
    }
    fn from_key_bytes(bytes: &[u8]) -> Option<Self> {
        let split = A::LEN.expect("the first element of a compound key has a fixed length");
        let (a, b) = bytes.split_at_checked(split)?;
        Some((A::from_key_bytes(a)?, B::from_key_bytes(b)?))
    }
}
impl KeyBytes for Timer {
    const LEN: Option<usize> = None;
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
    fn from_key_bytes(bytes: &[u8]) -> Option<Self> {
        match bytes.split_first()? {
            (1, rest) => Some(Self::DealExpiry(B256::from_key_bytes(rest)?)),
            (2, rest) => Some(Self::Unbond(Address::from_key_bytes(rest)?)),
            _ => None,
        }
    }
}

/// A table's value bytes (RLP), for the digest and stores.
pub(crate) trait ValueBytes: Sized {
    fn value_bytes(&self, out: &mut Vec<u8>);
    fn from_value_bytes(bytes: &[u8]) -> Option<Self>;
}
macro_rules! rlp_values {
    ($($ty:ty),*) => {$(
        impl ValueBytes for $ty {
            fn value_bytes(&self, out: &mut Vec<u8>) {
                self.encode(out);
            }
            fn from_value_bytes(mut bytes: &[u8]) -> Option<Self> {
                let value = <$ty as alloy_rlp::Decodable>::decode(&mut bytes).ok()?;
                bytes.is_empty().then_some(value)
            }
        }
    )*};
}
rlp_values!(
    Account,
    App,
    Dataset,
    Workerpool,
    Group,
    Category,
    Address,
    U256,
    Deal,
    Task,
    u64,
    Membership,
    Validator,
    EpochValidators,
    Globals,
    Bridge,
    DepositClaim,
    Withdrawal
);
impl ValueBytes for () {
    fn value_bytes(&self, _out: &mut Vec<u8>) {}
    fn from_value_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.is_empty().then_some(())
    }
}

/// Table id of the chain-wide settings in store keys.
const GLOBALS_TABLE: u8 = 0xff;
/// Store key of the lattice hash of every entry (the state root's incremental part).
const LATTICE_TABLE: u8 = 0xfe;

/// Room reserved for an entry's encoded value (a settled trust-1 task takes ≈ 400 bytes), so
/// encoding rarely reallocates.
const VALUE_CAPACITY: usize = 512;

/// Lanes of the lattice hash.
const LANES: usize = 1_024;

/// The lattice hash of a multiset of entries (LtHash, Bellare–Micciancio's additive
/// construction with Lewi et al.'s parameters: 1,024 16-bit lanes filled from a blake3 XOF,
/// added lane-wise modulo 2¹⁶): adding or removing one entry costs O(1), whatever the size of
/// the state. Each entry occurs at most once (keys are unique), so the multiset weakness of
/// the construction (an element added 2¹⁶ times) does not arise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Lattice(Box<[u16; LANES]>);

impl Default for Lattice {
    fn default() -> Self {
        Self(Box::new([0; LANES]))
    }
}

impl Lattice {
    /// The lanes of one entry, `table id ‖ key` (length-prefixed) and its value, as the
    /// XOF's little-endian bytes (read in place: no intermediate lane array).
    fn element(key: &[u8], value: &[u8]) -> [u8; LANES * 2] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"_XIEBAO_STATE_ENTRY_V1");
        hasher.update(&(key.len() as u32).to_be_bytes());
        hasher.update(key);
        hasher.update(value);
        let mut bytes = [0u8; LANES * 2];
        hasher.finalize_xof().fill(&mut bytes);
        bytes
    }

    fn add(&mut self, key: &[u8], value: &[u8]) {
        let element = Self::element(key, value);
        for (lane, x) in self.0.iter_mut().zip(element.chunks_exact(2)) {
            *lane = lane.wrapping_add(u16::from_le_bytes([x[0], x[1]]));
        }
    }

    fn remove(&mut self, key: &[u8], value: &[u8]) {
        let element = Self::element(key, value);
        for (lane, x) in self.0.iter_mut().zip(element.chunks_exact(2)) {
            *lane = lane.wrapping_sub(u16::from_le_bytes([x[0], x[1]]));
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|lane| lane.to_le_bytes()).collect()
    }

    fn checksum(&self) -> [u8; 32] {
        *blake3::hash(&self.to_bytes()).as_bytes()
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != LANES * 2 {
            return None;
        }
        let mut lattice = Self::default();
        for (lane, pair) in lattice.0.iter_mut().zip(bytes.chunks_exact(2)) {
            *lane = u16::from_le_bytes([pair[0], pair[1]]);
        }
        Some(lattice)
    }
}

/// Entries written since the lattice was last brought up to date, with their value bytes
/// then (`None`: absent).
type Unfolded = BTreeMap<DirtyKey, Option<Vec<u8>>>;

/// The fold's state and the pending change set, saved when a block opens.
#[derive(Clone, Debug)]
struct Tracking {
    lattice: Lattice,
    unfolded: Unfolded,
    folded_changes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    globals_written: bool,
}

/// One entry written by committed transactions: `key` is `table id ‖ key bytes`, `value` the
/// entry's canonical (RLP) encoding, `None` when the entry was deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Store key.
    pub key: Vec<u8>,
    /// Store value, or `None` for a deletion.
    pub value: Option<Vec<u8>>,
}

macro_rules! tables {
    ($( $(#[$doc:meta])* $field:ident = $id:literal : $k:ty => $v:ty, $undo:ident, $put:ident, $remove:ident; )*) => {
        /// The whole protocol state. Every table is ordered (no hash-map iteration anywhere).
        ///
        /// Reads are free; writes go through methods that journal the previous value, so a
        /// failed transaction is rolled back exactly.
        #[derive(Clone, Debug, Default)]
        pub struct State {
            $( $(#[$doc])* pub(crate) $field: BTreeMap<$k, $v>, )*
            /// Unfinished initialized tasks per deal, `(deal, task)`: an index derived from
            /// `tasks` (kept by [`State::put_task`], rebuilt by [`State::load`]), so neither
            /// in the state root nor in the store.
            open_tasks: std::collections::BTreeSet<(B256, B256)>,
            /// The statuses of finished tasks whose records left memory (their entries are in
            /// the caller's store), under [`FinishedTasks::Evict`].
            evicted: BTreeMap<B256, TaskStatus>,
            /// Whether finished tasks leave memory.
            finished_tasks: FinishedTasks,
            pub(crate) globals: Globals,
            journal: Vec<Undo>,
            /// Undo entries of the transactions committed inside the current block, when one is open.
            block_journal: Option<Vec<Undo>>,
            /// The chain-wide settings were written since the last `take_changes`.
            globals_written: bool,
            /// Value seized and not yet rewarded inside the current call (must return to zero).
            pub(crate) pot: Nrlc,
            /// The lattice hash of every entry as of the last fold.
            lattice: Lattice,
            /// Entries written by committed transactions since the last fold.
            unfolded: Unfolded,
            /// Entries folded since the last `take_changes`, by store key, with their value
            /// bytes then (`None`: deleted): the next change set, encoded once, by the fold.
            folded_changes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
            /// What the fold and change tracking were when the open block began.
            block_tracking: Option<Tracking>,
        }

        /// Table ids in store keys (never reuse or renumber one).
        #[derive(Clone, Copy)]
        #[repr(u8)]
        enum TableId {
            $( $undo = $id, )*
        }

        /// A typed key of any table, for change tracking.
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
        enum DirtyKey {
            $( $undo($k), )*
            Globals,
        }

        #[derive(Clone, Debug)]
        enum Undo {
            $( $undo($k, Option<$v>), )*
            Globals(Globals),
            /// The derived open-task index: the entry and whether it was present.
            OpenTask((B256, B256), bool),
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

            /// Opens a block: until [`State::commit_block`] or [`State::rollback_block`], the
            /// transactions applied can all be undone together (to execute a proposal without
            /// keeping it, or to reject a block whose execution fails).
            ///
            /// # Panics
            /// If a block is already open.
            pub fn begin_block(&mut self) {
                assert!(self.block_journal.is_none(), "a block is already open");
                self.block_journal = Some(Vec::new());
                self.block_tracking = Some(Tracking {
                    lattice: self.lattice.clone(),
                    unfolded: self.unfolded.clone(),
                    folded_changes: self.folded_changes.clone(),
                    globals_written: self.globals_written,
                });
            }

            /// Keeps everything applied since [`State::begin_block`].
            ///
            /// # Panics
            /// If no block is open.
            pub fn commit_block(&mut self) {
                self.block_journal.take().expect("no block is open");
                self.block_tracking = None;
            }

            /// Undoes everything applied since [`State::begin_block`].
            ///
            /// # Panics
            /// If no block is open.
            pub fn rollback_block(&mut self) {
                let block_journal = self.block_journal.take().expect("no block is open");
                self.rollback();
                self.journal = block_journal;
                self.rollback();
                let tracking = self.block_tracking.take().expect("taken at begin_block");
                self.lattice = tracking.lattice;
                self.unfolded = tracking.unfolded;
                self.folded_changes = tracking.folded_changes;
                self.globals_written = tracking.globals_written;
            }

            /// Rolls every journaled write back, newest first.
            pub(crate) fn rollback(&mut self) {
                while let Some(undo) = self.journal.pop() {
                    match undo {
                        $(
                            Undo::$undo(key, Some(old)) => { self.$field.insert(key, old); }
                            Undo::$undo(key, None) => { self.$field.remove(&key); }
                        )*
                        Undo::Globals(old) => self.globals = old,
                        Undo::OpenTask(entry, true) => { self.open_tasks.insert(entry); }
                        Undo::OpenTask(entry, false) => { self.open_tasks.remove(&entry); }
                    }
                }
                self.pot = Nrlc::ZERO;
            }

            /// Forgets the journal: the writes so far are final (and recorded as changes).
            pub(crate) fn commit(&mut self) {
                // The value of each entry before its first write since the last fold (the
                // journal is oldest first, so the first undo of a key holds it); only that
                // first write's old value is encoded.
                for undo in &self.journal {
                    match undo {
                        $( Undo::$undo(k, old) => {
                            if let std::collections::btree_map::Entry::Vacant(entry) =
                                self.unfolded.entry(DirtyKey::$undo(k.clone()))
                            {
                                entry.insert(old.as_ref().map(|v| {
                                    let mut bytes = Vec::with_capacity(VALUE_CAPACITY);
                                    v.value_bytes(&mut bytes);
                                    bytes
                                }));
                            }
                        } )*
                        Undo::Globals(_) => self.globals_written = true,
                        Undo::OpenTask(..) => {}
                    }
                }
                match &mut self.block_journal {
                    Some(block_journal) => block_journal.append(&mut self.journal),
                    // clear keeps the journal's capacity for the next transaction.
                    None => self.journal.clear(),
                }
            }

            /// The entries written by the transactions committed since the last call, with their
            /// current values, in key order: what a node persists after each block. Each entry
            /// is encoded once, by the fold that also brings the lattice up to date.
            ///
            /// Under [`FinishedTasks::Evict`] (and outside a block), the finished tasks among
            /// them leave memory: the caller must persist these changes.
            pub fn take_changes(&mut self) -> Vec<Change> {
                self.fold();
                if self.finished_tasks == FinishedTasks::Evict && self.block_journal.is_none() {
                    self.evict_finished();
                }
                let mut changes: Vec<Change> = std::mem::take(&mut self.folded_changes)
                    .into_iter()
                    .map(|(key, value)| Change { key, value })
                    .collect();
                if !changes.is_empty() {
                    changes.push(Change { key: vec![LATTICE_TABLE], value: Some(self.lattice.to_bytes()) });
                }
                if std::mem::take(&mut self.globals_written) {
                    let (key, value) = self.entry_bytes(&DirtyKey::Globals);
                    changes.push(Change { key, value });
                }
                changes
            }

            /// Moves the finished tasks among the folded changes out of memory, keeping their
            /// statuses.
            fn evict_finished(&mut self) {
                let tasks = self.folded_changes.range(
                    vec![TableId::Task as u8]..vec![TableId::Task as u8 + 1],
                );
                for (key, _) in tasks {
                    let Some(id) = B256::from_key_bytes(&key[1..]) else { continue };
                    if let Some(status) = self.tasks.get(&id).map(|task| task.status)
                        && !status.is_open()
                    {
                        self.tasks.remove(&id);
                        self.evicted.insert(id, status);
                    }
                }
            }

            /// The store key and current value bytes (`None`: absent) of an entry.
            fn entry_bytes(&self, dirty: &DirtyKey) -> (Vec<u8>, Option<Vec<u8>>) {
                let mut key = Vec::with_capacity(64);
                let mut value = Vec::with_capacity(VALUE_CAPACITY);
                let present = match dirty {
                    $( DirtyKey::$undo(k) => {
                        key.push(TableId::$undo as u8);
                        k.key_bytes(&mut key);
                        self.$field.get(k).map(|v| v.value_bytes(&mut value)).is_some()
                    } )*
                    DirtyKey::Globals => {
                        key.push(GLOBALS_TABLE);
                        self.globals.value_bytes(&mut value);
                        true
                    }
                };
                (key, present.then_some(value))
            }

            /// `lattice` brought up to date with `unfolded` (each entry's value then out, its
            /// value now in); `record` gets each entry that changed, encoded.
            fn fold_into(
                &self,
                lattice: &mut Lattice,
                unfolded: &Unfolded,
                mut record: impl FnMut(Vec<u8>, Option<Vec<u8>>),
            ) {
                for (dirty, old) in unfolded {
                    let (key, now) = self.entry_bytes(dirty);
                    if old == &now {
                        continue;
                    }
                    if let Some(old) = old {
                        lattice.remove(&key, old);
                    }
                    if let Some(now) = &now {
                        lattice.add(&key, now);
                    }
                    record(key, now);
                }
            }

            /// Brings the lattice up to date with the entries written since the last fold, and
            /// records them for the next change set.
            fn fold(&mut self) {
                if self.unfolded.is_empty() {
                    return;
                }
                let unfolded = std::mem::take(&mut self.unfolded);
                let mut lattice = std::mem::take(&mut self.lattice);
                let mut changes = std::mem::take(&mut self.folded_changes);
                self.fold_into(&mut lattice, &unfolded, |key, value| {
                    changes.insert(key, value);
                });
                self.lattice = lattice;
                self.folded_changes = changes;
            }

            /// The lattice of every entry, computed from scratch (O(size of the state)).
            fn full_lattice(&self) -> Lattice {
                let mut lattice = Lattice::default();
                let mut key = Vec::with_capacity(64);
                let mut value = Vec::with_capacity(256);
                $(
                    for (k, v) in &self.$field {
                        key.clear();
                        value.clear();
                        key.push(TableId::$undo as u8);
                        k.key_bytes(&mut key);
                        v.value_bytes(&mut value);
                        lattice.add(&key, &value);
                    }
                )*
                lattice
            }

            /// Rebuilds a state from every entry a store holds (as written from
            /// [`State::take_changes`]), keeping finished tasks in memory or not.
            ///
            /// # Errors
            /// A message naming the first entry that does not decode, or, when finished tasks
            /// are evicted, a store without its lattice hash (the root would need every entry).
            pub fn load(
                entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
                finished_tasks: FinishedTasks,
            ) -> Result<Self, String> {
                let mut state = Self { finished_tasks, ..Self::default() };
                let mut lattice = None;
                for (key, value) in entries {
                    let bad = || format!("store entry {} does not decode", alloy_primitives::hex::encode(&key));
                    let (table, rest) = key.split_first().ok_or_else(bad)?;
                    if *table == GLOBALS_TABLE {
                        state.globals = Globals::from_value_bytes(&value).ok_or_else(bad)?;
                        continue;
                    }
                    if *table == LATTICE_TABLE {
                        lattice = Some(Lattice::from_bytes(&value).ok_or_else(bad)?);
                        continue;
                    }
                    if finished_tasks == FinishedTasks::Evict && *table == TableId::Task as u8 {
                        let id = B256::from_key_bytes(rest).ok_or_else(bad)?;
                        let task = Task::from_value_bytes(&value).ok_or_else(bad)?;
                        if task.status.is_open() {
                            state.tasks.insert(id, task);
                        } else {
                            state.evicted.insert(id, task.status);
                        }
                        continue;
                    }
                    let mut known = false;
                    $(
                        if *table == TableId::$undo as u8 {
                            let k = <$k as KeyBytes>::from_key_bytes(rest).ok_or_else(bad)?;
                            let v = <$v as ValueBytes>::from_value_bytes(&value).ok_or_else(bad)?;
                            state.$field.insert(k, v);
                            known = true;
                        }
                    )*
                    if !known {
                        return Err(format!(
                            "store entry {} is in table {table}, which this version does not have: the store was written by another version of xiebao (start a new chain or data directory)",
                            alloy_primitives::hex::encode(&key)
                        ));
                    }
                }
                state.lattice = match lattice {
                    Some(lattice) => lattice,
                    None if state.evicted.is_empty() => state.full_lattice(),
                    None => return Err("the store holds finished tasks but no lattice hash".into()),
                };
                state.open_tasks = state
                    .tasks
                    .iter()
                    .filter(|(_, task)| task.status.is_open())
                    .map(|(id, task)| (task.deal_id, *id))
                    .collect();
                Ok(state)
            }

            /// The state root: keccak256 over the chain-wide settings and the lattice hash of
            /// every table entry (`table id ‖ key → value`, canonical encodings).
            ///
            /// O(entries written since the last [`State::take_changes`]), whatever the state's
            /// size: the lattice is updated entry by entry.
            pub fn digest(&self) -> B256 {
                let mut lattice = self.lattice.clone();
                self.fold_into(&mut lattice, &self.unfolded, |_, _| {});
                self.root(&lattice)
            }

            /// [`State::digest`], folding the entries written so far into the lattice (a node
            /// calls it once per block; [`State::rollback_block`] undoes the fold too).
            pub fn fold_digest(&mut self) -> B256 {
                self.fold();
                self.root(&self.lattice)
            }

            /// The same root recomputed from every entry (O(size of the state)): what
            /// [`State::digest`] must always equal.
            ///
            /// # Panics
            /// If finished tasks left memory ([`FinishedTasks::Evict`]): their entries are in
            /// the store only.
            pub fn full_digest(&self) -> B256 {
                assert!(self.evicted.is_empty(), "finished tasks were evicted: the full digest needs the store");
                self.root(&self.full_lattice())
            }

            fn root(&self, lattice: &Lattice) -> B256 {
                let mut hasher = Keccak256::new();
                hasher.update(b"_XIEBAO_STATE_ROOT_V3");
                let mut buf = Vec::with_capacity(256);
                self.globals.value_bytes(&mut buf);
                hasher.update(&buf);
                hasher.update(lattice.checksum());
                hasher.finalize()
            }
        }
    };
}

tables! {
    /// Balances and nonces.
    accounts = 0: Address => Account, Account, put_account, remove_account;
    /// Registered apps.
    apps = 1: Address => App, App, put_app, remove_app;
    /// Registered datasets.
    datasets = 2: Address => Dataset, Dataset, put_dataset, remove_dataset;
    /// Registered workerpools.
    workerpools = 3: Address => Workerpool, Workerpool, put_workerpool, remove_workerpool;
    /// Restriction groups.
    groups = 4: Address => Group, Group, put_group, remove_group;
    /// Group memberships: (group, member).
    group_members = 5: (Address, Address) => (), GroupMember, put_group_member, remove_group_member;
    /// Categories by id.
    categories = 6: u64 => Category, Category, put_category, remove_category;
    /// Presigned orders: order hash → signer.
    presigned = 7: B256 => Address, Presigned, put_presigned, remove_presigned;
    /// Consumed volume per order hash.
    consumed = 8: B256 => U256, Consumed, put_consumed, remove_consumed;
    /// Deals by id.
    deals = 9: B256 => Deal, Deal, put_deal, remove_deal;
    /// Tasks by id: every task under [`FinishedTasks::Keep`]; under [`FinishedTasks::Evict`]
    /// the open ones and the finished ones not yet persisted (see [`State::task_status`]).
    tasks = 10: B256 => Task, Task, put_task_entry, remove_task;
    // Id 11 was the open-task index, now derived (kept out of the root and the store).
    /// Worker scores.
    scores = 12: Address => u64, Score, put_score, remove_score;
    /// Pool memberships by worker.
    memberships = 13: Address => Membership, Membership, put_membership, remove_membership;
    /// Timers by (time, what).
    timers = 14: (Timestamp, Timer) => (), Timer, put_timer, remove_timer;
    /// Validators by Ethereum address.
    validators = 15: Address => Validator, Validator, put_validator, remove_validator;
    /// The bridge settings and totals (one entry, key 0, once the authority set it).
    bridge = 16: u64 => Bridge, Bridge, put_bridge, remove_bridge;
    /// Attested mainchain deposits: (deposit id, keccak of recipient ‖ amount) → the claim.
    deposit_claims = 17: (u64, B256) => DepositClaim, DepositClaim, put_deposit_claim, remove_deposit_claim;
    /// Withdrawals by id.
    withdrawals = 18: u64 => Withdrawal, Withdrawal, put_withdrawal, remove_withdrawal;
    /// Each consensus epoch's validators (written at the end of the previous epoch).
    epochs = 19: u64 => EpochValidators, Epoch, put_epoch, remove_epoch;
}

impl State {
    /// Chain-wide settings and totals.
    pub fn globals(&self) -> &Globals {
        &self.globals
    }

    /// Writes a task and keeps the open-task index in step with its status.
    pub(crate) fn put_task(&mut self, id: B256, task: Task) {
        let entry = (task.deal_id, id);
        let open = task.status.is_open();
        let changed =
            if open { self.open_tasks.insert(entry) } else { self.open_tasks.remove(&entry) };
        if changed {
            self.journal.push(Undo::OpenTask(entry, !open));
        }
        self.put_task_entry(id, task);
    }

    /// Whether finished tasks leave memory once persisted.
    pub fn set_finished_tasks(&mut self, finished_tasks: FinishedTasks) {
        self.finished_tasks = finished_tasks;
    }

    /// A task's status, whether its record is in memory or was evicted.
    pub fn task_status(&self, id: &B256) -> Option<TaskStatus> {
        self.tasks.get(id).map(|task| task.status).or_else(|| self.evicted.get(id).copied())
    }

    /// Whether a task's record left memory (finished and evicted): read it from the store,
    /// under [`State::task_store_key`].
    pub fn is_evicted(&self, id: &B256) -> bool {
        self.evicted.contains_key(id)
    }

    /// Initialized tasks, in memory or evicted.
    pub fn task_count(&self) -> usize {
        self.tasks.len() + self.evicted.len()
    }

    /// The store key of a task's entry (as in [`Change::key`]).
    pub fn task_store_key(id: &B256) -> Vec<u8> {
        let mut key = vec![TableId::Task as u8];
        id.key_bytes(&mut key);
        key
    }

    /// Decodes a task's stored entry value (as in [`Change::value`]).
    pub fn decode_task(value: &[u8]) -> Option<Task> {
        Task::from_value_bytes(value)
    }

    /// Unfinished initialized tasks per deal, `(deal, task)`, in order.
    pub fn open_tasks(&self) -> &std::collections::BTreeSet<(B256, B256)> {
        &self.open_tasks
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
        self.check_bridge_totals()
    }

    /// Checks the bridge's totals against its records (for [`State::check_invariants`]).
    fn check_bridge_totals(&self) -> Result<(), String> {
        let state = self;
        let Some(bridge) = state.bridge_settings() else {
            return Ok(());
        };
        let minted: u128 =
            state.deposit_claims().values().filter(|c| c.minted).map(|c| c.amount.0).sum();
        let burned: u128 = state.withdrawals().values().map(|w| w.amount.0).sum();
        if bridge.minted.0 != minted || bridge.burned.0 != burned {
            return Err(format!(
                "bridge totals minted {} / burned {} ≠ records {minted} / {burned}",
                bridge.minted, bridge.burned
            ));
        }
        Ok(())
    }
}
