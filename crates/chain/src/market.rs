//! The node's orderbook behind the `market_` API: orders checked on the way in (signature by
//! the owner the chain names, volume left), kept in a file beside the node's data, and
//! filtered against the committed state on the way out (consumed and cancelled orders drop).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use alloy_primitives::{Address, B256, Bytes, U256};
use jsonrpsee::types::ErrorObjectOwned;
use serde::{Deserialize, Serialize};
use xiebao_protocol::State;
use xiebao_rpc::{BookEntry, MarketApiServer, OrderQuery, codes, error};
use xiebao_types::crypto;
use xiebao_types::order::{AnyOrder, OrderOperation};

use crate::app::Chain;

/// Most orders the book holds.
const BOOK_MAX: usize = 100_000;
/// Most orders one signer may have in the book.
const PER_SIGNER_MAX: usize = 1_000;
/// Most entries one query returns.
const QUERY_MAX: usize = 100;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Stored {
    order: serde_json::Value,
    signer: Address,
    scheduler: Option<String>,
    published_at: u64,
}

/// The orderbook of one node.
pub(crate) struct Market {
    chain: Arc<Chain>,
    book: Mutex<BTreeMap<B256, Stored>>,
    path: PathBuf,
}

fn bad(message: impl Into<String>) -> ErrorObjectOwned {
    error(codes::BAD_REQUEST, message)
}

/// Whether `who` passes a restriction: none, the address itself, or a member of that group.
fn passes(state: &State, restrict: Address, who: Address) -> bool {
    restrict.is_zero() || restrict == who || state.group_members().contains_key(&(restrict, who))
}

fn price_of(order: &AnyOrder) -> U256 {
    match order {
        AnyOrder::App(o) => o.appprice,
        AnyOrder::Dataset(o) => o.datasetprice,
        AnyOrder::Workerpool(o) => o.workerpoolprice,
        AnyOrder::Request(_) => U256::ZERO,
    }
}

fn volume_of(order: &AnyOrder) -> U256 {
    match order {
        AnyOrder::App(o) => o.volume,
        AnyOrder::Dataset(o) => o.volume,
        AnyOrder::Workerpool(o) => o.volume,
        AnyOrder::Request(o) => o.volume,
    }
}

impl Market {
    /// The book of `chain`, kept in `path` (read back if it exists).
    pub(crate) fn open(chain: Arc<Chain>, path: PathBuf) -> Self {
        let book = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Self { chain, book: Mutex::new(book), path }
    }

    fn book(&self) -> std::sync::MutexGuard<'_, BTreeMap<B256, Stored>> {
        self.book.lock().expect("the book's lock is never poisoned")
    }

    /// Writes the book (a temporary file renamed over the old one).
    fn save(&self, book: &BTreeMap<B256, Stored>) {
        let temporary = self.path.with_extension("json.tmp");
        let written = serde_json::to_vec(book)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&temporary, bytes))
            .and_then(|()| std::fs::rename(&temporary, &self.path));
        if let Err(e) = written {
            tracing::warn!("the market book could not be saved to {}: {e}", self.path.display());
        }
    }

    fn entry(&self, state: &State, hash: B256, stored: &Stored) -> Option<BookEntry> {
        let order = AnyOrder::from_json(&stored.order.to_string(), None).ok()?;
        let remaining = volume_of(&order).saturating_sub(state.consumed_of(&hash));
        Some(BookEntry {
            hash,
            kind: order.kind(),
            price: price_of(&order).to_string(),
            remaining: remaining.to_string(),
            order: stored.order.clone(),
            signer: stored.signer,
            scheduler: stored.scheduler.clone(),
            published_at: stored.published_at,
        })
    }
}

/// Whether `order` fits `query` (besides volume, checked by the caller).
fn fits(state: &State, order: &AnyOrder, signer: Address, query: &OrderQuery) -> bool {
    if query.kind.is_some_and(|k| k != order.kind()) || query.signer.is_some_and(|s| s != signer) {
        return false;
    }
    let category = query.category.map(U256::from);
    let same = |want: Option<Address>, have: Address| want.is_none_or(|w| w == have);
    match order {
        AnyOrder::App(o) => {
            same(query.app, o.app)
                && query.tag.is_none_or(|t| o.tag.is_subset_of(t))
                && query.requester.is_none_or(|r| passes(state, o.requesterrestrict, r))
                && query.workerpool.is_none_or(|w| passes(state, o.workerpoolrestrict, w))
        }
        AnyOrder::Dataset(o) => {
            same(query.dataset, o.dataset)
                && query.tag.is_none_or(|t| o.tag.is_subset_of(t))
                && query.requester.is_none_or(|r| passes(state, o.requesterrestrict, r))
                && query.app.is_none_or(|a| passes(state, o.apprestrict, a))
        }
        AnyOrder::Workerpool(o) => {
            same(query.workerpool, o.workerpool)
                && query.tag.is_none_or(|t| t.is_subset_of(o.tag))
                && category.is_none_or(|c| c == o.category)
                && query.min_trust.is_none_or(|t| U256::from(t) <= o.trust)
                && query.requester.is_none_or(|r| passes(state, o.requesterrestrict, r))
                && query.app.is_none_or(|a| passes(state, o.apprestrict, a))
        }
        AnyOrder::Request(o) => {
            same(query.app, o.app)
                && query.dataset.is_none_or(|d| d == o.dataset)
                && query.workerpool.is_none_or(|w| o.workerpool.is_zero() || o.workerpool == w)
                && category.is_none_or(|c| c == o.category)
        }
    }
}

