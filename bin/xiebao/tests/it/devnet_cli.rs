//! The compute pipeline end to end through the real binaries: `xiebao devnet --demo` starts
//! validators, a result store, a scheduler and workers as processes and runs a Bag-of-Tasks
//! deal through them; the summary it prints is checked against PoCo's formulas.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alloy_primitives::B256;
use serde_json::Value;
use xiebao_scheduler::api::PoolApiClient as _;

fn nrlc(value: &Value) -> u128 {
    value
        .as_u64()
        .map(u128::from)
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not an amount: {value}"))
}

/// free + frozen of a named account in a balance map.
fn total(balances: &Value, name: &str) -> u128 {
    nrlc(&balances[name]["free"]) + nrlc(&balances[name]["frozen"])
}

fn free(balances: &Value, name: &str) -> u128 {
    nrlc(&balances[name]["free"])
}

fn run_devnet(dir: &std::path::Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "devnet".to_owned(),
        "--data-dir".into(),
        dir.display().to_string(),
        "--demo".into(),
        "--json".into(),
        "--timeout".into(),
        "200".into(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let output =
        Command::new(env!("CARGO_BIN_EXE_xiebao")).args(&args).output().expect("run xiebao");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "devnet failed: {stderr}\n{stdout}\n{}", logs(dir));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("summary is not JSON ({e}): {stdout}"))
}

