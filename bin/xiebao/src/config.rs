//! `--chain NAME` and the config file in the command line: the chosen chain's endpoints as the
//! default values of the arguments, and `xiebao config show|set-chain`.
//!
//! The file, the choice of a chain and the endpoints' precedence are `xiebao_sdk::config`'s
//! (see there): a chain is chosen by `--chain NAME`, else `XIEBAO_CHAIN`, else the file's
//! `default_chain`; each endpoint then comes from, first to last, its flag (`--rpc`), its
//! environment variable (`XIEBAO_RPC`), the chosen profile, the built-in default. The profile
//! enters clap as the default value of every argument reading that variable, so clap's own
//! order (command line, environment, default) is the whole precedence rule and `--help` shows
//! the profile's value.

use std::collections::BTreeMap;
use std::ffi::OsString;

pub(crate) use xiebao_sdk::config::Selection;
use xiebao_sdk::config::{Endpoint, EndpointSource, Profile, Resolved, resolve_endpoint};

/// Reads the config file and resolves the chain chosen by the command line `args`,
/// `XIEBAO_CHAIN` or the file's `default_chain` (see [`xiebao_sdk::config::select`]).
///
/// # Errors
/// A malformed file, a chain the file does not have (naming the file and the chains it has),
/// a damaged devnet layout file.
pub(crate) fn select(args: &[OsString]) -> anyhow::Result<Selection> {
    Ok(xiebao_sdk::config::select(args)?)
}

/// `command` with the chosen profile's endpoints as the default values of every argument
/// reading their environment variables (so a flag, then the variable, still come first).
pub(crate) fn with_profile(command: clap::Command, selection: &Selection) -> clap::Command {
    let Some(chain) = &selection.chain else { return command };
    let defaults: Vec<(&'static str, &'static str)> = Endpoint::ALL
        .iter()
        .filter_map(|e| {
            // clap (without its `string` feature) keeps default values as `&'static str`;
            // these few short URLs live as long as the process anyway.
            let value: &'static str = Box::leak(chain.profile.get(*e)?.to_owned().into_boxed_str());
            Some((e.env(), value))
        })
        .collect();
    set_defaults(command, &defaults)
}

fn set_defaults(
    command: clap::Command,
    defaults: &[(&'static str, &'static str)],
) -> clap::Command {
    command
        .mut_args(|arg| {
            let value = arg
                .get_env()
                .and_then(|env| defaults.iter().find(|(name, _)| env == *name))
                .map(|(_, value)| *value);
            match value {
                // A required argument with a default is refused by clap: the default fills it.
                Some(value) => arg.default_value(value).required(false),
                None => arg,
            }
        })
        .mut_subcommands(|sub| set_defaults(sub, defaults))
}

/// `xiebao config …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ConfigCommand {
    /// The config file, the chosen chain, and each endpoint with where its value came from
    /// (flag, environment, chain profile or built-in default).
    Show {
        /// An RPC URL as a command would be given it (to see it win).
        #[arg(long)]
        rpc: Option<String>,
        /// A scheduler URL as a command would be given it.
        #[arg(long)]
        scheduler: Option<String>,
        /// A mainchain URL as a command would be given it.
        #[arg(long)]
        ethereum: Option<String>,
        /// A result store URL as a command would be given it.
        #[arg(long)]
        results: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add or change a named chain in the config file (creating it); endpoints not given
    /// are kept. The file is rewritten: comments in it are not kept.
    SetChain {
        /// The chain's name (letters, digits, `-` and `_`).
        name: String,
        /// A node's JSON-RPC URL (required for a new chain).
        #[arg(long)]
        rpc: Option<String>,
        /// The workerpool scheduler's URL (`ws://…`).
        #[arg(long)]
        scheduler: Option<String>,
        /// The mainchain (Ethereum) JSON-RPC URL.
        #[arg(long)]
        ethereum: Option<String>,
        /// The result store's URL.
        #[arg(long)]
        results: Option<String>,
        /// Make it the default chain (`default_chain`).
        #[arg(long)]
        default: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `xiebao config …`. `selection` is this run's (its error, for `show`).
pub(crate) fn run(
    command: &ConfigCommand,
    selection: anyhow::Result<Selection>,
) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Show { rpc, scheduler, ethereum, results, json } => {
            let flags = [rpc, scheduler, ethereum, results];
            show(&selection?, &flags.map(Option::as_deref), *json)
        }
        ConfigCommand::SetChain { name, rpc, scheduler, ethereum, results, default, json } => {
            let given = Profile {
                rpc: rpc.clone(),
                scheduler: scheduler.clone(),
                ethereum: ethereum.clone(),
                results: results.clone(),
            };
            set_chain(name, given, *default, *json)
        }
    }
}

