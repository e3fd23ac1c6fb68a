//! The application consensus drives: building and verifying blocks on speculative state, and
//! executing finalized blocks durably.
//!
//! **Invariant:** the committed state only moves when marshal delivers a finalized block, and
//! a delivery is acknowledged only after the block, its state changes and receipts are
//! written in one store transaction. Proposals and votes execute inside a block journal that
//! is always rolled back.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, B256, keccak256};
use commonware_actor::Feedback;
use commonware_consensus::marshal::Update;
use commonware_consensus::marshal::ancestry::Ancestry;
use commonware_consensus::simplex::types::Context;
use commonware_consensus::{Application, Heightable, Reporter};
use commonware_cryptography::{Digested, Digestible, ed25519, sha256::Digest};
use commonware_runtime::Clock;
use commonware_utils::Acknowledgement;
use futures::StreamExt;
use tokio::sync::broadcast;
use xiebao_node::{
    Block, Header, KnownTxs, Mempool, MempoolError, Receipt, SenderState, apply_block_known,
    build_block,
};
use xiebao_protocol::{State, VerifiedTx};
use xiebao_rpc::{BlockView, EventView};
use xiebao_store::Store;
use xiebao_types::order::Domain;
use xiebao_types::{Nrlc, SignedTransaction};

use crate::block::{BLOCK_SIZE_MAX_BYTES, ChainBlock, digest_of};
use crate::config::Timing;

/// The consensus scheme: ed25519 signatures, one per validator.
pub type Scheme = commonware_consensus::simplex::scheme::ed25519::Scheme;

/// How many notarized-but-unfinalized blocks a node re-executes to build or vote on top of
/// them; a node further behind waits to catch up first.
const SPECULATION_DEPTH_MAX: u64 = 64;
/// How far ahead of a validator's clock a block's timestamp may be, seconds.
const CLOCK_DRIFT_MAX_S: u64 = 2;
/// With `keep_blocks` set, old blocks are pruned every this many blocks.
const PRUNE_EVERY_BLOCKS: u64 = 64;
/// Rejected transaction ids remembered for `getTransaction`.
const REJECTED_MAX: usize = 100_000;
/// Submissions whose signatures are recovered at once, each on a blocking thread.
pub const VERIFY_THREADS: usize = 1;
/// Submissions that may wait for verification; more are refused at once.
pub const VERIFY_QUEUE_MAX: usize = 256;

/// The node's own Prometheus metrics (consensus and p2p register theirs beside them).
pub struct NodeMetrics {
    height: commonware_runtime::telemetry::metrics::Gauge,
    finalized_txs: commonware_runtime::telemetry::metrics::Counter,
    finalized_calls: commonware_runtime::telemetry::metrics::Counter,
    mempool_txs: commonware_runtime::telemetry::metrics::Gauge,
    mempool_bytes: commonware_runtime::telemetry::metrics::Gauge,
    admission_recoveries: commonware_runtime::telemetry::metrics::Counter,
}

impl NodeMetrics {
    /// Registers the metrics with `context`'s registry.
    pub fn register(context: &impl commonware_runtime::Metrics) -> Self {
        use commonware_runtime::telemetry::metrics::MetricsExt as _;
        Self {
            height: context.gauge("xiebao_height", "height of the last finalized, executed block"),
            finalized_txs: context
                .counter("xiebao_finalized_txs", "transactions in finalized blocks"),
            finalized_calls: context
                .counter("xiebao_finalized_calls", "calls in finalized transactions"),
            mempool_txs: context.gauge("xiebao_mempool_txs", "transactions waiting in the mempool"),
            mempool_bytes: context
                .gauge("xiebao_mempool_bytes", "encoded bytes of the transactions in the mempool"),
            admission_recoveries: context.counter(
                "xiebao_admission_recoveries",
                "signatures inside calls recovered when admitting transactions",
            ),
        }
    }
}

/// The committed chain: the state after the head block.
pub(crate) struct Committed {
    pub(crate) state: State,
    pub(crate) head: Header,
}

