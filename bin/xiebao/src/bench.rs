//! `xiebao bench`: measured throughput of the hot paths, printed beside a same-run baseline
//! (the suites are `xiebao-bench`).

use xiebao_bench::Suite as Library;

/// Arguments of `xiebao bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// Which suite to run.
    #[arg(value_enum, default_value = "protocol")]
    suite: Suite,
    /// Small sizes, for smoke tests.
    #[arg(long)]
    quick: bool,
    /// One JSON object per line: {"name", "value", "unit"}.
    #[arg(long)]
    json: bool,
    /// Open this store, load and check its state, print the time and memory (the growth
    /// suite's restart process).
    #[arg(long, hide = true)]
    load_store: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Suite {
    /// The state machine: task lifecycles, order hashing, signature recovery.
    Protocol,
    /// Block proposal and execution (signature recovery on all cores, change sets).
    Node,
    /// A 4-validator network as 4 processes: finality latency and finalized calls/s.
    Chain,
    /// A bag of trivial wasm tasks through a whole devnet: bag time, one task's latency, the
    /// sandbox's cold start, against the same tasks run in-process.
    Pipeline,
    /// The state grown to 10⁴, 10⁵ and 10⁶ finished tasks: store size, restart time and
    /// memory, state digest time.
    Growth,
    /// Every suite.
    All,
}

#[allow(clippy::print_stdout, reason = "benchmark results are the command's output")]
pub(crate) fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.load_store {
        println!("{}", xiebao_bench::load_store(path)?);
        return Ok(());
    }
    let suite = match args.suite {
        Suite::Protocol => Library::Protocol,
        Suite::Node => Library::Node,
        Suite::Chain => Library::Chain,
        Suite::Pipeline => Library::Pipeline,
        Suite::Growth => Library::Growth,
        Suite::All => Library::All,
    };
    let figures = xiebao_bench::run(&std::env::current_exe()?, suite, args.quick)?;
    if args.json {
        for f in &figures {
            println!("{}", serde_json::json!({ "name": f.name, "value": f.value, "unit": f.unit }));
        }
    } else {
        println!("| figure | value | unit | notes |");
        println!("|---|---:|---|---|");
        for f in &figures {
            // Small figures keep a decimal (1.6 tasks/s is not 2), those below 1 two.
            let value = if f.value.abs() < 1.0 {
                format!("{:.2}", f.value)
            } else if f.value.abs() < 10.0 {
                format!("{:.1}", f.value)
            } else {
                format!("{:.0}", f.value)
            };
            println!("| {} | {value} | {} | {} |", f.name, f.unit, f.note);
        }
        println!(
            "\nbuild: {}; the protocol suite runs on one thread; machine: {}",
            if cfg!(debug_assertions) {
                "debug (numbers are not representative)"
            } else {
                "release"
            },
            xiebao_bench::machine()
        );
    }
    Ok(())
}
