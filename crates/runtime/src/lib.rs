//! Run task apps in sandboxes: WebAssembly (WASI) with fuel, memory, time and output limits, deterministic by construction; OCI containers with podman ([`oci`]).
//!
//! A WebAssembly app sees only what the task gives it: its arguments and environment, its
//! input directory read-only at `/iexec_in` and `/in`, its output directory at `/iexec_out` and
//! `/out` (iExec's paths and ours, the same folders), a clock fixed at the
//! task's reference time and a random generator seeded from the task — so every honest worker
//! computes the same output. No network, no other files. CPU is metered in fuel (deterministic),
//! memory is capped, a wall-clock deadline stops runaway hosts, and the output's size and
//! number of entries are bounded *while the app runs*: every epoch tick (10 ms) the guest is
//! paused, `/out` is measured and the guest is stopped once it holds more than the limit (so a
//! disk fills at most by what one tick and one write can add). stdout and stderr keep their
//! first [`Limits::log_bytes`] and count the rest ([`truncated_log`]); a chatty app is not a
//! failure. Compiled modules are cached by the sha256 of their bytes (the app's checksum).
//!
//! **Invariant:** nothing a guest does can reach the host beyond `/in` (read) and `/out`.
//! **Invariant:** a guest's `/out` never holds more than [`Limits::output_bytes`] plus what it
//! writes in one epoch tick (one host write is at most its linear memory).

/// Where an app reads its inputs (dataset, input files): `/in`, and iExec's `/iexec_in` (its
/// `IEXEC_IN`), the same read-only folder.
pub const INPUT_PATHS: [&str; 2] = ["/in", "/iexec_in"];
/// Where an app writes its result: `/out`, and iExec's `/iexec_out` (its `IEXEC_OUT`), the same
/// folder.
pub const OUTPUT_PATHS: [&str; 2] = ["/out", "/iexec_out"];

pub mod oci;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use wasmtime::{
    Config, Engine, InstancePre, Linker, Module, Store, StoreLimits, StoreLimitsBuilder, Trap,
    UpdateDeadline,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, HostMonotonicClock, HostWallClock, I32Exit, WasiCtxBuilder};

/// How long one epoch tick lasts; wall-clock deadlines are counted in ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// An app's code as the worker hands it to a runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppCode {
    /// A file the worker downloaded and whose sha256 it checked against the app's registry
    /// checksum: a WebAssembly module, or an OCI image archive (`podman save`).
    File(PathBuf),
    /// An OCI image in a registry: the runtime pulls it and checks its manifest digest against
    /// the app's registry checksum itself ([`oci::ImageReference`]).
    Image(oci::ImageReference),
}

/// The interface every runtime offers the worker: prepare an app (setting up: load or pull an
/// image) and run it on a job within a wall-clock limit and the runtime's default resource
/// limits. Each runtime caches what it prepares from an app by its registry checksum.
pub trait Sandbox: Send + Sync {
    /// The app type it runs, as in the registry (`WASM`, `OCI`).
    fn kind(&self) -> &'static str;

    /// Makes `app` ready to run (setting up, never counted as execution time); cached by
    /// `checksum`, so [`Sandbox::run_app`] finds it. Does nothing by default.
    ///
    /// # Errors
    /// [`RunError`] naming what could not be fetched, loaded or verified.
    fn prepare(&self, app: &AppCode, checksum: [u8; 32]) -> Result<(), RunError> {
        let _ = (app, checksum);
        Ok(())
    }

    /// Runs `app` on `job` (preparing it first if [`Sandbox::prepare`] was not called).
    ///
    /// # Errors
    /// [`RunError`] naming the limit or the failure; a non-zero exit code is an [`Outcome`].
    fn run_app(
        &self,
        app: &AppCode,
        checksum: [u8; 32],
        job: &Job,
        wall_time: Duration,
    ) -> Result<Outcome, RunError>;
}

impl Sandbox for WasmRuntime {
    fn kind(&self) -> &'static str {
        "WASM"
    }

    fn run_app(
        &self,
        app: &AppCode,
        _checksum: [u8; 32],
        job: &Job,
        wall_time: Duration,
    ) -> Result<Outcome, RunError> {
        let app = match app {
            AppCode::File(path) => path,
            AppCode::Image(reference) => {
                return Err(RunError::Invalid(format!(
                    "a WASM app is a module file, not the image {reference}"
                )));
            }
        };
        let module = std::fs::read(app)
            .map_err(|e| RunError::Host { path: app.clone(), detail: e.to_string() })?;
        self.run(&module, job, &Limits { wall_time, ..Limits::default() })
    }
}

