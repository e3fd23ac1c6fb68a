//! The adversarial suite against a validator, through the real processes: what any RPC client
//! or any account can try for free on a fee-less chain. Every loop is bounded and every
//! address is loopback.
//!
//! Each test fails on a node without the mechanism it checks: admission that recovers the
//! calls' signatures before its cheap checks, a mempool without byte quotas, an RPC server
//! with one global connection cap, a book that takes requests from keys holding nothing.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use alloy_primitives::{Address, B256, Bytes, U256};
use xiebao_rpc::jsonrpsee::http_client::HttpClient;
use xiebao_rpc::{MarketApiClient, XiebaoApiClient, codes};
use xiebao_types::crypto::SecretKey;
use xiebao_types::order::{AnyOrder, Domain, RequestOrder};
use xiebao_types::tx::{Call, Contribute, Transaction};
use xiebao_types::{Nrlc, SignedTransaction, Tag};

use crate::chain_cli::{
    CHAIN_ID, Processes, code_of, faucet, http_get, metric, start_localnet_with, transfer,
    wait_for, wait_included,
};

/// A transaction of `calls` contributions with garbage authorizations: each costs the node a
/// signature recovery when it is admitted.
fn contributions(key: &SecretKey, nonce: u64, calls: usize) -> SignedTransaction {
    let calls: Vec<Call> = (0..calls)
        .map(|i| {
            let mut authorization = vec![0x11u8; 65];
            authorization[64] = 27;
            Contribute {
                task_id: B256::from(U256::from(i)),
                result_hash: B256::repeat_byte(1),
                result_seal: B256::repeat_byte(2),
                enclave_challenge: Address::ZERO,
                enclave_sign: Bytes::new(),
                authorization_sign: authorization.into(),
            }
            .into()
        })
        .collect();
    Transaction { chain_id: CHAIN_ID, nonce, calls }.sign(key)
}

fn recoveries(metrics_url: &str) -> f64 {
    metric(&http_get(metrics_url), "xiebao_admission_recoveries_total")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_resent_and_unfunded_transactions_cost_little_and_transfers_still_finalize() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut processes = Processes(Vec::new());
    let net = start_localnet_with(dir.path(), &mut processes, &[]);
    let client: HttpClient = xiebao_rpc::http_client(&net.rpc[0]).expect("client");
    wait_for("a first block", async || {
        client.chain_status().await.ok().filter(|s| s.height >= 1).map(|_| ())
    })
    .await;
    let faucet = faucet(dir.path());
    let alice = SecretKey::from_label("alice");
    let funding = transfer(&faucet, 0, alice.address(), Nrlc::rlc(2).0);
    wait_included(
        &client,
        client.send_raw_transaction(funding.encode_to_vec().into()).await.unwrap(),
    )
    .await;

    // A funded sender parks a 3,000-signature transaction behind a nonce gap (nonce 2 while
    // its next is 1) and re-sends it 40 times: the first admission recovers 3,000 signatures,
    // the re-sends cost one hash each.
    let before = recoveries(&net.metrics[0]);
    let heavy = contributions(&faucet, 2, 3_000).encode_to_vec();
    client.send_raw_transaction(heavy.clone().into()).await.expect("admitted once");
    let after_one = recoveries(&net.metrics[0]);
    assert_eq!(after_one - before, 3_000.0, "the calls' signatures are recovered once");
    let resends: Vec<_> = (0..40)
        .map(|_| {
            let (client, heavy) = (client.clone(), heavy.clone());
            tokio::spawn(async move { client.send_raw_transaction(heavy.into()).await })
        })
        .collect();
    for resend in resends {
        let (code, message) = code_of(resend.await.expect("joined").unwrap_err());
        assert_eq!(code, codes::TX_MEMPOOL);
        assert!(message.contains("already pending"), "{message}");
    }
    assert_eq!(recoveries(&net.metrics[0]), after_one, "re-sends recovered nothing");

    // An account holding nothing cannot make the node recover a big transaction's calls, nor
    // park more than its small quota of gapped transactions.
    let mallory = SecretKey::from_label("mallory");
    let big = contributions(&mallory, 0, 3_000).encode_to_vec();
    let (code, message) = code_of(client.send_raw_transaction(big.into()).await.unwrap_err());
    assert_eq!(code, codes::TX_MEMPOOL);
    assert!(message.contains("quota of 262144 bytes"), "{message}");
    let mut admitted = 0;
    let mut refusal = None;
    for nonce in 1..=20 {
        let gapped = transfer(&mallory, nonce, Address::repeat_byte(9), 1).encode_to_vec();
        match client.send_raw_transaction(gapped.into()).await {
            Ok(_) => admitted += 1,
            Err(e) => refusal = Some(code_of(e).1),
        }
    }
    assert_eq!(admitted, 16, "an empty account keeps 16 transactions pending");
    let refusal = refusal.expect("the 17th was refused");
    assert!(refusal.contains("16 pending transactions, its quota"), "{refusal}");
    assert_eq!(recoveries(&net.metrics[0]), after_one, "nothing of mallory's was recovered");

    // Meanwhile an honest transfer finalizes (a bound on waiting, not a timing assertion).
    let honest = transfer(&alice, 0, Address::repeat_byte(3), 5);
    let hash = client.send_raw_transaction(honest.encode_to_vec().into()).await.expect("admitted");
    wait_included(&client, hash).await;
    let mempool = http_get(&net.metrics[0]);
    assert!(metric(&mempool, "xiebao_mempool_bytes") <= (32 << 20) as f64, "{mempool}");

    // Two processes sending with one key (two `xiebao run` at once) queue behind each other
    // instead of failing on the nonce: every call is applied, once.
    let node = xiebao_sdk::client::Node::connect(&net.rpc[0]).await.expect("node");
    let options =
        xiebao_sdk::client::SenderOptions { max_calls: 1, final_timeout: Duration::from_secs(120) };
    let first = xiebao_sdk::client::Sender::spawn(node.clone(), alice.clone(), options);
    let second = xiebao_sdk::client::Sender::spawn(node, alice.clone(), options);
    let bob = Address::repeat_byte(0xb0);
    let calls = |n: usize| -> Vec<Call> {
        (0..n).map(|_| xiebao_types::tx::Transfer { to: bob, amount: Nrlc(1) }.into()).collect()
    };
    let (a, b) = tokio::join!(first.send_all(calls(5)), second.send_all(calls(5)));
    for result in a.into_iter().chain(b) {
        result.expect("every call of both senders is applied");
    }
    assert_eq!(client.account(bob).await.expect("account").free, Nrlc(10), "each call once");
}