/// Everything a validator's parts share.
pub struct Chain {
    committed: Mutex<Committed>,
    mempool: Mutex<Mempool>,
    rejected: Mutex<(BTreeMap<B256, String>, VecDeque<B256>)>,
    store: Store,
    domain: Domain,
    me: Address,
    node_key: B256,
    timing: Timing,
    finalized_tip: AtomicU64,
    heads: broadcast::Sender<BlockView>,
    events: broadcast::Sender<EventView>,
    gossip: Mutex<Option<tokio::sync::mpsc::Sender<Vec<u8>>>>,
    /// Admission's signature recoveries running at once.
    verify_permits: Arc<tokio::sync::Semaphore>,
    /// Submissions waiting for a permit.
    verify_queued: AtomicUsize,
    metrics: std::sync::OnceLock<NodeMetrics>,
    /// Asks consensus storage (marshal's archives) to drop blocks below a height.
    pruner: std::sync::OnceLock<Box<dyn Fn(u64) + Send + Sync>>,
    /// Told the epoch that starts after each finalized epoch boundary.
    epoch_hook: std::sync::OnceLock<Box<dyn Fn(u64) + Send + Sync>>,
    /// Told the height of each finalized block that changed the validators.
    validators_hook: std::sync::OnceLock<Box<dyn Fn(u64) + Send + Sync>>,
    #[cfg(feature = "faults")]
    faults: Mutex<Faults>,
}

/// Misbehaviour a test can switch on (feature `faults`, never in a release build).
#[cfg(feature = "faults")]
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Propose blocks whose state root is wrong.
    pub corrupt_state_root: bool,
}

