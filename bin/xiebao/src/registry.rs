//! `xiebao app|dataset|workerpool show` and `xiebao category list`: registry entries as the
//! chain holds them.

use alloy_primitives::Address;
use anyhow::{Context, bail};
use clap::Subcommand;
use xiebao_rpc::XiebaoApiClient;

/// `xiebao app|dataset|workerpool …`.
#[derive(Debug, Subcommand)]
pub(crate) enum EntryCommand {
    /// A registry entry: owner, name, where its bytes are and their checksum (or pool policies).
    Show {
        /// The entry's address.
        address: Address,
        #[command(flatten)]
        endpoint: crate::account::Endpoint,
    },
}

/// `xiebao category …`.
#[derive(Debug, Subcommand)]
pub(crate) enum CategoryCommand {
    /// Every category: id, name and work clock T (deadlines are 7T, 2T after consensus, 10T).
    List {
        #[command(flatten)]
        endpoint: crate::account::Endpoint,
    },
}

/// Which registry an `EntryCommand` reads.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Registry {
    /// Apps.
    App,
    /// Datasets.
    Dataset,
    /// Workerpools.
    Workerpool,
}

#[allow(clippy::print_stdout, reason = "the command's output")]
pub(crate) fn show(registry: Registry, command: &EntryCommand) -> anyhow::Result<()> {
    let EntryCommand::Show { address, endpoint } = command;
    crate::client_runtime()?.block_on(async {
        let node = xiebao_rpc::http_client(&endpoint.rpc)?;
        let asking = || format!("asking {} for {address}", endpoint.rpc);
        let (json, lines): (serde_json::Value, Vec<String>) = match registry {
            Registry::App => {
                let Some(app) = node.app(*address).await.with_context(asking)? else {
                    bail!("no app is registered at {address}");
                };
                let lines = vec![
                    format!("app {address}: {}", app.name),
                    format!("  owner    {}", app.owner),
                    format!("  type     {}", app.app_type.as_str()),
                    format!("  code     {}", String::from_utf8_lossy(&app.multiaddr)),
                    format!("  sha256   {}", app.checksum),
                ];
                (serde_json::to_value(&app)?, lines)
            }
            Registry::Dataset => {
                let Some(dataset) = node.dataset(*address).await.with_context(asking)? else {
                    bail!("no dataset is registered at {address}");
                };
                let lines = vec![
                    format!("dataset {address}: {}", dataset.name),
                    format!("  owner    {}", dataset.owner),
                    format!("  file     {}", String::from_utf8_lossy(&dataset.multiaddr)),
                    format!("  sha256   {}", dataset.checksum),
                ];
                (serde_json::to_value(&dataset)?, lines)
            }
            Registry::Workerpool => {
                let Some(pool) = node.workerpool(*address).await.with_context(asking)? else {
                    bail!("no workerpool is registered at {address}");
                };
                let p = &pool.policy;
                let lines = vec![
                    format!("workerpool {address}: {}", pool.description),
                    format!("  owner    {}", pool.owner),
                    format!(
                        "  policy   worker stake {} % of the price, scheduler reward {} %, minimum bond {}, unbonding {} s",
                        p.worker_stake_ratio,
                        p.scheduler_reward_ratio,
                        crate::account::format_rlc(p.min_worker_stake),
                        p.unbonding_delay_s
                    ),
                ];
                (serde_json::to_value(&pool)?, lines)
            }
        };
        if endpoint.json {
            println!("{json}");
        } else {
            for line in lines {
                println!("{line}");
            }
        }
        Ok(())
    })
}

#[allow(clippy::print_stdout, reason = "the command's output")]
pub(crate) fn categories(command: &CategoryCommand) -> anyhow::Result<()> {
    let CategoryCommand::List { endpoint } = command;
    crate::client_runtime()?.block_on(async {
        let node = xiebao_rpc::http_client(&endpoint.rpc)?;
        let categories = node
            .categories()
            .await
            .with_context(|| format!("asking {} for the categories", endpoint.rpc))?;
        if endpoint.json {
            println!("{}", serde_json::to_string(&categories)?);
            return Ok(());
        }
        println!("| id | name | T (s) | contribution deadline | final deadline |");
        println!("|---:|---|---:|---:|---:|");
        for (id, c) in categories {
            let t = c.work_clock_time_ref_s;
            println!("| {id} | {} | {t} | {} s | {} s |", c.name, 7 * t, 10 * t);
        }
        Ok(())
    })
}
