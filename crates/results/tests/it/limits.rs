//! The gateway under attack: refusals from the request head before any body is read, the cap
//! on uploads in flight, the caps on connections, idle and slow connections, and the quota of
//! one worker for one task.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy_primitives::{Address, B256};
use xiebao_results::gateway::{self, Authorize, Limits};
use xiebao_results::{ResultStore, cid_of};
use xiebao_types::crypto::SecretKey;

use crate::{http, signed};

/// Request headers: (name, value).
type Headers = Vec<(&'static str, String)>;

/// A client waits this long for an answer before the test fails (the server is expected to
/// answer at once; this only bounds a broken one).
const ANSWER_WAIT: Duration = Duration::from_secs(20);

struct Served {
    _runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    store: Arc<ResultStore>,
    dir: tempfile::TempDir,
    /// Workers the authorization hook was asked about, in order.
    asked: Arc<Mutex<Vec<Address>>>,
}

/// A gateway under `limits` on a free loopback port, where every worker but `stranger` may
/// upload for any task.
fn serve(limits: Limits) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ResultStore::open(dir.path()).unwrap());
    let asked = Arc::new(Mutex::new(Vec::new()));
    let stranger = SecretKey::from_label("stranger").address();
    let log = asked.clone();
    let authorize: Authorize = Arc::new(move |_: B256, worker: Address, _| {
        log.lock().unwrap().push(worker);
        Box::pin(async move { Ok(worker != stranger) })
    });
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(gateway::serve_with(listener, store.clone(), authorize, limits));
    Served { _runtime: runtime, addr, store, dir, asked }
}

/// Opens a connection and sends the head of `PUT /v1/results/{task}` declaring
/// `content_length` bytes, and no body.
fn put_head(
    addr: SocketAddr,
    task: &B256,
    headers: &[(&str, String)],
    content_length: u64,
) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut head = format!(
        "PUT /v1/results/{task} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {content_length}\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream
}