/// Opens a connection to `rpc`, sends one JSON-RPC request and reads the answer (empty when
/// the server closed the connection without answering).
fn request_on(stream: &mut TcpStream, host: &str) -> String {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"xiebao_chainStatus","params":[]}"#;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_cannot_take_every_rpc_connection_and_the_book_refuses_free_spam() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut processes = Processes(Vec::new());
    let net = start_localnet_with(dir.path(), &mut processes, &[]);
    let client: HttpClient = xiebao_rpc::http_client(&net.rpc[1]).expect("client");
    let status = wait_for("a first block", async || {
        client.chain_status().await.ok().filter(|s| s.height >= 1)
    })
    .await;

    // One address opens 140 idle connections at once: 64 are served, 64 more wait for those
    // to end, and the rest are closed at once (seen as end of stream). All are opened well
    // within the 10 s the server gives a connection to send its first request.
    let host = net.rpc[0].trim_start_matches("http://").trim_end_matches('/').to_owned();
    let opened: Vec<TcpStream> =
        (0..140).map(|_| TcpStream::connect(&host).expect("connect")).collect();
    let is_closed = |stream: &TcpStream| {
        stream.set_nonblocking(true).expect("nonblocking");
        let mut probe = [0u8; 1];
        let closed = match (&*stream).read(&mut probe) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        };
        stream.set_nonblocking(false).expect("blocking");
        closed
    };
    // Another local client (the localnet) may hold one of the address's connections.
    let start = std::time::Instant::now();
    let closed = loop {
        let closed = opened.iter().filter(|s| is_closed(s)).count();
        if closed >= 12 || start.elapsed() > Duration::from_secs(8) {
            break closed;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!((12..=13).contains(&closed), "{closed} of 140 closed: 64 served, 64 waiting");
    let mut held: Vec<TcpStream> = opened.into_iter().filter(|s| !is_closed(s)).collect();
    // The waiting connections send their request now (a connection's 10 s for its first
    // request start only once it is served); the served ones then close, and the first
    // waiting one is answered.
    let first_waiting = held.len() - 64;
    let mut waiting = held.remove(first_waiting);
    waiting.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"xiebao_chainStatus","params":[]}"#;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    waiting.write_all(request.as_bytes()).expect("send on a waiting connection");
    let mut extra = TcpStream::connect(&host).expect("connect");
    extra.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(request_on(&mut extra, &host), "", "over its cap, a client gets no answer");
    drop(held.drain(..first_waiting));
    let mut answer = String::new();
    let _ = waiting.read_to_string(&mut answer);
    assert!(answer.contains("\"result\""), "a waiting connection was served: {answer:?}");
    drop(held);
    let answered = wait_for("a connection once the others closed", async || {
        let mut stream = TcpStream::connect(&host).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let answer = request_on(&mut stream, &host);
        answer.contains("\"result\"").then_some(answer)
    })
    .await;
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");

    // The book: a request order from a key holding nothing is refused, and so is an order
    // whose params are larger than the book takes; neither is stored.
    let domain = Domain::new(status.chain_id, status.verifying_contract);
    let request = |requester: &SecretKey, params: String| {
        let mut order = AnyOrder::Request(RequestOrder {
            app: Address::repeat_byte(0xaa),
            appmaxprice: U256::from(1),
            dataset: Address::ZERO,
            datasetmaxprice: U256::ZERO,
            workerpool: Address::ZERO,
            workerpoolmaxprice: U256::from(1),
            requester: requester.address(),
            volume: U256::from(1),
            tag: Tag::NONE,
            category: U256::ZERO,
            trust: U256::ZERO,
            beneficiary: requester.address(),
            callback: Address::ZERO,
            params,
            salt: B256::repeat_byte(7),
            sign: Bytes::new(),
        });
        order.sign_with(&domain, requester);
        order.to_json()
    };
    let mallory = SecretKey::from_label("mallory");
    let error = client.publish(request(&mallory, String::new()), None).await.unwrap_err();
    assert!(error.to_string().contains("deposit first"), "{error}");
    let faucet = faucet(dir.path());
    let error = client.publish(request(&faucet, "x".repeat(20_000)), None).await.unwrap_err();
    assert!(error.to_string().contains("above the book's limit"), "{error}");
    let book = client.orders(xiebao_rpc::OrderQuery::default()).await.expect("orders");
    assert!(book.is_empty(), "nothing was stored: {book:?}");
}
