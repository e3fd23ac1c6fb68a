//! The market: the node's off-chain orderbook (`market_` namespace). Owners publish signed
//! orders; requesters (and `xiebao run`) ask for the best compatible ones. What is left of an
//! order comes from the chain at query time, so consumed and cancelled orders leave the book
//! by themselves.

use alloy_primitives::{Address, B256, Bytes};
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::types::ErrorObjectOwned;
use serde::{Deserialize, Serialize};
use xiebao_types::Tag;
use xiebao_types::order::OrderKind;

/// Which orders to list. Every field set narrows the answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderQuery {
    /// Only this kind (all kinds when absent).
    #[serde(default)]
    pub kind: Option<OrderKind>,
    /// Only orders for this app (app orders; request orders naming it).
    #[serde(default)]
    pub app: Option<Address>,
    /// Only orders for this dataset.
    #[serde(default)]
    pub dataset: Option<Address>,
    /// Only orders for this workerpool.
    #[serde(default)]
    pub workerpool: Option<Address>,
    /// Only orders signed by this account.
    #[serde(default)]
    pub signer: Option<Address>,
    /// Workerpool orders offering at least these tag bits; app and dataset orders requiring
    /// no more than them.
    #[serde(default)]
    pub tag: Option<Tag>,
    /// Workerpool (and request) orders of this category.
    #[serde(default)]
    pub category: Option<u64>,
    /// Workerpool orders accepting at least this trust.
    #[serde(default)]
    pub min_trust: Option<u64>,
    /// Orders with at least this much volume left.
    #[serde(default)]
    pub min_volume: Option<u64>,
    /// A requester who must pass the orders' restrictions (`requesterrestrict`).
    #[serde(default)]
    pub requester: Option<Address>,
    /// Most entries returned (default and maximum 100).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One order in the book.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookEntry {
    /// The order's EIP-712 hash.
    pub hash: B256,
    /// Its kind.
    pub kind: OrderKind,
    /// The order, in iExec's JSON form (with its `sign`).
    pub order: serde_json::Value,
    /// Who signed it (the entry's owner, or the requester).
    pub signer: Address,
    /// Price per task, nRLC (0 for request orders: see their max prices).
    pub price: String,
    /// Volume not yet consumed on chain.
    pub remaining: String,
    /// Where the workerpool's scheduler answers requesters (`pool_` API), when its owner said.
    #[serde(default)]
    pub scheduler: Option<String>,
    /// The chain height when it was published.
    pub published_at: u64,
}

/// The market API.
#[rpc(server, client, namespace = "market")]
pub trait MarketApi {
    /// Adds a signed order to the book; returns its hash. The signature must be the owner's
    /// (app, dataset, workerpool owner, or the requester) or the order presigned on chain, and
    /// some volume must be left.
    #[method(name = "publish")]
    async fn publish(
        &self,
        order: serde_json::Value,
        scheduler: Option<String>,
    ) -> Result<B256, ErrorObjectOwned>;

    /// Removes an order from the book. `signature` is its signer's EIP-712 signature of the
    /// order's *close* operation (the same message an on-chain relayed cancel carries), so
    /// only the signer can unpublish; the order stays valid on chain until cancelled there.
    #[method(name = "unpublish")]
    async fn unpublish(&self, hash: B256, signature: Bytes) -> Result<bool, ErrorObjectOwned>;

    /// Orders matching `query`, cheapest first (then oldest), with volume left.
    #[method(name = "orders")]
    async fn orders(&self, query: OrderQuery) -> Result<Vec<BookEntry>, ErrorObjectOwned>;

    /// One order by hash (also when fully consumed: `remaining` says so).
    #[method(name = "order")]
    async fn order(&self, hash: B256) -> Result<Option<BookEntry>, ErrorObjectOwned>;
}
