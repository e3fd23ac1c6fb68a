//! Resolve a network's endpoints from named chains: the config file, the built-in `devnet`
//! chain, and the order in which a flag, the environment, a chain and a default apply.
//!
//! The file is TOML, at `$XIEBAO_CONFIG`, else `$XDG_CONFIG_HOME/xiebao/config.toml`, else
//! `~/.config/xiebao/config.toml` ([`Location::find`]):
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
//! A chain is chosen by `--chain NAME`, else `XIEBAO_CHAIN`, else the file's `default_chain`
//! ([`select`]). Each endpoint then comes from, first to last: its flag (`--rpc`), its
//! environment variable (`XIEBAO_RPC`), the chosen profile, the built-in default
//! ([`resolve_endpoint`]). A chain named `devnet` is built in: the URLs of the devnet in
//! `./xiebao-devnet` (the default `--data-dir` of `xiebao devnet`), read from its `pids.json`
//! or `devnet.json`.
//!
//! **Boundary:** no command-line parser and no printing here: `xiebao` turns a [`Selection`]
//! into its arguments' defaults and shows it (`xiebao config show`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The RPC URL of a node on this machine (`xiebao node`'s usual port).
pub const DEFAULT_RPC: &str = "http://127.0.0.1:8545";
/// The mainchain (Ethereum) JSON-RPC URL of a development node on this machine.
pub const DEFAULT_ETHEREUM: &str = "http://127.0.0.1:8546";
/// The built-in chain read from a local devnet.
pub const DEVNET: &str = "devnet";
/// Where `xiebao devnet` keeps its network by default (its `--data-dir`).
pub const DEVNET_DIR: &str = "xiebao-devnet";

/// Why the configuration could not be read, written or resolved. Each message names the file,
/// the variable or the flag to change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A file (the config file, a devnet's) exists but cannot be read.
    #[error("reading {}: {detail}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The system's reason.
        detail: String,
    },
    /// The config file is not TOML of the expected shape.
    #[error("{}: not a valid xiebao config file: {detail}", .path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// TOML's message, with the line and column.
        detail: String,
    },
    /// A devnet's `pids.json` cannot be parsed.
    #[error("{}: not a devnet's pids file: {detail}", .path.display())]
    DevnetPids {
        /// The file.
        path: PathBuf,
        /// The JSON parser's message.
        detail: String,
    },
    /// A devnet's `devnet.json` cannot be parsed.
    #[error("{}: not a devnet's layout file: {detail}", .path.display())]
    DevnetLayout {
        /// The file.
        path: PathBuf,
        /// The JSON parser's message.
        detail: String,
    },
    /// `--chain` is the last argument, or followed by another option.
    #[error("--chain needs a chain name, e.g. --chain devnet")]
    MissingChainName,
    /// The chosen chain is not built in, and there is no place for a config file.
    #[error(
        "{}: no such chain: there is no config file (set HOME or XIEBAO_CONFIG) and the only built-in chain is {DEVNET}",
        .from.chose(.name)
    )]
    NoConfigFile {
        /// The chain asked for.
        name: String,
        /// What asked for it.
        from: ChainSource,
    },
    /// The chosen chain is not built in, and the config file does not exist.
    #[error(
        "{}: no such chain: the config file {} does not exist and the only built-in chain is {DEVNET}; add it with `xiebao config set-chain {name} --rpc URL`",
        .from.chose(.name),
        .path.display()
    )]
    AbsentConfigFile {
        /// The chain asked for.
        name: String,
        /// What asked for it.
        from: ChainSource,
        /// Where the config file would be.
        path: PathBuf,
    },
    /// The chosen chain is neither built in nor in the config file.
    #[error(
        "{}: no such chain in {} ({}; {DEVNET} is built in); add it with `xiebao config set-chain {name} --rpc URL`",
        .from.chose(.name),
        .path.display(),
        has_chains(.chains)
    )]
    UnknownChain {
        /// The chain asked for.
        name: String,
        /// What asked for it.
        from: ChainSource,
        /// The config file.
        path: PathBuf,
        /// The chains it has.
        chains: Vec<String>,
    },
    /// A chain name that is not a bare TOML key.
    #[error("chain name {name:?}: use letters, digits, '-' and '_' only")]
    BadName {
        /// The name given.
        name: String,
    },
    /// An endpoint URL without an http(s) or ws(s) scheme.
    #[error("--{} {url}: expected an http://, https://, ws:// or wss:// URL", .endpoint.key())]
    BadUrl {
        /// The endpoint it was given for.
        endpoint: Endpoint,
        /// The URL given.
        url: String,
    },
    /// No environment variable gives the config file a place.
    #[error("no place for the config file: set HOME, XDG_CONFIG_HOME or XIEBAO_CONFIG")]
    NoLocation,
    /// A new chain was given without its node's URL.
    #[error("chain {name} is new: give its node's URL with --rpc")]
    NewChainWithoutRpc {
        /// The chain's name.
        name: String,
    },
    /// The config cannot be written as TOML.
    #[error("writing the config as TOML: {detail}")]
    Serialize {
        /// TOML's message.
        detail: String,
    },
    /// The config file, or its folder, cannot be written; `action` says which step failed.
    #[error("{action} {}: {detail}", .path.display())]
    Write {
        /// `creating` (the folder), `writing` (the file beside) or `replacing` (the rename).
        action: &'static str,
        /// The folder or file.
        path: PathBuf,
        /// The system's reason.
        detail: String,
    },
}

