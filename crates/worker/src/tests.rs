//! The worker's bounds on what it fetches, keeps and archives, against a loopback HTTP server.

use std::convert::Infallible;
use std::sync::atomic::AtomicUsize;

use axum::extract::{Path as UrlPath, State};
use axum::routing::get;
use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use xiebao_scheduler::api::{Assignment, Capabilities, Finish, Resource};
use xiebao_types::Address;
use xiebao_types::tx::AppType;

use super::*;
use crate::fetch::{FetchError, FetchLimits, download};

const CHUNK: usize = 64 << 10;

/// Requests the test server answered.
type Hits = Arc<AtomicUsize>;

/// The files the test server serves at `/file/{name}`.
type Files = Arc<Vec<(&'static str, Vec<u8>)>>;

/// `n` bytes of 7, streamed in 64 KiB chunks made on the way (no length declared).
fn stream_of(n: u64) -> axum::body::Body {
    let chunks = futures::stream::unfold(n, |left| async move {
        let size = left.min(CHUNK as u64);
        (size > 0)
            .then(|| (Ok::<_, Infallible>(Bytes::from(vec![7u8; size as usize])), left - size))
    });
    axum::body::Body::from_stream(chunks)
}

/// A loopback server: `/bytes/{n}` (length declared), `/stream/{n}` (no length), `/stall`
/// (one chunk, then nothing), `/v1/results/{cid}` (`hello\n`), `/file/{name}` (what the test
/// put in `files`). Returns its base URL and its hit counter.
async fn serve(files: Vec<(&'static str, Vec<u8>)>) -> (String, Hits) {
    let hits: Hits = Arc::default();
    let files = Arc::new(files);
    let router = axum::Router::new()
        .route("/bytes/{n}", get(|UrlPath(n): UrlPath<usize>| async move { vec![7u8; n] }))
        .route("/stream/{n}", get(|UrlPath(n): UrlPath<u64>| async move { stream_of(n) }))
        .route(
            "/stall",
            get(|| async {
                let first = futures::stream::once(async {
                    Ok::<_, Infallible>(Bytes::from_static(b"partial"))
                });
                axum::body::Body::from_stream(futures::StreamExt::chain(
                    first,
                    futures::stream::pending(),
                ))
            }),
        )
        .route("/v1/results/{cid}", get(|| async { &b"hello\n"[..] }))
        .route(
            "/file/{name}",
            get(|State(files): State<Files>, UrlPath(name): UrlPath<String>| async move {
                files.iter().find(|(n, _)| *n == name).map(|(_, b)| b.clone()).unwrap_or_default()
            }),
        )
        .with_state(files)
        .layer(axum::middleware::from_fn_with_state(
            hits.clone(),
            |State(hits): State<Hits>,
             request: axum::extract::Request,
             next: axum::middleware::Next| async move {
                hits.fetch_add(1, Ordering::Relaxed);
                next.run(request).await
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, hits)
}

/// The process's peak resident memory (`VmHWM`), bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_source_is_streamed_to_disk_not_held_in_memory() {
    let (url, _) = serve(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("input");
    let size: u64 = 256 << 20;
    let before = peak_rss();
    let got = download(&http(), &format!("{url}/stream/{size}"), &dest, 1 << 30, FETCH_TIMEOUT)
        .await
        .unwrap();
    let grown = peak_rss().saturating_sub(before);
    let mut expected = Sha256::new();
    for _ in 0..size / CHUNK as u64 {
        expected.update([7u8; CHUNK]);
    }
    assert_eq!(got, fetch::Downloaded { bytes: size, sha256: expected.finalize().into() });
    assert_eq!(std::fs::metadata(&dest).unwrap().len(), size);
    // Reading the body whole (as the worker did) grows the peak by the whole 256 MiB.
    assert!(grown < 64 << 20, "fetching 256 MiB grew the peak RSS by {} MiB", grown >> 20);
}

#[tokio::test]
async fn a_source_declaring_more_than_the_limit_is_refused_before_reading() {
    let (url, _) = serve(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("input");
    let source = format!("{url}/bytes/2000000");
    let error = download(&http(), &source, &dest, 1 << 20, FETCH_TIMEOUT).await.unwrap_err();
    assert_eq!(error, FetchError::Declared { url: source, declared: 2_000_000, limit: 1 << 20 });
    assert!(!dest.exists());
}

#[tokio::test]
async fn a_source_sending_more_than_the_limit_is_stopped_while_streaming() {
    let (url, _) = serve(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("input");
    let source = format!("{url}/stream/{}", 64 << 20);
    let error = download(&http(), &source, &dest, 1 << 20, FETCH_TIMEOUT).await.unwrap_err();
    assert_eq!(error, FetchError::TooLarge { url: source, limit: 1 << 20 });
    assert!(!dest.exists(), "a refused download leaves no file");
    // Exactly the limit is fine.
    let exact = format!("{url}/stream/{}", 1 << 20);
    let got = download(&http(), &exact, &dest, 1 << 20, FETCH_TIMEOUT).await.unwrap();
    assert_eq!(got.bytes, 1 << 20);
}

#[tokio::test]
async fn a_source_that_stalls_is_stopped_at_its_time_limit() {
    let (url, _) = serve(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("input");
    let limit = Duration::from_millis(300);
    let source = format!("{url}/stall");
    let error = download(&http(), &source, &dest, 1 << 20, limit).await.unwrap_err();
    assert_eq!(error, FetchError::Timeout { url: source, limit });
    assert!(!dest.exists());
}

#[tokio::test]
async fn a_result_store_source_must_match_its_content_id() {
    let (url, _) = serve(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("input");
    let good = format!("{url}/v1/results/{}", xiebao_results::cid_of(b"hello\n"));
    assert_eq!(download(&http(), &good, &dest, 1 << 20, FETCH_TIMEOUT).await.unwrap().bytes, 6);
    let cid = xiebao_results::cid_of(b"something else");
    let bad = format!("{url}/v1/results/{cid}");
    let error = download(&http(), &bad, &dest, 1 << 20, FETCH_TIMEOUT).await.unwrap_err();
    assert_eq!(error, FetchError::ContentId { url: bad, cid });
    assert!(!dest.exists());
}

/// A WASI module (hand-assembled) whose `_start` creates the empty directory `/out/empty`
/// (`path_create_directory` on fd 4: the worker opens `/in` as 3, `/out` as 4).
const EMPTY_DIR_APP: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
    // types: (i32, i32, i32) -> i32; () -> ()
    0x01, 0x0b, 0x02, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x01, 0x7f, 0x60, 0x00, 0x00,
    // import wasi_snapshot_preview1.path_create_directory: type 0
    0x02, 0x30, 0x01, 0x16, b'w', b'a', b's', b'i', b'_', b's', b'n', b'a', b'p', b's', b'h', b'o',
    b't', b'_', b'p', b'r', b'e', b'v', b'i', b'e', b'w', b'1', 0x15, b'p', b'a', b't', b'h', b'_',
    b'c', b'r', b'e', b'a', b't', b'e', b'_', b'd', b'i', b'r', b'e', b'c', b't', b'o', b'r', b'y',
    0x00, 0x00, // one function of type 1
    0x03, 0x02, 0x01, 0x01, // one memory of one page
    0x05, 0x03, 0x01, 0x00, 0x01, // exports: memory, _start
    0x07, 0x13, 0x02, 0x06, b'm', b'e', b'm', b'o', b'r', b'y', 0x02, 0x00, 0x06, b'_', b's', b't',
    b'a', b'r', b't', 0x00, 0x01, // _start: drop(path_create_directory(4, 0, 5))
    0x0a, 0x0d, 0x01, 0x0b, 0x00, 0x41, 0x04, 0x41, 0x00, 0x41, 0x05, 0x10, 0x00, 0x1a, 0x0b,
    // data at 0: "empty"
    0x0b, 0x0b, 0x01, 0x00, 0x41, 0x00, 0x0b, 0x05, b'e', b'm', b'p', b't', b'y',
];

/// A worker with the WASM runtime, no node behind it (these tests stop before any
/// transaction), its work directory in `dir`.
fn worker(dir: &Path, limits: FetchLimits) -> Arc<Worker> {
    let key = xiebao_types::SecretKey::from_bytes(&B256::repeat_byte(0x11)).unwrap();
    let node = Node {
        rpc: xiebao_rpc::http_client("http://127.0.0.1:9").unwrap(),
        url: "http://127.0.0.1:9".into(),
        chain_id: 1,
        domain: xiebao_types::order::Domain::new(1, Address::ZERO),
    };
    let sender = Sender::spawn(node.clone(), key.clone(), SenderOptions::default());
    let capabilities = Capabilities {
        slots: 1,
        cores: 1,
        memory_mib: 0,
        runtimes: vec!["WASM".into()],
        gpu: false,
        tee: false,
    };
    let config = Config {
        rpc: node.url.clone(),
        scheduler: "ws://127.0.0.1:9".into(),
        results: "http://127.0.0.1:9".into(),
        key,
        work_dir: dir.to_owned(),
        capabilities,
        fault: None,
        oci: false,
        join: None,
        max_calls_per_tx: 1,
    };
    let wasm: Arc<dyn Sandbox> = Arc::new(WasmRuntime::new().unwrap());
    Arc::new(Worker {
        http: http(),
        sandboxes: BTreeMap::from([(wasm.kind(), wasm)]),
        node,
        sender,
        slots: Arc::new(Semaphore::new(1)),
        held: Mutex::new(BTreeMap::new()),
        link: Mutex::new(None),
        app_lock: tokio::sync::Mutex::new(()),
        limits,
        config,
    })
}

fn assignment(app_url: String, app: &[u8], params: String) -> Assignment {
    Assignment {
        task: B256::repeat_byte(0xaa),
        deal: B256::repeat_byte(0xdd),
        index: 0,
        bot_size: 1,
        app: Resource {
            address: Address::repeat_byte(0x0a),
            multiaddr: app_url,
            checksum: B256::from(<[u8; 32]>::from(Sha256::digest(app))),
        },
        app_type: AppType::Wasm,
        dataset: None,
        params,
        beneficiary: Address::repeat_byte(0xbe),
        start_time: 1_700_000_000,
        time_ref_s: 30,
        contribution_deadline: 1_800_000_000,
        authorization: alloy_primitives::Bytes::new(),
        finish: Finish::Contribute,
    }
}

/// Entries under `dir` (none when it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

fn inputs(urls: &[String]) -> String {
    serde_json::json!({ "iexec_input_files": urls }).to_string()
}

#[tokio::test]
async fn an_empty_output_directory_survives_the_archive_so_the_digests_agree() {
    let (url, _) = serve(vec![("app.wasm", EMPTY_DIR_APP.to_vec())]).await;
    let work = tempfile::tempdir().unwrap();
    let worker = worker(work.path(), FetchLimits::default());
    let a = assignment(format!("{url}/file/app.wasm"), EMPTY_DIR_APP, String::new());
    let held = match worker.compute(&a).await {
        Ok(held) => held,
        Err(Failure { stage, reason }) => panic!("the replicate failed while {stage}: {reason}"),
    };
    // What the requester does: unpack the archive, digest the directory.
    let unpacked = tempfile::tempdir().unwrap();
    tar::Archive::new(held.archive.as_slice()).unpack(unpacked.path()).unwrap();
    assert!(unpacked.path().join("empty").is_dir());
    assert_eq!(xiebao_sdk::digest::digest_dir(unpacked.path()).unwrap(), held.digest);
    assert_eq!(entries(&work.path().join(TASKS_DIR)), Vec::<String>::new(), "task dir removed");
}

#[tokio::test]
async fn a_replicate_whose_input_is_too_large_fails_and_leaves_no_task_directory() {
    let (url, _) = serve(vec![("app.wasm", EMPTY_DIR_APP.to_vec())]).await;
    let work = tempfile::tempdir().unwrap();
    let limits = FetchLimits { input_bytes: 3 << 20, ..FetchLimits::default() };
    let worker = worker(work.path(), limits);
    // Two inputs share the 3 MiB budget: the second one, 2 MiB, is stopped at 1 MiB.
    let files = [format!("{url}/stream/{}", 2 << 20), format!("{url}/stream/{}", 2 << 20)];
    let a = assignment(format!("{url}/file/app.wasm"), EMPTY_DIR_APP, inputs(&files));
    let Err(failure) = worker.compute(&a).await else { panic!("too large an input was used") };
    assert_eq!(failure.stage, "setting-up");
    assert!(failure.reason.contains("input file 2: "), "{}", failure.reason);
    assert!(failure.reason.contains(&format!("limit of {} bytes", 1 << 20)), "{}", failure.reason);
    assert_eq!(entries(&work.path().join(TASKS_DIR)), Vec::<String>::new());
}

#[tokio::test]
async fn a_task_naming_too_many_input_files_is_refused_before_fetching_anything() {
    let (url, hits) = serve(vec![("app.wasm", EMPTY_DIR_APP.to_vec())]).await;
    let work = tempfile::tempdir().unwrap();
    let limits = FetchLimits { input_files: 2, ..FetchLimits::default() };
    let worker = worker(work.path(), limits);
    let files: Vec<String> = (0..3).map(|i| format!("{url}/bytes/{i}")).collect();
    let a = assignment(format!("{url}/file/app.wasm"), EMPTY_DIR_APP, inputs(&files));
    let Err(failure) = worker.compute(&a).await else { panic!("3 input files were accepted") };
    assert_eq!(
        (failure.stage, failure.reason.as_str()),
        ("setting-up", "the task names 3 input files, above this worker's limit of 2")
    );
    assert_eq!(hits.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn an_app_whose_sha256_differs_is_refused_and_nothing_is_kept() {
    let (url, _) = serve(vec![("app.wasm", EMPTY_DIR_APP.to_vec())]).await;
    let work = tempfile::tempdir().unwrap();
    let worker = worker(work.path(), FetchLimits::default());
    let a = assignment(format!("{url}/file/app.wasm"), b"other bytes", String::new());
    let Err(failure) = worker.compute(&a).await else { panic!("a mismatching app ran") };
    assert_eq!(failure.stage, VERIFYING);
    assert!(failure.reason.starts_with("checksum mismatch: app "), "{}", failure.reason);
    assert_eq!(entries(&work.path().join("cache")), Vec::<String>::new());
    assert_eq!(entries(&work.path().join(TASKS_DIR)), Vec::<String>::new());
}

#[tokio::test]
async fn an_app_larger_than_the_limit_is_not_fetched() {
    let (url, _) = serve(vec![]).await;
    let work = tempfile::tempdir().unwrap();
    let limits = FetchLimits { app_bytes: 1 << 20, ..FetchLimits::default() };
    let worker = worker(work.path(), limits);
    let a = assignment(format!("{url}/stream/{}", 8 << 20), b"whatever", String::new());
    let Err(failure) = worker.compute(&a).await else { panic!("too large an app was used") };
    assert_eq!(failure.stage, "setting-up");
    assert!(failure.reason.contains("more than the limit of 1048576 bytes"), "{}", failure.reason);
    assert_eq!(entries(&work.path().join("cache")), Vec::<String>::new());
}

#[test]
fn a_task_directory_is_removed_when_dropped_and_leftovers_at_start() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join(TASKS_DIR);
    let task = B256::repeat_byte(1);
    let dir = TaskDir::create(&root, &task).unwrap();
    let again = TaskDir::create(&root, &task).unwrap();
    assert_ne!(dir.path, again.path, "the same task run twice gets two directories");
    std::fs::write(dir.input().join("big"), [0u8; 1000]).unwrap();
    std::fs::create_dir_all(dir.output().join("a/b")).unwrap();
    drop(dir);
    assert_eq!(entries(&root).len(), 1);
    // A killed worker's leftovers: a task directory and a partial download.
    std::mem::forget(again);
    std::fs::create_dir_all(work.path().join("cache")).unwrap();
    std::fs::write(work.path().join("cache/abc.part"), b"half").unwrap();
    std::fs::write(work.path().join("cache/abc"), b"verified").unwrap();
    remove_leftovers(work.path());
    assert!(!root.exists());
    assert_eq!(entries(&work.path().join("cache")), vec!["abc".to_owned()]);
}

#[test]
fn archives_are_deterministic_and_keep_directories() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::create_dir_all(dir.join("b/empty")).unwrap();
    std::fs::create_dir_all(dir.join("top-empty")).unwrap();
    std::fs::write(dir.join("a.txt"), b"one").unwrap();
    std::fs::write(dir.join("b/c.txt"), b"two").unwrap();
    let first = archive(dir).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(dir.join("a.txt"), b"one").unwrap();
    assert_eq!(archive(dir).unwrap(), first);
    let mut names: Vec<(String, bool)> = Vec::new();
    for entry in tar::Archive::new(first.as_slice()).entries().unwrap() {
        let entry = entry.unwrap();
        let is_dir = entry.header().entry_type().is_dir();
        names.push((entry.path().unwrap().to_string_lossy().into_owned(), is_dir));
    }
    let expected = [("a.txt", false), ("b", true), ("b/c.txt", false), ("b/empty", true)];
    let expected = expected.into_iter().chain([("top-empty", true)]);
    assert_eq!(names, expected.map(|(n, d)| (n.to_owned(), d)).collect::<Vec<_>>());
    let unpacked = tempfile::tempdir().unwrap();
    tar::Archive::new(first.as_slice()).unpack(unpacked.path()).unwrap();
    assert_eq!(
        xiebao_sdk::digest::digest_dir(unpacked.path()).unwrap(),
        xiebao_sdk::digest::digest_dir(dir).unwrap()
    );
}

#[test]
fn archives_refuse_links() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd")).unwrap();
    let error = archive(dir.path()).unwrap_err();
    assert!(error.contains("not a regular file or a directory"), "{error}");
}

/// An iExec-style app, unchanged: a shell script in a busybox image that reads its input from
/// `$IEXEC_IN/$IEXEC_INPUT_FILE_NAME_1`, writes a result folder and a log that differs on every
/// run under `$IEXEC_OUT`, and names the result folder in `computed.json`.
const IEXEC_APP: &str = r#"#!/bin/sh
set -eu
mkdir -p "$IEXEC_OUT/result"
tr a-z A-Z < "$IEXEC_IN/$IEXEC_INPUT_FILE_NAME_1" > "$IEXEC_OUT/result/upper.txt"
echo "task $IEXEC_TASK_ID, $IEXEC_INPUT_FILES_NUMBER input file(s)" > "$IEXEC_OUT/result/about.txt"
cat /proc/uptime /proc/loadavg > "$IEXEC_OUT/run.log"
echo "{\"deterministic-output-path\": \"$IEXEC_OUT/result\"}" > "$IEXEC_OUT/computed.json"
"#;

/// The iExec-style app's image archive, built with podman; `None` (a notice) to skip when
/// podman is missing, unless `XIEBAO_REQUIRE_PODMAN` is set.
fn iexec_image(dir: &Path) -> Option<Vec<u8>> {
    let oci = match OciRuntime::new(&dir.join("build-state")) {
        Ok(oci) => oci,
        Err(e) => {
            assert!(std::env::var("XIEBAO_REQUIRE_PODMAN").is_err(), "podman is required: {e}");
            eprintln!("skipping the iExec-style OCI app test: {e}");
            return None;
        }
    };
    let context = dir.join("context");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::copy("/bin/busybox", context.join("busybox")).expect("busybox-static");
    std::fs::write(context.join("app.sh"), IEXEC_APP).unwrap();
    std::fs::write(
        context.join("Containerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCOPY app.sh /app.sh\nENTRYPOINT [\"/bin/sh\", \"/app.sh\"]\n",
    )
    .unwrap();
    let archive = dir.join("iexec-app.tar");
    oci.build_archive(&context, "localhost/xiebao-test-iexec-app:1", &archive).unwrap();
    Some(std::fs::read(&archive).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iexec_style_oci_app_runs_unchanged_and_only_its_deterministic_output_is_the_result() {
    let build = tempfile::tempdir().unwrap();
    let Some(image) = iexec_image(build.path()) else { return };
    let (url, _) =
        serve(vec![("app.tar", image.clone()), ("words.txt", b"hello bag\n".to_vec())]).await;
    let work = tempfile::tempdir().unwrap();
    let mut worker = Arc::into_inner(worker(work.path(), FetchLimits::default())).unwrap();
    let oci: Arc<dyn Sandbox> = Arc::new(OciRuntime::new(&work.path().join("oci")).unwrap());
    worker.sandboxes.insert(oci.kind(), oci);
    let worker = Arc::new(worker);
    let mut a = assignment(
        format!("{url}/file/app.tar"),
        &image,
        inputs(&[format!("{url}/file/words.txt")]),
    );
    a.app_type = AppType::Oci;
    let mut digests = Vec::new();
    for _ in 0..2 {
        let held = match worker.compute(&a).await {
            Ok(held) => held,
            Err(Failure { stage, reason }) => {
                panic!("the replicate failed while {stage}: {reason}")
            }
        };
        let unpacked = tempfile::tempdir().unwrap();
        tar::Archive::new(held.archive.as_slice()).unpack(unpacked.path()).unwrap();
        let root = unpacked.path();
        assert_eq!(std::fs::read_to_string(root.join("result/upper.txt")).unwrap(), "HELLO BAG\n");
        let about = std::fs::read_to_string(root.join("result/about.txt")).unwrap();
        assert_eq!(about, format!("task {}, 1 input file(s)\n", a.task), "IEXEC_* variables");
        assert!(root.join("computed.json").is_file());
        assert!(!root.join("run.log").exists(), "the non-deterministic log is not the result");
        assert_eq!(xiebao_sdk::digest::digest_dir(root).unwrap(), held.digest);
        digests.push(held.digest);
    }
    assert_eq!(digests[0], digests[1], "two runs agree despite their different logs");
}