/// Resource limits of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Instructions budget, in wasmtime fuel units (deterministic across machines).
    pub fuel: u64,
    /// Largest linear memory, bytes.
    pub memory_bytes: usize,
    /// Wall-clock time before the run is stopped.
    pub wall_time: Duration,
    /// Largest total size of the output directory, bytes (checked while the app runs).
    pub output_bytes: u64,
    /// Most files and directories in the output directory (checked while the app runs).
    pub output_entries: u64,
    /// Most bytes of stdout and of stderr kept; the rest is counted, not kept.
    pub log_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: 10_000_000_000,
            memory_bytes: 256 << 20,
            wall_time: Duration::from_secs(300),
            output_bytes: 64 << 20,
            output_entries: OUTPUT_ENTRIES_MAX,
            log_bytes: 64 << 10,
        }
    }
}

/// Most files and directories an app's output may hold by default (inodes are a disk too).
pub const OUTPUT_ENTRIES_MAX: u64 = 10_000;

/// One run of an app.
#[derive(Clone, Debug)]
pub struct Job {
    /// Arguments after the program name.
    pub args: Vec<String>,
    /// Environment variables (e.g. `IEXEC_TASK_ID`).
    pub env: Vec<(String, String)>,
    /// Mounted read-only at `/in`, if any.
    pub input_dir: Option<PathBuf>,
    /// Mounted read-write at `/out`; must exist.
    pub output_dir: PathBuf,
    /// Seconds since the Unix epoch the guest's clock shows (e.g. the deal's start).
    pub clock_s: u64,
    /// Seed of the guest's random generator (e.g. the task id).
    pub seed: [u8; 32],
}

/// What a finished run gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The guest's exit code (0 on a normal return).
    pub exit_code: i32,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Captured stdout: its first bytes up to the limit, then, if it wrote more, the
    /// marker of [`truncated_log`].
    pub stdout: Vec<u8>,
    /// Captured stderr, bounded the same way.
    pub stderr: Vec<u8>,
}

/// A run could not complete.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The bytes are not a valid module, or it imports what the sandbox does not provide.
    #[error("the app is not a runnable WASI module: {0}")]
    Invalid(String),
    /// Fuel ran out.
    #[error("the app used all of its {limit} fuel (CPU budget)")]
    OutOfFuel {
        /// The budget.
        limit: u64,
    },
    /// Memory limit hit.
    #[error("the app tried to grow its memory beyond {limit} bytes")]
    OutOfMemory {
        /// The limit.
        limit: usize,
    },
    /// Wall-clock deadline hit.
    #[error("the app ran past its {limit:?} wall-time limit")]
    WallTime {
        /// The limit.
        limit: Duration,
    },
    /// The output is too large (measured while the app ran, or once it exited).
    #[error("the output is {size} bytes, above the limit of {limit} bytes")]
    OutputTooLarge {
        /// Output size when it was measured (a lower bound once the app is stopped early).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The output holds too many files and directories.
    #[error("the output holds {entries} files and directories, above the limit of {limit}")]
    OutputTooManyEntries {
        /// Entries counted when it was measured (a lower bound).
        entries: u64,
        /// The limit.
        limit: u64,
    },
    /// The guest trapped (a crash: panic, out-of-bounds access, …).
    #[error("the app crashed: {0}")]
    Crashed(String),
    /// An app's location is neither a URL nor a usable image reference.
    #[error(
        "app location `{location}` is neither a URL (scheme://…) nor a fully qualified image reference (registry/repository[:tag][@sha256:…]): {reason}"
    )]
    BadLocation {
        /// The location, as registered.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `podman pull` failed (registry unreachable, image unknown, refused, …).
    #[error("pulling image {reference} failed: {detail}")]
    Pull {
        /// The image reference.
        reference: String,
        /// podman's last words.
        detail: String,
    },
    /// `podman pull` did not finish within its time limit (setting up).
    #[error("pulling image {reference} took longer than the {limit:?} pull limit; stopped")]
    PullTimeout {
        /// The image reference.
        reference: String,
        /// The limit.
        limit: Duration,
    },
    /// A pulled (or pinned) image's manifest digest is not the app's registry checksum.
    #[error(
        "checksum mismatch: image {reference} has manifest digest {found}, but the app's registry checksum is {expected}: refusing to run it"
    )]
    DigestMismatch {
        /// The image reference.
        reference: String,
        /// The registry checksum, `sha256:…`.
        expected: String,
        /// The digest(s) podman reports, `sha256:…`.
        found: String,
    },
    /// The runtime is missing or broken on this host (e.g. podman not installed).
    #[error("runtime unavailable: {0}")]
    Unavailable(String),
    /// A host directory could not be used.
    #[error("{path}: {detail}")]
    Host {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

struct FixedWall(Duration);
impl HostWallClock for FixedWall {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        self.0
    }
}

