//! The OCI runtime with a real podman: a busybox image built locally (`FROM scratch`), run
//! with no network, read-only inputs and each limit. Skipped with a notice when podman is not
//! installed, unless `XIEBAO_REQUIRE_PODMAN=1` (set by CI), which makes its absence a failure.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use xiebao_runtime::oci::{AppLocation, ImageReference, OciLimits, OciRuntime};
use xiebao_runtime::{AppCode, Job, RunError, Sandbox as _};

struct Podman {
    runtime: OciRuntime,
    image: String,
    _state: tempfile::TempDir,
}

/// The runtime and a busybox image, built once per test binary; `None` to skip.
fn podman() -> Option<&'static Podman> {
    static PODMAN: OnceLock<Option<Podman>> = OnceLock::new();
    PODMAN
        .get_or_init(|| {
            let state = tempfile::tempdir().unwrap();
            let runtime = match OciRuntime::new(state.path()) {
                Ok(runtime) => runtime,
                Err(e) => {
                    assert!(
                        std::env::var("XIEBAO_REQUIRE_PODMAN").is_err(),
                        "podman is required here: {e}"
                    );
                    eprintln!("skipping the OCI tests: {e}");
                    return None;
                }
            };
            let context = state.path().join("context");
            std::fs::create_dir_all(&context).unwrap();
            std::fs::copy("/bin/busybox", context.join("busybox")).expect("busybox-static");
            std::fs::write(
                context.join("Containerfile"),
                "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nENTRYPOINT [\"/bin/sh\", \"-c\"]\n",
            )
            .unwrap();
            let archive = state.path().join("image.tar");
            runtime.build_archive(&context, "localhost/xiebao-test-busybox:1", &archive).unwrap();
            let checksum = [7u8; 32];
            let image = runtime.load(&archive, checksum).unwrap();
            assert_eq!(runtime.load(&archive, checksum).unwrap(), image, "cached by checksum");
            Some(Podman { runtime, image, _state: state })
        })
        .as_ref()
}

struct Io {
    root: tempfile::TempDir,
}

