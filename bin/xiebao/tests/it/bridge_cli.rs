//! The bridge on a real Ethereum node (anvil) and a 4-validator network of processes, through
//! the `xiebao bridge` commands: deposit → mint → spend → withdraw → release with exact
//! balances; forged, too few and replayed signatures refused; limits; one validator down; a
//! mainchain reorg below the confirmation depth; and after every settled step the RLC locked
//! on Ethereum equals the chain's bridged supply plus what is burned and not yet released.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use alloy_primitives::{Address, Bytes, U256};
use xiebao_bridge::contracts::{self, Bridge, Rlc};
use xiebao_rpc::XiebaoApiClient;
use xiebao_types::{Nrlc, SecretKey};

use crate::chain_cli::{Processes, start_localnet_with, wait_for};

/// anvil's first development key (funded with ether).
const DEPLOYER: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const CONFIRMATIONS: u64 = 3;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn anvil_binary() -> Option<PathBuf> {
    foundry_binary("anvil")
}

/// A Foundry tool (`anvil`, `cast`) installed from npm by `scripts/tools.sh`; `None` when it
/// is missing, unless `XIEBAO_REQUIRE_ANVIL` says the tests must not skip.
pub(crate) fn foundry_binary(tool: &str) -> Option<PathBuf> {
    let path =
        workspace().join(format!("tools/node_modules/@foundry-rs/{tool}-linux-amd64/bin/{tool}"));
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("XIEBAO_REQUIRE_ANVIL").is_none(),
        "XIEBAO_REQUIRE_ANVIL is set but {} is missing (run scripts/tools.sh)",
        path.display()
    );
    None
}

