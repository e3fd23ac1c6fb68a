//! `xiebao doctor`: checks what building, testing and running Xiebao need on this machine (the
//! pinned Rust toolchain and its WebAssembly target, podman/runc/busybox for OCI apps, Python's
//! venv, Node.js for the contracts' tools, disk, a loopback port, the configured chain's node)
//! and prints, for each missing piece, the one command that fixes it.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use xiebao_rpc::XiebaoApiClient as _;

use crate::common::Endpoint;

/// The WebAssembly target the runtime's guests are built for.
const WASM_TARGET: &str = "wasm32-wasip1";
/// Installs rustup (and with it the toolchain a checkout pins).
const FIX_RUSTUP: &str = "curl https://sh.rustup.rs -sSf | sh";
/// Installs what the OCI runtime needs.
const FIX_OCI: &str = "sudo apt-get install -y podman runc busybox-static uidmap";
/// Installs Python with its venv module.
const FIX_PYTHON: &str = "sudo apt-get install -y python3 python3-venv";
/// Installs Node.js and npm.
const FIX_NODE: &str = "sudo apt-get install -y nodejs npm";
/// Where a checkout's pinned anvil lives once `scripts/tools.sh` ran.
const ANVIL: &str = "tools/node_modules/.bin/anvil";
/// Below this much free space where the cargo target dir lives, a warning (the first build
/// takes about 4–5 GB).
const DISK_FREE_GIB_MIN: u64 = 10;
/// How long a program asked for its version may take before it counts as broken.
const PROGRAM_TIMEOUT_MS: u64 = 10_000;
/// How long the chain's node may take to answer `chain_status`.
const RPC_TIMEOUT_MS: u64 = 5_000;

/// `xiebao doctor`'s arguments: the node to try (`--rpc`, `--chain`, XIEBAO_RPC) and `--json`.
#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    #[command(flatten)]
    pub(crate) endpoint: Endpoint,
}

/// What one check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// The piece is here.
    Ok,
    /// A required piece is absent or broken: doctor fails.
    Missing,
    /// Worth knowing, but nothing fails without it (an unreachable node, little disk).
    Warning,
}

impl Status {
    /// The word printed and put in the JSON.
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Missing => "missing",
            Status::Warning => "warning",
        }
    }
}

/// One check: what it looked at, what it found, and the command that fixes it.
#[derive(Debug)]
struct Check {
    name: &'static str,
    status: Status,
    found: String,
    /// One command to run; `None` when the piece is here.
    fix: Option<String>,
}

impl Check {
    /// The piece is here.
    fn ok(name: &'static str, found: impl Into<String>) -> Check {
        Check { name, status: Status::Ok, found: found.into(), fix: None }
    }

    /// A required piece is not here; `fix` brings it.
    fn missing(name: &'static str, found: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { name, status: Status::Missing, found: found.into(), fix: Some(fix.into()) }
    }

    /// Something to look at that does not fail the run.
    fn warning(name: &'static str, found: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { name, status: Status::Warning, found: found.into(), fix: Some(fix.into()) }
    }
}

/// The source checkout the command runs in, if any: the nearest directory upward holding a
/// `rust-toolchain.toml`.
#[derive(Debug)]
struct Checkout {
    root: PathBuf,
    /// The toolchain `rust-toolchain.toml` pins (its `channel`), if it names one.
    channel: Option<String>,
}

impl Checkout {
    /// Looks upward from `dir`.
    fn find(dir: &Path) -> Option<Checkout> {
        let root = dir.ancestors().find(|d| d.join("rust-toolchain.toml").is_file())?;
        let text = std::fs::read_to_string(root.join("rust-toolchain.toml")).unwrap_or_default();
        Some(Checkout { root: root.to_owned(), channel: pinned_channel(&text) })
    }
}

/// The `channel = "…"` of a `rust-toolchain.toml` (a line scan: the file is a few lines and
/// the binary has no TOML parser of its own).
fn pinned_channel(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "channel")
            .then(|| value.trim().trim_matches(['"', '\'']).to_owned())
            .filter(|channel| !channel.is_empty())
    })
}

