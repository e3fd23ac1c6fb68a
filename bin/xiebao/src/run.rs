//! `xiebao run`: one command from an app to its results — pick compatible orders from the
//! market, sign the request, match, print the deal and every task id, follow the bag with a
//! progress bar and download each result as soon as its task completes.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use xiebao_sdk::client::Node;
use xiebao_sdk::requester::{FollowOptions, Kind, RunRequest, resolve};
use xiebao_types::Tag;

use crate::common::{Endpoint, format_rlc};

/// `xiebao run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The app: its address or its registered name (`mandelbrot` on a devnet; `xiebao app
    /// list` shows them).
    app: String,
    /// A dataset for every task (address or name).
    #[arg(long)]
    dataset: Option<String>,
    /// Only this workerpool, by address or description (default: the cheapest compatible one
    /// in the market).
    #[arg(long)]
    workerpool: Option<String>,
    /// Number of tasks (default: one per --input-file, else 1).
    #[arg(long)]
    volume: Option<u64>,
    /// The app's arguments (every task gets them, and its own IEXEC_TASK_INDEX).
    #[arg(long, conflicts_with = "args_file")]
    args: Option<String>,
    /// Read the arguments from a file.
    #[arg(long)]
    args_file: Option<PathBuf>,
    /// An input file URL (repeatable); with one per task, task i reads file i.
    #[arg(long = "input-file", value_name = "URL")]
    input_files: Vec<String>,
    /// Replication level (PoCo trust): 0 or 1 run each task once.
    #[arg(long, default_value_t = 1)]
    trust: u64,
    /// Required worker features, e.g. `gpu` or `tee,scone`.
    #[arg(long, default_value = "")]
    tag: String,
    /// Category (its work clock sets the deadlines).
    #[arg(long, default_value_t = 0)]
    category: u64,
    /// Have results sealed for the requester (opened with --key-file when downloaded).
    #[arg(long)]
    encrypt: bool,
    /// The requester's key: a V3 keystore or a hex key file.
    #[arg(long, env = "XIEBAO_KEY_FILE")]
    key_file: PathBuf,
    /// File holding the keystore's password (else XIEBAO_PASSWORD or a prompt).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Where results go (default `xiebao-results/DEAL`): one folder per task, by index.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Spend without asking (on a terminal, `run` shows the total price and asks first).
    #[arg(long)]
    yes: bool,
    /// Print the deal and task ids and return without following the bag.
    #[arg(long)]
    no_watch: bool,
    /// Follow the bag without downloading results.
    #[arg(long)]
    no_download: bool,
    /// Largest result accepted per task, bytes: the download and what it unpacks to
    /// (default 1 GiB); a larger one fails that task only.
    #[arg(long, default_value_t = crate::common::RESULT_DOWNLOAD_MAX_BYTES)]
    result_max_bytes: u64,
    /// Give up following after this many seconds (the deal goes on).
    #[arg(long, default_value_t = 3_600)]
    timeout: u64,
    #[command(flatten)]
    endpoint: Endpoint,
}

#[allow(clippy::print_stdout, reason = "the command's output")]
pub(crate) fn run(args: &RunArgs) -> anyhow::Result<()> {
    let key = crate::common::signing_key(&args.key_file, args.password_file.as_deref())?;
    let tag: Tag = args.tag.parse().with_context(|| format!("--tag {:?}", args.tag))?;
    let app_args = match &args.args_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading --args-file {}", path.display()))?
            .trim_end()
            .to_owned(),
        None => args.args.clone().unwrap_or_default(),
    };
    let volume = args.volume.unwrap_or((args.input_files.len() as u64).max(1));
    if volume == 0 {
        bail!("--volume 0: a deal needs at least one task");
    }
    crate::common::client_runtime()?.block_on(async {
        let node = Node::connect(&args.endpoint.rpc).await?;
        let app = resolve(&node, Kind::App, &args.app).await?;
        let dataset = match &args.dataset {
            Some(text) => Some(resolve(&node, Kind::Dataset, text).await?),
            None => None,
        };
        let workerpool = match &args.workerpool {
            Some(text) => Some(resolve(&node, Kind::Workerpool, text).await?),
            None => None,
        };
    let request = RunRequest {
        app,
        dataset,
        workerpool,
        volume,
        args: app_args,
        input_files: args.input_files.clone(),
        trust: args.trust,
        tag,
        category: args.category,
        encrypt: args.encrypt,
    };
        let plan = xiebao_sdk::requester::plan(&node, &request, key.address()).await?;
        if !args.yes && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            eprint!(
                "spend {} for {} at {} each (app {}, workerpool {})? [y/N] ",
                format_rlc(plan.total),
                crate::common::count(volume, "task"),
                format_rlc(plan.per_task),
                args.app,
                plan.workerpool.workerpool
            );
            let mut answer = String::new();
            std::io::stdin().read_line(&mut answer)?;
            if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
                bail!("nothing spent: the run was not confirmed (--yes skips the question)");
            }
        }
        let run = plan.start(&node, &key).await?;
        let (deal, tasks) = (run.matched.deal, run.matched.tasks.clone());
        let workerpool = plan.workerpool.workerpool;
        if args.endpoint.json {
            println!("{}", serde_json::json!({ "deal": deal, "tasks": tasks, "price": plan.total, "workerpool": workerpool }));
        } else {
            println!(
                "deal {deal}: {} on workerpool {workerpool} for {}",
                crate::common::count(tasks.len() as u64, "task"),
                format_rlc(plan.total)
            );
            for (i, task) in tasks.iter().enumerate() {
                println!("  task {i}: {task}");
            }
        }
        if args.no_watch {
            return Ok(());
        }
        let out = args.out.clone().unwrap_or_else(|| PathBuf::from("xiebao-results").join(deal.to_string()));
        let progress = crate::common::Progress::new(args.endpoint.json, tasks.len() as u64);
        let options = FollowOptions {
            out: out.clone(),
            download: !args.no_download,
            result_max_bytes: args.result_max_bytes,
            timeout: Duration::from_secs(args.timeout),
        };
        let outcome = run.follow(&options, &progress).await?;
        progress.finish();
        let (done, failed) = (outcome.done, outcome.failed);
        if args.endpoint.json {
            println!("{}", serde_json::json!({ "deal": deal, "done": done, "failed": failed.iter().map(|(i, t, why)| serde_json::json!({ "index": i, "task": t, "why": why })).collect::<Vec<_>>(), "out": out }));
        } else {
            if !args.no_download {
                println!("{done} results verified and saved under {}", out.display());
            }
            for (index, task, why) in &failed {
                println!("task {index} ({task}) failed: {why}");
            }
        }
        if !failed.is_empty() {
            let named: Vec<String> =
                failed.iter().map(|(index, task, _)| format!("task {index} ({task})")).collect();
            bail!("{} of {} tasks failed: {}", failed.len(), tasks.len(), named.join(", "));
        }
        Ok(())
    })
}