#[jsonrpsee::core::async_trait]
impl MarketApiServer for Market {
    async fn publish(
        &self,
        order: serde_json::Value,
        scheduler: Option<String>,
    ) -> Result<B256, ErrorObjectOwned> {
        let parsed = AnyOrder::from_json(&order.to_string(), None)
            .map_err(|e| bad(format!("not an order: {e}")))?;
        let committed = self.chain.committed();
        let state = &committed.state;
        let domain = state.domain();
        let hash = parsed.hash(&domain);
        let signer = match parsed.recover_signer(&domain) {
            Ok(signer) => signer,
            Err(e) => match state.presigned().get(&hash) {
                Some(signer) => *signer,
                None => {
                    return Err(bad(format!(
                        "order {hash}: its signature is unusable ({e}) and it is not presigned on chain"
                    )));
                }
            },
        };
        let (what, owner) = match &parsed {
            AnyOrder::App(o) => {
                (format!("app {}", o.app), state.apps().get(&o.app).map(|a| a.owner))
            }
            AnyOrder::Dataset(o) => (
                format!("dataset {}", o.dataset),
                state.datasets().get(&o.dataset).map(|d| d.owner),
            ),
            AnyOrder::Workerpool(o) => (
                format!("workerpool {}", o.workerpool),
                state.workerpools().get(&o.workerpool).map(|w| w.owner),
            ),
            AnyOrder::Request(o) => (format!("requester {}", o.requester), Some(o.requester)),
        };
        let owner = owner.ok_or_else(|| bad(format!("order {hash}: {what} is not registered")))?;
        if owner != signer {
            return Err(bad(format!(
                "order {hash} is signed by {signer}, but {what} belongs to {owner}: only its owner may publish its orders"
            )));
        }
        let volume = volume_of(&parsed);
        let consumed = state.consumed_of(&hash);
        if consumed >= volume {
            return Err(bad(format!(
                "order {hash} has no volume left on chain (volume {volume}, consumed {consumed}; cancelled orders count as consumed)"
            )));
        }
        if let Some(url) = &scheduler
            && (url.len() > 256
                || !(url.starts_with("ws://")
                    || url.starts_with("wss://")
                    || url.starts_with("http")))
        {
            return Err(bad(format!(
                "scheduler URL {url:?}: expected ws://, wss:// or http(s):// and at most 256 bytes"
            )));
        }
        let height = committed.head.height;
        drop(committed);
        let mut book = self.book();
        if !book.contains_key(&hash) {
            if book.len() >= BOOK_MAX {
                return Err(bad(format!("the book is full ({BOOK_MAX} orders)")));
            }
            let mine = book.values().filter(|s| s.signer == signer).count();
            if mine >= PER_SIGNER_MAX {
                return Err(bad(format!(
                    "{signer} already has {mine} orders in the book (at most {PER_SIGNER_MAX}); unpublish some first"
                )));
            }
        }
        book.insert(
            hash,
            Stored { order: parsed.to_json(), signer, scheduler, published_at: height },
        );
        self.save(&book);
        Ok(hash)
    }

    async fn unpublish(&self, hash: B256, signature: Bytes) -> Result<bool, ErrorObjectOwned> {
        let domain = self.chain.committed().state.domain();
        let mut book = self.book();
        let Some(stored) = book.get(&hash) else { return Ok(false) };
        let order = AnyOrder::from_json(&stored.order.to_string(), None)
            .map_err(|e| error(codes::INTERNAL, format!("stored order unreadable: {e}")))?;
        let operation = order.operation_hash(&domain, OrderOperation::Close);
        match crypto::recover(&operation, &signature) {
            Ok(who) if who == stored.signer => {}
            Ok(who) => {
                return Err(bad(format!(
                    "the close signature is by {who}; only the order's signer {} may unpublish it",
                    stored.signer
                )));
            }
            Err(e) => return Err(bad(format!("the close signature is unusable: {e}"))),
        }
        book.remove(&hash);
        self.save(&book);
        Ok(true)
    }

    async fn orders(&self, query: OrderQuery) -> Result<Vec<BookEntry>, ErrorObjectOwned> {
        let limit = query.limit.unwrap_or(QUERY_MAX).min(QUERY_MAX);
        let min_volume = U256::from(query.min_volume.unwrap_or(1).max(1));
        let book = self.book().clone();
        let committed = self.chain.committed();
        let state = &committed.state;
        let mut found: Vec<(U256, u64, BookEntry)> = Vec::new();
        for (hash, stored) in &book {
            let Ok(order) = AnyOrder::from_json(&stored.order.to_string(), None) else { continue };
            if !fits(state, &order, stored.signer, &query) {
                continue;
            }
            if volume_of(&order).saturating_sub(state.consumed_of(hash)) < min_volume {
                continue;
            }
            if let Some(entry) = self.entry(state, *hash, stored) {
                found.push((price_of(&order), stored.published_at, entry));
            }
        }
        found.sort_by_key(|a| (a.0, a.1, a.2.hash));
        Ok(found.into_iter().take(limit).map(|(_, _, e)| e).collect())
    }

    async fn order(&self, hash: B256) -> Result<Option<BookEntry>, ErrorObjectOwned> {
        let stored = self.book().get(&hash).cloned();
        let committed = self.chain.committed();
        Ok(stored.and_then(|s| self.entry(&committed.state, hash, &s)))
    }
}
