//! Persist Xiebao blocks and protocol state crash-safely, and restart from the last committed block.
//!
//! One redb database holds four tables: `state` (the protocol state's entries, written from
//! [`State::take_changes`]), `blocks` (height → block), `receipts` (transaction id → the
//! caller's receipt encoding) and `meta` (the head header). A block, its state changes, its
//! receipts and the new head are written in one transaction, so after `kill -9` at any moment
//! the store holds exactly the last committed block and its state.
//!
//! **Invariant:** the loaded state's digest equals the head header's state root; [`Store::load`]
//! checks it.

use std::path::Path;

use alloy_rlp::{Decodable, Encodable};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use xiebao_node::{Block, Header};
use xiebao_protocol::{Change, FinishedTasks, State, Task};

const STATE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state");
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const RECEIPTS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("receipts");
const HEAD: &str = "head";

/// The store failed or holds something unexpected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error.
    #[error("store {operation}: {detail}")]
    Database {
        /// What was being done.
        operation: &'static str,
        /// The database's message.
        detail: String,
    },
    /// An entry does not decode.
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    /// The state does not match the head's state root.
    #[error("store is inconsistent: state digest {state} ≠ head {height}'s state root {head}")]
    Inconsistent {
        /// Head height.
        height: u64,
        /// Digest of the loaded state.
        state: alloy_primitives::B256,
        /// The head's state root.
        head: alloy_primitives::B256,
    },
    /// A block does not follow the head.
    #[error("block {got} does not follow the head {head}")]
    NotNext {
        /// Head height.
        head: u64,
        /// The block's height.
        got: u64,
    },
    /// Initializing a store that already has a head.
    #[error("store already holds a chain (head at height {head})")]
    AlreadyInitialized {
        /// Head height.
        head: u64,
    },
}

fn db_error(operation: &'static str) -> impl Fn(redb::Error) -> StoreError {
    move |error| StoreError::Database { operation, detail: error.to_string() }
}

/// Wraps any redb error type.
macro_rules! try_db {
    ($expr:expr, $operation:literal) => {
        $expr.map_err(|e| db_error($operation)(e.into()))?
    };
}

/// The store's page cache. The node holds the live state in memory and reads the store
/// through once at start; the cache only serves writes and block and history reads, so
/// redb's default (1 GiB, filled by that first read) would be resident memory for nothing.
const CACHE_BYTES: usize = 32 << 20;

