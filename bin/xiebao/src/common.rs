//! What the subcommands share: argument groups (endpoints, keys, bridge transfers), amounts,
//! keys and passwords, the client runtime, sending one call, times and task states in words,
//! and the bag's progress bar.
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
    #[arg(long, env = "XIEBAO_KEY_FILE")]
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

/// A block time (unix seconds) as a UTC date: `2026-12-03 15:49:04 UTC`.
pub(crate) fn utc(seconds: u64) -> String {
    let (days, second_of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) =
        (second_of_day / 3_600, second_of_day % 3_600 / 60, second_of_day % 60);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} UTC")
}

/// The (year, month, day) of the proleptic Gregorian calendar `days` after 1970-01-01: Howard
/// Hinnant's `civil_from_days`, on unsigned integers since block times never precede 1970.
/// Written out rather than taken from a date crate: none is built in this workspace, and
/// this is all the binary needs of one (no time zones, no parsing).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Days from 0000-03-01, in 400-year eras of 146 097 days; a year starts in March, so the
    // leap day is its last day.
    let z = days + 719_468;
    let (era, day_of_era) = (z / 146_097, z % 146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

/// A length of time in its two largest units: `3 days 4 h`, `2 h 3 min`, `4 min 10 s`, `42 s`.
fn duration_words(seconds: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(86_400, "day"), (3_600, "h"), (60, "min"), (1, "s")];
    let Some(i) = UNITS.iter().position(|(size, _)| seconds >= *size) else {
        return "0 s".to_owned();
    };
    let name = |count: u64, (_, unit): (u64, &str)| {
        let plural = if unit == "day" && count != 1 { "s" } else { "" };
        format!("{count} {unit}{plural}")
    };
    let (size, _) = UNITS[i];
    let major = name(seconds / size, UNITS[i]);
    match UNITS.get(i + 1) {
        Some(&(minor_size, unit)) if seconds % size / minor_size > 0 => {
            format!("{major} {}", name(seconds % size / minor_size, (minor_size, unit)))
        }
        _ => major,
    }
}

/// How far `seconds` is from `now`, in words: `in 4 min 10 s`, `2 h 3 min ago`, `now`.
fn relative(seconds: u64, now: u64) -> String {
    match seconds.cmp(&now) {
        std::cmp::Ordering::Greater => format!("in {}", duration_words(seconds - now)),
        std::cmp::Ordering::Less => format!("{} ago", duration_words(now - seconds)),
        std::cmp::Ordering::Equal => "now".to_owned(),
    }
}

/// A block time with how far it is from `now`: `2026-12-03 15:49:04 UTC (in 4 min 10 s)`;
/// zero (a deadline the chain has not set) is `not set`.
pub(crate) fn when(seconds: u64, now: u64) -> String {
    if seconds == 0 {
        return "not set".to_owned();
    }
    format!("{} ({})", utc(seconds), relative(seconds, now))
}

/// This machine's clock, unix seconds: the reference only where no chain is at hand, or for
/// how long ago the chain's head was made.
pub(crate) fn local_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// The chain's clock: its head block's time (deadlines are checked against block times, not
/// against this machine's clock); the local clock before the chain has a timed block.
///
/// # Errors
/// When the node does not answer.
pub(crate) async fn chain_now(
    node: &xiebao_rpc::jsonrpsee::http_client::HttpClient,
) -> anyhow::Result<u64> {
    use xiebao_rpc::XiebaoApiClient as _;
    let status = node.chain_status().await.context("asking the node for its head block time")?;
    Ok(if status.timestamp == 0 { local_now() } else { status.timestamp })
}

/// What a scheduler says of a task, as a short sentence.
pub(crate) fn describe(state: &TaskState) -> String {
    let count = |n: u32, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    match state {
        TaskState::Initializing => "initializing: the initialize transaction is on its way".into(),
        TaskState::WaitingForWorker { why } => format!("waiting for a worker: {why}"),
        TaskState::SettingUp { detail } => format!("setting up: {detail}"),
        TaskState::Running { replicates } => {
            format!("running: {}", count(*replicates, "replicate", "replicates"))
        }
        TaskState::WaitingForConsensus { contributions, pending } => format!(
            "waiting for consensus: {} on chain, {pending} still computing",
            count(*contributions, "contribution", "contributions")
        ),
        TaskState::Revealing { revealed, winners } => {
            format!("revealing: {revealed} of {}", count(*winners, "winner", "winners"))
        }
        TaskState::Uploading => "uploading: waiting for a winner's result upload".into(),
        TaskState::Finalizing => "finalizing: the finalize transaction is on its way".into(),
        TaskState::RevealTimeout => "reopening: no winner revealed before the deadline".into(),
        TaskState::Completed { link } => format!("completed: result at {link}"),
        TaskState::Failed { why } => format!("failed and refunded: {why}"),
    }
}