struct FixedMonotonic;
impl HostMonotonicClock for FixedMonotonic {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

struct Guest {
    wasi: WasiP1Ctx,
    limits: StoreLimits,
}

/// Runs WebAssembly apps; one per worker, shared by its task slots.
pub struct WasmRuntime {
    engine: Engine,
    linker: Linker<Guest>,
    cache: Mutex<BTreeMap<[u8; 32], InstancePre<Guest>>>,
    ticking: Arc<AtomicBool>,
}

impl std::fmt::Debug for WasmRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmRuntime").finish_non_exhaustive()
    }
}

impl Drop for WasmRuntime {
    fn drop(&mut self) {
        self.ticking.store(false, Ordering::Relaxed);
    }
}

impl WasmRuntime {
    /// Builds the engine (fuel and epoch interruption on) and starts its epoch ticker.
    ///
    /// # Errors
    /// [`RunError::Invalid`] if the engine cannot be configured on this host.
    pub fn new() -> Result<Self, RunError> {
        let mut config = Config::new();
        config.consume_fuel(true).epoch_interruption(true);
        // NaN canonicalization keeps float results identical across hosts.
        config.cranelift_nan_canonicalization(true);
        let engine = Engine::new(&config).map_err(|e| RunError::Invalid(e.to_string()))?;
        let mut linker: Linker<Guest> = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |guest: &mut Guest| &mut guest.wasi)
            .map_err(|e| RunError::Invalid(e.to_string()))?;
        let ticking = Arc::new(AtomicBool::new(true));
        let ticker_engine = engine.weak();
        let running = ticking.clone();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while running.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match ticker_engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| RunError::Invalid(e.to_string()))?;
        Ok(Self { engine, linker, cache: Mutex::new(BTreeMap::new()), ticking })
    }

    /// Number of compiled modules cached.
    pub fn cached_modules(&self) -> usize {
        self.cache.lock().expect("cache lock").len()
    }

    fn prepare(&self, module: &[u8]) -> Result<InstancePre<Guest>, RunError> {
        let key: [u8; 32] = Sha256::digest(module).into();
        if let Some(pre) = self.cache.lock().expect("cache lock").get(&key) {
            return Ok(pre.clone());
        }
        let compiled =
            Module::new(&self.engine, module).map_err(|e| RunError::Invalid(format!("{e:#}")))?;
        let pre = self
            .linker
            .instantiate_pre(&compiled)
            .map_err(|e| RunError::Invalid(format!("{e:#}")))?;
        self.cache.lock().expect("cache lock").insert(key, pre.clone());
        Ok(pre)
    }

    /// Runs `module` on `job` within `limits`.
    ///
    /// # Errors
    /// [`RunError`] naming the limit or the failure. A non-zero exit code is an [`Outcome`],
    /// not an error.
    pub fn run(&self, module: &[u8], job: &Job, limits: &Limits) -> Result<Outcome, RunError> {
        let pre = self.prepare(module)?;
        let stdout = LogPipe::new(limits.log_bytes);
        let stderr = LogPipe::new(limits.log_bytes);
        let mut builder = WasiCtxBuilder::new();
        let mut argv = vec!["app".to_owned()];
        argv.extend(job.args.iter().cloned());
        builder.args(&argv).stdout(stdout.clone()).stderr(stderr.clone());
        for (key, value) in &job.env {
            builder.env(key, value);
        }
        // Preopened in this order so that WASI descriptors stay as they were before iExec's
        // paths: 3 is `/in` (when there is an input) and the next one `/out`; the iExec
        // aliases come after.
        for index in 0..2 {
            if let Some(input) = &job.input_dir {
                builder
                    .preopened_dir(input, INPUT_PATHS[index], FsPerms::ReadOnly)
                    .map_err(|e| RunError::Host { path: input.clone(), detail: e.to_string() })?;
            }
            builder
                .preopened_dir(&job.output_dir, OUTPUT_PATHS[index], FsPerms::ReadWrite)
                .map_err(|e| RunError::Host {
                    path: job.output_dir.clone(),
                    detail: e.to_string(),
                })?;
        }
        builder
            .wall_clock(FixedWall(Duration::from_secs(job.clock_s)))
            .monotonic_clock(FixedMonotonic)
            .secure_random(wasmtime_wasi::Deterministic::new(job.seed.to_vec()))
            .insecure_random(wasmtime_wasi::Deterministic::new(
                job.seed.iter().rev().copied().collect(),
            ))
            .insecure_random_seed(u128::from_be_bytes(
                job.seed[..16].try_into().expect("16 bytes"),
            ));
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            .instances(1)
            .trap_on_grow_failure(true)
            .build();
        let mut store =
            Store::new(&self.engine, Guest { wasi: builder.build_p1(), limits: store_limits });
        store.limiter(|guest| &mut guest.limits);
        store.set_fuel(limits.fuel).map_err(|e| RunError::Invalid(e.to_string()))?;
        // Every tick the guest is paused here: past the wall-time deadline it is interrupted;
        // with too large an output it is stopped, so a guest cannot fill the disk while it
        // runs (the output is measured again once it exits). A large output takes long to
        // measure: the next measure waits four times as long as the last took, so measuring
        // never takes more than a fifth of the guest's time.
        let deadline = Instant::now() + limits.wall_time;
        let (out, output) = (job.output_dir.clone(), OutputLimits::from(limits));
        let mut next_measure = Instant::now();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            let now = Instant::now();
            if now >= deadline {
                return Ok(UpdateDeadline::Interrupt);
            }
            if now >= next_measure {
                output.check(&out).map_err(wasmtime::Error::from)?;
                next_measure = Instant::now() + now.elapsed() * 4;
            }
            Ok(UpdateDeadline::Continue(1))
        });

        let result = pre
            .instantiate(&mut store)
            .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
            .and_then(|start| start.call(&mut store, ()));
        let fuel_used = limits.fuel - store.get_fuel().unwrap_or(0);
        let exit_code = match result {
            Ok(()) => 0,
            Err(error) => {
                if let Some(exit) = error.downcast_ref::<I32Exit>() {
                    exit.0
                } else if let Some(stop) = error.downcast_ref::<RunError>() {
                    return Err(stop.clone());
                } else {
                    return Err(match error.downcast_ref::<Trap>() {
                        Some(Trap::OutOfFuel) => RunError::OutOfFuel { limit: limits.fuel },
                        Some(Trap::Interrupt) => RunError::WallTime { limit: limits.wall_time },
                        _ if format!("{error:#}").contains("forcing trap when growing memory") => {
                            RunError::OutOfMemory { limit: limits.memory_bytes }
                        }
                        _ => RunError::Crashed(format!("{error:#}")),
                    });
                }
            }
        };
        OutputLimits::from(limits).check(&job.output_dir)?;
        Ok(Outcome { exit_code, fuel_used, stdout: stdout.finish(), stderr: stderr.finish() })
    }
}