/// "it has a, b" or "it has no chains".
fn has_chains(chains: &[String]) -> String {
    if chains.is_empty() {
        "it has no chains".to_owned()
    } else {
        format!("it has {}", chains.join(", "))
    }
}

/// One endpoint a profile can set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
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
    pub const ALL: [Endpoint; 4] =
        [Endpoint::Rpc, Endpoint::Scheduler, Endpoint::Ethereum, Endpoint::Results];

    /// Its key in a profile, and the name of its flag.
    pub fn key(self) -> &'static str {
        match self {
            Endpoint::Rpc => "rpc",
            Endpoint::Scheduler => "scheduler",
            Endpoint::Ethereum => "ethereum",
            Endpoint::Results => "results",
        }
    }

    /// The environment variable that sets it.
    pub fn env(self) -> &'static str {
        match self {
            Endpoint::Rpc => "XIEBAO_RPC",
            Endpoint::Scheduler => "XIEBAO_SCHEDULER",
            Endpoint::Ethereum => "XIEBAO_ETHEREUM",
            Endpoint::Results => "XIEBAO_RESULTS",
        }
    }

    /// The value used when nothing sets it.
    pub fn default_value(self) -> Option<&'static str> {
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
pub struct Profile {
    /// A node's JSON-RPC URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc: Option<String>,
    /// The workerpool scheduler's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<String>,
    /// The mainchain (Ethereum) JSON-RPC URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ethereum: Option<String>,
    /// The result store's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<String>,
}

impl Profile {
    /// The profile's value for `endpoint`.
    pub fn get(&self, endpoint: Endpoint) -> Option<&str> {
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
pub struct ConfigFile {
    /// The chain used when neither `--chain` nor `XIEBAO_CHAIN` names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_chain: Option<String>,
    /// The named chains.
    #[serde(default)]
    pub chains: BTreeMap<String, Profile>,
}

/// Where the config file is, and what decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file (it may not exist).
    pub path: PathBuf,
    /// `XIEBAO_CONFIG`, `XDG_CONFIG_HOME` or `HOME`.
    pub from: &'static str,
}

impl Location {
    /// The file's place from the environment; `None` without `HOME` or any other variable.
    pub fn find() -> Option<Location> {
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
    /// [`ConfigError::Read`] when the file cannot be read, [`ConfigError::Malformed`] when it
    /// is not valid TOML of the expected shape (carrying TOML's message, with the line and
    /// column).
    pub fn load(&self) -> Result<ConfigFile, ConfigError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
            Err(e) => {
                return Err(ConfigError::Read { path: self.path.clone(), detail: e.to_string() });
            }
        };
        toml::from_str(&text).map_err(|e| ConfigError::Malformed {
            path: self.path.clone(),
            detail: e.to_string().trim_end().to_owned(),
        })
    }

