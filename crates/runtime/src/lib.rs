//! Run task apps in sandboxes: WebAssembly (WASI) with fuel, memory, time and output limits, deterministic by construction; OCI containers with podman ([`oci`]).
//!
//! A WebAssembly app sees only what the task gives it: its arguments and environment, its
//! input directory read-only at `/in`, its output directory at `/out`, a clock fixed at the
//! task's reference time and a random generator seeded from the task — so every honest worker
//! computes the same output. No network, no other files. CPU is metered in fuel (deterministic),
//! memory is capped, a wall-clock deadline stops runaway hosts, and the output's size is checked.
//! Compiled modules are cached by the sha256 of their bytes (the app's checksum).
//!
//! **Invariant:** nothing a guest does can reach the host beyond `/in` (read) and `/out`.

pub mod oci;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use wasmtime::{
    Config, Engine, InstancePre, Linker, Module, Store, StoreLimits, StoreLimitsBuilder, Trap,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
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
    /// Largest total size of the output directory, bytes.
    pub output_bytes: u64,
    /// Most bytes of stdout and of stderr kept.
    pub log_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: 10_000_000_000,
            memory_bytes: 256 << 20,
            wall_time: Duration::from_secs(300),
            output_bytes: 64 << 20,
            log_bytes: 64 << 10,
        }
    }
}

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
    /// Captured stdout (truncated to the limit).
    pub stdout: Vec<u8>,
    /// Captured stderr (truncated to the limit).
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
    /// The output is too large.
    #[error("the output is {size} bytes, above the limit of {limit} bytes")]
    OutputTooLarge {
        /// Output size.
        size: u64,
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
        let stdout = MemoryOutputPipe::new(limits.log_bytes);
        let stderr = MemoryOutputPipe::new(limits.log_bytes);
        let mut builder = WasiCtxBuilder::new();
        let mut argv = vec!["app".to_owned()];
        argv.extend(job.args.iter().cloned());
        builder.args(&argv).stdout(stdout.clone()).stderr(stderr.clone());
        for (key, value) in &job.env {
            builder.env(key, value);
        }
        if let Some(input) = &job.input_dir {
            builder
                .preopened_dir(input, "/in", FsPerms::ReadOnly)
                .map_err(|e| RunError::Host { path: input.clone(), detail: e.to_string() })?;
        }
        builder
            .preopened_dir(&job.output_dir, "/out", FsPerms::ReadWrite)
            .map_err(|e| RunError::Host { path: job.output_dir.clone(), detail: e.to_string() })?;
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
        let ticks = (limits.wall_time.as_millis() / EPOCH_TICK.as_millis()).max(1);
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));

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
        let size = dir_size(&job.output_dir)
            .map_err(|e| RunError::Host { path: job.output_dir.clone(), detail: e.to_string() })?;
        if size > limits.output_bytes {
            return Err(RunError::OutputTooLarge { size, limit: limits.output_bytes });
        }
        Ok(Outcome {
            exit_code,
            fuel_used,
            stdout: stdout.contents().to_vec(),
            stderr: stderr.contents().to_vec(),
        })
    }
}

pub(crate) fn dir_size(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            total += dir_size(&entry.path())?;
        } else {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}
