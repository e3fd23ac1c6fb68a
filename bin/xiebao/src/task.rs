//! `xiebao deal show`, `xiebao task show` and `xiebao result download`: what the chain and the
//! pool's scheduler say about a deal or a task — and why it is not finished yet.

use alloy_primitives::{B256, U256};
use anyhow::{Context, bail};
use clap::Subcommand;
use xiebao_rpc::XiebaoApiClient;
use xiebao_scheduler::api::{PoolApiClient, TaskView};
use xiebao_types::ids;

use crate::common::{describe, utc, when};

/// `xiebao deal …`.
#[derive(Debug, Subcommand)]
pub(crate) enum DealCommand {
    /// A deal: prices, trust, and every task's state (with the scheduler's reasons).
    Show {
        /// The deal id.
        deal: B256,
        /// The pool's scheduler (`ws://` or `http://`), for why tasks wait.
        #[arg(long, env = "XIEBAO_SCHEDULER")]
        scheduler: Option<String>,
        /// Show it again every 2 s until every task is final (with --json: one object each time).
        #[arg(long)]
        watch: bool,
        #[command(flatten)]
        endpoint: crate::common::Endpoint,
    },
}

/// `xiebao task …`.
#[derive(Debug, Subcommand)]
pub(crate) enum TaskCommand {
    /// A task: its on-chain record and, from the scheduler, why it is not finished yet.
    Show {
        /// The task id.
        task: B256,
        /// The pool's scheduler (`ws://` or `http://`), for why the task waits.
        #[arg(long, env = "XIEBAO_SCHEDULER")]
        scheduler: Option<String>,
        /// Show it again every 2 s until it is final (with --json: one object each time).
        #[arg(long)]
        watch: bool,
        #[command(flatten)]
        endpoint: crate::common::Endpoint,
    },
    /// Claim a task that missed its final deadline: it fails and its escrow goes back to the
    /// requester (anyone may claim; the chain also does it by itself at the deadline).
    Claim {
        /// The task id.
        task: B256,
        #[command(flatten)]
        key: crate::common::KeyArgs,
        #[command(flatten)]
        endpoint: crate::common::Endpoint,
    },
}

async fn scheduler_view(url: Option<&str>, task: B256) -> Option<Result<TaskView, String>> {
    let url = url?;
    let client = match xiebao_sdk::requester::scheduler_client(url) {
        Ok(client) => client,
        Err(e) => return Some(Err(e.to_string())),
    };
    match client.task_view(task).await {
        Ok(Some(view)) => Some(Ok(view)),
        Ok(None) => Some(Err(format!("the scheduler at {url} does not know this task"))),
        Err(e) => Some(Err(format!("the scheduler at {url}: {e}"))),
    }
}

#[allow(clippy::print_stdout, reason = "the command's output")]
pub(crate) fn run_task(command: &TaskCommand) -> anyhow::Result<()> {
    let (task, scheduler, watch, endpoint) = match command {
        TaskCommand::Show { task, scheduler, watch, endpoint } => {
            (task, scheduler, *watch, endpoint)
        }
        TaskCommand::Claim { task, key, endpoint } => return claim(*task, key, endpoint),
    };
    crate::common::client_runtime()?.block_on(watching(watch, || async {
        let node = xiebao_rpc::http_client(&endpoint.rpc)?;
        let record = node
            .task(*task)
            .await
            .with_context(|| format!("asking {} for task {task}", endpoint.rpc))?;
        let view = scheduler_view(scheduler.as_deref(), *task).await;
        if endpoint.json {
            let view = match &view {
                Some(Ok(view)) => serde_json::to_value(view)?,
                Some(Err(e)) => serde_json::json!({ "error": e }),
                None => serde_json::Value::Null,
            };
            println!("{}", serde_json::json!({ "task": task, "chain": record, "scheduler": view }));
            return Ok(task_final(record.as_ref()));
        }
        // Deadlines are checked against block times: measure them by the chain's clock.
        let now = crate::common::chain_now(&node).await?;
        println!("task {task}");
        match &record {
            None => println!("  chain: not initialized yet (or no such task)"),
            Some(t) => {
                println!("  chain: {} (deal {}, index {})", t.status, t.deal_id, t.idx);
                println!("  deadlines (chain time {}):", utc(now));
                println!("    contribution  {}", when(t.contribution_deadline, now));
                println!("    reveal        {}", when(t.reveal_deadline, now));
                println!("    final         {}", when(t.final_deadline, now));
                println!("  contributions: {}", t.contributions.len());
                for c in &t.contributions {
                    println!("    {} {:?}", c.worker, c.status);
                }
                if !t.results.is_empty() {
                    println!("  result: {}", String::from_utf8_lossy(&t.results));
                }
            }
        }
        match view {
            Some(Ok(view)) => {
                println!("  scheduler: {}", describe(&view.state));
                println!("  last event: {}", view.last_event);
                if view.state.is_final() {
                    println!("  next deadline: none, the task has ended");
                } else {
                    println!("  next deadline: {}", when(view.next_deadline, now));
                }
            }
            Some(Err(e)) => println!("  scheduler: {e}"),
            None => println!("  scheduler: not asked (give --scheduler or XIEBAO_SCHEDULER)"),
        }
        Ok(task_final(record.as_ref()))
    }))
}

