//! The benchmark suites behind `xiebao bench`: each measures a hot path and reports figures
//! (`{name, value, unit}` and how it was measured) beside a baseline taken in the same run.
//!
//! - `protocol`, `node`: in-process — the state machine's task lifecycles, order hashing and
//!   signature recovery; block proposal and execution;
//! - `chain`: a 4-validator network as 4 processes (finality, finalized calls/s, a flood);
//! - `pipeline`: a bag of tasks through a whole devnet, against the same tasks in-process;
//! - `growth`: the state grown to 10⁴–10⁶ finished tasks (store size, restart, memory).
//!
//! The suites that start processes run the `xiebao` program given to [`run`]. Nothing here
//! prints; errors are reports for a person (`anyhow`), as in `xiebao-devnet`.

mod chain;
mod growth;
mod pipeline;
mod suites;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use growth::load_store;

/// One measured figure.
#[derive(Clone, Debug)]
pub struct Figure {
    /// `suite.figure_unit`.
    pub name: &'static str,
    /// The measurement.
    pub value: f64,
    /// Its unit.
    pub unit: &'static str,
    /// How it was measured, or the baseline it compares with.
    pub note: String,
}

/// A benchmark suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    /// The state machine: task lifecycles, order hashing, signature recovery.
    Protocol,
    /// Block proposal and execution (signature recovery on all cores, change sets).
    Node,
    /// A 4-validator network as 4 processes: finality latency and finalized calls/s.
    Chain,
    /// A bag of trivial wasm tasks through a whole devnet against the same tasks in-process.
    Pipeline,
    /// The state grown to 10⁴, 10⁵ and 10⁶ finished tasks.
    Growth,
    /// Every suite.
    All,
}

/// The `xiebao` program the process-based suites start (set once by [`run`]).
static PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// The program [`run`] was given.
fn program() -> anyhow::Result<&'static Path> {
    PROGRAM.get().map(PathBuf::as_path).ok_or_else(|| anyhow::anyhow!("no xiebao program given"))
}

/// Runs `suite` (small sizes when `quick`), starting `program` (the `xiebao` binary) where a
/// suite needs processes; returns its figures in order.
///
/// # Errors
/// When a suite's network or devnet fails, or `program` differs from the one a previous call
/// in this process gave.
pub fn run(program: &Path, suite: Suite, quick: bool) -> anyhow::Result<Vec<Figure>> {
    let set = PROGRAM.get_or_init(|| program.to_owned());
    anyhow::ensure!(
        set == program,
        "the benchmarks run {}, not {}",
        set.display(),
        program.display()
    );
    Ok(match suite {
        Suite::Protocol => suites::protocol(quick),
        Suite::Node => suites::node(quick),
        Suite::Chain => chain::chain(quick)?,
        Suite::Pipeline => pipeline::pipeline(quick)?,
        Suite::Growth => growth::growth(quick)?,
        Suite::All => {
            let mut figures = suites::protocol(quick);
            figures.extend(suites::node(quick));
            figures.extend(chain::chain(quick)?);
            figures.extend(pipeline::pipeline(quick)?);
            figures.extend(growth::growth(quick)?);
            figures
        }
    })
}

/// The CPU model, core count and memory this runs on (from /proc on Linux).
pub fn machine() -> String {
    suites::machine()
}
