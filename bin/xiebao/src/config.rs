//! `--chain NAME` and the config file: named chain profiles holding a network's endpoints, and
//! `xiebao config show|set-chain`.
//!
//! The file is TOML, at `$XIEBAO_CONFIG`, else `$XDG_CONFIG_HOME/xiebao/config.toml`, else
//! `~/.config/xiebao/config.toml`:
//!
//! ```toml
//! default_chain = "testnet"
//!
//! [chains.testnet]
//! rpc = "http://10.0.0.5:8545"
//! scheduler = "ws://10.0.0.6:7000"
//! ethereum = "http://10.0.0.7:8545"
//! results = "http://10.0.0.6:8600"
//! ```
//!
//! A chain is chosen by `--chain NAME`, else `XIEBAO_CHAIN`, else the file's `default_chain`.
//! Each endpoint then comes from, first to last: its flag (`--rpc`), its environment variable
//! (`XIEBAO_RPC`), the chosen profile, the built-in default. The profile enters clap as the
//! default value of every argument reading that variable, so clap's own order (command line,
//! environment, default) is the whole precedence rule and `--help` shows the profile's value.
//! A chain named `devnet` is built in: the URLs of the devnet in `./xiebao-devnet` (the
//! default `--data-dir` of `xiebao devnet`), read from its `pids.json` or `devnet.json`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The RPC URL of a node on this machine (`xiebao node`'s usual port).
pub(crate) const DEFAULT_RPC: &str = "http://127.0.0.1:8545";
/// The mainchain (Ethereum) JSON-RPC URL of a development node on this machine.
pub(crate) const DEFAULT_ETHEREUM: &str = "http://127.0.0.1:8546";
/// The built-in chain read from a local devnet.
const DEVNET: &str = "devnet";
/// Where `xiebao devnet` keeps its network by default (its `--data-dir`).
const DEVNET_DIR: &str = "xiebao-devnet";

/// One endpoint a profile can set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// A node's JSON-RPC.
    Rpc,
    /// A workerpool's scheduler.
    Scheduler,
    /// The mainchain (Ethereum) JSON-RPC.
    Ethereum,
    /// A result store.
    Results,
}

impl Endpoint {
    /// Every endpoint, in the order they are shown.
    pub(crate) const ALL: [Endpoint; 4] =
        [Endpoint::Rpc, Endpoint::Scheduler, Endpoint::Ethereum, Endpoint::Results];

    /// Its key in a profile, and the name of its flag.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Endpoint::Rpc => "rpc",
            Endpoint::Scheduler => "scheduler",
            Endpoint::Ethereum => "ethereum",
            Endpoint::Results => "results",
        }
    }

    /// The environment variable that sets it.
    pub(crate) fn env(self) -> &'static str {
        match self {
            Endpoint::Rpc => "XIEBAO_RPC",
            Endpoint::Scheduler => "XIEBAO_SCHEDULER",
            Endpoint::Ethereum => "XIEBAO_ETHEREUM",
            Endpoint::Results => "XIEBAO_RESULTS",
        }
    }

    /// The value used when nothing sets it.
    pub(crate) fn default_value(self) -> Option<&'static str> {
        match self {
            Endpoint::Rpc => Some(DEFAULT_RPC),
            Endpoint::Ethereum => Some(DEFAULT_ETHEREUM),
            Endpoint::Scheduler | Endpoint::Results => None,
        }
    }
}

/// One named chain: its endpoints (any may be absent).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Profile {
    /// A node's JSON-RPC URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rpc: Option<String>,
    /// The workerpool scheduler's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scheduler: Option<String>,
    /// The mainchain (Ethereum) JSON-RPC URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ethereum: Option<String>,
    /// The result store's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) results: Option<String>,
}

