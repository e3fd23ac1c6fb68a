//! Talk to a node: the typed RPC client, and a [`Sender`] that turns calls into signed,
//! batched transactions and tells each caller how its own call ended.
//!
//! A [`Sender`] owns one account's nonce. Callers hand it single calls from any task; it packs
//! whatever is waiting into one transaction (up to [`SenderOptions::max_calls`]), signs it with
//! the next nonce, submits it and waits until it is final. A batch is atomic on chain, so when
//! one call fails the node names it (`call #i … failed`): that caller gets the error and the
//! other calls go out again in the next transaction. One transaction is in flight at a time,
//! so a failure never leaves a nonce gap behind it.
//!
//! ```no_run
//! # async fn demo(key: xiebao_types::SecretKey) -> Result<(), Box<dyn std::error::Error>> {
//! use xiebao_sdk::client::{Node, Sender, SenderOptions};
//! use xiebao_types::{Nrlc, tx::Transfer};
//! let node = Node::connect("http://127.0.0.1:8545").await?;
//! let sender = Sender::spawn(node.clone(), key, SenderOptions::default());
//! let to = alloy_primitives::Address::repeat_byte(1);
//! let done = sender.send(Transfer { to, amount: Nrlc::rlc(1) }.into()).await?;
//! println!("final in block {}", done.height);
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use alloy_primitives::B256;
use tokio::sync::{mpsc, oneshot};
use xiebao_protocol::Event;
use xiebao_rpc::jsonrpsee;
use xiebao_rpc::jsonrpsee::http_client::HttpClient;
use xiebao_rpc::{ChainStatus, TxStatus, XiebaoApiClient, codes};
use xiebao_types::SecretKey;
use xiebao_types::order::Domain;
use xiebao_types::tx::{Call, Transaction};

/// How often a submitted transaction's status is asked for.
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// How long a sender waits before trying again when the node's mempool refused it for now.
const BUSY_RETRY: Duration = Duration::from_millis(200);

/// A node reached over HTTP JSON-RPC, with the chain's fixed parameters.
#[derive(Clone, Debug)]
pub struct Node {
    /// The RPC client.
    pub rpc: HttpClient,
    /// The node's URL (`http://…`).
    pub url: String,
    /// The chain id.
    pub chain_id: u64,
    /// The EIP-712 domain orders are signed under.
    pub domain: Domain,
}

/// Reaching the node failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The URL is unusable or the node does not answer.
    #[error("node {url}: {detail}")]
    Unreachable {
        /// The URL.
        url: String,
        /// What failed.
        detail: String,
    },
}

impl Node {
    /// Connects to the node at `url` and reads the chain's id and order domain.
    ///
    /// # Errors
    /// [`NodeError::Unreachable`] when the node does not answer.
    pub async fn connect(url: &str) -> Result<Self, NodeError> {
        let unreachable = |e: &dyn std::fmt::Display| NodeError::Unreachable {
            url: url.to_owned(),
            detail: e.to_string(),
        };
        let rpc = xiebao_rpc::http_client(url).map_err(|e| unreachable(&e))?;
        let status: ChainStatus = rpc.chain_status().await.map_err(|e| unreachable(&e))?;
        Ok(Self {
            rpc,
            url: url.to_owned(),
            chain_id: status.chain_id,
            domain: Domain::new(status.chain_id, status.verifying_contract),
        })
    }

    /// The node's WebSocket URL (same host and port).
    pub fn ws_url(&self) -> String {
        ws_url(&self.url)
    }
}

/// `http://h:p` → `ws://h:p` (and `https` → `wss`).
pub fn ws_url(http: &str) -> String {
    if let Some(rest) = http.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = http.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        http.to_owned()
    }
}

/// How a [`Sender`] batches.
#[derive(Clone, Copy, Debug)]
pub struct SenderOptions {
    /// Most calls in one transaction (at least 1; 1 sends one call per transaction).
    pub max_calls: usize,
    /// How long to wait for a transaction to become final before asking again from scratch.
    pub final_timeout: Duration,
}

impl SenderOptions {
    /// The default [`SenderOptions::max_calls`].
    pub const DEFAULT_MAX_CALLS: usize = 256;
}

impl Default for SenderOptions {
    fn default() -> Self {
        Self { max_calls: Self::DEFAULT_MAX_CALLS, final_timeout: Duration::from_secs(30) }
    }
}

