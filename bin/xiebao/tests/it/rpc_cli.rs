//! Every JSON-RPC query and both subscriptions, checked against a protocol playground whose
//! transactions are replayed on a real (1-validator) `xiebao localnet`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use alloy_primitives::B256;
use xiebao_chain::config::GenesisFile;
use xiebao_protocol::testkit::{CHAIN_ID, DealSpec, World};
use xiebao_protocol::{Event, TaskStatus};
use xiebao_rpc::{BlockView, EventFilter, EventView, TxStatus, XiebaoApiClient};
use xiebao_types::Nrlc;
use xiebao_types::tx::PoolPolicy;

const PATIENCE: Duration = Duration::from_secs(300);

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_and_subscription_agrees_with_the_replayed_playground() {
    // The playground: registries, pool membership, a trust-1 deal of 3 tasks (with a
    // dataset): two completed by contributeAndFinalize, one initialized and left running.
    let mut world = World::new(2, Nrlc::rlc(1_000), PoolPolicy::default(), Nrlc::rlc(100));
    let spec = DealSpec { volume: 3, dataset_price: Some(Nrlc::rlc(1)), ..Default::default() };
    let deal = world.deal(&spec).expect("deal");
    let tasks = world.initialize(&deal, 0..3).expect("initialize");
    for task in &tasks[..2] {
        let call = world.contribute_and_finalize_call(0, task, &B256::repeat_byte(7));
        let worker = world.actors.workers[0].clone();
        world.send(&worker, vec![call]).expect("contributeAndFinalize");
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let template = dir.path().join("template.json");
    std::fs::write(
        &template,
        serde_json::to_vec(&GenesisFile::from_protocol(&world.genesis, 0)).unwrap(),
    )
    .unwrap();
    let mut localnet = Kill(
        Command::new(env!("CARGO_BIN_EXE_xiebao"))
            .args(["localnet", "--validators", "1", "--data-dir"])
            .arg(dir.path().join("net"))
            .arg("--genesis-template")
            .arg(&template)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start localnet"),
    );
    let stdout = localnet.0.stdout.take().expect("piped");
    let url = BufReader::new(stdout)
        .lines()
        .map(|l| l.expect("line"))
        .find_map(|l| {
            l.split_whitespace().nth(3).filter(|w| w.starts_with("http")).map(str::to_owned)
        })
        .expect("localnet prints the RPC URL");
    let client = xiebao_rpc::http_client(&url).unwrap();
    let start = std::time::Instant::now();
    while client.chain_status().await.is_err() {
        assert!(start.elapsed() < PATIENCE, "node did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ws = xiebao_rpc::ws_client(&url.replace("http://", "ws://")).await.expect("ws");
    let mut heads = xiebao_rpc::XiebaoApiClient::subscribe_heads(&ws).await.expect("heads");
    let filter = EventFilter { types: vec!["TaskFinalize".into()], ..Default::default() };
    let mut finalized = ws.subscribe_events(filter).await.expect("events");
    let deal_filter = EventFilter { ids: vec![deal], ..Default::default() };
    let mut deal_events = ws.subscribe_events(deal_filter).await.expect("events");

    // Replay every playground transaction, then wait for the last one.
    for tx in &world.transactions {
        let hash = client.send_raw_transaction(tx.encode_to_vec().into()).await.expect("admitted");
        assert_eq!(hash, tx.hash());
    }
    let last = world.transactions.last().unwrap().hash();
    let included_at = loop {
        match client.transaction(last).await.expect("getTransaction") {
            TxStatus::Included { height, .. } => break height,
            TxStatus::Rejected { error } => panic!("replayed transaction rejected: {error}"),
            _ => {}
        }
        assert!(start.elapsed() < PATIENCE, "replay did not finalize");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    // Subscriptions: heads arrive; exactly the two finalizations; the deal's events.
    let head: BlockView = heads.next().await.expect("a head").expect("decodes");
    assert!(head.height >= 1);
    for task in &tasks[..2] {
        let view: EventView = finalized.next().await.expect("event").expect("decodes");
        assert!(
            matches!(view.event, Event::TaskFinalize { task: t, .. } if t == *task),
            "{view:?}"
        );
    }
    // The match announces the deal to its scheduler and records the orders.
    let mut kinds = Vec::new();
    for _ in 0..2 {
        let view: EventView = deal_events.next().await.expect("event").expect("decodes");
        kinds.push(match view.event {
            Event::SchedulerNotice { deal: d, workerpool }
                if d == deal && workerpool == world.pool =>
            {
                "notice"
            }
            Event::OrdersMatched { deal: d, .. } if d == deal => "matched",
            other => panic!("unexpected first events of the deal: {other:?}"),
        });
    }
    kinds.sort_unstable();
    assert_eq!(kinds, ["matched", "notice"]);

    // Queries agree with the playground.
    let status = client.chain_status().await.unwrap();
    assert_eq!(status.chain_id, CHAIN_ID);
    assert!(status.height >= included_at);
    assert_eq!(status.validators.len(), 1);
    let s = &world.state;
    let requester = world.actors.requester.address();
    assert_eq!(client.account(requester).await.unwrap(), s.account(&requester));
    assert_eq!(client.app(world.app).await.unwrap().as_ref(), s.apps().get(&world.app));
    assert_eq!(
        client.dataset(world.dataset).await.unwrap().as_ref(),
        s.datasets().get(&world.dataset)
    );
    assert_eq!(
        client.workerpool(world.pool).await.unwrap().as_ref(),
        s.workerpools().get(&world.pool)
    );
    let on_chain = client.deal(deal).await.unwrap().expect("deal");
    let played = &s.deals()[&deal];
    assert_eq!(
        (on_chain.requester, on_chain.bot_size, on_chain.completed),
        (played.requester, 3, 2)
    );
    assert_eq!(on_chain.request_hash, played.request_hash);
    for (i, task) in tasks.iter().enumerate() {
        let t = client.task(*task).await.unwrap().expect("task");
        let expected = if i < 2 { TaskStatus::Completed } else { TaskStatus::Active };
        assert_eq!(t.status, expected, "task {i}");
        assert_eq!(t.result_digest, s.tasks()[task].result_digest);
    }
    let worker = world.actors.workers[0].address();
    assert_eq!(
        client.contribution(tasks[0], worker).await.unwrap().as_ref(),
        s.tasks()[&tasks[0]].contribution(&worker)
    );
    assert_eq!(client.contribution(tasks[2], worker).await.unwrap(), None);
    assert_eq!(client.score(worker).await.unwrap(), s.score(&worker));
    assert_eq!(client.order_consumed(played.request_hash).await.unwrap(), "3");
    assert!(!client.order_presigned(played.request_hash).await.unwrap());
    assert_eq!(client.membership(worker).await.unwrap().as_ref(), s.memberships().get(&worker));
    let categories = client.categories().await.unwrap();
    assert_eq!(categories.len(), s.categories().len());
    assert_eq!(categories[0].1, s.categories()[&0]);
    let block = client.block(included_at).await.unwrap().expect("block");
    assert!(block.txs.contains(&last));
    assert_eq!(client.block(u64::MAX).await.unwrap(), None);
    assert_eq!(client.transaction(B256::repeat_byte(0x42)).await.unwrap(), TxStatus::Unknown);

    // Limits: a batch of more than 256 calls is refused whole; 256 are answered.
    use xiebao_rpc::jsonrpsee::core::client::ClientT as _;
    use xiebao_rpc::jsonrpsee::core::params::BatchRequestBuilder;
    let batch = |calls: usize| {
        let mut batch = BatchRequestBuilder::new();
        for _ in 0..calls {
            batch.insert("xiebao_getScore", vec![worker]).unwrap();
        }
        batch
    };
    let answered = client.batch_request::<u64>(batch(256)).await.expect("a full batch");
    assert_eq!(answered.num_successful_calls(), 256);
    assert!(
        client.batch_request::<u64>(batch(257)).await.is_err(),
        "an oversized batch is refused"
    );

    // The result gateway asks this node who may upload: the worker that contributed to a
    // task may, the other worker may not.
    use std::io::{Read as _, Write as _};
    let mut gateway = Kill(
        Command::new(env!("CARGO_BIN_EXE_xiebao"))
            .args(["results", "serve", "--listen", "127.0.0.1:0", "--rpc", &url, "--dir"])
            .arg(dir.path().join("results"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the gateway"),
    );
    let mut line = String::new();
    BufReader::new(gateway.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("serving results on http://").expect(&line).to_owned();
    let upload = |w: usize| {
        let result = format!("result of worker {w}").into_bytes();
        let cid = xiebao_results::cid_of(&result);
        let signature = world.actors.workers[w]
            .eth_sign(&xiebao_results::gateway::upload_hash(&tasks[0], &cid));
        let mut request = format!(
            "PUT /v1/results/{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\nx-xiebao-signature: {signature}\r\nx-xiebao-cid: {cid}\r\n\r\n",
            tasks[0],
            result.len()
        )
        .into_bytes();
        request.extend_from_slice(&result);
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream.write_all(&request).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    };
    let accepted = upload(0);
    assert!(accepted.starts_with("HTTP/1.1 201"), "{accepted}");
    let refused = upload(1);
    assert!(refused.starts_with("HTTP/1.1 403") && refused.contains("may not upload"), "{refused}");
}
