//! Run OCI container apps with podman: no network, CPU, memory and process limits, the input
//! directory read-only at `/iexec_in` and `/in`, the output directory at `/iexec_out` and `/out`, a read-only root filesystem
//! with a private `/tmp`, a wall-clock deadline.
//!
//! An OCI app's registry location is either a URL or an image reference ([`AppLocation`]: a
//! location with a `scheme://` is a URL, anything else must be a fully qualified reference,
//! `registry/repository[:tag][@sha256:…]`).
//!
//! - A URL points to an image archive (`podman save` output) whose sha256 is the app's registry
//!   checksum: the worker downloads and verifies the bytes, [`OciRuntime::load`] loads them.
//! - An image reference is pulled by [`OciRuntime::pull`] (`podman pull`, within a time limit,
//!   as setting up). There the registry checksum is the image's **manifest digest**, the
//!   `sha256:…` that `podman image inspect --format {{.Digest}}` reports (the digest of the
//!   manifest, or of the manifest list it was pulled through, as listed in `.RepoDigests`); a
//!   pulled image whose digests do not include it is refused, and a reference that pins
//!   another digest (`@sha256:…`) is refused before pulling.
//!
//! Loaded and pulled images are cached by checksum. Unlike WebAssembly, a container sees the
//! host's clock and randomness: only apps that are deterministic by themselves reach consensus
//! at trust > 1.
//!
//! podman runs with the `runc` runtime and explicit ulimits (see `containers.conf` written by
//! [`OciRuntime::new`]); resource limits need root on cgroup v1 hosts.
//!
//! The output is bounded while the container runs: every file it writes is capped by
//! `RLIMIT_FSIZE` at [`OciLimits::output_bytes`] + 1 (a write past it fails, so an oversized
//! file is seen, never a full disk), and `/out` is measured every [`OUTPUT_POLL`]; the
//! container is killed once the output is over a limit. podman keeps no log file of its own
//! (`--log-driver=none`); stdout and stderr keep their first bytes and count the rest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{AppCode, Job, Outcome, OutputLimits, RunError, Sandbox, truncated_log};

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
    /// Largest total size of the output directory, bytes (checked while the app runs).
    pub output_bytes: u64,
    /// Most files and directories in the output directory (checked while the app runs).
    pub output_entries: u64,
    /// Most bytes of stdout and of stderr kept; the rest is counted, not kept.
    pub log_bytes: usize,
}

/// How often a running container's output directory is measured.
pub const OUTPUT_POLL: Duration = Duration::from_millis(50);

impl Default for OciLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 512 << 20,
            millicpus: 1_000,
            pids: 128,
            wall_time: Duration::from_secs(300),
            output_bytes: 64 << 20,
            output_entries: crate::OUTPUT_ENTRIES_MAX,
            log_bytes: 64 << 10,
        }
    }
}

/// How long a `podman pull` may take by default before it is stopped.
pub const PULL_TIMEOUT: Duration = Duration::from_secs(300);

/// Where an app's code is: a URL of an image archive (or module), or an image in a registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppLocation {
    /// `scheme://…`: downloaded by the worker, its sha256 checked.
    Url(String),
    /// An image reference: pulled, its manifest digest checked.
    Image(ImageReference),
}

impl AppLocation {
    /// Tells a URL (it has a `scheme://`) from an image reference (anything else, which must
    /// then parse as a fully qualified reference).
    ///
    /// # Errors
    /// [`RunError::BadLocation`] when it is neither.
    pub fn parse(location: &str) -> Result<Self, RunError> {
        let location = location.trim();
        if let Some((scheme, rest)) = location.split_once("://")
            && !scheme.is_empty()
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            && !rest.is_empty()
        {
            return Ok(Self::Url(location.to_owned()));
        }
        ImageReference::parse(location).map(Self::Image)
    }
}

/// A fully qualified OCI image reference: `registry/repository[:tag][@sha256:hex]`, the
/// registry being a host name with a dot or a port, or `localhost` (as docker tells them
/// apart). Short names (`busybox`) are refused: each host's `registries.conf` would resolve
/// them its own way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageReference {
    text: String,
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<[u8; 32]>,
}