/// A call that was applied, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The transaction that carried it.
    pub tx: B256,
    /// Its block.
    pub height: u64,
    /// Every event of that transaction (the batch's, not only this call's).
    pub events: Vec<Event>,
}

/// A call did not apply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The chain refused this call: the protocol's reason, naming the rule and values.
    #[error("{call} refused: {reason}")]
    Refused {
        /// The call's name.
        call: &'static str,
        /// Why.
        reason: String,
    },
    /// The node could not be reached or refused the transaction itself.
    #[error("node: {0}")]
    Node(String),
    /// The sender stopped.
    #[error("the transaction sender stopped")]
    Closed,
}

struct Job {
    call: Call,
    done: oneshot::Sender<Result<Applied, SendError>>,
}

/// One account's transaction sender; cheap to clone, shared by all of its tasks.
#[derive(Clone, Debug)]
pub struct Sender {
    jobs: mpsc::UnboundedSender<Job>,
    address: alloy_primitives::Address,
}

impl Sender {
    /// Starts the sender's loop for `key` on the current tokio runtime.
    ///
    /// # Panics
    /// If `options.max_calls` is 0 (a transaction carries at least one call).
    pub fn spawn(node: Node, key: SecretKey, options: SenderOptions) -> Self {
        assert!(options.max_calls >= 1, "a transaction carries at least one call (max_calls 0)");
        let (jobs, queue) = mpsc::unbounded_channel();
        let address = key.address();
        tokio::spawn(run(node, key, options, queue));
        Self { jobs, address }
    }

    /// The account that signs.
    pub fn address(&self) -> alloy_primitives::Address {
        self.address
    }

    /// Sends `call` (batched with others) and waits until it is final or refused.
    ///
    /// # Errors
    /// [`SendError`]: refused by the protocol (with the reason), node failure, or stopped.
    pub async fn send(&self, call: Call) -> Result<Applied, SendError> {
        let (done, result) = oneshot::channel();
        self.jobs.send(Job { call, done }).map_err(|_| SendError::Closed)?;
        result.await.map_err(|_| SendError::Closed)?
    }

    /// Sends every call (batched) and waits for all; results in the same order.
    pub async fn send_all(&self, calls: Vec<Call>) -> Vec<Result<Applied, SendError>> {
        let mut waits = Vec::with_capacity(calls.len());
        for call in calls {
            let (done, result) = oneshot::channel();
            if self.jobs.send(Job { call, done }).is_err() {
                waits.push(None);
            } else {
                waits.push(Some(result));
            }
        }
        let mut results = Vec::with_capacity(waits.len());
        for wait in waits {
            results.push(match wait {
                Some(result) => result.await.unwrap_or(Err(SendError::Closed)),
                None => Err(SendError::Closed),
            });
        }
        results
    }
}

