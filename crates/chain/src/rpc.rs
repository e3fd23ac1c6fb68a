//! The node's JSON-RPC server (HTTP and WebSocket on one port).

use std::net::SocketAddr;
use std::sync::Arc;

use alloy_primitives::{Address, B256, Bytes};
use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::server::{PendingSubscriptionSink, PingConfig, ServerConfig, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;
use tokio::sync::broadcast;
use xiebao_rpc::{
    Account, App, BlockView, Bridge, Category, ChainStatus, ConnectionLimits, Contribution,
    Dataset, Deal, DepositClaim, Entries, EventFilter, Membership, Task, TxStatus, ValidatorView,
    WithdrawalView, Workerpool, XiebaoApiServer, codes, error,
};

use crate::app::{Chain, SubmitError, block_view, decode_receipt};

/// Threads of the RPC server's own runtime.
const RPC_WORKER_THREADS: usize = 1;
/// Most connections at once.
const CONNECTIONS_MAX: u32 = 1_000;
/// Most connections at once from one IP address (so one client cannot take them all).
const CONNECTIONS_PER_IP_MAX: usize = 64;
/// A connection with no traffic for this long is closed.
const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
/// The server pings WebSocket clients this often; three unanswered pings close it.
const WS_PING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(20);
/// Largest request body, bytes (a transaction is at most 1 MiB, hex doubles it).
const REQUEST_SIZE_MAX_BYTES: u32 = 4 << 20;
/// Largest response, bytes (a block view of a full block is well below it).
const RESPONSE_SIZE_MAX_BYTES: u32 = 16 << 20;
/// Subscriptions one WebSocket connection may hold.
const SUBSCRIPTIONS_PER_CONNECTION_MAX: u32 = 64;
/// Calls one batch request may carry.
const BATCH_CALLS_MAX: u32 = 256;
/// A connection must send its first request within this time.
const FIRST_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

struct Rpc {
    chain: Arc<Chain>,
}

fn internal(e: impl std::fmt::Display) -> ErrorObjectOwned {
    error(codes::INTERNAL, e.to_string())
}

impl Rpc {
    /// A committed task (see [`Chain::committed_task`]).
    fn committed_task(&self, id: &B256) -> Result<Option<Task>, ErrorObjectOwned> {
        self.chain.committed_task(id).map_err(internal)
    }
}

#[jsonrpsee::core::async_trait]
impl XiebaoApiServer for Rpc {
    async fn chain_status(&self) -> Result<ChainStatus, ErrorObjectOwned> {
        let committed = self.chain.committed();
        let tip = self.chain.finalized_tip().max(committed.head.height);
        let view = |m: xiebao_protocol::EpochMember| ValidatorView {
            address: m.address,
            consensus_key: m.consensus_key,
            p2p: m.p2p,
        };
        let epoch = committed.state.epoch_of(committed.head.height + 1);
        Ok(ChainStatus {
            chain_id: committed.head.chain_id,
            verifying_contract: committed.state.domain().verifying_contract,
            height: committed.head.height,
            head: committed.head.hash(),
            timestamp: committed.head.timestamp,
            state_root: committed.head.state_root,
            validators: committed.state.current_validators().into_iter().map(view).collect(),
            epoch,
            epoch_length: committed.state.globals().epoch_length,
            epoch_validators: committed
                .state
                .epoch_validators(epoch)
                .map(|set| set.members.iter().cloned().map(view).collect())
                .unwrap_or_default(),
            mempool_txs: self.chain.mempool_len() as u64,
            finalized_tip: tip,
            syncing: tip > committed.head.height,
            node_key: self.chain.node_key(),
        })
    }

    async fn send_raw_transaction(&self, tx: Bytes) -> Result<B256, ErrorObjectOwned> {
        self.chain.clone().submit_verified(tx.to_vec()).await.map_err(|e| {
            let code = match &e {
                SubmitError::Malformed(_) => codes::TX_MALFORMED,
                SubmitError::WrongChain { .. } => codes::TX_WRONG_CHAIN,
                SubmitError::Signature(_) => codes::TX_SIGNATURE,
                SubmitError::Mempool(_) | SubmitError::Busy { .. } => codes::TX_MEMPOOL,
            };
            error(code, e.to_string())
        })
    }

    async fn transaction(&self, hash: B256) -> Result<TxStatus, ErrorObjectOwned> {
        if let Some(bytes) = self.chain.store().receipt(&hash).map_err(internal)? {
            let (height, index, events) =
                decode_receipt(&bytes).ok_or_else(|| internal("stored receipt is corrupt"))?;
            return Ok(TxStatus::Included { height, index, events });
        }
        if self.chain.is_pending(&hash) {
            return Ok(TxStatus::Pending);
        }
        if let Some(error) = self.chain.rejection(&hash) {
            return Ok(TxStatus::Rejected { error });
        }
        Ok(TxStatus::Unknown)
    }

    async fn account(&self, address: Address) -> Result<Account, ErrorObjectOwned> {
        Ok(self.chain.committed().state.account(&address))
    }

    async fn block(&self, height: u64) -> Result<Option<BlockView>, ErrorObjectOwned> {
        let block = self.chain.store().block(height).map_err(internal)?;
        Ok(block.map(|b| block_view(&b)))
    }

    async fn app(&self, address: Address) -> Result<Option<App>, ErrorObjectOwned> {
        Ok(self.chain.committed().state.apps().get(&address).cloned())
    }

    async fn dataset(&self, address: Address) -> Result<Option<Dataset>, ErrorObjectOwned> {
        Ok(self.chain.committed().state.datasets().get(&address).cloned())
    }

    async fn workerpool(&self, address: Address) -> Result<Option<Workerpool>, ErrorObjectOwned> {
        Ok(self.chain.committed().state.workerpools().get(&address).cloned())
    }

    async fn deal(&self, id: B256) -> Result<Option<Deal>, ErrorObjectOwned> {
        Ok(self.chain.committed().state.deals().get(&id).cloned())
    }

    async fn task(&self, id: B256) -> Result<Option<Task>, ErrorObjectOwned> {
        self.committed_task(&id)
    }

    async fn contribution(
        &self,
        task: B256,
        worker: Address,
    ) -> Result<Option<Contribution>, ErrorObjectOwned> {
        Ok(self.committed_task(&task)?.and_then(|t| t.contribution(&worker).cloned()))
    }

    async fn score(&self, worker: Address) -> Result<u64, ErrorObjectOwned> {
        Ok(self.chain.committed().state.score(&worker))
    }

    async fn order_consumed(&self, order_hash: B256) -> Result<String, ErrorObjectOwned> {
        Ok(self.chain.committed().state.consumed_of(&order_hash).to_string())
    }

    async fn order_presigned(&self, order_hash: B256) -> Result<bool, ErrorObjectOwned> {
        Ok(self.chain.committed().state.presigned().contains_key(&order_hash))
    }

    async fn membership(&self, worker: Address) -> Result<Option<Membership>, ErrorObjectOwned> {
        Ok(self.chain.committed().state.memberships().get(&worker).cloned())
    }

    async fn categories(&self) -> Result<Vec<(u64, Category)>, ErrorObjectOwned> {
        Ok(self
            .chain
            .committed()
            .state
            .categories()
            .iter()
            .map(|(id, c)| (*id, c.clone()))
            .collect())
    }

    async fn entries(
        &self,
        owner: Option<Address>,
        limit: Option<usize>,
    ) -> Result<Entries, ErrorObjectOwned> {
        let limit = limit.unwrap_or(ENTRIES_MAX).min(ENTRIES_MAX);
        let mine = |o: &Address| owner.is_none_or(|w| w == *o);
        Ok(select_entries(
            &self.chain.committed().state,
            limit,
            |a| mine(&a.owner),
            |d| mine(&d.owner),
            |w| mine(&w.owner),
        ))
    }

    async fn find_by_name(&self, name: String) -> Result<Entries, ErrorObjectOwned> {
        if name.len() > xiebao_rpc::NAME_BYTES_MAX {
            return Err(error(
                codes::BAD_REQUEST,
                format!(
                    "a name is at most {} bytes, got {}",
                    xiebao_rpc::NAME_BYTES_MAX,
                    name.len()
                ),
            ));
        }
        Ok(select_entries(
            &self.chain.committed().state,
            xiebao_rpc::NAME_MATCHES_MAX,
            |a| a.name == name,
            |d| d.name == name,
            |w| w.description == name,
        ))
    }

    async fn bridge(&self) -> Result<Option<Bridge>, ErrorObjectOwned> {
        Ok(self.chain.committed().state.bridge_settings().cloned())
    }

    async fn deposit(&self, id: u64) -> Result<Vec<DepositClaim>, ErrorObjectOwned> {
        Ok(self.chain.committed().state.deposit(id).cloned().collect())
    }

    async fn withdrawal(&self, id: u64) -> Result<Option<WithdrawalView>, ErrorObjectOwned> {
        let committed = self.chain.committed();
        let state = &committed.state;
        let (Some(withdrawal), Some(digest), Some(bridge)) =
            (state.withdrawals().get(&id), state.release_digest(id), state.bridge_settings())
        else {
            return Ok(None);
        };
        Ok(Some(WithdrawalView {
            id,
            withdrawal: withdrawal.clone(),
            digest,
            threshold: bridge.threshold,
        }))
    }

    async fn subscribe_heads(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        let receiver = self.chain.subscribe_heads();
        forward(pending, receiver, |_| true).await
    }

    async fn subscribe_events(
        &self,
        pending: PendingSubscriptionSink,
        filter: EventFilter,
    ) -> SubscriptionResult {
        let receiver = self.chain.subscribe_events();
        forward(pending, receiver, move |e: &xiebao_rpc::EventView| filter.matches(&e.event)).await
    }
}

/// Forwards broadcast items to a subscriber until either side closes. A subscriber that
/// falls more than the channel's capacity behind is told so and dropped.
async fn forward<T: Clone + serde::Serialize>(
    pending: PendingSubscriptionSink,
    mut receiver: broadcast::Receiver<T>,
    keep: impl Fn(&T) -> bool,
) -> SubscriptionResult {
    let sink = pending.accept().await?;
    loop {
        tokio::select! {
            _ = sink.closed() => return Ok(()),
            item = receiver.recv() => match item {
                Ok(item) => {
                    if !keep(&item) {
                        continue;
                    }
                    let message = serde_json::value::to_raw_value(&item)?;
                    if sink.send(message).await.is_err() {
                        return Ok(());
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    return Err(format!("subscriber fell {n} items behind").into());
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
        }
    }
}

/// Most registry entries of each kind one `getEntries` returns.
const ENTRIES_MAX: usize = 1_000;

/// The first `limit` registry entries of each kind that pass their filter, oldest address
/// order.
fn select_entries(
    state: &xiebao_protocol::State,
    limit: usize,
    app: impl Fn(&xiebao_protocol::App) -> bool,
    dataset: impl Fn(&xiebao_protocol::Dataset) -> bool,
    workerpool: impl Fn(&xiebao_protocol::Workerpool) -> bool,
) -> Entries {
    Entries {
        apps: state
            .apps()
            .iter()
            .filter(|(_, a)| app(a))
            .take(limit)
            .map(|(k, v)| (*k, v.clone()))
            .collect(),
        datasets: state
            .datasets()
            .iter()
            .filter(|(_, d)| dataset(d))
            .take(limit)
            .map(|(k, v)| (*k, v.clone()))
            .collect(),
        workerpools: state
            .workerpools()
            .iter()
            .filter(|(_, w)| workerpool(w))
            .take(limit)
            .map(|(k, v)| (*k, v.clone()))
            .collect(),
    }
}

/// Starts the RPC server on `listen`, answering browsers from the origins `cors` allows;
/// returns its bound address and handle.
///
/// # Errors
/// If the address cannot be bound.
pub async fn serve(
    chain: Arc<Chain>,
    listen: SocketAddr,
    market_file: std::path::PathBuf,
    cors: xiebao_rpc::Cors,
) -> std::io::Result<(SocketAddr, ServerHandle)> {
    let config = ServerConfig::builder()
        .max_connections(CONNECTIONS_MAX)
        .max_request_body_size(REQUEST_SIZE_MAX_BYTES)
        .max_response_body_size(RESPONSE_SIZE_MAX_BYTES)
        .max_subscriptions_per_connection(SUBSCRIPTIONS_PER_CONNECTION_MAX)
        .set_batch_request_config(jsonrpsee::server::BatchRequestConfig::Limit(BATCH_CALLS_MAX))
        .set_first_request_timeout(Some(FIRST_REQUEST_TIMEOUT))
        .enable_ws_ping(
            PingConfig::new()
                .ping_interval(WS_PING_INTERVAL)
                .inactive_limit(WS_PING_INTERVAL * 3)
                .max_failures(3),
        )
        .build();
    // The server runs on a runtime of its own: parsing requests and running handlers
    // competes with consensus for CPU time only, never for consensus's worker threads.
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(RPC_WORKER_THREADS)
        .thread_name("xiebao-rpc")
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("xiebao-rpc".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
    let _entered = handle.enter();
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let market = crate::market::Market::open(chain.clone(), market_file);
    let chain_for_eth = chain.clone();
    let mut module = Rpc { chain }.into_rpc();
    module
        .merge(xiebao_rpc::MarketApiServer::into_rpc(market))
        .expect("the xiebao_ and market_ namespaces do not overlap");
    module
        .merge(xiebao_rpc::eth::EthApiServer::into_rpc(crate::eth::Eth { chain: chain_for_eth }))
        .expect("the eth_, net_ and web3_ methods do not overlap the others");
    let limits = ConnectionLimits {
        total_max: CONNECTIONS_MAX as usize,
        per_ip_max: CONNECTIONS_PER_IP_MAX,
        idle_timeout: IDLE_TIMEOUT,
    };
    xiebao_rpc::serve::serve(listener, config, module, limits, &cors)
}