/// The last lines of every component's log, for failure messages.
fn logs(dir: &std::path::Path) -> String {
    let mut out = String::new();
    let mut paths: Vec<_> = std::fs::read_dir(dir.join("logs"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.extend(
        std::fs::read_dir(dir.join("chain"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("node.log"))
            .filter(|p| p.exists()),
    );
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        out.push_str(&format!("--- {}\n{tail}\n", path.display()));
    }
    out
}

fn png_size(path: &str) -> (u32, u32) {
    let bytes = std::fs::read(path).expect("the picture exists");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{path} is not a PNG");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

/// Sum of free + frozen over every account the summary lists.
fn sum(balances: &Value) -> u128 {
    balances.as_object().unwrap().keys().map(|name| total(balances, name)).sum()
}

/// The devnet pool's worker stake ratio, % of the pool price locked per contribution.
const WORKER_STAKE_RATIO: u128 = 30;

/// A worker's weight at `score`: max(floor(score/3), 3) − 1 (reference §4.2).
fn weight_at(score: u64) -> u64 {
    (score / 3).max(3) - 1
}

/// Checks the demo's settlement against PoCo's formulas (reference §4.2, §4.5, §14), computed
/// here from the summary's chain data alone: prices, the scheduler's ratio ρ, every
/// contribution (worker, proved, payout weight, stake) and the score events in chain order.
///
/// - Scores, replayed from `score_before`: every contribution's payout weight is
///   floor(log2(max(floor(s/3), 3) − 1)) at the worker's score s when it contributed; a task
///   with more than one contribution raises each winner's score by 1 (`AccurateContribution`);
///   every loser's score becomes floor(2s/3) (`FaultyContribution`); the replay ends at
///   `score_after`.
/// - Per task: losers are the unproved contributions; totalReward = pool price + Σ losers'
///   stakes; workersReward = floor(totalReward·(100−ρ)/100); each winner gets
///   floor(workersReward·weight/Σ winners' weights); each loser loses its stake (pool price ×
///   30 % per contribution, none where trust-1 contributeAndFinalize locks nothing); the pool
///   owner (scheduler) gets totalReward − Σ winners' shares (the kitty is empty on a fresh
///   devnet: no kitty share).
/// - The requester pays app + pool price per task, the app owner earns the app price per task,
///   and money is conserved.
///
/// Returns each named account's expected change (free + frozen), nRLC.
fn check_balances_by_the_formulas(summary: &Value) -> BTreeMap<String, i128> {
    let (before, after) = (&summary["before"], &summary["after"]);
    let app = nrlc(&summary["app_price"]) as i128;
    let pool = nrlc(&summary["pool_price"]);
    let ratio = u128::from(summary["scheduler_reward_ratio"].as_u64().unwrap());
    let trust = summary["trust"].as_u64().unwrap();
    let tasks = summary["tasks"].as_u64().unwrap();
    // contributeAndFinalize locks no stake; a contribution (trust > 1, or trust 1 without
    // contributeAndFinalize) locks the deal's worker stake.
    let contribute_and_finalize = summary["contribute_and_finalize"].as_bool().unwrap();
    let stake =
        if trust > 1 || !contribute_and_finalize { pool * WORKER_STAKE_RATIO / 100 } else { 0 };
    let workers = summary["workers"].as_array().unwrap();
    let name_of: BTreeMap<String, String> = workers
        .iter()
        .enumerate()
        .map(|(i, w)| (w["address"].as_str().unwrap().to_lowercase(), format!("worker_{i}")))
        .collect();
    let address = |v: &Value| v.as_str().unwrap().to_lowercase();

    // Scores, replayed in chain order; each contribution's weight read off the replay.
    let mut scores: BTreeMap<String, u64> = workers
        .iter()
        .map(|w| (address(&w["address"]), w["score_before"].as_u64().unwrap()))
        .collect();
    let mut weight_when_contributed: BTreeMap<(u64, String), u32> = BTreeMap::new();
    // Per task: (accurate, faulty) workers as the chain reported them.
    let mut verdicts: BTreeMap<u64, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for event in summary["score_events"].as_array().unwrap() {
        let (kind, task, worker) =
            (event[0].as_str().unwrap(), event[1].as_u64().unwrap(), address(&event[2]));
        let score = scores.get_mut(&worker).unwrap_or_else(|| panic!("unknown worker {worker}"));
        match kind {
            "contribute" => {
                let log2 = weight_at(*score).ilog2();
                assert!(
                    weight_when_contributed.insert((task, worker.clone()), log2).is_none(),
                    "task {task}: {worker} contributed twice"
                );
            }
            "accurate" => {
                *score += 1;
                verdicts.entry(task).or_default().0.push(worker);
            }
            "faulty" => {
                *score = *score * 2 / 3;
                verdicts.entry(task).or_default().1.push(worker);
            }
            other => panic!("unknown score event {other}"),
        }
    }
    for (i, w) in workers.iter().enumerate() {
        assert_eq!(
            scores[&address(&w["address"])],
            w["score_after"].as_u64().unwrap(),
            "worker {i}'s score replayed from the events: {w}"
        );
    }

    let mut expected: BTreeMap<String, i128> =
        before.as_object().unwrap().keys().map(|name| (name.clone(), 0)).collect();
    let mut change = |name: &str, amount: i128| *expected.get_mut(name).unwrap() += amount;
    let contributions = summary["contributions"].as_array().unwrap();
    assert_eq!(contributions.len() as u64, tasks);
    for (index, task) in contributions.iter().enumerate() {
        let task = task.as_array().unwrap();
        let index = index as u64;
        let mut total_reward = pool;
        let mut winners_weight = 0u128;
        let (mut accurate, mut faulty) = (Vec::new(), Vec::new());
        for c in task {
            let worker = address(&c[0]);
            let weight = c[2].as_u64().unwrap();
            assert_eq!(
                Some(&(weight as u32)),
                weight_when_contributed.get(&(index, worker.clone())),
                "task {index}: {worker}'s payout weight is its weight's log2 when it contributed"
            );
            assert_eq!(nrlc(&c[3]), stake, "task {index}: {worker}'s stake");
            if c[1] == true {
                winners_weight += u128::from(weight);
                if task.len() > 1 {
                    accurate.push(worker);
                }
            } else {
                total_reward += stake;
                change(&name_of[&worker], -(stake as i128));
                faulty.push(worker);
            }
        }
        assert!(winners_weight > 0, "task {index} completed with a proved contribution: {task:?}");
        let workers_reward = total_reward * (100 - ratio) / 100;
        let mut paid = 0;
        for c in task.iter().filter(|c| c[1] == true) {
            let share = workers_reward * u128::from(c[2].as_u64().unwrap()) / winners_weight;
            change(&name_of[&address(&c[0])], share as i128);
            paid += share;
        }
        change("pool_owner", (total_reward - paid) as i128);
        change("requester", -(app + pool as i128));
        change("app_owner", app);
        let (mut got_accurate, mut got_faulty) = verdicts.remove(&index).unwrap_or_default();
        for list in [&mut accurate, &mut faulty, &mut got_accurate, &mut got_faulty] {
            list.sort();
        }
        assert_eq!((got_accurate, got_faulty), (accurate, faulty), "task {index}'s score events");
    }
    assert!(verdicts.is_empty(), "score events for unknown tasks: {verdicts:?}");
    assert_eq!(total(before, "kitty"), 0, "a fresh devnet's kitty is empty: no kitty share");
    for (name, change) in &expected {
        let got = total(after, name) as i128 - total(before, name) as i128;
        assert_eq!(got, *change, "{name}'s balance (free + frozen) changed by the formulas");
    }
    assert_eq!(sum(after), sum(before), "money is conserved among the participants");
    expected
}

#[test]
fn devnet_runs_a_bag_of_100_tasks_at_trust_1_and_pays_by_the_formulas() {
    let dir = tempfile::tempdir().unwrap();
    let summary = run_devnet(dir.path(), &["--tasks", "100", "--tile-size", "16"]);
    assert_eq!(summary["tasks"], 100);
    assert_eq!(png_size(summary["picture"].as_str().unwrap()), (160, 160));

    let (before, after) = (&summary["before"], &summary["after"]);
    let app = nrlc(&summary["app_price"]);
    let pool = nrlc(&summary["pool_price"]);
    let ratio = u128::from(summary["scheduler_reward_ratio"].as_u64().unwrap());
    // The requester paid every task, the app owner earned every app price.
    assert_eq!(free(before, "requester") - free(after, "requester"), 100 * (app + pool));
    assert_eq!(total(after, "requester"), total(before, "requester") - 100 * (app + pool));
    assert_eq!(total(after, "app_owner") - total(before, "app_owner"), 100 * app);
    // Each task: one contributeAndFinalize, proved.
    let contributions = summary["contributions"].as_array().unwrap();
    assert_eq!(contributions.len(), 100);
    let worker_reward = pool * (100 - ratio) / 100;
    let workers = summary["workers"].as_array().unwrap();
    let mut paid_workers = 0;
    for (i, worker) in workers.iter().enumerate() {
        let address = worker["address"].as_str().unwrap().to_lowercase();
        let won = contributions
            .iter()
            .filter(|c| {
                let c = c.as_array().unwrap();
                c.len() == 1
                    && c[0][0].as_str().unwrap().to_lowercase() == address
                    && c[0][1] == true
            })
            .count() as u128;
        let name = format!("worker_{i}");
        assert_eq!(total(after, &name) - total(before, &name), won * worker_reward, "{name}");
        paid_workers += won;
        // Trust 1 changes no score.
        assert_eq!(worker["score_after"], worker["score_before"]);
    }
    assert_eq!(paid_workers, 100, "every task was won by exactly one worker");
    assert_eq!(
        total(after, "pool_owner") - total(before, "pool_owner"),
        100 * (pool - worker_reward),
        "the scheduler's share"
    );
    assert_eq!(sum(after), sum(before), "money is conserved among the participants");
    check_balances_by_the_formulas(&summary);
    // The scheduler and the workers batch: the chain saw more calls than transactions.
    let finalized = &summary["finalized"];
    assert!(
        finalized["calls"].as_u64().unwrap() > finalized["txs"].as_u64().unwrap(),
        "{finalized}"
    );
    // The pool's processes' CPU from match to last result was measured.
    assert!(summary["cpu_us"]["scheduler"].as_u64().is_some(), "{}", summary["cpu_us"]);
    assert!(summary["cpu_us"]["workers"].as_u64().unwrap() > 0, "{}", summary["cpu_us"]);
}

/// The baseline the benchmarks compare with (`--profile iexec`, here with 1 s blocks to stay
/// quick): one call per transaction and no contributeAndFinalize, so a trust-1 task is
/// initialize, contribute, reveal and finalize — four single-call transactions.
#[test]
fn devnet_in_the_iexec_profile_settles_every_task_in_single_call_transactions_by_the_formulas() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = 4;
    let summary = run_devnet(
        dir.path(),
        &["--profile", "iexec", "--block-interval-ms", "1000", "--tasks", "4", "--tile-size", "8"],
    );
    assert_eq!(summary["tasks"], tasks);
    assert_eq!(png_size(summary["picture"].as_str().unwrap()), (16, 16));
    assert_eq!(summary["max_calls_per_tx"], 1);
    assert_eq!(summary["contribute_and_finalize"], false);
    assert_eq!(summary["block_interval_ms"], 1_000, "the override wins over the profile's 5 s");
    assert_eq!(summary["block_txs_max"], 32);
    // Every task completed with one proved contribution that locked the worker stake (not a
    // contributeAndFinalize, which locks none).
    let contributions = summary["contributions"].as_array().unwrap();
    assert_eq!(contributions.len() as u64, tasks);
    for (index, task) in contributions.iter().enumerate() {
        let task = task.as_array().unwrap();
        assert_eq!(task.len(), 1, "task {index}: one contribution at trust 1: {task:?}");
        assert_eq!(task[0][1], true, "task {index}: proved (revealed): {task:?}");
        assert!(nrlc(&task[0][3]) > 0, "task {index}: the contribution locked a stake");
    }
    check_balances_by_the_formulas(&summary);
    // The chain's own count: one call per transaction, at least the match and four per task.
    let finalized = &summary["finalized"];
    let (txs, calls) = (finalized["txs"].as_u64().unwrap(), finalized["calls"].as_u64().unwrap());
    assert_eq!(calls, txs, "one call per transaction: {finalized}");
    assert!(txs > 4 * tasks, "matchOrders, then initialize, contribute, reveal, finalize: {txs}");

    // The block timing is fixed at creation: resuming in another profile is refused.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_xiebao"))
        .args(["devnet", "--data-dir"])
        .arg(dir.path())
        .args(["--profile", "xiebao", "--block-interval-ms", "0", "--demo", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("was created with a block every 1000 ms, at most 32 transactions each, not blocks as fast as consensus allows, at most 2000 transactions each"),
        "{stderr}"
    );
}

#[test]
fn devnet_at_trust_3_excludes_a_lying_worker_slashes_it_and_lowers_its_score() {
    let dir = tempfile::tempdir().unwrap();
    let summary = run_devnet(
        dir.path(),
        &[
            "--tasks",
            "100",
            "--tile-size",
            "16",
            "--trust",
            "3",
            "--workers",
            "4",
            "--lying-workers",
            "1",
            "--initial-score",
            "6",
        ],
    );
    let (before, after) = (&summary["before"], &summary["after"]);
    let pool = nrlc(&summary["pool_price"]);
    let app = nrlc(&summary["app_price"]);
    let stake = pool * 30 / 100;
    let workers = summary["workers"].as_array().unwrap();
    let liar = workers.iter().position(|w| w["lying"] == true).expect("a lying worker");
    let liar_address = workers[liar]["address"].as_str().unwrap().to_lowercase();
    let contributions = summary["contributions"].as_array().unwrap();
    let mut lies = 0u128;
    for (index, task) in contributions.iter().enumerate() {
        let task = task.as_array().unwrap();
        let proved = task.iter().filter(|c| c[1] == true).count();
        assert!(proved >= 1, "task {index} completed with a proved contribution: {task:?}");
        for c in task {
            if c[0].as_str().unwrap().to_lowercase() == liar_address {
                assert_eq!(c[1], false, "task {index}: the lie was excluded from consensus");
                lies += 1;
            }
        }
    }
    assert!(lies > 0, "the lying worker contributed to some tasks: {contributions:?}");
    let name = format!("worker_{liar}");
    assert_eq!(
        total(before, &name) - total(after, &name),
        lies * stake,
        "the liar lost one contribution stake per lie"
    );
    assert!(
        workers[liar]["score_after"].as_u64() < workers[liar]["score_before"].as_u64(),
        "the liar's score fell: {:?}",
        workers[liar]
    );
    for (i, worker) in workers.iter().enumerate() {
        if i != liar {
            assert!(
                worker["score_after"].as_u64() > worker["score_before"].as_u64(),
                "honest worker {i} gained score: {worker:?}"
            );
        }
    }
    assert_eq!(total(before, "requester") - total(after, "requester"), 100 * (app + pool));
    assert_eq!(total(after, "app_owner") - total(before, "app_owner"), 100 * app);
    assert_eq!(sum(after), sum(before), "money is conserved among the participants");
    // Every honest worker's and the scheduler's balance, by the formulas.
    let expected = check_balances_by_the_formulas(&summary);
    assert_eq!(expected[&name], -((lies * stake) as i128), "the liar won nothing");
    for (i, _) in workers.iter().enumerate().filter(|(i, _)| *i != liar) {
        assert!(expected[&format!("worker_{i}")] > 0, "honest worker {i} earned: {expected:?}");
    }
    // The scheduler kept more than its ρ % of the pool prices: ρ % of the slashed stakes too.
    let ratio = u128::from(summary["scheduler_reward_ratio"].as_u64().unwrap());
    assert!(
        expected["pool_owner"] as u128 >= 100 * (pool - pool * (100 - ratio) / 100),
        "{expected:?}"
    );
}

/// A devnet running a bag of slow tiles (`--slots 1`), for fault tests.
struct SlowBag {
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl Drop for SlowBag {
    /// A test that fails midway stops its devnet (SIGTERM stops every component).
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

impl SlowBag {
    fn start(tasks: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_xiebao"))
            .args(["devnet", "--data-dir"])
            .arg(dir.path())
            .args(["--demo", "--json", "--timeout", "200", "--tasks", &tasks.to_string()])
            .args(["--tile-size", "32", "--max-iter", "20000", "--slots", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Self { dir, child: Some(child) }
    }

    /// The pids file, the layout and the scheduler's client, once all exist.
    async fn view(&self) -> Option<(Value, Value, xiebao_rpc::jsonrpsee::http_client::HttpClient)> {
        let pids: Value =
            serde_json::from_slice(&std::fs::read(self.dir.path().join("pids.json")).ok()?).ok()?;
        let layout = std::fs::read(self.dir.path().join("devnet.json")).ok()?;
        let layout: Value = serde_json::from_slice(&layout).unwrap();
        let url = pids["scheduler_url"].as_str().unwrap().replace("ws://", "http://");
        Some((pids, layout, xiebao_rpc::http_client(&url).unwrap()))
    }

    /// Waits for the devnet to end; checks every task completed; returns the summary and
    /// what the devnet said on stderr.
    fn finish(mut self, tasks: u64) -> (Value, String) {
        let output = self.child.take().unwrap().wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            output.status.success(),
            "devnet failed: {stderr}\n{stdout}\n{}",
            logs(self.dir.path())
        );
        let summary: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(summary["tasks"], tasks);
        let contributions = summary["contributions"].as_array().unwrap();
        assert!(
            contributions.iter().all(|c| c.as_array().unwrap().iter().any(|c| c[1] == true)),
            "every task completed: {contributions:?}"
        );
        (summary, stderr)
    }
}

/// Runs a 60-task bag of slow tiles and SIGKILLs one component once the bag is under way
/// (`victim` picks it from the pids file and the layout); returns the summary and the
/// victim's address (workers) or pid.
fn kill_mid_bag(
    victim: fn(&Value, &Value, &xiebao_scheduler::api::PoolStatus) -> Option<(u64, String)>,
) -> (Value, String) {
    let bag = SlowBag::start(60);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let start = Instant::now();
    let killed = runtime.block_on(async {
        loop {
            assert!(start.elapsed() < Duration::from_secs(300), "the bag never got going");
            tokio::time::sleep(Duration::from_millis(100)).await;
            let Some((pids, layout, pool)) = bag.view().await else { continue };
            let Ok(status) = pool.pool_status().await else { continue };
            if status.completed_tasks < 5 {
                continue;
            }
            if let Some((pid, name)) = victim(&pids, &layout, &status) {
                let killed = Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
                assert!(killed.success());
                return name;
            }
        }
    });
    let (summary, stderr) = bag.finish(60);
    assert!(
        stderr.contains("exited") && stderr.contains("restarting it"),
        "the devnet restarted it: {stderr}"
    );
    (summary, killed)
}

#[test]
fn devnet_finishes_the_bag_when_a_worker_is_killed_mid_task() {
    let (summary, killed) = kill_mid_bag(|pids, layout, status| {
        let victim = layout["workers"][0]["address"].as_str().unwrap().to_lowercase();
        let busy = status
            .workers
            .iter()
            .any(|w| w.worker.to_string().to_lowercase() == victim && w.busy > 0);
        busy.then(|| (pids["workers"][0].as_u64().unwrap(), victim))
    });
    // Some task the victim held was handed to another worker.
    let task_workers = summary["task_workers"].as_array().unwrap();
    let reassigned = task_workers.iter().any(|workers| {
        let workers = workers.as_array().unwrap();
        workers.len() >= 2 && workers[0].as_str().unwrap().to_lowercase() == killed
    });
    assert!(reassigned, "a task of the killed worker was reassigned: {task_workers:?}");
    let expected = check_balances_by_the_formulas(&summary);
    // At trust 1 a worker stakes nothing (contributeAndFinalize locks no stake), so the killed
    // worker forfeits nothing: it lost only the reward of the task it did not finish, and
    // earned exactly its finished tasks' rewards (before the kill and after its restart).
    let pool = nrlc(&summary["pool_price"]);
    let ratio = u128::from(summary["scheduler_reward_ratio"].as_u64().unwrap());
    let won = summary["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|task| task.as_array().unwrap())
        .filter(|c| c[0].as_str().unwrap().to_lowercase() == killed)
        .inspect(|c| assert_eq!(c[1], true, "a worker's only contributions are proved: {c}"))
        .count() as i128;
    assert_eq!(expected["worker_0"], won * (pool * (100 - ratio) / 100) as i128);
}

#[test]
fn devnet_finishes_the_bag_when_the_scheduler_is_killed_and_restarts_from_disk() {
    let (summary, _) = kill_mid_bag(|pids, _, status| {
        (status.open_tasks > 10).then(|| (pids["scheduler"].as_u64().unwrap(), "scheduler".into()))
    });
    // The restarted scheduler resumed the deal from its data directory.
    assert_eq!(summary["task_workers"].as_array().unwrap().len(), 60);
    check_balances_by_the_formulas(&summary);
}

/// A hung worker (SIGSTOP while it holds a task): the scheduler hands its task to another
/// worker (the hung one runs past the slow-replicate threshold, or its connection times out);
/// once another worker has settled that task the hung one is continued (SIGCONT): the chain
/// refuses its stale replicate's settlement, and it completes new tasks. Every task is paid
/// once, by the formulas, and the devnet never restarted the hung worker.
#[test]
fn devnet_finishes_the_bag_when_a_worker_hangs_mid_task_and_pays_once_after_it_resumes() {
    use xiebao_rpc::XiebaoApiClient as _;
    use xiebao_scheduler::api::TaskState;
    // Enough tasks that the bag outlasts the hung worker's connection timeout (≈ 10 s after
    // the stop, when it was stopped while setting up) with work left for it once continued:
    // 300 tasks took ≈ 10 s once the chain got faster, and the continued worker found none.
    const TASKS: u64 = 900;
    let bag = SlowBag::start(TASKS);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let start = Instant::now();
    let signal = |name: &str, pid: u64| {
        let sent = Command::new("kill").args([name, &pid.to_string()]).status().unwrap();
        assert!(sent.success(), "kill {name} {pid}");
    };
    let (victim, pid, held, reassigned, completed_after, deal) = runtime.block_on(async {
        // Stop worker 0 while it holds a task.
        let (victim, pid, pool, pids) = loop {
            assert!(start.elapsed() < Duration::from_secs(300), "the bag never got going");
            tokio::time::sleep(Duration::from_millis(100)).await;
            let Some((pids, layout, pool)) = bag.view().await else { continue };
            let Ok(status) = pool.pool_status().await else { continue };
            let victim = layout["workers"][0]["address"].as_str().unwrap().parse().unwrap();
            let busy = status.workers.iter().any(|w| w.worker == victim && w.busy > 0);
            if status.completed_tasks >= 5 && busy {
                let pid = pids["workers"][0].as_u64().unwrap();
                signal("-STOP", pid);
                break (victim, pid, pool, pids);
            }
        };
        let deals: Vec<B256> = serde_json::from_slice(
            &std::fs::read(bag.dir.path().join("scheduler/deals.json")).unwrap(),
        )
        .unwrap();
        let deal = deals[0];
        let unfinished_with_victim = |view: &xiebao_scheduler::api::DealView| -> Vec<u64> {
            view.tasks
                .iter()
                .filter(|t| !t.state.is_final() && t.workers.last() == Some(&victim))
                .map(|t| t.index)
                .collect()
        };
        let view = pool.deal_view(deal).await.unwrap().unwrap();
        let held = unfinished_with_victim(&view);
        assert!(!held.is_empty(), "the stopped worker holds a task: {:?}", view.tasks);
        // Wait until one of its tasks was handed to another worker, which settled it.
        let node = xiebao_rpc::http_client(pids["rpc"][0].as_str().unwrap()).unwrap();
        let stopped = Instant::now();
        let reassigned = 'wait: loop {
            if stopped.elapsed() > Duration::from_secs(120) {
                let view = pool.deal_view(deal).await;
                panic!(
                    "the hung worker's tasks {held:?} were never settled by another worker: {view:?}\n{}",
                    logs(bag.dir.path())
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let view = pool.deal_view(deal).await.unwrap().unwrap();
            for t in &view.tasks {
                if held.contains(&t.index)
                    && matches!(t.state, TaskState::Completed { .. })
                    && t.workers.iter().any(|w| *w != victim)
                {
                    let record = node.task(t.task).await.unwrap().unwrap();
                    if record.contributions.iter().all(|c| c.worker != victim) {
                        break 'wait t.index;
                    }
                }
            }
        };
        let unfinished: Vec<u64> = pool
            .deal_view(deal)
            .await
            .unwrap()
            .unwrap()
            .tasks
            .iter()
            .filter(|t| !t.state.is_final())
            .map(|t| t.index)
            .collect();
        signal("-CONT", pid);
        // The continued worker works again: it completes a task that was unfinished when it
        // was continued and that no one else was handed.
        let continued = Instant::now();
        let completed_after = loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let view = pool.deal_view(deal).await;
            let in_time = continued.elapsed() < Duration::from_secs(60);
            let (Ok(Some(view)), true) = (&view, in_time) else {
                panic!(
                    "the continued worker completed no other task while the bag ran: {view:?}\n{}",
                    logs(bag.dir.path())
                );
            };
            let done = view.tasks.iter().find(|t| {
                unfinished.contains(&t.index)
                    && matches!(t.state, TaskState::Completed { .. })
                    && t.workers == [victim]
            });
            if let Some(task) = done {
                break task.index;
            }
        };
        (victim.to_string().to_lowercase(), pid, held, reassigned, completed_after, deal)
    });
    let (summary, stderr) = bag.finish(TASKS);
    assert!(!stderr.contains("restarting it"), "the hung worker was never restarted: {stderr}");
    assert_eq!(summary["deal"].as_str().unwrap().parse::<B256>().unwrap(), deal);
    // Each task the worker held when it hung was settled once; one by another worker.
    for index in held {
        let task = summary["contributions"][index as usize].as_array().unwrap();
        assert_eq!(task.len(), 1, "task {index} settled once: {task:?}");
    }
    let task = summary["contributions"][reassigned as usize].as_array().unwrap();
    assert_ne!(task[0][0].as_str().unwrap().to_lowercase(), victim, "task {reassigned}: {task:?}");
    let workers = summary["task_workers"][reassigned as usize].as_array().unwrap();
    assert_eq!(workers[0].as_str().unwrap().to_lowercase(), victim, "{workers:?}");
    // …and a task after it was continued was the continued worker's.
    let task = summary["contributions"][completed_after as usize].as_array().unwrap();
    assert_eq!(task.len(), 1, "task {completed_after}: {task:?}");
    assert_eq!(task[0][0].as_str().unwrap().to_lowercase(), victim, "task {completed_after}");
    // Every balance by the formulas: no task was paid twice.
    let expected = check_balances_by_the_formulas(&summary);
    let pool = nrlc(&summary["pool_price"]);
    let ratio = u128::from(summary["scheduler_reward_ratio"].as_u64().unwrap());
    assert_eq!(
        expected["pool_owner"],
        (TASKS as u128 * (pool - pool * (100 - ratio) / 100)) as i128,
        "the scheduler's share of {TASKS} tasks"
    );
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "the devnet stopped it");
}

/// GET `url` (blocking).
fn runtime_get(url: &str) -> Vec<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async { reqwest::get(url).await.unwrap().bytes().await.unwrap().to_vec() })
}

#[test]
fn devnet_keeps_running_for_task_show_and_sealed_result_download_then_stops_cleanly() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_xiebao"))
        .args(["devnet", "--data-dir"])
        .arg(dir.path())
        .args([
            "--demo",
            "--keep",
            "--json",
            "--tasks",
            "4",
            "--tile-size",
            "16",
            "--validators",
            "1",
        ])
        .args(["--workers", "1", "--encrypt"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut text = String::new();
    let summary: Value = loop {
        let line = lines.next().expect("the summary").unwrap();
        text.push_str(&line);
        if let Ok(summary) = serde_json::from_str(&text) {
            break summary;
        }
    };
    let pids: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("pids.json")).unwrap()).unwrap();
    let rpc = pids["rpc"][0].as_str().unwrap();
    let scheduler = pids["scheduler_url"].as_str().unwrap();
    let task = summary["task_ids"][2].as_str().unwrap();

    let show =
        crate::xiebao(&["task", "show", task, "--rpc", rpc, "--scheduler", scheduler, "--json"]);
    assert!(show.ok, "{}", show.stderr);
    let show: Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(show["chain"]["status"], "Completed");
    assert_eq!(show["scheduler"]["state"]["state"], "completed", "{show}");
    assert_eq!(show["scheduler"]["index"], 2);
    // As people read it: deadlines as dates with the time left by the chain's clock (trust 1:
    // no reveal deadline), the scheduler's view in words.
    let text = crate::xiebao(&["task", "show", task, "--rpc", rpc, "--scheduler", scheduler]);
    assert!(text.ok, "{}", text.stderr);
    let line = |prefix: &str| {
        text.stdout.lines().find(|l| l.trim_start().starts_with(prefix)).unwrap_or_else(|| {
            panic!("a line starting {prefix:?}: {}", text.stdout);
        })
    };
    for deadline in ["contribution ", "final "] {
        let line = line(deadline);
        assert!(crate::has_utc_date(line) && line.contains("(in "), "{}", text.stdout);
    }
    assert!(line("reveal ").ends_with("not set"), "{}", text.stdout);
    assert!(crate::has_utc_date(line("deadlines (chain time ")), "{}", text.stdout);
    let state = line("scheduler: ");
    assert!(state.contains("scheduler: completed: result at "), "{}", text.stdout);
    assert!(!text.stdout.contains("{\""), "no JSON: {}", text.stdout);
    assert!(line("next deadline: ").ends_with("none, the task has ended"), "{}", text.stdout);

    // The results are sealed for the requester: the store holds no readable archive, and
    // downloading needs the beneficiary's key.
    let out = dir.path().join("result");
    let link = show["chain"]["results"].as_str().unwrap();
    let link = String::from_utf8(alloy_primitives::hex::decode(link).unwrap()).unwrap();
    let sealed = runtime_get(&link);
    assert!(sealed.len() > 262 && &sealed[257..262] != b"ustar", "not a plain tar archive");
    let requester =
        xiebao_sdk::wallet::load_key(&dir.path().join("keys/requester.key"), None).unwrap();
    let opened =
        xiebao_results::sealed::open(&requester, &sealed).expect("sealed for the requester");
    assert_eq!(&opened[257..262], b"ustar");
    let download_with = |key: &std::path::Path| {
        let (out, key) = (out.to_str().unwrap(), key.to_str().unwrap());
        crate::xiebao(&["result", "download", task, "--out", out, "--rpc", rpc, "--key-file", key])
    };
    let keyless =
        crate::xiebao(&["result", "download", task, "--out", out.to_str().unwrap(), "--rpc", rpc]);
    assert!(!keyless.ok);
    assert!(keyless.stderr.contains("encrypted for the beneficiary"), "{}", keyless.stderr);
    let stranger = dir.path().join("keys/worker-0.key");
    let wrong = download_with(&stranger);
    assert!(!wrong.ok);
    assert!(wrong.stderr.contains("is encrypted for"), "{}", wrong.stderr);
    let key = dir.path().join("keys/requester.key");
    let download = download_with(&key);
    assert!(download.ok, "{}", download.stderr);
    assert!(download.stdout.contains("verified"), "{}", download.stdout);
    let tile = std::fs::read(out.join("tile.ppm")).unwrap();
    assert!(tile.starts_with(b"P6"), "a PPM tile");
    // Into a directory that is not empty: refused, nothing written.
    let again = download_with(&key);
    assert!(!again.ok);
    assert!(again.stderr.contains("is not empty"), "{}", again.stderr);

    let deal = summary["deal"].as_str().unwrap();
    let deal_show = crate::xiebao(&["deal", "show", deal, "--rpc", rpc, "--scheduler", scheduler]);
    assert!(deal_show.ok, "{}", deal_show.stderr);
    assert!(deal_show.stdout.contains("completed 4 · failed 0"), "{}", deal_show.stdout);
    let started = deal_show.stdout.lines().find(|l| l.contains("started ")).unwrap_or_default();
    assert!(
        // By the chain's clock: "now" while no block came after the match's.
        crate::has_utc_date(started) && (started.contains(" ago)") || started.contains("(now)")),
        "the deal's start as a date: {}",
        deal_show.stdout
    );
    let final_deadline =
        deal_show.stdout.lines().find(|l| l.trim_start().starts_with("final ")).unwrap_or_default();
    assert!(
        crate::has_utc_date(final_deadline) && final_deadline.contains("(in "),
        "{}",
        deal_show.stdout
    );

    // The registries, as a user reads them.
    let layout: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("devnet.json")).unwrap()).unwrap();
    let app = layout["apps"]["mandelbrot"]["address"].as_str().unwrap();
    let shown = crate::xiebao(&["app", "show", app, "--rpc", rpc]);
    assert!(shown.ok, "{}", shown.stderr);
    assert!(
        shown.stdout.contains("mandelbrot") && shown.stdout.contains("WASM"),
        "{}",
        shown.stdout
    );
    let pool = layout["workerpool"].as_str().unwrap();
    let shown = crate::xiebao(&["workerpool", "show", pool, "--rpc", rpc]);
    assert!(shown.stdout.contains("worker stake 30 %"), "{}", shown.stdout);
    let missing = crate::xiebao(&["dataset", "show", app, "--rpc", rpc]);
    assert!(!missing.ok);
    assert!(
        missing
            .stderr
            .to_lowercase()
            .contains(&format!("no dataset is registered at {}", app.to_lowercase())),
        "{}",
        missing.stderr
    );
    let categories = crate::xiebao(&["category", "list", "--rpc", rpc]);
    assert!(
        categories.stdout.contains("| 0 | XS | 300 | 2100 s | 3000 s |"),
        "{}",
        categories.stdout
    );

    // Before the market tour, which unpublishes one of the demo apps' orders.
    run_with_a_dataset(dir.path(), rpc, layout["apps"]["wordcount"]["address"].as_str().unwrap());
    run_through_the_market(dir.path(), rpc, app, pool);
    // After it: its app orders would be among those the tour picks from.
    run_oci_apps_from_a_registry(dir.path(), rpc, scheduler);

    // SIGTERM (as Ctrl-C): every component stops and the command exits.
    let term = Command::new("kill").arg(child.id().to_string()).status().unwrap();
    assert!(term.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let mut all: Vec<u64> =
        pids["validators"].as_array().unwrap().iter().map(|p| p.as_u64().unwrap()).collect();
    all.extend(pids["workers"].as_array().unwrap().iter().map(|p| p.as_u64().unwrap()));
    all.push(pids["scheduler"].as_u64().unwrap());
    all.push(pids["results"].as_u64().unwrap());
    for pid in all {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} still runs"
        );
    }
}

