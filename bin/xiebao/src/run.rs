//! `xiebao run`: one command from an app to its results — pick compatible orders from the
//! market, sign the request, match, print the deal and every task id, follow the bag with a
//! progress bar and download each result as soon as its task completes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, Bytes, U256};
use anyhow::{Context, bail};
use clap::Args;
use xiebao_protocol::Event;
use xiebao_rpc::{BookEntry, EventFilter, MarketApiClient, OrderQuery, XiebaoApiClient};
use xiebao_scheduler::api::PoolApiClient as _;
use xiebao_sdk::client::{Node, Sender, SenderOptions};
use xiebao_types::order::{AnyOrder, DatasetOrder, OrderKind, RequestOrder, SignedOrder as _};
use xiebao_types::tx::MatchOrders;
use xiebao_types::{Nrlc, Tag, ids};

use crate::account::{Endpoint, format_rlc};

/// `xiebao run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The app's address.
    app: Address,
    /// A dataset for every task.
    #[arg(long)]
    dataset: Option<Address>,
    /// Only this workerpool (default: the cheapest compatible one in the market).
    #[arg(long)]
    workerpool: Option<Address>,
    /// Number of tasks (default: one per --input-file, else 1).
    #[arg(long)]
    volume: Option<u64>,
    /// The app's arguments (every task gets them, and its own IEXEC_TASK_INDEX).
    #[arg(long, conflicts_with = "args_file")]
    args: Option<String>,
    /// Read the arguments from a file.
    #[arg(long)]
    args_file: Option<PathBuf>,
    /// An input file URL (repeatable); with one per task, task i reads file i.
    #[arg(long = "input-file", value_name = "URL")]
    input_files: Vec<String>,
    /// Replication level (PoCo trust): 0 or 1 run each task once.
    #[arg(long, default_value_t = 1)]
    trust: u64,
    /// Required worker features, e.g. `gpu` or `tee,scone`.
    #[arg(long, default_value = "")]
    tag: String,
    /// Category (its work clock sets the deadlines).
    #[arg(long, default_value_t = 0)]
    category: u64,
    /// Have results sealed for the requester (opened with --key-file when downloaded).
    #[arg(long)]
    encrypt: bool,
    /// The requester's key: a V3 keystore or a hex key file.
    #[arg(long)]
    key_file: PathBuf,
    /// File holding the keystore's password (else XIEBAO_PASSWORD or a prompt).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Where results go (default `xiebao-results/DEAL`): one folder per task, by index.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the deal and task ids and return without following the bag.
    #[arg(long)]
    no_watch: bool,
    /// Follow the bag without downloading results.
    #[arg(long)]
    no_download: bool,
    /// Largest result accepted per task, bytes: the download and what it unpacks to
    /// (default 1 GiB); a larger one fails that task only.
    #[arg(long, default_value_t = crate::task::RESULT_DOWNLOAD_MAX_BYTES)]
    result_max_bytes: u64,
    /// Give up following after this many seconds (the deal goes on).
    #[arg(long, default_value_t = 3_600)]
    timeout: u64,
    #[command(flatten)]
    endpoint: Endpoint,
}

/// `(gpu,tee)`, or `(none)`.
fn tag_text(tag: Tag) -> String {
    if tag == Tag::NONE { "(none)".to_owned() } else { format!("({})", tag.names().join(",")) }
}

/// Sends the match and reads back the deal it made and every task id of it.
pub(crate) async fn match_deal(
    node: &Node,
    sender: &Sender,
    orders: MatchOrders,
) -> anyhow::Result<(B256, xiebao_rpc::Deal, Vec<B256>)> {
    let applied = sender.send(orders.into()).await.context("matching the orders")?;
    let deal = applied
        .events
        .iter()
        .find_map(|e| match e {
            Event::OrdersMatched { deal, .. } => Some(*deal),
            _ => None,
        })
        .context("the match emitted no deal")?;
    let record =
        XiebaoApiClient::deal(&node.rpc, deal).await?.context("the deal is not on chain")?;
    let tasks = (0..record.bot_size)
        .map(|i| ids::task_id(&deal, record.bot_first + U256::from(i)))
        .collect();
    Ok((deal, record, tasks))
}

fn price(entry: &BookEntry) -> U256 {
    entry.price.parse().unwrap_or(U256::MAX)
}

/// The cheapest order of `query`, or an error naming what nothing satisfies.
async fn cheapest(
    node: &Node,
    query: OrderQuery,
    what: &str,
    requirement: impl Fn() -> String,
) -> anyhow::Result<(BookEntry, AnyOrder)> {
    let found = MarketApiClient::orders(&node.rpc, query).await.context("asking the market")?;
    let entry = found.into_iter().next().with_context(|| {
        format!("no {what} order in the market at {} satisfies {}", node.url, requirement())
    })?;
    let order = AnyOrder::from_json(&entry.order.to_string(), None)
        .context("the market returned an unreadable order")?;
    Ok((entry, order))
}