impl std::fmt::Display for ImageReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn bad(location: &str, reason: impl Into<String>) -> RunError {
    RunError::BadLocation { location: location.to_owned(), reason: reason.into() }
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or runs of `-` (the distribution grammar).
fn path_component_ok(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut separator = String::new();
    for &b in bytes {
        if alnum(b) {
            if !(separator.is_empty()
                || separator == "."
                || separator == "_"
                || separator == "__"
                || separator.bytes().all(|c| c == b'-'))
            {
                return false;
            }
            separator.clear();
        } else if b"._-".contains(&b) {
            separator.push(char::from(b));
        } else {
            return false;
        }
    }
    true
}

/// A host name (labels of letters, digits and inner hyphens) with an optional port.
fn registry_ok(registry: &str) -> bool {
    let (host, port) = match registry.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    };
    let label = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    host.split('.').all(label)
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

impl ImageReference {
    /// Parses a fully qualified reference.
    ///
    /// # Errors
    /// [`RunError::BadLocation`] naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, RunError> {
        if text.is_empty() {
            return Err(bad(text, "it is empty"));
        }
        if text.len() > 255 + 128 + 72 || text.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad(text, "it is too long or holds spaces or control characters"));
        }
        let (name_tag, digest) = match text.split_once('@') {
            Some((name, digest)) => {
                let hex = digest.strip_prefix("sha256:").ok_or_else(|| {
                    bad(text, format!("digest `{digest}` is not sha256:<64 hex digits>"))
                })?;
                let bytes = parse_hex32(hex).ok_or_else(|| {
                    bad(text, format!("digest `{digest}` is not sha256:<64 hex digits>"))
                })?;
                (name, Some(bytes))
            }
            None => (text, None),
        };
        // A tag follows the last colon after the last slash (a registry port comes before it).
        let last_slash = name_tag.rfind('/').unwrap_or(0);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(at) => {
                let at = last_slash + at;
                (&name_tag[..at], Some(&name_tag[at + 1..]))
            }
            None => (name_tag, None),
        };
        if let Some(tag) = tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && !tag.starts_with(['.', '-'])
                && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !ok {
                return Err(bad(
                    text,
                    format!("tag `{tag}` is not [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"),
                ));
            }
        }
        let Some((registry, repository)) = name.split_once('/') else {
            return Err(bad(
                text,
                "it names no registry (a short name like `busybox` resolves differently on each host: write docker.io/library/busybox)",
            ));
        };
        if !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
            return Err(bad(
                text,
                format!(
                    "`{registry}` is not a registry host (it needs a dot or a port, or is localhost): write e.g. docker.io/{name}"
                ),
            ));
        }
        if !registry_ok(registry) {
            return Err(bad(text, format!("registry `{registry}` is not host[:port]")));
        }
        if let Some(component) = repository.split('/').find(|c| !path_component_ok(c)) {
            return Err(bad(
                text,
                format!(
                    "repository component `{component}` is not lowercase letters and digits joined by `.`, `_`, `__` or `-`"
                ),
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// The reference as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The registry host (and port).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path in the registry.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The pinned manifest digest (`@sha256:…`), if any.
    pub fn digest(&self) -> Option<[u8; 32]> {
        self.digest
    }
}

fn parse_hex32(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// `sha256:` and the lowercase hex of `digest`.
fn sha256_text(digest: &[u8; 32]) -> String {
    let mut out = String::from("sha256:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The `sha256:…` manifest digests in `podman image inspect` output of `.Digest` and
/// `.RepoDigests` (`repo@sha256:…`), separated by spaces.
fn manifest_digests(inspect: &str) -> Vec<String> {
    let mut digests: Vec<String> = inspect
        .split_whitespace()
        .map(|token| token.rsplit_once('@').map_or(token, |(_, d)| d))
        .filter(|d| d.strip_prefix("sha256:").and_then(parse_hex32).is_some())
        .map(str::to_ascii_lowercase)
        .collect();
    digests.sort();
    digests.dedup();
    digests
}

/// Runs OCI images with podman; one per worker.
#[derive(Debug)]
pub struct OciRuntime {
    podman: PathBuf,
    config: PathBuf,
    images: Mutex<BTreeMap<[u8; 32], String>>,
    pull_timeout: Duration,
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
        // Absolute: podman reads CONTAINERS_CONF and the storage paths from other working
        // directories than ours (a relative data directory failed as "no such file").
        let state_dir = &std::path::absolute(state_dir).map_err(|e| host(state_dir, e))?;
        std::fs::create_dir_all(state_dir).map_err(|e| host(state_dir, e))?;
        let config = state_dir.join("containers.conf");
        std::fs::write(&config, CONTAINERS_CONF).map_err(|e| host(&config, e))?;
        let runtime = Self {
            podman,
            config,
            images: Mutex::new(BTreeMap::new()),
            pull_timeout: PULL_TIMEOUT,
        };
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
        if let Some(id) = self.cached(&checksum) {
            return Ok(id);
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
        self.images
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(checksum, id.clone());
        Ok(id)
    }

    /// The same runtime with another limit on `podman pull` ([`PULL_TIMEOUT`] by default).
    #[must_use]
    pub fn with_pull_timeout(mut self, limit: Duration) -> Self {
        self.pull_timeout = limit;
        self
    }

    fn cached(&self, checksum: &[u8; 32]) -> Option<String> {
        self.images.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(checksum).cloned()
    }

    /// Pulls `reference` and checks that `checksum` is one of its manifest digests (see the
    /// module's documentation); returns the image id (cached by checksum). A reference that
    /// pins another digest is refused before pulling.
    ///
    /// # Errors
    /// [`RunError::DigestMismatch`] when the digests differ, [`RunError::PullTimeout`] when
    /// the pull takes longer than the limit, [`RunError::Pull`] when podman fails (registry
    /// unreachable, image unknown, …).
    pub fn pull(&self, reference: &ImageReference, checksum: [u8; 32]) -> Result<String, RunError> {
        if let Some(id) = self.cached(&checksum) {
            return Ok(id);
        }
        let expected = sha256_text(&checksum);
        let mismatch = |found: String| RunError::DigestMismatch {
            reference: reference.to_string(),
            expected: expected.clone(),
            found,
        };
        if let Some(pinned) = reference.digest()
            && pinned != checksum
        {
            return Err(mismatch(sha256_text(&pinned)));
        }
        let pull_failed =
            |detail: String| RunError::Pull { reference: reference.to_string(), detail };
        let mut child = self
            .command()
            .args(["pull", "--quiet", reference.as_str()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| RunError::Unavailable(format!("running podman: {e}")))?;
        let (mut stdout, mut stderr) = match (child.stdout.take(), child.stderr.take()) {
            (Some(out), Some(err)) => (out, err),
            _ => return Err(pull_failed("podman's output is not piped".into())),
        };
        let out_reader = std::thread::spawn(move || read_capped(&mut stdout, 64 << 10));
        let err_reader = std::thread::spawn(move || read_capped(&mut stderr, 64 << 10));
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| pull_failed(e.to_string()))? {
                break Some(status);
            }
            if start.elapsed() > self.pull_timeout {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = out_reader.join().unwrap_or_default();
        let stderr = err_reader.join().unwrap_or_default();
        let Some(status) = status else {
            return Err(RunError::PullTimeout {
                reference: reference.to_string(),
                limit: self.pull_timeout,
            });
        };
        if !status.success() {
            let stderr = String::from_utf8_lossy(&stderr);
            // podman logs its retries as warnings; the last line is the error.
            let detail = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
            return Err(pull_failed(format!(
                "podman pull exit {}: {}",
                status.code().unwrap_or(-1),
                detail.trim()
            )));
        }
        let id =
            String::from_utf8_lossy(&stdout).lines().last().unwrap_or_default().trim().to_owned();
        if id.is_empty() {
            return Err(pull_failed("podman pull printed no image id".into()));
        }
        let inspect = self
            .podman(&[
                "image",
                "inspect",
                "--format",
                "{{.Digest}}{{range .RepoDigests}} {{.}}{{end}}",
                &id,
            ])
            .map_err(|e| pull_failed(e.to_string()))?;
        let digests = manifest_digests(&inspect);
        if !digests.contains(&expected) {
            let found = if digests.is_empty() { "none".to_owned() } else { digests.join(", ") };
            return Err(mismatch(found));
        }
        self.images
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(checksum, id.clone());
        Ok(id)
    }

    /// The image id of `app`: an archive loaded or an image pulled (cached by checksum).
    ///
    /// # Errors
    /// As [`OciRuntime::load`] and [`OciRuntime::pull`].
    pub fn image(&self, app: &AppCode, checksum: [u8; 32]) -> Result<String, RunError> {
        match app {
            AppCode::File(archive) => self.load(archive, checksum),
            AppCode::Image(reference) => self.pull(reference, checksum),
        }
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
            .arg("--cap-drop=all")
            // podman would otherwise copy all of stdout and stderr into a log file on disk.
            .arg("--log-driver=none")
            // Ulimits on the command line replace containers.conf's, so all three are here.
            .args(["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--ulimit"])
            .arg(format!("fsize={0}:{0}", limits.output_bytes.saturating_add(1)));
        if let Some(input) = &job.input_dir {
            for guest in crate::INPUT_PATHS {
                command.arg("-v").arg(format!("{}:{guest}:ro", input.display()));
            }
        }
        for guest in crate::OUTPUT_PATHS {
            command.arg("-v").arg(format!("{}:{guest}", job.output_dir.display()));
        }
        for (key, value) in &job.env {
            command.arg("-e").arg(format!("{key}={value}"));
        }
        command.arg(image).args(&job.args).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child =
            command.spawn().map_err(|e| RunError::Unavailable(format!("podman: {e}")))?;
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let cap = limits.log_bytes;
        let out_reader = std::thread::spawn(move || read_log(&mut stdout, cap));
        let err_reader = std::thread::spawn(move || read_log(&mut stderr, cap));
        let output = OutputLimits { bytes: limits.output_bytes, entries: limits.output_entries };
        let start = Instant::now();
        let mut measured = start;
        let mut over = None;
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
            if measured.elapsed() >= OUTPUT_POLL {
                measured = Instant::now();
                if let Err(e) = output.check(&job.output_dir) {
                    let _ = self.podman(&["kill", &name]);
                    let _ = child.wait();
                    over = Some(e);
                    break None;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let stdout = out_reader.join().unwrap_or_default();
        let stderr = err_reader.join().unwrap_or_default();
        let oom = self
            .podman(&["inspect", "--format", "{{.State.OOMKilled}}", &name])
            .is_ok_and(|s| s.trim() == "true");
        let _ = self.podman(&["rm", "--force", &name]);
        if let Some(over) = over {
            return Err(over);
        }
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
        output.check(&job.output_dir)?;
        Ok(Outcome { exit_code, fuel_used: 0, stdout, stderr })
    }
}

impl Sandbox for OciRuntime {
    fn kind(&self) -> &'static str {
        "OCI"
    }

    fn prepare(&self, app: &AppCode, checksum: [u8; 32]) -> Result<(), RunError> {
        self.image(app, checksum).map(drop)
    }

    fn run_app(
        &self,
        app: &AppCode,
        checksum: [u8; 32],
        job: &Job,
        wall_time: Duration,
    ) -> Result<Outcome, RunError> {
        let image = self.image(app, checksum)?;
        self.run(&image, job, &OciLimits { wall_time, ..OciLimits::default() })
    }
}

fn read_capped(reader: &mut impl std::io::Read, cap: usize) -> Vec<u8> {
    read_counted(reader, cap).0
}

/// Reads to the end: the first `cap` bytes, and how many more there were.
fn read_counted(reader: &mut impl std::io::Read, cap: usize) -> (Vec<u8>, u64) {
    let mut kept = Vec::new();
    let mut dropped = 0u64;
    let mut buffer = [0u8; 8192];
    while let Ok(n) = reader.read(&mut buffer) {
        if n == 0 {
            break;
        }
        let room = cap.saturating_sub(kept.len()).min(n);
        kept.extend_from_slice(&buffer[..room]);
        dropped = dropped.saturating_add((n - room) as u64);
    }
    (kept, dropped)
}

/// An app's stdout or stderr as its [`Outcome`] keeps it ([`truncated_log`]).
fn read_log(reader: &mut impl std::io::Read, cap: usize) -> Vec<u8> {
    let (kept, dropped) = read_counted(reader, cap);
    truncated_log(kept, dropped)
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

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn image(location: &str) -> ImageReference {
        match AppLocation::parse(location) {
            Ok(AppLocation::Image(reference)) => reference,
            other => panic!("{location}: {other:?}"),
        }
    }

    fn refused(location: &str) -> String {
        match AppLocation::parse(location) {
            Err(e @ RunError::BadLocation { .. }) => e.to_string(),
            other => panic!("{location} was not refused: {other:?}"),
        }
    }

    #[test]
    fn urls_are_urls() {
        for url in [
            "http://127.0.0.1:8080/v1/results/bafkreigfkjvbkheonocqqlqrusm6bhrrr76plhqwvfb7cfcyebhdxlls5e",
            "https://example.com/apps/oci-wordcount.tar",
            "ipfs://bafkreigfkjvbkheonocqqlqrusm6bhrrr76plhqwvfb7cfcyebhdxlls5e",
            "  http://host/app.tar ",
        ] {
            assert_eq!(AppLocation::parse(url), Ok(AppLocation::Url(url.trim().to_owned())));
        }
    }

    #[test]
    fn image_references_are_told_from_urls_and_parsed() {
        let pinned = image(&format!("docker.io/library/busybox:1.36@{DIGEST}"));
        assert_eq!(pinned.registry(), "docker.io");
        assert_eq!(pinned.repository(), "library/busybox");
        assert_eq!(pinned.tag(), Some("1.36"));
        assert_eq!(pinned.digest().map(|d| sha256_text(&d)), Some(DIGEST.to_owned()));
        assert_eq!(pinned.to_string(), format!("docker.io/library/busybox:1.36@{DIGEST}"));

        let tagged = image("registry.example.com/app:tag");
        assert_eq!((tagged.registry(), tagged.repository()), ("registry.example.com", "app"));
        assert_eq!((tagged.tag(), tagged.digest()), (Some("tag"), None));

        let port = image("127.0.0.1:1/none:latest");
        assert_eq!(
            (port.registry(), port.repository(), port.tag()),
            ("127.0.0.1:1", "none", Some("latest"))
        );
        let untagged = image("localhost:5000/team/my_app-2");
        assert_eq!(
            (untagged.registry(), untagged.repository(), untagged.tag()),
            ("localhost:5000", "team/my_app-2", None)
        );
        assert_eq!(image("localhost/xiebao-oci-wordcount:1").registry(), "localhost");
        assert_eq!(image(&format!("quay.io/a/b@{DIGEST}")).tag(), None);
    }

    #[test]
    fn bad_locations_are_refused_with_the_rule() {
        assert!(refused("busybox").contains("short name"));
        assert!(refused("busybox:1.36").contains("short name"));
        assert!(refused("library/busybox").contains("`library` is not a registry host"));
        assert!(refused("docker.io/Library/busybox").contains("component `Library`"));
        assert!(refused("docker.io/busybox@sha256:abc").contains("not sha256:<64 hex digits>"));
        assert!(refused(&format!("docker.io/busybox@md5:{}", &DIGEST[7..])).contains("not sha256"));
        assert!(refused("docker.io/busybox:").contains("tag ``"));
        assert!(refused("docker.io/busybox:-x").contains("tag `-x`"));
        assert!(refused("docker.io/bus box").contains("spaces"));
        assert!(refused("").contains("empty"));
        assert!(refused("registry-.example.com/app").contains("not host[:port]"));
        assert!(refused("localhost:99999x/app").contains("not host[:port]"));
        assert!(refused("docker.io/a//b").contains("component ``"));
        let message = refused("busybox");
        assert!(message.starts_with("app location `busybox` is neither a URL"), "{message}");
    }

    #[test]
    fn manifest_digests_come_from_digest_and_repo_digests() {
        let other = DIGEST.replace("0123", "fedc");
        let inspect = format!(
            "{DIGEST} docker.io/library/busybox@{other} docker.io/library/busybox@{DIGEST}\n"
        );
        assert_eq!(manifest_digests(&inspect), vec![DIGEST.to_owned(), other]);
        assert!(manifest_digests("<nil> \n").is_empty());
        assert_eq!(sha256_text(&parse_hex32(&DIGEST[7..]).unwrap()), DIGEST);
    }
}