/// The bounds on an output directory, as measured during and after a run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OutputLimits {
    pub(crate) bytes: u64,
    pub(crate) entries: u64,
}

impl From<&Limits> for OutputLimits {
    fn from(limits: &Limits) -> Self {
        Self { bytes: limits.output_bytes, entries: limits.output_entries }
    }
}

impl OutputLimits {
    /// Measures `dir`, stopping as soon as it is over a limit.
    ///
    /// # Errors
    /// [`RunError::OutputTooLarge`] or [`RunError::OutputTooManyEntries`] with what was counted
    /// so far; [`RunError::Host`] when it cannot be read.
    pub(crate) fn check(&self, dir: &Path) -> Result<(), RunError> {
        let mut usage = Usage::default();
        match usage.add(dir, self) {
            Ok(()) => Ok(()),
            Err(Measure::Over) if usage.bytes > self.bytes => {
                Err(RunError::OutputTooLarge { size: usage.bytes, limit: self.bytes })
            }
            Err(Measure::Over) => {
                Err(RunError::OutputTooManyEntries { entries: usage.entries, limit: self.entries })
            }
            Err(Measure::Io(e)) => {
                Err(RunError::Host { path: dir.to_owned(), detail: e.to_string() })
            }
        }
    }
}

/// What an output directory holds: the lengths of its files and its entries (symbolic links
/// are counted as entries, never followed).
#[derive(Debug, Default)]
struct Usage {
    bytes: u64,
    entries: u64,
}

