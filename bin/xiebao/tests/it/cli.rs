//! `xiebao demo` and `xiebao bench` as a user runs them.

use crate::xiebao;

#[test]
fn demo_pays_everyone_and_slashes_the_byzantine_worker() {
    let run = xiebao(&["demo"]);
    let (ok, stdout, stderr) = (run.ok, run.stdout, run.stderr);
    assert!(ok, "demo failed: {stderr}");
    assert!(stdout.contains("8 tasks completed, 0 without consensus"), "{stdout}");
    // 8 tasks × (1 + 0.5 + 4) RLC paid by the requester; the app owner earns 8 × 1 RLC.
    let line = |party: &str| {
        stdout.lines().find(|l| l.starts_with(party)).unwrap_or_else(|| panic!("no {party} line"))
    };
    assert!(line("requester").trim_end().ends_with("-44"), "{stdout}");
    assert!(line("app owner").trim_end().ends_with("+8"), "{stdout}");
    assert!(line("dataset owner").trim_end().ends_with("+4"), "{stdout}");
    // The byzantine worker lost one 1.2 RLC stake per task it contributed to.
    assert!(line("worker 3 (byzantine)").trim_end().ends_with("-4.8"), "{stdout}");
    assert!(stdout.contains("money conserved: Σ balances = 800 RLC = supply"), "{stdout}");
}

#[test]
fn demo_rejects_a_zero_volume_with_the_rule() {
    let run = xiebao(&["demo", "--volume", "0"]);
    let (ok, stderr) = (run.ok, run.stderr);
    assert!(!ok);
    assert!(stderr.contains("--volume must be between 1 and 10000, got 0"), "{stderr}");
}

#[test]
fn an_unreachable_node_is_named_with_what_to_do() {
    // A loopback port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let rpc = format!("http://127.0.0.1:{port}");
    for args in [
        &["account", "show", "0x0101010101010101010101010101010101010101", "--rpc", &rpc][..],
        &["chain", "status", "--rpc", &rpc][..],
        &["order", "list", "--rpc", &rpc][..],
        &["order", "show", &format!("0x{}", "01".repeat(32)), "--rpc", &rpc][..],
        &[
            "result",
            "download",
            &format!("0x{}", "01".repeat(32)),
            "--out",
            "/nonexistent/x",
            "--rpc",
            &rpc,
        ][..],
    ] {
        let run = xiebao(args);
        assert!(!run.ok);
        assert!(run.stderr.contains("Connection refused"), "{}", run.stderr);
        assert!(run.stderr.contains(&rpc), "the URL is named: {}", run.stderr);
        assert!(run.stderr.contains("hint: nothing answers at that address"), "{}", run.stderr);
        assert!(run.stderr.contains("xiebao devnet --keep"), "{}", run.stderr);
    }
}

#[test]
fn a_scheduler_refuses_an_empty_order_volume() {
    let run = xiebao(&[
        "scheduler",
        "--key-file",
        "/nonexistent/owner.key",
        "--workerpool",
        "0x0101010101010101010101010101010101010101",
        "--data-dir",
        "/nonexistent/sched",
        "--volume",
        "0",
    ]);
    assert!(!run.ok);
    assert!(run.stderr.contains("--volume 0: the workerpool order must cover at least one task"));
}

#[test]
fn a_transaction_or_a_block_with_no_room_for_a_call_is_refused() {
    let pool = "0x0101010101010101010101010101010101010101";
    let scheduler = [
        "scheduler",
        "--key-file",
        "/nonexistent/owner.key",
        "--workerpool",
        pool,
        "--data-dir",
        "/nonexistent/sched",
    ];
    let worker = [
        "worker",
        "--scheduler",
        "ws://127.0.0.1:9",
        "--results",
        "http://127.0.0.1:9",
        "--key-file",
        "/nonexistent/worker.key",
        "--work-dir",
        "/nonexistent/work",
    ];
    for command in [&scheduler[..], &worker[..], &["devnet", "--data-dir", "/nonexistent/net"]] {
        let run = xiebao(&[command, &["--max-calls-per-tx", "0"]].concat());
        assert!(!run.ok, "{command:?}");
        assert!(
            run.stderr.contains(
                "invalid value '0' for '--max-calls-per-tx <N>': a transaction carries at least one call"
            ),
            "{command:?}: {}",
            run.stderr
        );
    }
    let run = xiebao(&["devnet", "--data-dir", "/nonexistent/net", "--block-txs-max", "0"]);
    assert!(!run.ok);
    assert!(run.stderr.contains("a block must be able to hold at least one transaction"));
}

