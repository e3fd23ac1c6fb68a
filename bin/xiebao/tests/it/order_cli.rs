//! `xiebao order` against an independent implementation (Python's eth-account): the same
//! EIP-712 hashes, signatures both ways, and V3 keystores both ways.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::xiebao;

const CHAIN_ID: &str = "134";
const CONTRACT: &str = "0x3eca1B216A7DF1C7689aEb259fFB83ADFB894E7f";
const KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const KEY_ADDRESS: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's python, created by `scripts/python-deps.sh` on first use.
pub(crate) fn python() -> PathBuf {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY
        .get_or_init(|| {
            let status = Command::new(repo().join("scripts/python-deps.sh"))
                .status()
                .expect("run python-deps.sh");
            assert!(status.success(), "scripts/python-deps.sh failed (needs python3 and PyPI)");
            repo().join(".venv/bin/python3")
        })
        .clone()
}

pub(crate) fn vectors_py(args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(python())
        .arg(repo().join("bin/xiebao/tests/vectors/orders.py"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run orders.py");
    if let Some(input) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "orders.py {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn domain_args<'a>(file: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![file, "--chain-id", CHAIN_ID, "--verifying-contract", CONTRACT];
    args.extend_from_slice(rest);
    args
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn vectors() -> Vec<Value> {
    serde_json::from_str(&vectors_py(&["vectors", CHAIN_ID, CONTRACT, KEY], None)).unwrap()
}

#[test]
fn order_hashes_and_signatures_match_eth_account() {
    let dir = tempfile::tempdir().unwrap();
    let vectors = vectors();
    assert_eq!(vectors.len(), 6);
    for (i, vector) in vectors.iter().enumerate() {
        let order = write(dir.path(), &format!("o{i}.json"), &vector["order"].to_string());
        let run = xiebao(&[&["order", "hash"][..], &domain_args(&order, &[])].concat());
        assert!(run.ok, "{}", run.stderr);
        assert_eq!(run.stdout, vector["hash"].as_str().unwrap(), "vector {i} ({})", vector["kind"]);
        // eth-account's signature verifies.
        let mut signed = vector["order"].clone();
        signed["sign"] = vector["sign"].clone();
        let file = write(dir.path(), &format!("s{i}.json"), &signed.to_string());
        let run = xiebao(
            &[&["order", "verify"][..], &domain_args(&file, &["--signer", KEY_ADDRESS])].concat(),
        );
        assert!(run.ok, "vector {i}: {}", run.stderr);
        assert_eq!(run.stdout, format!("valid: signed by {KEY_ADDRESS}"));
    }
}

#[test]
fn our_signatures_recover_in_eth_account() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = write(dir.path(), "key.hex", &format!("{KEY}\n"));
    for (i, vector) in vectors().iter().enumerate() {
        let order = write(dir.path(), &format!("o{i}.json"), &vector["order"].to_string());
        let run = xiebao(
            &[&["order", "sign"][..], &domain_args(&order, &["--key-file", &key_file, "--json"])]
                .concat(),
        );
        assert!(run.ok, "{}", run.stderr);
        let signed: Value = serde_json::from_str(&run.stdout).unwrap();
        let input = serde_json::json!({ "kind": vector["kind"], "order": signed }).to_string();
        let signer = vectors_py(&["recover", CHAIN_ID, CONTRACT], Some(&input));
        assert_eq!(signer, KEY_ADDRESS, "vector {i}");
    }
}

#[test]
fn keystores_interoperate_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let order = write(dir.path(), "o.json", &vectors()[0]["order"].to_string());
    // eth-account's keystore signs through our CLI.
    let keystore = write(dir.path(), "ks.json", &vectors_py(&["encrypt", KEY, "s3cret"], None));
    let password = write(dir.path(), "pw", "s3cret\n");
    let run = xiebao(
        &[
            &["order", "sign"][..],
            &domain_args(
                &order,
                &["--key-file", &keystore, "--password-file", &password, "--json"],
            ),
        ]
        .concat(),
    );
    assert!(run.ok, "{}", run.stderr);
    let signed = write(dir.path(), "signed.json", &run.stdout);
    let run = xiebao(
        &[&["order", "verify"][..], &domain_args(&signed, &["--signer", KEY_ADDRESS])].concat(),
    );
    assert!(run.ok, "{}", run.stderr);
    // A wrong password and a missing one are explained.
    let wrong = write(dir.path(), "wrong", "nope");
    let run = xiebao(
        &[
            &["order", "sign"][..],
            &domain_args(&order, &["--key-file", &keystore, "--password-file", &wrong]),
        ]
        .concat(),
    );
    assert!(!run.ok);
    assert!(run.stderr.contains("wrong password for keystore"), "{}", run.stderr);
    let run = xiebao(
        &[&["order", "sign"][..], &domain_args(&order, &["--key-file", &keystore])].concat(),
    );
    assert!(!run.ok);
    assert!(run.stderr.contains("XIEBAO_PASSWORD"), "{}", run.stderr);
    // Our keystore decrypts in eth-account to the same key.
    let key = xiebao_types::SecretKey::from_bytes(&KEY.parse().unwrap()).unwrap();
    let ours = xiebao_sdk::wallet::create_keystore(&key, "pässword", dir.path()).unwrap();
    let decrypted = vectors_py(&["decrypt", ours.to_str().unwrap(), "pässword"], None);
    assert_eq!(decrypted, KEY);
}

#[test]
fn bad_orders_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty.json", "{}");
    let run = xiebao(&[&["order", "hash"][..], &domain_args(&empty, &[])].concat());
    assert!(!run.ok);
    assert!(run.stderr.contains("cannot tell the order kind"), "{}", run.stderr);
    let vector = &vectors()[0];
    let unsigned = write(dir.path(), "u.json", &vector["order"].to_string());
    let run = xiebao(
        &[&["order", "verify"][..], &domain_args(&unsigned, &["--signer", KEY_ADDRESS])].concat(),
    );
    assert!(!run.ok);
    assert!(run.stderr.contains("no `sign` field"), "{}", run.stderr);
    let mut signed = vector["order"].clone();
    signed["sign"] = vector["sign"].clone();
    let file = write(dir.path(), "s.json", &signed.to_string());
    let other = "0x0000000000000000000000000000000000000001";
    let run =
        xiebao(&[&["order", "verify"][..], &domain_args(&file, &["--signer", other])].concat());
    assert!(!run.ok);
    assert!(
        run.stderr.contains(&format!("signed by {KEY_ADDRESS}, not by {other}")),
        "{}",
        run.stderr
    );
    let mut bad = vector["order"].clone();
    bad["volume"] = serde_json::json!("-3");
    let file = write(dir.path(), "bad.json", &bad.to_string());
    let run = xiebao(&[&["order", "hash"][..], &domain_args(&file, &[])].concat());
    assert!(!run.ok);
    assert!(
        run.stderr.contains("invalid app order") && run.stderr.contains("`-3` is not a uint256"),
        "{}",
        run.stderr
    );
}

