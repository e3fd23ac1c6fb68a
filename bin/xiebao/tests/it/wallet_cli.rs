//! `xiebao wallet` as a user runs it, checked against eth-account.

use crate::order_cli::vectors_py;
use crate::{Run, xiebao_env};

fn wallet(dir: &std::path::Path, args: &[&str]) -> Run {
    xiebao_env(&[&["wallet"][..], args].concat(), &[("XIEBAO_WALLET_DIR", dir)])
}

fn json(run: &Run) -> serde_json::Value {
    assert!(run.ok, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

const MNEMONIC: &str =
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

#[test]
fn created_and_imported_accounts_open_in_eth_account() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("wallets");
    let password = home.path().join("pw");
    std::fs::write(&password, "hunter2\n").unwrap();
    let pw = password.to_str().unwrap();

    // create: the keystore decrypts in eth-account to the key of the printed address.
    let created = json(&wallet(&dir, &["create", "--password-file", pw, "--json"]));
    let keystore = created["keystore"].as_str().unwrap();
    let key_hex = vectors_py(&["decrypt", keystore, "hunter2"], None);
    let key = xiebao_types::SecretKey::from_bytes(&key_hex.parse().unwrap()).unwrap();
    assert_eq!(created["address"].as_str().unwrap(), key.address().to_string());

    // import a mnemonic: same account as eth-account derives.
    let mnemonic_file = home.path().join("mnemonic");
    std::fs::write(&mnemonic_file, format!("  {MNEMONIC}\n")).unwrap();
    let imported = json(&wallet(
        &dir,
        &[
            "import",
            "--mnemonic-file",
            mnemonic_file.to_str().unwrap(),
            "--index",
            "2",
            "--password-file",
            pw,
            "--json",
        ],
    ));
    let expected = vectors_py(&["mnemonic", MNEMONIC, "2"], None);
    assert_eq!(imported["address"].as_str().unwrap(), expected);

    // import a private key.
    let key_file = home.path().join("key.hex");
    std::fs::write(&key_file, "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
        .unwrap();
    let from_key = json(&wallet(
        &dir,
        &[
            "import",
            "--private-key-file",
            key_file.to_str().unwrap(),
            "--password-file",
            pw,
            "--json",
        ],
    ));
    assert_eq!(from_key["address"], "0x70997970C51812dc3A010C7d01b50e0d17dc79C8");

    // list shows all three, show finds one; importing twice is refused.
    let listed = json(&wallet(&dir, &["list", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 3);
    let shown =
        json(&wallet(&dir, &["show", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "--json"]));
    assert_eq!(shown["keystore"], from_key["keystore"]);
    let again = wallet(
        &dir,
        &["import", "--private-key-file", key_file.to_str().unwrap(), "--password-file", pw],
    );
    assert!(!again.ok && again.stderr.contains("already exists"), "{}", again.stderr);
    // The password never appears in the output or the files' names.
    assert!(!shown.to_string().contains("hunter2"));
}

#[test]
fn wallet_mistakes_are_explained() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("wallets");
    let run = wallet(&dir, &["create"]);
    assert!(!run.ok);
    assert!(run.stderr.contains("--password-file or the XIEBAO_PASSWORD"), "{}", run.stderr);
    let bad = home.path().join("bad");
    std::fs::write(&bad, "abandon abandon zebra").unwrap();
    let run = wallet(&dir, &["import", "--mnemonic-file", bad.to_str().unwrap()]);
    assert!(!run.ok);
    assert!(run.stderr.contains("not a valid BIP-39 mnemonic (3 words"), "{}", run.stderr);
    let run = wallet(&dir, &["show", "0x0000000000000000000000000000000000000001"]);
    assert!(!run.ok);
    assert!(
        run.stderr.contains("no keystore for 0x0000000000000000000000000000000000000001"),
        "{}",
        run.stderr
    );
    let run = wallet(&dir, &["list"]);
    assert!(run.ok && run.stdout.contains("no accounts in"), "{}", run.stdout);
}
