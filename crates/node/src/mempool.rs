//! Pending transactions: per-sender nonce order, deduplication, quotas and fair selection.
//!
//! Admission is checked here (size, nonce window, per-sender quotas of transactions and bytes
//! weighted by what the sender holds, a byte budget for the whole pool); whether a transaction
//! applies is checked when a block is proposed, and a failing one is dropped with its error.
//! Everything [`Mempool::check`] decides needs only the transaction's id, sender, nonce and
//! size, so a node runs it before recovering the signatures inside the calls.
//!
//! The chain is fee-less, so spam is priced in what a sender holds instead of in fees: an
//! account holding nothing may keep a few small transactions pending, one holding
//! [`MempoolLimits::funded_holdings`] or more gets the full quota, and quotas grow linearly in
//! between. Transactions stuck behind a nonce gap expire ([`Mempool::expire`]).

use std::collections::BTreeMap;

use alloy_primitives::{Address, B256};
use xiebao_protocol::VerifiedTx;
use xiebao_types::{Nrlc, Timestamp};

/// Bounds on what the mempool holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MempoolLimits {
    /// Most pending transactions in all.
    pub txs_max: usize,
    /// Most encoded bytes pending in all: the pool's memory budget (a transaction takes about
    /// three to four times its encoded size in memory once decoded and verified).
    pub bytes_max: usize,
    /// Most pending transactions of a sender holding [`Self::funded_holdings`] or more.
    pub txs_per_sender_max: usize,
    /// Most pending bytes of a sender holding [`Self::funded_holdings`] or more.
    pub bytes_per_sender_max: usize,
    /// Most pending transactions of a sender holding nothing.
    pub txs_per_empty_sender_max: usize,
    /// Most pending bytes of a sender holding nothing.
    pub bytes_per_empty_sender_max: usize,
    /// Most signatures inside calls recovered at admission per block for a sender holding
    /// [`Self::funded_holdings`] or more (recovery is admission's costly step).
    pub recoveries_per_block_max: usize,
    /// Most signatures inside calls recovered at admission per block for a sender holding
    /// nothing.
    pub recoveries_per_block_empty_max: usize,
    /// Holdings (free + frozen) from which a sender gets the full quotas.
    pub funded_holdings: Nrlc,
    /// How far ahead of its account's nonce a sender may queue.
    pub nonce_gap_max: u64,
    /// A transaction that cannot run because of a nonce gap leaves after this long, in
    /// block-time seconds.
    pub gapped_ttl_secs: u64,
    /// Largest encoded transaction accepted, bytes.
    pub tx_size_max_bytes: usize,
}

impl Default for MempoolLimits {
    fn default() -> Self {
        Self {
            txs_max: 100_000,
            bytes_max: 32 << 20,
            txs_per_sender_max: 1_024,
            bytes_per_sender_max: 8 << 20,
            txs_per_empty_sender_max: 16,
            bytes_per_empty_sender_max: 256 << 10,
            recoveries_per_block_max: 16_384,
            recoveries_per_block_empty_max: 64,
            funded_holdings: Nrlc::rlc(1),
            nonce_gap_max: 1_024,
            gapped_ttl_secs: 60,
            tx_size_max_bytes: xiebao_types::tx::TX_SIZE_MAX_BYTES,
        }
    }
}

impl MempoolLimits {
    /// The quotas of a sender holding `holdings`.
    pub fn quota(&self, holdings: Nrlc) -> Quota {
        let funded = self.funded_holdings.0.max(1);
        let share = holdings.0.min(funded);
        // An empty account never gets more than a funded one, whatever the limits say.
        let scale = |empty: usize, full: usize| {
            let empty = empty.min(full);
            let extra = ((full - empty) as u128) * share / funded;
            empty + extra as usize
        };
        Quota {
            txs: scale(self.txs_per_empty_sender_max, self.txs_per_sender_max),
            bytes: scale(self.bytes_per_empty_sender_max, self.bytes_per_sender_max),
            recoveries_per_block: scale(
                self.recoveries_per_block_empty_max,
                self.recoveries_per_block_max,
            ),
        }
    }
}

/// What one sender may hold pending, and have recovered per block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// Pending transactions.
    pub txs: usize,
    /// Pending encoded bytes.
    pub bytes: usize,
    /// Signatures inside calls recovered at admission per block.
    pub recoveries_per_block: usize,
}

/// What the committed state says of a sender, for admission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderState {
    /// The account's next nonce.
    pub next_nonce: u64,
    /// Free + frozen balance: what weighs the sender's quotas.
    pub holdings: Nrlc,
}

impl SenderState {
    /// A sender with `next_nonce` and holdings enough for the full quotas of the default
    /// limits (tests and tools that do not model balances).
    pub fn funded(next_nonce: u64) -> Self {
        Self { next_nonce, holdings: Nrlc(u128::MAX) }
    }
}

