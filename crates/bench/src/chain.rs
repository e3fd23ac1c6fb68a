//! `xiebao bench chain`: a 4-validator network as 4 processes on this machine, and the same
//! network in one process (one thread per validator, still talking over loopback TCP),
//! measured from the outside over JSON-RPC: finality latency of single transfers, finalized
//! calls/s under load from several senders (batched transactions) and with one call per
//! transaction (the baseline), and trust-1 task lifecycles.

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use alloy_primitives::Address;
use anyhow::{Context, bail};
use xiebao_rpc::jsonrpsee::http_client::HttpClient;
use xiebao_rpc::{TxStatus, XiebaoApiClient};
use xiebao_types::crypto::SecretKey;
use xiebao_types::tx::{Transaction, Transfer};
use xiebao_types::{Nrlc, SignedTransaction};

use crate::Figure;
use xiebao_chain::config::Timing;
use xiebao_devnet::network::{GenesisBase, localnet_configs};
use xiebao_devnet::process::{spawn_node, spawn_nodes};

const CHAIN_ID: u64 = xiebao_protocol::testkit::CHAIN_ID;
const VALIDATORS: usize = 4;
/// Bound on every wait.
const PATIENCE: Duration = Duration::from_secs(300);

/// Validator processes, stopped and their folder removed however the bench ends.
struct Network {
    children: Vec<Child>,
    dir: PathBuf,
}

