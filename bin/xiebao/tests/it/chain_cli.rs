//! A 4-validator network as separate processes (`xiebao localnet`), driven over JSON-RPC:
//! transactions finalize on every node, bad transactions are refused with the rule and change
//! nothing, and a validator killed with SIGKILL restarts and catches up with nothing lost.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use alloy_primitives::{Address, B256, Bytes};
use xiebao_rpc::jsonrpsee::http_client::HttpClient;
use xiebao_rpc::{TxStatus, XiebaoApiClient, codes};
use xiebao_types::crypto::SecretKey;
use xiebao_types::tx::{Transaction, Transfer};
use xiebao_types::{Nrlc, SignedTransaction};

pub(crate) const CHAIN_ID: u64 = 65_535;
/// Bound on every wait for the network (polling, never a timing assertion).
const PATIENCE: Duration = Duration::from_secs(300);

/// Processes stopped when the test ends, however it ends: SIGTERM first (a localnet then
/// stops its validators), SIGKILL for whatever is still running after 5 s.
pub(crate) struct Processes(pub(crate) Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
        }
        for child in &mut self.0 {
            let start = std::time::Instant::now();
            while matches!(child.try_wait(), Ok(None)) && start.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(crate) struct Localnet {
    pub(crate) rpc: Vec<String>,
    pub(crate) pids: Vec<u32>,
    pub(crate) configs: Vec<PathBuf>,
    pub(crate) metrics: Vec<String>,
}

fn start_localnet(dir: &Path, processes: &mut Processes) -> Localnet {
    start_localnet_with(dir, processes, &[])
}

/// Starts `xiebao localnet --validators 4 --data-dir DIR EXTRA…` and reads what it prints.
pub(crate) fn start_localnet_with(
    dir: &Path,
    processes: &mut Processes,
    extra: &[&str],
) -> Localnet {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xiebao"))
        .args(["localnet", "--validators", "4", "--data-dir"])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start xiebao localnet");
    let stdout = child.stdout.take().expect("piped");
    processes.0.push(child);
    let mut net =
        Localnet { rpc: Vec::new(), pids: Vec::new(), configs: Vec::new(), metrics: Vec::new() };
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("localnet prints lines");
        if line.starts_with("stop with") {
            break;
        }
        // validator N: rpc URL pid PID config PATH metrics URL
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"validator") {
            net.rpc.push(words[3].to_owned());
            net.pids.push(words[5].parse().expect("pid"));
            net.configs.push(PathBuf::from(words[7]));
            net.metrics.push(words[9].to_owned());
        }
    }
    assert_eq!(net.rpc.len(), 4, "localnet printed 4 validators");
    net
}

pub(crate) fn faucet(dir: &Path) -> SecretKey {
    let text = std::fs::read_to_string(dir.join("faucet.key")).expect("faucet.key");
    SecretKey::from_bytes(&text.trim().parse::<B256>().expect("hex key")).expect("valid key")
}

pub(crate) fn transfer(
    key: &SecretKey,
    nonce: u64,
    to: Address,
    amount: u128,
) -> SignedTransaction {
    Transaction {
        chain_id: CHAIN_ID,
        nonce,
        calls: vec![Transfer { to, amount: Nrlc(amount) }.into()],
    }
    .sign(key)
}

pub(crate) async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < PATIENCE, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `client` reports `hash` in a finalized block.
pub(crate) async fn wait_included(client: &HttpClient, hash: B256) {
    wait_for("the transaction to be included", async || match client.transaction(hash).await {
        Ok(TxStatus::Included { .. }) => Some(()),
        Ok(_) => None,
        Err(e) => panic!("getTransaction failed: {e}"),
    })
    .await;
}

async fn height(client: &HttpClient) -> Option<u64> {
    client.chain_status().await.ok().map(|s| s.height)
}