#[test]
fn devnet_counts_words_over_input_chunks_in_wasm_and_in_podman_containers() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = run_devnet(dir.path(), &["--app", "wordcount", "--tasks", "5", "--validators", "1"]);
    // The devnet checks the tasks' sum against the chunks it generated; check it is reported.
    let words = wasm["words"].as_u64().expect("a word count");
    assert!(words > 5 * 250, "{wasm}");
    let output = std::fs::read_to_string(wasm["picture"].as_str().unwrap()).unwrap();
    assert!(output.contains(&format!("\"words\": {words}")), "{output}");
    let podman = Command::new("podman").arg("--version").output().is_ok_and(|o| o.status.success());
    if !podman && std::env::var("XIEBAO_REQUIRE_PODMAN").is_err() {
        eprintln!("skipping the OCI half: podman is not installed");
        return;
    }
    // Same network (resumed), the OCI app: each task runs in a podman container.
    let oci = run_devnet(dir.path(), &["--app", "oci-wordcount", "--tasks", "5"]);
    assert_eq!(oci["words"], wasm["words"], "both apps count the same chunks alike");
    let layout: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("devnet.json")).unwrap()).unwrap();
    assert!(layout["apps"]["oci-wordcount"]["address"].is_string(), "the OCI app is deployed");
}

