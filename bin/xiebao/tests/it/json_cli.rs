//! `--json` on every command, for scripts: the command tree is walked, and the new outputs
//! parse.

use crate::xiebao;

/// Leaf commands that have no `--json`, each with the reason.
const WITHOUT_JSON: &[(&str, &str)] = &[
    // Its output is a shell script for the shell to source, not data.
    ("completions", "prints a shell completion script"),
];

/// Runs `xiebao args…`, asserts it succeeded, and parses its stdout as one JSON value.
fn json(args: &[&str]) -> serde_json::Value {
    let run = xiebao(args);
    assert!(run.ok, "xiebao {args:?} failed: {}", run.stderr);
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("xiebao {args:?} printed no JSON ({e}): {}", run.stdout))
}

#[test]
fn every_command_accepts_json_except_the_listed_scripts() {
    // The clap command tree, walked by the binary itself (hidden commands included).
    let leaves = json(&["reference", "--json"]);
    let leaves = leaves.as_array().expect("an array of commands");
    assert!(leaves.len() > 50, "the tree has {} leaves only", leaves.len());
    let mut missing = Vec::new();
    for leaf in leaves {
        let command = leaf["command"].as_str().expect("a command name");
        let has_json = leaf["options"]
            .as_array()
            .expect("options")
            .iter()
            .any(|o| o["name"] == "--json" && o["hidden"] == false);
        let exempt = WITHOUT_JSON.iter().any(|(name, _)| *name == command);
        assert!(!(has_json && exempt), "`xiebao {command}` has --json: take it off WITHOUT_JSON");
        if !has_json && !exempt {
            missing.push(command.to_owned());
        }
        if has_json {
            // The real parser agrees: `--json` before `--help` is accepted, not refused as an
            // unknown argument.
            let mut args: Vec<&str> = command.split(' ').collect();
            args.extend(["--json", "--help"]);
            let run = xiebao(&args);
            assert!(run.ok, "xiebao {args:?}: {}", run.stderr);
            assert!(run.stdout.contains("--json"), "xiebao {args:?}: {}", run.stdout);
        }
    }
    assert!(missing.is_empty(), "commands without --json: {missing:?}");
    for (name, _) in WITHOUT_JSON {
        assert!(
            leaves.iter().any(|l| l["command"] == *name),
            "WITHOUT_JSON names `{name}`, which is no command"
        );
    }
}

#[test]
fn demo_json_is_a_summary_that_conserves_money() {
    let summary = json(&["demo", "--volume", "2", "--json"]);
    assert_eq!(summary["volume"], 2);
    assert_eq!(summary["completed"], 2);
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["money_conserved"], true);
    let parties = summary["parties"].as_array().expect("parties");
    let total: i128 = parties.iter().map(|p| p["change_nrlc"].as_i64().unwrap() as i128).sum();
    assert_eq!(total, 0, "the deal moved money, it did not create any: {parties:?}");
    let requester = parties.iter().find(|p| p["party"] == "requester").expect("the requester");
    // 2 tasks × (1 + 0.5 + 4) RLC.
    assert_eq!(requester["change_nrlc"], -11_000_000_000_i64);
}

#[test]
fn result_digest_seal_and_open_print_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("a.txt"), b"tile 1").unwrap();
    let out = out.to_str().unwrap();
    let plain = xiebao(&["result", "digest", out]);
    assert!(plain.ok, "{}", plain.stderr);
    let digest = json(&["result", "digest", out, "--json"]);
    assert_eq!(digest["digest"], plain.stdout.as_str());
    assert_eq!(digest["rule"], "v1");
    assert_eq!(digest["source"], out);

    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let key = xiebao_types::SecretKey::from_label("beneficiary");
    std::fs::write(path("key"), key.to_bytes().to_string()).unwrap();
    std::fs::write(path("result"), b"frames 1-100").unwrap();
    let public = key.public_key().to_string();
    let sealed = json(&[
        "result",
        "seal",
        "--for",
        &public,
        "--in",
        &path("result"),
        "--out",
        &path("sealed"),
        "--json",
    ]);
    assert_eq!(sealed["output"], path("sealed"));
    assert_eq!(sealed["bytes"], std::fs::metadata(path("sealed")).unwrap().len());
    let opened = json(&[
        "result",
        "open",
        "--key-file",
        &path("key"),
        "--in",
        &path("sealed"),
        "--out",
        &path("opened"),
        "--json",
    ]);
    assert_eq!(opened["bytes"], 12);
    assert_eq!(std::fs::read(path("opened")).unwrap(), b"frames 1-100");
}

#[test]
fn order_init_json_is_one_line_of_the_order() {
    let requester = "0x0101010101010101010101010101010101010101";
    let run = xiebao(&[
        "order",
        "init",
        "--kind",
        "request",
        "--requester",
        requester,
        "--volume",
        "3",
        "--json",
    ]);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    let order: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(order["requester"], requester);
    assert_eq!(order["beneficiary"], requester);
    assert_eq!(order["volume"], "3");
}

#[test]
fn genesis_json_names_every_file_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let summary = json(&["genesis", "--validators", "2", "--out", out.to_str().unwrap(), "--json"]);
    assert_eq!(summary["chain_id"], 65_535);
    let validators = summary["validators"].as_array().expect("validators");
    assert_eq!(validators.len(), 2);
    for file in [
        &summary["genesis"],
        &summary["faucet"]["key_file"],
        &summary["authority"]["key_file"],
        &validators[0]["config"],
        &validators[1]["config"],
    ] {
        let file = file.as_str().expect("a path");
        assert!(std::path::Path::new(file).exists(), "{file} was not written");
    }
}

#[test]
fn results_serve_json_says_where_it_listens_once_up() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_xiebao"))
        .args(["results", "serve", "--open", "--listen", "127.0.0.1:0", "--json", "--dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the gateway");
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let up: serde_json::Value = serde_json::from_str(&line).expect(&line);
    let listen = up["listen"].as_str().expect("an address");
    assert_eq!(up["url"], format!("http://{listen}"));
    assert_eq!(up["dir"], dir.path().to_str().unwrap());
}
