//! `xiebao bridge deploy|deposit|withdraw|release|status|limits`: RLC between the mainchain
//! and the chain, every transfer followed stage by stage.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, U256};
use anyhow::{Context, bail};
use clap::Subcommand;
use xiebao_bridge::client::{self, DepositStage, WithdrawalStage};
use xiebao_bridge::contracts::{self, Artifacts, BridgeParams};
use xiebao_protocol::Event;
use xiebao_rpc::XiebaoApiClient;
use xiebao_sdk::client::{Node, Sender, SenderOptions};
use xiebao_types::Nrlc;
use xiebao_types::tx::{SetBridge, Withdraw};

use crate::common::{DepositArgs, Endpoints, KeyArgs, WithdrawArgs, format_rlc, parse_rlc};

#[derive(Debug, Subcommand)]
pub(crate) enum BridgeCommand {
    /// Deploy the bridge contract (and a development RLC token) on the mainchain with the
    /// chain's validators, then set it on the chain (needs the authority's key).
    Deploy {
        /// Pays the mainchain deployment (needs ether for gas).
        #[arg(long)]
        deployer_key_file: PathBuf,
        /// The chain's authority key (sends SetBridge).
        #[arg(long)]
        authority_key_file: PathBuf,
        /// An existing RLC token; without it a development token is deployed, its supply
        /// held by the deployer.
        #[arg(long)]
        token: Option<Address>,
        /// Supply of a new development token, RLC.
        #[arg(long, default_value = "1000000")]
        supply: String,
        /// Validators whose signatures release a withdrawal (M of N); default: a two-thirds
        /// majority of the chain's validators.
        #[arg(long)]
        threshold: Option<u64>,
        /// Largest deposit or withdrawal, RLC.
        #[arg(long, default_value = "100000")]
        max_per_transfer: String,
        /// Most RLC deposited (and, separately, released) per UTC day.
        #[arg(long, default_value = "1000000")]
        daily_limit: String,
        /// Folder with the compiled contracts (`scripts/build-contracts.sh`).
        #[arg(long)]
        artifacts: Option<PathBuf>,
        #[command(flatten)]
        endpoints: Endpoints,
    },
    /// Lock mainchain RLC in the bridge and follow it until it is minted on the chain.
    Deposit(DepositArgs),
    /// Burn chain RLC, wait for the validators' signatures, and release it on the mainchain.
    Withdraw(WithdrawArgs),
    /// Submit the release of a signed withdrawal to the mainchain (anyone may; the RLC goes
    /// to the withdrawal's recipient).
    Release {
        /// The withdrawal id.
        #[arg(long)]
        id: u64,
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        endpoints: Endpoints,
    },
    /// Where the bridge, a deposit or a withdrawal stands.
    Status {
        /// A deposit id (the mainchain contract's).
        #[arg(long, conflicts_with = "withdrawal")]
        deposit: Option<u64>,
        /// A withdrawal id (the chain's).
        #[arg(long)]
        withdrawal: Option<u64>,
        #[command(flatten)]
        endpoints: Endpoints,
    },
    /// The bridge contract's limits and today's usage.
    Limits {
        #[command(flatten)]
        endpoints: Endpoints,
    },
}

fn nrlc_u256(amount: Nrlc) -> U256 {
    U256::from(amount.0)
}

fn u256_rlc(amount: U256) -> String {
    u128::try_from(amount).map_or_else(|_| format!("{amount} nRLC"), |n| format_rlc(Nrlc(n)))
}

/// The chain's bridge settings, or an error saying how to set them.
async fn settings(node: &Node) -> anyhow::Result<xiebao_rpc::Bridge> {
    node.rpc.bridge().await?.with_context(|| {
        format!(
            "the chain at {} has no bridge yet: the authority deploys and sets it with `xiebao bridge deploy`",
            node.url
        )
    })
}