/// `xiebao run` and the market on a kept devnet: the app and workerpool orders are in the
/// book, a run picks them, prints every task id, downloads and verifies every result; bad
/// requests say what is missing and change nothing.
fn run_through_the_market(dir: &std::path::Path, rpc: &str, app: &str, pool: &str) {
    let listed = crate::xiebao(&["order", "list", "--rpc", rpc, "--json"]);
    assert!(listed.ok, "{}", listed.stderr);
    let book: Vec<Value> = serde_json::from_str(&listed.stdout).unwrap();
    let pool_entry = book.iter().find(|e| e["kind"] == "workerpool").expect("the pool's order");
    assert_eq!(
        pool_entry["order"]["workerpool"].as_str().unwrap().to_lowercase(),
        pool.to_lowercase()
    );
    assert!(pool_entry["scheduler"].as_str().unwrap().starts_with("ws://"), "{pool_entry}");
    assert!(book.iter().any(|e| e["kind"] == "app" && e["order"]["app"] == app), "{book:?}");

    let requester = dir.join("keys/requester.key");
    let requester = requester.to_str().unwrap();
    let out = dir.join("run-out");
    let out_text = out.to_str().unwrap();
    let run = crate::xiebao(&[
        "run",
        app,
        "--volume",
        "3",
        "--args",
        "48 16 3 1 20",
        "--key-file",
        requester,
        "--out",
        out_text,
        "--rpc",
        rpc,
    ]);
    assert!(run.ok, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(": 3 tasks on workerpool"), "{}", run.stdout);
    assert_eq!(run.stdout.matches("  task ").count(), 3, "{}", run.stdout);
    assert!(run.stdout.contains("3 results verified and saved"), "{}", run.stdout);
    let run_task = run
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("task 0: "))
        .expect("task 0's id")
        .to_owned();
    for index in 0..3 {
        let tile = std::fs::read(out.join(format!("{index:05}/tile.ppm"))).unwrap();
        assert!(tile.starts_with(b"P6\n16 16\n255\n"), "tile {index}");
    }

    // An app that fails on every worker: the run ends with the app's own error, not a hang.
    let broken = crate::xiebao(&[
        "run",
        app,
        "--args",
        "32 32 3 1 20",
        "--key-file",
        requester,
        "--out",
        dir.join("broken").to_str().unwrap(),
        "--rpc",
        rpc,
    ]);
    assert!(!broken.ok, "{}", broken.stdout);
    assert!(
        broken.stdout.contains("task 0") && broken.stdout.contains("not divisible"),
        "{}",
        broken.stdout
    );
    assert!(broken.stderr.contains("1 of 1 tasks failed"), "{}", broken.stderr);

    // Results over the requester's limit: each refusal fails its own task and is reported,
    // the other tasks are still followed, and the command names every failed task; nothing
    // is left where the results would go. (Before, the first refusal ended the command.)
    let limited_out = dir.join("limited");
    let limited = crate::xiebao(&[
        "run",
        app,
        "--volume",
        "3",
        "--args",
        "48 16 3 1 20",
        "--result-max-bytes",
        "100",
        "--key-file",
        requester,
        "--out",
        limited_out.to_str().unwrap(),
        "--rpc",
        rpc,
    ]);
    assert!(!limited.ok, "{}", limited.stdout);
    assert!(limited.stderr.contains("3 of 3 tasks failed: task 0 (0x"), "{}", limited.stderr);
    assert!(
        limited.stderr.contains(", task 1 (0x") && limited.stderr.contains(", task 2 (0x"),
        "{}",
        limited.stderr
    );
    assert_eq!(
        limited.stdout.matches("failed: result refused: result of task 0x").count(),
        3,
        "{}",
        limited.stdout
    );
    assert!(limited.stdout.contains("over the 100 bytes limit"), "{}", limited.stdout);
    assert_eq!(std::fs::read_dir(&limited_out).map(|d| d.count()).unwrap_or(0), 0);

    // No funds: the missing amount and how to get it; nothing matched.
    let poor = dir.join("poor.key");
    std::fs::write(&poor, xiebao_types::SecretKey::from_label("poor").to_bytes().to_string())
        .unwrap();
    let broke = crate::xiebao(&[
        "run",
        app,
        "--volume",
        "2",
        "--key-file",
        poor.to_str().unwrap(),
        "--rpc",
        rpc,
    ]);
    assert!(!broke.ok);
    assert!(
        broke
            .stderr
            .contains("has 0 RLC free; 2 tasks at 0.03 RLC each need 0.06 RLC (missing 0.06 RLC)"),
        "{}",
        broke.stderr
    );
    assert!(
        broke.stderr.contains("xiebao bridge deposit")
            && broke.stderr.contains("xiebao account transfer"),
        "{}",
        broke.stderr
    );
    // A requirement no workerpool meets is named.
    let gpu = crate::xiebao(&["run", app, "--tag", "gpu", "--key-file", requester, "--rpc", rpc]);
    assert!(!gpu.ok);
    assert!(
        gpu.stderr.contains("no workerpool order") && gpu.stderr.contains("(gpu)"),
        "{}",
        gpu.stderr
    );
    let trust =
        crate::xiebao(&["run", app, "--trust", "500", "--key-file", requester, "--rpc", rpc]);
    assert!(!trust.ok && trust.stderr.contains("trust ≥ 500"), "{}", trust.stderr);

    // Deploy your own app (into the devnet's result store), sell it, run it, give it away.
    let wasm = dir.join("my-app.wasm");
    std::fs::write(&wasm, xiebao_apps::MANDELBROT_WASM).unwrap();
    let deployed = crate::xiebao(&[
        "app",
        "deploy",
        "--name",
        "my-mandelbrot",
        "--file",
        wasm.to_str().unwrap(),
        "--devnet",
        dir.to_str().unwrap(),
        "--price",
        "0.005",
        "--key-file",
        requester,
        "--rpc",
        rpc,
        "--json",
    ]);
    assert!(deployed.ok, "{}", deployed.stderr);
    let deployed: Value = serde_json::from_str(&deployed.stdout).unwrap();
    let mine = deployed["address"].as_str().unwrap();
    assert!(deployed["order"].is_string(), "{deployed}");
    let own_out = dir.join("own-out");
    let own = crate::xiebao(&[
        "run",
        mine,
        "--args",
        "16 16 1 1 10",
        "--key-file",
        requester,
        "--out",
        own_out.to_str().unwrap(),
        "--rpc",
        rpc,
    ]);
    assert!(own.ok, "{}\n{}", own.stdout, own.stderr);
    assert!(std::fs::read(own_out.join("00000/tile.ppm")).unwrap().starts_with(b"P6\n16 16\n"));
    let new_owner = "0x00000000000000000000000000000000000000b0";
    let give = || {
        crate::xiebao(&[
            "app",
            "transfer",
            mine,
            "--to",
            new_owner,
            "--key-file",
            requester,
            "--rpc",
            rpc,
        ])
    };
    let given = give();
    assert!(given.ok, "{}", given.stderr);
    let shown = crate::xiebao(&["app", "show", mine, "--rpc", rpc]);
    assert!(
        shown.stdout.to_lowercase().contains(&format!("owner    {new_owner}")),
        "{}",
        shown.stdout
    );
    let listed = crate::xiebao(&["app", "list", "--owner", new_owner, "--rpc", rpc, "--json"]);
    assert!(listed.ok, "{}", listed.stderr);
    let listed: Vec<Value> = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["name"], "my-mandelbrot");
    let all = crate::xiebao(&["app", "list", "--rpc", rpc]);
    assert!(all.ok && all.stdout.lines().count() >= 3, "{}", all.stdout);
    let again = give();
    assert!(!again.ok && again.stderr.contains("only the owner"), "{}", again.stderr);

    // Stake in the pool and leave it; claiming a completed task is refused with the reason.
    let staked = crate::xiebao(&[
        "account",
        "stake",
        "--workerpool",
        pool,
        "--amount",
        "2",
        "--key-file",
        requester,
        "--rpc",
        rpc,
        "--json",
    ]);
    assert!(staked.ok, "{}", staked.stderr);
    let staked: Value = serde_json::from_str(&staked.stdout).unwrap();
    assert_eq!(staked["membership"]["bonded"], serde_json::json!(2_000_000_000u64), "{staked}");
    let left = crate::xiebao(&[
        "account",
        "unstake",
        "--workerpool",
        pool,
        "--key-file",
        requester,
        "--rpc",
        rpc,
    ]);
    assert!(left.ok && left.stdout.contains("leaving"), "{}{}", left.stdout, left.stderr);
    // When the stake comes back: a date, by the chain's clock (the pool's 60 s delay).
    let stake = left.stdout.lines().find(|l| l.contains("stake: ")).unwrap_or_default();
    assert!(
        stake
            .to_lowercase()
            .contains(&format!("leaving workerpool {}; released ", pool.to_lowercase()))
            && crate::has_utc_date(stake)
            && stake.contains("(in "),
        "{}",
        left.stdout
    );
    let requester_address = xiebao_sdk::wallet::load_key(std::path::Path::new(requester), None)
        .unwrap()
        .address()
        .to_string();
    let shown = crate::xiebao(&["account", "show", &requester_address, "--rpc", rpc]);
    let stake = shown.stdout.lines().find(|l| l.contains("stake ")).unwrap_or_default();
    assert!(stake.contains("released ") && crate::has_utc_date(stake), "{}", shown.stdout);
    let claimed =
        crate::xiebao(&["task", "claim", &run_task, "--key-file", requester, "--rpc", rpc]);
    assert!(!claimed.ok && claimed.stderr.contains("cannot claim"), "{}", claimed.stderr);

    // Only an owner publishes, and only its signer unpublishes.
    let app_order = book.iter().find(|e| e["kind"] == "app").unwrap();
    let forged = dir.join("forged.json");
    let mut order = app_order["order"].clone();
    order["appprice"] = "1".into();
    std::fs::write(&forged, order.to_string()).unwrap();
    let refused = crate::xiebao(&["order", "publish", forged.to_str().unwrap(), "--rpc", rpc]);
    assert!(
        !refused.ok && refused.stderr.contains("only its owner may publish"),
        "{}",
        refused.stderr
    );
    let hash = app_order["hash"].as_str().unwrap();
    let stranger =
        crate::xiebao(&["order", "unpublish", hash, "--key-file", requester, "--rpc", rpc]);
    assert!(!stranger.ok && stranger.stderr.contains("may unpublish it"), "{}", stranger.stderr);
    let owner = dir.join("keys/app-owner.key");
    let removed = crate::xiebao(&[
        "order",
        "unpublish",
        hash,
        "--key-file",
        owner.to_str().unwrap(),
        "--rpc",
        rpc,
    ]);
    assert!(removed.ok, "{}", removed.stderr);
    let gone = crate::xiebao(&["order", "show", hash, "--rpc", rpc]);
    assert!(!gone.ok && gone.stderr.contains("is not in the market"), "{}", gone.stderr);
}