    /// Writes `file` here, under a comment naming the commands that use it, creating the
    /// folder. The file is written beside and renamed, so a failed write never leaves half a
    /// file; comments of an earlier file are not kept.
    ///
    /// # Errors
    /// [`ConfigError::Serialize`] when `file` cannot be written as TOML, [`ConfigError::Write`]
    /// when the folder or the file cannot be written.
    pub fn save(&self, file: &ConfigFile) -> Result<(), ConfigError> {
        let text = format!(
            "# xiebao's chains: `xiebao --chain NAME …`, `xiebao config show`, `xiebao config set-chain`.\n{}",
            toml::to_string_pretty(file)
                .map_err(|e| ConfigError::Serialize { detail: e.to_string() })?
        );
        let failed = |action, path: &Path, e: std::io::Error| ConfigError::Write {
            action,
            path: path.to_owned(),
            detail: e.to_string(),
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| failed("creating", dir, e))?;
        }
        let tmp = self.path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).map_err(|e| failed("writing", &tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| failed("replacing", &self.path, e))
    }
}

/// What chose the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainSource {
    /// `--chain NAME`.
    Flag,
    /// `XIEBAO_CHAIN`.
    Env,
    /// The file's `default_chain`.
    FileDefault,
    /// Nothing named a chain, and a devnet runs in `./xiebao-devnet`.
    RunningDevnet,
}

impl ChainSource {
    /// The flag, variable or key: `--chain`, `XIEBAO_CHAIN` or `default_chain`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChainSource::Flag => "--chain",
            ChainSource::Env => "XIEBAO_CHAIN",
            ChainSource::FileDefault => "default_chain",
            ChainSource::RunningDevnet => "the devnet running in ./xiebao-devnet",
        }
    }

    /// How `name` was given, as the user wrote it (`--chain testnet`, `XIEBAO_CHAIN=testnet`,
    /// `default_chain = "testnet"`).
    fn chose(self, name: &str) -> String {
        match self {
            ChainSource::Flag => format!("--chain {name}"),
            ChainSource::Env => format!("XIEBAO_CHAIN={name}"),
            ChainSource::FileDefault => format!("default_chain = {name:?}"),
            ChainSource::RunningDevnet => format!("{name} (running in ./{DEVNET_DIR})"),
        }
    }
}

/// The chosen chain and its endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    /// Its name.
    pub name: String,
    /// What chose it.
    pub source: ChainSource,
    /// Where its endpoints were read: the config file, or a devnet's layout file.
    pub origin: PathBuf,
    /// Its endpoints.
    pub profile: Profile,
}

/// The config file and the chain chosen for this run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// Where the config file is, if anywhere.
    pub location: Option<Location>,
    /// Its contents (empty when absent).
    pub file: ConfigFile,
    /// The chosen chain, if any.
    pub chain: Option<Chain>,
}

/// `--chain NAME` or `--chain=NAME` in the command line (before any `--`), the last one
/// winning as clap would have it.
fn chain_flag(args: &[OsString]) -> Result<Option<String>, ConfigError> {
    let mut found = None;
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let Some(arg) = arg.to_str() else { continue };
        if arg == "--" {
            break;
        }
        if arg == "--chain" {
            let value = iter.next().and_then(|v| v.to_str()).filter(|v| !v.starts_with("--"));
            found = Some(value.ok_or(ConfigError::MissingChainName)?);
        } else if let Some(value) = arg.strip_prefix("--chain=") {
            found = Some(value);
        }
    }
    Ok(found.map(str::to_owned))
}