/// Why a transaction was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The bytes do not decode.
    #[error(transparent)]
    Malformed(#[from] xiebao_types::tx::DecodeError),
    /// For another chain.
    #[error("transaction is for chain {got}, this chain is {expected}")]
    WrongChain {
        /// This chain.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// The signature is unusable.
    #[error("transaction signature: {0}")]
    Signature(xiebao_types::crypto::SignatureError),
    /// The mempool refused it.
    #[error(transparent)]
    Mempool(#[from] MempoolError),
    /// Too many submissions wait for signature verification.
    #[error("the node is verifying {queued} transactions, its limit is {max}; retry shortly")]
    Busy {
        /// Submissions waiting.
        queued: usize,
        /// The limit.
        max: usize,
    },
}

impl Chain {
    /// A chain at `committed`, persisted in `store`.
    pub(crate) fn new(
        state: State,
        head: Header,
        store: Store,
        me: Address,
        node_key: B256,
        timing: Timing,
    ) -> Self {
        let domain = state.domain();
        let (heads, _) = broadcast::channel(1_024);
        let (events, _) = broadcast::channel(16_384);
        Self {
            finalized_tip: AtomicU64::new(head.height),
            committed: Mutex::new(Committed { state, head }),
            mempool: Mutex::new(Mempool::default()),
            rejected: Mutex::new((BTreeMap::new(), VecDeque::new())),
            store,
            domain,
            me,
            node_key,
            timing,
            heads,
            events,
            gossip: Mutex::new(None),
            verify_permits: Arc::new(tokio::sync::Semaphore::new(VERIFY_THREADS)),
            verify_queued: AtomicUsize::new(0),
            metrics: std::sync::OnceLock::new(),
            pruner: std::sync::OnceLock::new(),
            epoch_hook: std::sync::OnceLock::new(),
            validators_hook: std::sync::OnceLock::new(),
            #[cfg(feature = "faults")]
            faults: Mutex::new(Faults::default()),
        }
    }

    /// Calls `hook` with the next epoch each time the last block of an epoch is finalized here.
    pub fn set_epoch_hook(&self, hook: Box<dyn Fn(u64) + Send + Sync>) {
        let _ = self.epoch_hook.set(hook);
    }

    /// Calls `hook` with the height of each finalized block that changed the validator set
    /// or fixed an epoch's validators.
    pub fn set_validators_hook(&self, hook: Box<dyn Fn(u64) + Send + Sync>) {
        let _ = self.validators_hook.set(hook);
    }

    /// The chain's EIP-712 order domain (fixed at genesis).
    pub fn domain(&self) -> Domain {
        self.domain
    }

    /// Blocks per consensus epoch.
    pub fn epoch_length(&self) -> u64 {
        self.committed().state.globals().epoch_length
    }

    /// The epoch of the next block to finalize here.
    pub fn next_epoch(&self) -> u64 {
        let committed = self.committed();
        committed.state.epoch_of(committed.head.height + 1)
    }

    /// The validators of `epoch`, once the finalized state has fixed them.
    pub fn epoch_validators(&self, epoch: u64) -> Option<xiebao_protocol::EpochValidators> {
        self.committed().state.epoch_validators(epoch).cloned()
    }

    /// The validators in the finalized state now (the next epoch's, unless changed again).
    pub fn current_validators(&self) -> Vec<xiebao_protocol::EpochMember> {
        self.committed().state.current_validators()
    }

    /// The hash of the finalized block at `height`, if this node has it.
    pub fn block_hash(&self, height: u64) -> Option<B256> {
        let committed = self.committed();
        self.canonical_hash(height, &committed.head)
    }

    /// The Ethereum address this node signs blocks of `height` with: its entry in that
    /// block's epoch set, else the address it was configured with.
    fn proposer(&self, state: &State, height: u64) -> Address {
        state
            .epoch_validators(state.epoch_of(height))
            .and_then(|set| set.members.iter().find(|m| m.consensus_key == self.node_key))
            .map_or(self.me, |m| m.address)
    }

    /// Makes this validator misbehave as `faults` says.
    #[cfg(feature = "faults")]
    pub fn set_faults(&self, faults: Faults) {
        *self.faults.lock().expect("never poisoned") = faults;
    }

    /// Prunes consensus storage with `pruner` when blocks are pruned (the first call wins).
    pub fn set_pruner(&self, pruner: Box<dyn Fn(u64) + Send + Sync>) {
        let _ = self.pruner.set(pruner);
    }

    /// Reports to `metrics` from now on (the first call wins).
    pub fn set_metrics(&self, metrics: NodeMetrics) {
        let _ = self.metrics.set(metrics);
    }

    /// The committed head.
    pub fn head(&self) -> Header {
        self.committed().head.clone()
    }

    /// An account as of the committed head.
    pub fn account(&self, address: &Address) -> xiebao_protocol::Account {
        self.committed().state.account(address)
    }

    /// An account's nonce as of the committed head.
    pub fn committed_nonce(&self, address: &Address) -> u64 {
        self.account(address).nonce
    }

    /// The finalized block at `height`, if this node has it.
    pub fn block(&self, height: u64) -> Option<Block> {
        self.store.block(height).ok().flatten()
    }

    pub(crate) fn committed(&self) -> MutexGuard<'_, Committed> {
        self.committed.lock().expect("the committed state's lock is never poisoned")
    }

    fn mempool(&self) -> MutexGuard<'_, Mempool> {
        self.mempool.lock().expect("the mempool's lock is never poisoned")
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// A committed task: from memory, or from the store when the node evicted it (finished
    /// tasks never change, so reading it after releasing the state's lock is not stale; the
    /// store is never read under that lock).
    pub(crate) fn committed_task(
        &self,
        id: &B256,
    ) -> Result<Option<xiebao_protocol::Task>, xiebao_store::StoreError> {
        let committed = self.committed();
        if !committed.state.is_evicted(id) {
            return Ok(committed.state.tasks().get(id).cloned());
        }
        drop(committed);
        self.store.task(id)
    }

    pub(crate) fn node_key(&self) -> B256 {
        self.node_key
    }

    pub(crate) fn finalized_tip(&self) -> u64 {
        self.finalized_tip.load(Ordering::Relaxed)
    }

    pub(crate) fn mempool_len(&self) -> usize {
        self.mempool().len()
    }

    pub(crate) fn subscribe_heads(&self) -> broadcast::Receiver<BlockView> {
        self.heads.subscribe()
    }

    pub(crate) fn subscribe_events(&self) -> broadcast::Receiver<EventView> {
        self.events.subscribe()
    }

    pub(crate) fn set_gossip(&self, sender: tokio::sync::mpsc::Sender<Vec<u8>>) {
        *self.gossip.lock().expect("never poisoned") = Some(sender);
    }

    /// Why a transaction was dropped by this node's proposer, if it was.
    pub(crate) fn rejection(&self, hash: &B256) -> Option<String> {
        self.rejected.lock().expect("never poisoned").0.get(hash).cloned()
    }

    pub(crate) fn is_pending(&self, hash: &B256) -> bool {
        self.mempool().contains(hash)
    }

    /// The pending transactions (signatures recovered) among `blocks`' transactions.
    fn known<'a>(&self, blocks: impl IntoIterator<Item = &'a Block>) -> KnownTxs {
        let hashes: Vec<B256> =
            blocks.into_iter().flat_map(|b| b.txs.iter().map(SignedTransaction::hash)).collect();
        self.mempool().known(&hashes)
    }

    /// Admits an encoded transaction and relays it to the other validators, in the caller's
    /// thread. The RPC server uses [`Self::submit_verified`], which runs this on the bounded
    /// verification pool instead.
    ///
    /// # Errors
    /// [`SubmitError`] naming the rule and the values.
    pub fn submit(&self, bytes: &[u8]) -> Result<B256, SubmitError> {
        let hash = self.admit(bytes)?;
        if let Some(gossip) = &*self.gossip.lock().expect("never poisoned") {
            // A full relay queue drops the copy: the transaction stays pending here.
            let _ = gossip.try_send(bytes.to_vec());
        }
        Ok(hash)
    }

    /// [`Self::submit`] off the caller's runtime: on at most [`VERIFY_THREADS`] blocking
    /// threads at once, with at most [`VERIFY_QUEUE_MAX`] submissions waiting for them; past
    /// that a submission is refused at once ([`SubmitError::Busy`]). Signature recovery is
    /// the costly part of admission, and the runtime it would otherwise run on also drives
    /// consensus.
    ///
    /// # Errors
    /// [`SubmitError`] naming the rule and the values.
    pub async fn submit_verified(self: Arc<Self>, bytes: Vec<u8>) -> Result<B256, SubmitError> {
        // The cheapest refusal first: a transaction already pending costs one hash.
        let hash = keccak256(&bytes);
        if self.is_pending(&hash) {
            return Err(MempoolError::AlreadyKnown { hash }.into());
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return self.submit(&bytes);
        };
        let queued = self.verify_queued.fetch_add(1, Ordering::Relaxed);
        if queued >= VERIFY_QUEUE_MAX {
            self.verify_queued.fetch_sub(1, Ordering::Relaxed);
            return Err(SubmitError::Busy { queued, max: VERIFY_QUEUE_MAX });
        }
        let permit = self.verify_permits.clone().acquire_owned().await;
        self.verify_queued.fetch_sub(1, Ordering::Relaxed);
        let permit = permit.expect("the verification semaphore is never closed");
        runtime
            .spawn_blocking(move || {
                let _permit = permit;
                self.submit(&bytes)
            })
            .await
            .expect("admission does not panic")
    }

    /// Admits a transaction relayed by a peer (not relayed again), inline: peers are the
    /// validators, over a rate-limited channel, and only what they admitted is relayed, so the
    /// cheap checks first bound the cost. (Through the blocking pool, as the RPC does, the hop
    /// behind consensus storage's blocking tasks took 4-process finality from 43 to 108 ms.)
    pub(crate) fn admit_relayed(&self, bytes: &[u8]) {
        let _ = self.admit(bytes);
    }

    /// Admits a transaction, cheapest checks first: its id against the pending ones, its
    /// encoding and chain, its sender's signature (one recovery), then every rule the mempool
    /// can decide from the id, sender, nonce and size with the sender's committed account,
    /// and the sender's recovery budget — and only then the signatures inside its calls.
    pub(crate) fn admit(&self, bytes: &[u8]) -> Result<B256, SubmitError> {
        let hash = keccak256(bytes);
        if self.is_pending(&hash) {
            return Err(MempoolError::AlreadyKnown { hash }.into());
        }
        let signed = SignedTransaction::decode(bytes)?;
        if signed.tx.chain_id != self.domain.chain_id {
            return Err(SubmitError::WrongChain {
                expected: self.domain.chain_id,
                got: signed.tx.chain_id,
            });
        }
        let sender = signed.recover_sender().map_err(SubmitError::Signature)?;
        let (state, _) = self.sender_state(&sender);
        {
            let mut mempool = self.mempool();
            mempool.check(&hash, sender, signed.tx.nonce, bytes.len(), state)?;
            let recoveries = xiebao_protocol::call_recoveries(&signed.tx);
            mempool.charge_recoveries(sender, recoveries, state.holdings)?;
            if let Some(metrics) = self.metrics.get() {
                metrics.admission_recoveries.inc_by(recoveries as u64);
            }
        }
        let verified = VerifiedTx::with_sender(signed, hash, sender, &self.domain);
        // The head may have moved while the calls' signatures were recovered.
        let (state, now) = self.sender_state(&sender);
        let mut mempool = self.mempool();
        mempool.insert(verified, bytes.len(), state, now)?;
        if let Some(metrics) = self.metrics.get() {
            metrics.mempool_txs.set(mempool.len() as i64);
            metrics.mempool_bytes.set(mempool.bytes() as i64);
        }
        Ok(hash)
    }

    /// What admission needs of `sender` from the committed state, and the head's block time.
    fn sender_state(&self, sender: &Address) -> (SenderState, xiebao_types::Timestamp) {
        let committed = self.committed();
        let account = committed.state.account(sender);
        let holdings = Nrlc(account.free.0.saturating_add(account.frozen.0));
        (SenderState { next_nonce: account.nonce, holdings }, committed.head.timestamp)
    }

    fn reject(&self, rejected: Vec<(B256, String)>) {
        if rejected.is_empty() {
            return;
        }
        let mut guard = self.rejected.lock().expect("never poisoned");
        let (map, order) = &mut *guard;
        for (hash, error) in rejected {
            if map.insert(hash, error).is_none() {
                order.push_back(hash);
            }
            while order.len() > REJECTED_MAX {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
    }

    /// The canonical block hash at `height`, if finalized here.
    fn canonical_hash(&self, height: u64, head: &Header) -> Option<B256> {
        if height == head.height {
            return Some(head.hash());
        }
        self.store.block(height).ok().flatten().map(|b| b.header.hash())
    }

    /// Splits `ancestors` (oldest first, ending with the parent) into those already committed
    /// (checked against the canonical chain) and those to re-execute. `None` if they leave
    /// the finalized chain.
    fn unapplied<'a>(
        &self,
        ancestors: &'a [ChainBlock],
        head: &Header,
    ) -> Option<&'a [ChainBlock]> {
        let mut skip = 0;
        for block in ancestors {
            let header = &block.0.header;
            if header.height > head.height {
                break;
            }
            if self.canonical_hash(header.height, head)? != header.hash() {
                return None;
            }
            skip += 1;
        }
        let rest = &ancestors[skip..];
        match rest.first() {
            Some(first) if first.0.header.height != head.height + 1 => None,
            Some(first) if first.0.header.parent != head.hash() => None,
            _ => Some(rest),
        }
    }

    /// Builds a block on `ancestors` (oldest first, ending with the parent).
    fn build(&self, ancestors: &[ChainBlock], now_s: u64) -> Option<ChainBlock> {
        let known = self.known(ancestors.iter().map(|b| &*b.0));
        let mut committed = self.committed();
        let Committed { state, head } = &mut *committed;
        let pending = self.unapplied(ancestors, head)?;
        let parent = pending.last().map_or_else(|| head.clone(), |b| b.0.header.clone());
        state.begin_block();
        let mut tip = head.clone();
        for block in pending {
            if apply_block_known(state, &tip, &block.0, &known).is_err() {
                state.rollback_block();
                return None;
            }
            tip = block.0.header.clone();
        }
        let mut candidates = {
            let mempool = self.mempool();
            mempool.ready(|sender| state.account(sender).nonce, self.timing.block_txs_max)
        };
        // Keep the block within what peers accept (half the limit leaves room for the header
        // and the signatures' worst case).
        let mut size = 0;
        let fits = candidates
            .iter()
            .take_while(|tx| {
                size += alloy_rlp::Encodable::length(&tx.tx) + tx.signature.len() + 8;
                size <= BLOCK_SIZE_MAX_BYTES / 2
            })
            .count();
        candidates.truncate(fits);
        let candidate_count = candidates.len();
        let proposer = self.proposer(state, parent.height + 1);
        let proposal = build_block(state, &parent, now_s, proposer, candidates);
        tracing::debug!(
            height = proposal.block.header.height,
            candidates = candidate_count,
            included = proposal.block.txs.len(),
            "built block"
        );
        for (hash, error) in &proposal.rejected {
            tracing::debug!(%hash, %error, "transaction dropped");
        }
        state.rollback_block();
        drop(committed);
        let rejected: Vec<_> =
            proposal.rejected.iter().map(|(hash, e)| (*hash, e.to_string())).collect();
        if !rejected.is_empty() {
            let hashes: Vec<B256> = rejected.iter().map(|(h, _)| *h).collect();
            let committed = self.committed();
            self.mempool().prune(|s| committed.state.account(s).nonce, &hashes);
            drop(committed);
            self.reject(rejected);
        }
        #[cfg(feature = "faults")]
        let proposal = {
            let mut proposal = proposal;
            if self.faults.lock().expect("never poisoned").corrupt_state_root {
                proposal.block.header.state_root.0[0] ^= 0xff;
            }
            proposal
        };
        Some(ChainBlock::new(proposal.block))
    }

    /// Whether `block` is valid on `ancestors` (oldest first, ending with its parent).
    fn check(&self, ancestors: &[ChainBlock], block: &Block) -> bool {
        let known = self.known(ancestors.iter().map(|b| &*b.0).chain(std::iter::once(block)));
        let mut committed = self.committed();
        let Committed { state, head } = &mut *committed;
        let Some(pending) = self.unapplied(ancestors, head) else {
            tracing::warn!(height = block.header.height, "block is off the finalized chain");
            return false;
        };
        state.begin_block();
        let mut tip = head.clone();
        let mut ok = true;
        for b in pending.iter().map(|b| &*b.0).chain(std::iter::once(block)) {
            if let Err(error) = apply_block_known(state, &tip, b, &known) {
                tracing::warn!(height = b.header.height, %error, "block is invalid");
                ok = false;
                break;
            }
            tip = b.header.clone();
        }
        state.rollback_block();
        ok
    }

    /// Executes and persists a finalized block (no-op for one already committed).
    ///
    /// # Panics
    /// If a finalized block does not apply or conflicts with the committed chain: a node that
    /// halts beats one that diverges.
    pub(crate) fn finalize(&self, block: &Block) {
        let known = self.known(std::iter::once(block));
        let mut committed = self.committed();
        let Committed { state, head } = &mut *committed;
        let height = block.header.height;
        if height <= head.height {
            let canonical = self.canonical_hash(height, head);
            assert!(
                canonical.is_none_or(|hash| hash == block.header.hash()),
                "finalized block {height} conflicts with the committed chain"
            );
            return;
        }
        let receipts = xiebao_node::execute_block_known(state, head, block, &known)
            .unwrap_or_else(|e| panic!("finalized block {height} does not apply: {e}"));
        let changes = state.take_changes();
        let encoded: Vec<(B256, Vec<u8>)> = receipts
            .iter()
            .enumerate()
            .filter(|(_, r)| r.tx_hash != B256::ZERO)
            .map(|(index, r)| (r.tx_hash, encode_receipt(height, index as u32, r)))
            .collect();
        self.store
            .commit_with_receipts(block, changes, &encoded)
            .unwrap_or_else(|e| panic!("cannot persist finalized block {height}: {e}"));
        *head = block.header.clone();
        let epoch_length = state.globals().epoch_length;
        let pending = {
            let mut mempool = self.mempool();
            mempool.prune(|s| state.account(s).nonce, &[]);
            let expired = mempool.expire(|s| state.account(s).nonce, head.timestamp);
            if !expired.is_empty() {
                tracing::debug!(count = expired.len(), "gapped transactions expired");
            }
            mempool.new_block();
            (mempool.len(), mempool.bytes())
        };
        drop(committed);
        if let Some(keep) = self.timing.keep_blocks
            && height.is_multiple_of(PRUNE_EVERY_BLOCKS)
            && height > keep
        {
            let below = height - keep;
            // Epoch boundaries stay: the next epoch's consensus starts from them.
            let boundary = |h: u64| (h + 1).is_multiple_of(epoch_length);
            match self.store.prune_blocks(below, boundary) {
                Ok(removed) => tracing::debug!(below, removed, "pruned blocks"),
                Err(error) => tracing::warn!(below, %error, "pruning failed"),
            }
            if let Some(pruner) = self.pruner.get() {
                pruner(below);
            }
        }
        if let Some(metrics) = self.metrics.get() {
            metrics.height.set(height as i64);
            metrics.finalized_txs.inc_by(block.txs.len() as u64);
            metrics.finalized_calls.inc_by(block.txs.iter().map(|t| t.tx.calls.len() as u64).sum());
            metrics.mempool_txs.set(pending.0 as i64);
            metrics.mempool_bytes.set(pending.1 as i64);
        }
        self.finalized_tip.fetch_max(height, Ordering::Relaxed);
        let changed_validators = receipts.iter().flat_map(|r| &r.events).any(|e| {
            matches!(
                e,
                xiebao_protocol::Event::ValidatorSetChanged { .. }
                    | xiebao_protocol::Event::EpochValidatorsFixed { .. }
            )
        });
        if changed_validators && let Some(hook) = self.validators_hook.get() {
            hook(height);
        }
        if (height + 1).is_multiple_of(epoch_length)
            && let Some(hook) = self.epoch_hook.get()
        {
            hook((height + 1) / epoch_length);
        }
        let _ = self.heads.send(block_view(block));
        if self.events.receiver_count() > 0 {
            for receipt in &receipts {
                for event in &receipt.events {
                    let _ = self.events.send(EventView {
                        height,
                        tx: receipt.tx_hash,
                        event: event.clone(),
                    });
                }
            }
        }
    }
}

