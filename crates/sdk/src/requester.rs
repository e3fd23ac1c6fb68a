//! The requester's flow behind `xiebao run`, for any front end: choose the cheapest compatible
//! app, dataset and workerpool orders in the market ([`plan`]), sign the request order and
//! match them into a deal ([`Plan::start`]), then follow the bag and download every result as
//! soon as its task completes ([`Run::follow`]).
//!
//! Nothing here prints: progress goes to a [`BagObserver`], results to the caller.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, Bytes, U256};
use xiebao_protocol::Event;
use xiebao_rpc::jsonrpsee::core::ClientError;
use xiebao_rpc::jsonrpsee::core::client::Subscription;
use xiebao_rpc::pool::{PoolApiClient as _, TaskState, TaskView};
use xiebao_rpc::{BookEntry, EventFilter, EventView, MarketApiClient, OrderQuery, XiebaoApiClient};
use xiebao_types::order::{AnyOrder, DatasetOrder, OrderKind, RequestOrder, SignedOrder as _};
use xiebao_types::order::{AppOrder, WorkerpoolOrder};
use xiebao_types::tx::MatchOrders;
use xiebao_types::{Nrlc, SecretKey, Tag, ids};

use crate::client::{Node, SendError, Sender, SenderOptions};
use crate::download::DownloadError;

/// Why the flow stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No order in the market satisfies the request.
    #[error("no {what} order in the market at {market} satisfies {requirement}")]
    NoOrder {
        /// `app`, `dataset` or `workerpool`.
        what: &'static str,
        /// The node whose market was asked.
        market: String,
        /// What was asked for, in words.
        requirement: String,
    },
    /// The market returned something that is not an order of the kind asked for.
    #[error("the market returned an unreadable order: {0}")]
    UnreadableOrder(String),
    /// The deal's price does not fit in an amount.
    #[error("the deal's price overflows")]
    PriceOverflow,
    /// The requester cannot pay for the deal.
    #[error(
        "{requester} has {free} free; {volume} tasks at {per_task} each need {total} (missing {missing}). Get RLC with `xiebao bridge deposit --amount {missing_rlc}` or from an account that has some: `xiebao account transfer --to {requester} --amount {missing_rlc} --key-file PAYER.key`",
        free = format_rlc(*free),
        per_task = format_rlc(*per_task),
        total = format_rlc(*total),
        missing = format_rlc(*missing),
        missing_rlc = missing.to_rlc_string(),
    )]
    Funds {
        /// The requester.
        requester: Address,
        /// What it holds, free.
        free: Nrlc,
        /// Tasks.
        volume: u64,
        /// Price of one task.
        per_task: Nrlc,
        /// Price of the deal.
        total: Nrlc,
        /// What it lacks.
        missing: Nrlc,
    },
    /// The chain refused the match.
    #[error("matching the orders: {0}")]
    Match(#[source] SendError),
    /// The match made no deal, or the deal cannot be read back.
    #[error("{0}")]
    NoDeal(&'static str),
    /// A node query failed.
    #[error("{what}: {source}")]
    Rpc {
        /// What was asked.
        what: String,
        /// The client's error.
        source: ClientError,
    },
    /// The node ended the event subscription.
    #[error("the node closed the event stream")]
    EventsClosed,
    /// The event subscription delivered something unreadable.
    #[error("the event stream: {0}")]
    Events(String),
    /// A task's record is missing on chain although its result was announced.
    #[error("task missing")]
    TaskMissing,
    /// A result could not be fetched or was refused.
    #[error(transparent)]
    Download(#[from] DownloadError),
    /// No registry entry of that kind has that name.
    #[error("no {kind} named {name:?} on the chain at {node}{known}")]
    UnknownName {
        /// `app`, `dataset` or `workerpool`.
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The node asked.
        node: String,
        /// `; its apps include: …` (or nothing on an empty registry).
        known: String,
    },
    /// Several entries have that name: the address must be given.
    #[error(
        "{count} {kind}s are named {name:?}: give the address of the one you mean ({addresses})"
    )]
    AmbiguousName {
        /// `app`, `dataset` or `workerpool`.
        kind: &'static str,
        /// The name.
        name: String,
        /// How many (up to the node's limit).
        count: usize,
        /// Their addresses.
        addresses: String,
    },
    /// Following the bag took longer than allowed; the deal goes on.
    #[error(
        "{done} of {total} tasks done after {timeout_s} s; the deal goes on: follow it with `xiebao deal show {deal}`"
    )]
    Timeout {
        /// Tasks done.
        done: usize,
        /// Tasks in the bag.
        total: usize,
        /// The limit, seconds.
        timeout_s: u64,
        /// The deal.
        deal: B256,
    },
}