/// What running a program gave.
#[derive(Debug)]
enum Outcome {
    /// No such program on PATH.
    NotFound,
    /// It ran but failed (or could not be started, or hung): the first line it had to say.
    Failed(String),
    /// It succeeded: its standard output, trimmed.
    Ran(String),
}

/// Runs `program args…` directly (never through a shell) with a time limit. rustup's proxies
/// are told not to install a toolchain on the way: doctor reports, it does not download.
fn run_program(program: &str, args: &[&str]) -> Outcome {
    let mut command = Command::new(program);
    command
        .args(args)
        .env("RUSTUP_AUTO_INSTALL", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Outcome::NotFound,
        Err(error) => return Outcome::Failed(format!("{program}: {error}")),
    };
    // Polled rather than waited on, so that a hung program cannot hang doctor. The outputs are
    // a few lines, well under a pipe's buffer, so reading them after the exit cannot block it.
    let deadline = Instant::now() + Duration::from_millis(PROGRAM_TIMEOUT_MS);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Outcome::Failed(format!(
                    "`{program} {}` did not finish within {} s",
                    args.join(" "),
                    PROGRAM_TIMEOUT_MS / 1000
                ));
            }
            Err(error) => return Outcome::Failed(format!("{program}: {error}")),
        }
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        let _ = pipe.read_to_string(&mut stdout);
    }
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let (stdout, stderr) = (stdout.trim().to_owned(), stderr.trim());
    if status.success() {
        Outcome::Ran(stdout)
    } else {
        let said = stderr.lines().chain(stdout.lines()).find(|l| !l.trim().is_empty());
        Outcome::Failed(
            said.map_or_else(|| format!("{program} exited with {status}"), str::to_owned),
        )
    }
}

/// The first line of a program's output.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default().trim()
}

/// rustc and cargo answer, and the toolchain the checkout pins (if any) is installed.
fn rust_toolchain(checkout: Option<&Checkout>) -> Check {
    const NAME: &str = "rust toolchain";
    let channel = checkout.and_then(|c| c.channel.as_deref());
    let install_pinned = channel.map(|c| format!("rustup toolchain install {c}"));
    let mut versions = Vec::new();
    for program in ["rustc", "cargo"] {
        match run_program(program, &["--version"]) {
            Outcome::Ran(version) => versions.push(first_line(&version).to_owned()),
            Outcome::NotFound => {
                return Check::missing(NAME, format!("{program} not found"), FIX_RUSTUP);
            }
            Outcome::Failed(said) => {
                let fix = install_pinned.unwrap_or_else(|| FIX_RUSTUP.to_owned());
                return Check::missing(NAME, format!("{program} --version failed: {said}"), fix);
            }
        }
    }
    let found = versions.join(", ");
    let Some(channel) = channel else {
        return Check::ok(NAME, format!("{found} (no rust-toolchain.toml here: any version)"));
    };
    let installed = match run_program("rustup", &["toolchain", "list"]) {
        Outcome::Ran(list) => list.lines().any(|line| {
            let name = line.split_whitespace().next().unwrap_or_default();
            name == channel || name.starts_with(&format!("{channel}-"))
        }),
        // Without rustup the toolchain on PATH is the only one: it must be the pinned version.
        Outcome::NotFound | Outcome::Failed(_) => {
            let rustc = versions.first().map(String::as_str).unwrap_or_default();
            if !rustc.split_whitespace().any(|word| word == channel) {
                return Check::missing(
                    NAME,
                    format!("{found}; rust-toolchain.toml pins {channel} and there is no rustup"),
                    FIX_RUSTUP,
                );
            }
            true
        }
    };
    if installed {
        Check::ok(NAME, format!("{found}; pinned {channel} installed"))
    } else {
        let fix = install_pinned.unwrap_or_else(|| FIX_RUSTUP.to_owned());
        Check::missing(NAME, format!("{found}; pinned {channel} not installed"), fix)
    }
}