/// The status and text of the answer on `stream` (read to its end), or a failure naming
/// what was waited for.
fn answer(stream: &mut TcpStream, waiting_for: &str) -> (u16, String) {
    stream.set_read_timeout(Some(ANSWER_WAIT)).unwrap();
    let mut response = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("no answer {waiting_for} within {ANSWER_WAIT:?}: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

/// Before the gateway read the signature from the head, it buffered the whole declared body
/// first: a head declaring 64 MiB and no body got no answer at all.
#[test]
fn uploads_are_refused_from_their_head_before_any_body_is_read() {
    let served = serve(Limits::default());
    let task = B256::repeat_byte(1);
    let stranger = SecretKey::from_label("stranger");
    let bytes = b"whatever".to_vec();
    let declared = 64 << 20;
    let cases: Vec<(Headers, u16, &str)> = vec![
        (vec![], 401, "missing header x-xiebao-signature"),
        (signed(&stranger, &task, &bytes), 403, "may not upload"),
        (
            vec![
                (gateway::SIGNATURE_HEADER, "0x1234".into()),
                (gateway::CID_HEADER, cid_of(&bytes)),
            ],
            401,
            "does not recover",
        ),
    ];
    for (headers, expected, reason) in cases {
        let mut stream = put_head(served.addr, &task, &headers, declared);
        let (status, text) = answer(&mut stream, "to a head without its body");
        assert_eq!(status, expected, "{text}");
        assert!(text.contains(reason), "{text}");
    }
    // A declared length over the limit is refused from the head too, naming both sizes.
    let worker = SecretKey::from_label("worker");
    let mut stream = put_head(served.addr, &task, &signed(&worker, &task, &bytes), 3_000_000_000);
    let (status, text) = answer(&mut stream, "to an oversized head");
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("3000000000 bytes, over the store's limit of 67108864 bytes"), "{text}");
}

/// Before the cap, every upload was received at once, however many.
#[test]
fn uploads_over_the_in_flight_cap_are_answered_503_until_one_ends() {
    let served = serve(Limits { uploads_in_flight_max: 2, ..Limits::default() });
    let task = B256::repeat_byte(2);
    let workers: Vec<SecretKey> =
        (0..4).map(|i| SecretKey::from_label(&format!("worker {i}"))).collect();
    let results: Vec<Vec<u8>> = (0..4).map(|i| format!("result {i}").into_bytes()).collect();
    // Two uploads declare their bodies and hold them back.
    let mut held: Vec<TcpStream> = (0..2)
        .map(|i| put_head(served.addr, &task, &signed(&workers[i], &task, &results[i]), 8))
        .collect();
    // Both heads were checked: with one server thread, each upload took its place in the
    // same step as its authorization.
    for _ in 0..2000 {
        if served.asked.lock().unwrap().len() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(served.asked.lock().unwrap().len(), 2, "the held uploads never reached the gateway");
    let (status, body) = http(
        served.addr,
        "PUT",
        &format!("/v1/results/{task}"),
        &signed(&workers[2], &task, &results[2]),
        &results[2],
    );
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("receiving 2 uploads, its most at once"), "{body}");
    // One held upload completes; a place is free again.
    held[0].write_all(&results[0]).unwrap();
    let (status, text) = answer(&mut held[0], "to a completed upload");
    assert_eq!(status, 201, "{text}");
    let (status, body) = http(
        served.addr,
        "PUT",
        &format!("/v1/results/{task}"),
        &signed(&workers[3], &task, &results[3]),
        &results[3],
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    assert!(served.store.contains(&cid_of(&results[0])));
    assert!(served.store.contains(&cid_of(&results[3])));
    assert!(!served.store.contains(&cid_of(&results[2])));
    drop(held);
}

/// Before the caps, one client address could open connections without bound.
#[test]
fn connections_over_the_per_address_cap_are_answered_503_and_closed() {
    let served = serve(Limits { connections_per_ip_max: 3, ..Limits::default() });
    let open: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(served.addr).unwrap()).collect();
    let mut fourth = TcpStream::connect(served.addr).unwrap();
    let (status, text) = answer(&mut fourth, "to a connection over the cap");
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("127.0.0.1 has 3 connections open"), "{text}");
    // Closing one gives its place back (once the server has seen it close).
    drop(open);
    let cid = cid_of(b"never stored");
    let mut statuses = Vec::new();
    for _ in 0..400 {
        let (status, _) = http(served.addr, "GET", &format!("/v1/results/{cid}"), &[], b"");
        statuses.push(status);
        if status == 404 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(statuses.last(), Some(&404), "{statuses:?}");
}

/// Before the idle limit, a connection that sent nothing (or half a body) stayed open
/// forever, holding its place.
#[test]
fn idle_and_slow_connections_are_closed() {
    let served = serve(Limits {
        connection_idle_max: Duration::from_millis(300),
        upload_duration_max: Duration::from_secs(2),
        ..Limits::default()
    });
    // Says nothing.
    let mut silent = TcpStream::connect(served.addr).unwrap();
    let (_, text) = answer(&mut silent, "(the server closing an idle connection)");
    assert!(text.is_empty(), "{text}");
    // Sends half its body, then stops.
    let task = B256::repeat_byte(3);
    let worker = SecretKey::from_label("worker");
    let bytes = vec![7u8; 100];
    let mut stalled = put_head(served.addr, &task, &signed(&worker, &task, &bytes), 100);
    stalled.write_all(&bytes[..50]).unwrap();
    let _ = answer(&mut stalled, "(the server closing a stalled upload)");
    // Trickles a byte every 100 ms: within the idle limit, past the upload's time limit.
    let mut trickle = put_head(served.addr, &task, &signed(&worker, &task, &bytes), 100);
    trickle.set_nonblocking(true).unwrap();
    let mut sent = 0;
    let mut response = Vec::new();
    for _ in 0..60 {
        if trickle.write_all(&bytes[sent..=sent]).is_ok() {
            sent += 1;
        }
        let mut buffer = [0u8; 4096];
        if let Ok(n) = trickle.read(&mut buffer)
            && n > 0
        {
            response.extend_from_slice(&buffer[..n]);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408"), "after {sent} bytes: {text}");
    assert!(text.contains("the upload took over 2 s"), "{text}");
    assert!(!served.store.contains(&cid_of(&bytes)));
    // Nothing half-received is left in the store.
    assert_eq!(std::fs::read_dir(served.dir.path()).unwrap().count(), 0);
}

/// Before the quota, a worker that had contributed to one task could store any number of
/// unrelated results under it.
#[test]
fn a_worker_stores_at_most_its_quota_for_a_task() {
    let served = serve(Limits {
        uploads_per_task_worker_max: 2,
        bytes_per_task_worker_max: 100,
        ..Limits::default()
    });
    let task = B256::repeat_byte(4);
    let worker = SecretKey::from_label("worker");
    let put = |task: &B256, bytes: &[u8]| {
        let (status, body) = http(
            served.addr,
            "PUT",
            &format!("/v1/results/{task}"),
            &signed(&worker, task, bytes),
            bytes,
        );
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    assert_eq!(put(&task, &[1u8; 30]).0, 201);
    // The same bytes again: already stored, not counted.
    assert_eq!(put(&task, &[1u8; 30]).0, 201);
    // Over the bytes left (70 of 100).
    let (status, text) = put(&task, &[2u8; 80]);
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("may store 70 more bytes for task"), "{text}");
    assert_eq!(put(&task, &[3u8; 30]).0, 201);
    let (status, text) = put(&task, &[4u8; 10]);
    assert_eq!(status, 429, "{text}");
    assert!(text.contains("stored 2 results for task"), "{text}");
    assert!(!served.store.contains(&cid_of(&[4u8; 10])));
    // Another task has its own quota.
    assert_eq!(put(&B256::repeat_byte(5), &[4u8; 10]).0, 201);
}