/// Which call of a batch a rejection names (`call #i (Name) failed: …`).
fn failed_index(error: &str) -> Option<usize> {
    let rest = error.strip_prefix("call #")?;
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

/// The reason inside a batch rejection (`call #i (Name) failed: reason` → `reason`).
fn inner_reason(error: &str) -> &str {
    error.split_once(" failed: ").map_or(error, |(_, reason)| reason)
}

async fn run(
    node: Node,
    key: SecretKey,
    options: SenderOptions,
    mut queue: mpsc::UnboundedReceiver<Job>,
) {
    let mut waiting: VecDeque<Job> = VecDeque::new();
    let mut nonce: Option<u64> = None;
    let mut busy_since: Option<tokio::time::Instant> = None;
    loop {
        if waiting.is_empty() {
            match queue.recv().await {
                Some(job) => waiting.push_back(job),
                None => return,
            }
        }
        while waiting.len() < options.max_calls {
            match queue.try_recv() {
                Ok(job) => waiting.push_back(job),
                Err(_) => break,
            }
        }
        waiting.retain(|job| !job.done.is_closed());
        if waiting.is_empty() {
            continue;
        }
        let take = waiting.len().min(options.max_calls);
        let batch: Vec<Job> = waiting.drain(..take).collect();
        let next = match nonce {
            Some(n) => n,
            None => match node.rpc.account(key.address()).await {
                Ok(account) => account.nonce,
                Err(e) => {
                    fail_all(batch, &SendError::Node(e.to_string()));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let tx = Transaction {
            chain_id: node.chain_id,
            nonce: next,
            calls: batch.iter().map(|job| job.call.clone()).collect(),
        }
        .sign(&key);
        let outcome = submit_and_wait(&node, &tx, options.final_timeout).await;
        if !matches!(outcome, Outcome::Busy(_)) {
            busy_since = None;
        }
        match outcome {
            Outcome::Applied(applied) => {
                nonce = Some(next + 1);
                for job in batch {
                    let _ = job.done.send(Ok(applied.clone()));
                }
            }
            Outcome::Rejected(error) => {
                // A rejected transaction does not use its nonce.
                nonce = Some(next);
                let index = if batch.len() > 1 { failed_index(&error) } else { Some(0) };
                match index {
                    Some(i) if i < batch.len() => {
                        let mut rest = batch;
                        let failed = rest.remove(i);
                        let reason = if rest.is_empty() && i == 0 {
                            error.clone()
                        } else {
                            inner_reason(&error).to_owned()
                        };
                        let _ = failed
                            .done
                            .send(Err(SendError::Refused { call: failed.call.name(), reason }));
                        for job in rest.into_iter().rev() {
                            waiting.push_front(job);
                        }
                    }
                    _ => fail_all(batch, &SendError::Node(error)),
                }
            }
            Outcome::Busy(error) => {
                // Another process sending with this key (two `xiebao run` at once), or a full
                // quota: wait for a block, re-read the nonce and try again, for a while.
                nonce = None;
                let since = *busy_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() > options.final_timeout {
                    busy_since = None;
                    fail_all(batch, &SendError::Node(format!("the node kept refusing: {error}")));
                } else {
                    for job in batch.into_iter().rev() {
                        waiting.push_front(job);
                    }
                    tokio::time::sleep(BUSY_RETRY).await;
                }
                continue;
            }
            Outcome::Unknown(error) => {
                // Resynchronize the nonce from the chain and let the callers decide.
                nonce = None;
                fail_all(batch, &SendError::Node(error));
            }
        }
    }
}

fn fail_all(batch: Vec<Job>, error: &SendError) {
    for job in batch {
        let _ = job.done.send(Err(error.clone()));
    }
}

enum Outcome {
    Applied(Applied),
    Rejected(String),
    /// The node's mempool refused it for now: its nonce is taken by another sender of this
    /// key (maybe with the very same transaction: identical calls at one nonce sign to the
    /// same bytes, so "already pending" is not proof that it is ours), already used, or a
    /// quota is full. Worth retrying with a fresh nonce.
    Busy(String),
    Unknown(String),
}

async fn submit_and_wait(
    node: &Node,
    tx: &xiebao_types::SignedTransaction,
    timeout: Duration,
) -> Outcome {
    let hash = match node.rpc.send_raw_transaction(tx.encode_to_vec().into()).await {
        Ok(hash) => hash,
        Err(jsonrpsee::core::client::Error::Call(e)) if e.code() == codes::TX_MEMPOOL => {
            return Outcome::Busy(e.message().to_owned());
        }
        Err(e) => return Outcome::Unknown(format!("submitting: {e}")),
    };
    let start = tokio::time::Instant::now();
    loop {
        match node.rpc.transaction(hash).await {
            Ok(TxStatus::Included { height, events, .. }) => {
                return Outcome::Applied(Applied { tx: hash, height, events });
            }
            Ok(TxStatus::Rejected { error }) => return Outcome::Rejected(error),
            Ok(TxStatus::Pending | TxStatus::Unknown) => {}
            Err(e) => return Outcome::Unknown(format!("following {hash}: {e}")),
        }
        if start.elapsed() > timeout {
            return Outcome::Unknown(format!(
                "transaction {hash} not final after {}s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_rejections_name_their_call() {
        let error = "call #12 (Finalize) failed: task 0x01 is not revealing";
        assert_eq!(failed_index(error), Some(12));
        assert_eq!(inner_reason(error), "task 0x01 is not revealing");
        assert_eq!(failed_index("nonce 3 is used"), None);
        assert_eq!(ws_url("http://127.0.0.1:9"), "ws://127.0.0.1:9");
        assert_eq!(ws_url("https://a:1"), "wss://a:1");
    }
}