#[allow(clippy::print_stdout, reason = "the command's output")]
fn show(selection: &Selection, flags: &[Option<&str>; 4], json: bool) -> anyhow::Result<()> {
    let chain = selection.chain.as_ref();
    let endpoints: Vec<(&str, Resolved)> = Endpoint::ALL
        .iter()
        .zip(flags)
        .map(|(e, flag)| (e.key(), resolve_endpoint(*e, *flag, chain)))
        .collect();
    let location = selection.location.as_ref();
    if json {
        let summary = serde_json::json!({
            "file": location.map(|l| &l.path),
            "file_from": location.map(|l| l.from),
            "file_exists": location.is_some_and(|l| l.path.exists()),
            "default_chain": selection.file.default_chain,
            "chains": selection.file.chains.keys().collect::<Vec<_>>(),
            "chain": chain.map(|c| serde_json::json!({
                "name": c.name,
                "from": c.source.as_str(),
                "origin": c.origin,
                "origin_exists": c.origin.is_file(),
            })),
            "endpoints": endpoints.iter().map(|(k, r)| (*k, r)).collect::<BTreeMap<_, _>>(),
        });
        println!("{summary}");
        return Ok(());
    }
    match location {
        Some(l) => {
            let state = if l.path.exists() { "" } else { "; absent" };
            println!("config file: {} (from {}{state})", l.path.display(), l.from);
        }
        None => println!("config file: none (set HOME or XIEBAO_CONFIG)"),
    }
    let names: Vec<&str> = selection.file.chains.keys().map(String::as_str).collect();
    println!(
        "chains: {}{}",
        if names.is_empty() { "none".to_owned() } else { names.join(", ") },
        selection
            .file
            .default_chain
            .as_ref()
            .map(|d| format!(" (default {d})"))
            .unwrap_or_default()
    );
    match chain {
        Some(c) if !c.origin.is_file() => println!(
            "chain: {} (from {}; no devnet in {} yet: start one there with `xiebao devnet --keep`)",
            c.name,
            c.source.as_str(),
            c.origin.display()
        ),
        Some(c) => {
            println!(
                "chain: {} (from {}; endpoints from {})",
                c.name,
                c.source.as_str(),
                c.origin.display()
            )
        }
        None => println!("chain: none (give --chain NAME, XIEBAO_CHAIN or default_chain)"),
    }
    for (key, r) in &endpoints {
        let from = match r.source {
            EndpointSource::Flag => format!("--{key}"),
            EndpointSource::Env => r.env.to_owned(),
            EndpointSource::Chain => format!("chain {}", chain.map_or("", |c| c.name.as_str())),
            EndpointSource::Default => "built-in default".to_owned(),
            EndpointSource::Unset => format!("not set (--{key} or {})", r.env),
        };
        println!("{key:<10} {:<32} {from}", r.value.as_deref().unwrap_or("-"));
    }
    Ok(())
}

#[allow(clippy::print_stdout, reason = "the command's output")]
fn set_chain(name: &str, given: Profile, default: bool, json: bool) -> anyhow::Result<()> {
    let saved = xiebao_sdk::config::set_chain(name, given, default)?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "file": saved.path,
                "chain": name,
                "profile": saved.profile,
                "default": saved.is_default,
            })
        );
    } else {
        let default = if saved.is_default { " (the default)" } else { "" };
        println!("chain {name}{default} saved in {}", saved.path.display());
    }
    Ok(())
}
