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

#[test]
fn results_serve_takes_signed_uploads_and_serves_them_back() {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_xiebao"))
        .args(["results", "serve", "--open", "--listen", "127.0.0.1:0", "--dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the gateway");
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("serving results on http://").expect(&line).to_owned();
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
        "PUT /v1/results/{task} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\nx-xiebao-signature: {signature}\r\n\r\n",
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
