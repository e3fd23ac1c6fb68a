//! `xiebao account show|transfer` and `xiebao tx show`: balances and payments over a node's
//! JSON-RPC.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256};
use anyhow::{Context, bail};
use clap::Subcommand;
use xiebao_rpc::{TxStatus, XiebaoApiClient};
use xiebao_types::Nrlc;
use xiebao_types::tx::{Transaction, Transfer};

use crate::common::{Endpoint, format_rlc, parse_rlc};

/// `xiebao account …`.
#[derive(Debug, Subcommand)]
pub(crate) enum AccountCommand {
    /// Bring RLC from Ethereum to this account on the chain (through the bridge: locked on
    /// the mainchain, minted here once the validators attest it)
    Deposit(crate::common::DepositArgs),
    /// Take RLC from this account back to Ethereum (burned here, released on the mainchain
    /// with the validators' signatures)
    Withdraw(crate::common::WithdrawArgs),
    /// An account's balances, nonce and pool stake (when a leaving stake comes back).
    Show {
        /// The account.
        address: Address,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Pay RLC to another account and wait until the payment is final.
    Transfer {
        /// The recipient.
        #[arg(long)]
        to: Address,
        /// Amount in RLC (up to 9 decimals, e.g. 1.5).
        #[arg(long)]
        amount: String,
        /// The payer's key: a V3 keystore or a hex key file.
        #[arg(long, env = "XIEBAO_KEY_FILE")]
        key_file: PathBuf,
        /// File holding the keystore's password (else XIEBAO_PASSWORD or a prompt).
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Return once the node accepted it, without waiting for finality.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Bond or release stake in a workerpool.
    #[command(flatten)]
    Stake(StakeCommand),
}

/// `xiebao account stake|unstake`.
#[derive(Debug, Subcommand)]
pub(crate) enum StakeCommand {
    /// Join a workerpool (or add to your stake there) by bonding free RLC; workers must be
    /// members to contribute.
    Stake {
        /// The workerpool.
        #[arg(long)]
        workerpool: Address,
        /// Amount bonded, RLC.
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        key: crate::common::KeyArgs,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Leave your workerpool: the stake comes back after the pool's unbonding delay.
    Unstake {
        /// The workerpool.
        #[arg(long)]
        workerpool: Address,
        #[command(flatten)]
        key: crate::common::KeyArgs,
        #[command(flatten)]
        endpoint: Endpoint,
    },
}

/// `xiebao tx …`.
#[derive(Debug, Subcommand)]
pub(crate) enum TxCommand {
    /// Where a transaction stands: pending, included (with its events), rejected (why), unknown.
    Show {
        /// The transaction id.
        hash: B256,
        #[command(flatten)]
        endpoint: Endpoint,
    },
}

#[allow(clippy::print_stdout, reason = "the command's output")]
fn stake(command: &StakeCommand) -> anyhow::Result<()> {
    let (key, endpoint, call, what) = match command {
        StakeCommand::Stake { workerpool, amount, key, endpoint } => {
            let stake = parse_rlc(amount)?;
            let call = xiebao_types::tx::JoinPool { workerpool: *workerpool, stake };
            (key, endpoint, call.into(), format!("{} bonded in {workerpool}", format_rlc(stake)))
        }
        StakeCommand::Unstake { workerpool, key, endpoint } => {
            let call = xiebao_types::tx::LeavePool { workerpool: *workerpool };
            (key, endpoint, call.into(), format!("leaving {workerpool}"))
        }
    };
    let key = crate::common::signing_key(&key.key_file, key.password_file.as_deref())?;
    crate::common::client_runtime()?.block_on(async {
        let node = xiebao_sdk::client::Node::connect(&endpoint.rpc).await?;
        let address = key.address();
        let applied = crate::common::send_call(&node, key, call, "it").await?;
        let membership = node.rpc.membership(address).await?;
        if endpoint.json {
            println!(
                "{}",
                serde_json::json!({ "block": applied.height, "membership": membership })
            );
        } else {
            println!("{what} (block {})", applied.height);
            if let Some(m) = membership {
                let now = crate::common::chain_now(&node.rpc).await?;
                println!("  stake: {}", crate::common::describe_membership(&m, now));
            }
        }
        Ok(())
    })
}

#[allow(clippy::print_stdout, reason = "the command's output")]
pub(crate) fn run(command: &AccountCommand) -> anyhow::Result<()> {
    match command {
        // The bridge's transfers, dispatched by main to `bridge`.
        AccountCommand::Deposit(_) | AccountCommand::Withdraw(_) => {
            unreachable!("main dispatches `account deposit|withdraw` to the bridge command")
        }
        AccountCommand::Stake(command) => stake(command),
        AccountCommand::Show { address, endpoint } => {
            crate::common::client_runtime()?.block_on(async {
                let client = xiebao_rpc::http_client(&endpoint.rpc)?;
                let account = client
                    .account(*address)
                    .await
                    .with_context(|| format!("asking {} for {address}", endpoint.rpc))?;
                if endpoint.json {
                    println!("{}", serde_json::to_string(&account)?);
                } else {
                    println!("account {address}");
                    println!("  free    {}", format_rlc(account.free));
                    println!("  frozen  {}", format_rlc(account.frozen));
                    println!("  nonce   {}", account.nonce);
                    // A worker's stake is part of `frozen`: say where, and when it comes back.
                    if let Some(m) = client.membership(*address).await? {
                        let now = crate::common::chain_now(&client).await?;
                        println!("  stake   {}", crate::common::describe_membership(&m, now));
                    }
                }
                Ok(())
            })
        }
        AccountCommand::Transfer { to, amount, key_file, password_file, no_wait, endpoint } => {
            let amount = parse_rlc(amount)?;
            let key = crate::common::signing_key(key_file, password_file.as_deref())?;
            crate::common::client_runtime()?.block_on(async {
                let client = xiebao_rpc::http_client(&endpoint.rpc)?;
                let from = key.address();
                let status = client
                    .chain_status()
                    .await
                    .with_context(|| format!("asking {} for its status", endpoint.rpc))?;
                let account = client.account(from).await?;
                if account.free < amount {
                    let missing = Nrlc(amount.0 - account.free.0);
                    bail!(
                        "{from} has {} free; the transfer needs {} (missing {}). Fund it first, e.g. from a faucet key: xiebao account transfer --to {from} --amount {} --key-file FAUCET.key",
                        format_rlc(account.free),
                        format_rlc(amount),
                        format_rlc(missing),
                        missing.to_rlc_string(),
                    );
                }
                let tx = Transaction {
                    chain_id: status.chain_id,
                    nonce: account.nonce,
                    calls: vec![Transfer { to: *to, amount }.into()],
                }
                .sign(&key);
                let hash = client
                    .send_raw_transaction(tx.encode_to_vec().into())
                    .await
                    .context("the node refused the transfer")?;
                if *no_wait {
                    report(endpoint.json, hash, None);
                    return Ok(());
                }
                let status = wait(&client, hash).await?;
                report(endpoint.json, hash, Some(&status));
                Ok(())
            })
        }
    }
}

/// Polls until the transaction is final or dropped (at most a minute).
async fn wait(
    client: &xiebao_rpc::jsonrpsee::http_client::HttpClient,
    hash: B256,
) -> anyhow::Result<TxStatus> {
    let start = Instant::now();
    loop {
        match client.transaction(hash).await? {
            included @ TxStatus::Included { .. } => return Ok(included),
            TxStatus::Rejected { error } => bail!("transaction {hash} was rejected: {error}"),
            TxStatus::Pending | TxStatus::Unknown => {}
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!(
                "transaction {hash} is still pending after 60 s; follow it with `xiebao tx show {hash}`"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[allow(clippy::print_stdout, reason = "the command's output")]
fn report(json: bool, hash: B256, status: Option<&TxStatus>) {
    if json {
        println!("{}", serde_json::json!({ "hash": hash, "status": status }));
        return;
    }
    match status {
        Some(TxStatus::Included { height, .. }) => println!("{hash} final in block {height}"),
        _ => println!("{hash} accepted"),
    }
}

#[allow(clippy::print_stdout, reason = "the command's output")]
pub(crate) fn run_tx(command: &TxCommand) -> anyhow::Result<()> {
    match command {
        TxCommand::Show { hash, endpoint } => crate::common::client_runtime()?.block_on(async {
            let client = xiebao_rpc::http_client(&endpoint.rpc)?;
            let status = client
                .transaction(*hash)
                .await
                .with_context(|| format!("asking {} for {hash}", endpoint.rpc))?;
            if endpoint.json {
                println!("{}", serde_json::to_string(&status)?);
                return Ok(());
            }
            match status {
                TxStatus::Pending => println!("{hash}: pending in the node's mempool"),
                TxStatus::Unknown => println!("{hash}: unknown to this node"),
                TxStatus::Rejected { error } => println!("{hash}: rejected: {error}"),
                TxStatus::Included { height, index, events } => {
                    println!("{hash}: final in block {height} (position {index})");
                    for event in events {
                        println!("  {}", serde_json::to_string(&event)?);
                    }
                }
            }
            Ok(())
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rlc_amounts_parse_and_print_exactly() {
        for (text, nrlc) in
            [("1", 1_000_000_000), ("1.5", 1_500_000_000), ("0.000000001", 1), (".25", 250_000_000)]
        {
            assert_eq!(parse_rlc(text).unwrap(), Nrlc(nrlc), "{text}");
        }
        for bad in ["", ".", "1.0000000001", "-1", "1e9", "abc", "1.2.3"] {
            assert!(parse_rlc(bad).is_err(), "{bad}");
        }
        assert_eq!(format_rlc(Nrlc(1_500_000_000)), "1.5 RLC");
        assert_eq!(format_rlc(Nrlc(7_000_000_000)), "7 RLC");
        assert_eq!(format_rlc(Nrlc(1)), "0.000000001 RLC");
    }
}