impl RunError {
    fn rpc(what: impl Into<String>) -> impl FnOnce(ClientError) -> Self {
        let what = what.into();
        move |source| Self::Rpc { what, source }
    }
}

/// `1500000000` nRLC → `1.5 RLC`.
pub fn format_rlc(amount: Nrlc) -> String {
    format!("{} RLC", amount.to_rlc_string())
}

/// What a requester asks for.
#[derive(Clone, Debug)]
pub struct RunRequest {
    /// The app.
    pub app: Address,
    /// A dataset for every task.
    pub dataset: Option<Address>,
    /// Only this workerpool (else the cheapest compatible one).
    pub workerpool: Option<Address>,
    /// Number of tasks (at least 1).
    pub volume: u64,
    /// The app's arguments (every task gets them).
    pub args: String,
    /// Input file URLs; with one per task, task i reads file i.
    pub input_files: Vec<String>,
    /// Replication level (PoCo trust); 0 counts as 1.
    pub trust: u64,
    /// Required worker features.
    pub tag: Tag,
    /// Category (its work clock sets the deadlines).
    pub category: u64,
    /// Have results sealed for the requester.
    pub encrypt: bool,
}

/// `(gpu,tee)`, or `(none)`.
fn tag_text(tag: Tag) -> String {
    if tag == Tag::NONE { "(none)".to_owned() } else { format!("({})", tag.names().join(",")) }
}

fn price(entry: &BookEntry) -> U256 {
    entry.price.parse().unwrap_or(U256::MAX)
}

/// The cheapest order of `query`, or an error naming what nothing satisfies.
async fn cheapest(
    node: &Node,
    query: OrderQuery,
    what: &'static str,
    requirement: impl Fn() -> String,
) -> Result<(BookEntry, AnyOrder), RunError> {
    let found = MarketApiClient::orders(&node.rpc, query)
        .await
        .map_err(RunError::rpc("asking the market"))?;
    let entry = found.into_iter().next().ok_or_else(|| RunError::NoOrder {
        what,
        market: node.url.clone(),
        requirement: requirement(),
    })?;
    let order = AnyOrder::from_json(&entry.order.to_string(), None)
        .map_err(|e| RunError::UnreadableOrder(e.to_string()))?;
    Ok((entry, order))
}

/// A registry kind, for [`resolve`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Apps, by name.
    App,
    /// Datasets, by name.
    Dataset,
    /// Workerpools, by description.
    Workerpool,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::App => "app",
            Kind::Dataset => "dataset",
            Kind::Workerpool => "workerpool",
        }
    }

    /// The (address, name) pairs of this kind in `entries`.
    fn named(self, entries: &xiebao_rpc::Entries) -> Vec<(Address, String)> {
        match self {
            Kind::App => entries.apps.iter().map(|(a, e)| (*a, e.name.clone())).collect(),
            Kind::Dataset => entries.datasets.iter().map(|(a, e)| (*a, e.name.clone())).collect(),
            Kind::Workerpool => {
                entries.workerpools.iter().map(|(a, e)| (*a, e.description.clone())).collect()
            }
        }
    }
}

