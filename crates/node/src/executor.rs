//! Proposing and executing blocks against the protocol state.

use alloy_primitives::{Address, B256};
use xiebao_protocol::{BlockContext, Event, ProtocolError, State, VerifiedTx, apply, end_block};
use xiebao_types::order::Domain;
use xiebao_types::{SignedTransaction, Timestamp};

use crate::block::{Block, Header, tx_root};

/// What one transaction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The transaction id.
    pub tx_hash: B256,
    /// Its events.
    pub events: Vec<Event>,
}

/// A block is invalid; the state is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// Wrong chain.
    #[error("block is for chain {got}, this chain is {expected}")]
    WrongChain {
        /// This chain.
        expected: u64,
        /// The block's.
        got: u64,
    },
    /// Not the child of the given parent.
    #[error("block height {got} does not follow parent height {parent}")]
    BadHeight {
        /// The parent's height.
        parent: u64,
        /// The block's.
        got: u64,
    },
    /// Wrong parent hash.
    #[error("block's parent is {got}, expected {expected}")]
    BadParent {
        /// The parent's hash.
        expected: B256,
        /// The block's parent field.
        got: B256,
    },
    /// Time went backwards.
    #[error("block time {got} is before its parent's time {parent}")]
    TimeWentBackwards {
        /// The parent's time.
        parent: Timestamp,
        /// The block's.
        got: Timestamp,
    },
    /// The transaction list does not match `tx_root`, or a signature count differs.
    #[error("block's tx root {got} does not commit to its transactions ({expected})")]
    BadTxRoot {
        /// Computed.
        expected: B256,
        /// In the header.
        got: B256,
    },
    /// A transaction's signature is unusable.
    #[error("transaction #{index} has an unusable signature")]
    BadSignature {
        /// Its position.
        index: usize,
    },
    /// A transaction failed: blocks carry only transactions that apply.
    #[error("transaction #{index} ({tx}) fails: {error}")]
    TxFailed {
        /// Its position.
        index: usize,
        /// Its id.
        tx: B256,
        /// Why.
        error: Box<ProtocolError>,
    },
    /// Executing gives another state.
    #[error("block's state root {got} differs from the executed state {expected}")]
    BadStateRoot {
        /// Computed.
        expected: B256,
        /// In the header.
        got: B256,
    },
}

/// A proposed block, with what was left out and why.
#[derive(Clone, Debug)]
pub struct Proposal {
    /// The block.
    pub block: Block,
    /// Candidates that failed, with their errors (to be reported to their submitters).
    pub rejected: Vec<(B256, ProtocolError)>,
}

/// Builds the block that follows `parent` from `candidates` (in order), keeping only those
/// that apply. The state is left unchanged: the block is executed again when it is final.
pub fn propose_block(
    state: &mut State,
    parent: &Header,
    timestamp: Timestamp,
    proposer: Address,
    candidates: Vec<VerifiedTx>,
) -> Proposal {
    state.begin_block();
    let proposal = build_block(state, parent, timestamp, proposer, candidates);
    state.rollback_block();
    proposal
}

/// [`propose_block`] inside a block the caller opened with [`State::begin_block`]: the
/// block's transactions and timers stay applied until the caller commits or rolls back
/// (so several speculative blocks can be stacked, as a node does over blocks that are
/// notarized but not yet final).
pub fn build_block(
    state: &mut State,
    parent: &Header,
    timestamp: Timestamp,
    proposer: Address,
    candidates: Vec<VerifiedTx>,
) -> Proposal {
    let timestamp = timestamp.max(parent.timestamp);
    let context = BlockContext { height: parent.height + 1, timestamp };
    let mut included = Vec::new();
    let mut rejected = Vec::new();
    for tx in candidates {
        match apply(state, &tx, &context) {
            Ok(_) => included.push(tx),
            Err(error) => rejected.push((tx.hash, error)),
        }
    }
    end_block(state, &context);
    let state_root = state.fold_digest();
    let header = Header {
        chain_id: parent.chain_id,
        height: context.height,
        parent: parent.hash(),
        timestamp,
        proposer,
        tx_root: tx_root(included.iter().map(|tx| tx.hash)),
        state_root,
    };
    let txs = included.into_iter().map(|tx| tx.signed()).collect();
    Proposal { block: Block { header, txs }, rejected }
}

/// Recovers every signer of `txs`, spread over the machine's cores (signature recovery is the
/// costliest step of executing a block and needs no state).
///
/// # Errors
/// [`BlockError::BadSignature`] for the first transaction whose signature is unusable.
pub fn verify_all(
    txs: &[SignedTransaction],
    domain: &Domain,
) -> Result<Vec<VerifiedTx>, BlockError> {
    verify_all_known(txs, domain, &KnownTxs::new())
}

/// Transactions whose signatures were already recovered (a node's mempool), by id: a block
/// carrying them skips their recovery.
pub type KnownTxs = std::collections::BTreeMap<B256, VerifiedTx>;