/// The node's durable store.
#[derive(Debug)]
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) the store at `path`.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = try_db!(redb::Builder::new().set_cache_size(CACHE_BYTES).create(path), "open");
        Ok(Self { db })
    }

    /// The head header, if a chain was initialized.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn head(&self) -> Result<Option<Header>, StoreError> {
        let read = try_db!(self.db.begin_read(), "read");
        let meta = match read.open_table(META) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(db_error("open meta")(error.into())),
        };
        let Some(bytes) = try_db!(meta.get(HEAD), "read head") else { return Ok(None) };
        let mut slice = bytes.value();
        let header =
            Header::decode(&mut slice).map_err(|e| StoreError::Corrupt(format!("head: {e}")))?;
        Ok(Some(header))
    }

    /// Writes the genesis state (every entry of `state`'s pending changes) and header.
    ///
    /// # Errors
    /// [`StoreError::AlreadyInitialized`] or a database error.
    pub fn init(&self, state: &mut State, genesis: &Header) -> Result<(), StoreError> {
        if let Some(head) = self.head()? {
            return Err(StoreError::AlreadyInitialized { head: head.height });
        }
        self.write(None, genesis, state.take_changes(), &[])
    }

    /// Writes a block, the state changes it caused and the new head, atomically.
    ///
    /// # Errors
    /// [`StoreError::NotNext`] or a database error.
    pub fn commit(&self, block: &Block, changes: Vec<Change>) -> Result<(), StoreError> {
        self.commit_with_receipts(block, changes, &[])
    }

    /// [`Store::commit`] plus each transaction's receipt (an opaque encoding chosen by the
    /// caller, keyed by transaction id), in the same atomic write.
    ///
    /// # Errors
    /// [`StoreError::NotNext`] or a database error.
    pub fn commit_with_receipts(
        &self,
        block: &Block,
        changes: Vec<Change>,
        receipts: &[(alloy_primitives::B256, Vec<u8>)],
    ) -> Result<(), StoreError> {
        let head = self.head()?.map_or(0, |h| h.height);
        if block.header.height != head + 1 {
            return Err(StoreError::NotNext { head, got: block.header.height });
        }
        self.write(Some(block), &block.header, changes, receipts)
    }

    /// The receipt stored for transaction `hash`, as given to [`Store::commit_with_receipts`].
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn receipt(&self, hash: &alloy_primitives::B256) -> Result<Option<Vec<u8>>, StoreError> {
        let read = try_db!(self.db.begin_read(), "read");
        let table = match read.open_table(RECEIPTS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(db_error("open receipts")(error.into())),
        };
        let value = try_db!(table.get(&hash.0), "read receipt");
        Ok(value.map(|v| v.value().to_vec()))
    }

    fn write(
        &self,
        block: Option<&Block>,
        head: &Header,
        changes: Vec<Change>,
        receipts: &[(alloy_primitives::B256, Vec<u8>)],
    ) -> Result<(), StoreError> {
        let write = try_db!(self.db.begin_write(), "begin write");
        {
            let mut state = try_db!(write.open_table(STATE), "open state");
            for change in &changes {
                match &change.value {
                    Some(value) => {
                        try_db!(
                            state.insert(change.key.as_slice(), value.as_slice()),
                            "write state"
                        );
                    }
                    None => {
                        try_db!(state.remove(change.key.as_slice()), "delete state");
                    }
                }
            }
            let mut blocks = try_db!(write.open_table(BLOCKS), "open blocks");
            if let Some(block) = block {
                let bytes = alloy_rlp::encode(block);
                try_db!(blocks.insert(block.header.height, bytes.as_slice()), "write block");
            }
            let mut table = try_db!(write.open_table(RECEIPTS), "open receipts");
            for (hash, receipt) in receipts {
                try_db!(table.insert(&hash.0, receipt.as_slice()), "write receipt");
            }
            let mut meta = try_db!(write.open_table(META), "open meta");
            let mut bytes = Vec::with_capacity(head.length());
            head.encode(&mut bytes);
            try_db!(meta.insert(HEAD, bytes.as_slice()), "write head");
        }
        try_db!(write.commit(), "commit");
        Ok(())
    }

    /// Loads the state and head header, checking that they agree; `finished_tasks` says
    /// whether finished tasks' records stay in memory (a node evicts them: they are read
    /// back with [`Store::task`]). Entries stream from the table into the state (no copy of
    /// the whole table in memory).
    ///
    /// # Errors
    /// [`StoreError`]; `Ok(None)` for an empty store.
    pub fn load(
        &self,
        finished_tasks: FinishedTasks,
    ) -> Result<Option<(State, Header)>, StoreError> {
        let Some(head) = self.head()? else { return Ok(None) };
        let read = try_db!(self.db.begin_read(), "read");
        let table = try_db!(read.open_table(STATE), "open state");
        let mut failure = None;
        let entries = try_db!(table.iter(), "scan state").map_while(|entry| match entry {
            Ok((key, value)) => Some((key.value().to_vec(), value.value().to_vec())),
            Err(error) => {
                failure = Some(error);
                None
            }
        });
        let state = State::load(entries, finished_tasks).map_err(StoreError::Corrupt);
        if let Some(error) = failure {
            return Err(db_error("scan state")(error.into()));
        }
        let state = state?;
        let digest = state.digest();
        if digest != head.state_root {
            return Err(StoreError::Inconsistent {
                height: head.height,
                state: digest,
                head: head.state_root,
            });
        }
        Ok(Some((state, head)))
    }

    /// Deletes the stored blocks below `height` but those `keep` holds on to (the head is never
    /// deleted); returns how many went.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn prune_blocks(&self, height: u64, keep: impl Fn(u64) -> bool) -> Result<u64, StoreError> {
        let head = self.head()?.map_or(0, |h| h.height);
        let below = height.min(head);
        let write = try_db!(self.db.begin_write(), "begin write");
        let removed = {
            let mut blocks = try_db!(write.open_table(BLOCKS), "open blocks");
            let doomed: Vec<u64> = try_db!(blocks.range(..below), "scan blocks")
                .map(|entry| entry.map(|(key, _)| key.value()))
                .filter(|entry| entry.as_ref().map_or(true, |key| !keep(*key)))
                .collect::<Result<_, _>>()
                .map_err(|e| db_error("scan blocks")(e.into()))?;
            for key in &doomed {
                try_db!(blocks.remove(key), "delete block");
            }
            doomed.len() as u64
        };
        try_db!(write.commit(), "commit");
        Ok(removed)
    }

    /// A task's committed record, read from the state table (where a node that evicts
    /// finished tasks keeps them).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn task(&self, id: &alloy_primitives::B256) -> Result<Option<Task>, StoreError> {
        let read = try_db!(self.db.begin_read(), "read");
        let table = try_db!(read.open_table(STATE), "open state");
        let key = State::task_store_key(id);
        let Some(bytes) = try_db!(table.get(key.as_slice()), "read task") else { return Ok(None) };
        State::decode_task(bytes.value())
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt(format!("task {id} does not decode")))
    }

    /// The block at `height`, if stored.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn block(&self, height: u64) -> Result<Option<Block>, StoreError> {
        let read = try_db!(self.db.begin_read(), "read");
        let table = match read.open_table(BLOCKS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(db_error("open blocks")(error.into())),
        };
        let Some(bytes) = try_db!(table.get(height), "read block") else { return Ok(None) };
        let mut slice = bytes.value();
        Block::decode(&mut slice)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("block {height}: {e}")))
    }
}