/// The address `text` names: an address as it is, else the one registry entry of `kind` with
/// that name (apps and datasets by name, workerpools by description).
///
/// # Errors
/// [`RunError::UnknownName`] (with some names the chain knows), [`RunError::AmbiguousName`]
/// (with the addresses to choose from), node errors.
pub async fn resolve(node: &Node, kind: Kind, text: &str) -> Result<Address, RunError> {
    if let Ok(address) = text.parse::<Address>() {
        return Ok(address);
    }
    let found = XiebaoApiClient::find_by_name(&node.rpc, text.to_owned())
        .await
        .map_err(RunError::rpc(format!("looking up the {} named {text:?}", kind.word())))?;
    let matches = kind.named(&found);
    match matches.as_slice() {
        [(address, _)] => Ok(*address),
        [] => {
            let some = XiebaoApiClient::entries(&node.rpc, None, Some(20))
                .await
                .map(|entries| kind.named(&entries))
                .unwrap_or_default();
            let mut names: Vec<String> = some.into_iter().map(|(_, name)| name).collect();
            names.sort();
            names.dedup();
            let known = if names.is_empty() {
                String::new()
            } else {
                format!(
                    "; its {}s include: {} (`xiebao {} list`)",
                    kind.word(),
                    names.join(", "),
                    kind.word()
                )
            };
            Err(RunError::UnknownName {
                kind: kind.word(),
                name: text.to_owned(),
                node: node.url.clone(),
                known,
            })
        }
        many => Err(RunError::AmbiguousName {
            kind: kind.word(),
            name: text.to_owned(),
            count: many.len(),
            addresses: many.iter().map(|(a, _)| a.to_string()).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// The orders chosen for a request, and what the deal costs.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The app order.
    pub app: AppOrder,
    /// The dataset order ([`DatasetOrder::none`] without a dataset).
    pub dataset: DatasetOrder,
    /// The workerpool order.
    pub workerpool: WorkerpoolOrder,
    /// The app's price per task.
    pub app_price: U256,
    /// The dataset's price per task.
    pub dataset_price: U256,
    /// The pool's price per task.
    pub pool_price: U256,
    /// The pool's scheduler, as its order's book entry gives it.
    pub scheduler: Option<String>,
    /// Price of one task.
    pub per_task: Nrlc,
    /// Price of the deal.
    pub total: Nrlc,
    /// The request it was made for.
    pub request: RunRequest,
}

/// Chooses the cheapest compatible app, dataset and workerpool orders with enough volume for
/// `request` made by `requester`, and checks that it can pay for the deal.
///
/// # Errors
/// [`RunError::NoOrder`] naming what nothing satisfies, [`RunError::Funds`] with what is
/// missing and how to get it, and node errors.
pub async fn plan(node: &Node, request: &RunRequest, requester: Address) -> Result<Plan, RunError> {
    let (app, volume, tag) = (request.app, request.volume, request.tag);
    let me = requester;
    let base = OrderQuery {
        requester: Some(me),
        min_volume: Some(volume),
        tag: Some(tag),
        ..OrderQuery::default()
    };
    let (app_entry, app_order) = cheapest(
        node,
        OrderQuery { kind: Some(OrderKind::App), app: Some(app), ..base.clone() },
        "app",
        || format!("app {app} for {volume} task(s), tag {}, open to {me}", tag_text(tag)),
    )
    .await?;
    let AnyOrder::App(app_order) = app_order else {
        return Err(RunError::UnreadableOrder("the market mixed up kinds".into()));
    };
    let (dataset_order, dataset_price) = match request.dataset {
        Some(dataset) => {
            let (entry, order) = cheapest(
                node,
                OrderQuery {
                    kind: Some(OrderKind::Dataset),
                    dataset: Some(dataset),
                    app: Some(app),
                    ..base.clone()
                },
                "dataset",
                || format!("dataset {dataset} for app {app} and {volume} tasks"),
            )
            .await?;
            let AnyOrder::Dataset(order) = order else {
                return Err(RunError::UnreadableOrder("the market mixed up kinds".into()));
            };
            (order, price(&entry))
        }
        None => (DatasetOrder::none(), U256::ZERO),
    };
    let trust = request.trust.max(1);
    let (pool_entry, pool_order) = cheapest(
        node,
        OrderQuery {
            kind: Some(OrderKind::Workerpool),
            workerpool: request.workerpool,
            app: Some(app),
            category: Some(request.category),
            min_trust: Some(trust),
            ..base.clone()
        },
        "workerpool",
        || {
            let pool = request.workerpool.map(|p| format!("workerpool {p}, ")).unwrap_or_default();
            format!(
                "{pool}category {}, trust ≥ {trust}, tag ⊇ {}, {volume} task(s) left",
                request.category,
                tag_text(tag)
            )
        },
    )
    .await?;
    let AnyOrder::Workerpool(pool_order) = pool_order else {
        return Err(RunError::UnreadableOrder("the market mixed up kinds".into()));
    };
    let (app_price, pool_price) = (price(&app_entry), price(&pool_entry));
    let per_task = app_price + dataset_price + pool_price;
    let total = per_task * U256::from(volume);
    let total = Nrlc(u128::try_from(total).map_err(|_| RunError::PriceOverflow)?);
    let per_task = Nrlc(u128::try_from(per_task).unwrap_or(u128::MAX));
    let account =
        node.rpc.account(me).await.map_err(RunError::rpc(format!("asking for {me}'s account")))?;
    if account.free < total {
        return Err(RunError::Funds {
            requester: me,
            free: account.free,
            volume,
            per_task,
            total,
            missing: Nrlc(total.0 - account.free.0),
        });
    }
    Ok(Plan {
        app: app_order,
        dataset: dataset_order,
        scheduler: pool_entry.scheduler.clone(),
        workerpool: pool_order,
        app_price,
        dataset_price,
        pool_price,
        per_task,
        total,
        request: request.clone(),
    })
}

impl Plan {
    /// The request order for this plan, signed by `key` for `node`'s domain: at most the
    /// chosen prices, the request's parameters (`iexec_args`, `iexec_input_files`, and the
    /// requester's public key when results are sealed), beneficiary the requester.
    pub fn request_order(&self, node: &Node, key: &SecretKey) -> RequestOrder {
        let request = &self.request;
        let me = key.address();
        let mut params = serde_json::Map::new();
        if !request.args.is_empty() {
            params.insert("iexec_args".into(), request.args.clone().into());
        }
        if !request.input_files.is_empty() {
            params.insert("iexec_input_files".into(), request.input_files.clone().into());
        }
        if request.encrypt {
            params.insert("iexec_result_encryption".into(), true.into());
            params.insert(
                "result_public_key".into(),
                alloy_primitives::hex::encode_prefixed(key.public_key()).into(),
            );
        }
        let mut order = RequestOrder {
            app: request.app,
            appmaxprice: self.app_price,
            dataset: request.dataset.unwrap_or(Address::ZERO),
            datasetmaxprice: self.dataset_price,
            workerpool: self.workerpool.workerpool,
            workerpoolmaxprice: self.pool_price,
            requester: me,
            volume: U256::from(request.volume),
            tag: request.tag,
            category: U256::from(request.category),
            trust: U256::from(request.trust.max(1)),
            beneficiary: me,
            callback: Address::ZERO,
            params: if params.is_empty() {
                String::new()
            } else {
                serde_json::Value::Object(params).to_string()
            },
            salt: B256::from(rand::random::<[u8; 32]>()),
            sign: Bytes::new(),
        };
        order.sign_with(&node.domain, key);
        order
    }

    /// Signs the request with `key`, subscribes to the chain's task events (before matching,
    /// so no result is missed) and matches the orders into a deal.
    ///
    /// # Errors
    /// When the subscription fails, the chain refuses the match or the deal cannot be read.
    pub async fn start(&self, node: &Node, key: &SecretKey) -> Result<Run, RunError> {
        let request = self.request_order(node, key);
        let events = subscribe(node, &["TaskFinalize", "TaskClaimed"]).await?;
        let sender = Sender::spawn(node.clone(), key.clone(), SenderOptions::default());
        let orders = MatchOrders {
            app: self.app.clone(),
            dataset: self.dataset.clone(),
            workerpool: self.workerpool.clone(),
            request,
        };
        let matched = match_deal(node, &sender, orders).await?;
        Ok(Run {
            node: node.clone(),
            matched,
            events,
            scheduler: self.scheduler.clone(),
            opener: self.request.encrypt.then(|| key.clone()),
        })
    }
}

/// Events of the given types (names of [`Event`] variants) as the chain finalizes them, with
/// the WebSocket client that carries them (the subscription ends when it is dropped).
pub struct Events {
    /// The connection.
    pub client: xiebao_rpc::jsonrpsee::ws_client::WsClient,
    /// The subscription.
    pub subscription: Subscription<EventView>,
}

/// Subscribes to the chain's events of the given types (names of [`Event`] variants).
///
/// # Errors
/// When the node's WebSocket cannot be reached or refuses the subscription.
pub async fn subscribe(node: &Node, types: &[&str]) -> Result<Events, RunError> {
    let ws = xiebao_rpc::ws_client(&node.ws_url())
        .await
        .map_err(RunError::rpc(format!("connecting to {}", node.ws_url())))?;
    let filter = EventFilter {
        types: types.iter().map(|t| (*t).to_owned()).collect(),
        ..EventFilter::default()
    };
    let subscription = xiebao_rpc::XiebaoApiClient::subscribe_events(&ws, filter)
        .await
        .map_err(RunError::rpc("subscribing to the chain's events"))?;
    Ok(Events { client: ws, subscription })
}

/// A deal just made: its id, its record and every task id, by index.
#[derive(Clone, Debug)]
pub struct Matched {
    /// The deal id.
    pub deal: B256,
    /// The deal as the chain holds it.
    pub record: xiebao_rpc::Deal,
    /// Its task ids, by index.
    pub tasks: Vec<B256>,
}

/// Sends the match and reads back the deal it made and every task id of it.
///
/// # Errors
/// [`RunError::Match`] when the chain refuses it; [`RunError::NoDeal`].
pub async fn match_deal(
    node: &Node,
    sender: &Sender,
    orders: MatchOrders,
) -> Result<Matched, RunError> {
    let applied = sender.send(orders.into()).await.map_err(RunError::Match)?;
    let deal = applied
        .events
        .iter()
        .find_map(|e| match e {
            Event::OrdersMatched { deal, .. } => Some(*deal),
            _ => None,
        })
        .ok_or(RunError::NoDeal("the match emitted no deal"))?;
    let record = XiebaoApiClient::deal(&node.rpc, deal)
        .await
        .map_err(RunError::rpc(format!("asking for deal {deal}")))?
        .ok_or(RunError::NoDeal("the deal is not on chain"))?;
    let tasks = (0..record.bot_size)
        .map(|i| ids::task_id(&deal, record.bot_first + U256::from(i)))
        .collect();
    Ok(Matched { deal, record, tasks })
}

/// What a front end shows while a bag runs.
pub trait BagObserver {
    /// One more task is done (its result in hand, or final without download).
    fn done(&self);
    /// One more task failed.
    fn failed(&self);
    /// The scheduler's view of the bag's tasks (about every 2 s when a scheduler is known).
    fn waiting(&self, tasks: &[TaskView]);
    /// The bag is over (every task done or failed); the flow itself never calls it.
    fn finish(&self) {}
}

/// How to follow a bag.
#[derive(Clone, Debug)]
pub struct FollowOptions {
    /// Where results go: one folder per task, by index (`00000`, `00001`, …).
    pub out: PathBuf,
    /// Download results (else only follow the tasks to the end).
    pub download: bool,
    /// Largest result accepted per task, bytes; a larger one fails that task only.
    pub result_max_bytes: u64,
    /// Give up following after this long (the deal goes on).
    pub timeout: Duration,
}

/// How a bag ended.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Tasks done.
    pub done: usize,
    /// Tasks that failed: index, id, why.
    pub failed: Vec<(usize, B256, String)>,
    /// Results saved: index, folder (sorted).
    pub saved: Vec<(usize, PathBuf)>,
}

/// A deal being followed.
pub struct Run {
    node: Node,
    /// The deal.
    pub matched: Matched,
    events: Events,
    scheduler: Option<String>,
    opener: Option<SecretKey>,
}

impl Run {
    /// Follows the bag until every task is done or failed, downloading each result as soon
    /// as its task completes (one bad result fails its own task; the others still download)
    /// and asking the pool's scheduler why tasks wait.
    ///
    /// # Errors
    /// [`RunError::Timeout`] past `options.timeout`; [`RunError::EventsClosed`].
    pub async fn follow(
        mut self,
        options: &FollowOptions,
        observer: &dyn BagObserver,
    ) -> Result<Outcome, RunError> {
        let Matched { deal, record, tasks } = self.matched.clone();
        let index_of: BTreeMap<B256, usize> =
            tasks.iter().enumerate().map(|(i, t)| (*t, i)).collect();
        let scheduler = self.scheduler.as_deref().and_then(|url| scheduler_client(url).ok());
        let http = reqwest::Client::new();
        let mut downloads = tokio::task::JoinSet::new();
        let mut outcome = Outcome::default();
        let deadline = Instant::now() + options.timeout;
        let mut last_view = Instant::now();
        while outcome.done + outcome.failed.len() < tasks.len() {
            tokio::select! {
                event = self.events.subscription.next() => {
                    let view = event
                        .ok_or(RunError::EventsClosed)?
                        .map_err(|e| RunError::Events(e.to_string()))?;
                    match view.event {
                        Event::TaskFinalize { task, .. } if index_of.contains_key(&task) => {
                            let index = index_of[&task];
                            if !options.download {
                                outcome.done += 1;
                                observer.done();
                                continue;
                            }
                            let (node, http, key) = (self.node.clone(), http.clone(), self.opener.clone());
                            let dir = options.out.join(format!("{index:05}"));
                            let deal_record = record.clone();
                            let max_bytes = options.result_max_bytes;
                            downloads.spawn(async move {
                                let saved = async {
                                    let task_record = XiebaoApiClient::task(&node.rpc, task)
                                        .await
                                        .map_err(RunError::rpc(format!("asking for task {task}")))?
                                        .ok_or(RunError::TaskMissing)?;
                                    crate::download::save(&http, &task_record, &deal_record, key.as_ref(), &dir, max_bytes)
                                        .await
                                        .map_err(RunError::from)
                                }
                                .await;
                                (index, task, dir, saved)
                            });
                        }
                        Event::TaskClaimed { task }
                            if index_of.contains_key(&task)
                                && !outcome.failed.iter().any(|(_, t, _)| *t == task) =>
                        {
                            outcome.failed.push((index_of[&task], task, "failed on chain and refunded".to_owned()));
                            observer.failed();
                        }
                        _ => {}
                    }
                }
                Some(result) = downloads.join_next(), if !downloads.is_empty() => {
                    match result {
                        Ok((index, _, dir, Ok(_))) => {
                            outcome.saved.push((index, dir));
                            outcome.done += 1;
                            observer.done();
                        }
                        Ok((index, task, _, Err(e))) => {
                            outcome.failed.push((index, task, format!("result refused: {e}")));
                            observer.failed();
                        }
                        Err(panicked) => {
                            return Err(RunError::Download(DownloadError::Io {
                                what: "a download task panicked".into(),
                                source: std::io::Error::other(panicked.to_string()),
                            }));
                        }
                    }
                }
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            if let Some(client) = &scheduler
                && last_view.elapsed() > Duration::from_secs(2)
            {
                last_view = Instant::now();
                if let Ok(Some(view)) = client.deal_view(deal).await {
                    observer.waiting(&view.tasks);
                    // The scheduler gave these up (the chain refunds them at the deadline).
                    for t in &view.tasks {
                        if let TaskState::Failed { why } = &t.state
                            && index_of.contains_key(&t.task)
                            && !outcome.failed.iter().any(|(_, task, _)| *task == t.task)
                        {
                            outcome.failed.push((index_of[&t.task], t.task, why.clone()));
                            observer.failed();
                        }
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(RunError::Timeout {
                    done: outcome.done,
                    total: tasks.len(),
                    timeout_s: options.timeout.as_secs(),
                    deal,
                });
            }
        }
        outcome.saved.sort();
        outcome.failed.sort();
        Ok(outcome)
    }
}

/// A pool scheduler's JSON-RPC client over HTTP, from its `ws://` or `http://` URL.
///
/// # Errors
/// When the URL is not one.
pub fn scheduler_client(
    url: &str,
) -> Result<xiebao_rpc::jsonrpsee::http_client::HttpClient, ClientError> {
    let http = url.replacen("ws://", "http://", 1).replacen("wss://", "https://", 1);
    xiebao_rpc::http_client(&http)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_in_rlc() {
        assert_eq!(format_rlc(Nrlc(1_500_000_000)), "1.5 RLC");
        assert_eq!(format_rlc(Nrlc(3_000_000_000)), "3 RLC");
        assert_eq!(format_rlc(Nrlc(1)), "0.000000001 RLC");
    }
}