impl Profile {
    /// The profile's value for `endpoint`.
    pub(crate) fn get(&self, endpoint: Endpoint) -> Option<&str> {
        match endpoint {
            Endpoint::Rpc => self.rpc.as_deref(),
            Endpoint::Scheduler => self.scheduler.as_deref(),
            Endpoint::Ethereum => self.ethereum.as_deref(),
            Endpoint::Results => self.results.as_deref(),
        }
    }
}

/// The config file's contents.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    /// The chain used when neither `--chain` nor `XIEBAO_CHAIN` names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) default_chain: Option<String>,
    /// The named chains.
    #[serde(default)]
    pub(crate) chains: BTreeMap<String, Profile>,
}

/// Where the config file is, and what decided it.
#[derive(Clone, Debug)]
pub(crate) struct Location {
    /// The file (it may not exist).
    pub(crate) path: PathBuf,
    /// `XIEBAO_CONFIG`, `XDG_CONFIG_HOME` or `HOME`.
    pub(crate) from: &'static str,
}

impl Location {
    /// The file's place from the environment; `None` without `HOME` or any other variable.
    pub(crate) fn find() -> Option<Location> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(path) = var("XIEBAO_CONFIG") {
            return Some(Location { path: PathBuf::from(path), from: "XIEBAO_CONFIG" });
        }
        // The XDG rule: a relative XDG_CONFIG_HOME is invalid and ignored.
        if let Some(dir) = var("XDG_CONFIG_HOME").map(PathBuf::from).filter(|d| d.is_absolute()) {
            return Some(Location {
                path: dir.join("xiebao").join("config.toml"),
                from: "XDG_CONFIG_HOME",
            });
        }
        var("HOME").map(|home| Location {
            path: PathBuf::from(home).join(".config").join("xiebao").join("config.toml"),
            from: "HOME",
        })
    }

    /// Reads and parses the file; an absent file is an empty one.
    ///
    /// # Errors
    /// The file cannot be read, or is not valid TOML of the expected shape (the message
    /// names the file and carries TOML's own, with the line and column).
    pub(crate) fn load(&self) -> anyhow::Result<ConfigFile> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.path.display())),
        };
        toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{}: not a valid xiebao config file: {}",
                self.path.display(),
                e.to_string().trim_end()
            )
        })
    }
}

/// What chose the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ChainSource {
    /// `--chain NAME`.
    Flag,
    /// `XIEBAO_CHAIN`.
    Env,
    /// The file's `default_chain`.
    FileDefault,
}

impl ChainSource {
    fn as_str(&self) -> &'static str {
        match self {
            ChainSource::Flag => "--chain",
            ChainSource::Env => "XIEBAO_CHAIN",
            ChainSource::FileDefault => "default_chain",
        }
    }
}

/// The chosen chain and its endpoints.
#[derive(Clone, Debug)]
pub(crate) struct Chain {
    /// Its name.
    pub(crate) name: String,
    /// What chose it.
    pub(crate) source: ChainSource,
    /// Where its endpoints were read: the config file, or a devnet's layout file.
    pub(crate) origin: PathBuf,
    /// Its endpoints.
    pub(crate) profile: Profile,
}

/// The config file and the chain chosen for this run.
#[derive(Clone, Debug)]
pub(crate) struct Selection {
    /// Where the config file is, if anywhere.
    pub(crate) location: Option<Location>,
    /// Its contents (empty when absent).
    pub(crate) file: ConfigFile,
    /// The chosen chain, if any.
    pub(crate) chain: Option<Chain>,
}

/// `--chain NAME` or `--chain=NAME` in the command line (before any `--`), the last one
/// winning as clap would have it.
fn chain_flag(args: &[OsString]) -> anyhow::Result<Option<String>> {
    let mut found = None;
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let Some(arg) = arg.to_str() else { continue };
        if arg == "--" {
            break;
        }
        if arg == "--chain" {
            let value = iter.next().and_then(|v| v.to_str()).filter(|v| !v.starts_with("--"));
            found = Some(value.context("--chain needs a chain name, e.g. --chain devnet")?);
        } else if let Some(value) = arg.strip_prefix("--chain=") {
            found = Some(value);
        }
    }
    Ok(found.map(str::to_owned))
}