#[allow(clippy::print_stdout, reason = "the command's output")]
pub(crate) fn run(args: &RunArgs) -> anyhow::Result<()> {
    let key = crate::secret::signing_key(&args.key_file, args.password_file.as_deref())?;
    let tag: Tag = args.tag.parse().with_context(|| format!("--tag {:?}", args.tag))?;
    let app_args = match &args.args_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading --args-file {}", path.display()))?
            .trim_end()
            .to_owned(),
        None => args.args.clone().unwrap_or_default(),
    };
    let volume = args.volume.unwrap_or((args.input_files.len() as u64).max(1));
    if volume == 0 {
        bail!("--volume 0: a deal needs at least one task");
    }
    crate::client_runtime()?.block_on(async {
        let node = Node::connect(&args.endpoint.rpc).await?;
        let me = key.address();
        // App, dataset and workerpool orders: the cheapest compatible ones with enough volume.
        let base = OrderQuery {
            requester: Some(me),
            min_volume: Some(volume),
            tag: Some(tag),
            ..OrderQuery::default()
        };
        let (app_entry, app_order) = cheapest(
            &node,
            OrderQuery { kind: Some(OrderKind::App), app: Some(args.app), ..base.clone() },
            "app",
            || format!("app {} for {volume} task(s), tag {}, open to {me}", args.app, tag_text(tag)),
        )
        .await?;
        let AnyOrder::App(app_order) = app_order else { bail!("the market mixed up kinds") };
        let (dataset_order, dataset_price) = match args.dataset {
            Some(dataset) => {
                let (entry, order) = cheapest(
                    &node,
                    OrderQuery {
                        kind: Some(OrderKind::Dataset),
                        dataset: Some(dataset),
                        app: Some(args.app),
                        ..base.clone()
                    },
                    "dataset",
                    || format!("dataset {dataset} for app {} and {volume} tasks", args.app),
                )
                .await?;
                let AnyOrder::Dataset(order) = order else { bail!("the market mixed up kinds") };
                (order, price(&entry))
            }
            None => (DatasetOrder::none(), U256::ZERO),
        };
        let trust = args.trust.max(1);
        let (pool_entry, pool_order) = cheapest(
            &node,
            OrderQuery {
                kind: Some(OrderKind::Workerpool),
                workerpool: args.workerpool,
                app: Some(args.app),
                category: Some(args.category),
                min_trust: Some(trust),
                ..base.clone()
            },
            "workerpool",
            || {
                let pool = args.workerpool.map(|p| format!("workerpool {p}, ")).unwrap_or_default();
                format!(
                    "{pool}category {}, trust ≥ {trust}, tag ⊇ {}, {volume} task(s) left",
                    args.category,
                    tag_text(tag)
                )
            },
        )
        .await?;
        let AnyOrder::Workerpool(pool_order) = pool_order else { bail!("the market mixed up kinds") };
        let per_task = price(&app_entry) + dataset_price + price(&pool_entry);
        let total = per_task * U256::from(volume);
        let total_nrlc = Nrlc(u128::try_from(total).context("the deal's price overflows")?);
        let account = node.rpc.account(me).await?;
        if account.free < total_nrlc {
            let missing = Nrlc(total_nrlc.0 - account.free.0);
            bail!(
                "{me} has {} free; {volume} tasks at {} each need {} (missing {}). Get RLC with `xiebao bridge deposit --amount {}` or from an account that has some: `xiebao account transfer --to {me} --amount {} --key-file PAYER.key`",
                format_rlc(account.free),
                format_rlc(Nrlc(u128::try_from(per_task).unwrap_or(u128::MAX))),
                format_rlc(total_nrlc),
                format_rlc(missing),
                format_rlc(missing).trim_end_matches(" RLC"),
                format_rlc(missing).trim_end_matches(" RLC"),
            );
        }
        let mut params = serde_json::Map::new();
        if !app_args.is_empty() {
            params.insert("iexec_args".into(), app_args.clone().into());
        }
        if !args.input_files.is_empty() {
            params.insert("iexec_input_files".into(), args.input_files.clone().into());
        }
        if args.encrypt {
            params.insert("iexec_result_encryption".into(), true.into());
            params.insert(
                "result_public_key".into(),
                alloy_primitives::hex::encode_prefixed(key.public_key()).into(),
            );
        }
        let mut request = RequestOrder {
            app: args.app,
            appmaxprice: price(&app_entry),
            dataset: args.dataset.unwrap_or(Address::ZERO),
            datasetmaxprice: dataset_price,
            workerpool: pool_order.workerpool,
            workerpoolmaxprice: price(&pool_entry),
            requester: me,
            volume: U256::from(volume),
            tag,
            category: U256::from(args.category),
            trust: U256::from(trust),
            beneficiary: me,
            callback: Address::ZERO,
            params: if params.is_empty() { String::new() } else { serde_json::Value::Object(params).to_string() },
            salt: B256::from(rand::random::<[u8; 32]>()),
            sign: Bytes::new(),
        };
        request.sign_with(&node.domain, &key);
        // Subscribe before matching so no result is missed.
        let ws = xiebao_rpc::ws_client(&node.ws_url()).await?;
        let filter = EventFilter {
            types: vec!["TaskFinalize".into(), "TaskClaimed".into()],
            ..EventFilter::default()
        };
        let mut events = ws.subscribe_events(filter).await?;
        let sender = Sender::spawn(node.clone(), key.clone(), SenderOptions::default());
        let orders = MatchOrders {
            app: app_order,
            dataset: dataset_order,
            workerpool: pool_order.clone(),
            request,
        };
        let (deal, record, tasks) = match_deal(&node, &sender, orders).await?;
        if args.endpoint.json {
            println!("{}", serde_json::json!({ "deal": deal, "tasks": tasks, "price": total_nrlc, "workerpool": pool_order.workerpool }));
        } else {
            println!(
                "deal {deal}: {} tasks on workerpool {} for {}",
                tasks.len(),
                pool_order.workerpool,
                format_rlc(total_nrlc)
            );
            for (i, task) in tasks.iter().enumerate() {
                println!("  task {i}: {task}");
            }
        }
        if args.no_watch {
            return Ok(());
        }
        let index_of: BTreeMap<B256, usize> = tasks.iter().enumerate().map(|(i, t)| (*t, i)).collect();
        let out = args.out.clone().unwrap_or_else(|| PathBuf::from("xiebao-results").join(deal.to_string()));
        let scheduler = pool_entry
            .scheduler
            .as_deref()
            .and_then(|url| crate::task::scheduler_client(url).ok());
        let progress = crate::devnet::Progress::new(args.endpoint.json, tasks.len() as u64);
        let http = reqwest::Client::new();
        let opener = args.encrypt.then(|| key.clone());
        let mut downloads = tokio::task::JoinSet::new();
        let mut done = 0usize;
        let mut failed: Vec<(usize, B256, String)> = Vec::new();
        let mut saved: Vec<(usize, PathBuf)> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(args.timeout);
        let mut last_view = Instant::now();
        while done + failed.len() < tasks.len() {
            tokio::select! {
                event = events.next() => {
                    let view = event.context("the node closed the event stream")??;
                    match view.event {
                        Event::TaskFinalize { task, .. } if index_of.contains_key(&task) => {
                            let index = index_of[&task];
                            if args.no_download {
                                done += 1;
                                progress.done();
                                continue;
                            }
                            let (node, http, key, dir) = (node.clone(), http.clone(), opener.clone(), out.join(format!("{index:05}")));
                            let deal_record = record.clone();
                            let max_bytes = args.result_max_bytes;
                            downloads.spawn(async move {
                                let saved = async {
                                    let task_record = XiebaoApiClient::task(&node.rpc, task).await?.context("task missing")?;
                                    crate::task::save_result(&http, &task_record, &deal_record, key.as_ref(), &dir, max_bytes).await
                                }
                                .await;
                                (index, task, dir, saved)
                            });
                        }
                        Event::TaskClaimed { task }
                            if index_of.contains_key(&task) && !failed.iter().any(|(_, t, _)| *t == task) =>
                        {
                            failed.push((index_of[&task], task, "failed on chain and refunded".to_owned()));
                            progress.failed();
                        }
                        _ => {}
                    }
                }
                Some(result) = downloads.join_next(), if !downloads.is_empty() => {
                    // One bad result fails its own task; the others still download.
                    match result.context("a download task panicked")? {
                        (index, _, dir, Ok(_)) => {
                            saved.push((index, dir));
                            done += 1;
                            progress.done();
                        }
                        (index, task, _, Err(e)) => {
                            failed.push((index, task, format!("result refused: {e:#}")));
                            progress.failed();
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
                    progress.waiting(&view.tasks);
                    // The scheduler gave these up (the chain refunds them at the deadline).
                    for t in &view.tasks {
                        if let xiebao_scheduler::api::TaskState::Failed { why } = &t.state
                            && index_of.contains_key(&t.task)
                            && !failed.iter().any(|(_, task, _)| *task == t.task)
                        {
                            failed.push((index_of[&t.task], t.task, why.clone()));
                            progress.failed();
                        }
                    }
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{done} of {} tasks done after {} s; the deal goes on: follow it with `xiebao deal show {deal}`",
                    tasks.len(),
                    args.timeout
                );
            }
        }
        progress.finish();
        saved.sort();
        if args.endpoint.json {
            println!("{}", serde_json::json!({ "deal": deal, "done": done, "failed": failed.iter().map(|(i, t, why)| serde_json::json!({ "index": i, "task": t, "why": why })).collect::<Vec<_>>(), "out": out }));
        } else {
            if !args.no_download {
                println!("{done} results verified and saved under {}", out.display());
            }
            for (index, task, why) in &failed {
                println!("task {index} ({task}) failed: {why}");
            }
        }
        if !failed.is_empty() {
            failed.sort();
            let named: Vec<String> =
                failed.iter().map(|(index, task, _)| format!("task {index} ({task})")).collect();
            bail!("{} of {} tasks failed: {}", failed.len(), tasks.len(), named.join(", "));
        }
        Ok(())
    })
}