enum Measure {
    Over,
    Io(std::io::Error),
}

impl Usage {
    fn add(&mut self, dir: &Path, limits: &OutputLimits) -> Result<(), Measure> {
        for entry in std::fs::read_dir(dir).map_err(Measure::Io)? {
            let entry = entry.map_err(Measure::Io)?;
            self.entries += 1;
            if self.entries > limits.entries {
                return Err(Measure::Over);
            }
            let kind = entry.file_type().map_err(Measure::Io)?;
            if kind.is_dir() {
                self.add(&entry.path(), limits)?;
            } else {
                self.bytes =
                    self.bytes.saturating_add(entry.metadata().map_err(Measure::Io)?.len());
                if self.bytes > limits.bytes {
                    return Err(Measure::Over);
                }
            }
        }
        Ok(())
    }
}

/// A log as an app's output keeps it: `kept` (the first bytes, up to the limit) and, when the
/// app wrote `dropped` more bytes, a last line `[truncated, {dropped} bytes]`.
pub fn truncated_log(mut kept: Vec<u8>, dropped: u64) -> Vec<u8> {
    if dropped > 0 {
        if kept.last().is_some_and(|b| *b != b'\n') {
            kept.push(b'\n');
        }
        kept.extend_from_slice(format!("[truncated, {dropped} bytes]\n").as_bytes());
    }
    kept
}

/// A guest's stdout or stderr: keeps the first `cap` bytes, counts the rest and always accepts
/// writes (a full log is not an error the guest sees).
#[derive(Clone)]
struct LogPipe {
    log: Arc<Mutex<(Vec<u8>, u64)>>,
    cap: usize,
}

impl LogPipe {
    fn new(cap: usize) -> Self {
        Self { log: Arc::new(Mutex::new((Vec::new(), 0))), cap }
    }

    fn push(&self, bytes: &[u8]) {
        let mut log = self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let room = self.cap.saturating_sub(log.0.len()).min(bytes.len());
        log.0.extend_from_slice(&bytes[..room]);
        log.1 = log.1.saturating_add((bytes.len() - room) as u64);
    }

    fn finish(&self) -> Vec<u8> {
        let mut log = self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (kept, dropped) = (std::mem::take(&mut log.0), log.1);
        truncated_log(kept, dropped)
    }
}

/// How many bytes a guest may hand over in one write (any amount is accepted).
const LOG_PERMIT_BYTES: usize = 64 << 10;

impl wasmtime_wasi::cli::IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for LogPipe {
    fn p2_stream(&self) -> Box<dyn wasmtime_wasi::p2::OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl wasmtime_wasi::p2::OutputStream for LogPipe {
    fn write(&mut self, bytes: bytes::Bytes) -> wasmtime_wasi::p2::StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> wasmtime_wasi::p2::StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> wasmtime_wasi::p2::StreamResult<usize> {
        Ok(LOG_PERMIT_BYTES)
    }
}

#[wasmtime_wasi::async_trait]
impl wasmtime_wasi::p2::Pollable for LogPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LogPipe {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        bytes: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.push(bytes);
        std::task::Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_keeps_its_first_bytes_and_counts_the_rest() {
        let pipe = LogPipe::new(4);
        pipe.push(b"ab");
        pipe.push(b"cdef");
        pipe.push(b"gh");
        assert_eq!(pipe.finish(), b"abcd\n[truncated, 4 bytes]\n");
        let short = LogPipe::new(4);
        short.push(b"ok\n");
        assert_eq!(short.finish(), b"ok\n");
    }

    #[test]
    fn output_measures_stop_at_the_first_limit_crossed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/f"), [0u8; 10]).unwrap();
        let limits = |bytes, entries| OutputLimits { bytes, entries };
        assert_eq!(limits(10, 3).check(dir.path()), Ok(()));
        assert_eq!(
            limits(9, 3).check(dir.path()),
            Err(RunError::OutputTooLarge { size: 10, limit: 9 })
        );
        assert_eq!(
            limits(10, 2).check(dir.path()),
            Err(RunError::OutputTooManyEntries { entries: 3, limit: 2 })
        );
    }
}