/// Reads the config file and resolves the chain chosen by the command line `args` (the
/// process's arguments), `XIEBAO_CHAIN` or the file's `default_chain`.
///
/// # Errors
/// A malformed file, a chain the file does not have (naming the file and the chains it has),
/// a damaged devnet layout file.
pub(crate) fn select(args: &[OsString]) -> anyhow::Result<Selection> {
    let location = Location::find();
    let file = match &location {
        Some(location) => location.load()?,
        None => ConfigFile::default(),
    };
    let env = std::env::var("XIEBAO_CHAIN").ok().filter(|v| !v.is_empty());
    let chosen = match (chain_flag(args)?, env) {
        (Some(name), _) => Some((name, ChainSource::Flag)),
        (None, Some(name)) => Some((name, ChainSource::Env)),
        (None, None) => file.default_chain.clone().map(|name| (name, ChainSource::FileDefault)),
    };
    let chain = match chosen {
        None => None,
        Some((name, source)) => Some(resolve(&name, source, location.as_ref(), &file)?),
    };
    Ok(Selection { location, file, chain })
}

/// The profile named `name`: the file's, else the built-in devnet.
fn resolve(
    name: &str,
    source: ChainSource,
    location: Option<&Location>,
    file: &ConfigFile,
) -> anyhow::Result<Chain> {
    if let (Some(profile), Some(location)) = (file.chains.get(name), location) {
        return Ok(Chain {
            name: name.to_owned(),
            source,
            origin: location.path.clone(),
            profile: profile.clone(),
        });
    }
    if name == DEVNET {
        // The devnet of the current directory, named absolutely so that messages are clear.
        let dir = std::env::current_dir().map_or(PathBuf::from(DEVNET_DIR), |d| d.join(DEVNET_DIR));
        let (origin, profile) = devnet_profile(&dir)?;
        return Ok(Chain { name: name.to_owned(), source, origin, profile });
    }
    let chose = match source {
        ChainSource::Flag => format!("--chain {name}"),
        ChainSource::Env => format!("XIEBAO_CHAIN={name}"),
        ChainSource::FileDefault => format!("default_chain = {name:?}"),
    };
    let add = format!("add it with `xiebao config set-chain {name} --rpc URL`");
    let Some(location) = location else {
        bail!(
            "{chose}: no such chain: there is no config file (set HOME or XIEBAO_CONFIG) and the only built-in chain is {DEVNET}"
        );
    };
    let path = location.path.display();
    if !location.path.exists() {
        bail!(
            "{chose}: no such chain: the config file {path} does not exist and the only built-in chain is {DEVNET}; {add}"
        );
    }
    let names: Vec<&str> = file.chains.keys().map(String::as_str).collect();
    let has = if names.is_empty() {
        "it has no chains".to_owned()
    } else {
        format!("it has {}", names.join(", "))
    };
    bail!(
        "{chose}: no such chain in {path} ({has}; {DEVNET} is built in); {add}",
        path = location.path.display()
    )
}

/// The part of a running devnet's `pids.json` the profile needs.
#[derive(Deserialize)]
struct DevnetPids {
    rpc: Vec<String>,
    scheduler_url: String,
    results_url: String,
}

/// The part of a devnet's `devnet.json` the profile needs.
#[derive(Deserialize)]
struct DevnetLayout {
    rpc: Vec<String>,
    scheduler_listen: String,
    results_listen: String,
}

