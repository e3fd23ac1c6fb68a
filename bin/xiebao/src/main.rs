//! Run every Xiebao component from one binary: chain nodes, orders, wallet, demo, benchmarks.

mod account;
mod bench;
mod bridge;
mod chain;
mod common;
mod config;
mod demo;
mod devnet;
mod doctor;
mod order;
mod pool;
mod reference;
mod registry;
mod result;
mod run;
mod task;
mod wallet;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

/// Xiebao: a decentralized marketplace for off-chain computing.
#[derive(Debug, Parser)]
#[command(name = "xiebao", version, about)]
struct Cli {
    /// Take the endpoints (--rpc, --scheduler, --ethereum, --results) from this chain of the
    /// config file (`devnet` is built in: the devnet in ./xiebao-devnet, used by default while
    /// it runs); flags and their environment variables still win. See `xiebao config show`.
    #[arg(long, global = true, env = "XIEBAO_CHAIN", value_name = "NAME")]
    chain: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A whole network on this machine: validators, result store, a workerpool with its
    /// scheduler and workers, the demo apps; `--demo` runs a Bag-of-Tasks job through it.
    Devnet(devnet::DevnetArgs),
    /// Check what building, testing and running Xiebao need on this machine, and print the
    /// command that fixes each missing piece.
    Doctor(doctor::DoctorArgs),
    /// Run an app on the market's cheapest compatible workerpool and download the results.
    Run(run::RunArgs),
    /// Show a deal and why its tasks wait.
    #[command(subcommand)]
    Deal(task::DealCommand),
    /// Show a task: on chain, and why it is not finished yet.
    #[command(subcommand)]
    Task(task::TaskCommand),
    /// A task's result: download and verify it, seal or open one, compute the digest workers
    /// agree on.
    #[command(subcommand)]
    Result(result::ResultCommand),
    /// Create, import, list and show accounts (Ethereum V3 keystores).
    Wallet(wallet::WalletArgs),
    /// Balances and payments.
    #[command(subcommand)]
    Account(account::AccountCommand),
    /// Follow a transaction.
    #[command(subcommand)]
    Tx(account::TxCommand),
    /// Orders: the market's (publish, list, show, unpublish), on chain (cancel, presign), and
    /// offline tools (hash, sign, verify; EIP-712, iExec-compatible).
    #[command(subcommand)]
    Order(order::OrderCommand),
    /// Apps: deploy, list, show, transfer.
    #[command(subcommand)]
    App(registry::EntryCommand),
    /// Datasets: deploy, list, show, transfer.
    #[command(subcommand)]
    Dataset(registry::EntryCommand),
    /// Workerpools: deploy, list, show (with policies), transfer.
    #[command(subcommand)]
    Workerpool(registry::EntryCommand),
    /// Categories: the work clocks deadlines follow.
    #[command(subcommand)]
    Category(registry::CategoryCommand),
    /// Named chains (endpoints) in the config file, and where each endpoint comes from.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Ask a node about the chain.
    #[command(subcommand)]
    Chain(chain::ChainCommand),
    /// Move RLC between the mainchain (Ethereum) and the chain, and follow each transfer.
    #[command(subcommand)]
    Bridge(bridge::BridgeCommand),
    /// Run a workerpool's scheduler (holds the pool owner's key).
    Scheduler(pool::SchedulerArgs),
    /// Run a worker: join a pool, take replicates from its scheduler, compute, get paid.
    Worker(pool::WorkerArgs),
    /// Serve a result store, the service workers upload results to (for a task's result, see
    /// `xiebao result`).
    #[command(subcommand)]
    Results(result::ResultsCommand),
    /// Run a validator.
    Node(chain::NodeArgs),
    /// Run a whole network on 127.0.0.1, one process per validator.
    Localnet(chain::LocalnetArgs),
    /// Create a network's genesis file and validator keys.
    Genesis(chain::GenesisArgs),
    /// Play a deal through the protocol state machine alone (no network) and print who was
    /// paid what.
    Demo(demo::DemoArgs),
    /// Measure throughput and print it beside a same-run baseline.
    Bench(bench::BenchArgs),
    /// Print the command reference (Markdown, as in the README).
    Reference {
        /// Print JSON instead: every leaf command with its about, usage and options.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script: `xiebao completions bash > /etc/bash_completion.d/xiebao`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // The chain is chosen before clap parses, so that its endpoints become the defaults of the
    // arguments that read them (a flag, then its environment variable, still win).
    let selection = config::select(&args);
    let command = match &selection {
        Ok(selection) => config::with_profile(Cli::command(), selection),
        Err(_) => Cli::command(),
    };
    let cli = Cli::from_arg_matches(&command.get_matches_from(&args)).unwrap_or_else(|e| e.exit());
    // clap and the scan above must agree on the chain (`--chain NAME` given as another
    // option's value would fool the scan).
    let selection = selection.and_then(|selection| {
        let chosen = selection.chain.as_ref().map(|c| &c.name);
        match &cli.chain {
            Some(name) if chosen != Some(name) => anyhow::bail!(
                "--chain {name}: not found before the command ran (it chose {chosen:?}); give it as `--chain NAME` or XIEBAO_CHAIN"
            ),
            _ => Ok(selection),
        }
    });
    let result = match selection {
        // `config` reports a bad file or chain itself (`set-chain` does not need the chain).
        Err(error) if !matches!(cli.command, Command::Config(_)) => Err(error),
        selection => dispatch(&cli, selection),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            let message = describe(&error);
            eprintln!("error: {message}");
            if let Some(hint) = hint(&message) {
                eprintln!("hint: {hint}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs the command; `selection` is the config file and chain this run uses.
fn dispatch(cli: &Cli, selection: anyhow::Result<config::Selection>) -> anyhow::Result<()> {
    match &cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Order(command) => order::run(command),
        Command::Wallet(args) => wallet::run(args),
        Command::Bridge(command) => bridge::run(command),
        Command::Run(args) => run::run(args),
        Command::Reference { json } => {
            reference::print(*json);
            Ok(())
        }
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "xiebao", &mut script);
            // A closed pipe (`| head`) is not an error worth reporting.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            Ok(())
        }
        Command::Result(command) => result::run(command),
        Command::Results(command) => result::serve(command),
        Command::Genesis(args) => chain::genesis(args),
        Command::Node(args) => chain::node(args),
        Command::Localnet(args) => chain::localnet(args),
        Command::Chain(command) => chain::run(command),
        Command::Account(account::AccountCommand::Deposit(args)) => bridge::deposit(args),
        Command::Account(account::AccountCommand::Withdraw(args)) => bridge::withdraw(args),
        Command::Account(command) => account::run(command),
        Command::Tx(command) => account::run_tx(command),
        Command::Devnet(args) => devnet::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::App(command) => registry::run(registry::Registry::App, command),
        Command::Dataset(command) => registry::run(registry::Registry::Dataset, command),
        Command::Workerpool(command) => registry::run(registry::Registry::Workerpool, command),
        Command::Category(command) => registry::categories(command),
        Command::Deal(command) => task::run_deal(command),
        Command::Task(command) => task::run_task(command),
        Command::Scheduler(args) => pool::scheduler(args),
        Command::Worker(args) => pool::worker(args),
        Command::Config(command) => config::run(command, selection),
    }
}

/// An error and its causes as one line, `outer: inner: …`: a node's refusal as its message
/// (not the client library's debug form), and a cause whose text the line already holds
/// (errors that print their source themselves) only once.
fn describe(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let refusal = match cause.downcast_ref::<xiebao_rpc::jsonrpsee::core::ClientError>() {
            Some(xiebao_rpc::jsonrpsee::core::ClientError::Call(refusal)) => Some(refusal),
            _ => None,
        };
        let text = refusal.map_or_else(|| cause.to_string(), |r| r.message().to_owned());
        if parts.last().is_some_and(|last| last.contains(&text)) {
            continue;
        }
        parts.push(text);
        // A node's refusal is the end of the story: its sources repeat it in the library's form.
        if refusal.is_some() {
            break;
        }
    }
    parts.join(": ")
}

/// What to do next, for errors whose cause the user can fix.
fn hint(message: &str) -> Option<String> {
    let devnet = std::path::Path::new(xiebao_sdk::config::DEVNET_DIR);
    if message.contains("Connection refused") || message.contains("tcp connect error") {
        let here = if devnet.join("devnet.json").exists() {
            format!(
                "the devnet in ./{} is not running: start it again with `xiebao devnet --keep` (commands started here then use it)",
                devnet.display()
            )
        } else {
            "start a local network with `xiebao devnet --keep` and run commands from the directory you started it in (they use it while it runs; elsewhere `--chain devnet` from there, or the URLs it prints)".to_owned()
        };
        return Some(format!(
            "nothing answers at that address: {here}, or give the URL of a running node with --rpc (or XIEBAO_RPC, or a chain of the config file: --chain NAME, see `xiebao config show`)"
        ));
    }
    if message.contains("Invalid Url") || message.contains("invalid url") {
        return Some(
            "URLs name their scheme: --rpc http://HOST:PORT (a node), --scheduler ws://HOST:PORT, --results http://HOST:PORT".to_owned(),
        );
    }
    if message.contains("free;") && message.contains("need") {
        let faucet = devnet.join("chain").join("faucet.key");
        if faucet.exists() {
            return Some(format!(
                "on the devnet here, the faucet pays: xiebao account transfer --to ADDRESS --amount 100 --key-file {}",
                faucet.display()
            ));
        }
        return Some(
            "on a devnet, its faucet pays: xiebao account transfer --to ADDRESS --amount 100 --key-file DEVNET_DIR/chain/faucet.key".to_owned(),
        );
    }
    if message.contains("signature is unusable") && message.contains("not presigned") {
        return Some(
            "sign the order first: xiebao order sign FILE --key-file KEY > signed.json, then publish signed.json".to_owned(),
        );
    }
    None
}
