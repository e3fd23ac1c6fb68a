//! The node's orderbook behind the `market_` API: orders checked on the way in (signature by
//! the owner the chain names, volume left, size, a quota per signer weighted by what it
//! holds), kept in memory parsed and in an append-only journal beside the node's data, and
//! filtered against the committed state on the way out (consumed and cancelled orders drop).
//!
//! Nothing here holds the chain's lock for long: signatures are recovered before it is taken,
//! and a query takes it once per chunk of candidates, so a query flood cannot stall blocks.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
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
/// Most orders one signer holding [`FUNDED_HOLDINGS`] or more may have in the book.
const PER_SIGNER_MAX: usize = 1_000;
/// Most orders one signer holding nothing may have in the book.
const PER_EMPTY_SIGNER_MAX: usize = 8;
/// Holdings (free + frozen) from which a signer gets the full quota; it grows linearly below.
const FUNDED_HOLDINGS: xiebao_types::Nrlc = xiebao_types::Nrlc::rlc(1);
/// Largest order accepted, bytes of JSON (a request order's `params` included).
const ORDER_SIZE_MAX_BYTES: usize = 16 << 10;
/// Most entries one query returns.
const QUERY_MAX: usize = 100;
/// Candidates checked against the committed state per hold of the chain's lock.
const QUERY_CHUNK: usize = 256;

/// An order in the book, with what is derived from it once.
#[derive(Clone, Debug)]
struct Stored {
    order: AnyOrder,
    json: serde_json::Value,
    signer: Address,
    scheduler: Option<String>,
    published_at: u64,
}

/// One line of the book's journal.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Record {
    /// An order published (or published again).
    Put {
        hash: B256,
        order: serde_json::Value,
        signer: Address,
        scheduler: Option<String>,
        published_at: u64,
    },
    /// An order unpublished.
    Remove { hash: B256 },
}

/// The book in memory.
#[derive(Default)]
struct Book {
    orders: BTreeMap<B256, Arc<Stored>>,
    per_signer: BTreeMap<Address, usize>,
    /// Lines in the journal file (compacted when far above the book's size).
    journal_lines: usize,
}

impl Book {
    fn put(&mut self, hash: B256, stored: Stored) {
        let signer = stored.signer;
        if let Some(old) = self.orders.insert(hash, Arc::new(stored)) {
            self.forget(old.signer);
        }
        *self.per_signer.entry(signer).or_default() += 1;
    }

    fn remove(&mut self, hash: &B256) -> Option<Arc<Stored>> {
        let old = self.orders.remove(hash)?;
        self.forget(old.signer);
        Some(old)
    }

    fn forget(&mut self, signer: Address) {
        if let Some(count) = self.per_signer.get_mut(&signer) {
            *count -= 1;
            if *count == 0 {
                self.per_signer.remove(&signer);
            }
        }
    }
}

/// The orderbook of one node.
pub(crate) struct Market {
    chain: Arc<Chain>,
    book: Mutex<Book>,
    path: PathBuf,
}