impl Drop for Network {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sender(index: usize) -> SecretKey {
    SecretKey::from_label(&format!("bench-chain-sender-{index}"))
}

fn transfers(key: &SecretKey, nonce: u64, calls: usize, salt: usize) -> SignedTransaction {
    let calls = (0..calls)
        .map(|i| {
            let to = Address::left_padding_from(&(((salt * 7919 + i) % 1000) as u64).to_be_bytes());
            Transfer { to, amount: Nrlc(1) }.into()
        })
        .collect();
    Transaction { chain_id: CHAIN_ID, nonce, calls }.sign(key)
}

async fn included(client: &HttpClient, hash: alloy_primitives::B256) -> anyhow::Result<bool> {
    Ok(matches!(client.transaction(hash).await?, TxStatus::Included { .. }))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Finality of `samples` single transfers from `key` (nonces from `first_nonce`), one at a
/// time, each submitted to the next of `clients` and timed until that validator reports it
/// executed in a finalized block; sorted, in milliseconds.
async fn finality(
    clients: &[HttpClient],
    key: &SecretKey,
    first_nonce: u64,
    samples: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut latencies = Vec::with_capacity(samples);
    for n in 0..samples {
        let client = &clients[n % clients.len()];
        let tx = transfers(key, first_nonce + n as u64, 1, n);
        let sent = Instant::now();
        let hash = client.send_raw_transaction(tx.encode_to_vec().into()).await?;
        while !included(client, hash).await? {
            if sent.elapsed() > PATIENCE {
                bail!("transfer {hash} did not finalize within {PATIENCE:?}");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(sent.elapsed().as_secs_f64() * 1e3);
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

/// A transaction of `calls` contributions with garbage authorizations: each costs a node one
/// signature recovery to admit (it never applies).
fn junk_contributions(key: &SecretKey, nonce: u64, calls: usize) -> SignedTransaction {
    let calls = (0..calls)
        .map(|i| {
            let mut authorization = vec![0x11u8; 65];
            authorization[64] = 27;
            xiebao_types::tx::Contribute {
                task_id: alloy_primitives::B256::from(alloy_primitives::U256::from(i)),
                result_hash: alloy_primitives::B256::repeat_byte(1),
                result_seal: alloy_primitives::B256::repeat_byte(2),
                enclave_challenge: Address::ZERO,
                enclave_sign: alloy_primitives::Bytes::new(),
                authorization_sign: authorization.into(),
            }
            .into()
        })
        .collect();
    Transaction { chain_id: CHAIN_ID, nonce, calls }.sign(key)
}

/// What an attacker gets from flooding validator 0's RPC, on the 4-process network after the
/// suite: an honest transfer's finality on that validator while clients re-send a heavy
/// transaction (3,000 signatures) and send fresh ones from keys that hold nothing, against
/// the same without the flood in the same run; then the validators' memory after a mempool
/// flood (gapped ~0.5 MB transactions from many funded and empty keys, never runnable).
async fn flood(
    network: &Network,
    clients: &[HttpClient],
    honest: &SecretKey,
    quick: bool,
) -> anyhow::Result<Vec<Figure>> {
    let samples = if quick { 6 } else { 40 };
    let target = std::slice::from_ref(&clients[0]);
    // The re-sent heavy transaction comes from a funded key, so it is admitted once (parked
    // behind a nonce gap) and every re-send is a duplicate.
    let funded = SecretKey::from_label("bench-flood-funded");
    let nonce = clients[0].account(honest.address()).await?.nonce;
    let fund = Transaction {
        chain_id: CHAIN_ID,
        nonce,
        calls: vec![Transfer { to: funded.address(), amount: Nrlc::rlc(10) }.into()],
    }
    .sign(honest);
    let hash = clients[0].send_raw_transaction(fund.encode_to_vec().into()).await?;
    finalized(&clients[0], hash).await?;
    let first = nonce + 1;
    let quiet = finality(target, honest, first, samples).await?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let heavy = junk_contributions(&funded, 1, 3_000).encode_to_vec();
    let mut flooders = Vec::new();
    for f in 0..4usize {
        let (client, heavy, stop, sent) =
            (clients[0].clone(), heavy.clone(), stop.clone(), sent.clone());
        flooders.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // The same heavy transaction again, and a fresh one from a new empty key.
                let _ = client.send_raw_transaction(heavy.clone().into()).await;
                let key = SecretKey::from_label(&format!("bench-flood-{f}-{n}"));
                let fresh = junk_contributions(&key, 0, 1_000).encode_to_vec();
                let _ = client.send_raw_transaction(fresh.into()).await;
                sent.fetch_add(2, std::sync::atomic::Ordering::Relaxed);
                n += 1;
            }
        }));
    }
    let flooded = finality(target, honest, first + samples as u64, samples).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for flooder in flooders {
        let _ = flooder.await;
    }
    let flooded = flooded?;
    let requests = sent.load(std::sync::atomic::Ordering::Relaxed);

    // The mempool flood: 16 funded keys and 64 empty ones each send gapped ~0.5 MB
    // transactions until refused.
    let keys: Vec<SecretKey> =
        (0..80).map(|k| SecretKey::from_label(&format!("bench-mempool-flood-{k}"))).collect();
    let mut last = None;
    for (k, key) in keys.iter().take(16).enumerate() {
        let fund = Transaction {
            chain_id: CHAIN_ID,
            nonce: first + 2 * samples as u64 + k as u64,
            calls: vec![Transfer { to: key.address(), amount: Nrlc::rlc(10) }.into()],
        }
        .sign(honest);
        last = Some(clients[0].send_raw_transaction(fund.encode_to_vec().into()).await?);
    }
    finalized(&clients[0], last.expect("16 funding transfers")).await?;
    let rss_before = validators_rss_mib(network)?;
    let mut refused = 0u64;
    let mut admitted = 0u64;
    for (k, key) in keys.iter().enumerate() {
        for nonce in 1..=40u64 {
            let tx = junk_contributions(key, nonce, 2_500).encode_to_vec();
            match clients[k % clients.len()].send_raw_transaction(tx.into()).await {
                Ok(_) => admitted += 1,
                Err(_) => {
                    refused += 1;
                    break;
                }
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss = validators_rss_mib(network)?;
    let quiet_p50 = percentile(&quiet, 0.5);
    let flooded_p50 = percentile(&flooded, 0.5);
    Ok(vec![
        Figure {
            name: "chain.flood.finality_ms_p50",
            value: flooded_p50,
            unit: "ms",
            note: format!(
                "one transfer on validator 0 while 4 clients flood its RPC ({requests} requests: a 3,000-signature transaction re-sent, fresh 1,000-signature ones from empty keys); {:.2}× the quiet figure (target ≤ 2×)",
                flooded_p50 / quiet_p50
            ),
        },
        Figure {
            name: "chain.flood.finality_ms_p50_quiet",
            value: quiet_p50,
            unit: "ms",
            note: format!(
                "baseline: the same {samples} transfers on validator 0 without the flood, same run"
            ),
        },
        Figure {
            name: "chain.flood.validator_rss_mib",
            value: rss,
            unit: "MiB",
            note: format!(
                "the largest validator's resident memory after a mempool flood of gapped ~0.5 MB transactions from 16 funded and 64 empty keys ({admitted} admitted, {refused} refused at their quota; budget 32 MiB of encoded transactions; before the flood: {rss_before:.0} MiB)"
            ),
        },
    ])
}

/// Waits until `client` reports `hash` executed in a finalized block.
async fn finalized(client: &HttpClient, hash: alloy_primitives::B256) -> anyhow::Result<()> {
    let start = Instant::now();
    while !included(client, hash).await? {
        if start.elapsed() > PATIENCE {
            bail!("transaction {hash} did not finalize within {PATIENCE:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// The largest resident memory of the network's validator processes, MiB.
fn validators_rss_mib(network: &Network) -> anyhow::Result<f64> {
    let mut largest = 0;
    for child in &network.children {
        let pid = child.id().to_string();
        let kib = crate::growth::memory_kib(&pid, "VmRSS")
            .with_context(|| format!("reading the memory of validator process {pid}"))?;
        largest = largest.max(kib);
    }
    Ok(largest as f64 / 1024.0)
}

/// Sends `txs_per_sender` transactions of `calls` calls from each sender (spread over the
/// validators) and waits until all are finalized; returns finalized calls/s and txs/s.
async fn load(
    clients: &[HttpClient],
    senders: &[SecretKey],
    first_nonce: u64,
    txs_per_sender: u64,
    calls: usize,
) -> anyhow::Result<(f64, f64)> {
    let batches: Vec<Vec<SignedTransaction>> = senders
        .iter()
        .enumerate()
        .map(|(s, key)| {
            (0..txs_per_sender)
                .map(|n| transfers(key, first_nonce + n, calls, s * 100_000 + n as usize))
                .collect()
        })
        .collect();
    let start = Instant::now();
    let mut sends = Vec::new();
    for (s, batch) in batches.iter().enumerate() {
        let client = clients[s % clients.len()].clone();
        let batch = batch.clone();
        sends.push(tokio::spawn(async move {
            for tx in batch {
                client.send_raw_transaction(tx.encode_to_vec().into()).await?;
            }
            anyhow::Ok(())
        }));
    }
    for send in sends {
        send.await??;
    }
    let target = first_nonce + txs_per_sender;
    for key in senders {
        loop {
            if clients[0].account(key.address()).await?.nonce >= target {
                break;
            }
            if start.elapsed() > PATIENCE {
                bail!("load did not finalize within {PATIENCE:?}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let txs = (senders.len() as u64 * txs_per_sender) as f64;
    Ok((txs * calls as f64 / seconds, txs / seconds))
}

/// Runs the suite.
///
/// # Errors
/// If the network does not start or a transaction is refused.
pub(crate) fn chain(quick: bool) -> anyhow::Result<Vec<Figure>> {
    let dir = std::env::temp_dir().join(format!("xiebao-bench-chain-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let senders: Vec<SecretKey> = (0..8).map(sender).collect();
    let funds: Vec<_> = senders.iter().map(|k| (k.address(), Nrlc::rlc(1_000_000))).collect();
    // Trust-1 task lifecycles from the protocol playground: its genesis (plus the senders)
    // starts the network, its transactions are replayed.
    let (volume, batch) = if quick { (20, 10) } else { (10_000, 100) };
    let (world, init_txs, settle_txs) = crate::suites::trust1_batches(volume, batch);
    let mut genesis = xiebao_chain::config::GenesisFile::from_protocol(&world.genesis, 0);
    genesis.balances.extend(funds);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut figures = Vec::new();
    for one_process in [false, true] {
        let dir = dir.join(if one_process { "one-process" } else { "processes" });
        let (network, clients) = runtime.block_on(start_network(
            dir,
            genesis.clone(),
            &Timing::default(),
            one_process,
        ))?;
        let measured = runtime.block_on(measure(
            &clients,
            &senders,
            &world,
            (&init_txs, &settle_txs),
            quick,
            one_process,
        ))?;
        if !one_process {
            figures.extend(validator_memory(&network, volume)?);
            figures.extend(runtime.block_on(flood(&network, &clients, &senders[0], quick))?);
        }
        drop(network);
        figures.extend(measured);
    }
    let ours = figures[0].value;
    figures.push(runtime.block_on(iexec_profile(quick, genesis, ours))?);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(figures)
}

/// The validator processes' resident memory after the suite's load (the largest of the
/// four, now and at its peak): each node's own cost, beside the state's
/// (`growth.restart_rss_mib`).
fn validator_memory(network: &Network, tasks: u64) -> anyhow::Result<Vec<Figure>> {
    let read = |field: &str| -> anyhow::Result<f64> {
        let mut largest = 0;
        for child in &network.children {
            let kib = crate::growth::memory_kib(&child.id().to_string(), field)
                .with_context(|| format!("reading {field} of validator process {}", child.id()))?;
            largest = largest.max(kib);
        }
        Ok(largest as f64 / 1024.0)
    };
    Ok(vec![
        Figure {
            name: "chain.validator_rss_mib",
            value: read("VmRSS")?,
            unit: "MiB",
            note: format!(
                "the largest of the 4 validator processes' resident memory after the suite ({tasks} finished tasks, finality and load runs); finished tasks are evicted to the store"
            ),
        },
        Figure {
            name: "chain.validator_peak_rss_mib",
            value: read("VmHWM")?,
            unit: "MiB",
            note: "the same processes' peak resident memory".into(),
        },
    ])
}

/// Finality, throughput and task lifecycles on a running network (`one_process`: the figures
/// are named `chain.one_process.…`).
async fn measure(
    clients: &[HttpClient],
    senders: &[SecretKey],
    world: &xiebao_protocol::testkit::World,
    (init_txs, settle_txs): (&[xiebao_protocol::VerifiedTx], &[xiebao_protocol::VerifiedTx]),
    quick: bool,
    one_process: bool,
) -> anyhow::Result<Vec<Figure>> {
    let volume = init_txs.iter().map(|tx| tx.tx.calls.len()).sum::<usize>();
    let batch = init_txs.first().map_or(0, |tx| tx.tx.calls.len());
    let names = if one_process {
        [
            "chain.one_process.tasks_per_s",
            "chain.one_process.finality_ms_p50",
            "chain.one_process.finality_ms_p99",
            "chain.one_process.calls_per_s",
            "chain.one_process.txs_per_s",
            "chain.one_process.single_call_txs_per_s",
        ]
    } else {
        [
            "chain.tasks_per_s",
            "chain.finality_ms_p50",
            "chain.finality_ms_p99",
            "chain.calls_per_s",
            "chain.txs_per_s",
            "chain.single_call_txs_per_s",
        ]
    };
    let shape = if one_process {
        "4 validators in one process (a thread each, loopback TCP between them)"
    } else {
        "4 validator processes"
    };
    {
        // Finality: one transfer at a time, submitted to each validator in turn, timed until
        // that validator reports it executed in a finalized block.
        let samples = if quick { 8 } else { 100 };
        let latencies = finality(clients, &senders[0], 0, samples).await?;

        // Throughput: batched (100 calls per transaction) vs one call per transaction.
        let (txs_per_sender, calls) = if quick { (4, 10) } else { (200, 100) };
        let (batched_calls_s, batched_txs_s) =
            load(clients, &senders[1..], 0, txs_per_sender, calls).await?;
        let single_txs = if quick { 8 } else { 600 };
        let (single_calls_s, _) = load(clients, &senders[1..], txs_per_sender, single_txs, 1)
            .await
            .context("one call per transaction")?;
        // Task lifecycles: the playground's set-up, then initialize and contributeAndFinalize
        // batches (`batch` tasks per transaction) through one validator, in order.
        for tx in &world.transactions {
            clients[0].send_raw_transaction(tx.encode_to_vec().into()).await?;
        }
        let last = world.transactions.last().expect("set-up transactions").hash();
        while !included(&clients[0], last).await? {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let worker = world.actors.workers[0].address();
        let worker_target = clients[0].account(worker).await?.nonce + settle_txs.len() as u64;
        let start = Instant::now();
        for (init, settle) in init_txs.iter().zip(settle_txs) {
            clients[0].send_raw_transaction(init.signed().encode_to_vec().into()).await?;
            clients[0].send_raw_transaction(settle.signed().encode_to_vec().into()).await?;
        }
        while clients[0].account(worker).await?.nonce < worker_target {
            if start.elapsed() > PATIENCE {
                bail!("task lifecycles did not finalize within {PATIENCE:?}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let tasks_per_s = volume as f64 / start.elapsed().as_secs_f64();
        anyhow::Ok(vec![
            Figure {
                name: names[0],
                value: tasks_per_s,
                unit: "tasks/s",
                note: format!(
                    "{volume} trust-1 lifecycles (initialize + contributeAndFinalize, {batch} per tx), first tx → last finalized; iExec's sidechain ≈ 1.3/s"
                ),
            },
            Figure {
                name: names[1],
                value: percentile(&latencies, 0.5),
                unit: "ms",
                note: format!(
                    "one transfer, submit → executed in a finalized block, {samples} samples, {shape}"
                ),
            },
            Figure {
                name: names[2],
                value: percentile(&latencies, 0.99),
                unit: "ms",
                note: "same samples".into(),
            },
            Figure {
                name: names[3],
                value: batched_calls_s,
                unit: "calls/s",
                note: format!(
                    "7 senders × {txs_per_sender} txs × {calls} transfers, first submit → last finalized"
                ),
            },
            Figure { name: names[4], value: batched_txs_s, unit: "txs/s", note: "same run".into() },
            Figure {
                name: names[5],
                value: single_calls_s,
                unit: "calls/s",
                note: format!(
                    "baseline: 7 senders × {single_txs} txs of 1 transfer; batched is {:.1}× this",
                    batched_calls_s / single_calls_s
                ),
            },
        ])
    }
}

/// Starts `VALIDATORS` validators under `dir` with `timing`, as as many processes or
/// (`one_process`) together in one; returns them with one client each, once every one has
/// finalized a block.
async fn start_network(
    dir: PathBuf,
    genesis: xiebao_chain::config::GenesisFile,
    timing: &Timing,
    one_process: bool,
) -> anyhow::Result<(Network, Vec<HttpClient>)> {
    let _ = std::fs::remove_dir_all(&dir);
    let options = xiebao_devnet::network::NodeOptions { timing: timing.clone(), bridge: None };
    let file = localnet_configs(&dir, VALIDATORS, GenesisBase::Template(genesis), &options)?;
    let mut network = Network { children: Vec::new(), dir };
    if one_process {
        let configs: Vec<&std::path::Path> = file.configs.iter().map(PathBuf::as_path).collect();
        network.children.push(spawn_nodes(crate::program()?, &configs)?);
    } else {
        for config in &file.configs {
            network.children.push(spawn_node(crate::program()?, config)?);
        }
    }
    let clients: Vec<HttpClient> =
        file.rpc.iter().map(|url| xiebao_rpc::http_client(url)).collect::<Result<_, _>>()?;
    let start = Instant::now();
    for client in &clients {
        while client.chain_status().await.map_or(true, |s| s.height < 1) {
            if start.elapsed() > PATIENCE {
                bail!("the network did not start within {PATIENCE:?}");
            }
            for (i, child) in network.children.iter_mut().enumerate() {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = network.dir.join(format!("validator-{i}/node.log"));
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(5).collect();
                    bail!("validator {i} exited ({status}); its log ends:\n{}", tail.join("\n"));
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok((network, clients))
}

/// The design we replace, on the same machine and code: iExec's sidechain profile — 5 s
/// blocks, one call per transaction, no contributeAndFinalize (initialize, contribute, reveal
/// and finalize each a transaction), and a block budget of 32 transactions standing in for
/// its gas limit (≈ 4 transactions of ≈ 0.2 M gas per task, 8 tasks per block).
async fn iexec_profile(
    quick: bool,
    genesis: xiebao_chain::config::GenesisFile,
    ours: f64,
) -> anyhow::Result<Figure> {
    let (interval_ms, volume) =
        if quick { (1_000, 8) } else { (xiebao_devnet::network::IEXEC_BLOCK_INTERVAL_MS, 40) };
    let timing = xiebao_devnet::network::block_timing(
        interval_ms,
        xiebao_devnet::network::IEXEC_BLOCK_TXS_MAX,
    );
    let (world, stages) = crate::suites::classic_trust1(volume);
    let dir = std::env::temp_dir().join(format!("xiebao-bench-iexec-{}", std::process::id()));
    let (network, clients) = start_network(dir, genesis, &timing, false).await?;
    for tx in &world.transactions {
        clients[0].send_raw_transaction(tx.encode_to_vec().into()).await?;
    }
    let last = world.transactions.last().expect("set-up transactions").hash();
    while !included(&clients[0], last).await? {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let owner = world.actors.pool_owner.address();
    let target = clients[0].account(owner).await?.nonce + 2 * volume;
    let start = Instant::now();
    for tx in stages.iter().flatten() {
        clients[0].send_raw_transaction(tx.signed().encode_to_vec().into()).await?;
    }
    while clients[0].account(owner).await?.nonce < target {
        if start.elapsed() > PATIENCE {
            bail!("the iExec-profile tasks did not finalize within {PATIENCE:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tasks_per_s = volume as f64 / start.elapsed().as_secs_f64();
    drop(network);
    Ok(Figure {
        name: "chain.iexec_profile_tasks_per_s",
        value: tasks_per_s,
        unit: "tasks/s",
        note: format!(
            "baseline: {volume} trust-1 tasks, {} s blocks, 1 call per tx, initialize/contribute/reveal/finalize, ≤ {} txs per block; our defaults are {:.0}× this",
            interval_ms / 1_000,
            xiebao_devnet::network::IEXEC_BLOCK_TXS_MAX,
            ours / tasks_per_s
        ),
    })
}
