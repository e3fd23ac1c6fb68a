//! `xiebao doctor`: every check is listed with a status, a missing piece yields the command that
//! fixes it, and only required pieces decide the exit status.

use crate::{xiebao, xiebao_env};

/// Every check doctor makes, by name.
const CHECKS: &[&str] = &[
    "rust toolchain",
    "wasm target",
    "podman",
    "runc",
    "busybox",
    "python venv",
    "node",
    "npm",
    "contract tools",
    "disk",
    "loopback port",
    "chain node",
];

/// A loopback URL nothing listens on (bound, then released).
fn dead_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("http://127.0.0.1:{port}")
}

/// The check named `name` in doctor's JSON.
fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name:?}: {report}"))
}

#[test]
fn doctor_lists_every_check_and_fails_only_on_missing_pieces() {
    let run = xiebao(&["doctor", "--json", "--rpc", "http://127.0.0.1:1"]);
    let report: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}\n{}", run.stdout, run.stderr));
    let checks = report["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), CHECKS.len(), "{report}");
    for name in CHECKS {
        let check = check(&report, name);
        let status = check["status"].as_str().expect("a status");
        assert!(["ok", "missing", "warning"].contains(&status), "{check}");
        assert!(!check["found"].as_str().expect("found").is_empty(), "{check}");
        // A piece that is not here comes with the command that fixes it.
        assert_eq!(check["fix"].is_string(), status != "ok", "{check}");
    }
    let rpc = check(&report, "chain node");
    assert_eq!(rpc["status"], "warning", "an unreachable node is no missing piece: {rpc}");
    assert!(rpc["fix"].as_str().unwrap().contains("xiebao devnet"), "{rpc}");
    let missing = checks.iter().filter(|c| c["status"] == "missing").count();
    assert_eq!(report["missing"], missing, "{report}");
    // Warnings (the node above) never fail the run: only missing pieces do.
    assert_eq!(run.ok, missing == 0, "{report}\n{}", run.stderr);
    if !run.ok {
        for check in checks.iter().filter(|c| c["status"] == "missing") {
            let name = check["name"].as_str().unwrap();
            assert!(run.stderr.contains(name), "the error names {name}: {}", run.stderr);
        }
    }
}

#[test]
fn doctor_without_programs_on_path_prints_each_fix_and_fails() {
    let empty = tempfile::tempdir().unwrap();
    let rpc = dead_url();
    let run = xiebao_env(&["doctor", "--rpc", &rpc], &[("PATH", empty.path())]);
    assert!(!run.ok, "nothing on PATH, yet doctor succeeded: {}", run.stdout);
    for (line_start, fix) in [
        ("missing  rust toolchain", "curl https://sh.rustup.rs -sSf | sh"),
        ("missing  wasm target", "rustup target add wasm32-wasip1"),
        ("missing  podman", "sudo apt-get install -y podman runc busybox-static uidmap"),
        ("missing  runc", "sudo apt-get install -y podman runc busybox-static uidmap"),
        ("missing  python venv", "sudo apt-get install -y python3 python3-venv"),
        ("missing  node", "sudo apt-get install -y nodejs npm"),
        ("warning  chain node", "xiebao devnet --keep"),
    ] {
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with(line_start))
            .unwrap_or_else(|| panic!("no line `{line_start}…`: {}", run.stdout));
        assert!(line.ends_with(&format!("fix: {fix}")), "{line}");
    }
    assert!(run.stdout.lines().last().unwrap().contains("missing: run the fixes above"));
    for name in ["rust toolchain", "wasm target", "podman", "python venv", "npm"] {
        assert!(run.stderr.contains(name), "the error names {name}: {}", run.stderr);
    }
}