/// [`verify_all`], taking the transactions found in `known` as they are (an id covers the
/// signature, so the same id means the same signed bytes).
///
/// # Errors
/// [`BlockError::BadSignature`] for the first transaction whose signature is unusable.
pub fn verify_all_known(
    txs: &[SignedTransaction],
    domain: &Domain,
    known: &KnownTxs,
) -> Result<Vec<VerifiedTx>, BlockError> {
    const PARALLEL_MIN_TXS: usize = 32;
    let verify = |(index, tx): (usize, &SignedTransaction)| {
        if !known.is_empty()
            && let Some(verified) = known.get(&tx.hash())
        {
            return Ok(verified.clone());
        }
        VerifiedTx::new(tx.clone(), domain).map_err(|_| BlockError::BadSignature { index })
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    if txs.len() < PARALLEL_MIN_TXS || threads == 1 {
        return txs.iter().enumerate().map(verify).collect();
    }
    let chunk = txs.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = txs
            .chunks(chunk)
            .enumerate()
            .map(|(n, part)| {
                scope.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(i, tx)| verify((n * chunk + i, tx)))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(txs.len());
        for handle in handles {
            out.extend(handle.join().expect("signature recovery does not panic")?);
        }
        Ok(out)
    })
}

/// Checks and executes `block` on top of `parent`: on success the state is the block's
/// post-state and the receipts are returned; on error the state is unchanged.
///
/// # Errors
/// [`BlockError`] naming the first rule the block breaks.
pub fn execute_block(
    state: &mut State,
    parent: &Header,
    block: &Block,
) -> Result<Vec<Receipt>, BlockError> {
    execute_block_known(state, parent, block, &KnownTxs::new())
}

/// [`execute_block`] reusing the signatures recovered in `known`.
///
/// # Errors
/// [`BlockError`] naming the first rule the block breaks.
pub fn execute_block_known(
    state: &mut State,
    parent: &Header,
    block: &Block,
    known: &KnownTxs,
) -> Result<Vec<Receipt>, BlockError> {
    state.begin_block();
    match apply_block_known(state, parent, block, known) {
        Ok(receipts) => {
            state.commit_block();
            Ok(receipts)
        }
        Err(error) => {
            state.rollback_block();
            Err(error)
        }
    }
}

/// [`execute_block`] inside a block the caller opened with [`State::begin_block`]; on error
/// the caller must roll back (the state may hold part of the block).
///
/// # Errors
/// [`BlockError`] naming the first rule the block breaks.
pub fn apply_block(
    state: &mut State,
    parent: &Header,
    block: &Block,
) -> Result<Vec<Receipt>, BlockError> {
    apply_block_known(state, parent, block, &KnownTxs::new())
}

/// [`apply_block`] reusing the signatures recovered in `known`.
///
/// # Errors
/// [`BlockError`] naming the first rule the block breaks.
pub fn apply_block_known(
    state: &mut State,
    parent: &Header,
    block: &Block,
    known: &KnownTxs,
) -> Result<Vec<Receipt>, BlockError> {
    let header = &block.header;
    let chain_id = state.globals().chain_id;
    if header.chain_id != chain_id {
        return Err(BlockError::WrongChain { expected: chain_id, got: header.chain_id });
    }
    if header.height != parent.height + 1 {
        return Err(BlockError::BadHeight { parent: parent.height, got: header.height });
    }
    if header.parent != parent.hash() {
        return Err(BlockError::BadParent { expected: parent.hash(), got: header.parent });
    }
    if header.timestamp < parent.timestamp {
        return Err(BlockError::TimeWentBackwards {
            parent: parent.timestamp,
            got: header.timestamp,
        });
    }
    let expected_root = tx_root(block.txs.iter().map(|tx| tx.hash()));
    if expected_root != header.tx_root {
        return Err(BlockError::BadTxRoot { expected: expected_root, got: header.tx_root });
    }
    let verified = verify_all_known(&block.txs, &state.domain(), known)?;
    let context = BlockContext { height: header.height, timestamp: header.timestamp };
    let mut receipts = Vec::with_capacity(verified.len());
    for (index, tx) in verified.iter().enumerate() {
        match apply(state, tx, &context) {
            Ok(events) => receipts.push(Receipt { tx_hash: tx.hash, events }),
            Err(error) => {
                return Err(BlockError::TxFailed { index, tx: tx.hash, error: Box::new(error) });
            }
        }
    }
    let end_events = end_block(state, &context);
    let state_root = state.fold_digest();
    if state_root != header.state_root {
        return Err(BlockError::BadStateRoot { expected: state_root, got: header.state_root });
    }
    if !end_events.is_empty() {
        receipts.push(Receipt { tx_hash: B256::ZERO, events: end_events });
    }
    Ok(receipts)
}
