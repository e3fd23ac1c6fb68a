//! End-to-end tests through the real `xiebao` binary.

mod bridge_cli;
mod chain_cli;
mod cli;
mod devnet_cli;
mod json_cli;
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

/// Runs `xiebao args…` with extra environment variables (and never an inherited password).
pub(crate) fn xiebao_env(args: &[&str], env: &[(&str, &std::path::Path)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xiebao"));
    command.args(args).env_remove("XIEBAO_PASSWORD");
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
