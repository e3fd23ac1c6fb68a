//! Run an app by name on the market's cheapest compatible workerpool and download every
//! result as its task completes: the requester's flow of `xiebao run`, as a front end uses it.
//!
//! Against a local devnet (`xiebao devnet --keep` in another terminal, from the directory
//! that then holds `xiebao-devnet/`):
//!
//! ```text
//! RPC=$(jq -r '.rpc[0]' xiebao-devnet/devnet.json)
//! cargo run -p xiebao-sdk --example run_app -- mandelbrot "64 64 2 2 50" 4 \
//!   xiebao-devnet/keys/requester.key "$RPC" results
//! ```
//!
//! It prints the plan (orders chosen, price), the deal and its tasks, a line per task as it
//! ends, and where the results are, e.g.:
//!
//! ```text
//! 4 tasks of 0x4ae9…943c on workerpool 0xfa2d…bbed: 0.12 RLC
//! deal 0x9ecb…50ef: 4 tasks
//! task done (1 of 4)
//! …
//! 4 results verified under results
//! ```

#![allow(clippy::print_stdout, reason = "an example prints what it does")]

use std::cell::Cell;
use std::time::Duration;

use xiebao_sdk::client::Node;
use xiebao_sdk::requester::{self, BagObserver, FollowOptions, Kind, RunRequest, format_rlc};

/// Prints a line as each task ends.
struct Lines {
    total: usize,
    ended: Cell<usize>,
}

impl BagObserver for Lines {
    fn done(&self) {
        self.ended.set(self.ended.get() + 1);
        println!("task done ({} of {})", self.ended.get(), self.total);
    }

    fn failed(&self) {
        self.ended.set(self.ended.get() + 1);
        println!("task failed ({} of {})", self.ended.get(), self.total);
    }

    fn waiting(&self, _tasks: &[xiebao_rpc::pool::TaskView]) {}
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [app, app_args, volume, key_file, rpc, out] = args.as_slice() else {
        return Err("usage: run_app APP ARGS VOLUME KEY_FILE RPC_URL OUT_DIR".into());
    };
    let key = xiebao_sdk::wallet::load_key(std::path::Path::new(key_file), None)?;
    let node = Node::connect(rpc).await?;
    let request = RunRequest {
        app: requester::resolve(&node, Kind::App, app).await?,
        dataset: None,
        workerpool: None,
        volume: volume.parse()?,
        args: app_args.clone(),
        input_files: Vec::new(),
        trust: 1,
        tag: xiebao_types::Tag::NONE,
        category: 0,
        encrypt: false,
    };
    let plan = requester::plan(&node, &request, key.address()).await?;
    println!(
        "{} tasks of {} on workerpool {}: {}",
        request.volume,
        request.app,
        plan.workerpool.workerpool,
        format_rlc(plan.total)
    );
    let run = plan.start(&node, &key).await?;
    println!("deal {}: {} tasks", run.matched.deal, run.matched.tasks.len());
    let lines = Lines { total: run.matched.tasks.len(), ended: Cell::new(0) };
    let options = FollowOptions {
        out: out.into(),
        download: true,
        result_max_bytes: xiebao_sdk::download::RESULT_DOWNLOAD_MAX_BYTES,
        timeout: Duration::from_secs(600),
    };
    let outcome = run.follow(&options, &lines).await?;
    println!("{} results verified under {out}", outcome.saved.len());
    for (index, task, why) in &outcome.failed {
        println!("task {index} ({task}) failed: {why}");
    }
    Ok(())
}