#[test]
fn bench_all_quick_smoke_prints_every_figure() {
    let run = xiebao(&["bench", "all", "--quick", "--json"]);
    let (ok, stdout, stderr) = (run.ok, run.stdout, run.stderr);
    assert!(ok, "bench failed: {stderr}");
    let figures: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    for name in [
        "protocol.tasks_per_s",
        "protocol.tasks_per_s_one_call_per_tx",
        "protocol.trust3_tasks_per_s",
        "protocol.order_hashes_per_s",
        "protocol.signature_recoveries_per_s",
        "node.propose_txs_per_s",
        "node.execute_txs_per_s",
        "chain.tasks_per_s",
        "chain.finality_ms_p50",
        "chain.finality_ms_p99",
        "chain.calls_per_s",
        "chain.txs_per_s",
        "chain.single_call_txs_per_s",
        "chain.iexec_profile_tasks_per_s",
        "chain.validator_rss_mib",
        "chain.validator_peak_rss_mib",
        "chain.flood.finality_ms_p50",
        "chain.flood.finality_ms_p50_quiet",
        "chain.flood.validator_rss_mib",
        "chain.one_process.tasks_per_s",
        "chain.one_process.finality_ms_p50",
        "chain.one_process.calls_per_s",
        "pipeline.bag_ms",
        "pipeline.results_store_rss_growth_mib",
        "pipeline.bag_tasks_per_s",
        "pipeline.bag_tasks_per_s_one_call_per_tx",
        "pipeline.iexec_profile_bag_tasks_per_s",
        "pipeline.latency_ms_p50",
        "pipeline.latency_ms_p99",
        "pipeline.large_bag_ms",
        "pipeline.overhead_ms_per_task",
        "pipeline.scheduler_cpu_us_per_task",
        "pipeline.worker_cpu_us_per_task",
        "runtime.wasm_cold_start_ms",
        "growth.store_mib@4000",
        "growth.restart_ms@4000",
        "growth.restart_rss_mib@4000",
        "growth.block_root_ms@4000",
        "growth.full_digest_ms@4000",
        "growth.build_tasks_per_s",
    ] {
        let figure =
            figures.iter().find(|f| f["name"] == name).unwrap_or_else(|| panic!("{name} missing"));
        assert!(figure["value"].as_f64().unwrap() > 0.0, "{name}: {figure}");
        assert!(figure["unit"].is_string());
    }
}

/// The README's command reference is the CLI's own (`xiebao reference`), so it cannot rot.
#[test]
fn readme_command_reference_is_generated_from_the_cli() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let start = readme.find("<!-- reference:start -->\n").expect("start marker") + 25;
    let end = readme.find("<!-- reference:end -->").expect("end marker");
    let generated = crate::xiebao(&["reference"]);
    assert!(generated.ok, "{}", generated.stderr);
    // `Run::stdout` is trimmed; the README block ends with a newline.
    assert_eq!(
        readme[start..end].trim_end(),
        generated.stdout,
        "README.md's command reference is stale: regenerate it with `./scripts/reference.sh`"
    );
    for command in
        ["`xiebao run`", "`xiebao bridge deposit`", "`xiebao order publish`", "`xiebao app deploy`"]
    {
        assert!(generated.stdout.contains(command), "{command} missing");
    }
}

/// Completion scripts come from the same command tree.
#[test]
fn shell_completions_know_every_command() {
    let bash = crate::xiebao(&["completions", "bash"]);
    assert!(bash.ok, "{}", bash.stderr);
    assert!(bash.stdout.contains("_xiebao()"), "not a bash completion script");
    for word in ["run", "bridge", "devnet", "deposit", "--input-file"] {
        assert!(bash.stdout.contains(word), "{word} missing from the bash completions");
    }
    let bad = crate::xiebao(&["completions", "tcsh"]);
    assert!(!bad.ok && bad.stderr.contains("invalid value 'tcsh'"), "{}", bad.stderr);
}