/// A dataset through the market on a kept devnet: deployed into the devnet's result store and
/// sold, fetched and checked by the worker, read by the wordcount app under `/in`; a dataset
/// whose bytes do not match its on-chain checksum fails the task, naming the mismatch, and
/// produces no result.
fn run_with_a_dataset(dir: &std::path::Path, rpc: &str, wordcount: &str) {
    let requester = dir.join("keys/requester.key");
    let requester = requester.to_str().unwrap();
    let corpus = "Xiebao datasets reach the app\nxiebao verifies them first\n";
    let corpus_file = dir.join("corpus.txt");
    std::fs::write(&corpus_file, corpus).unwrap();
    let deploy = |name: &str, file: &std::path::Path, location: &[&str]| {
        let mut args = vec!["dataset", "deploy", "--name", name, "--file", file.to_str().unwrap()];
        args.extend_from_slice(location);
        args.extend_from_slice(&["--price", "0.001", "--key-file", requester, "--rpc", rpc]);
        args.push("--json");
        let deployed = crate::xiebao(&args);
        assert!(deployed.ok, "{}", deployed.stderr);
        let deployed: Value = serde_json::from_str(&deployed.stdout).unwrap();
        assert!(deployed["order"].is_string(), "its order is in the market: {deployed}");
        deployed["address"].as_str().unwrap().to_owned()
    };
    let dataset = deploy("corpus", &corpus_file, &["--devnet", dir.to_str().unwrap()]);
    let run = |dataset: &str, out: &std::path::Path| {
        crate::xiebao(&[
            "run",
            wordcount,
            "--dataset",
            dataset,
            "--key-file",
            requester,
            "--out",
            out.to_str().unwrap(),
            "--rpc",
            rpc,
            "--timeout",
            "120",
        ])
    };
    let out = dir.join("dataset-out");
    let counted = run(&dataset, &out);
    assert!(counted.ok, "{}\n{}", counted.stdout, counted.stderr);
    assert!(counted.stdout.contains("1 results verified and saved"), "{}", counted.stdout);
    let counts: Value =
        serde_json::from_slice(&std::fs::read(out.join("00000/counts.json")).unwrap()).unwrap();
    // The app saw exactly the dataset: one file, its words, its lines, its bytes.
    assert_eq!(counts["files"], 1, "{counts}");
    assert_eq!(counts["words"], 9, "{counts}");
    assert_eq!(counts["lines"], 2, "{counts}");
    assert_eq!(counts["bytes"], corpus.len(), "{counts}");
    assert_eq!(counts["top"][0], serde_json::json!(["xiebao", 2]), "{counts}");

    // A dataset registered with the checksum of other bytes than its location serves.
    let layout: Value =
        serde_json::from_slice(&std::fs::read(dir.join("devnet.json")).unwrap()).unwrap();
    let url = format!(
        "http://{}/v1/results/{}",
        layout["results_listen"].as_str().unwrap(),
        xiebao_results::cid_of(corpus.as_bytes())
    );
    let claimed = dir.join("claimed.txt");
    std::fs::write(&claimed, "not what the location serves\n").unwrap();
    let tampered = deploy("tampered", &claimed, &["--url", &url]);
    let bad_out = dir.join("tampered-out");
    let refused = run(&tampered, &bad_out);
    assert!(!refused.ok, "{}", refused.stdout);
    assert!(refused.stderr.contains("1 of 1 tasks failed"), "{}", refused.stderr);
    let failure = refused.stdout.lines().find(|l| l.contains("failed:")).unwrap_or_else(|| {
        panic!("the failed task and its reason: {}", refused.stdout);
    });
    assert!(
        failure.contains("while verifying: checksum mismatch")
            && failure.to_lowercase().contains(&format!("dataset {}", tampered.to_lowercase()))
            && failure.contains(&format!("from {url}")),
        "{failure}"
    );
    assert!(!bad_out.join("00000").exists(), "no result was saved");
    let task = refused
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("task 0: "))
        .expect("task 0's id")
        .to_owned();
    let show = crate::xiebao(&["task", "show", &task, "--rpc", rpc, "--json"]);
    assert!(show.ok, "{}", show.stderr);
    let show: Value = serde_json::from_str(&show.stdout).unwrap();
    assert_ne!(show["chain"]["status"], "Completed", "{show}");
    assert!(show["chain"]["contributions"].as_array().is_none_or(Vec::is_empty), "{show}");
}