/// Starts anvil on a free port; returns its URL.
fn start_anvil(anvil: &Path, processes: &mut Processes) -> String {
    let mut child = Command::new(anvil)
        .args(["--host", "127.0.0.1", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start anvil");
    let stdout = child.stdout.take().expect("piped");
    processes.0.push(child);
    let mut lines = BufReader::new(stdout).lines();
    let address = loop {
        let line = lines.next().expect("anvil prints its address").expect("utf-8");
        if let Some(address) = line.strip_prefix("Listening on ") {
            break address.trim().to_owned();
        }
    };
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    format!("http://{address}")
}

fn anvil_call(url: &str, method: &str, params: serde_json::Value) -> serde_json::Value {
    let body = serde_json::json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
    let rest = url.strip_prefix("http://").unwrap();
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(rest).unwrap();
    let body = body.to_string();
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {rest}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    let value: serde_json::Value = serde_json::from_str(body).expect("JSON answer");
    assert!(value.get("error").is_none(), "{method}: {value}");
    value["result"].clone()
}

fn mine(url: &str, blocks: u64) {
    anvil_call(url, "anvil_mine", serde_json::json!([format!("0x{blocks:x}")]));
}

fn xiebao(args: &[&str]) -> crate::Run {
    crate::xiebao(args)
}

fn rlc(n: u64) -> U256 {
    U256::from(Nrlc::rlc(n).0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_round_trip_limits_signatures_offline_validator_and_reorg() {
    let Some(anvil) = anvil_binary() else {
        eprintln!("skipped: anvil is not installed (scripts/tools.sh)");
        return;
    };
    let built = Command::new(workspace().join("scripts/build-contracts.sh")).status().unwrap();
    assert!(built.success(), "scripts/build-contracts.sh failed");
    let dir = tempfile::tempdir().unwrap();
    let mut processes = Processes(Vec::new());
    let eth = start_anvil(&anvil, &mut processes);
    let confirmations = CONFIRMATIONS.to_string();
    let net = start_localnet_with(
        &dir.path().join("net"),
        &mut processes,
        &["--ethereum", &eth, "--confirmations", &confirmations],
    );
    let rpc = net.rpc[0].clone();
    let node = wait_for("validator 0 to serve RPC", async || {
        xiebao_sdk::client::Node::connect(&rpc).await.ok()
    })
    .await;
    let key_file = |name: &str, hex: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, hex).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let deployer_file = key_file("deployer.key", DEPLOYER);
    // Anyone with ether may submit a release: a fresh key given 10 ether.
    let relayer_key = SecretKey::from_label("relayer");
    let relayer_file = key_file("relayer.key", &relayer_key.to_bytes().to_string());
    anvil_call(
        &eth,
        "anvil_setBalance",
        serde_json::json!([relayer_key.address(), "0x8ac7230489e80000"]),
    );
    let user = SecretKey::from_bytes(&DEPLOYER.parse().unwrap()).unwrap().address();
    let authority_file = dir.path().join("net/authority.key").to_str().unwrap().to_owned();
    let ends = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        v.extend(["--rpc".into(), rpc.clone(), "--ethereum".into(), eth.clone()]);
        v
    };
    let run = |args: &[&str]| {
        let args = ends(args);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        xiebao(&refs)
    };

    // Before the bridge exists, its commands say how to set it up.
    let before = run(&["bridge", "status"]);
    assert!(!before.ok && before.stderr.contains("xiebao bridge deploy"), "{}", before.stderr);

    let deployed = run(&[
        "bridge",
        "deploy",
        "--deployer-key-file",
        &deployer_file,
        "--authority-key-file",
        &authority_file,
        "--threshold",
        "3",
        "--max-per-transfer",
        "1000",
        "--daily-limit",
        "5000",
        "--supply",
        "1000000",
        "--json",
    ]);
    assert!(deployed.ok, "{}", deployed.stderr);
    let deployed: serde_json::Value = serde_json::from_str(&deployed.stdout).unwrap();
    let bridge: Address = deployed["bridge"].as_str().unwrap().parse().unwrap();
    let token: Address = deployed["token"].as_str().unwrap().parse().unwrap();
    let provider = contracts::provider(&eth).unwrap();
    let token_balance = async |who: Address| -> U256 {
        Rlc::new(token, &provider).balanceOf(who).call().await.unwrap()
    };
    let chain_free = async |who: Address| -> Nrlc { node.rpc.account(who).await.unwrap().free };
    // The invariant, after every settled step.
    let balanced = || {
        let status = run(&["bridge", "status", "--json"]);
        assert!(status.ok, "{}", status.stderr);
        let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
        assert_eq!(status["balanced"], true, "{status}");
        status
    };
    balanced();
    assert_eq!(token_balance(user).await, rlc(1_000_000));

    // Deposit 300 RLC: not attested before it has 3 confirmations, then minted exactly once.
    let deposit =
        run(&["bridge", "deposit", "--amount", "300", "--key-file", &deployer_file, "--no-wait"]);
    assert!(deposit.ok, "{}", deposit.stderr);
    assert!(deposit.stdout.starts_with("deposit 0 of 300 RLC locked"), "{}", deposit.stdout);
    mine(&eth, 1); // 2 confirmations
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(node.rpc.deposit(0).await.unwrap().is_empty(), "attested with too few confirmations");
    mine(&eth, 1);
    wait_for("deposit 0 to be minted", async || {
        node.rpc.deposit(0).await.unwrap().iter().any(|c| c.minted).then_some(())
    })
    .await;
    assert_eq!(chain_free(user).await, Nrlc::rlc(300));
    assert_eq!(token_balance(user).await, rlc(1_000_000 - 300));
    assert_eq!(token_balance(bridge).await, rlc(300));
    balanced();

    // Spend some on the chain, then withdraw 100 to another mainchain address (the
    // withdrawer's own key submits the release).
    let spend = xiebao(&[
        "account",
        "transfer",
        "--to",
        "0x0505050505050505050505050505050505050505",
        "--amount",
        "50",
        "--key-file",
        &deployer_file,
        "--rpc",
        &rpc,
    ]);
    assert!(spend.ok, "{}", spend.stderr);
    let receiver: Address = "0x00000000000000000000000000000000000a11ce".parse().unwrap();
    let receiver_text = receiver.to_string();
    let withdraw = run(&[
        "bridge",
        "withdraw",
        "--amount",
        "100",
        "--to",
        &receiver_text,
        "--key-file",
        &deployer_file,
    ]);
    assert!(withdraw.ok, "{}", withdraw.stderr);
    assert!(withdraw.stdout.contains("released 100 RLC"), "{}", withdraw.stdout);
    assert_eq!(token_balance(receiver).await, rlc(100));
    assert_eq!(chain_free(user).await, Nrlc::rlc(150));
    assert_eq!(token_balance(bridge).await, rlc(200));
    balanced();

    // The same withdrawal again: refused by the CLI and by the contract itself.
    let again = run(&["bridge", "release", "--id", "0", "--key-file", &relayer_file]);
    assert!(
        !again.ok && again.stderr.contains("withdrawal 0 was already released"),
        "{}",
        again.stderr
    );
    let view = node.rpc.withdrawal(0).await.unwrap().expect("withdrawal 0");
    let mut signatures: Vec<(Address, Bytes)> =
        view.withdrawal.signatures.iter().map(|s| (s.validator, s.signature.clone())).collect();
    signatures.sort();
    let relayer = contracts::signing_provider(&eth, &relayer_key).unwrap();
    let release = async |id: u64, to: Address, amount: U256, sigs: Vec<Bytes>| -> String {
        match Bridge::new(bridge, &relayer).release(U256::from(id), to, amount, sigs).send().await {
            Ok(pending) => {
                let receipt = pending.get_receipt().await.unwrap();
                format!("accepted (status {})", receipt.status())
            }
            Err(e) => contracts::explain(&e),
        }
    };
    let all: Vec<Bytes> = signatures.iter().take(3).map(|(_, s)| s.clone()).collect();
    let replay = release(0, receiver, rlc(100), all.clone()).await;
    assert_eq!(replay, "withdrawal 0 was already released");

    // A second withdrawal, left unreleased: too few and forged signatures are refused.
    let withdraw = run(&[
        "bridge",
        "withdraw",
        "--amount",
        "30",
        "--key-file",
        &deployer_file,
        "--no-release",
    ]);
    assert!(withdraw.ok, "{}", withdraw.stderr);
    balanced(); // 30 burned and not released: still balanced
    let view = node.rpc.withdrawal(1).await.unwrap().expect("withdrawal 1");
    let mut signed: Vec<(Address, Bytes)> =
        view.withdrawal.signatures.iter().map(|s| (s.validator, s.signature.clone())).collect();
    signed.sort();
    let two: Vec<Bytes> = signed.iter().take(2).map(|(_, s)| s.clone()).collect();
    assert_eq!(
        release(1, user, rlc(30), two.clone()).await,
        "2 signatures given, the bridge needs 3"
    );
    let forger = SecretKey::from_label("forger");
    let mut forged: Vec<(Address, Bytes)> = signed.iter().take(2).cloned().collect();
    forged.push((forger.address(), forger.sign_hash(&view.digest)));
    forged.sort();
    let forged_result =
        release(1, user, rlc(30), forged.into_iter().map(|(_, s)| s).collect()).await;
    assert!(
        forged_result
            .contains(&format!("is by {}, which is not a bridge validator", forger.address())),
        "{forged_result}"
    );
    // Valid signatures over another amount recover to other addresses.
    let three: Vec<Bytes> = signed.iter().take(3).map(|(_, s)| s.clone()).collect();
    let inflated = release(1, user, rlc(31), three.clone()).await;
    assert!(inflated.contains("which is not a bridge validator"), "{inflated}");
    assert_eq!(token_balance(user).await, rlc(1_000_000 - 300));
    // Anyone may release it with the real signatures; the RLC goes to the withdrawal's recipient.
    let released = run(&["bridge", "release", "--id", "1", "--key-file", &relayer_file]);
    assert!(released.ok, "{}", released.stderr);
    assert_eq!(token_balance(user).await, rlc(1_000_000 - 300 + 30));
    balanced();

    // Over the per-transfer limit: refused before anything is sent, on either side.
    let over = run(&["bridge", "deposit", "--amount", "1001", "--key-file", &deployer_file]);
    assert!(
        !over.ok && over.stderr.contains("over the bridge's per-transfer limit"),
        "{}",
        over.stderr
    );
    let over = run(&["bridge", "withdraw", "--amount", "120.5", "--key-file", &deployer_file]);
    assert!(!over.ok && over.stderr.contains("missing"), "{}", over.stderr);
    let limits = run(&["bridge", "limits"]);
    assert!(
        limits.ok && limits.stdout.contains("deposits today   300 RLC of 5000 RLC"),
        "{}",
        limits.stdout
    );
    balanced();

    // Validator 3 down (SIGKILL, oracle and all): 3 of 4 still mint and sign.
    assert!(
        Command::new("kill").args(["-9", &net.pids[3].to_string()]).status().unwrap().success()
    );
    // `account deposit|withdraw` are the same commands under the names users look for.
    let deposit =
        run(&["account", "deposit", "--amount", "40", "--key-file", &deployer_file, "--no-wait"]);
    assert!(deposit.ok, "{}", deposit.stderr);
    mine(&eth, CONFIRMATIONS);
    wait_for("deposit 1 to be minted", async || {
        node.rpc.deposit(1).await.unwrap().iter().any(|c| c.minted).then_some(())
    })
    .await;
    let withdraw = run(&["account", "withdraw", "--amount", "20", "--key-file", &deployer_file]);
    assert!(withdraw.ok, "{}", withdraw.stderr);
    assert_eq!(chain_free(user).await, Nrlc::rlc(150 - 30 + 40 - 20));
    balanced();

    // A reorg below the confirmation depth: the dropped deposit is never minted, the one that
    // replaces it (same id) is, once.
    let snapshot = anvil_call(&eth, "evm_snapshot", serde_json::json!([]));
    let dropped =
        run(&["bridge", "deposit", "--amount", "7", "--key-file", &deployer_file, "--no-wait"]);
    assert!(dropped.ok && dropped.stdout.starts_with("deposit 2 "), "{}", dropped.stdout);
    mine(&eth, CONFIRMATIONS - 2);
    assert_eq!(anvil_call(&eth, "evm_revert", serde_json::json!([snapshot])), true);
    let replacing =
        run(&["bridge", "deposit", "--amount", "5", "--key-file", &deployer_file, "--no-wait"]);
    assert!(replacing.ok && replacing.stdout.starts_with("deposit 2 "), "{}", replacing.stdout);
    mine(&eth, CONFIRMATIONS);
    wait_for("deposit 2 to be minted", async || {
        node.rpc.deposit(2).await.unwrap().iter().any(|c| c.minted).then_some(())
    })
    .await;
    let claims = node.rpc.deposit(2).await.unwrap();
    assert_eq!(claims.len(), 1, "{claims:?}");
    assert_eq!(claims[0].amount, Nrlc::rlc(5));
    assert_eq!(chain_free(user).await, Nrlc::rlc(140 + 5));
    balanced();

    // Validator 3 comes back: its oracle rescans everything and mints nothing twice.
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(net.configs[3].parent().unwrap().join("node.log"))
        .unwrap();
    let restarted = Command::new(env!("CARGO_BIN_EXE_xiebao"))
        .args(["node", "--config"])
        .arg(&net.configs[3])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    processes.0.push(restarted);
    let client3 = xiebao_rpc::http_client(&net.rpc[3]).unwrap();
    let settled = node.rpc.bridge().await.unwrap().unwrap();
    wait_for("validator 3 to catch up", async || {
        client3.bridge().await.ok().flatten().filter(|b| *b == settled).map(|_| ())
    })
    .await;
    mine(&eth, CONFIRMATIONS);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let bridge_state = node.rpc.bridge().await.unwrap().unwrap();
    assert_eq!(bridge_state.deposits_minted, 3);
    assert_eq!(bridge_state.minted, Nrlc::rlc(300 + 40 + 5));
    assert_eq!(bridge_state.burned, Nrlc::rlc(100 + 30 + 20));
    assert_eq!(chain_free(user).await, Nrlc::rlc(145));
    let status = balanced();
    assert_eq!(status["locked"], serde_json::json!(rlc(300 + 40 + 5 - 150)));
}