/// Reads the config file and resolves the chain chosen by the command line `args` (the
/// process's arguments, the program's name first), `XIEBAO_CHAIN` or the file's
/// `default_chain`.
///
/// # Errors
/// A malformed file, `--chain` without a name, a chain the file does not have (naming the
/// file and the chains it has), a damaged devnet layout file.
pub fn select(args: &[OsString]) -> Result<Selection, ConfigError> {
    let location = Location::find();
    let file = match &location {
        Some(location) => location.load()?,
        None => ConfigFile::default(),
    };
    let env = std::env::var("XIEBAO_CHAIN").ok().filter(|v| !v.is_empty());
    let chosen = match (chain_flag(args)?, env) {
        (Some(name), _) => Some((name, ChainSource::Flag)),
        (None, Some(name)) => Some((name, ChainSource::Env)),
        (None, None) => match file.default_chain.clone() {
            Some(name) => Some((name, ChainSource::FileDefault)),
            // A devnet running in this directory serves the commands started here.
            None => std::env::current_dir()
                .is_ok_and(|dir| devnet_running(&dir.join(DEVNET_DIR)))
                .then(|| (DEVNET.to_owned(), ChainSource::RunningDevnet)),
        },
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
) -> Result<Chain, ConfigError> {
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
    let name = name.to_owned();
    let Some(location) = location else {
        return Err(ConfigError::NoConfigFile { name, from: source });
    };
    let path = location.path.clone();
    if !path.exists() {
        return Err(ConfigError::AbsentConfigFile { name, from: source, path });
    }
    let chains = file.chains.keys().cloned().collect();
    Err(ConfigError::UnknownChain { name, from: source, path, chains })
}

/// The part of a running devnet's `pids.json` the profile needs.
#[derive(Deserialize)]
struct DevnetPids {
    /// The `xiebao devnet` process (absent in files older than it).
    #[serde(default)]
    supervisor: Option<u32>,
    #[serde(default)]
    validators: Vec<u32>,
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

/// Whether the devnet in `dir` runs: its `pids.json` names a live `xiebao devnet` process (or,
/// in files written before that was recorded, a live validator). Linux: `/proc/PID`.
pub fn devnet_running(dir: &Path) -> bool {
    let Ok(bytes) = std::fs::read(dir.join("pids.json")) else {
        return false;
    };
    let Ok(pids) = serde_json::from_slice::<DevnetPids>(&bytes) else {
        return false;
    };
    match pids.supervisor {
        Some(pid) => process_alive(pid),
        None => pids.validators.iter().copied().any(process_alive),
    }
}

/// Whether process `pid` runs on this machine (Linux: `/proc/PID` exists).
pub fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The devnet in `dir`: its URLs from `pids.json` (written while it runs), else from
/// `devnet.json` (its layout, kept when stopped); an empty profile, and `dir` as the origin,
/// when neither exists.
///
/// # Errors
/// A file that exists but cannot be read or parsed ([`ConfigError::Read`],
/// [`ConfigError::DevnetPids`], [`ConfigError::DevnetLayout`]).
pub fn devnet_profile(dir: &Path) -> Result<(PathBuf, Profile), ConfigError> {
    let read = |name: &str| -> Result<Option<(PathBuf, Vec<u8>)>, ConfigError> {
        let path = dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some((path, bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ConfigError::Read { path, detail: e.to_string() }),
        }
    };
    if let Some((path, bytes)) = read("pids.json")? {
        let pids: DevnetPids = serde_json::from_slice(&bytes)
            .map_err(|e| ConfigError::DevnetPids { path: path.clone(), detail: e.to_string() })?;
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
            .map_err(|e| ConfigError::DevnetLayout { path: path.clone(), detail: e.to_string() })?;
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

/// Where an endpoint's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointSource {
    /// Its flag (`--rpc`).
    Flag,
    /// Its environment variable (`XIEBAO_RPC`).
    Env,
    /// The chosen chain's profile.
    Chain,
    /// The built-in default.
    Default,
    /// Nothing: the endpoint has no value.
    Unset,
}

/// One endpoint's resolved value and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Resolved {
    /// The value, if anything set it.
    pub value: Option<String>,
    /// What set it.
    pub source: EndpointSource,
    /// The environment variable that would set it.
    pub env: &'static str,
}

/// `endpoint`'s value: `flag`, else its environment variable, else `chain`'s profile, else
/// the built-in default (the order `xiebao`'s arguments apply).
pub fn resolve_endpoint(endpoint: Endpoint, flag: Option<&str>, chain: Option<&Chain>) -> Resolved {
    let env = endpoint.env();
    let (value, source) = if let Some(flag) = flag {
        (Some(flag.to_owned()), EndpointSource::Flag)
    } else if let Some(value) = std::env::var(env).ok().filter(|v| !v.is_empty()) {
        (Some(value), EndpointSource::Env)
    } else if let Some(value) = chain.and_then(|c| c.profile.get(endpoint)) {
        (Some(value.to_owned()), EndpointSource::Chain)
    } else if let Some(value) = endpoint.default_value() {
        (Some(value.to_owned()), EndpointSource::Default)
    } else {
        (None, EndpointSource::Unset)
    };
    Resolved { value, source, env }
}

/// Checks a chain name: letters, digits, `-` and `_` (a bare TOML key, a plain argument).
///
/// # Errors
/// [`ConfigError::BadName`] for any other name, or an empty one.
pub fn check_name(name: &str) -> Result<(), ConfigError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(ConfigError::BadName { name: name.to_owned() });
    }
    Ok(())
}