/// The quota of orders of a signer holding `holdings`.
fn signer_quota(holdings: xiebao_types::Nrlc) -> usize {
    let funded = FUNDED_HOLDINGS.0;
    let extra = (PER_SIGNER_MAX - PER_EMPTY_SIGNER_MAX) as u128 * holdings.0.min(funded) / funded;
    PER_EMPTY_SIGNER_MAX + extra as usize
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
    /// The book of `chain`, kept in the journal at `path` (replayed if it exists; a line that
    /// does not parse, such as a torn last write, is skipped).
    pub(crate) fn open(chain: Arc<Chain>, path: PathBuf) -> Self {
        let mut book = Book::default();
        let old = path.with_extension("json");
        if !path.exists() && old.exists() {
            Self::migrate(&old, &path);
        }
        if let Ok(file) = std::fs::File::open(&path) {
            for line in std::io::BufReader::new(file).lines() {
                let Ok(line) = line else { break };
                book.journal_lines += 1;
                match serde_json::from_str::<Record>(&line) {
                    Ok(Record::Put { hash, order, signer, scheduler, published_at }) => {
                        let Ok(parsed) = AnyOrder::from_json(&order.to_string(), None) else {
                            continue;
                        };
                        let stored =
                            Stored { order: parsed, json: order, signer, scheduler, published_at };
                        book.put(hash, stored);
                    }
                    Ok(Record::Remove { hash }) => {
                        book.remove(&hash);
                    }
                    Err(_) => {}
                }
            }
        }
        Self { chain, book: Mutex::new(book), path }
    }

    /// Turns a book written whole by an earlier version (`market.json`: one JSON object of
    /// orders by hash) into a journal at `path`.
    fn migrate(old: &std::path::Path, path: &std::path::Path) {
        #[derive(Deserialize)]
        struct Old {
            order: serde_json::Value,
            signer: Address,
            scheduler: Option<String>,
            published_at: u64,
        }
        let Ok(orders) = std::fs::read(old).map_err(|e| e.to_string()).and_then(|b| {
            serde_json::from_slice::<BTreeMap<B256, Old>>(&b).map_err(|e| e.to_string())
        }) else {
            return;
        };
        let mut lines = String::new();
        for (hash, o) in orders {
            let record = Record::Put {
                hash,
                order: o.order,
                signer: o.signer,
                scheduler: o.scheduler,
                published_at: o.published_at,
            };
            if let Ok(line) = serde_json::to_string(&record) {
                lines.push_str(&line);
                lines.push('\n');
            }
        }
        if std::fs::write(path, lines).is_ok() {
            let _ = std::fs::remove_file(old);
        }
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().expect("the book's lock is never poisoned")
    }

    /// Appends `record` to the journal; rewrites the journal from the book when it holds
    /// more than twice as many lines as the book has orders (and at least 1,024).
    fn save(&self, book: &mut Book, record: &Record) {
        let appended =
            serde_json::to_string(record).map_err(std::io::Error::other).and_then(|line| {
                let mut file =
                    std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
                file.write_all(format!("{line}\n").as_bytes())
            });
        if let Err(e) = appended {
            tracing::warn!("the market book could not be saved to {}: {e}", self.path.display());
            return;
        }
        book.journal_lines += 1;
        if book.journal_lines > 1_024 && book.journal_lines > 2 * book.orders.len() {
            self.compact(book);
        }
    }

    /// Rewrites the journal with one line per order (a temporary file renamed over it).
    fn compact(&self, book: &mut Book) {
        let temporary = self.path.with_extension("tmp");
        let written = (|| {
            let mut out = std::io::BufWriter::new(std::fs::File::create(&temporary)?);
            for (hash, stored) in &book.orders {
                let record = Record::Put {
                    hash: *hash,
                    order: stored.json.clone(),
                    signer: stored.signer,
                    scheduler: stored.scheduler.clone(),
                    published_at: stored.published_at,
                };
                serde_json::to_writer(&mut out, &record)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
            std::fs::rename(&temporary, &self.path)
        })();
        match written {
            Ok(()) => book.journal_lines = book.orders.len(),
            Err(e) => tracing::warn!("the market book could not be compacted: {e}"),
        }
    }

    fn entry(state: &State, hash: B256, stored: &Stored) -> BookEntry {
        let remaining = volume_of(&stored.order).saturating_sub(state.consumed_of(&hash));
        BookEntry {
            hash,
            kind: stored.order.kind(),
            price: price_of(&stored.order).to_string(),
            remaining: remaining.to_string(),
            order: stored.json.clone(),
            signer: stored.signer,
            scheduler: stored.scheduler.clone(),
            published_at: stored.published_at,
        }
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
        let text = order.to_string();
        if text.len() > ORDER_SIZE_MAX_BYTES {
            return Err(bad(format!(
                "the order is {} bytes of JSON, above the book's limit of {ORDER_SIZE_MAX_BYTES}",
                text.len()
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
        let parsed =
            AnyOrder::from_json(&text, None).map_err(|e| bad(format!("not an order: {e}")))?;
        // The signature is recovered before the chain's lock is taken.
        let domain = self.chain.domain();
        let hash = parsed.hash(&domain);
        let recovered = parsed.recover_signer(&domain);
        let committed = self.chain.committed();
        let state = &committed.state;
        let signer = match recovered {
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
        let account = state.account(&signer);
        if let AnyOrder::Request(o) = &parsed {
            // A request in the book must be payable for at least one task: the book is not
            // free storage for keys that hold nothing.
            let task_max = o
                .appmaxprice
                .saturating_add(o.datasetmaxprice)
                .saturating_add(o.workerpoolmaxprice);
            let free = U256::from(account.free.0);
            if free < task_max.max(U256::from(1)) {
                return Err(bad(format!(
                    "request order {hash}: {signer} has {} nRLC free, less than one task at its maximum prices ({task_max} nRLC, at least 1); deposit first",
                    account.free.0
                )));
            }
        }
        let quota =
            signer_quota(xiebao_types::Nrlc(account.free.0.saturating_add(account.frozen.0)));
        let height = committed.head.height;
        drop(committed);
        let mut book = self.book();
        if !book.orders.contains_key(&hash) {
            if book.orders.len() >= BOOK_MAX {
                return Err(bad(format!("the book is full ({BOOK_MAX} orders)")));
            }
            let mine = book.per_signer.get(&signer).copied().unwrap_or(0);
            if mine >= quota {
                return Err(bad(format!(
                    "{signer} already has {mine} orders in the book, its quota for what it holds (at most {quota}; {PER_SIGNER_MAX} from {FUNDED_HOLDINGS} held); unpublish some first"
                )));
            }
        }
        let json = parsed.to_json();
        let record = Record::Put {
            hash,
            order: json.clone(),
            signer,
            scheduler: scheduler.clone(),
            published_at: height,
        };
        book.put(hash, Stored { order: parsed, json, signer, scheduler, published_at: height });
        self.save(&mut book, &record);
        Ok(hash)
    }

    async fn unpublish(&self, hash: B256, signature: Bytes) -> Result<bool, ErrorObjectOwned> {
        let domain = self.chain.domain();
        let Some(stored) = self.book().orders.get(&hash).cloned() else { return Ok(false) };
        let operation = stored.order.operation_hash(&domain, OrderOperation::Close);
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
        let mut book = self.book();
        if book.remove(&hash).is_none() {
            return Ok(false);
        }
        self.save(&mut book, &Record::Remove { hash });
        Ok(true)
    }

    async fn orders(&self, query: OrderQuery) -> Result<Vec<BookEntry>, ErrorObjectOwned> {
        let limit = query.limit.unwrap_or(QUERY_MAX).min(QUERY_MAX);
        let min_volume = U256::from(query.min_volume.unwrap_or(1).max(1));
        // Candidates by what needs no state, under the book's lock only.
        let candidates: Vec<(B256, Arc<Stored>)> = {
            let book = self.book();
            book.orders
                .iter()
                .filter(|(_, s)| {
                    query.kind.is_none_or(|k| k == s.order.kind())
                        && query.signer.is_none_or(|w| w == s.signer)
                })
                .map(|(hash, stored)| (*hash, Arc::clone(stored)))
                .collect()
        };
        let mut found: Vec<(U256, u64, BookEntry)> = Vec::new();
        for chunk in candidates.chunks(QUERY_CHUNK) {
            let committed = self.chain.committed();
            let state = &committed.state;
            for (hash, stored) in chunk {
                if !fits(state, &stored.order, stored.signer, &query) {
                    continue;
                }
                if volume_of(&stored.order).saturating_sub(state.consumed_of(hash)) < min_volume {
                    continue;
                }
                let entry = Self::entry(state, *hash, stored);
                found.push((price_of(&stored.order), stored.published_at, entry));
            }
        }
        found.sort_by_key(|a| (a.0, a.1, a.2.hash));
        Ok(found.into_iter().take(limit).map(|(_, _, e)| e).collect())
    }

    async fn order(&self, hash: B256) -> Result<Option<BookEntry>, ErrorObjectOwned> {
        let stored = self.book().orders.get(&hash).cloned();
        let committed = self.chain.committed();
        Ok(stored.map(|s| Self::entry(&committed.state, hash, &s)))
    }
}