/// A transaction was not admitted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// Already pending.
    #[error("transaction {hash} is already pending")]
    AlreadyKnown {
        /// Its id.
        hash: B256,
    },
    /// The nonce was used.
    #[error("nonce {got} of {sender} is already used (next nonce is {next})")]
    NonceTooLow {
        /// The sender.
        sender: Address,
        /// The next nonce.
        next: u64,
        /// The nonce given.
        got: u64,
    },
    /// The nonce is too far ahead.
    #[error("nonce {got} of {sender} is more than {gap} ahead of its next nonce {next}")]
    NonceTooFar {
        /// The sender.
        sender: Address,
        /// The next nonce.
        next: u64,
        /// The nonce given.
        got: u64,
        /// The allowed gap.
        gap: u64,
    },
    /// Another pending transaction has this nonce.
    #[error("{sender} already has pending transaction {pending} with nonce {nonce}")]
    NonceTaken {
        /// The sender.
        sender: Address,
        /// The nonce.
        nonce: u64,
        /// The pending transaction's id.
        pending: B256,
    },
    /// Too big.
    #[error("transaction is {size} bytes, above the limit of {max} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The sender's quota of pending transactions is used up.
    #[error(
        "{sender} already has {count} pending transactions, its quota for holding {holdings} \
         (quotas grow with what an account holds; wait for the next block)"
    )]
    SenderQuota {
        /// The sender.
        sender: Address,
        /// Its pending count (= its quota).
        count: usize,
        /// What it holds.
        holdings: Nrlc,
    },
    /// The sender's quota of pending bytes is used up.
    #[error(
        "{sender} has {pending} bytes pending; {size} more would pass its quota of {max} bytes \
         for holding {holdings} (quotas grow with what an account holds; wait for the next block)"
    )]
    SenderBytes {
        /// The sender.
        sender: Address,
        /// Its pending bytes.
        pending: usize,
        /// The new transaction's size.
        size: usize,
        /// Its quota.
        max: usize,
        /// What it holds.
        holdings: Nrlc,
    },
    /// The sender's budget of signature recoveries for this block is used up.
    #[error(
        "transaction carries {recoveries} signatures; {sender} has had {used} recovered since \
         the last block, its budget is {max} per block for holding {holdings} (retry after the \
         next block)"
    )]
    RecoveryBudget {
        /// The sender.
        sender: Address,
        /// Signatures in the transaction's calls.
        recoveries: usize,
        /// Recovered for it since the last block.
        used: usize,
        /// Its budget per block.
        max: usize,
        /// What it holds.
        holdings: Nrlc,
    },
    /// The pool is full and the sender has no less pending than any other.
    #[error("mempool is full ({count} transactions, {bytes} bytes); retry after the next block")]
    Full {
        /// Pending count.
        count: usize,
        /// Pending bytes.
        bytes: usize,
    },
}

#[derive(Clone, Debug)]
struct Pending {
    tx: VerifiedTx,
    /// Arrival order.
    seq: u64,
    /// Encoded size.
    size: usize,
    /// The head's block time when it arrived.
    arrived: Timestamp,
}

/// One sender's pending transactions by nonce, and their bytes.
#[derive(Clone, Debug, Default)]
struct Queue {
    txs: BTreeMap<u64, Pending>,
    bytes: usize,
}

/// Pending transactions, by sender and nonce.
#[derive(Clone, Debug, Default)]
pub struct Mempool {
    limits: MempoolLimits,
    by_sender: BTreeMap<Address, Queue>,
    by_hash: BTreeMap<B256, (Address, u64)>,
    /// Arrival order → transaction id.
    by_arrival: BTreeMap<u64, B256>,
    next_seq: u64,
    bytes: usize,
    /// Signatures recovered per sender since the last [`Mempool::new_block`].
    recovered: BTreeMap<Address, usize>,
}

/// Which limit makes room necessary.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Room {
    Count,
    Bytes,
}

impl Mempool {
    /// An empty mempool.
    pub fn new(limits: MempoolLimits) -> Self {
        Self { limits, ..Self::default() }
    }

    /// Its limits.
    pub fn limits(&self) -> &MempoolLimits {
        &self.limits
    }