#[allow(clippy::print_stdout, reason = "the command's output")]
pub(crate) fn run(command: &BridgeCommand) -> anyhow::Result<()> {
    let runtime = crate::common::client_runtime()?;
    match command {
        BridgeCommand::Deploy {
            deployer_key_file,
            authority_key_file,
            token,
            supply,
            threshold,
            max_per_transfer,
            daily_limit,
            artifacts,
            endpoints,
        } => {
            let deployer = crate::common::signing_key(deployer_key_file, None)?;
            let authority = crate::common::signing_key(authority_key_file, None)?;
            let artifacts = Artifacts::load(&artifacts.clone().unwrap_or_else(Artifacts::default_dir))?;
            let (supply, max, daily) =
                (parse_rlc(supply)?, parse_rlc(max_per_transfer)?, parse_rlc(daily_limit)?);
            runtime.block_on(async {
                let node = Node::connect(&endpoints.rpc).await?;
                let status = node.rpc.chain_status().await?;
                let validators: Vec<Address> = status.validators.iter().map(|v| v.address).collect();
                let n = validators.len() as u64;
                let threshold = threshold.unwrap_or(2 * n / 3 + 1).min(n);
                if threshold == 0 || threshold > n {
                    bail!("--threshold {threshold}: must be between 1 and the {n} validators");
                }
                let provider = contracts::signing_provider(&endpoints.ethereum, &deployer)?;
                let token = match token {
                    Some(token) => *token,
                    None => contracts::deploy_rlc(&provider, &artifacts, nrlc_u256(supply)).await?,
                };
                let params = BridgeParams {
                    token,
                    xiebao_chain_id: status.chain_id,
                    validators,
                    threshold,
                    max_per_transfer: nrlc_u256(max),
                    daily_limit: nrlc_u256(daily),
                };
                let bridge = contracts::deploy_bridge(&provider, &artifacts, &params).await?;
                let mainchain_id = contracts::chain_id(&provider).await?;
                let sender = Sender::spawn(node.clone(), authority, SenderOptions::default());
                sender
                    .send(
                        SetBridge { mainchain_id, contract: bridge, threshold, max_per_transfer: max }
                            .into(),
                    )
                    .await
                    .context("setting the bridge on the chain")?;
                if endpoints.json {
                    println!(
                        "{}",
                        serde_json::json!({ "bridge": bridge, "token": token, "mainchain_id": mainchain_id, "threshold": threshold })
                    );
                } else {
                    println!("bridge {bridge} on mainchain {mainchain_id} ({threshold} of {n} validators)");
                    println!("token  {token}");
                }
                Ok(())
            })
        }
        BridgeCommand::Deposit(args) => deposit(args),
        BridgeCommand::Withdraw(args) => withdraw(args),
        BridgeCommand::Release { id, key, endpoints } => {
            let key = crate::common::signing_key(&key.key_file, key.password_file.as_deref())?;
            runtime.block_on(async {
                let node = Node::connect(&endpoints.rpc).await?;
                let settings = settings(&node).await?;
                let provider = contracts::signing_provider(&endpoints.ethereum, &key)?;
                let (view, _) = client::withdrawal_stage(&provider, settings.contract, &node, *id).await?;
                let tx = client::release(&provider, settings.contract, &view).await?;
                if endpoints.json {
                    println!("{}", serde_json::json!({ "id": id, "stage": "released", "mainchain_tx": tx }));
                } else {
                    println!(
                        "released {} to {} on the mainchain (tx {tx})",
                        format_rlc(view.withdrawal.amount),
                        view.withdrawal.recipient
                    );
                }
                Ok(())
            })
        }
        BridgeCommand::Status { deposit, withdrawal, endpoints } => runtime.block_on(async {
            let node = Node::connect(&endpoints.rpc).await?;
            let settings = settings(&node).await?;
            let provider = contracts::provider(&endpoints.ethereum)?;
            if let Some(id) = deposit {
                let claims = node.rpc.deposit(*id).await?;
                // Block 0: the deposit's block is not known here; only the stage matters.
                let stage = client::deposit_stage(&provider, &node, *id, 0).await?;
                if endpoints.json {
                    println!("{}", serde_json::json!({ "deposit": id, "stage": stage, "claims": claims }));
                } else {
                    match stage {
                        DepositStage::Seen { .. } => println!(
                            "deposit {id}: not attested by any validator yet (waiting for confirmations, or not made)"
                        ),
                        DepositStage::Attested { attestations, threshold } => {
                            println!("deposit {id}: attested {attestations}/{threshold}")
                        }
                        DepositStage::Minted { recipient, amount } => println!(
                            "deposit {id}: minted {} to {recipient}",
                            format_rlc(Nrlc(amount))
                        ),
                    }
                }
                return Ok(());
            }
            if let Some(id) = withdrawal {
                let (view, stage) =
                    client::withdrawal_stage(&provider, settings.contract, &node, *id).await?;
                if endpoints.json {
                    println!("{}", serde_json::json!({ "withdrawal": view, "stage": stage }));
                } else {
                    let w = &view.withdrawal;
                    let stage = match stage {
                        WithdrawalStage::Burned { signatures, threshold } => {
                            format!("burned, signed {signatures}/{threshold}")
                        }
                        WithdrawalStage::Signed { signatures } => format!(
                            "signed by {signatures} validators, ready: `xiebao bridge release --id {id}`"
                        ),
                        WithdrawalStage::Released => "released on the mainchain".to_owned(),
                    };
                    println!(
                        "withdrawal {id}: {} from {} to {}: {stage}",
                        format_rlc(w.amount),
                        w.account,
                        w.recipient
                    );
                }
                return Ok(());
            }
            let limits = client::limits(&provider, settings.contract).await?;
            let pending = pending_releases(&provider, &node, &settings).await?;
            let supply = settings.minted.0 - settings.burned.0;
            let expected = U256::from(supply) + pending;
            if endpoints.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "chain": settings,
                        "locked": limits.locked,
                        "unreleased": pending,
                        "balanced": expected == limits.locked,
                    })
                );
            } else {
                println!("bridge {} on mainchain {}", settings.contract, settings.mainchain_id);
                println!("  threshold        {} validators", settings.threshold);
                println!("  deposits minted  {} ({})", settings.deposits_minted, format_rlc(settings.minted));
                println!("  withdrawals      {} ({} burned)", settings.next_withdrawal, format_rlc(settings.burned));
                println!("  locked on Ethereum {}", u256_rlc(limits.locked));
                println!("  bridged supply   {} + {} burned, not yet released", format_rlc(Nrlc(supply)), u256_rlc(pending));
                if expected == limits.locked {
                    println!("  balanced: locked = bridged supply + unreleased");
                } else {
                    println!(
                        "  NOT balanced: locked {} ≠ {} (deposits waiting to be minted, or a fault)",
                        u256_rlc(limits.locked),
                        u256_rlc(expected)
                    );
                }
            }
            Ok(())
        }),
        BridgeCommand::Limits { endpoints } => runtime.block_on(async {
            let node = Node::connect(&endpoints.rpc).await?;
            let settings = settings(&node).await?;
            let provider = contracts::provider(&endpoints.ethereum)?;
            let limits = client::limits(&provider, settings.contract).await?;
            if endpoints.json {
                println!("{}", serde_json::to_string(&limits)?);
            } else {
                println!("bridge {}{}", settings.contract, if limits.paused { " (PAUSED)" } else { "" });
                println!("  per transfer     {}", u256_rlc(limits.max_per_transfer));
                println!(
                    "  deposits today   {} of {}",
                    u256_rlc(limits.deposited_today),
                    u256_rlc(limits.daily_limit)
                );
                println!(
                    "  releases today   {} of {}",
                    u256_rlc(limits.released_today),
                    u256_rlc(limits.daily_limit)
                );
                println!("  validators       {} of {}", limits.threshold, limits.validators.len());
            }
            Ok(())
        }),
    }
}