/// The WebAssembly target is installed for the toolchain that builds here. Asked of rustc
/// itself (its sysroot holds one directory per installed target), so that it answers for the
/// toolchain a build would use, with or without rustup.
fn wasm_target() -> Check {
    const NAME: &str = "wasm target";
    let fix = format!("rustup target add {WASM_TARGET}");
    match run_program("rustc", &["--print", "sysroot"]) {
        Outcome::NotFound => Check::missing(NAME, "rustc not found (install rust first)", fix),
        Outcome::Failed(said) => {
            Check::missing(NAME, format!("rustc --print sysroot: {said}"), fix)
        }
        Outcome::Ran(sysroot) => {
            let dir = Path::new(first_line(&sysroot)).join("lib/rustlib").join(WASM_TARGET);
            if dir.is_dir() {
                Check::ok(NAME, format!("{WASM_TARGET} installed"))
            } else {
                Check::missing(NAME, format!("{WASM_TARGET} not installed"), fix)
            }
        }
    }
}

/// `program --version` answers; `fix` installs it.
fn program(name: &'static str, fix: &str) -> Check {
    match run_program(name, &["--version"]) {
        Outcome::Ran(version) => Check::ok(name, first_line(&version)),
        Outcome::NotFound => Check::missing(name, "not found", fix),
        Outcome::Failed(said) => Check::missing(name, format!("--version failed: {said}"), fix),
    }
}

/// A statically linked busybox at /bin/busybox: the OCI apps' images copy it in.
fn busybox() -> Check {
    const NAME: &str = "busybox";
    const PATH: &str = "/bin/busybox";
    let Ok(bytes) = std::fs::read(PATH) else {
        return Check::missing(NAME, format!("{PATH} not found"), FIX_OCI);
    };
    match elf_interpreter(&bytes) {
        None => Check::missing(NAME, format!("{PATH} is not an ELF executable"), FIX_OCI),
        Some(true) => Check::missing(NAME, format!("{PATH} is dynamically linked"), FIX_OCI),
        Some(false) => Check::ok(NAME, format!("{PATH}, statically linked")),
    }
}

/// Whether an ELF file asks for a program interpreter (a dynamic loader); `None` when the bytes
/// are no little-endian ELF file.
fn elf_interpreter(bytes: &[u8]) -> Option<bool> {
    const PT_INTERP: u32 = 3;
    if bytes.get(..4)? != b"\x7fELF" || *bytes.get(5)? != 1 {
        return None;
    }
    let u16_at = |at: usize| Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
    let (offset, entry_size, count) = match bytes.get(4)? {
        1 => (u64::from(u32_at(0x1c)?), u16_at(0x2a)?, u16_at(0x2c)?),
        2 => (u64_at(0x20)?, u16_at(0x36)?, u16_at(0x38)?),
        _ => return None,
    };
    let offset = usize::try_from(offset).ok()?;
    for index in 0..usize::from(count) {
        let header = offset.checked_add(index.checked_mul(usize::from(entry_size))?)?;
        if u32_at(header)? == PT_INTERP {
            return Some(true);
        }
    }
    Some(false)
}

/// python3 with the venv module and ensurepip (Debian splits ensurepip into python3-venv, and
/// `python3 -m venv` needs it to create the tests' .venv).
fn python_venv() -> Check {
    const NAME: &str = "python venv";
    let version = match run_program("python3", &["--version"]) {
        Outcome::Ran(version) => first_line(&version).to_owned(),
        Outcome::NotFound => return Check::missing(NAME, "python3 not found", FIX_PYTHON),
        Outcome::Failed(said) => {
            return Check::missing(NAME, format!("python3 --version failed: {said}"), FIX_PYTHON);
        }
    };
    match run_program("python3", &["-c", "import ensurepip, venv"]) {
        Outcome::Ran(_) => Check::ok(NAME, format!("{version} with venv")),
        Outcome::NotFound | Outcome::Failed(_) => {
            Check::missing(NAME, format!("{version} without the venv module"), FIX_PYTHON)
        }
    }
}