#[test]
fn presign_and_cancel_operation_hashes_match_eth_account() {
    use xiebao_types::order::{AnyOrder, Domain, OrderOperation};
    let domain = Domain::new(CHAIN_ID.parse().unwrap(), CONTRACT.parse().unwrap());
    let vectors: Vec<Value> =
        serde_json::from_str(&vectors_py(&["operations", CHAIN_ID, CONTRACT], None)).unwrap();
    assert_eq!(vectors.len(), 12);
    for vector in vectors {
        let order = AnyOrder::from_json(&vector["order"].to_string(), None).unwrap();
        let operation =
            if vector["operation"] == 0 { OrderOperation::Sign } else { OrderOperation::Close };
        let hash = order.operation_hash(&domain, operation);
        assert_eq!(
            hash.to_string(),
            vector["hash"].as_str().unwrap(),
            "{} {:?}",
            vector["kind"],
            operation
        );
    }
}

/// `order init` → `order sign` → `order verify`: a fresh template of each kind signs and
/// verifies, and two templates never share a salt.
#[test]
fn order_templates_sign_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKeyHex::write(dir.path());
    let target = "0x00000000000000000000000000000000000000aa";
    let mut salts = Vec::new();
    for kind in ["app", "dataset", "workerpool", "request"] {
        let mut args = vec!["order", "init", "--kind", kind, "--target", target, "--price", "1.5"];
        args.extend(["--requester", key.address.as_str()]);
        let init = xiebao(&args);
        assert!(init.ok, "{kind}: {}", init.stderr);
        let order: Value = serde_json::from_str(&init.stdout).unwrap();
        salts.push(order["salt"].as_str().unwrap().to_owned());
        let file = write(dir.path(), &format!("{kind}.json"), &init.stdout);
        let signed = xiebao(
            &[&["order", "sign"][..], &domain_args(&file, &["--key-file", &key.file, "--json"])]
                .concat(),
        );
        assert!(signed.ok, "{kind}: {}", signed.stderr);
        let signed_file = write(dir.path(), &format!("{kind}-signed.json"), &signed.stdout);
        let verified = xiebao(
            &[&["order", "verify"][..], &domain_args(&signed_file, &["--signer", &key.address])]
                .concat(),
        );
        assert!(verified.ok, "{kind}: {}", verified.stderr);
    }
    salts.sort();
    salts.dedup();
    assert_eq!(salts.len(), 4, "salts repeat");
    let request = xiebao(&["order", "init", "--kind", "request"]);
    assert!(!request.ok && request.stderr.contains("needs --requester"), "{}", request.stderr);
}

struct SecretKeyHex {
    file: String,
    address: String,
}

impl SecretKeyHex {
    fn write(dir: &Path) -> Self {
        let key = xiebao_types::SecretKey::from_label("template signer");
        let file = write(dir, "signer.key", &key.to_bytes().to_string());
        Self { file, address: key.address().to_string() }
    }
}