/// Checks an endpoint URL's scheme.
///
/// # Errors
/// [`ConfigError::BadUrl`] unless it starts with `http://`, `https://`, `ws://` or `wss://`
/// and has something after it.
pub fn check_url(endpoint: Endpoint, url: &str) -> Result<(), ConfigError> {
    let schemes = ["http://", "https://", "ws://", "wss://"];
    if !schemes.iter().any(|s| url.starts_with(s)) || url.len() <= "ws://".len() {
        return Err(ConfigError::BadUrl { endpoint, url: url.to_owned() });
    }
    Ok(())
}

/// What [`set_chain`] saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Saved {
    /// The config file written.
    pub path: PathBuf,
    /// The chain's endpoints now.
    pub profile: Profile,
    /// Whether it is the file's `default_chain`.
    pub is_default: bool,
}

/// Adds or changes the chain `name` in the config file (creating it): the endpoints `given`
/// replace the chain's, the others are kept; `default` makes it the `default_chain`.
///
/// # Errors
/// A bad name or URL (checked before the file is read), no place for the file, a malformed
/// file, a new chain without its node's URL, a failed write.
pub fn set_chain(name: &str, given: Profile, default: bool) -> Result<Saved, ConfigError> {
    check_name(name)?;
    for endpoint in Endpoint::ALL {
        if let Some(url) = given.get(endpoint) {
            check_url(endpoint, url)?;
        }
    }
    let location = Location::find().ok_or(ConfigError::NoLocation)?;
    let mut file = location.load()?;
    let existing = file.chains.get(name).cloned();
    if existing.is_none() && given.rpc.is_none() {
        return Err(ConfigError::NewChainWithoutRpc { name: name.to_owned() });
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
    location.save(&file)?;
    let is_default = file.default_chain.as_deref() == Some(name);
    Ok(Saved { path: location.path, profile, is_default })
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
        assert_eq!(chain_flag(&args("xiebao demo --chain")), Err(ConfigError::MissingChainName));
        assert_eq!(
            ConfigError::MissingChainName.to_string(),
            "--chain needs a chain name, e.g. --chain devnet"
        );
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
        let error = devnet_profile(dir.path()).unwrap_err().to_string();
        assert!(error.contains("pids.json: not a devnet's pids file"), "{error}");
    }

    #[test]
    fn names_and_urls_are_checked_with_the_rule() {
        assert!(check_name("test-net_2").is_ok());
        let error = check_name("a b").unwrap_err().to_string();
        assert_eq!(error, "chain name \"a b\": use letters, digits, '-' and '_' only");
        assert!(check_url(Endpoint::Rpc, "https://x.example").is_ok());
        let error = check_url(Endpoint::Rpc, "127.0.0.1:8545").unwrap_err().to_string();
        assert_eq!(
            error,
            "--rpc 127.0.0.1:8545: expected an http://, https://, ws:// or wss:// URL"
        );
    }

    #[test]
    fn an_unknown_chain_is_named_as_it_was_chosen_with_the_file_and_its_chains() {
        let location = Location { path: PathBuf::from("/nowhere/config.toml"), from: "HOME" };
        let check = |source, location: Option<&Location>, file: &ConfigFile, want: &str| {
            let error = resolve("mainnet", source, location, file).unwrap_err();
            assert_eq!(error.to_string(), want);
        };
        let empty = ConfigFile::default();
        check(
            ChainSource::Flag,
            None,
            &empty,
            "--chain mainnet: no such chain: there is no config file (set HOME or XIEBAO_CONFIG) and the only built-in chain is devnet",
        );
        check(
            ChainSource::Env,
            Some(&location),
            &empty,
            "XIEBAO_CHAIN=mainnet: no such chain: the config file /nowhere/config.toml does not exist and the only built-in chain is devnet; add it with `xiebao config set-chain mainnet --rpc URL`",
        );
        // The file exists (a directory will do for `exists`) and has no such chain.
        let dir = tempfile::tempdir().unwrap();
        let location = Location { path: dir.path().to_owned(), from: "XIEBAO_CONFIG" };
        let path = dir.path().display();
        check(
            ChainSource::FileDefault,
            Some(&location),
            &empty,
            &format!(
                "default_chain = \"mainnet\": no such chain in {path} (it has no chains; devnet is built in); add it with `xiebao config set-chain mainnet --rpc URL`"
            ),
        );
        let mut file = ConfigFile::default();
        file.chains.insert("beta".to_owned(), Profile::default());
        file.chains.insert("alpha".to_owned(), Profile::default());
        check(
            ChainSource::Env,
            Some(&location),
            &file,
            &format!(
                "XIEBAO_CHAIN=mainnet: no such chain in {path} (it has alpha, beta; devnet is built in); add it with `xiebao config set-chain mainnet --rpc URL`"
            ),
        );
    }

    #[test]
    fn a_saved_file_loads_back_and_a_malformed_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let location =
            Location { path: dir.path().join("xiebao").join("config.toml"), from: "XIEBAO_CONFIG" };
        assert_eq!(location.load().unwrap(), ConfigFile::default());
        let mut file =
            ConfigFile { default_chain: Some("testnet".to_owned()), ..Default::default() };
        let profile = Profile {
            rpc: Some("http://10.0.0.5:8545".to_owned()),
            scheduler: Some("ws://10.0.0.6:7000".to_owned()),
            ..Default::default()
        };
        file.chains.insert("testnet".to_owned(), profile);
        location.save(&file).unwrap();
        assert_eq!(location.load().unwrap(), file);
        std::fs::write(&location.path, "[chains.testnet]\nrcp = \"http://127.0.0.1:1\"\n").unwrap();
        let error = location.load().unwrap_err();
        let ConfigError::Malformed { path, detail } = &error else { panic!("{error:?}") };
        assert_eq!(path, &location.path);
        assert!(detail.contains("line 2, column 1"), "{detail}");
        assert!(detail.contains("unknown field `rcp`"), "{detail}");
        let message = format!("{}: not a valid xiebao config file: ", location.path.display());
        assert!(error.to_string().starts_with(&message), "{error}");
    }

    #[test]
    fn endpoints_without_a_flag_environment_or_chain_take_the_default() {
        // Only the scheduler and results endpoints: no test sets their variables.
        let chain = Chain {
            name: "testnet".to_owned(),
            source: ChainSource::Flag,
            origin: PathBuf::from("config.toml"),
            profile: Profile { results: Some("http://r.example".to_owned()), ..Default::default() },
        };
        let resolved = resolve_endpoint(Endpoint::Scheduler, Some("ws://s.example"), None);
        assert_eq!(
            (resolved.value.as_deref(), resolved.source),
            (Some("ws://s.example"), EndpointSource::Flag)
        );
        let resolved = resolve_endpoint(Endpoint::Results, None, Some(&chain));
        assert_eq!(
            (resolved.value.as_deref(), resolved.source),
            (Some("http://r.example"), EndpointSource::Chain)
        );
        let resolved = resolve_endpoint(Endpoint::Scheduler, None, Some(&chain));
        assert_eq!((resolved.value, resolved.source), (None, EndpointSource::Unset));
        assert_eq!(Endpoint::Rpc.default_value(), Some(DEFAULT_RPC));
    }
}