impl Io {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("in")).unwrap();
        std::fs::create_dir_all(root.path().join("out")).unwrap();
        std::fs::write(root.path().join("in/words.txt"), "one two three\n").unwrap();
        Self { root }
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    fn job(&self, script: &str) -> Job {
        Job {
            args: vec![script.to_owned()],
            env: vec![("IEXEC_TASK_ID".into(), "0x07".into())],
            input_dir: Some(self.dir("in")),
            output_dir: self.dir("out"),
            clock_s: 0,
            seed: [0; 32],
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn containers_read_inputs_write_outputs_and_see_no_network() {
    let Some(podman) = podman() else { return };
    let io = Io::new();
    let script = "wc -w < /in/words.txt > /out/count; echo $IEXEC_TASK_ID; ls /sys/class/net > /out/net; touch /in/x 2>/out/ro || true";
    let outcome =
        podman.runtime.run(&podman.image, &io.job(script), &OciLimits::default()).unwrap();
    assert_eq!(outcome.exit_code, 0, "{}", String::from_utf8_lossy(&outcome.stderr));
    assert_eq!(read(&io.dir("out/count")).trim(), "3");
    assert_eq!(String::from_utf8_lossy(&outcome.stdout).trim(), "0x07");
    assert_eq!(read(&io.dir("out/net")).split_whitespace().collect::<Vec<_>>(), ["lo"]);
    assert!(read(&io.dir("out/ro")).contains("Read-only"), "inputs are read-only");
    assert!(!io.dir("in/x").exists());
}

#[test]
fn container_limits_are_enforced_and_named() {
    let Some(podman) = podman() else { return };
    let io = Io::new();
    let tight = OciLimits {
        memory_bytes: 64 << 20,
        wall_time: Duration::from_secs(2),
        ..OciLimits::default()
    };
    let oom = podman.runtime.run(
        &podman.image,
        &io.job("dd if=/dev/zero of=/dev/null bs=200M count=1"),
        &tight,
    );
    assert_eq!(oom, Err(RunError::OutOfMemory { limit: 64 << 20 }));
    let slow = podman.runtime.run(&podman.image, &io.job("sleep 30"), &tight);
    assert_eq!(slow, Err(RunError::WallTime { limit: Duration::from_secs(2) }));
    let small = OciLimits { output_bytes: 1_000, ..OciLimits::default() };
    let big =
        podman.runtime.run(&podman.image, &io.job("head -c 5000 /dev/zero > /out/big"), &small);
    // The file size limit (output + 1 byte) stops the write itself.
    assert_eq!(big, Err(RunError::OutputTooLarge { size: 1001, limit: 1000 }));
    let failed = podman
        .runtime
        .run(&podman.image, &io.job("echo bad >&2; exit 3"), &OciLimits::default())
        .unwrap();
    assert_eq!(failed.exit_code, 3);
    assert_eq!(String::from_utf8_lossy(&failed.stderr).trim(), "bad");
}

/// A runtime with no image and this pull limit, or `None` to skip (as [`podman`]).
fn bare_runtime(pull_timeout: Duration) -> Option<(OciRuntime, tempfile::TempDir)> {
    let state = tempfile::tempdir().unwrap();
    match OciRuntime::new(state.path()) {
        Ok(runtime) => Some((runtime.with_pull_timeout(pull_timeout), state)),
        Err(e) => {
            assert!(
                std::env::var("XIEBAO_REQUIRE_PODMAN").is_err(),
                "podman is required here: {e}"
            );
            eprintln!("skipping the OCI pull tests: {e}");
            None
        }
    }
}

fn reference(text: &str) -> ImageReference {
    match AppLocation::parse(text).unwrap() {
        AppLocation::Image(reference) => reference,
        AppLocation::Url(url) => panic!("{url} is an image reference"),
    }
}

#[test]
fn a_pull_from_an_unreachable_registry_fails_fast_naming_the_reference() {
    let Some((runtime, _state)) = bare_runtime(Duration::from_secs(120)) else { return };
    let image = reference("127.0.0.1:1/none:latest");
    let start = Instant::now();
    // Through the interface the worker uses while setting up.
    let error = runtime.prepare(&AppCode::Image(image.clone()), [1; 32]).unwrap_err();
    let took = start.elapsed();
    match &error {
        RunError::Pull { reference, detail } => {
            assert_eq!(reference, "127.0.0.1:1/none:latest");
            assert!(detail.contains("connection refused"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert!(error.to_string().starts_with("pulling image 127.0.0.1:1/none:latest failed: "));
    assert!(took < Duration::from_secs(30), "a refused connection fails fast, not after {took:?}");
    // Nothing was cached: running it fails the same way.
    let io = Io::new();
    let run =
        runtime.run_app(&AppCode::Image(image), [1; 32], &io.job("true"), Duration::from_secs(5));
    assert!(matches!(run, Err(RunError::Pull { .. })), "{run:?}");
}

#[test]
fn a_pull_that_hangs_is_stopped_at_its_time_limit() {
    let Some((runtime, _state)) = bare_runtime(Duration::from_secs(2)) else { return };
    // A "registry" that takes connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let text = format!("127.0.0.1:{port}/silent:1");
    let start = Instant::now();
    let error = runtime.pull(&reference(&text), [1; 32]).unwrap_err();
    assert_eq!(error, RunError::PullTimeout { reference: text, limit: Duration::from_secs(2) });
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "stopped at the limit: {:?}",
        start.elapsed()
    );
}

#[test]
fn a_reference_pinning_another_digest_than_the_checksum_is_refused_before_pulling() {
    let Some((runtime, _state)) = bare_runtime(Duration::from_secs(2)) else { return };
    let pinned = format!("docker.io/library/busybox:1.36@sha256:{}", "ab".repeat(32));
    let error = runtime.pull(&reference(&pinned), [0xcd; 32]).unwrap_err();
    assert_eq!(
        error,
        RunError::DigestMismatch {
            reference: pinned,
            expected: format!("sha256:{}", "cd".repeat(32)),
            found: format!("sha256:{}", "ab".repeat(32)),
        }
    );
    assert!(error.to_string().starts_with("checksum mismatch: image docker.io/library/busybox"));
}

#[test]
fn a_container_filling_its_output_is_killed_while_it_runs() {
    let Some(podman) = podman() else { return };
    let io = Io::new();
    let limits = OciLimits {
        output_bytes: 1 << 20,
        wall_time: Duration::from_secs(30),
        ..OciLimits::default()
    };
    // 2,000 files of 64 KiB (each under the file size limit), then a long sleep: it must be
    // stopped for its output, not its time.
    let script = "i=0; while [ $i -lt 2000 ]; do head -c 65536 /dev/zero > /out/f$i; i=$((i+1)); done; sleep 60";
    match podman.runtime.run(&podman.image, &io.job(script), &limits) {
        Err(RunError::OutputTooLarge { size, limit }) => {
            assert_eq!(limit, 1 << 20);
            assert!(size > 1 << 20, "{size}");
        }
        other => panic!("expected the output limit, got {other:?}"),
    }
    let files = std::fs::read_dir(io.dir("out")).unwrap().count();
    assert!(files < 2_000, "killed before writing all it meant to: {files} files");
}

#[test]
fn a_chatty_container_has_its_log_truncated_and_does_not_fail() {
    let Some(podman) = podman() else { return };
    let io = Io::new();
    let script = "head -c 100000 /dev/zero | tr '\\0' x; echo done >&2";
    let outcome =
        podman.runtime.run(&podman.image, &io.job(script), &OciLimits::default()).unwrap();
    assert_eq!(outcome.exit_code, 0, "{}", String::from_utf8_lossy(&outcome.stderr));
    let kept = 64 << 10;
    assert_eq!(outcome.stdout[..kept], vec![b'x'; kept]);
    assert_eq!(
        &outcome.stdout[kept..],
        format!("\n[truncated, {} bytes]\n", 100_000 - kept).as_bytes()
    );
    assert_eq!(outcome.stderr, b"done\n");
}
