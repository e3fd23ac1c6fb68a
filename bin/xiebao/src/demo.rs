//! `xiebao demo`: a Bag-of-Tasks deal played through the protocol state machine, printing who
//! was paid what. (The devnet will replace it with a real network.)

use alloy_primitives::{Address, B256};
use xiebao_protocol::testkit::{DealSpec, World};
use xiebao_types::Nrlc;
use xiebao_types::tx::PoolPolicy;

/// Arguments of `xiebao demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Number of tasks in the bag.
    #[arg(long, default_value_t = 8)]
    volume: u64,
    /// Trust level (replication).
    #[arg(long, default_value_t = 3)]
    trust: u64,
    /// Print JSON: the deal, the task counts and every party's balances (nRLC).
    #[arg(long)]
    json: bool,
}

/// One party's balances after the deal, and how much they changed.
struct Party {
    party: String,
    address: Address,
    free: Nrlc,
    frozen: Nrlc,
    change: i128,
}

#[allow(clippy::print_stdout, reason = "the demo's report is its output")]
pub(crate) fn run(args: &DemoArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.volume >= 1 && args.volume <= 10_000,
        "--volume must be between 1 and 10000, got {}",
        args.volume
    );
    let workers = 4;
    let mut w = World::new(workers, Nrlc::rlc(100), PoolPolicy::default(), Nrlc::rlc(20));
    let parties: Vec<(String, Address)> = [
        ("requester".to_owned(), w.actors.requester.address()),
        ("app owner".to_owned(), w.actors.app_owner.address()),
        ("dataset owner".to_owned(), w.actors.dataset_owner.address()),
        ("pool owner (scheduler)".to_owned(), w.actors.pool_owner.address()),
    ]
    .into_iter()
    .chain((0..workers).map(|i| {
        let label = if i == workers - 1 {
            format!("worker {i} (byzantine)")
        } else {
            format!("worker {i}")
        };
        (label, w.actors.workers[i].address())
    }))
    .chain([("kitty".to_owned(), xiebao_types::ids::kitty_address())])
    .collect();
    let before: Vec<(Nrlc, Nrlc)> =
        parties.iter().map(|(_, a)| (w.free(*a), w.frozen(*a))).collect();

    let spec = DealSpec {
        volume: args.volume,
        trust: args.trust,
        app_price: Nrlc::rlc(1),
        dataset_price: Some(Nrlc(500_000_000)),
        pool_price: Nrlc::rlc(4),
        ..DealSpec::default()
    };
    let deal = w.deal(&spec).map_err(|e| anyhow::anyhow!("matchOrders: {e}"))?;
    let tasks =
        w.initialize(&deal, 0..args.volume).map_err(|e| anyhow::anyhow!("initialize: {e}"))?;

    let honest = B256::repeat_byte(0x60);
    let (mut completed, mut failed) = (0, 0);
    for (n, task) in tasks.iter().enumerate() {
        // Workers take tasks in rotation; the byzantine one always returns a wrong digest.
        let mut contributors = Vec::new();
        for k in 0..workers {
            let worker = (n + k) % workers;
            let digest = if worker == workers - 1 { B256::repeat_byte(0xba) } else { honest };
            if w.state.tasks()[task].status != xiebao_protocol::TaskStatus::Active {
                break;
            }
            w.contribute(worker, task, &digest).map_err(|e| anyhow::anyhow!("contribute: {e}"))?;
            contributors.push((worker, digest));
        }
        if w.state.tasks()[task].status == xiebao_protocol::TaskStatus::Revealing {
            for (worker, digest) in &contributors {
                if *digest == honest {
                    w.reveal(*worker, task, digest).map_err(|e| anyhow::anyhow!("reveal: {e}"))?;
                }
            }
            w.finalize(task).map_err(|e| anyhow::anyhow!("finalize: {e}"))?;
            completed += 1;
        } else {
            failed += 1;
        }
    }
    // Let the final deadline pass: the chain fails and refunds unfinished tasks by itself.
    w.advance(3_000);
    w.advance(1);
    w.state.check_invariants().map_err(|e| anyhow::anyhow!("invariant broken: {e}"))?;
    let rows: Vec<Party> = parties
        .iter()
        .zip(before)
        .map(|((label, address), (free0, frozen0))| {
            let (free, frozen) = (w.free(*address), w.frozen(*address));
            let change = (free.0 + frozen.0) as i128 - (free0.0 + frozen0.0) as i128;
            Party { party: label.clone(), address: *address, free, frozen, change }
        })
        .collect();
    let total = w.state.total_balances();
    if args.json {
        let parties: Vec<serde_json::Value> = rows
            .iter()
            .map(|p| {
                serde_json::json!({
                    "party": p.party,
                    "address": p.address,
                    "free_nrlc": p.free.0,
                    "frozen_nrlc": p.frozen.0,
                    "change_nrlc": p.change,
                })
            })
            .collect();
        let summary = serde_json::json!({
            "deal": deal,
            "volume": args.volume,
            "trust": args.trust,
            "initialized": tasks.len(),
            "completed": completed,
            "failed": failed,
            "parties": parties,
            "total_nrlc": total.0,
            "money_conserved": true,
        });
        println!("{summary}");
        return Ok(());
    }
    println!("deal {deal}: {} tasks, trust {}, category XS", args.volume, args.trust);
    println!("initialized {} tasks in one transaction", tasks.len());
    println!(
        "{completed} tasks completed, {failed} without consensus (refunded at the deadline)\n"
    );
    println!("{:<26} {:>16} {:>16} {:>14}", "party", "free (RLC)", "frozen (RLC)", "change (RLC)");
    for p in &rows {
        let sign = if p.change < 0 { "-" } else { "+" };
        println!(
            "{:<26} {:>16} {:>16} {:>14}",
            p.party,
            p.free.to_rlc_string(),
            p.frozen.to_rlc_string(),
            format!("{sign}{}", Nrlc(p.change.unsigned_abs()).to_rlc_string())
        );
    }
    println!("\nmoney conserved: Σ balances = {} RLC = supply", total.to_rlc_string());
    Ok(())
}