    /// Number of pending transactions.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Encoded bytes pending.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Is it empty?
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// The pending transactions among `hashes` (their signatures already recovered).
    pub fn known<'a>(&self, hashes: impl IntoIterator<Item = &'a B256>) -> crate::KnownTxs {
        hashes
            .into_iter()
            .filter_map(|hash| {
                let (sender, nonce) = self.by_hash.get(hash)?;
                Some((*hash, self.by_sender[sender].txs[nonce].tx.clone()))
            })
            .collect()
    }

    /// Is `hash` pending?
    pub fn contains(&self, hash: &B256) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Whether a transaction with these id, sender, nonce and encoded size would be admitted
    /// now: every rule [`Self::insert`] applies, without the transaction itself, so a node can
    /// refuse before recovering the signatures inside its calls.
    ///
    /// # Errors
    /// [`MempoolError`] naming the limit and the values.
    pub fn check(
        &self,
        hash: &B256,
        sender: Address,
        nonce: u64,
        size: usize,
        state: SenderState,
    ) -> Result<(), MempoolError> {
        if self.by_hash.contains_key(hash) {
            return Err(MempoolError::AlreadyKnown { hash: *hash });
        }
        if size > self.limits.tx_size_max_bytes {
            return Err(MempoolError::TooLarge { size, max: self.limits.tx_size_max_bytes });
        }
        let next = state.next_nonce;
        if nonce < next {
            return Err(MempoolError::NonceTooLow { sender, next, got: nonce });
        }
        if nonce - next > self.limits.nonce_gap_max {
            return Err(MempoolError::NonceTooFar {
                sender,
                next,
                got: nonce,
                gap: self.limits.nonce_gap_max,
            });
        }
        let queue = self.by_sender.get(&sender);
        if let Some(pending) = queue.and_then(|q| q.txs.get(&nonce)) {
            return Err(MempoolError::NonceTaken { sender, nonce, pending: pending.tx.hash });
        }
        let (count, pending) = queue.map_or((0, 0), |q| (q.txs.len(), q.bytes));
        let Quota { txs: txs_max, bytes: bytes_max, .. } = self.limits.quota(state.holdings);
        if count >= txs_max {
            return Err(MempoolError::SenderQuota { sender, count, holdings: state.holdings });
        }
        if pending + size > bytes_max {
            return Err(MempoolError::SenderBytes {
                sender,
                pending,
                size,
                max: bytes_max,
                holdings: state.holdings,
            });
        }
        self.victims(sender, size).map(|_| ())
    }

    /// The transactions to evict so that `sender` may add `size` bytes: the newest of the
    /// sender holding the most (by the limit that binds), while that sender would still hold
    /// strictly more than the newcomer.
    fn victims(&self, sender: Address, size: usize) -> Result<Vec<B256>, MempoolError> {
        let full = MempoolError::Full { count: self.len(), bytes: self.bytes };
        if size > self.limits.bytes_max {
            return Err(full);
        }
        let mine = self.by_sender.get(&sender).map_or((0, 0), |q| (q.txs.len(), q.bytes));
        let (mut count, mut bytes) = (self.len(), self.bytes);
        // Per sender: how many of its newest transactions are taken, and what it keeps.
        let mut taken: BTreeMap<Address, (usize, usize, usize)> = BTreeMap::new();
        let mut victims = Vec::new();
        loop {
            let room = if count + 1 > self.limits.txs_max {
                Room::Count
            } else if bytes + size > self.limits.bytes_max {
                Room::Bytes
            } else {
                return Ok(victims);
            };
            let kept = |address: &Address, queue: &Queue| {
                taken.get(address).map_or((queue.txs.len(), queue.bytes), |t| (t.1, t.2))
            };
            let (largest, held) = self
                .by_sender
                .iter()
                .filter(|(address, _)| **address != sender)
                .map(|(address, queue)| {
                    let (n, b) = kept(address, queue);
                    (*address, if room == Room::Count { n } else { b })
                })
                .max_by_key(|(address, held)| (*held, std::cmp::Reverse(*address)))
                .ok_or_else(|| full.clone())?;
            let newcomer = if room == Room::Count { mine.0 + 1 } else { mine.1 + size };
            if held <= newcomer {
                return Err(full);
            }
            let queue = &self.by_sender[&largest];
            let entry = taken.entry(largest).or_insert((0, queue.txs.len(), queue.bytes));
            let dropped = queue.txs.values().rev().nth(entry.0).expect("the sender keeps some");
            entry.0 += 1;
            entry.1 -= 1;
            entry.2 -= dropped.size;
            count -= 1;
            bytes -= dropped.size;
            victims.push(dropped.tx.hash);
        }
    }

    /// Admits `tx` (encoded in `size` bytes) given what the committed state says of its
    /// sender and the head's block time; returns the ids of transactions evicted to make room.
    ///
    /// # Errors
    /// [`MempoolError`] naming the limit and the values.
    pub fn insert(
        &mut self,
        tx: VerifiedTx,
        size: usize,
        state: SenderState,
        now: Timestamp,
    ) -> Result<Vec<B256>, MempoolError> {
        let sender = tx.sender;
        let nonce = tx.tx.nonce;
        self.check(&tx.hash, sender, nonce, size, state)?;
        let evicted = self.victims(sender, size)?;
        for hash in &evicted {
            self.remove(hash);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += size;
        self.by_hash.insert(tx.hash, (sender, nonce));
        self.by_arrival.insert(seq, tx.hash);
        let queue = self.by_sender.entry(sender).or_default();
        queue.bytes += size;
        queue.txs.insert(nonce, Pending { tx, seq, size, arrived: now });
        Ok(evicted)
    }

    /// Charges `recoveries` signature recoveries to `sender`'s budget for this block, or
    /// refuses: a sender cannot make a node spend more than its share on recoveries, however
    /// often it re-sends transactions that are dropped.
    ///
    /// # Errors
    /// [`MempoolError::RecoveryBudget`].
    pub fn charge_recoveries(
        &mut self,
        sender: Address,
        recoveries: usize,
        holdings: Nrlc,
    ) -> Result<(), MempoolError> {
        if recoveries == 0 {
            return Ok(());
        }
        let max = self.limits.quota(holdings).recoveries_per_block;
        let used = self.recovered.get(&sender).copied().unwrap_or(0);
        if used + recoveries > max {
            return Err(MempoolError::RecoveryBudget { sender, recoveries, used, max, holdings });
        }
        self.recovered.insert(sender, used + recoveries);
        Ok(())
    }

    /// Called once per finalized block: opens a new window of signature recoveries.
    pub fn new_block(&mut self) {
        self.recovered.clear();
    }

    /// Removes one pending transaction.
    fn remove(&mut self, hash: &B256) {
        let Some((sender, nonce)) = self.by_hash.remove(hash) else { return };
        let queue = self.by_sender.get_mut(&sender).expect("indexed senders have a queue");
        let pending = queue.txs.remove(&nonce).expect("indexed nonces are queued");
        queue.bytes -= pending.size;
        self.bytes -= pending.size;
        self.by_arrival.remove(&pending.seq);
        if queue.txs.is_empty() {
            self.by_sender.remove(&sender);
        }
    }

    /// Up to `max_txs` transactions ready to run, in arrival order, each sender's starting at
    /// its next nonce and without gaps. Arrival order keeps what clients sent in sequence —
    /// often across accounts (a match, then the scheduler's initialize, then a worker's
    /// contribution) — in that sequence; a transaction that arrived before its sender's
    /// previous nonce runs right after it.
    pub fn ready(&self, next_nonce: impl Fn(&Address) -> u64, max_txs: usize) -> Vec<VerifiedTx> {
        let mut expected: BTreeMap<Address, u64> = BTreeMap::new();
        let mut out = Vec::new();
        for (seq, hash) in &self.by_arrival {
            if out.len() >= max_txs {
                break;
            }
            let (sender, nonce) = self.by_hash[hash];
            let next = expected.entry(sender).or_insert_with(|| next_nonce(&sender));
            if nonce != *next {
                continue;
            }
            let queue = &self.by_sender[&sender].txs;
            // This one, then the sender's following nonces that arrived before it.
            while out.len() < max_txs {
                match queue.get(next) {
                    Some(pending) if pending.seq <= *seq => {
                        out.push(pending.tx.clone());
                        *next += 1;
                    }
                    _ => break,
                }
            }
        }
        out
    }

    /// Drops every transaction whose nonce is now used, and the given rejected ones.
    pub fn prune(&mut self, next_nonce: impl Fn(&Address) -> u64, rejected: &[B256]) {
        for hash in rejected {
            self.remove(hash);
        }
        let mut used = Vec::new();
        for (sender, queue) in &self.by_sender {
            let next = next_nonce(sender);
            used.extend(queue.txs.range(..next).map(|(_, p)| p.tx.hash));
        }
        for hash in &used {
            self.remove(hash);
        }
    }

    /// Drops the transactions that wait behind a nonce gap and arrived at least
    /// [`MempoolLimits::gapped_ttl_secs`] before `now` (block time); returns their ids. Without
    /// this, a sender could park transactions that never run and never leave.
    pub fn expire(&mut self, next_nonce: impl Fn(&Address) -> u64, now: Timestamp) -> Vec<B256> {
        let ttl = self.limits.gapped_ttl_secs;
        let mut expired = Vec::new();
        for (sender, queue) in &self.by_sender {
            let mut expected = next_nonce(sender);
            for (nonce, pending) in &queue.txs {
                if *nonce == expected {
                    expected += 1;
                    continue;
                }
                if now.saturating_sub(pending.arrived) >= ttl {
                    expired.push(pending.tx.hash);
                }
            }
        }
        for hash in &expired {
            self.remove(hash);
        }
        expired
    }
}
