//! Define the Xiebao node's JSON-RPC API: methods, request and response types, and a typed client.
//!
//! Every method lives in the `xiebao_` namespace. The same trait generates the node's server
//! side (`XiebaoApiServer`) and the typed client every other component uses
//! (`XiebaoApiClient`, over HTTP or WebSocket), so the two cannot drift apart.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use xiebao_rpc::{XiebaoApiClient, http_client};
//! let client = http_client("http://127.0.0.1:8545")?;
//! let status = client.chain_status().await?;
//! println!("height {}", status.height);
//! # Ok(()) }
//! ```

use alloy_primitives::{Address, B256, Bytes};
use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::types::ErrorObjectOwned;
use serde::{Deserialize, Serialize};
use xiebao_protocol::Event;
pub use xiebao_protocol::{
    Account, App, Bridge, Category, Contribution, Dataset, Deal, DepositClaim, Membership,
    ReleaseSignature, Task, Withdrawal, Workerpool,
};
use xiebao_types::Timestamp;

pub use jsonrpsee;

pub mod eth;
pub mod market;
pub mod pool;
pub mod serve;
pub use market::{BookEntry, MarketApiClient, MarketApiServer, OrderQuery};
pub use serve::{ConnectionLimits, Cors};

/// Error codes the node answers with (JSON-RPC "server error" range).
pub mod codes {
    /// The transaction's bytes do not decode (size, canonical encoding, call count).
    pub const TX_MALFORMED: i32 = -32_001;
    /// The transaction's signature is unusable.
    pub const TX_SIGNATURE: i32 = -32_002;
    /// The transaction is for another chain.
    pub const TX_WRONG_CHAIN: i32 = -32_003;
    /// The mempool refused it (nonce, duplicate, quota, size).
    pub const TX_MEMPOOL: i32 = -32_004;
    /// A request parameter is out of range.
    pub const BAD_REQUEST: i32 = -32_005;
    /// The node failed internally (store error).
    pub const INTERNAL: i32 = -32_010;
}

/// Builds an error object with `code` and a message.
pub fn error(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), None::<()>)
}

/// A consensus validator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorView {
    /// Its Ethereum address (bridge signatures, block proposer field).
    pub address: Address,
    /// Its ed25519 consensus key.
    pub consensus_key: B256,
    /// Where peers reach it (`IP:PORT`), empty when the nodes' configurations say.
    #[serde(default)]
    pub p2p: String,
}

/// What `xiebao_chainStatus` reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainStatus {
    /// The chain id.
    pub chain_id: u64,
    /// The EIP-712 `verifyingContract` orders on this chain are signed for.
    pub verifying_contract: Address,
    /// Height of the last finalized and executed block.
    pub height: u64,
    /// Its hash.
    pub head: B256,
    /// Its proposer's timestamp, seconds.
    pub timestamp: Timestamp,
    /// The state root after it.
    pub state_root: B256,
    /// The validators in the state now: the next epoch's set, unless changed again before
    /// this epoch ends.
    pub validators: Vec<ValidatorView>,
    /// The consensus epoch of the next block.
    #[serde(default)]
    pub epoch: u64,
    /// Blocks per epoch.
    #[serde(default)]
    pub epoch_length: u64,
    /// The validators voting in `epoch`.
    #[serde(default)]
    pub epoch_validators: Vec<ValidatorView>,
    /// Transactions waiting in this node's mempool.
    pub mempool_txs: u64,
    /// Highest finalized height this node has heard of (≥ `height` while it catches up).
    pub finalized_tip: u64,
    /// Whether this node is still catching up (`finalized_tip > height`).
    pub syncing: bool,
    /// This node's consensus key.
    pub node_key: B256,
}

/// A block as the RPC shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockView {
    /// Height.
    pub height: u64,
    /// Hash of the header.
    pub hash: B256,
    /// Parent hash.
    pub parent: B256,
    /// Proposer's timestamp, seconds.
    pub timestamp: Timestamp,
    /// Proposer's address.
    pub proposer: Address,
    /// State root after the block.
    pub state_root: B256,
    /// Transaction ids, in order.
    pub txs: Vec<B256>,
    /// Calls carried by all its transactions.
    pub calls: u64,
}

/// Where a transaction stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
// Externally tagged: serde cannot buffer the u128 amounts inside events for an internally
// tagged enum.
#[serde(rename_all = "snake_case")]
pub enum TxStatus {
    /// In this node's mempool.
    Pending,
    /// In a finalized block.
    Included {
        /// Block height.
        height: u64,
        /// Position in the block.
        index: u32,
        /// What it did.
        events: Vec<Event>,
    },
    /// Dropped by a proposer because it fails.
    Rejected {
        /// Why (the protocol's error, naming the rule and values).
        error: String,
    },
    /// Never seen by this node.
    Unknown,
}

/// An event with where it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    /// Block height.
    pub height: u64,
    /// Transaction id (zero for end-of-block timers).
    pub tx: B256,
    /// The event.
    pub event: Event,
}