/// OCI apps whose location is an image reference on a kept devnet: the worker has podman pull
/// it while setting up. The app's checksum is the image's manifest digest, given as
/// `--checksum sha256:…` (a malformed one, or one that contradicts the digest the reference
/// pins, is refused at deploy). A reference pinning another digest than the app's checksum
/// fails the task at once (a mismatch is the same everywhere); an unreachable registry's
/// failure is the task's last event, naming the reference. Only where podman runs.
fn run_oci_apps_from_a_registry(dir: &std::path::Path, rpc: &str, scheduler: &str) {
    let requester = dir.join("keys/requester.key");
    let requester = requester.to_str().unwrap();
    let deploy_with = |name: &str, reference: &str, checksum: &[&str]| {
        let mut args = vec!["app", "deploy", "--name", name, "--type", "oci", "--url", reference];
        args.extend_from_slice(checksum);
        args.extend_from_slice(&["--price", "0", "--key-file", requester, "--rpc", rpc, "--json"]);
        crate::xiebao(&args)
    };
    let digest = format!("sha256:{}", "cd".repeat(32));
    for (checksum, error) in [
        ("sha256:xyz", "--checksum sha256:xyz: expected sha256:<64 hex digits>"),
        (&digest[7..], &format!("--checksum {}: expected sha256:<64 hex digits>", &digest[7..])),
        (&format!("md5:{}", "cd".repeat(16)), "expected sha256:<64 hex digits>"),
    ] {
        let refused =
            deploy_with("malformed", "127.0.0.1:1/none:latest", &["--checksum", checksum]);
        assert!(!refused.ok && refused.stderr.contains(error), "{}", refused.stderr);
    }
    let pinned_ab = format!("127.0.0.1:1/none:latest@sha256:{}", "ab".repeat(32));
    let contradicted = deploy_with("contradicted", &pinned_ab, &["--checksum", &digest]);
    assert!(
        !contradicted.ok
            && contradicted.stderr.contains(&format!(
                "--url {pinned_ab} pins manifest digest sha256:{}, but --checksum is {digest}",
                "ab".repeat(32)
            )),
        "{}",
        contradicted.stderr
    );
    let podman = Command::new("podman").arg("--version").output().is_ok_and(|o| o.status.success());
    if !podman && std::env::var("XIEBAO_REQUIRE_PODMAN").is_err() {
        eprintln!("skipping the registry pulls: podman is not installed");
        return;
    }
    let deploy = |name: &str, reference: &str, checksum: &[&str]| {
        let deployed = deploy_with(name, reference, checksum);
        assert!(deployed.ok, "{}", deployed.stderr);
        let deployed: Value = serde_json::from_str(&deployed.stdout).unwrap();
        deployed["address"].as_str().unwrap().to_owned()
    };
    let run = |app: &str, extra: &[&str]| {
        let mut args = vec!["run", app, "--key-file", requester, "--rpc", rpc, "--timeout", "60"];
        args.extend_from_slice(extra);
        crate::xiebao(&args)
    };
    let unreachable = deploy("unreachable", "127.0.0.1:1/none:latest", &["--checksum", &digest]);
    let show = crate::xiebao(&["app", "show", &unreachable, "--rpc", rpc, "--json"]);
    assert!(show.ok, "{}", show.stderr);
    let show: Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(show["checksum"], format!("0x{}", "cd".repeat(32)), "the checksum as given");
    let waiting = run(&unreachable, &["--no-watch"]);
    assert!(waiting.ok, "{}", waiting.stderr);
    let task = waiting
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("task 0: "))
        .expect("task 0's id")
        .to_owned();

    // A reference pinning another digest than the checksum, registered through --file (whose
    // sha256 is the checksum; --checksum would refuse the contradiction): workers refuse it.
    let digest_file = dir.join("manifest-digest");
    std::fs::write(&digest_file, "the manifest the app owner pinned").unwrap();
    let pinned = pinned_ab;
    let mismatch = deploy("pinned-elsewhere", &pinned, &["--file", digest_file.to_str().unwrap()]);
    let refused = run(&mismatch, &["--out", dir.join("pinned-out").to_str().unwrap()]);
    assert!(!refused.ok, "{}", refused.stdout);
    assert!(
        refused.stdout.contains(&format!(
            "while verifying: checksum mismatch: image {pinned} has manifest digest sha256:{}",
            "ab".repeat(32)
        )),
        "{}",
        refused.stdout
    );

    // The unpinned one was pulled, and the pull failed: the task says so.
    let start = Instant::now();
    let last_event = loop {
        let show = crate::xiebao(&[
            "task",
            "show",
            &task,
            "--rpc",
            rpc,
            "--scheduler",
            scheduler,
            "--json",
        ]);
        assert!(show.ok, "{}", show.stderr);
        let show: Value = serde_json::from_str(&show.stdout).unwrap();
        let last = show["scheduler"]["last_event"].as_str().unwrap_or_default().to_owned();
        if last.contains("failed while") || start.elapsed() > Duration::from_secs(60) {
            break last;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        last_event
            .contains("failed while setting-up: pulling image 127.0.0.1:1/none:latest failed")
            && last_event.contains("connection refused"),
        "{last_event}"
    );
}

