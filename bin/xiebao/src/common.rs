//! What the subcommands share: argument groups (endpoints, keys, bridge transfers), amounts,
//! keys and passwords, the client runtime, sending one call, and the bag's progress bar.
//! Subcommand modules import this module, never each other.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use alloy_primitives::Address;
use anyhow::{Context, bail};
use clap::Args;
use xiebao_scheduler::api::TaskState;
use xiebao_types::Nrlc;

pub(crate) use xiebao_devnet::process::wait_for_stop;
pub(crate) use xiebao_sdk::download::RESULT_DOWNLOAD_MAX_BYTES;
pub(crate) use xiebao_sdk::requester::format_rlc;

/// Where the node is.
#[derive(Debug, Args)]
pub(crate) struct Endpoint {
    /// The node's RPC URL.
    #[arg(long, env = "XIEBAO_RPC", default_value = xiebao_sdk::config::DEFAULT_RPC)]
    pub(crate) rpc: String,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Both chains' endpoints.
#[derive(Debug, Args)]
pub(crate) struct Endpoints {
    /// The Xiebao node's RPC URL.
    #[arg(long, env = "XIEBAO_RPC", default_value = xiebao_sdk::config::DEFAULT_RPC)]
    pub(crate) rpc: String,
    /// The mainchain (Ethereum) JSON-RPC URL.
    #[arg(long, env = "XIEBAO_ETHEREUM", default_value = xiebao_sdk::config::DEFAULT_ETHEREUM)]
    pub(crate) ethereum: String,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// A signing key (the same key is the account on both chains).
#[derive(Debug, Args)]
pub(crate) struct KeyArgs {
    /// The key: a V3 keystore or a hex key file.
    #[arg(long)]
    pub(crate) key_file: PathBuf,
    /// File holding the keystore's password (else XIEBAO_PASSWORD or a prompt).
    #[arg(long)]
    pub(crate) password_file: Option<PathBuf>,
}

/// A deposit (`bridge deposit`, `account deposit`).
#[derive(Debug, Args)]
pub(crate) struct DepositArgs {
    /// Amount in RLC (up to 9 decimals).
    #[arg(long)]
    pub(crate) amount: String,
    /// Who receives it on the chain (default: the key's own address).
    #[arg(long)]
    pub(crate) to: Option<Address>,
    /// Return once the deposit is in a mainchain block.
    #[arg(long)]
    pub(crate) no_wait: bool,
    #[command(flatten)]
    pub(crate) key: KeyArgs,
    #[command(flatten)]
    pub(crate) endpoints: Endpoints,
}

/// A withdrawal (`bridge withdraw`, `account withdraw`).
#[derive(Debug, Args)]
pub(crate) struct WithdrawArgs {
    /// Amount in RLC (up to 9 decimals).
    #[arg(long)]
    pub(crate) amount: String,
    /// Who receives it on the mainchain (default: the key's own address).
    #[arg(long)]
    pub(crate) to: Option<Address>,
    /// Stop after the burn and the signatures; release later with `xiebao bridge release`
    /// (from any account holding ether for gas).
    #[arg(long)]
    pub(crate) no_release: bool,
    #[command(flatten)]
    pub(crate) key: KeyArgs,
    #[command(flatten)]
    pub(crate) endpoints: Endpoints,
}

/// `1 task`, `4 tasks`.
pub(crate) fn count(n: u64, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// Parses an RLC amount with up to 9 decimals into nRLC.
pub(crate) fn parse_rlc(text: &str) -> anyhow::Result<Nrlc> {
    let bad = || format!("amount {text:?}: expected RLC with up to 9 decimals, e.g. 1.5");
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.len() > 9 {
        bail!(bad());
    }
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        bail!(bad());
    }
    let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().with_context(bad)? };
    let fraction: u128 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().with_context(bad)?
    };
    let nrlc = whole
        .checked_mul(1_000_000_000)
        .and_then(|w| w.checked_add(fraction))
        .with_context(|| format!("amount {text} RLC is too large"))?;
    Ok(Nrlc(nrlc))
}