/// Which events a subscription wants; empty fields match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFilter {
    /// Only events that mention one of these addresses.
    #[serde(default)]
    pub addresses: Vec<Address>,
    /// Only events that mention one of these ids (deal, task, order hashes).
    #[serde(default)]
    pub ids: Vec<B256>,
    /// Only events of these types (the event's variant name, e.g. `TaskFinalize`).
    #[serde(default)]
    pub types: Vec<String>,
}

/// The node's JSON-RPC API.
#[rpc(server, client, namespace = "xiebao")]
pub trait XiebaoApi {
    /// Chain id, head, validators, mempool size and sync state.
    #[method(name = "chainStatus")]
    async fn chain_status(&self) -> Result<ChainStatus, ErrorObjectOwned>;

    /// Admits a signed transaction (canonical RLP bytes) into the mempool and relays it to
    /// the validators; returns its id, or the precise reason it was refused.
    #[method(name = "sendRawTransaction")]
    async fn send_raw_transaction(&self, tx: Bytes) -> Result<B256, ErrorObjectOwned>;

    /// Where a transaction stands.
    #[method(name = "getTransaction")]
    async fn transaction(&self, hash: B256) -> Result<TxStatus, ErrorObjectOwned>;

    /// An account's nonce and balances (zero for an unknown account).
    #[method(name = "getAccount")]
    async fn account(&self, address: Address) -> Result<Account, ErrorObjectOwned>;

    /// A finalized block by height.
    #[method(name = "getBlock")]
    async fn block(&self, height: u64) -> Result<Option<BlockView>, ErrorObjectOwned>;

    /// A registered app.
    #[method(name = "getApp")]
    async fn app(&self, address: Address) -> Result<Option<App>, ErrorObjectOwned>;

    /// A registered dataset.
    #[method(name = "getDataset")]
    async fn dataset(&self, address: Address) -> Result<Option<Dataset>, ErrorObjectOwned>;

    /// A registered workerpool.
    #[method(name = "getWorkerpool")]
    async fn workerpool(&self, address: Address) -> Result<Option<Workerpool>, ErrorObjectOwned>;

    /// A deal.
    #[method(name = "getDeal")]
    async fn deal(&self, id: B256) -> Result<Option<Deal>, ErrorObjectOwned>;

    /// A task.
    #[method(name = "getTask")]
    async fn task(&self, id: B256) -> Result<Option<Task>, ErrorObjectOwned>;

    /// A worker's contribution to a task.
    #[method(name = "getContribution")]
    async fn contribution(
        &self,
        task: B256,
        worker: Address,
    ) -> Result<Option<Contribution>, ErrorObjectOwned>;

    /// A worker's score.
    #[method(name = "getScore")]
    async fn score(&self, worker: Address) -> Result<u64, ErrorObjectOwned>;

    /// How much of an order (by EIP-712 hash) is consumed.
    #[method(name = "getOrderConsumed")]
    async fn order_consumed(&self, order_hash: B256) -> Result<String, ErrorObjectOwned>;

    /// Whether an order (by EIP-712 hash) is presigned.
    #[method(name = "getOrderPresigned")]
    async fn order_presigned(&self, order_hash: B256) -> Result<bool, ErrorObjectOwned>;

    /// A worker's workerpool membership and stake.
    #[method(name = "getMembership")]
    async fn membership(&self, worker: Address) -> Result<Option<Membership>, ErrorObjectOwned>;

    /// Every category, by id.
    #[method(name = "getCategories")]
    async fn categories(&self) -> Result<Vec<(u64, Category)>, ErrorObjectOwned>;

    /// Registry entries, oldest address order, optionally only those `owner` holds (at most
    /// `limit`, default and maximum 1,000 of each kind).
    #[method(name = "getEntries")]
    async fn entries(
        &self,
        owner: Option<Address>,
        limit: Option<usize>,
    ) -> Result<Entries, ErrorObjectOwned>;

    /// Registry entries whose name (apps, datasets) or description (workerpools) is exactly
    /// `name` (at most [`NAME_MATCHES_MAX`] of each kind, oldest address order; a name is at
    /// most [`NAME_BYTES_MAX`] bytes).
    #[method(name = "findByName")]
    async fn find_by_name(&self, name: String) -> Result<Entries, ErrorObjectOwned>;

    /// The bridge settings and totals (`None` until the authority sets the bridge).
    #[method(name = "getBridge")]
    async fn bridge(&self) -> Result<Option<Bridge>, ErrorObjectOwned>;

    /// Every version validators attested of mainchain deposit `id` (normally one; empty when
    /// no validator attested it yet).
    #[method(name = "getDeposit")]
    async fn deposit(&self, id: u64) -> Result<Vec<DepositClaim>, ErrorObjectOwned>;

    /// A withdrawal with its release digest and the signatures collected so far.
    #[method(name = "getWithdrawal")]
    async fn withdrawal(&self, id: u64) -> Result<Option<WithdrawalView>, ErrorObjectOwned>;