/// The README's tour, command by command, as written, in one temporary folder (placeholders
/// filled from what the earlier commands printed): a wallet funded by the devnet's faucet, a
/// bag by app name with no endpoint given, the deal, a task, a result, an app of one's own.
#[test]
fn readme_tour_runs_as_written() {
    use std::io::BufRead as _;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let tour = readme.split("## A tour").nth(1).expect("the tour section");
    let block =
        tour.split("```sh\n").nth(1).and_then(|b| b.split("```").next()).expect("its sh block");
    let mut lines: Vec<String> = Vec::new();
    let mut pending = String::new();
    for line in block.lines() {
        let code = line.split("  #").next().unwrap_or(line).trim_end();
        if let Some(head) = code.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(code);
        lines.push(std::mem::take(&mut pending).trim().to_owned());
    }
    let commands: Vec<&String> = lines.iter().filter(|l| l.starts_with("$X ")).collect();
    assert!(commands.len() >= 12, "the tour lost its commands: {lines:?}");
    let password = lines
        .iter()
        .find_map(|l| l.strip_prefix("export XIEBAO_PASSWORD="))
        .expect("the tour sets the keystore password")
        .to_owned();

    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("mandelbrot.wasm");
    std::fs::write(&wasm, xiebao_apps::MANDELBROT_WASM).unwrap();
    let words = |line: &str, vars: &[(&str, String)]| -> Vec<String> {
        let mut line = line.replace("target/apps/mandelbrot.wasm", wasm.to_str().unwrap());
        for (name, value) in vars {
            line = line
                .split(' ')
                .map(|w| if w == *name { value.clone() } else { w.to_owned() })
                .collect::<Vec<_>>()
                .join(" ");
        }
        // Split on spaces, keeping "quoted words" together.
        let mut out = Vec::new();
        let mut quoted = false;
        let mut word = String::new();
        for c in line.chars() {
            match c {
                '"' => quoted = !quoted,
                ' ' if !quoted => {
                    if !word.is_empty() {
                        out.push(std::mem::take(&mut word));
                    }
                }
                c => word.push(c),
            }
        }
        if !word.is_empty() {
            out.push(word);
        }
        out.remove(0); // $X
        out
    };

    // The first command starts the devnet in ./xiebao-devnet and keeps it running.
    let first = words(commands[0], &[]);
    assert_eq!(first[0], "devnet", "the tour starts with the devnet");
    let mut child = Command::new(env!("CARGO_BIN_EXE_xiebao"))
        .args(&first)
        .arg("--json")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut text = String::new();
    let _summary: Value = loop {
        text.push_str(&out.next().expect("the summary").unwrap());
        if let Ok(summary) = serde_json::from_str(&text) {
            break summary;
        }
    };
    // Every other command runs in the same directory, without endpoints: the running devnet
    // serves them.
    let mut vars: Vec<(&str, String)> = Vec::new();
    let env = [("XIEBAO_PASSWORD", std::path::Path::new(&password))];
    for line in &commands[1..] {
        let args = words(line, &vars);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = crate::xiebao_in(dir.path(), &refs, &env);
        assert!(run.ok, "`{line}` failed:\n{}\n{}", run.stdout, run.stderr);
        match (args[0].as_str(), args.get(1).map(String::as_str)) {
            ("wallet", Some("create")) => {
                let me = run.stdout.split_whitespace().nth(1).expect("created ADDRESS");
                let keystore = run.stdout.split("keystore: ").nth(1).expect("keystore: PATH");
                vars.push(("ME", me.to_owned()));
                vars.push(("KEYSTORE", keystore.trim().to_owned()));
            }
            ("account", Some("show")) => {
                assert!(run.stdout.contains("free    100 RLC"), "funded: {}", run.stdout);
            }
            ("app", Some("list")) => {
                assert!(run.stdout.contains("mandelbrot"), "apps by name: {}", run.stdout);
            }
            ("run", Some("mandelbrot")) => {
                let deal = run.stdout.split_whitespace().nth(1).expect("deal DEAL:");
                vars.push(("DEAL", deal.trim_end_matches(':').to_owned()));
                let task = run.stdout.split("task 0: ").nth(1).expect("task 0: TASK");
                vars.push(("TASK", task.split_whitespace().next().unwrap().to_owned()));
            }
            ("app", Some("deploy")) => {
                let app = run.stdout.split_whitespace().nth(1).expect("app ADDRESS registered");
                vars.push(("APP", app.to_owned()));
            }
            ("order", Some("list")) => {
                assert!(run.stdout.contains("(my-app)"), "orders by name: {}", run.stdout);
            }
            _ => {}
        }
    }
    for folder in ["tiles", "my-tiles"] {
        let tiles = std::fs::read_dir(dir.path().join(folder)).expect("the run's results").count();
        assert_eq!(tiles, 4, "4 result folders in {folder}");
    }
    assert!(dir.path().join("tile").is_dir(), "the downloaded result");
    let term = Command::new("kill").arg(child.id().to_string()).status().unwrap();
    assert!(term.success());
    assert!(child.wait().unwrap().success());
}
