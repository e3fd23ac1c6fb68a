//! Run OCI container apps with podman: no network, CPU, memory and process limits, the input
//! directory read-only at `/in`, the output directory at `/out`, a read-only root filesystem
//! with a private `/tmp`, a wall-clock deadline.
//!
//! Images come as archives (`podman save` output) whose sha256 is the app's registry checksum:
//! [`OciRuntime::load`] checks nothing itself — the worker verified the bytes — and caches the
//! loaded image by that checksum. Unlike WebAssembly, a container sees the host's clock and
//! randomness: only apps that are deterministic by themselves reach consensus at trust > 1.
//!
//! podman runs with the `runc` runtime and explicit ulimits (see `containers.conf` written by
//! [`OciRuntime::new`]); resource limits need root on cgroup v1 hosts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{Job, Outcome, RunError, Sandbox, dir_size};

/// The engine settings every podman call uses: runc (crun fails on hybrid cgroups) and ulimits
/// at or below the host's hard limits (raising them needs a capability the host may lack).
const CONTAINERS_CONF: &str = r#"[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"#;

/// Resource limits of one container run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OciLimits {
    /// Memory (and memory + swap), bytes.
    pub memory_bytes: u64,
    /// CPU, thousandths of a core.
    pub millicpus: u32,
    /// Most processes.
    pub pids: u32,
    /// Wall-clock time before the container is killed.
    pub wall_time: Duration,
    /// Largest total size of the output directory, bytes.
    pub output_bytes: u64,
    /// Most bytes of stdout and of stderr kept.
    pub log_bytes: usize,
}

impl Default for OciLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 512 << 20,
            millicpus: 1_000,
            pids: 128,
            wall_time: Duration::from_secs(300),
            output_bytes: 64 << 20,
            log_bytes: 64 << 10,
        }
    }
}

/// Runs OCI images with podman; one per worker.
#[derive(Debug)]
pub struct OciRuntime {
    podman: PathBuf,
    config: PathBuf,
    images: Mutex<BTreeMap<[u8; 32], String>>,
}

fn host(path: &Path, detail: impl std::fmt::Display) -> RunError {
    RunError::Host { path: path.to_owned(), detail: detail.to_string() }
}

/// The first `podman` on `PATH`.
fn find_podman() -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join("podman"))
        .find(|candidate| candidate.is_file())
}

