//! Pending transactions: per-sender nonce order, deduplication, quotas and fair selection.
//!
//! Admission is checked here (size, nonce window, quotas); whether a transaction applies is
//! checked when a block is proposed, and a failing one is dropped with its error.

use std::collections::BTreeMap;

use alloy_primitives::{Address, B256};
use xiebao_protocol::VerifiedTx;

/// Bounds on what the mempool holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MempoolLimits {
    /// Most pending transactions in all.
    pub txs_max: usize,
    /// Most pending transactions per sender.
    pub txs_per_sender_max: usize,
    /// How far ahead of its account's nonce a sender may queue.
    pub nonce_gap_max: u64,
    /// Largest encoded transaction accepted, bytes.
    pub tx_size_max_bytes: usize,
}

impl Default for MempoolLimits {
    fn default() -> Self {
        Self {
            txs_max: 100_000,
            txs_per_sender_max: 1_024,
            nonce_gap_max: 1_024,
            tx_size_max_bytes: xiebao_types::tx::TX_SIZE_MAX_BYTES,
        }
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
    /// The sender's quota is used up.
    #[error("{sender} already has {count} pending transactions, the maximum per sender")]
    SenderQuota {
        /// The sender.
        sender: Address,
        /// Its pending count.
        count: usize,
    },
    /// The pool is full and the sender has no fewer pending transactions than any other.
    #[error("mempool is full ({count} transactions); retry after the next block")]
    Full {
        /// Pending count.
        count: usize,
    },
}

#[derive(Clone, Debug)]
struct Pending {
    tx: VerifiedTx,
    /// Arrival order.
    seq: u64,
}

/// Pending transactions, by sender and nonce.
#[derive(Clone, Debug, Default)]
pub struct Mempool {
    limits: MempoolLimits,
    by_sender: BTreeMap<Address, BTreeMap<u64, Pending>>,
    by_hash: BTreeMap<B256, (Address, u64)>,
    /// Arrival order → transaction id.
    by_arrival: BTreeMap<u64, B256>,
    next_seq: u64,
}

impl Mempool {
    /// An empty mempool.
    pub fn new(limits: MempoolLimits) -> Self {
        Self { limits, ..Self::default() }
    }

    /// Number of pending transactions.
    pub fn len(&self) -> usize {
        self.by_hash.len()
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
                Some((*hash, self.by_sender[sender][nonce].tx.clone()))
            })
            .collect()
    }

    /// Is `hash` pending?
    pub fn contains(&self, hash: &B256) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Admits `tx` (encoded in `size` bytes) given its sender's next nonce; returns the ids
    /// of transactions evicted to make room.
    ///
    /// # Errors
    /// [`MempoolError`] naming the limit and the values.
    pub fn insert(
        &mut self,
        tx: VerifiedTx,
        size: usize,
        next_nonce: u64,
    ) -> Result<Vec<B256>, MempoolError> {
        let sender = tx.sender;
        let nonce = tx.tx.nonce;
        if self.by_hash.contains_key(&tx.hash) {
            return Err(MempoolError::AlreadyKnown { hash: tx.hash });
        }
        if size > self.limits.tx_size_max_bytes {
            return Err(MempoolError::TooLarge { size, max: self.limits.tx_size_max_bytes });
        }
        if nonce < next_nonce {
            return Err(MempoolError::NonceTooLow { sender, next: next_nonce, got: nonce });
        }
        if nonce - next_nonce > self.limits.nonce_gap_max {
            return Err(MempoolError::NonceTooFar {
                sender,
                next: next_nonce,
                got: nonce,
                gap: self.limits.nonce_gap_max,
            });
        }
        let queue_len = self.by_sender.get(&sender).map_or(0, BTreeMap::len);
        if let Some(pending) = self.by_sender.get(&sender).and_then(|q| q.get(&nonce)) {
            return Err(MempoolError::NonceTaken { sender, nonce, pending: pending.tx.hash });
        }
        if queue_len >= self.limits.txs_per_sender_max {
            return Err(MempoolError::SenderQuota { sender, count: queue_len });
        }
        let mut evicted = Vec::new();
        if self.len() >= self.limits.txs_max {
            // Fairness: evict the newest transaction of the sender with the most pending,
            // if that sender has strictly more than the newcomer would.
            let (largest, count) = self
                .by_sender
                .iter()
                .map(|(s, q)| (*s, q.len()))
                .max_by_key(|(s, len)| (*len, std::cmp::Reverse(*s)))
                .expect("a full pool has senders");
            if count <= queue_len + 1 {
                return Err(MempoolError::Full { count: self.len() });
            }
            let queue = self.by_sender.get_mut(&largest).expect("just found");
            let (_, dropped) = queue.pop_last().expect("non-empty");
            self.by_hash.remove(&dropped.tx.hash);
            self.by_arrival.remove(&dropped.seq);
            evicted.push(dropped.tx.hash);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_hash.insert(tx.hash, (sender, nonce));
        self.by_arrival.insert(seq, tx.hash);
        self.by_sender.entry(sender).or_default().insert(nonce, Pending { tx, seq });
        Ok(evicted)
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
            let queue = &self.by_sender[&sender];
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
            if let Some((sender, nonce)) = self.by_hash.remove(hash)
                && let Some(queue) = self.by_sender.get_mut(&sender)
                && let Some(pending) = queue.remove(&nonce)
            {
                self.by_arrival.remove(&pending.seq);
            }
        }
        let (by_hash, by_arrival) = (&mut self.by_hash, &mut self.by_arrival);
        self.by_sender.retain(|sender, queue| {
            let next = next_nonce(sender);
            while let Some(entry) = queue.first_entry() {
                if *entry.key() >= next {
                    break;
                }
                let pending = entry.remove();
                by_hash.remove(&pending.tx.hash);
                by_arrival.remove(&pending.seq);
            }
            !queue.is_empty()
        });
    }
}