/// The pinned anvil (and with it solc, forge, cast) under the checkout's tools/.
fn contract_tools(checkout: Option<&Checkout>) -> Check {
    const NAME: &str = "contract tools";
    let Some(checkout) = checkout.filter(|c| c.root.join("scripts/tools.sh").is_file()) else {
        return Check::ok(NAME, "not in a Xiebao checkout: none needed");
    };
    if checkout.root.join(ANVIL).is_file() {
        return Check::ok(NAME, format!("{ANVIL} installed"));
    }
    let here = std::env::current_dir().ok();
    let script = if here.as_deref() == Some(checkout.root.as_path()) {
        "./scripts/tools.sh".to_owned()
    } else {
        checkout.root.join("scripts/tools.sh").display().to_string()
    };
    Check::missing(NAME, format!("{ANVIL} not found"), script)
}

/// Free space where the cargo target dir lives ($CARGO_TARGET_DIR, else the checkout's (or
/// this directory's) target/, measured at its nearest existing ancestor).
fn disk(checkout: Option<&Checkout>, here: &Path) -> Check {
    const NAME: &str = "disk";
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| checkout.map_or(here, |c| c.root.as_path()).join("target"));
    let target = if target.is_absolute() { target } else { here.join(target) };
    let existing = target.ancestors().find(|p| p.exists()).unwrap_or(Path::new("/"));
    let fix = "export CARGO_TARGET_DIR=/a/disk/with/10GiB/free".to_owned();
    let path = existing.display().to_string();
    let free_kib = match run_program("df", &["-Pk", &path]) {
        Outcome::Ran(table) => table.lines().nth(1).and_then(df_available_kib),
        Outcome::NotFound => {
            return Check::warning(
                NAME,
                "df not found: free space unknown",
                "sudo apt-get install -y coreutils",
            );
        }
        Outcome::Failed(said) => {
            return Check::warning(NAME, format!("df -Pk {path}: {said}"), fix);
        }
    };
    let Some(free_kib) = free_kib else {
        return Check::warning(NAME, format!("df -Pk {path}: no free space in its output"), fix);
    };
    let free_gib = free_kib / (1024 * 1024);
    let found = format!("{free_gib} GiB free for the cargo target dir {}", target.display());
    if free_gib < DISK_FREE_GIB_MIN {
        Check::warning(NAME, format!("{found}; the first build takes about 5 GB"), fix)
    } else {
        Check::ok(NAME, found)
    }
}

/// The "Available" column (KiB) of a `df -Pk` data line: the number just before the capacity
/// (`53%`). Found by that shape, not by position, since a file system's name or its mount
/// point may hold spaces.
fn df_available_kib(line: &str) -> Option<u64> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let number = |field: &str| field.parse::<u64>().ok();
    (3..fields.len()).find_map(|i| {
        let capacity = fields[i].strip_suffix('%')?;
        number(capacity)?;
        number(fields[i - 3])?;
        number(fields[i - 2])?;
        number(fields[i - 1])
    })
}

/// A loopback port can be bound (the devnet and the tests listen on 127.0.0.1).
fn loopback() -> Check {
    const NAME: &str = "loopback port";
    match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(address) => Check::ok(NAME, format!("bound {address}")),
        Err(error) => {
            Check::missing(NAME, format!("bind 127.0.0.1:0: {error}"), "sudo ip link set lo up")
        }
    }
}

/// The configured chain's node answers `chain_status` in time. Not required: commands that do
/// not talk to a chain work without one.
fn chain_node(rpc: &str) -> Check {
    const NAME: &str = "chain node";
    let fix = "xiebao devnet --keep";
    let asked = async {
        let client = xiebao_rpc::http_client(rpc)?;
        anyhow::Ok(client.chain_status().await?)
    };
    let answer = crate::common::client_runtime().and_then(|runtime| {
        runtime.block_on(async {
            match tokio::time::timeout(Duration::from_millis(RPC_TIMEOUT_MS), asked).await {
                Ok(answer) => answer,
                Err(_) => bail!("no answer within {} s", RPC_TIMEOUT_MS / 1000),
            }
        })
    });
    match answer {
        Ok(status) => Check::ok(
            NAME,
            format!("{rpc} answers: chain {}, block {}", status.chain_id, status.height),
        ),
        Err(error) => Check::warning(
            NAME,
            format!(
                "{rpc} does not answer ({}); start a local network, or give --rpc URL of a running node",
                first_line(&format!("{error:#}"))
            ),
            fix,
        ),
    }
}

