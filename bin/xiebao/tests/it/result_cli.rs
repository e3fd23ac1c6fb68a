//! `xiebao result digest` on real directories, against an independent Python implementation.

use std::path::Path;
use std::process::Command;

fn python_digest(dir: &Path) -> String {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python3");
    // The venv exists once any eth-account test ran; make sure of it.
    let _ = crate::order_cli::vectors_py(
        &[
            "mnemonic",
            "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
            "0",
        ],
        None,
    );
    let output = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/digest.py"))
        .arg(dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn xiebao_digest(args: &[&str]) -> (bool, String, String) {
    let run = crate::xiebao(&[&["result", "digest"][..], args].concat());
    (run.ok, run.stdout, run.stderr)
}

#[test]
fn output_directory_digests_match_the_independent_implementation() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    std::fs::create_dir_all(out.join("frames/empty")).unwrap();
    std::fs::create_dir_all(out.join("logs")).unwrap();
    std::fs::write(out.join("result.txt"), "42\n").unwrap();
    std::fs::write(out.join("frames/0001.png"), [0u8, 1, 2, 255]).unwrap();
    std::fs::write(out.join("frames/0002.png"), b"").unwrap();
    std::fs::write(out.join("logs/ünïcode.log"), "ok").unwrap();
    let (ok, ours, stderr) = xiebao_digest(&[out.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert_eq!(ours, python_digest(&out));
    // Any change of a name or a byte changes the digest.
    std::fs::write(out.join("frames/0002.png"), b"x").unwrap();
    let (_, changed, _) = xiebao_digest(&[out.to_str().unwrap()]);
    assert_ne!(changed, ours);
    assert_eq!(changed, python_digest(&out));
}

#[test]
fn callback_digest_is_keccak_of_the_data_and_links_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("callback.bin");
    std::fs::write(&data, b"").unwrap();
    let (ok, digest, _) = xiebao_digest(&["--callback-file", data.to_str().unwrap()]);
    assert!(ok);
    assert_eq!(digest, "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
    let out = root.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", out.join("leak")).unwrap();
    let (ok, _, stderr) = xiebao_digest(&[out.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("links and special files are not allowed"), "{stderr}");
}

/// Starts `xiebao results serve --open` on a free port over `dir`; returns it and its address.
fn start_open_gateway(dir: &std::path::Path) -> (std::process::Child, String) {
    use std::io::{BufRead as _, BufReader};
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_xiebao"))
        .args(["results", "serve", "--open", "--listen", "127.0.0.1:0", "--dir"])
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the gateway");
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("serving results on http://").expect(&line).to_owned();
    (server, addr)
}

#[test]
fn results_serve_takes_signed_uploads_and_serves_them_back() {
    use std::io::{Read as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = start_open_gateway(dir.path());
    let exchange = |request: Vec<u8>| {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream.write_all(&request).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        String::from_utf8_lossy(&response).into_owned()
    };
    let task = xiebao_types::B256::repeat_byte(3);
    let result = b"tile 4".to_vec();
    let cid = xiebao_results::cid_of(&result);
    let key = xiebao_types::SecretKey::from_label("worker");
    let signature = key.eth_sign(&xiebao_results::gateway::upload_hash(&task, &cid));
    let mut put = format!(
        "PUT /v1/results/{task} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\nx-xiebao-signature: {signature}\r\nx-xiebao-cid: {cid}\r\n\r\n",
        result.len()
    )
    .into_bytes();
    put.extend_from_slice(&result);
    let response = exchange(put);
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    assert!(response.contains(&cid), "{response}");
    let get = format!("GET /v1/results/{cid} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let response = exchange(get.into_bytes());
    assert!(response.starts_with("HTTP/1.1 200") && response.ends_with("tile 4"), "{response}");
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn a_sealed_result_opens_only_with_the_beneficiarys_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    std::fs::write(path("result"), b"frames 1-100").unwrap();
    let beneficiary = xiebao_types::SecretKey::from_label("beneficiary");
    std::fs::write(path("beneficiary.key"), beneficiary.to_bytes().to_string()).unwrap();
    let other = xiebao_types::SecretKey::from_label("other");
    std::fs::write(path("other.key"), other.to_bytes().to_string()).unwrap();
    let public = beneficiary.public_key().to_string();
    let run = crate::xiebao(&[
        "result",
        "seal",
        "--for",
        &public,
        "--in",
        &path("result"),
        "--out",
        &path("sealed"),
    ]);
    assert!(run.ok, "{}", run.stderr);
    assert_ne!(std::fs::read(path("sealed")).unwrap(), b"frames 1-100");
    let run = crate::xiebao(&[
        "result",
        "open",
        "--key-file",
        &path("beneficiary.key"),
        "--in",
        &path("sealed"),
        "--out",
        &path("opened"),
    ]);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(std::fs::read(path("opened")).unwrap(), b"frames 1-100");
    let run = crate::xiebao(&[
        "result",
        "open",
        "--key-file",
        &path("other.key"),
        "--in",
        &path("sealed"),
        "--out",
        &path("stolen"),
    ]);
    assert!(!run.ok && run.stderr.contains("sealed for another key"), "{}", run.stderr);
    assert!(!dir.path().join("stolen").exists());
    let run = crate::xiebao(&[
        "result",
        "seal",
        "--for",
        "0x0102",
        "--in",
        &path("result"),
        "--out",
        &path("x"),
    ]);
    assert!(
        !run.ok && run.stderr.contains("not a secp256k1 public key (2 bytes"),
        "{}",
        run.stderr
    );
}

/// `xiebao results serve` under 30 unsigned uploads at once, each declaring 64 MiB and
/// pushing 8 MiB: the gateway answers from the head and reads no body, so its memory stays
/// flat. Before, it buffered every body before looking at the signature (146 MB sent → 2 GB
/// RSS in the attack review).
#[test]
fn results_serve_refuses_unsigned_uploads_without_buffering_their_bodies() {
    use std::io::{Read as _, Write as _};
    const CONNECTIONS: usize = 30;
    const PUSHED_BYTES: usize = 8 << 20;
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = start_open_gateway(dir.path());
    let pid = server.id();
    let before = peak_rss_kib(pid);
    let task = xiebao_types::B256::repeat_byte(9);
    let answers: Vec<String> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                scope.spawn(|| {
                    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
                    stream.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
                    stream.set_write_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
                    let head = format!(
                        "PUT /v1/results/{task} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                        64 << 20
                    );
                    stream.write_all(head.as_bytes()).unwrap();
                    // The gateway may answer and close at any point: write errors are expected.
                    let chunk = vec![0u8; 1 << 20];
                    for _ in 0..PUSHED_BYTES / chunk.len() {
                        if stream.write_all(&chunk).is_err() {
                            break;
                        }
                    }
                    let mut response = Vec::new();
                    let _ = stream.read_to_end(&mut response);
                    String::from_utf8_lossy(&response).into_owned()
                })
            })
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let grown_kib = peak_rss_kib(pid).saturating_sub(before);
    eprintln!(
        "results serve: peak RSS grew by {} KiB under {CONNECTIONS} unsigned uploads of {} MiB each",
        grown_kib,
        PUSHED_BYTES >> 20
    );
    // The gateway still serves.
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    let cid = xiebao_results::cid_of(b"never");
    stream
        .write_all(
            format!("GET /v1/results/{cid} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
    assert!(grown_kib < 48 * 1024, "peak RSS grew by {grown_kib} KiB");
    // Those whose answer arrived before the reset: refused for the missing signature.
    for answer in answers.iter().filter(|a| !a.is_empty()) {
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// Peak resident memory (`VmHWM`) of process `pid`, KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// How the fake result server answers one address.
#[derive(Clone)]
enum Serve {
    /// The bytes, with their length.
    Bytes(Vec<u8>),
    /// The bytes, chunked, with no length announced.
    Chunked(Vec<u8>),
    /// A Content-Length of `declared` in front of a few bytes.
    Declares(u64),
}

/// A fake node (JSON-RPC `xiebao_getTask`/`xiebao_getDeal` answering with `chain`) and result
/// store (`GET /v1/results/{cid}` answering from `results`) on one free loopback port; it
/// stops by itself after a few hundred connections.
fn fake_chain_and_store(
    chain: std::sync::Arc<std::sync::Mutex<(serde_json::Value, serde_json::Value)>>,
    results: std::collections::BTreeMap<String, Serve>,
) -> String {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(300) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut length = 0usize;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_owned();
            let reply = |stream: &mut std::net::TcpStream, head: String, body: &[u8]| {
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(body);
            };
            if request_line.starts_with("POST") {
                let call: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let (task, deal) = chain.lock().unwrap().clone();
                let result = match call["method"].as_str() {
                    Some("xiebao_getTask") => task,
                    Some("xiebao_getDeal") => deal,
                    _ => serde_json::Value::Null,
                };
                let answer =
                    serde_json::json!({ "jsonrpc": "2.0", "id": call["id"], "result": result })
                        .to_string();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    answer.len()
                );
                reply(&mut stream, head, answer.as_bytes());
                continue;
            }
            let cid = path.rsplit('/').next().unwrap_or_default();
            match results.get(cid) {
                Some(Serve::Bytes(bytes)) => reply(
                    &mut stream,
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        bytes.len()
                    ),
                    bytes,
                ),
                Some(Serve::Chunked(bytes)) => {
                    let mut body = Vec::new();
                    for chunk in bytes.chunks(1000) {
                        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                        body.extend_from_slice(chunk);
                        body.extend_from_slice(b"\r\n");
                    }
                    body.extend_from_slice(b"0\r\n\r\n");
                    reply(
                        &mut stream,
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".into(),
                        &body,
                    );
                }
                Some(Serve::Declares(declared)) => reply(
                    &mut stream,
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
                    ),
                    b"tiny",
                ),
                None => reply(
                    &mut stream,
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .into(),
                    b"",
                ),
            }
        }
    });
    format!("http://{addr}")
}

/// A tar of `entries` (name, type, declared size, link, data), written header by header so
/// that it can hold what a careful archiver never writes.
fn raw_tar(entries: &[(&str, u8, u64, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, size, link, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.as_mut_bytes()[..name.len()].copy_from_slice(name.as_bytes());
        header.as_mut_bytes()[157..157 + link.len()].copy_from_slice(link.as_bytes());
        header.set_mode(0o644);
        header.set_size(*size);
        header.set_entry_type(tar::EntryType::new(*kind));
        if *kind == b'S' {
            // Its stored bytes placed at the end of a 2 GiB file.
            let gnu = header.as_gnu_mut().unwrap();
            gnu.set_real_size(2 << 30);
            gnu.sparse[0].set_offset((2 << 30) - size);
            gnu.sparse[0].set_length(*size);
        }
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// `xiebao result download` against a store that lies: a huge declared length, bytes that are
/// not the linked ones, archives with a symbolic link or a sparse 2 GiB file, an endless
/// chunked body, files that are not the agreed result. Each is refused naming the rule, and
/// leaves nothing on disk. Before, the command read the whole body into memory, unpacked
/// before checking anything (planting the link, writing the 2 GiB file) and left it all there.
#[test]
fn result_download_refuses_lying_stores_and_leaves_nothing_behind() {
    use xiebao_types::digest::{OutputEntry, output_digest_v1};
    let genuine = raw_tar(&[("result.txt", b'0', 3, "", b"42\n")]);
    let genuine_digest = output_digest_v1(&[OutputEntry::file("result.txt", b"42\n")]);
    let symlink =
        raw_tar(&[("result.txt", b'0', 3, "", b"42\n"), ("leak", b'2', 0, "/etc/passwd", b"")]);
    let sparse = raw_tar(&[("huge.bin", b'S', 1, "", b"x")]);
    let big = vec![7u8; 5000];
    let cid = xiebao_results::cid_of;
    let declared = cid(b"declares");
    let results: std::collections::BTreeMap<String, Serve> = [
        (cid(&genuine), Serve::Bytes(genuine.clone())),
        (cid(&symlink), Serve::Bytes(symlink.clone())),
        (cid(&sparse), Serve::Bytes(sparse.clone())),
        (cid(&big), Serve::Chunked(big.clone())),
        (cid(b"what the chain links"), Serve::Bytes(b"something else".to_vec())),
        (declared.clone(), Serve::Declares(3_000_000_000)),
    ]
    .into_iter()
    .collect();
    let deal_id = xiebao_types::B256::repeat_byte(0xde);
    let resource = xiebao_protocol::Resource::default();
    let deal = xiebao_rpc::Deal {
        app: resource.clone(),
        dataset: resource.clone(),
        workerpool: resource,
        trust: 1,
        category: 0,
        tag: xiebao_types::Tag::NONE,
        requester: xiebao_types::Address::ZERO,
        beneficiary: xiebao_types::Address::ZERO,
        callback: xiebao_types::Address::ZERO,
        params: String::new(),
        start_time: 0,
        bot_first: xiebao_types::U256::ZERO,
        bot_size: 1,
        worker_stake: xiebao_types::Nrlc(0),
        scheduler_reward_ratio: 0,
        request_hash: xiebao_types::B256::ZERO,
        time_ref_s: 10,
        initialized: 1,
        completed: 1,
        failed: 0,
        expired: false,
    };
    let task = |link: String, digest: xiebao_types::B256| xiebao_rpc::Task {
        status: xiebao_protocol::TaskStatus::Completed,
        deal_id,
        idx: xiebao_types::U256::ZERO,
        time_ref_s: 10,
        contribution_deadline: 70,
        reveal_deadline: 80,
        final_deadline: 100,
        consensus_value: xiebao_types::B256::ZERO,
        reveal_counter: 1,
        winner_counter: 1,
        result_digest: digest,
        results: link.into_bytes().into(),
        results_callback: Default::default(),
        contributions: Vec::new(),
        groups: Vec::new(),
        total_weight: xiebao_types::U256::ZERO,
    };
    let chain = std::sync::Arc::new(std::sync::Mutex::new((
        serde_json::Value::Null,
        serde_json::to_value(&deal).unwrap(),
    )));
    let url = fake_chain_and_store(chain.clone(), results);
    let task_id = xiebao_types::ids::task_id(&deal_id, xiebao_types::U256::ZERO).to_string();
    let download = |served: &str, digest: xiebao_types::B256, extra: &[&str]| {
        let link = format!("{url}/v1/results/{served}");
        chain.lock().unwrap().0 = serde_json::to_value(task(link, digest)).unwrap();
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        let mut args =
            vec!["result", "download", &task_id, "--out", out.to_str().unwrap(), "--rpc", &url];
        args.extend_from_slice(extra);
        let run = crate::xiebao(&args);
        let left: Vec<String> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        (run, left, root)
    };
    let refused = |served: &str, digest, extra: &[&str], reason: &str| {
        let (run, left, _root) = download(served, digest, extra);
        assert!(!run.ok, "accepted {served}: {}", run.stdout);
        assert!(run.stderr.contains(reason), "{served}: expected `{reason}` in {}", run.stderr);
        assert!(left.is_empty(), "{served}: left behind {left:?}; {}", run.stderr);
    };
    refused(
        &declared,
        genuine_digest,
        &[],
        &format!("result of task {task_id} is 3,000,000,000 bytes, over the 1 GiB limit"),
    );
    refused(&cid(b"what the chain links"), genuine_digest, &[], "do not match the content id");
    refused(&cid(&symlink), genuine_digest, &[], "entry `leak` is a symbolic link");
    refused(&cid(&sparse), genuine_digest, &[], "entry `huge.bin` is a sparse file");
    refused(&cid(&big), genuine_digest, &["--max-bytes", "4096"], "over the 4 KiB limit");
    refused(
        &cid(&genuine),
        xiebao_types::B256::repeat_byte(1),
        &[],
        "differs from the one agreed on chain",
    );
    // The genuine result unpacks, and only it.
    let (run, left, root) = download(&cid(&genuine), genuine_digest, &[]);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(left, ["out"]);
    assert_eq!(std::fs::read(root.path().join("out/result.txt")).unwrap(), b"42\n");
}
