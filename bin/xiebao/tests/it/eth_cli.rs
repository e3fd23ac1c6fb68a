//! The Ethereum face through a real Ethereum client: Foundry's `cast` (installed from npm by
//! `scripts/tools.sh`) reads the chain id, head, balances, nonces, fees, code and blocks of a
//! localnet validator, and a browser's CORS preflight is answered.

use std::path::Path;
use std::process::Command;

use xiebao_rpc::XiebaoApiClient;

use crate::chain_cli::{Processes, faucet, start_localnet_with, wait_for};

fn cast(binary: &Path, args: &[&str]) -> String {
    let output = Command::new(binary)
        .args(args)
        .env("FOUNDRY_DISABLE_NIGHTLY_WARNING", "1")
        .output()
        .expect("run cast");
    assert!(
        output.status.success(),
        "cast {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Sends `request` as is to the server at `url` and returns the whole answer.
fn raw_http(url: &str, request: &str) -> String {
    use std::io::{Read as _, Write as _};
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cast_reads_chain_id_head_balances_nonces_fees_and_blocks() {
    let Some(binary) = crate::bridge_cli::foundry_binary("cast") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut processes = Processes(Vec::new());
    let net = start_localnet_with(dir.path(), &mut processes, &[]);
    let url = net.rpc[0].as_str();
    let client = xiebao_rpc::http_client(url).expect("client");
    let status = wait_for("a first block", async || {
        client.chain_status().await.ok().filter(|s| s.height >= 1)
    })
    .await;

    assert_eq!(cast(&binary, &["chain-id", "--rpc-url", url]), status.chain_id.to_string());
    let height: u64 = cast(&binary, &["block-number", "--rpc-url", url]).parse().expect("a number");
    assert!(height >= status.height, "cast's head {height} is before {}", status.height);
    assert!(cast(&binary, &["client", "--rpc-url", url]).starts_with("xiebao/"));

    // Balances in wei: nRLC × 10⁹, so Ethereum tools' 18 decimals show whole RLC.
    let faucet = faucet(dir.path()).address().to_string();
    let account = client.account(faucet.parse().unwrap()).await.expect("account");
    let wei = cast(&binary, &["balance", &faucet, "--rpc-url", url]);
    assert_eq!(wei, (account.free.0 * 1_000_000_000).to_string());
    let ether = cast(&binary, &["balance", &faucet, "--ether", "--rpc-url", url]);
    let (whole, nano) = (account.free.0 / 1_000_000_000, account.free.0 % 1_000_000_000);
    assert_eq!(ether, format!("{whole}.{nano:09}000000000"), "1 RLC shows as 1.0");
    assert_eq!(cast(&binary, &["nonce", &faucet, "--rpc-url", url]), account.nonce.to_string());
    assert_eq!(cast(&binary, &["gas-price", "--rpc-url", url]), "0");
    assert_eq!(cast(&binary, &["code", &faucet, "--rpc-url", url]), "0x");

    // Blocks: the head and genesis, with their hashes as the native API gives them.
    let block: serde_json::Value =
        serde_json::from_str(&cast(&binary, &["block", "1", "--json", "--rpc-url", url]))
            .expect("cast block --json");
    let native = client.block(1).await.expect("getBlock").expect("block 1");
    assert_eq!(block["hash"], serde_json::json!(native.hash), "{block}");
    assert_eq!(block["parentHash"], serde_json::json!(native.parent), "{block}");
    assert_eq!(block["number"], "0x1", "{block}");
    // Browsers may call the node (CORS): a preflight from a page's origin is allowed.
    let preflight = raw_http(
        url,
        "OPTIONS / HTTP/1.1\r\nHost: x\r\nOrigin: https://wallet.example\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\nConnection: close\r\n\r\n",
    );
    assert!(
        preflight.to_ascii_lowercase().contains("access-control-allow-origin: *"),
        "{preflight}"
    );

    // A height whose state is not kept is refused with the rule, not answered wrongly.
    let output = Command::new(&binary)
        .args(["balance", &faucet, "--block", "0", "--rpc-url", url])
        .output()
        .expect("run cast");
    let head_now = client.chain_status().await.expect("status").height;
    if head_now > 0 {
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("is not kept"), "{stderr}");
    }
}

/// A devnet whose demo made a deal, kept running; its summary and first RPC URL.
fn devnet_with_a_deal(dir: &Path) -> (std::process::Child, serde_json::Value, String) {
    use std::io::BufRead as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_xiebao"))
        .args(["devnet", "--demo", "--keep", "--json", "--validators", "1", "--workers", "1"])
        .args(["--tasks", "2", "--data-dir", dir.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the devnet");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut text = String::new();
    let summary: serde_json::Value = loop {
        text.push_str(&lines.next().expect("the demo's summary").unwrap());
        if let Ok(summary) = serde_json::from_str(&text) {
            break summary;
        }
    };
    let pids: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("pids.json")).unwrap()).unwrap();
    let rpc = pids["rpc"][0].as_str().unwrap().to_owned();
    (child, summary, rpc)
}

#[test]
fn cast_calls_pocos_views_at_the_hub_and_reads_a_real_deal_and_task() {
    let Some(binary) = crate::bridge_cli::foundry_binary("cast") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut devnet, summary, rpc) = devnet_with_a_deal(&dir.path().join("net"));
    let url = rpc.as_str();
    let status = crate::xiebao(&["chain", "status", "--rpc", url]);
    assert!(status.ok, "{}", status.stderr);
    let hub = status
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("hub "))
        .and_then(|l| l.split_whitespace().next())
        .expect("chain status names the hub")
        .to_owned();
    let call = |signature: &str, args: &[&str]| {
        let mut all = vec!["call", hub.as_str(), signature];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--rpc-url", url]);
        cast(&binary, &all)
    };
    // The order domain, as the iExec SDK reads it before signing.
    let domain = call("domain()((string,string,uint256,address))", &[]);
    assert!(domain.contains("\"iExecODB\"") && domain.contains("\"5.0.0\""), "{domain}");
    assert!(domain.contains("65535") && domain.contains(&hub), "{domain}");
    assert_eq!(call("decimals()(uint8)", &[]), "9");
    assert_eq!(call("symbol()(string)", &[]), "\"SRLC\"");
    // Balances in nRLC, as the staked-RLC ERC-20 face of the contracts gives them.
    let requester = summary["after"]["requester"]["address"].as_str().unwrap();
    let free = summary["after"]["requester"]["free"].as_u64().map(|n| n.to_string());
    let free =
        free.unwrap_or_else(|| summary["after"]["requester"]["free"].as_str().unwrap().into());
    let balance = call("balanceOf(address)(uint256)", &[requester]);
    assert_eq!(balance.split_whitespace().next(), Some(free.as_str()), "{balance}");
    let account = call("viewAccount(address)((uint256,uint256))", &[requester]);
    assert!(account.starts_with(&format!("({free}")), "{account}");
    // The demo's deal and its first task, field by field where it matters.
    let deal_id = summary["deal"].as_str().unwrap();
    let deal = call(
        "viewDeal(bytes32)(((address,address,uint256),(address,address,uint256),(address,address,uint256),uint256,uint256,bytes32,address,address,address,string,uint256,uint256,uint256,uint256,uint256))",
        &[deal_id],
    );
    assert!(deal.to_lowercase().contains(&requester.to_lowercase()), "{deal}");
    assert!(deal.contains(", 2, "), "a bag of 2: {deal}");
    let task_id = summary["task_ids"][0].as_str().unwrap();
    let task = call(
        "viewTask(bytes32)((uint8,bytes32,uint256,uint256,uint256,uint256,uint256,bytes32,uint256,uint256,address[],bytes32,bytes,uint256,bytes))",
        &[task_id],
    );
    assert!(task.starts_with("(3, "), "completed (3): {task}");
    assert!(task.contains(deal_id), "its deal: {task}");
    // An unknown id reads as the zero struct, as the contracts' storage does.
    let none = call("viewScore(address)(uint256)", &["0x000000000000000000000000000000000000dEaD"]);
    assert_eq!(none, "0");
    // No such view: refused with the rule; another address has no code.
    let output = Command::new(&binary)
        .args(["call", &hub, "nothingHere()", "--rpc-url", url])
        .env("FOUNDRY_DISABLE_NIGHTLY_WARNING", "1")
        .output()
        .expect("run cast");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("the hub has no view with selector"), "{stderr}");
    assert_eq!(cast(&binary, &["call", requester, "name()", "--rpc-url", url]), "0x");
    let term = Command::new("kill").arg(devnet.id().to_string()).status().unwrap();
    assert!(term.success());
    assert!(devnet.wait().unwrap().success());
}