pub(crate) fn code_of(error: xiebao_rpc::jsonrpsee::core::client::Error) -> (i32, String) {
    match error {
        xiebao_rpc::jsonrpsee::core::client::Error::Call(e) => (e.code(), e.message().to_owned()),
        other => panic!("expected a call error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localnet_finalizes_refuses_bad_transactions_and_survives_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut processes = Processes(Vec::new());
    let net = start_localnet(dir.path(), &mut processes);
    let clients: Vec<HttpClient> =
        net.rpc.iter().map(|url| xiebao_rpc::http_client(url).expect("client")).collect();
    for client in &clients {
        wait_for("every validator to finalize a block", async || {
            height(client).await.filter(|h| *h >= 1)
        })
        .await;
    }
    let faucet = faucet(dir.path());
    let recipients: Vec<Address> = (1..=3u8).map(Address::repeat_byte).collect();

    // Ten transfers through validator 0 and one through validator 1: all finalize everywhere.
    let mut hashes = Vec::new();
    for nonce in 0..10u64 {
        let tx = transfer(&faucet, nonce, recipients[(nonce % 3) as usize], 1_000 + nonce as u128);
        let hash =
            clients[0].send_raw_transaction(tx.encode_to_vec().into()).await.expect("admitted");
        assert_eq!(hash, tx.hash());
        hashes.push(hash);
    }
    let tx = transfer(&faucet, 10, recipients[0], 7);
    hashes
        .push(clients[1].send_raw_transaction(tx.encode_to_vec().into()).await.expect("admitted"));
    for hash in &hashes {
        wait_included(&clients[2], *hash).await;
    }
    // Validator 0 answers next: it may be a block or two behind validator 2.
    wait_included(&clients[0], *hashes.last().expect("11 transfers")).await;

    // Bad input is refused with the rule and the values, and changes nothing.
    let before = clients[0].account(faucet.address()).await.expect("account");
    assert_eq!(before.nonce, 11);
    let (code, message) =
        code_of(clients[0].send_raw_transaction(Bytes::from_static(b"junk")).await.unwrap_err());
    assert_eq!(code, codes::TX_MALFORMED, "{message}");
    let wrong_chain = Transaction {
        chain_id: CHAIN_ID + 1,
        nonce: 11,
        calls: vec![Transfer { to: recipients[0], amount: Nrlc(1) }.into()],
    }
    .sign(&faucet);
    let (code, message) = code_of(
        clients[0].send_raw_transaction(wrong_chain.encode_to_vec().into()).await.unwrap_err(),
    );
    assert_eq!(code, codes::TX_WRONG_CHAIN);
    assert!(message.contains(&format!("chain {}", CHAIN_ID + 1)), "{message}");
    let replayed = transfer(&faucet, 0, recipients[0], 1_000);
    let (code, message) = code_of(
        clients[0].send_raw_transaction(replayed.encode_to_vec().into()).await.unwrap_err(),
    );
    assert_eq!(code, codes::TX_MEMPOOL);
    assert!(message.contains("nonce 0") && message.contains("next nonce is 11"), "{message}");
    let mut forged = transfer(&faucet, 11, recipients[0], 5).encode_to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 0x55; // the signature's v byte
    let (code, message) =
        code_of(clients[0].send_raw_transaction(forged.into()).await.unwrap_err());
    assert!(code == codes::TX_SIGNATURE || code == codes::TX_MALFORMED, "{code}: {message}");
    // A transfer of more than the sender has is admitted, then dropped by the proposer
    // with the protocol's error, and the sender's account is unchanged.
    let poor = SecretKey::from_label("poor");
    let overdraft = transfer(&poor, 0, recipients[0], 1);
    let hash = clients[0].send_raw_transaction(overdraft.encode_to_vec().into()).await.unwrap();
    let error = wait_for("the overdraft to be rejected", async || {
        match clients[0].transaction(hash).await {
            Ok(TxStatus::Rejected { error }) => Some(error),
            Ok(_) => None,
            Err(e) => panic!("getTransaction failed: {e}"),
        }
    })
    .await;
    assert!(error.contains("has 0 nRLC free, 1 nRLC needed"), "{error}");
    assert_eq!(clients[0].account(faucet.address()).await.unwrap(), before);

    // SIGKILL validator 3; the other three keep finalizing transfers.
    let killed = Command::new("kill").args(["-9", &net.pids[3].to_string()]).status().unwrap();
    assert!(killed.success());
    for nonce in 11..21u64 {
        let tx = transfer(&faucet, nonce, recipients[1], 1);
        clients[0].send_raw_transaction(tx.encode_to_vec().into()).await.expect("admitted");
        hashes.push(tx.hash());
    }
    for hash in &hashes[11..] {
        wait_included(&clients[1], *hash).await;
    }
    let tip = height(&clients[0]).await.expect("status");

    // Restart it with the same command line: it recovers from disk and catches up.
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(net.configs[3].parent().unwrap().join("node.log"))
        .expect("validator 3's log");
    let restarted = Command::new(env!("CARGO_BIN_EXE_xiebao"))
        .arg("node")
        .arg("--config")
        .arg(&net.configs[3])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("restart validator 3");
    processes.0.push(restarted);
    wait_for("the restarted validator to catch up", async || {
        height(&clients[3]).await.filter(|h| *h >= tip)
    })
    .await;
    // Same blocks, same state roots, same balances on every node; nothing finalized was lost.
    for h in [1, tip / 2, tip] {
        let reference = clients[0].block(h).await.unwrap().expect("block");
        for client in &clients[1..] {
            assert_eq!(client.block(h).await.unwrap().as_ref(), Some(&reference), "block {h}");
        }
    }
    for hash in &hashes {
        assert!(matches!(clients[3].transaction(*hash).await.unwrap(), TxStatus::Included { .. }));
    }
    // Prometheus metrics: the node's own and consensus'.
    let metrics = http_get(&net.metrics[0]);
    let height = metric(&metrics, "xiebao_height");
    assert!(height >= tip as f64, "{metrics}");
    assert!(metric(&metrics, "xiebao_finalized_txs_total") >= 21.0, "{metrics}");
    assert!(metrics.contains("xiebao_mempool_txs"), "{metrics}");

    let expected =
        [1_000 + 1_003 + 1_006 + 1_009 + 7, 1_001 + 1_004 + 1_007 + 10, 1_002 + 1_005 + 1_008];
    for client in &clients {
        for (recipient, amount) in recipients.iter().zip(expected) {
            assert_eq!(client.account(*recipient).await.unwrap().free, Nrlc(amount));
        }
    }

    // The CLI a user pays with: transfer (waits for finality), account show, tx show.
    let faucet_file = dir.path().join("faucet.key");
    let to = "0x0404040404040404040404040404040404040404";
    let pay = |key_file: &Path, amount: &str| {
        let key_file = key_file.to_str().expect("utf-8 path");
        let args = ["account", "transfer", "--to", to, "--amount", amount, "--key-file", key_file];
        crate::xiebao(&[&args[..], &["--rpc", &net.rpc[0]]].concat())
    };
    let run = pay(&faucet_file, "1.5");
    assert!(run.ok, "{}", run.stderr);
    assert!(run.stdout.contains("final in block"), "{}", run.stdout);
    let hash = run.stdout.split_whitespace().next().unwrap().to_owned();
    // Final on validator 0; another validator may be a block behind, so wait for it there.
    let mut last = None;
    wait_for("validator 2 to finalize the transfer", async || {
        let run = crate::xiebao(&["tx", "show", &hash, "--rpc", &net.rpc[2]]);
        assert!(run.ok, "{}", run.stderr);
        let done = run.stdout.contains("final in block");
        last = Some(run);
        done.then_some(())
    })
    .await;
    let run = last.expect("ran");
    assert!(run.stdout.contains("final in block"), "{}", run.stdout);
    assert!(run.stdout.contains("Transfer"), "{}", run.stdout);
    let run = crate::xiebao(&["account", "show", to, "--rpc", &net.rpc[2]]);
    assert!(run.ok && run.stdout.contains("free    1.5 RLC"), "{}{}", run.stdout, run.stderr);
    // The head's time as a date, and how long ago (this machine's clock: it may run a little
    // behind the proposer's, so either side of now).
    let run = crate::xiebao(&["chain", "status", "--rpc", &net.rpc[2]]);
    assert!(run.ok, "{}", run.stderr);
    let time = run.stdout.lines().find(|l| l.starts_with("last block time ")).unwrap_or_default();
    assert!(
        crate::has_utc_date(time)
            && (time.ends_with(" ago)") || time.contains(" UTC (in ") || time.ends_with("(now)")),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("unix seconds"), "{}", run.stdout);
    // Paying without funds names what is missing and how to get it, and sends nothing.
    let poor_file = dir.path().join("poor.key");
    std::fs::write(&poor_file, SecretKey::from_label("poor").to_bytes().to_string()).unwrap();
    let run = pay(&poor_file, "1");
    assert!(!run.ok);
    assert!(
        run.stderr.contains("has 0 RLC free; the transfer needs 1 RLC (missing 1 RLC)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Fund it first"), "{}", run.stderr);
    assert_eq!(clients[0].account(poor.address()).await.unwrap().nonce, 0);
}

/// A plain HTTP GET on 127.0.0.1 (the body).
pub(crate) fn http_get(url: &str) -> String {
    use std::io::{Read as _, Write as _};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    write!(stream, "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

/// The value of the first sample of metric `name` (any labels).
pub(crate) fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split(['{', ' ']).next() == Some(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
}

#[test]
fn genesis_writes_keys_and_configs_for_several_machines() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let out_str = out.to_str().unwrap();
    let run = crate::xiebao(&[
        "genesis",
        "--validators",
        "2",
        "--out",
        out_str,
        "--p2p",
        "10.1.0.1:26656",
        "--p2p",
        "10.1.0.2:26657",
    ]);
    assert!(run.ok, "{}", run.stderr);
    let genesis: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("genesis.json")).unwrap()).unwrap();
    assert_eq!(genesis["validators"].as_array().unwrap().len(), 2);
    for index in 0..2 {
        let dir = out.join(format!("validator-{index}"));
        assert!(dir.join("consensus.key").exists() && dir.join("signer.key").exists());
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        assert_eq!(config["p2p_listen"], format!("0.0.0.0:{}", 26656 + index));
        assert_eq!(config["peers"][1]["address"], "10.1.0.2:26657");
        assert_eq!(
            config["peers"][index]["consensus_key"],
            genesis["validators"][index]["consensus_key"]
        );
    }
    // A second genesis in the same folder is refused; so is a --p2p count that does not match.
    let again = crate::xiebao(&["genesis", "--validators", "2", "--out", out_str]);
    assert!(!again.ok && again.stderr.contains("refusing to overwrite"), "{}", again.stderr);
    let other = dir.path().join("other");
    let run = crate::xiebao(&[
        "genesis",
        "--validators",
        "3",
        "--out",
        other.to_str().unwrap(),
        "--p2p",
        "10.1.0.1:1",
    ]);
    assert!(!run.ok);
    assert!(run.stderr.contains("--p2p was given 1 times for 3 validators"), "{}", run.stderr);
    assert!(!other.exists(), "nothing is written");
}

/// Governance through the CLI on a 4-process localnet with 12-block epochs: a node prepared
/// with `chain join` follows the chain, becomes a validator at the epoch after
/// `chain add-validator` and proposes blocks; after `chain remove-validator`, validator 0
/// proposes nothing from the next epoch on and still follows the chain. Only the authority
/// may change the set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validators_join_and_leave_at_epoch_boundaries() {
    const EPOCH: u64 = 12;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut processes = Processes(Vec::new());
    let net = start_localnet_with(dir.path(), &mut processes, &["--epoch-length", "12"]);
    let first = xiebao_rpc::http_client(&net.rpc[0]).expect("client");
    wait_for("a first block", async || height(&first).await.filter(|h| *h >= 1)).await;

    let joiner = dir.path().join("joiner");
    let path = |p: &Path| p.to_str().expect("utf-8 path").to_owned();
    let run = crate::xiebao(&[
        "chain",
        "join",
        "--from",
        &path(&net.configs[0]),
        "--out",
        &path(&joiner),
        "--json",
    ]);
    assert!(run.ok, "{}", run.stderr);
    let info: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let field = |name: &str| info[name].as_str().expect(name).to_owned();
    let (address, key, p2p) = (field("address"), field("consensus_key"), field("p2p"));
    let add = |key_file: &Path| {
        crate::xiebao(&[
            "chain",
            "add-validator",
            "--address",
            &address,
            "--consensus-key",
            &key,
            "--p2p",
            &p2p,
            "--key-file",
            &path(key_file),
            "--rpc",
            &net.rpc[0],
        ])
    };
    // Anyone but the authority is refused, with the rule.
    let run = add(&dir.path().join("faucet.key"));
    assert!(!run.ok);
    assert!(run.stderr.contains("authority"), "{}", run.stderr);
    let run = add(&dir.path().join("authority.key"));
    assert!(run.ok, "{}", run.stderr);
    let effective = |stdout: &str| -> u64 {
        let at = stdout.rsplit("takes effect at block ").next().expect("says when");
        at.trim().parse().expect("a block number")
    };
    let joins_at = effective(&run.stdout);
    assert!(joins_at.is_multiple_of(EPOCH), "{}", run.stdout);

    // The new node follows, then votes and proposes from its epoch on.
    let log = std::fs::File::create(joiner.join("node.log")).expect("log");
    let node = Command::new(env!("CARGO_BIN_EXE_xiebao"))
        .args(["node", "--config", &field("config")])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start the new node");
    processes.0.push(node);
    let joined = xiebao_rpc::http_client(&field("rpc")).expect("client");
    let address: Address = address.parse().expect("address");
    let proposed = wait_for("the new node to propose a block", async || {
        let top = height(&joined).await?;
        for h in joins_at..=top {
            if joined.block(h).await.ok()??.proposer == address {
                return Some(h);
            }
        }
        None
    })
    .await;
    assert!(proposed >= joins_at);
    let run = crate::xiebao(&["chain", "status", "--rpc", &field("rpc")]);
    assert!(run.ok, "{}", run.stderr);
    assert!(run.stdout.contains(&format!("{address} {key} {p2p}  (this node)")), "{}", run.stdout);

    // Remove validator 0: from the next epoch on it proposes nothing, and still follows.
    let status = first.chain_status().await.expect("status");
    let removed = status
        .epoch_validators
        .iter()
        .find(|v| v.consensus_key == status.node_key)
        .expect("validator 0 votes")
        .address;
    let run = crate::xiebao(&[
        "chain",
        "remove-validator",
        "--address",
        &removed.to_string(),
        "--key-file",
        &path(&dir.path().join("authority.key")),
        "--rpc",
        &net.rpc[1],
    ]);
    assert!(run.ok, "{}", run.stderr);
    let leaves_at = effective(&run.stdout);
    for client in [&joined, &first] {
        wait_for("a whole epoch without validator 0", async || {
            height(client).await.filter(|h| *h >= leaves_at + EPOCH)
        })
        .await;
    }
    for h in leaves_at..leaves_at + EPOCH {
        let block = joined.block(h).await.expect("rpc").expect("block");
        assert_ne!(block.proposer, removed, "block {h}");
        assert_eq!(first.block(h).await.expect("rpc").as_ref(), Some(&block), "block {h}");
    }
    let status = joined.chain_status().await.expect("status");
    assert!(status.epoch_validators.iter().all(|v| v.address != removed));
    assert!(status.epoch_validators.iter().any(|v| v.address == address));
}

