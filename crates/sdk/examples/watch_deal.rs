//! Follow a deal's tasks as the chain settles them, through the node's event subscription
//! (WebSocket, same port as the HTTP RPC).
//!
//! Against a local devnet, in three terminals from the same directory:
//!
//! ```text
//! xiebao devnet --keep                                   # 1. the network; leave it running
//! cargo run -p xiebao-sdk --example watch_deal -- "$(jq -r '.rpc[0]' xiebao-devnet/devnet.json)"
//!                                                        # 2. waits for the next deal
//! xiebao --chain devnet run "$(jq -r '.apps.mandelbrot.address' xiebao-devnet/devnet.json)" \
//!     --volume 4 --args "64 64 2 2 50" --key-file xiebao-devnet/keys/requester.key
//!                                                        # 3. a bag of 4 tasks: 2. follows it
//! ```
//!
//! Give a deal id as the second argument to follow a deal that exists already. The URL may
//! also come from `XIEBAO_RPC`. The example subscribes first and reads the tasks' state after,
//! so no event falls between the two; it stops when every task is completed or failed.

#![allow(clippy::print_stdout, reason = "an example prints what it sees")]

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::{B256, U256};
use xiebao_protocol::{Event, TaskStatus};
use xiebao_rpc::{EventFilter, XiebaoApiClient as _};
use xiebao_sdk::client::Node;

/// The task events this example follows, by their variant names.
const TASK_EVENTS: [&str; 7] = [
    "TaskInitialize",
    "TaskContribute",
    "TaskConsensus",
    "TaskReveal",
    "TaskReopen",
    "TaskFinalize",
    "TaskClaimed",
];

/// The task an event is about, and whether it ends the task.
fn task_of(event: &Event) -> Option<(B256, bool)> {
    match event {
        Event::TaskInitialize { task, .. }
        | Event::TaskContribute { task, .. }
        | Event::TaskConsensus { task, .. }
        | Event::TaskReveal { task, .. }
        | Event::TaskReopen { task, .. } => Some((*task, false)),
        Event::TaskFinalize { task, .. } | Event::TaskClaimed { task, .. } => Some((*task, true)),
        _ => None,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .or_else(|| std::env::var("XIEBAO_RPC").ok())
        .unwrap_or_else(|| "http://127.0.0.1:8545".to_owned());
    let given: Option<B256> =
        args.next().map(|d| d.parse()).transpose().map_err(|e| format!("DEAL: {e}"))?;
    let node = Node::connect(&url).await?;
    // Subscriptions need the WebSocket client; queries go over HTTP (`node.rpc`).
    let ws = xiebao_rpc::ws_client(&node.ws_url()).await?;

    let deal_id = match given {
        Some(deal) => deal,
        None => {
            println!("waiting for the next deal on {url} …");
            let filter = EventFilter { types: vec!["OrdersMatched".into()], ..Default::default() };
            let mut matched = ws.subscribe_events(filter).await?;
            loop {
                let view = matched.next().await.ok_or("the node closed the subscription")??;
                if let Event::OrdersMatched { deal, .. } = view.event {
                    break deal;
                }
            }
        }
    };
    let deal = node.rpc.deal(deal_id).await?.ok_or_else(|| format!("no deal {deal_id}"))?;

    // Every task id of the deal: task_id(deal, first index + i).
    let tasks: BTreeMap<B256, u64> = (0..deal.bot_size)
        .map(|i| (xiebao_types::ids::task_id(&deal_id, deal.bot_first + U256::from(i)), i))
        .collect();
    let filter = EventFilter {
        ids: tasks.keys().copied().collect(),
        types: TASK_EVENTS.iter().map(|t| (*t).to_owned()).collect(),
        ..Default::default()
    };
    let mut events = ws.subscribe_events(filter).await?;

    // Subscribed: now the state so far (tasks the scheduler already initialized). A task
    // finished in between is in both the state and the stream: the set counts it once.
    let mut finished: BTreeSet<B256> = BTreeSet::new();
    let mut by_index: Vec<(&B256, &u64)> = tasks.iter().collect();
    by_index.sort_by_key(|(_, index)| **index);
    for (task, index) in by_index {
        if let Some(record) = node.rpc.task(*task).await? {
            println!("task #{index} {}", record.status);
            if matches!(record.status, TaskStatus::Completed | TaskStatus::Failed) {
                finished.insert(*task);
            }
        }
    }
    println!(
        "deal {deal_id}: {} tasks, trust {}; {} finished",
        deal.bot_size,
        deal.trust,
        finished.len()
    );

    while (finished.len() as u64) < deal.bot_size {
        let view = events.next().await.ok_or("the node closed the subscription")??;
        let Some((task, ends)) = task_of(&view.event) else { continue };
        let Some(index) = tasks.get(&task) else { continue };
        let name = serde_json::to_value(&view.event)?
            .as_object()
            .and_then(|o| o.keys().next().cloned())
            .unwrap_or_default();
        println!("block {:>6}  task #{index:<4} {name}", view.height);
        if ends {
            finished.insert(task);
        }
    }
    let deal = node.rpc.deal(deal_id).await?.ok_or_else(|| format!("no deal {deal_id}"))?;
    println!("deal {deal_id}: {} completed, {} failed", deal.completed, deal.failed);
    Ok(())
}