/// The devnet in `dir`: its URLs from `pids.json` (written while it runs), else from
/// `devnet.json` (its layout, kept when stopped); an empty profile when neither exists.
fn devnet_profile(dir: &Path) -> anyhow::Result<(PathBuf, Profile)> {
    let read = |name: &str| -> anyhow::Result<Option<(PathBuf, Vec<u8>)>> {
        let path = dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some((path, bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    };
    if let Some((path, bytes)) = read("pids.json")? {
        let pids: DevnetPids = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a devnet's pids file", path.display()))?;
        let profile = Profile {
            rpc: pids.rpc.first().cloned(),
            scheduler: Some(pids.scheduler_url),
            ethereum: None,
            results: Some(pids.results_url),
        };
        return Ok((path, profile));
    }
    if let Some((path, bytes)) = read("devnet.json")? {
        let layout: DevnetLayout = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a devnet's layout file", path.display()))?;
        let profile = Profile {
            rpc: layout.rpc.first().cloned(),
            scheduler: Some(format!("ws://{}", layout.scheduler_listen)),
            ethereum: None,
            results: Some(format!("http://{}", layout.results_listen)),
        };
        return Ok((path, profile));
    }
    Ok((dir.to_path_buf(), Profile::default()))
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

/// One endpoint's resolved value and where it came from.
#[derive(Debug, Serialize)]
struct Resolved {
    value: Option<String>,
    source: &'static str,
    env: &'static str,
}

/// Flag > environment > profile > built-in default, the order clap applies.
fn resolve_endpoint(endpoint: Endpoint, flag: Option<&String>, chain: Option<&Chain>) -> Resolved {
    let env = endpoint.env();
    let (value, source) = if let Some(flag) = flag {
        (Some(flag.clone()), "flag")
    } else if let Some(value) = std::env::var(env).ok().filter(|v| !v.is_empty()) {
        (Some(value), "env")
    } else if let Some(value) = chain.and_then(|c| c.profile.get(endpoint)) {
        (Some(value.to_owned()), "chain")
    } else if let Some(value) = endpoint.default_value() {
        (Some(value.to_owned()), "default")
    } else {
        (None, "unset")
    };
    Resolved { value, source, env }
}

/// Checks a chain name: letters, digits, `-` and `_` (a bare TOML key, a plain argument).
fn check_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        bail!("chain name {name:?}: use letters, digits, '-' and '_' only");
    }
    Ok(())
}

/// Checks an endpoint URL's scheme.
fn check_url(flag: &str, url: &str) -> anyhow::Result<()> {
    let schemes = ["http://", "https://", "ws://", "wss://"];
    if !schemes.iter().any(|s| url.starts_with(s)) || url.len() <= "ws://".len() {
        bail!("--{flag} {url}: expected an http://, https://, ws:// or wss:// URL");
    }
    Ok(())
}

/// Runs `xiebao config …`. `selection` is this run's (its error, for `show`).
pub(crate) fn run(
    command: &ConfigCommand,
    selection: anyhow::Result<Selection>,
) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Show { rpc, scheduler, ethereum, results, json } => {
            let flags = [rpc, scheduler, ethereum, results];
            show(&selection?, &flags.map(Option::as_ref), *json)
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
fn show(selection: &Selection, flags: &[Option<&String>; 4], json: bool) -> anyhow::Result<()> {
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
            "flag" => format!("--{key}"),
            "env" => r.env.to_owned(),
            "chain" => format!("chain {}", chain.map_or("", |c| c.name.as_str())),
            "default" => "built-in default".to_owned(),
            _ => format!("not set (--{key} or {})", r.env),
        };
        println!("{key:<10} {:<32} {from}", r.value.as_deref().unwrap_or("-"));
    }
    Ok(())
}

