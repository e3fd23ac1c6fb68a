//! What a newcomer meets, through the real binary: errors that name the cause and the next
//! step, a devnet that refuses a second start and serves the commands started beside it,
//! apps by name.

use std::io::BufRead as _;
use std::process::{Command, Stdio};

use crate::{xiebao, xiebao_in};

#[test]
fn a_url_without_its_scheme_is_named_with_the_form_to_use() {
    let run = xiebao(&["chain", "status", "--rpc", "localhost:24675"]);
    assert!(!run.ok);
    assert!(
        run.stderr.contains("hint: URLs name their scheme: --rpc http://HOST:PORT"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_devnet_checks_the_demo_options_before_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("net");
    let data = data.to_str().unwrap();
    let run = xiebao(&["devnet", "--demo", "--app", "wordcont", "--data-dir", data]);
    assert!(!run.ok);
    assert!(
        run.stderr
            .contains("--app wordcont: the demo apps are mandelbrot, wordcount, oci-wordcount"),
        "{}",
        run.stderr
    );
    let run =
        xiebao(&["devnet", "--demo", "--app", "wordcount", "--tasks", "0", "--data-dir", data]);
    assert!(!run.ok);
    assert!(
        run.stderr.contains("--tasks must be between 1 and 10000 for --app wordcount, got 0"),
        "{}",
        run.stderr
    );
    let run = xiebao(&["devnet", "--demo", "--tasks", "0", "--data-dir", data]);
    assert!(!run.ok);
    assert!(run.stderr.contains("--tasks must be at least 1"), "{}", run.stderr);
    assert!(!std::path::Path::new(data).exists(), "nothing was created");
}

#[test]
fn beside_a_running_devnet_commands_use_it_and_errors_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let mut devnet = Command::new(env!("CARGO_BIN_EXE_xiebao"))
        .args(["devnet", "--keep", "--validators", "1", "--workers", "1"])
        .current_dir(dir.path())
        .env("XIEBAO_CONFIG", "/nonexistent/xiebao/config.toml")
        .env_remove("XIEBAO_CHAIN")
        .env_remove("XIEBAO_RPC")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its sentences: ready, how commands reach it, how to fund an account.
    let mut said = Vec::new();
    let mut lines = std::io::BufReader::new(devnet.stderr.take().unwrap()).lines();
    while !said.iter().any(|l: &String| l.starts_with("fund an account")) {
        let line = lines.next().expect("the devnet's sentences").unwrap();
        said.push(line);
    }
    let said = said.join("\n");
    assert!(said.contains("commands started in this directory use it"), "{said}");
    assert!(said.contains("xiebao-devnet/chain/faucet.key"), "{said}");
    let pid = devnet.id().to_string();

    // A second devnet in the same directory is refused, naming the running one.
    let second = xiebao_in(dir.path(), &["devnet", "--keep"], &[]);
    assert!(!second.ok);
    assert!(second.stderr.contains("a devnet already runs in xiebao-devnet"), "{}", second.stderr);
    assert!(second.stderr.contains(&format!("pid {pid}")), "{}", second.stderr);

    // No endpoint given: the devnet answers.
    let status = xiebao_in(dir.path(), &["chain", "status"], &[]);
    assert!(status.ok, "{}", status.stderr);
    let shown = xiebao_in(dir.path(), &["config", "show"], &[]);
    assert!(shown.stdout.contains("devnet"), "{}", shown.stdout);

    // An app by a name nobody registered: what there is, by name.
    let key = dir.path().join("xiebao-devnet/keys/requester.key");
    let key = key.to_str().unwrap();
    let run = xiebao_in(dir.path(), &["run", "mandelbrott", "--key-file", key, "--yes"], &[]);
    assert!(!run.ok);
    assert!(run.stderr.contains("no app named \"mandelbrott\""), "{}", run.stderr);
    assert!(
        run.stderr.contains("mandelbrot, oci-wordcount, wordcount")
            || run.stderr.contains("mandelbrot, wordcount"),
        "{}",
        run.stderr
    );

    // A new account with nothing: the missing amount, and the faucet that pays.
    let empty = dir.path().join("empty.key");
    std::fs::write(&empty, "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\n")
        .unwrap();
    let run = xiebao_in(
        dir.path(),
        &["run", "mandelbrot", "--args", "8 8 1 1 10", "--yes"],
        // The key from XIEBAO_KEY_FILE, the default key.
        &[("XIEBAO_KEY_FILE", empty.as_path())],
    );
    assert!(!run.ok);
    assert!(run.stderr.contains("has 0 RLC free"), "{}", run.stderr);
    assert!(
        run.stderr.contains("hint: on the devnet here, the faucet pays: xiebao account transfer"),
        "{}",
        run.stderr
    );

    // An unsigned order published: the node's reason once, in words, and what to do.
    let order = dir.path().join("order.json");
    let layout: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("xiebao-devnet/devnet.json")).unwrap(),
    )
    .unwrap();
    let mut app_order = layout["apps"]["mandelbrot"]["order"].clone();
    app_order["sign"] = "0x".into();
    app_order["salt"] = format!("0x{}", "77".repeat(32)).into();
    std::fs::write(&order, app_order.to_string()).unwrap();
    let run = xiebao_in(dir.path(), &["order", "publish", order.to_str().unwrap()], &[]);
    assert!(!run.ok);
    assert!(!run.stderr.contains("ErrorObject"), "no debug text: {}", run.stderr);
    assert_eq!(run.stderr.matches("not presigned").count(), 1, "once: {}", run.stderr);
    assert!(run.stderr.contains("hint: sign the order first: xiebao order sign"), "{}", run.stderr);

    // The order domain read from the node beside us: the same hash as with explicit flags.
    let signed = dir.path().join("signed.json");
    std::fs::write(&signed, layout["apps"]["mandelbrot"]["order"].to_string()).unwrap();
    let signed = signed.to_str().unwrap();
    let offline = xiebao_in(
        dir.path(),
        &[
            "order",
            "hash",
            signed,
            "--chain-id",
            "65535",
            "--verifying-contract",
            "0x1111111111111111111111111111111111111111",
        ],
        &[],
    );
    assert!(offline.ok, "{}", offline.stderr);
    let from_node = xiebao_in(dir.path(), &["order", "hash", signed], &[]);
    assert!(from_node.ok, "{}", from_node.stderr);
    assert_eq!(from_node.stdout, offline.stdout);
    let wrong = xiebao_in(dir.path(), &["order", "hash", signed, "--chain-id", "1"], &[]);
    assert!(!wrong.ok);
    assert!(wrong.stderr.contains("--chain-id 1, but the node at"), "{}", wrong.stderr);

    let term = Command::new("kill").arg(&pid).status().unwrap();
    assert!(term.success());
    assert!(devnet.wait().unwrap().success());
    assert!(!dir.path().join("xiebao-devnet/devnet.lock").exists(), "the lock is released");
    // Stopped: the hint says to start it again.
    let run = xiebao_in(dir.path(), &["--chain", "devnet", "chain", "status"], &[]);
    assert!(!run.ok);
    assert!(run.stderr.contains("the devnet in ./xiebao-devnet is not running"), "{}", run.stderr);
}