/// Reads the password for a keystore.
///
/// # Errors
/// When the file cannot be read, the prompt fails, confirmation differs, or there is no way
/// to get a password (no file, no variable, no terminal).
pub(crate) fn password(file: Option<&Path>, confirm: bool) -> anyhow::Result<String> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading password file {}", file.display()))?;
        return Ok(text.trim_end_matches(['\n', '\r']).to_owned());
    }
    if let Ok(password) = std::env::var("XIEBAO_PASSWORD") {
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "a keystore password is needed: give it with --password-file or the XIEBAO_PASSWORD environment variable"
        );
    }
    let password =
        rpassword::prompt_password("Keystore password: ").context("reading the password")?;
    if confirm {
        let again =
            rpassword::prompt_password("Repeat password: ").context("reading the password")?;
        if again != password {
            bail!("the two passwords differ; nothing was written");
        }
    }
    Ok(password)
}

/// Loads a signing key from a V3 keystore (asking for its password as [`password`] does) or a
/// hex key file.
///
/// # Errors
/// When the file is unreadable, the password is wrong or the key is invalid.
pub(crate) fn signing_key(
    key_file: &Path,
    password_file: Option<&Path>,
) -> anyhow::Result<xiebao_types::SecretKey> {
    let password = match xiebao_sdk::wallet::key_file_kind(key_file)? {
        xiebao_sdk::wallet::KeyFileKind::Keystore => Some(password(password_file, false)?),
        xiebao_sdk::wallet::KeyFileKind::HexKey => None,
    };
    Ok(xiebao_sdk::wallet::load_key(key_file, password.as_deref())?)
}

/// The single-threaded runtime the client commands (RPC queries, payments) run on.
pub(crate) fn client_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

/// Signs one call with `key`, sends it through `node` and waits until it is final; `what`
/// names it when the chain refuses it.
pub(crate) async fn send_call(
    node: &xiebao_sdk::client::Node,
    key: xiebao_types::SecretKey,
    call: xiebao_types::Call,
    what: &str,
) -> anyhow::Result<xiebao_sdk::client::Applied> {
    use anyhow::Context as _;
    let sender = xiebao_sdk::client::Sender::spawn(node.clone(), key, Default::default());
    sender.send(call).await.with_context(|| format!("the chain refused {what}"))
}

/// `--max-calls-per-tx`: a positive number of calls.
pub(crate) fn calls_per_tx(text: &str) -> Result<usize, String> {
    let calls: usize =
        text.parse().map_err(|e| format!("{e}: a number of calls per transaction"))?;
    if calls == 0 {
        return Err("a transaction carries at least one call (1: one call per transaction)".into());
    }
    Ok(calls)
}

/// The bag's progress: a bar on a terminal, a line per tenth otherwise.
pub(crate) struct Progress {
    bar: indicatif::ProgressBar,
    total: u64,
    quiet: bool,
}

impl Progress {
    pub(crate) fn new(quiet: bool, total: u64) -> Self {
        let bar = if quiet {
            indicatif::ProgressBar::hidden()
        } else {
            indicatif::ProgressBar::new(total)
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} done {msg} [{elapsed_precise}, eta {eta}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Self { bar, total, quiet }
    }

    pub(crate) fn done(&self) {
        self.bar.inc(1);
        let done = self.bar.position();
        if !self.quiet
            && self.bar.is_hidden()
            && (done * 10 / self.total.max(1)) != ((done - 1) * 10 / self.total.max(1))
        {
            eprintln!("{done}/{} tasks done", self.total);
        }
    }

    pub(crate) fn failed(&self) {
        self.bar.set_message("(some failed)");
    }

    pub(crate) fn waiting(&self, tasks: &[xiebao_scheduler::api::TaskView]) {
        let waiting = tasks
            .iter()
            .find_map(|t| match &t.state {
                TaskState::WaitingForWorker { why } => Some(format!("waiting: {why}")),
                _ => None,
            })
            .unwrap_or_default();
        let running = tasks.iter().filter(|t| matches!(t.state, TaskState::Running { .. })).count();
        self.bar.set_message(format!("{running} running {waiting}"));
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl xiebao_sdk::requester::BagObserver for Progress {
    fn done(&self) {
        Progress::done(self);
    }

    fn failed(&self) {
        Progress::failed(self);
    }

    fn waiting(&self, tasks: &[xiebao_scheduler::api::TaskView]) {
        Progress::waiting(self, tasks);
    }
}
