//! The WebAssembly sandbox with a real guest (built for wasm32-wasip1 by this test).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

mod oci;

use xiebao_runtime::{Job, Limits, RunError, WasmRuntime};

/// The guest module's bytes, built once per test binary.
fn guest() -> &'static [u8] {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guest/Cargo.toml");
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
            .join("test-guest");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--release", "--target", "wasm32-wasip1", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target_dir)
            .env_remove("RUSTFLAGS")
            .status()
            .expect("run cargo");
        assert!(
            status.success(),
            "building the test guest failed (is the wasm32-wasip1 target installed?)"
        );
        std::fs::read(target_dir.join("wasm32-wasip1/release/xiebao-test-guest.wasm"))
            .expect("guest built")
    })
}

struct Sandbox {
    _root: tempfile::TempDir,
    input: PathBuf,
    output: PathBuf,
}

fn sandbox() -> Sandbox {
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("in");
    let output = root.path().join("out");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::create_dir_all(&output).unwrap();
    Sandbox { _root: root, input, output }
}

fn job(s: &Sandbox, args: &[&str]) -> Job {
    Job {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        env: vec![("IEXEC_TASK_ID".into(), "0xabc".into())],
        input_dir: Some(s.input.clone()),
        output_dir: s.output.clone(),
        clock_s: 1_700_000_000,
        seed: [7; 32],
    }
}

fn runtime() -> WasmRuntime {
    WasmRuntime::new().unwrap()
}

#[test]
fn app_reads_inputs_writes_outputs_and_logs() {
    let rt = runtime();
    let s = sandbox();
    std::fs::write(s.input.join("input.txt"), "frame ").unwrap();
    let outcome = rt.run(guest(), &job(&s, &["copy", "42", "!"]), &Limits::default()).unwrap();
    assert_eq!(outcome.exit_code, 0);
    assert_eq!(std::fs::read_to_string(s.output.join("result.txt")).unwrap(), "FRAME 42!");
    assert_eq!(std::fs::read_to_string(s.output.join("sub/n.txt")).unwrap(), "4");
    assert_eq!(outcome.stdout, b"copied\n");
    assert!(outcome.fuel_used > 0);
    assert_eq!(rt.cached_modules(), 1);
}

#[test]
fn runs_are_deterministic_fuel_included() {
    let rt = runtime();
    let (a, b) = (sandbox(), sandbox());
    let first = rt.run(guest(), &job(&a, &["env"]), &Limits::default()).unwrap();
    let second = rt.run(guest(), &job(&b, &["env"]), &Limits::default()).unwrap();
    let text = std::fs::read_to_string(a.output.join("env.txt")).unwrap();
    assert_eq!(text, std::fs::read_to_string(b.output.join("env.txt")).unwrap());
    assert!(text.starts_with("now=1700000000 "), "{text}");
    assert!(text.contains("var=Some(\"0xabc\")"), "{text}");
    assert_eq!(first.fuel_used, second.fuel_used);
    // One compilation served both runs.
    assert_eq!(rt.cached_modules(), 1);
}

#[test]
fn the_sandbox_keeps_the_app_inside_in_and_out() {
    let rt = runtime();
    let s = sandbox();
    rt.run(guest(), &job(&s, &["escape"]), &Limits::default()).unwrap();
    assert_eq!(std::fs::read_to_string(s.output.join("escape.txt")).unwrap(), "denied denied");
    assert!(!s.input.join("x").exists());
}

#[test]
fn limits_stop_runaway_apps_with_the_limit_named() {
    let rt = runtime();
    let s = sandbox();
    let fuel = Limits { fuel: 50_000_000, ..Limits::default() };
    assert_eq!(
        rt.run(guest(), &job(&s, &["loop"]), &fuel),
        Err(RunError::OutOfFuel { limit: 50_000_000 })
    );
    let time =
        Limits { fuel: u64::MAX, wall_time: Duration::from_millis(200), ..Limits::default() };
    assert_eq!(
        rt.run(guest(), &job(&s, &["loop"]), &time),
        Err(RunError::WallTime { limit: Duration::from_millis(200) })
    );
    let memory = Limits { memory_bytes: 64 << 20, ..Limits::default() };
    assert_eq!(
        rt.run(guest(), &job(&s, &["alloc"]), &memory),
        Err(RunError::OutOfMemory { limit: 64 << 20 })
    );
    let output = Limits { output_bytes: 1 << 20, ..Limits::default() };
    assert_eq!(
        rt.run(guest(), &job(&s, &["big"]), &output),
        Err(RunError::OutputTooLarge { size: 3 << 20, limit: 1 << 20 })
    );
}

#[test]
fn exit_codes_and_crashes_are_reported() {
    let rt = runtime();
    let s = sandbox();
    let outcome = rt.run(guest(), &job(&s, &["exit", "5"]), &Limits::default()).unwrap();
    assert_eq!(outcome.exit_code, 5);
    assert_eq!(outcome.stderr, b"failing on purpose\n");
    match rt.run(guest(), &job(&s, &["panic"]), &Limits::default()) {
        Err(RunError::Crashed(_)) => {}
        other => panic!("expected a crash, got {other:?}"),
    }
    assert!(matches!(
        rt.run(b"not wasm", &job(&s, &["copy"]), &Limits::default()),
        Err(RunError::Invalid(_))
    ));
}

#[test]
fn an_app_filling_its_output_is_stopped_while_it_runs() {
    let rt = runtime();
    let s = sandbox();
    let limits = Limits {
        fuel: u64::MAX,
        wall_time: Duration::from_secs(20),
        output_bytes: 1 << 20,
        ..Limits::default()
    };
    // The guest writes 128 MiB and then spins: it must be stopped for its output, not its time.
    match rt.run(guest(), &job(&s, &["fill"]), &limits) {
        Err(RunError::OutputTooLarge { size, limit }) => {
            assert_eq!(limit, 1 << 20);
            assert!(size > 1 << 20, "{size}");
        }
        other => panic!("expected the output limit, got {other:?}"),
    }
    let written = std::fs::metadata(s.output.join("fill.bin")).unwrap().len();
    assert!(written < 128 << 20, "stopped before writing all it meant to: {written} bytes");
}

#[test]
fn an_app_creating_too_many_files_is_stopped_while_it_runs() {
    let rt = runtime();
    let s = sandbox();
    let limits = Limits {
        fuel: u64::MAX,
        wall_time: Duration::from_secs(20),
        output_entries: 100,
        ..Limits::default()
    };
    assert_eq!(
        rt.run(guest(), &job(&s, &["files"]), &limits),
        Err(RunError::OutputTooManyEntries { entries: 101, limit: 100 })
    );
    assert!(std::fs::read_dir(&s.output).unwrap().count() < 5_000);
}

#[test]
fn a_chatty_app_has_its_log_truncated_and_does_not_fail() {
    let rt = runtime();
    let s = sandbox();
    let outcome = rt.run(guest(), &job(&s, &["chatty"]), &Limits::default()).unwrap();
    assert_eq!(outcome.exit_code, 0);
    let kept = 64 << 10;
    let written = format!("{}\n", "x".repeat(99)).repeat(2_000);
    assert_eq!(outcome.stdout[..kept], written.as_bytes()[..kept]);
    let marker = format!("\n[truncated, {} bytes]\n", 200_000 - kept);
    assert_eq!(&outcome.stdout[kept..], marker.as_bytes());
    assert_eq!(outcome.stderr, b"done\n");
    assert_eq!(std::fs::read_to_string(s.output.join("ok.txt")).unwrap(), "ok");
}