/// Every check, in the order a new machine would fix them.
fn checks(rpc: &str) -> Vec<Check> {
    let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let checkout = Checkout::find(&here);
    let checkout = checkout.as_ref();
    vec![
        rust_toolchain(checkout),
        wasm_target(),
        program("podman", FIX_OCI),
        program("runc", FIX_OCI),
        busybox(),
        python_venv(),
        program("node", FIX_NODE),
        program("npm", FIX_NODE),
        contract_tools(checkout),
        disk(checkout, &here),
        loopback(),
        chain_node(rpc),
    ]
}

/// Runs every check and prints a line each (or one JSON object).
///
/// # Errors
/// When a required piece is missing (warnings do not fail), naming the missing pieces.
#[allow(clippy::print_stdout, reason = "the command's output")]
pub(crate) fn run(args: &DoctorArgs) -> anyhow::Result<()> {
    let checks = checks(&args.endpoint.rpc);
    let missing: Vec<&str> =
        checks.iter().filter(|c| c.status == Status::Missing).map(|c| c.name).collect();
    if args.endpoint.json {
        let checks: Vec<serde_json::Value> = checks
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name,
                    "status": c.status.as_str(),
                    "found": c.found,
                    "fix": c.fix,
                })
            })
            .collect();
        println!("{}", serde_json::json!({ "checks": checks, "missing": missing.len() }));
    } else {
        let width = checks.iter().map(|c| c.name.len()).max().unwrap_or_default();
        for check in &checks {
            let status = check.status.as_str();
            let fix = check.fix.as_deref().map(|f| format!(" — fix: {f}")).unwrap_or_default();
            println!("{status:<8} {:<width$}  {}{fix}", check.name, check.found);
        }
        if missing.is_empty() {
            println!("all required pieces are here");
        } else {
            println!("{} missing: run the fixes above", missing.len());
        }
    }
    if !missing.is_empty() {
        bail!("missing: {} (each line above gives the command that fixes it)", missing.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_channel_reads_the_toolchain_file() {
        let file = "[toolchain]\nchannel = \"1.95.0\"\ncomponents = [\"rustfmt\"]\n";
        assert_eq!(pinned_channel(file).as_deref(), Some("1.95.0"));
        assert_eq!(pinned_channel("[toolchain]\ncomponents = []\n"), None);
    }

    #[test]
    fn df_available_is_the_number_before_the_capacity() {
        let line = "/dev/vda 264212084 50385892 44899996 53% /";
        assert_eq!(df_available_kib(line), Some(44_899_996));
        assert_eq!(df_available_kib("my disk 100 60 40 60% /mnt/my disk"), Some(40));
        assert_eq!(df_available_kib("garbage 1 2 x% /"), None);
    }

    /// A 64-bit little-endian ELF header with one program header of type `segment`.
    fn elf64(segment: u32) -> Vec<u8> {
        let mut bytes = vec![0_u8; 64 + 56];
        bytes[..6].copy_from_slice(b"\x7fELF\x02\x01");
        bytes[0x20..0x28].copy_from_slice(&64_u64.to_le_bytes());
        bytes[0x36..0x38].copy_from_slice(&56_u16.to_le_bytes());
        bytes[0x38..0x3a].copy_from_slice(&1_u16.to_le_bytes());
        bytes[64..68].copy_from_slice(&segment.to_le_bytes());
        bytes
    }

    #[test]
    fn elf_interpreter_tells_static_from_dynamic() {
        assert_eq!(elf_interpreter(&elf64(3)), Some(true), "PT_INTERP: a dynamic loader");
        assert_eq!(elf_interpreter(&elf64(1)), Some(false), "PT_LOAD only: static");
        assert_eq!(elf_interpreter(b"#!/bin/sh\n"), None);
        // Program headers past the end of the file: not a readable ELF file.
        assert_eq!(elf_interpreter(&elf64(3)[..66]), None);
    }
}
