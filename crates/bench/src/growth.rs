//! `xiebao bench growth`: how the node's costs grow with the state — one state grown to 10⁴,
//! 10⁵ and 10⁶ finished trust-1 tasks (batched initialize + contributeAndFinalize, committed
//! to the node's redb store block by block), measured at each size: the store's size on disk,
//! a restart (a fresh process opening the store, loading the state and checking its root
//! against the head, as `xiebao node` does) with its time and resident memory, and the state
//! root of one block (the incremental lattice root) beside the whole-state recomputation it
//! replaced.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use alloy_primitives::{B256, U256};
use anyhow::Context as _;
use xiebao_node::{Block, Header, block::tx_root};
use xiebao_protocol::testkit::{DealSpec, World};
use xiebao_protocol::{apply, end_block};
use xiebao_store::Store;
use xiebao_types::Nrlc;
use xiebao_types::tx::{Call, Initialize, PoolPolicy};

use crate::Figure;

/// Tasks per transaction (the scheduler's and the worker's batches).
const BATCH: u64 = 500;
/// Tasks per committed block.
const BLOCK_TASKS: u64 = 5_000;

/// Grows the state through `sizes` finished tasks (ascending) and measures at each.
pub(crate) fn growth(quick: bool) -> anyhow::Result<Vec<Figure>> {
    let sizes: &[u64] = if quick { &[1_000, 4_000] } else { &[10_000, 100_000, 1_000_000] };
    let dir = std::env::temp_dir().join(format!("xiebao-bench-growth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("chain.redb");
    let mut store = Store::open(&path)?;
    let mut world =
        World::new(1, Nrlc::rlc(1_000_000_000), PoolPolicy::default(), Nrlc::rlc(1_000_000));
    let mut head = Header {
        chain_id: xiebao_protocol::testkit::CHAIN_ID,
        height: 0,
        parent: B256::ZERO,
        timestamp: world.block.timestamp,
        proposer: alloy_primitives::Address::ZERO,
        tx_root: tx_root([]),
        state_root: world.state.digest(),
    };
    store.init(&mut world.state, &head)?;
    let mut figures = Vec::new();
    let mut done = 0;
    let mut root_ms = 0.0;
    let started = Instant::now();
    for &size in sizes {
        while done < size {
            let volume = (size - done).min(BLOCK_TASKS);
            (head, root_ms) = commit_block(&store, &mut world, &head, volume)?;
            done += volume;
        }
        let label = size_label(size);
        let bytes = std::fs::metadata(&path)?.len();
        figures.push(Figure {
            name: name("growth.store_mib", &label),
            value: bytes as f64 / (1 << 20) as f64,
            unit: "MiB",
            note: format!("redb file holding {label} finished tasks ({} blocks)", head.height),
        });
        let digest_started = Instant::now();
        let digest = world.state.full_digest();
        let full_ms = digest_started.elapsed().as_secs_f64() * 1e3;
        assert_eq!(digest, head.state_root, "the incremental root equals the full recomputation");
        // redb allows one process at a time: the restart process opens it alone.
        drop(store);
        let (restart_ms, rss_kib) = restart(&path)?;
        store = Store::open(&path)?;
        figures.push(Figure {
            name: name("growth.restart_ms", &label),
            value: restart_ms,
            unit: "ms",
            note: "new process: open, load, check the root (target < 5,000 ms at 10⁶)".into(),
        });
        figures.push(Figure {
            name: name("growth.restart_rss_mib", &label),
            value: rss_kib as f64 / 1024.0,
            unit: "MiB",
            note: "that process's resident memory after loading (target < 500 MiB at 10⁶)".into(),
        });
        figures.push(Figure {
            name: name("growth.block_root_ms", &label),
            value: root_ms,
            unit: "ms",
            note: format!(
                "state root of a {BLOCK_TASKS}-task block (lattice updated per written entry); the whole-state recomputation it replaces: {full_ms:.0} ms"
            ),
        });
        figures.push(Figure {
            name: name("growth.full_digest_ms", &label),
            value: full_ms,
            unit: "ms",
            note: "baseline: the root recomputed from every entry (the per-block cost before)"
                .into(),
        });
    }
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    figures.push(Figure {
        name: "growth.build_tasks_per_s",
        value: done as f64 / started.elapsed().as_secs_f64(),
        unit: "tasks/s",
        note: "growing the state: signing, apply, change sets, redb commits, one thread".into(),
    });
    Ok(figures)
}

/// `growth.x` named for a size: `growth.x@1e6`.
fn name(base: &str, label: &str) -> &'static str {
    Box::leak(format!("{base}@{label}").into_boxed_str())
}

fn size_label(size: u64) -> String {
    let exponent = size.ilog10();
    if 10u64.pow(exponent) == size { format!("1e{exponent}") } else { size.to_string() }
}

/// One block settling `volume` tasks of a new deal; its header and the time its state root
/// took.
fn commit_block(
    store: &Store,
    world: &mut World,
    head: &Header,
    volume: u64,
) -> anyhow::Result<(Header, f64)> {
    let deal = world.deal(&DealSpec { volume, ..DealSpec::default() }).expect("deal");
    let first = world.state.deals()[&deal].bot_first;
    let owner = world.actors.pool_owner.clone();
    let worker = world.actors.workers[0].clone();
    let mut txs = Vec::new();
    for start in (0..volume).step_by(BATCH as usize) {
        let chunk = start..(start + BATCH).min(volume);
        let calls: Vec<Call> = chunk
            .clone()
            .map(|i| Initialize { deal_id: deal, idx: first + U256::from(i) }.into())
            .collect();
        let tx = world.sign(&owner, calls);
        apply(&mut world.state, &tx, &world.block).expect("initialize");
        txs.push(tx.signed());
        let calls: Vec<Call> = chunk
            .map(|i| {
                let task = world.task_id(&deal, i);
                world.contribute_and_finalize_call(0, &task, &B256::repeat_byte(0x60))
            })
            .collect();
        let tx = world.sign(&worker, calls);
        apply(&mut world.state, &tx, &world.block).expect("settle");
        txs.push(tx.signed());
    }
    end_block(&mut world.state, &world.block);
    let root_started = Instant::now();
    let state_root = world.state.fold_digest();
    let root_ms = root_started.elapsed().as_secs_f64() * 1e3;
    let header = Header {
        chain_id: head.chain_id,
        height: head.height + 1,
        parent: head.hash(),
        timestamp: world.block.timestamp,
        proposer: alloy_primitives::Address::ZERO,
        tx_root: tx_root(txs.iter().map(|t| t.hash())),
        state_root,
    };
    let block = Block { header: header.clone(), txs };
    store.commit(&block, world.state.take_changes()).context("committing a block")?;
    world.block.height += 1;
    world.block.timestamp += 1;
    Ok((header, root_ms))
}

/// Restarts from the store in a fresh process; its time and resident memory.
fn restart(path: &Path) -> anyhow::Result<(f64, u64)> {
    let output = Command::new(crate::program()?)
        .args(["bench", "growth", "--load-store"])
        .arg(path)
        .output()
        .context("starting the restart process")?;
    anyhow::ensure!(
        output.status.success(),
        "the restart failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let ms = report["load_ms"].as_f64().context("load_ms")?;
    let rss = report["rss_kib"].as_u64().context("rss_kib")?;
    Ok((ms, rss))
}

/// A process's memory figure from Linux's `/proc/PID/status` (`field`: `VmRSS`, `VmHWM`…),
/// in KiB; `pid` is a process id or `self`.
pub(crate) fn memory_kib(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}

/// The restart process: opens the store, loads and checks the state; its time and RSS, as
/// the JSON object the parent reads (`load_ms`, `rss_kib`, `height`, `tasks`).
///
/// # Errors
/// When the store cannot be opened or holds no state.
pub fn load_store(path: &Path) -> anyhow::Result<serde_json::Value> {
    let started = Instant::now();
    let store = Store::open(path)?;
    let (state, head) =
        store.load(xiebao_protocol::FinishedTasks::Evict)?.context("an empty store")?;
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let rss_kib = memory_kib("self", "VmRSS").unwrap_or(0);
    Ok(serde_json::json!({
        "load_ms": load_ms,
        "rss_kib": rss_kib,
        "height": head.height,
        "tasks": state.task_count(),
    }))
}
