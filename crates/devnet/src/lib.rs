//! A whole Xiebao network on this machine, as a library: `xiebao devnet`, `xiebao localnet`,
//! the end-to-end tests and the benchmarks call it.
//!
//! - [`network`]: a new network's files — validator keys, the genesis, each validator's config
//!   on free loopback ports — and a new node's keys to join a running one;
//! - [`process`]: validator processes started from the `xiebao` program and stopped again;
//! - [`Devnet`]: validators, a result store, a workerpool with its scheduler and workers, the
//!   demo apps deployed with their orders, each component a supervised child process logging
//!   under the data directory; its layout (ports, keys, addresses) is kept in `devnet.json`
//!   and a devnet started again on the same directory resumes;
//! - [`Devnet::demo`]: a real Bag-of-Tasks job through it (a Mandelbrot picture rendered tile
//!   by tile, or word counts), and its [`Summary`].
//!
//! Nothing here prints: sentences go to an [`Observer`], results to the caller. Errors are
//! reports for a person (`anyhow`), like the command line's: this crate orchestrates processes
//! and files for a developer's machine, and no caller matches on them.

mod demo;
mod devnet;
mod layout;
pub mod network;
pub mod process;
mod supervisor;

use std::path::PathBuf;

pub use demo::{Summary, tiling_for};
pub use devnet::Devnet;
pub use xiebao_sdk::requester::BagObserver;

/// How a devnet runs: this project's defaults, or iExec's sidechain as a baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// This project's defaults: blocks as fast as consensus allows, batched transactions,
    /// contributeAndFinalize at trust 1.
    Xiebao,
    /// iExec's sidechain as a baseline: 5 s blocks of at most 32 transactions, one call per
    /// transaction, no contributeAndFinalize.
    Iexec,
}

/// What a devnet is made of and what its demo does.
#[derive(Clone, Debug)]
pub struct Options {
    /// The `xiebao` program every component runs as.
    pub program: PathBuf,
    /// Where the network lives (created on first use, resumed after).
    pub data_dir: PathBuf,
    /// Validators (one process each).
    pub validators: usize,
    /// Workers (one process each).
    pub workers: usize,
    /// Replicates each worker runs at once.
    pub slots: u32,
    /// The demo's app: `mandelbrot`, `wordcount` or `oci-wordcount`.
    pub app: String,
    /// Tasks in the demo's bag.
    pub tasks: u64,
    /// Side of one tile, pixels.
    pub tile_size: u32,
    /// Mandelbrot iterations per pixel.
    pub max_iter: u32,
    /// Trust of the demo's request.
    pub trust: u64,
    /// Score every worker starts with (genesis; only when the network is created).
    pub initial_score: u64,
    /// Have the demo's results sealed for the requester.
    pub encrypt: bool,
    /// Give up on the demo after this many seconds.
    pub timeout: u64,
    /// Test only: this many workers corrupt their outputs.
    pub lying_workers: usize,
    /// The profile; the four options below override it.
    pub profile: Profile,
    /// Most calls the scheduler and the workers pack into one transaction.
    pub max_calls_per_tx: Option<usize>,
    /// Trust-1 tasks take the contribute, reveal, finalize path.
    pub no_contribute_and_finalize: bool,
    /// A validator proposes a block every this many milliseconds (fixed at creation).
    pub block_interval_ms: Option<u64>,
    /// Most transactions in one block (fixed at creation).
    pub block_txs_max: Option<usize>,
}

/// The demo apps every devnet deploys (`oci-wordcount` where podman is installed).
pub const DEMO_APPS: [&str; 3] = ["mandelbrot", "wordcount", "oci-wordcount"];

impl Options {
    /// Checks the demo's options before anything starts: a known app, a task count it can
    /// take, and what the app needs on this machine.
    ///
    /// # Errors
    /// Naming the option, its value and what would work.
    pub fn check_demo(&self) -> anyhow::Result<()> {
        if !DEMO_APPS.contains(&self.app.as_str()) {
            anyhow::bail!(
                "--app {}: the demo apps are {} (see `xiebao app list` for the apps of a running chain)",
                self.app,
                DEMO_APPS.join(", ")
            );
        }
        if self.app == "mandelbrot" {
            tiling_for(self.tasks, self.tile_size, self.max_iter)?;
            return Ok(());
        }
        if self.tasks == 0 || self.tasks > 10_000 {
            anyhow::bail!(
                "--tasks must be between 1 and 10000 for --app {}, got {}",
                self.app,
                self.tasks
            );
        }
        if self.app == "oci-wordcount" {
            let podman = std::process::Command::new("podman")
                .arg("--version")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            let busybox = std::path::Path::new(xiebao_apps::oci_wordcount::BUSYBOX).exists();
            if !podman || !busybox {
                anyhow::bail!(
                    "--app oci-wordcount runs in podman containers built from a static busybox: {} missing here (sudo apt-get install -y podman runc busybox-static uidmap)",
                    match (podman, busybox) {
                        (false, false) => "podman and busybox are",
                        (false, true) => "podman is",
                        _ => "busybox is",
                    }
                );
            }
        }
        Ok(())
    }
}

/// What a front end shows while a devnet starts and runs.
pub trait Observer: Send + Sync {
    /// A sentence about what the devnet is doing (a person may want to see it).
    fn say(&self, line: &str);
    /// Something went wrong but the devnet goes on (a component restarted, an app skipped).
    fn warn(&self, line: &str);
    /// The demo's bag of `total` tasks begins: what shows its progress.
    fn bag(&self, total: u64) -> Box<dyn BagObserver + '_>;
}