/// RLC burned on the chain and not yet released on the mainchain.
async fn pending_releases(
    provider: &xiebao_bridge::DynProvider,
    node: &Node,
    settings: &xiebao_rpc::Bridge,
) -> anyhow::Result<U256> {
    let mut pending = U256::ZERO;
    for id in 0..settings.next_withdrawal {
        let (view, stage) = client::withdrawal_stage(provider, settings.contract, node, id).await?;
        if stage != WithdrawalStage::Released {
            pending += U256::from(view.withdrawal.amount.0);
        }
    }
    Ok(pending)
}

/// A one-line stage display: a spinner on a terminal, plain lines otherwise, silent for JSON.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last: std::cell::RefCell<String>,
    json: bool,
}

impl Progress {
    fn new(json: bool) -> Self {
        let bar = (!json && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self { bar, last: std::cell::RefCell::new(String::new()), json }
    }

    #[allow(clippy::print_stderr, reason = "progress goes to stderr")]
    fn say(&self, message: String) {
        if *self.last.borrow() == message {
            return;
        }
        match &self.bar {
            Some(bar) => bar.set_message(message.clone()),
            None if !self.json => eprintln!("  {message}"),
            None => {}
        }
        *self.last.borrow_mut() = message;
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `bridge deposit` (also `xiebao account deposit`).
#[allow(clippy::print_stdout, reason = "the command's output")]
pub(crate) fn deposit(args: &DepositArgs) -> anyhow::Result<()> {
    let DepositArgs { amount, to, no_wait, key, endpoints } = args;
    let runtime = crate::common::client_runtime()?;
    let amount = parse_rlc(amount)?;
    let key = crate::common::signing_key(&key.key_file, key.password_file.as_deref())?;
    let recipient = to.unwrap_or(key.address());
    runtime.block_on(async {
                let node = Node::connect(&endpoints.rpc).await?;
                let settings = settings(&node).await?;
                let provider = contracts::signing_provider(&endpoints.ethereum, &key)?;
                let deposited = client::deposit(
                    &provider,
                    settings.contract,
                    key.address(),
                    nrlc_u256(amount),
                    recipient,
                )
                .await?;
                if !endpoints.json {
                    println!(
                        "deposit {} of {} locked in mainchain block {} (tx {})",
                        deposited.id,
                        format_rlc(amount),
                        deposited.block,
                        deposited.tx
                    );
                }
                if *no_wait {
                    if endpoints.json {
                        println!("{}", serde_json::to_string(&deposited)?);
                    }
                    return Ok(());
                }
                let progress = Progress::new(endpoints.json);
                let start = Instant::now();
                loop {
                    let stage =
                        client::deposit_stage(&provider, &node, deposited.id, deposited.block).await?;
                    match &stage {
                        DepositStage::Seen { confirmations } => progress.say(format!(
                            "seen on the mainchain, {confirmations} confirmation(s); waiting for the validators"
                        )),
                        DepositStage::Attested { attestations, threshold } => progress
                            .say(format!("attested by {attestations} of {threshold} validators needed")),
                        DepositStage::Minted { recipient, amount } => {
                            progress.done();
                            if endpoints.json {
                                println!("{}", serde_json::json!({ "deposit": deposited, "stage": stage }));
                            } else {
                                println!(
                                    "minted {} to {recipient} on the chain",
                                    format_rlc(Nrlc(*amount))
                                );
                            }
                            return Ok(());
                        }
                    }
                    if start.elapsed() > Duration::from_secs(600) {
                        bail!(
                            "deposit {} is not minted after 10 minutes; follow it with `xiebao bridge status --deposit {}` (are the validators' oracles running?)",
                            deposited.id,
                            deposited.id
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
}

/// `bridge withdraw` (also `xiebao account withdraw`).
#[allow(clippy::print_stdout, reason = "the command's output")]
pub(crate) fn withdraw(args: &WithdrawArgs) -> anyhow::Result<()> {
    let WithdrawArgs { amount, to, no_release, key, endpoints } = args;
    let runtime = crate::common::client_runtime()?;
    let amount = parse_rlc(amount)?;
    let key = crate::common::signing_key(&key.key_file, key.password_file.as_deref())?;
    let recipient = to.unwrap_or(key.address());
    runtime.block_on(async {
                let node = Node::connect(&endpoints.rpc).await?;
                let settings = settings(&node).await?;
                let account = node.rpc.account(key.address()).await?;
                if account.free < amount {
                    bail!(
                        "{} has {} free on the chain; the withdrawal needs {} (missing {})",
                        key.address(),
                        format_rlc(account.free),
                        format_rlc(amount),
                        format_rlc(Nrlc(amount.0 - account.free.0))
                    );
                }
                let sender = Sender::spawn(node.clone(), key.clone(), SenderOptions::default());
                let applied = sender
                    .send(Withdraw { recipient, amount }.into())
                    .await
                    .context("the chain refused the withdrawal")?;
                let id = applied
                    .events
                    .iter()
                    .find_map(|e| match e {
                        Event::WithdrawalRequested { id, .. } => Some(*id),
                        _ => None,
                    })
                    .context("the withdrawal emitted no WithdrawalRequested event")?;
                if !endpoints.json {
                    println!(
                        "withdrawal {id}: {} burned on the chain in block {}",
                        format_rlc(amount),
                        applied.height
                    );
                }
                let provider = contracts::signing_provider(&endpoints.ethereum, &key)?;
                let progress = Progress::new(endpoints.json);
                let start = Instant::now();
                let view = loop {
                    let (view, stage) =
                        client::withdrawal_stage(&provider, settings.contract, &node, id).await?;
                    match stage {
                        WithdrawalStage::Burned { signatures, threshold } => progress
                            .say(format!("signed by {signatures} of {threshold} validators needed")),
                        WithdrawalStage::Signed { .. } | WithdrawalStage::Released => break view,
                    }
                    if start.elapsed() > Duration::from_secs(600) {
                        bail!(
                            "withdrawal {id} lacks signatures after 10 minutes; follow it with `xiebao bridge status --withdrawal {id}`"
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                };
                progress.done();
                if *no_release {
                    if endpoints.json {
                        println!("{}", serde_json::json!({ "id": id, "stage": "signed" }));
                    } else {
                        println!(
                            "withdrawal {id} is signed; release it with `xiebao bridge release --id {id}`"
                        );
                    }
                    return Ok(());
                }
                let tx = client::release(&provider, settings.contract, &view).await?;
                if endpoints.json {
                    println!("{}", serde_json::json!({ "id": id, "stage": "released", "mainchain_tx": tx }));
                } else {
                    println!("released {} to {recipient} on the mainchain (tx {tx})", format_rlc(amount));
                }
                Ok(())
            })
}