    /// Every finalized block from now on.
    #[subscription(name = "subscribeHeads" => "head", unsubscribe = "unsubscribeHeads", item = BlockView)]
    async fn subscribe_heads(&self) -> SubscriptionResult;

    /// Every event matching `filter` from now on.
    #[subscription(name = "subscribeEvents" => "event", unsubscribe = "unsubscribeEvents", item = EventView)]
    async fn subscribe_events(&self, filter: EventFilter) -> SubscriptionResult;
}

/// Registry entries as `getEntries` returns them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entries {
    /// Apps by address.
    pub apps: Vec<(Address, App)>,
    /// Datasets by address.
    pub datasets: Vec<(Address, Dataset)>,
    /// Workerpools by address.
    pub workerpools: Vec<(Address, Workerpool)>,
}

/// Most entries of each kind `findByName` returns.
pub const NAME_MATCHES_MAX: usize = 16;
/// Longest name `findByName` takes, bytes.
pub const NAME_BYTES_MAX: usize = 256;

/// A withdrawal as `getWithdrawal` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithdrawalView {
    /// The id.
    pub id: u64,
    /// The withdrawal and its signatures.
    pub withdrawal: Withdrawal,
    /// The digest the validators sign and the mainchain contract checks.
    pub digest: B256,
    /// Signatures the contract needs (the chain's threshold).
    pub threshold: u64,
}

/// An HTTP client for the node at `url`.
///
/// # Errors
/// If the URL is not a usable HTTP endpoint.
pub fn http_client(
    url: &str,
) -> Result<jsonrpsee::http_client::HttpClient, jsonrpsee::core::client::Error> {
    jsonrpsee::http_client::HttpClientBuilder::default()
        .request_timeout(std::time::Duration::from_secs(30))
        .build(url)
}

/// A WebSocket client (needed for subscriptions) for the node at `url` (`ws://…`).
///
/// # Errors
/// If the connection fails.
pub async fn ws_client(
    url: &str,
) -> Result<jsonrpsee::ws_client::WsClient, jsonrpsee::core::client::Error> {
    jsonrpsee::ws_client::WsClientBuilder::default().build(url).await
}

impl EventFilter {
    /// Whether `event` passes the filter.
    pub fn matches(&self, event: &Event) -> bool {
        let json = serde_json::to_value(event).unwrap_or_default();
        let Some((kind, body)) = json.as_object().and_then(|o| o.iter().next()) else {
            return false;
        };
        if !self.types.is_empty() && !self.types.iter().any(|t| t == kind) {
            return false;
        }
        let mentions = |needle: String| body_mentions(body, &needle);
        if !self.addresses.is_empty()
            && !self.addresses.iter().any(|a| mentions(a.to_string().to_lowercase()))
        {
            return false;
        }
        if !self.ids.is_empty() && !self.ids.iter().any(|id| mentions(id.to_string())) {
            return false;
        }
        true
    }
}

fn body_mentions(value: &serde_json::Value, needle: &str) -> bool {
    match value {
        serde_json::Value::String(s) => s.to_lowercase() == needle,
        serde_json::Value::Array(items) => items.iter().any(|v| body_mentions(v, needle)),
        serde_json::Value::Object(map) => map.values().any(|v| body_mentions(v, needle)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xiebao_types::Nrlc;

    fn transfer() -> Event {
        Event::Transfer {
            from: Address::repeat_byte(1),
            to: Address::repeat_byte(2),
            amount: Nrlc(5),
        }
    }

    #[test]
    fn tx_status_round_trips_through_json_with_large_amounts() {
        let status = TxStatus::Included {
            height: 3,
            index: 1,
            events: vec![Event::Transfer {
                from: Address::repeat_byte(1),
                to: Address::repeat_byte(2),
                amount: Nrlc(u128::MAX),
            }],
        };
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(serde_json::from_str::<TxStatus>(&json).unwrap(), status);
        let json = serde_json::to_string(&TxStatus::Pending).unwrap();
        assert_eq!(serde_json::from_str::<TxStatus>(&json).unwrap(), TxStatus::Pending);
    }

    #[test]
    fn filter_matches_by_type_address_and_id() {
        let event = transfer();
        assert!(EventFilter::default().matches(&event));
        let by_type = EventFilter { types: vec!["Transfer".into()], ..Default::default() };
        assert!(by_type.matches(&event));
        let other_type = EventFilter { types: vec!["Lock".into()], ..Default::default() };
        assert!(!other_type.matches(&event));
        let by_address =
            EventFilter { addresses: vec![Address::repeat_byte(2)], ..Default::default() };
        assert!(by_address.matches(&event));
        let other_address =
            EventFilter { addresses: vec![Address::repeat_byte(3)], ..Default::default() };
        assert!(!other_address.matches(&event));
        let by_id = EventFilter { ids: vec![B256::repeat_byte(9)], ..Default::default() };
        assert!(!by_id.matches(&event));
    }
}