impl OciRuntime {
    /// Finds podman, writes its settings under `state_dir` and checks that it answers.
    ///
    /// # Errors
    /// [`RunError::Unavailable`] when podman is missing or does not work on this host.
    pub fn new(state_dir: &Path) -> Result<Self, RunError> {
        let podman = find_podman().ok_or_else(|| {
            RunError::Unavailable("podman is not installed (apt-get install podman runc)".into())
        })?;
        std::fs::create_dir_all(state_dir).map_err(|e| host(state_dir, e))?;
        let config = state_dir.join("containers.conf");
        std::fs::write(&config, CONTAINERS_CONF).map_err(|e| host(&config, e))?;
        let runtime = Self { podman, config, images: Mutex::new(BTreeMap::new()) };
        let version = runtime.podman(&["version", "--format", "{{.Client.Version}}"])?;
        if version.trim().is_empty() {
            return Err(RunError::Unavailable("podman answers no version".into()));
        }
        Ok(runtime)
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.podman);
        command.env("CONTAINERS_CONF", &self.config).stdin(Stdio::null());
        command
    }

    /// Runs a podman command to completion; its stdout, or its stderr as the error.
    fn podman(&self, args: &[&str]) -> Result<String, RunError> {
        let output = self
            .command()
            .args(args)
            .output()
            .map_err(|e| RunError::Unavailable(format!("running podman: {e}")))?;
        if !output.status.success() {
            return Err(RunError::Unavailable(format!(
                "podman {}: {}",
                args.first().copied().unwrap_or_default(),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Builds the image in `context` (a directory with a Containerfile) as `tag` and saves it
    /// as an archive at `archive` (what an app's registry entry points to).
    ///
    /// # Errors
    /// [`RunError::Unavailable`] when the build or the save fails.
    pub fn build_archive(&self, context: &Path, tag: &str, archive: &Path) -> Result<(), RunError> {
        let context = context.to_str().ok_or_else(|| host(context, "path is not UTF-8"))?;
        let out = archive.to_str().ok_or_else(|| host(archive, "path is not UTF-8"))?;
        self.podman(&["build", "--quiet", "--tag", tag, context])?;
        let _ = std::fs::remove_file(archive);
        self.podman(&["save", "--quiet", "--output", out, tag])?;
        Ok(())
    }

    /// Loads an image archive whose bytes hash to `checksum`; returns the image id (cached).
    ///
    /// # Errors
    /// [`RunError::Invalid`] when podman refuses the archive.
    pub fn load(&self, archive: &Path, checksum: [u8; 32]) -> Result<String, RunError> {
        if let Some(id) = self.images.lock().expect("image cache").get(&checksum) {
            return Ok(id.clone());
        }
        let path = archive.to_str().ok_or_else(|| host(archive, "path is not UTF-8"))?;
        let loaded = self
            .podman(&["load", "--quiet", "--input", path])
            .map_err(|e| RunError::Invalid(format!("the app's image archive: {e}")))?;
        // "Loaded image: NAME" or "Loaded image(s): sha256:ID".
        let reference = loaded
            .lines()
            .rev()
            .find_map(|l| l.split_once(": ").map(|(_, r)| r.trim().to_owned()))
            .ok_or_else(|| RunError::Invalid(format!("podman load said: {}", loaded.trim())))?;
        let id = self
            .podman(&["image", "inspect", "--format", "{{.Id}}", &reference])
            .map_err(|e| RunError::Invalid(e.to_string()))?
            .trim()
            .to_owned();
        self.images.lock().expect("image cache").insert(checksum, id.clone());
        Ok(id)
    }

    /// Runs `image` on `job` within `limits` (the guest clock and seed of `job` do not apply:
    /// containers see the host's).
    ///
    /// # Errors
    /// [`RunError`] naming the limit or the failure. A non-zero exit code is an [`Outcome`].
    pub fn run(&self, image: &str, job: &Job, limits: &OciLimits) -> Result<Outcome, RunError> {
        let name = container_name();
        let mut command = self.command();
        command
            .args(["run", "--name", &name, "--network=none", "--read-only", "--tmpfs", "/tmp"])
            .arg(format!("--memory={}", limits.memory_bytes))
            .arg(format!("--memory-swap={}", limits.memory_bytes))
            .arg(format!("--cpus={}.{:03}", limits.millicpus / 1000, limits.millicpus % 1000))
            .arg(format!("--pids-limit={}", limits.pids))
            .arg("--security-opt=no-new-privileges")
            .arg("--cap-drop=all");
        if let Some(input) = &job.input_dir {
            command.arg("-v").arg(format!("{}:/in:ro", input.display()));
        }
        command.arg("-v").arg(format!("{}:/out", job.output_dir.display()));
        for (key, value) in &job.env {
            command.arg("-e").arg(format!("{key}={value}"));
        }
        command.arg(image).args(&job.args).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child =
            command.spawn().map_err(|e| RunError::Unavailable(format!("podman: {e}")))?;
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let cap = limits.log_bytes;
        let out_reader = std::thread::spawn(move || read_capped(&mut stdout, cap));
        let err_reader = std::thread::spawn(move || read_capped(&mut stderr, cap));
        let start = Instant::now();
        let status = loop {
            if let Some(status) =
                child.try_wait().map_err(|e| RunError::Unavailable(e.to_string()))?
            {
                break Some(status);
            }
            if start.elapsed() > limits.wall_time {
                let _ = self.podman(&["kill", &name]);
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let stdout = out_reader.join().unwrap_or_default();
        let stderr = err_reader.join().unwrap_or_default();
        let oom = self
            .podman(&["inspect", "--format", "{{.State.OOMKilled}}", &name])
            .is_ok_and(|s| s.trim() == "true");
        let _ = self.podman(&["rm", "--force", &name]);
        let Some(status) = status else {
            return Err(RunError::WallTime { limit: limits.wall_time });
        };
        // podman on cgroup v1 often does not flag the OOM kill: a container killed by SIGKILL
        // (exit 137) that this runtime did not kill was killed by the kernel's OOM killer.
        if oom || status.code() == Some(137) {
            return Err(RunError::OutOfMemory {
                limit: usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX),
            });
        }
        let exit_code = status.code().unwrap_or(-1);
        if exit_code == 125 || exit_code == 126 || exit_code == 127 {
            // podman's own failures (bad image, entrypoint not found or not executable).
            return Err(RunError::Crashed(format!(
                "podman exit {exit_code}: {}",
                String::from_utf8_lossy(&stderr).trim()
            )));
        }
        let size = dir_size(&job.output_dir).map_err(|e| host(&job.output_dir, e))?;
        if size > limits.output_bytes {
            return Err(RunError::OutputTooLarge { size, limit: limits.output_bytes });
        }
        Ok(Outcome { exit_code, fuel_used: 0, stdout, stderr })
    }
}

impl Sandbox for OciRuntime {
    fn kind(&self) -> &'static str {
        "OCI"
    }

    fn run_app(
        &self,
        app: &Path,
        checksum: [u8; 32],
        job: &Job,
        wall_time: Duration,
    ) -> Result<Outcome, RunError> {
        let image = self.load(app, checksum)?;
        self.run(&image, job, &OciLimits { wall_time, ..OciLimits::default() })
    }
}

fn read_capped(reader: &mut impl std::io::Read, cap: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buffer = [0u8; 8192];
    while let Ok(n) = reader.read(&mut buffer) {
        if n == 0 {
            break;
        }
        let room = cap.saturating_sub(kept.len());
        kept.extend_from_slice(&buffer[..n.min(room)]);
    }
    kept
}

/// A container name unique on this host: process id, a per-process counter and the time.
fn container_name() -> String {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("xiebao-{}-{run}-{nanos}", std::process::id())
}