/// `order presign` and `order cancel` on chain: only the order's owner may, the order's
/// remaining volume is 0 after a cancel, and a presign is visible to everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_presigned_and_cancelled_on_chain_by_their_owner_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut processes = Processes(Vec::new());
    let net = start_localnet(dir.path(), &mut processes);
    let client = xiebao_rpc::http_client(&net.rpc[0]).expect("client");
    wait_for("a first block", async || height(&client).await.filter(|h| *h >= 1)).await;
    let requester = faucet(dir.path()).address().to_string();
    let init = crate::xiebao(&[
        "order",
        "init",
        "--kind",
        "request",
        "--target",
        "0x0505050505050505050505050505050505050505",
        "--requester",
        &requester,
        "--volume",
        "3",
    ]);
    assert!(init.ok, "{}", init.stderr);
    let order = dir.path().join("request.json");
    std::fs::write(&order, &init.stdout).expect("write the order");
    let order = order.to_str().expect("utf-8 path");
    let faucet_key = dir.path().join("faucet.key");
    let stranger_key = dir.path().join("stranger.key");
    std::fs::write(&stranger_key, SecretKey::from_label("stranger").to_bytes().to_string())
        .expect("key");
    let manage = |what: &str, key: &Path| {
        let key = key.to_str().expect("utf-8 path");
        crate::xiebao(&["order", what, order, "--key-file", key, "--rpc", &net.rpc[0], "--json"])
    };

    let run = manage("cancel", &stranger_key);
    assert!(!run.ok);
    let rule = format!("order operation must be sent or signed by {requester}");
    assert!(run.stderr.to_lowercase().contains(&rule.to_lowercase()), "{}", run.stderr);
    let run = manage("presign", &faucet_key);
    assert!(run.ok, "{}", run.stderr);
    let done: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let hash: B256 = done["hash"].as_str().expect("hash").parse().expect("b256");
    assert_eq!(done["operation"], "presigned");
    assert!(client.order_presigned(hash).await.expect("rpc"));
    assert_eq!(client.order_consumed(hash).await.expect("rpc"), "0");

    let run = manage("cancel", &faucet_key);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(client.order_consumed(hash).await.expect("rpc"), "3", "nothing left");
}