/// Whether a task's record is final (completed or failed).
fn task_final(record: Option<&xiebao_rpc::Task>) -> bool {
    record.is_some_and(|t| !t.status.is_open())
}

/// Runs `show` once, or with `watch` again every 2 s until it says what it shows is final.
async fn watching<F, Fut>(watch: bool, mut show: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    loop {
        let done = show().await?;
        if !watch || done {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        #[allow(clippy::print_stdout, reason = "the command's output")]
        {
            println!();
        }
    }
}

#[allow(clippy::print_stdout, reason = "the command's output")]
pub(crate) fn run_deal(command: &DealCommand) -> anyhow::Result<()> {
    let DealCommand::Show { deal, scheduler, watch, endpoint } = command;
    crate::common::client_runtime()?.block_on(watching(*watch, || async {
        let node = xiebao_rpc::http_client(&endpoint.rpc)?;
        let Some(record) = node
            .deal(*deal)
            .await
            .with_context(|| format!("asking {} for deal {deal}", endpoint.rpc))?
        else {
            bail!("deal {deal} is not on chain (check the id and the --rpc endpoint)");
        };
        let view = match scheduler {
            Some(url) => Some(
                xiebao_sdk::requester::scheduler_client(url)?
                    .deal_view(*deal)
                    .await
                    .with_context(|| format!("asking the scheduler at {url}"))?,
            ),
            None => None,
        };
        if endpoint.json {
            println!("{}", serde_json::json!({ "deal": deal, "chain": record, "scheduler": view }));
            return Ok(deal_final(&record));
        }
        println!("deal {deal}");
        println!(
            "  app {} · workerpool {} · trust {} · {} tasks from index {}",
            record.app.pointer,
            record.workerpool.pointer,
            record.trust,
            record.bot_size,
            record.bot_first
        );
        println!(
            "  completed {} · failed {} · initialized {}{}",
            record.completed,
            record.failed,
            record.initialized,
            if record.expired { " · expired" } else { "" }
        );
        let now = crate::common::chain_now(&node).await?;
        println!("  started {} · T = {} s", when(record.start_time, now), record.time_ref_s);
        println!("  deadlines (chain time {}):", utc(now));
        println!("    contribution  {}", when(record.contribution_deadline(), now));
        println!("    final         {}", when(record.final_deadline(), now));
        match view.flatten() {
            Some(view) => {
                for t in view.tasks.iter().filter(|t| !t.state.is_final()) {
                    println!(
                        "  task {} ({}): {} — {}",
                        t.index,
                        t.task,
                        describe(&t.state),
                        t.last_event
                    );
                }
            }
            None => {
                for i in 0..record.bot_size.min(20) {
                    let id = ids::task_id(deal, record.bot_first + U256::from(i));
                    println!("  task {i}: {id}");
                }
            }
        }
        Ok(deal_final(&record))
    }))
}

/// Whether every task of a deal is final.
fn deal_final(record: &xiebao_rpc::Deal) -> bool {
    record.completed + record.failed >= record.bot_size
}

#[allow(clippy::print_stdout, reason = "the command's output")]
fn claim(
    task: B256,
    key: &crate::common::KeyArgs,
    endpoint: &crate::common::Endpoint,
) -> anyhow::Result<()> {
    let key = crate::common::signing_key(&key.key_file, key.password_file.as_deref())?;
    crate::common::client_runtime()?.block_on(async {
        let node = xiebao_sdk::client::Node::connect(&endpoint.rpc).await?;
        let call = xiebao_types::tx::Claim { task_id: task }.into();
        let applied = crate::common::send_call(&node, key, call, "the claim").await?;
        if endpoint.json {
            println!("{}", serde_json::json!({ "task": task, "block": applied.height }));
        } else {
            println!("task {task} claimed in block {}: failed and refunded", applied.height);
        }
        Ok(())
    })
}
