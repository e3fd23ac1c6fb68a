//! End-to-end tests through the real `xiebao` binary.

mod attack_cli;
mod bridge_cli;
mod chain_cli;
mod cli;
mod config_cli;
mod devnet_cli;
mod doctor_cli;
mod eth_cli;
mod fuzz_replay;
mod json_cli;
mod newcomer_cli;
mod order_cli;
mod result_cli;
mod rpc_cli;
mod wallet_cli;

use std::process::Command;

/// What one run of the binary gave.
pub(crate) struct Run {
    pub(crate) ok: bool,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `xiebao args…` with extra environment variables (and never an inherited password,
/// endpoint, chain or config file: the developer's own must not change what tests see).
pub(crate) fn xiebao_env(args: &[&str], env: &[(&str, &std::path::Path)]) -> Run {
    run(Command::new(env!("CARGO_BIN_EXE_xiebao")), args, env)
}

/// Runs `xiebao args…` in the directory `dir`, as [`xiebao_env`] does.
pub(crate) fn xiebao_in(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &std::path::Path)],
) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xiebao"));
    command.current_dir(dir);
    run(command, args, env)
}

fn run(mut command: Command, args: &[&str], env: &[(&str, &std::path::Path)]) -> Run {
    command.args(args);
    for key in [
        "XIEBAO_PASSWORD",
        "XIEBAO_CHAIN",
        "XIEBAO_RPC",
        "XIEBAO_SCHEDULER",
        "XIEBAO_ETHEREUM",
        "XIEBAO_RESULTS",
        "XIEBAO_KEY_FILE",
    ] {
        command.env_remove(key);
    }
    command.env("XIEBAO_CONFIG", "/nonexistent/xiebao/config.toml");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run xiebao");
    Run {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `xiebao args…`.
pub(crate) fn xiebao(args: &[&str]) -> Run {
    xiebao_env(args, &[])
}

/// Whether `text` holds a date as the binary prints block times: `2026-12-03 15:49:04 UTC`.
pub(crate) fn has_utc_date(text: &str) -> bool {
    const SHAPE: &[u8] = b"dddd-dd-dd dd:dd:dd UTC";
    text.as_bytes().windows(SHAPE.len()).any(|window| {
        window.iter().zip(SHAPE).all(|(c, s)| if *s == b'd' { c.is_ascii_digit() } else { c == s })
    })
}