#[allow(clippy::print_stdout, reason = "the command's output")]
fn set_chain(name: &str, given: Profile, default: bool, json: bool) -> anyhow::Result<()> {
    check_name(name)?;
    for endpoint in Endpoint::ALL {
        if let Some(url) = given.get(endpoint) {
            check_url(endpoint.key(), url)?;
        }
    }
    let location = Location::find()
        .context("no place for the config file: set HOME, XDG_CONFIG_HOME or XIEBAO_CONFIG")?;
    let mut file = location.load()?;
    let existing = file.chains.get(name).cloned();
    if existing.is_none() && given.rpc.is_none() {
        bail!("chain {name} is new: give its node's URL with --rpc");
    }
    let old = existing.unwrap_or_default();
    let profile = Profile {
        rpc: given.rpc.or(old.rpc),
        scheduler: given.scheduler.or(old.scheduler),
        ethereum: given.ethereum.or(old.ethereum),
        results: given.results.or(old.results),
    };
    file.chains.insert(name.to_owned(), profile.clone());
    if default {
        file.default_chain = Some(name.to_owned());
    }
    let text = format!(
        "# xiebao's chains: `xiebao --chain NAME …`, `xiebao config show`, `xiebao config set-chain`.\n{}",
        toml::to_string_pretty(&file).context("writing the config as TOML")?
    );
    if let Some(dir) = location.path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Written beside and renamed, so a failed write never leaves half a file.
    let tmp = location.path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &location.path)
        .with_context(|| format!("replacing {}", location.path.display()))?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "file": location.path,
                "chain": name,
                "profile": profile,
                "default": file.default_chain.as_deref() == Some(name),
            })
        );
    } else {
        let default =
            if file.default_chain.as_deref() == Some(name) { " (the default)" } else { "" };
        println!("chain {name}{default} saved in {}", location.path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<OsString> {
        line.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn the_chain_flag_is_found_in_either_form_and_not_after_a_double_dash() {
        let check = |line: &str, want: Option<&str>| {
            assert_eq!(chain_flag(&args(line)).unwrap().as_deref(), want, "{line}");
        };
        check("xiebao account show 0x01 --chain testnet", Some("testnet"));
        check("xiebao --chain=a --chain b chain status", Some("b"));
        check("xiebao demo", None);
        check("xiebao run -- --chain x", None);
        let error = chain_flag(&args("xiebao demo --chain")).unwrap_err().to_string();
        assert!(error.contains("--chain needs a chain name"), "{error}");
    }

    #[test]
    fn a_devnet_layout_gives_the_devnet_profile() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(devnet_profile(dir.path()).unwrap().1, Profile::default());
        std::fs::write(
            dir.path().join("devnet.json"),
            r#"{"rpc":["http://127.0.0.1:1"],"scheduler_listen":"127.0.0.1:2","results_listen":"127.0.0.1:3","keys":{}}"#,
        )
        .unwrap();
        let (origin, profile) = devnet_profile(dir.path()).unwrap();
        assert_eq!(origin, dir.path().join("devnet.json"));
        assert_eq!(profile.rpc.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(profile.scheduler.as_deref(), Some("ws://127.0.0.1:2"));
        assert_eq!(profile.results.as_deref(), Some("http://127.0.0.1:3"));
        std::fs::write(
            dir.path().join("pids.json"),
            r#"{"rpc":["http://127.0.0.1:4"],"scheduler_url":"ws://127.0.0.1:5","results_url":"http://127.0.0.1:6","validators":[1]}"#,
        )
        .unwrap();
        let (origin, profile) = devnet_profile(dir.path()).unwrap();
        assert_eq!(origin, dir.path().join("pids.json"));
        assert_eq!(profile.rpc.as_deref(), Some("http://127.0.0.1:4"));
        std::fs::write(dir.path().join("pids.json"), "{").unwrap();
        let error = format!("{:#}", devnet_profile(dir.path()).unwrap_err());
        assert!(error.contains("pids.json: not a devnet's pids file"), "{error}");
    }

    #[test]
    fn names_and_urls_are_checked_with_the_rule() {
        assert!(check_name("test-net_2").is_ok());
        let error = check_name("a b").unwrap_err().to_string();
        assert_eq!(error, "chain name \"a b\": use letters, digits, '-' and '_' only");
        assert!(check_url("rpc", "https://x.example").is_ok());
        let error = check_url("rpc", "127.0.0.1:8545").unwrap_err().to_string();
        assert_eq!(
            error,
            "--rpc 127.0.0.1:8545: expected an http://, https://, ws:// or wss:// URL"
        );
    }
}