/// A worker's stake in its pool, in words, with when an unbonding stake comes back (`now`:
/// the chain's clock).
pub(crate) fn describe_membership(m: &xiebao_protocol::Membership, now: u64) -> String {
    use xiebao_protocol::MembershipStatus;
    let contributions = if m.in_contributions == Nrlc(0) {
        String::new()
    } else {
        format!(", {} in contributions", format_rlc(m.in_contributions))
    };
    match m.status {
        MembershipStatus::Active => {
            format!("{} bonded in workerpool {}{contributions}", format_rlc(m.bonded), m.workerpool)
        }
        MembershipStatus::Unbonding => format!(
            "{} leaving workerpool {}{contributions}; released {}",
            format_rlc(m.bonded),
            m.workerpool,
            when(m.release_at, now)
        ),
        MembershipStatus::Left => {
            format!("left workerpool {}{contributions}", m.workerpool)
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_times_print_as_utc_dates() {
        for (seconds, date) in [
            (0, "1970-01-01 00:00:00 UTC"),
            (1, "1970-01-01 00:00:01 UTC"),
            (1_796_312_944, "2026-12-03 15:49:04 UTC"),
            // Leap days: every fourth year, every fourth century, not the others.
            (951_782_400, "2000-02-29 00:00:00 UTC"),
            (1_709_164_800, "2024-02-29 00:00:00 UTC"),
            (1_709_251_199, "2024-02-29 23:59:59 UTC"),
            (1_709_251_200, "2024-03-01 00:00:00 UTC"),
            (4_107_542_399, "2100-02-28 23:59:59 UTC"),
            (4_107_542_400, "2100-03-01 00:00:00 UTC"),
            (1_735_689_599, "2024-12-31 23:59:59 UTC"),
            (253_402_300_799, "9999-12-31 23:59:59 UTC"),
        ] {
            assert_eq!(utc(seconds), date, "{seconds}");
        }
        // The largest block time still prints (a year far beyond 9999), without overflow.
        assert!(utc(u64::MAX).ends_with(" UTC"));
    }

    #[test]
    fn times_left_and_past_are_words_in_their_two_largest_units() {
        let now = 1_796_312_944;
        for (seconds, words) in [
            (now, "now"),
            (now + 42, "in 42 s"),
            (now + 250, "in 4 min 10 s"),
            (now + 300, "in 5 min"),
            (now - 7_380, "2 h 3 min ago"),
            (now - 7_385, "2 h 3 min ago"),
            (now + 3 * 86_400 + 4 * 3_600 + 59, "in 3 days 4 h"),
            (now + 86_400, "in 1 day"),
            (now - 86_400 - 60, "1 day ago"),
            (now - 3_600 - 1, "1 h ago"),
        ] {
            assert_eq!(relative(seconds, now), words, "{seconds}");
        }
        assert_eq!(duration_words(0), "0 s");
    }

    #[test]
    fn a_zero_time_is_not_set_and_others_carry_date_and_distance() {
        let now = 1_796_312_944;
        assert_eq!(when(0, now), "not set");
        assert_eq!(when(now + 250, now), "2026-12-03 15:53:14 UTC (in 4 min 10 s)");
        assert_eq!(when(now - 7_380, now), "2026-12-03 13:46:04 UTC (2 h 3 min ago)");
    }

    #[test]
    fn task_states_read_as_sentences_not_json() {
        for (state, text) in [
            (TaskState::Initializing, "initializing: the initialize transaction is on its way"),
            (
                TaskState::WaitingForWorker { why: "no worker has a GPU".into() },
                "waiting for a worker: no worker has a GPU",
            ),
            (TaskState::Running { replicates: 1 }, "running: 1 replicate"),
            (TaskState::Running { replicates: 3 }, "running: 3 replicates"),
            (
                TaskState::WaitingForConsensus { contributions: 1, pending: 2 },
                "waiting for consensus: 1 contribution on chain, 2 still computing",
            ),
            (TaskState::Revealing { revealed: 1, winners: 2 }, "revealing: 1 of 2 winners"),
            (TaskState::Completed { link: "http://r/1".into() }, "completed: result at http://r/1"),
            (TaskState::Failed { why: "bad app".into() }, "failed and refunded: bad app"),
        ] {
            assert_eq!(describe(&state), text);
        }
    }
}