/// A block as the RPC shows it.
pub(crate) fn block_view(block: &Block) -> BlockView {
    BlockView {
        height: block.header.height,
        hash: block.header.hash(),
        parent: block.header.parent,
        timestamp: block.header.timestamp,
        proposer: block.header.proposer,
        state_root: block.header.state_root,
        txs: block.txs.iter().map(SignedTransaction::hash).collect(),
        calls: block.txs.iter().map(|tx| tx.tx.calls.len() as u64).sum(),
    }
}

/// Receipt encoding in the store: height (8 bytes BE) ‖ index (4 bytes BE) ‖ events as JSON.
fn encode_receipt(height: u64, index: u32, receipt: &Receipt) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&index.to_be_bytes());
    out.extend_from_slice(
        &serde_json::to_vec(&receipt.events).expect("events always serialize to JSON"),
    );
    out
}

/// Decodes [`encode_receipt`]'s output.
pub(crate) fn decode_receipt(bytes: &[u8]) -> Option<(u64, u32, Vec<xiebao_protocol::Event>)> {
    let height = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
    let index = u32::from_be_bytes(bytes.get(8..12)?.try_into().ok()?);
    let events = serde_json::from_slice(bytes.get(12..)?).ok()?;
    Some((height, index, events))
}

fn unix_seconds(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The consensus-facing application: an `Arc<Chain>` handle.
#[derive(Clone)]
pub struct App {
    chain: Arc<Chain>,
}

impl App {
    /// The application over `chain`.
    pub fn new(chain: Arc<Chain>) -> Self {
        Self { chain }
    }

    /// Collects `ancestry` (newest first) down to the committed head; oldest first.
    /// `None` if it is deeper than [`SPECULATION_DEPTH_MAX`] or leaves the finalized chain.
    async fn ancestors(&self, mut ancestry: impl Ancestry<ChainBlock>) -> Option<Vec<ChainBlock>> {
        let head = self.chain.committed().head.clone();
        let mut out = Vec::new();
        while let Some(block) = ancestry.next().await {
            let height = block.height().get();
            out.push(block.inner().clone());
            if height <= head.height || out.len() as u64 > SPECULATION_DEPTH_MAX {
                break;
            }
        }
        let last = out.last()?;
        if last.0.header.height > head.height {
            // The stream ended (or went too deep) above our head: we are behind.
            return None;
        }
        out.reverse();
        Some(out)
    }

    /// Waits until the committed head is within [`SPECULATION_DEPTH_MAX`] of `height`.
    async fn catch_up<E: Clock>(&self, runtime: &E, height: u64) {
        while self.chain.committed().head.height + SPECULATION_DEPTH_MAX < height {
            runtime.sleep(Duration::from_millis(20)).await;
        }
    }
}

impl<E> Application<E> for App
where
    E: Clock + Send + Sync + 'static,
{
    type SigningScheme = Scheme;
    type Context = Context<Digest, ed25519::PublicKey>;
    type Block = ChainBlock;
    type Input = ();

    async fn propose(
        &mut self,
        (runtime, _context): (E, Self::Context),
        ancestry: impl Ancestry<Self::Block>,
        _input: (),
    ) -> Option<Digested<Self::Block>> {
        // A fixed block interval, when configured (benchmark profiles).
        let interval = self.chain.timing.block_interval_ms;
        if interval > 0 {
            runtime.sleep(Duration::from_millis(interval)).await;
        }
        // Pace an idle chain: wait a little for transactions before proposing an empty block.
        let wait = Duration::from_millis(self.chain.timing.empty_block_wait_ms);
        let start = runtime.current();
        while self.chain.mempool_len() == 0
            && runtime.current().duration_since(start).unwrap_or_default() < wait
        {
            runtime.sleep(Duration::from_millis(5)).await;
        }
        let parent_height = ancestry.peek().map(|b| b.height().get())?;
        self.catch_up(&runtime, parent_height).await;
        let ancestors = self.ancestors(ancestry).await?;
        let now_s = unix_seconds(runtime.current());
        let block = self.chain.build(&ancestors, now_s)?;
        let digest = block.digest();
        Some(Digested::precomputed(block, digest))
    }

    async fn verify(
        &mut self,
        (runtime, _context): (E, Self::Context),
        mut ancestry: impl Ancestry<Self::Block>,
    ) -> bool {
        let Some(block) = ancestry.next().await else { return false };
        let block = block.inner().clone();
        let timestamp = block.0.header.timestamp;
        // A block from the future waits for our clock, within reason.
        loop {
            let now = unix_seconds(runtime.current());
            if timestamp <= now + CLOCK_DRIFT_MAX_S {
                break;
            }
            if timestamp > now + 60 {
                tracing::warn!(timestamp, now, "block is more than a minute in the future");
                return false;
            }
            runtime.sleep(Duration::from_millis(200)).await;
        }
        self.catch_up(&runtime, block.0.header.height.saturating_sub(1)).await;
        let Some(ancestors) = self.ancestors(ancestry).await else {
            // Behind or off the finalized chain: abstain rather than vote.
            return futures::future::pending().await;
        };
        self.chain.check(&ancestors, &block.0)
    }
}

/// Receives finalized blocks from marshal, in height order, and executes them on a thread
/// of their own (execution and the store's fsync must not stall the consensus runtime).
#[derive(Clone)]
pub struct Finalizer {
    chain: Arc<Chain>,
    /// `None`: execute inside `report` (the deterministic simulator, where an OS thread
    /// would make the schedule nondeterministic).
    queue: Option<std::sync::mpsc::Sender<(ChainBlock, commonware_utils::acknowledgement::Exact)>>,
}

impl Finalizer {
    /// Executes each block inside `report`, on the consensus runtime's task.
    pub fn inline(chain: Arc<Chain>) -> Self {
        Self { chain, queue: None }
    }

    /// Starts the executing thread.
    pub fn start(chain: Arc<Chain>) -> Self {
        let (queue, receiver) =
            std::sync::mpsc::channel::<(ChainBlock, commonware_utils::acknowledgement::Exact)>();
        let worker = chain.clone();
        std::thread::Builder::new()
            .name("xiebao-finalizer".into())
            .spawn(move || {
                for (block, ack) in receiver {
                    worker.finalize(&block.0);
                    ack.acknowledge();
                }
            })
            .expect("the finalizer thread starts");
        Self { chain, queue: Some(queue) }
    }
}

impl Reporter for Finalizer {
    type Activity = Update<ChainBlock>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        match activity {
            Update::Block(block, ack) => match &self.queue {
                Some(queue) => {
                    let _ = queue.send((block.inner().clone(), ack));
                }
                None => {
                    self.chain.finalize(&block.inner().0);
                    ack.acknowledge();
                }
            },
            Update::Tip(_, height, _) => {
                self.chain.finalized_tip.fetch_max(height.get(), Ordering::Relaxed);
            }
        }
        Feedback::Ok
    }
}

/// The digest of the genesis block, the chain's consensus floor.
pub fn genesis_digest(genesis: &Block) -> Digest {
    digest_of(genesis.header.hash())
}
