//! The processes of a local network: validators started from the `xiebao` program, waited
//! for until their RPC answers, stopped with SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};
use xiebao_rpc::XiebaoApiClient as _;

/// The URL a local client reaches a listen address at (an unspecified IP means loopback).
pub fn local_url(scheme: &str, listen: SocketAddr) -> String {
    let host =
        if listen.ip().is_unspecified() { "127.0.0.1".to_owned() } else { listen.ip().to_string() };
    format!("{scheme}://{host}:{}", listen.port())
}

/// Waits until `url` answers `chain_status` (polling every 100 ms, at most `timeout`).
pub async fn wait_for_rpc(url: &str, timeout: std::time::Duration) -> anyhow::Result<()> {
    let client = xiebao_rpc::http_client(url)?;
    let start = std::time::Instant::now();
    loop {
        match client.chain_status().await {
            Ok(_) => return Ok(()),
            Err(error) if start.elapsed() >= timeout => {
                bail!("{url} did not answer within {} s: {error}", timeout.as_secs())
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}

/// Starts `PROGRAM node --config config` (`program` is the `xiebao` binary), logging to
/// `node.log` beside the config.
pub fn spawn_node(program: &Path, config: &Path) -> anyhow::Result<Child> {
    spawn_nodes(program, &[config])
}

/// Starts one `xiebao node` process running the validators of `configs` (one thread each),
/// logging to the first one's folder (`node.log`).
pub fn spawn_nodes(program: &Path, configs: &[&Path]) -> anyhow::Result<Child> {
    let first = configs.first().context("no validator config to start")?;
    let dir = first.parent().unwrap_or(Path::new("."));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("node.log"))
        .with_context(|| format!("opening {}/node.log", dir.display()))?;
    let mut command = Command::new(program);
    command.arg("node");
    for config in configs {
        command.arg("--config").arg(config);
    }
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting a validator process")
}

/// SIGTERMs each validator (they persist every finalized block as it comes) and reaps it.
pub fn stop_children(children: &mut [Child]) {
    for child in children.iter_mut() {
        let _ = Command::new("kill").arg(child.id().to_string()).stderr(Stdio::null()).status();
    }
    for child in children.iter_mut() {
        let _ = child.wait();
    }
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn wait_for_stop() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    Ok(())
}
