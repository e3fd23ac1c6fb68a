//! `xiebao devnet`: a whole network on this machine in one command — validators, a result
//! store, a workerpool with its scheduler and workers, the demo apps deployed with their
//! orders — and, with `--demo`, a real Bag-of-Tasks job through it (see `xiebao-devnet`).

use std::path::PathBuf;

use clap::Args;
use xiebao_devnet::{BagObserver, Devnet, Observer, Options};

/// `xiebao devnet`.
#[derive(Debug, Args)]
pub(crate) struct DevnetArgs {
    /// Where the network lives (created on first use, resumed after).
    #[arg(long, default_value = "xiebao-devnet")]
    data_dir: PathBuf,
    /// Validators (one process each).
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Workers (one process each).
    #[arg(long, default_value_t = 3)]
    workers: usize,
    /// Replicates each worker runs at once.
    #[arg(long, default_value_t = 2)]
    slots: u32,
    /// Run the demo job: render a Mandelbrot picture as a bag of tasks, write it, exit.
    #[arg(long)]
    demo: bool,
    /// Keep the network running after the demo (stop with Ctrl-C).
    #[arg(long)]
    keep: bool,
    /// The demo's app: `mandelbrot` (a picture, one tile per task), `wordcount` (word counts
    /// over input chunks, one chunk per task) or `oci-wordcount` (the same in a podman container).
    #[arg(long, default_value = "mandelbrot")]
    app: String,
    /// Tasks in the demo's bag (picture tiles, or text chunks).
    #[arg(long, default_value_t = 64)]
    tasks: u64,
    /// Side of one tile, pixels.
    #[arg(long, default_value_t = 96)]
    tile_size: u32,
    /// Mandelbrot iterations per pixel (more: slower tasks).
    #[arg(long, default_value_t = 256)]
    max_iter: u32,
    /// Trust of the demo's request (1: one worker per task; more: replicated, PoCo consensus).
    #[arg(long, default_value_t = 1)]
    trust: u64,
    /// Score every worker starts with (genesis; only when the network is created).
    #[arg(long, default_value_t = 0)]
    initial_score: u64,
    /// Have the results encrypted for the requester (the beneficiary): workers seal them with
    /// its public key, the demo opens them with its key.
    #[arg(long)]
    encrypt: bool,
    /// Give up on the demo after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Print the demo's summary as JSON.
    #[arg(long)]
    json: bool,
    /// Test only: this many workers corrupt their outputs (lying workers).
    #[arg(long, hide = true, default_value_t = 0)]
    lying_workers: usize,
    /// How the network runs: `xiebao` (this project's defaults) or `iexec` (iExec's sidechain,
    /// the baseline benchmarks compare with: 5 s blocks of at most 32 transactions, one call
    /// per transaction, no contributeAndFinalize). The four options below override it.
    #[arg(long, value_enum, default_value_t = Profile::Xiebao)]
    profile: Profile,
    /// Most calls the scheduler and the workers pack into one transaction (1: one call per
    /// transaction) [default: 256; iexec profile: 1].
    #[arg(long, value_name = "N", value_parser = crate::common::calls_per_tx)]
    max_calls_per_tx: Option<usize>,
    /// Trust-1 tasks take the trust > 1 path — contribute, reveal, finalize — instead of one
    /// contributeAndFinalize [iexec profile: on].
    #[arg(long)]
    no_contribute_and_finalize: bool,
    /// A validator proposes a block every this many milliseconds (0: as soon as it can); fixed
    /// when the network is created [default: 0; iexec profile: 5000].
    #[arg(long, value_name = "MS")]
    block_interval_ms: Option<u64>,
    /// Most transactions in one block; fixed when the network is created [default: 2000;
    /// iexec profile: 32].
    #[arg(long, value_name = "N", value_parser = block_txs)]
    block_txs_max: Option<usize>,
}

/// `devnet --profile`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Profile {
    /// This project's defaults: blocks as fast as consensus allows, batched transactions,
    /// contributeAndFinalize at trust 1.
    Xiebao,
    /// iExec's sidechain as a baseline: 5 s blocks of at most 32 transactions, one call per
    /// transaction, no contributeAndFinalize.
    Iexec,
}

/// `--block-txs-max`: a positive number of transactions.
fn block_txs(text: &str) -> Result<usize, String> {
    let txs: usize = text.parse().map_err(|e| format!("{e}: a number of transactions"))?;
    if txs == 0 {
        return Err("a block must be able to hold at least one transaction".into());
    }
    Ok(txs)
}

impl DevnetArgs {
    /// The library's options, for the program running now.
    fn options(&self) -> anyhow::Result<Options> {
        Ok(Options {
            program: std::env::current_exe()?,
            data_dir: self.data_dir.clone(),
            validators: self.validators,
            workers: self.workers,
            slots: self.slots,
            app: self.app.clone(),
            tasks: self.tasks,
            tile_size: self.tile_size,
            max_iter: self.max_iter,
            trust: self.trust,
            initial_score: self.initial_score,
            encrypt: self.encrypt,
            timeout: self.timeout,
            lying_workers: self.lying_workers,
            profile: match self.profile {
                Profile::Xiebao => xiebao_devnet::Profile::Xiebao,
                Profile::Iexec => xiebao_devnet::Profile::Iexec,
            },
            max_calls_per_tx: self.max_calls_per_tx,
            no_contribute_and_finalize: self.no_contribute_and_finalize,
            block_interval_ms: self.block_interval_ms,
            block_txs_max: self.block_txs_max,
        })
    }
}

/// Sentences on stderr (none with `--json`), warnings always, the bag's progress bar.
struct Terminal {
    json: bool,
}

impl Observer for Terminal {
    fn say(&self, line: &str) {
        if !self.json {
            eprintln!("{line}");
        }
    }

    fn warn(&self, line: &str) {
        eprintln!("{line}");
    }

    fn bag(&self, total: u64) -> Box<dyn BagObserver + '_> {
        Box::new(crate::common::Progress::new(self.json, total))
    }
}

#[allow(clippy::print_stdout, reason = "the command's output")]
pub(crate) fn run(args: &DevnetArgs) -> anyhow::Result<()> {
    let options = args.options()?;
    if args.demo {
        options.check_demo()?;
    }
    let terminal = Terminal { json: args.json };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let devnet = async {
            let mut devnet = Devnet::start(&options, &terminal).await?;
            if args.demo {
                let summary = devnet.demo().await?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&summary)?);
                } else {
                    println!("{}", summary.picture.display());
                }
                if !args.keep {
                    return Ok(());
                }
            }
            terminal.say("the devnet runs; stop it with Ctrl-C");
            devnet.supervise().await
        };
        tokio::select! {
            result = devnet => result,
            stop = crate::common::wait_for_stop() => {
                terminal.say("stopping the devnet");
                stop
            }
        }
    })
}
