//! `xiebao app|dataset|workerpool deploy|show|transfer` and `xiebao category list`: registry
//! entries as the chain holds them, and the calls that change them.

use std::path::PathBuf;

use alloy_primitives::{Address, B256, Bytes, U256};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use sha2::{Digest as _, Sha256};
use xiebao_rpc::XiebaoApiClient;
use xiebao_sdk::client::{Node, Sender, SenderOptions};
use xiebao_types::Tag;
use xiebao_types::order::{AnyOrder, AppOrder, DatasetOrder, WorkerpoolOrder};
use xiebao_types::tx::{
    AppType, Call, CreateApp, CreateDataset, CreateWorkerpool, PoolPolicy, TransferAsset,
};

/// `xiebao app|dataset|workerpool …`.
#[derive(Debug, Subcommand)]
pub(crate) enum EntryCommand {
    /// Register an entry owned by --key-file (and, with --price, publish its order in the
    /// market): an app or dataset from a file whose sha256 workers check, a workerpool from a
    /// description and its policies.
    Deploy(DeployArgs),
    /// A registry entry: owner, name, where its bytes are and their checksum (or pool policies).
    Show {
        /// The entry's address.
        address: Address,
        #[command(flatten)]
        endpoint: crate::common::Endpoint,
    },
    /// The registered entries of this kind, optionally only one owner's.
    List {
        /// Only entries this account owns.
        #[arg(long)]
        owner: Option<Address>,
        #[command(flatten)]
        endpoint: crate::common::Endpoint,
    },
    /// Give an entry to another owner (its current owner's key).
    Transfer {
        /// The entry's address.
        address: Address,
        /// The new owner.
        #[arg(long)]
        to: Address,
        #[command(flatten)]
        key: crate::common::KeyArgs,
        #[command(flatten)]
        endpoint: crate::common::Endpoint,
    },
}

/// `xiebao app|dataset|workerpool deploy`.
#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// The app or dataset name, or the workerpool's description.
    #[arg(long)]
    name: String,
    /// The app's code or the dataset's file (its sha256 goes on chain); not for workerpools.
    #[arg(long)]
    file: Option<PathBuf>,
    /// The checksum workers check, `sha256:<64 hex digits>`, instead of --file's sha256 (with
    /// --url): for an OCI app pulled from a registry, its image's manifest digest (`podman
    /// image inspect --format '{{.Digest}}'`).
    #[arg(long, conflicts_with_all = ["file", "devnet"])]
    checksum: Option<String>,
    /// Where workers download the file (http://…); with --devnet, stored in the devnet's
    /// result store instead.
    #[arg(long, conflicts_with = "devnet")]
    url: Option<String>,
    /// A devnet's data directory: the file goes into its result store.
    #[arg(long)]
    devnet: Option<PathBuf>,
    /// How workers run the app: wasm or oci.
    #[arg(long, default_value = "wasm")]
    r#type: AppType,
    /// Publish an order at this price per task (RLC) in the node's market.
    #[arg(long)]
    price: Option<String>,
    /// Tasks the published order sells.
    #[arg(long, default_value_t = 1_000_000)]
    volume: u64,
    #[command(flatten)]
    key: crate::common::KeyArgs,
    #[command(flatten)]
    endpoint: crate::common::Endpoint,
}

/// `xiebao category …`.
#[derive(Debug, Subcommand)]
pub(crate) enum CategoryCommand {
    /// Every category: id, name and work clock T (deadlines are 7T, 2T after consensus, 10T).
    List {
        #[command(flatten)]
        endpoint: crate::common::Endpoint,
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

/// Runs an `EntryCommand` on `registry`.
pub(crate) fn run(registry: Registry, command: &EntryCommand) -> anyhow::Result<()> {
    match command {
        EntryCommand::Deploy(args) => deploy(registry, args),
        EntryCommand::Show { address, endpoint } => show(registry, *address, endpoint),
        EntryCommand::Transfer { address, to, key, endpoint } => {
            transfer(*address, *to, key, endpoint)
        }
        EntryCommand::List { owner, endpoint } => list(registry, *owner, endpoint),
    }
}

/// Where the file's bytes will be fetched from: `--url`, or stored in a devnet's result store.
fn file_location(args: &DeployArgs, bytes: &[u8]) -> anyhow::Result<String> {
    if let Some(url) = &args.url {
        return Ok(url.clone());
    }
    let Some(devnet) = &args.devnet else {
        bail!(
            "say where workers download the file: --url http://… (or --devnet DIR for a devnet's result store)"
        );
    };
    let layout: serde_json::Value = serde_json::from_slice(
        &std::fs::read(devnet.join("devnet.json"))
            .with_context(|| format!("{} is not a devnet data directory", devnet.display()))?,
    )?;
    let listen = layout["results_listen"].as_str().context("devnet.json names no result store")?;
    let store = xiebao_results::ResultStore::open(&devnet.join("results"))?;
    let cid = store.put(bytes)?;
    Ok(format!("http://{listen}/v1/results/{cid}"))
}

/// The form `--checksum` takes.
const CHECKSUM_FORM: &str = "sha256:<64 hex digits>";

/// Parses `--checksum`: `sha256:` and 64 hex digits (either case).
fn parse_checksum(text: &str) -> anyhow::Result<B256> {
    let bad = || {
        anyhow::anyhow!(
            "--checksum {text}: expected {CHECKSUM_FORM} (for an image in a registry, the manifest digest `podman image inspect --format '{{{{.Digest}}}}' IMAGE` prints)"
        )
    };
    let hex = text.strip_prefix("sha256:").ok_or_else(bad)?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    hex.parse().map_err(|_| bad())
}

/// `--checksum` with `--url`: the checksum as given, and the location. For an OCI app whose
/// location is an image reference, the reference must parse, and one that pins a digest
/// (`@sha256:…`) must pin this one (workers would refuse it otherwise).
fn given_checksum(args: &DeployArgs, text: &str) -> anyhow::Result<(B256, String)> {
    let checksum = parse_checksum(text)?;
    let Some(url) = &args.url else {
        bail!(
            "--checksum needs --url: where workers fetch the bytes, or the image reference they pull"
        );
    };
    if args.r#type == AppType::Oci
        && let xiebao_runtime::oci::AppLocation::Image(reference) =
            xiebao_runtime::oci::AppLocation::parse(url)?
        && let Some(pinned) = reference.digest()
        && B256::from(pinned) != checksum
    {
        bail!(
            "--url {url} pins manifest digest sha256:{}, but --checksum is {text}: workers would refuse the image",
            alloy_primitives::hex::encode(pinned)
        );
    }
    Ok((checksum, url.clone()))
}

#[allow(clippy::print_stdout, reason = "the command's output")]
fn deploy(registry: Registry, args: &DeployArgs) -> anyhow::Result<()> {
    let key = crate::common::signing_key(&args.key.key_file, args.key.password_file.as_deref())?;
    let owner = key.address();
    let price = args.price.as_deref().map(crate::common::parse_rlc).transpose()?;
    let (call, address, kind): (Call, Address, &str) = match registry {
        Registry::App | Registry::Dataset => {
            let (checksum, location) = match (&args.file, &args.checksum) {
                (_, Some(checksum)) => given_checksum(args, checksum)?,
                (Some(file), None) => {
                    let bytes = std::fs::read(file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    let checksum = B256::from(<[u8; 32]>::from(Sha256::digest(&bytes)));
                    (checksum, file_location(args, &bytes)?)
                }
                (None, None) => bail!(
                    "--file is needed: the app's code or the dataset's file (or, for an image in a registry, --url REFERENCE --checksum sha256:<its manifest digest>)"
                ),
            };
            let multiaddr = Bytes::from(location.into_bytes());
            if matches!(registry, Registry::App) {
                let call = CreateApp {
                    owner,
                    name: args.name.clone(),
                    app_type: args.r#type,
                    multiaddr,
                    checksum,
                    mrenclave: Bytes::new(),
                };
                let address = xiebao_protocol::app_address(&call);
                (call.into(), address, "app")
            } else {
                let call = CreateDataset { owner, name: args.name.clone(), multiaddr, checksum };
                let address = xiebao_protocol::dataset_address(&call);
                (call.into(), address, "dataset")
            }
        }
        Registry::Workerpool => {
            if args.checksum.is_some() {
                bail!("--checksum is for apps and datasets, not workerpools");
            }
            let call = CreateWorkerpool {
                owner,
                description: args.name.clone(),
                policy: PoolPolicy::default(),
            };
            let address = xiebao_protocol::workerpool_address(&call);
            (call.into(), address, "workerpool")
        }
    };
    crate::common::client_runtime()?.block_on(async {
        let node = Node::connect(&args.endpoint.rpc).await?;
        let sender = Sender::spawn(node.clone(), key.clone(), SenderOptions::default());
        let applied = sender.send(call).await.with_context(|| format!("registering the {kind}"))?;
        let mut order_hash = None;
        if let Some(price) = price {
            let salt = B256::from(rand::random::<[u8; 32]>());
            let volume = U256::from(args.volume);
            let price = price.to_u256();
            let none = Address::ZERO;
            let mut order = match registry {
                Registry::App => AnyOrder::App(AppOrder {
                    app: address,
                    appprice: price,
                    volume,
                    tag: Tag::NONE,
                    datasetrestrict: none,
                    workerpoolrestrict: none,
                    requesterrestrict: none,
                    salt,
                    sign: Bytes::new(),
                }),
                Registry::Dataset => AnyOrder::Dataset(DatasetOrder {
                    dataset: address,
                    datasetprice: price,
                    volume,
                    tag: Tag::NONE,
                    apprestrict: none,
                    workerpoolrestrict: none,
                    requesterrestrict: none,
                    salt,
                    sign: Bytes::new(),
                }),
                Registry::Workerpool => AnyOrder::Workerpool(WorkerpoolOrder {
                    workerpool: address,
                    workerpoolprice: price,
                    volume,
                    tag: Tag::NONE,
                    category: U256::ZERO,
                    trust: U256::from(100),
                    apprestrict: none,
                    datasetrestrict: none,
                    requesterrestrict: none,
                    salt,
                    sign: Bytes::new(),
                }),
            };
            order.sign_with(&node.domain, &key);
            let json = order.to_json();
            let hash = xiebao_rpc::MarketApiClient::publish(&node.rpc, json, None)
                .await
                .context("publishing the order in the market")?;
            order_hash = Some(hash);
        }
        if args.endpoint.json {
            println!("{}", serde_json::json!({ "address": address, "block": applied.height, "order": order_hash }));
        } else {
            println!("{kind} {address} registered in block {}", applied.height);
            if let (Some(hash), Some(price)) = (order_hash, price) {
                println!("order {hash} published: {} per task, {}", crate::common::format_rlc(price), crate::common::count(args.volume, "task"));
            }
        }
        Ok(())
    })
}

#[allow(clippy::print_stdout, reason = "the command's output")]
fn list(
    registry: Registry,
    owner: Option<Address>,
    endpoint: &crate::common::Endpoint,
) -> anyhow::Result<()> {
    crate::common::client_runtime()?.block_on(async {
        let node = xiebao_rpc::http_client(&endpoint.rpc)?;
        let entries = node
            .entries(owner, None)
            .await
            .with_context(|| format!("asking {} for the registries", endpoint.rpc))?;
        // (address, owner, name, detail) per entry.
        let rows: Vec<(Address, Address, String, String)> = match registry {
            Registry::App => entries
                .apps
                .iter()
                .map(|(a, e)| (*a, e.owner, e.name.clone(), e.app_type.as_str().to_owned()))
                .collect(),
            Registry::Dataset => entries
                .datasets
                .iter()
                .map(|(a, e)| (*a, e.owner, e.name.clone(), e.checksum.to_string()))
                .collect(),
            Registry::Workerpool => entries
                .workerpools
                .iter()
                .map(|(a, e)| {
                    let stake = format!("worker stake {} %", e.policy.worker_stake_ratio);
                    (*a, e.owner, e.description.clone(), stake)
                })
                .collect(),
        };
        if endpoint.json {
            let json: Vec<serde_json::Value> = rows
                .iter()
                .map(|(a, o, n, d)| serde_json::json!({ "address": a, "owner": o, "name": n, "detail": d }))
                .collect();
            println!("{}", serde_json::Value::Array(json));
        } else if rows.is_empty() {
            println!("none");
        } else {
            for (address, owner, name, detail) in rows {
                println!("{address}  {name}  ({detail})  owner {owner}");
            }
        }
        Ok(())
    })
}

#[allow(clippy::print_stdout, reason = "the command's output")]
fn transfer(
    address: Address,
    to: Address,
    key: &crate::common::KeyArgs,
    endpoint: &crate::common::Endpoint,
) -> anyhow::Result<()> {
    let key = crate::common::signing_key(&key.key_file, key.password_file.as_deref())?;
    crate::common::client_runtime()?.block_on(async {
        let node = Node::connect(&endpoint.rpc).await?;
        let call = TransferAsset { asset: address, to }.into();
        let applied = crate::common::send_call(&node, key, call, "the transfer").await?;
        if endpoint.json {
            println!(
                "{}",
                serde_json::json!({ "asset": address, "owner": to, "block": applied.height })
            );
        } else {
            println!("{address} now belongs to {to} (block {})", applied.height);
        }
        Ok(())
    })
}

#[allow(clippy::print_stdout, reason = "the command's output")]
fn show(
    registry: Registry,
    address: Address,
    endpoint: &crate::common::Endpoint,
) -> anyhow::Result<()> {
    let address = &address;
    crate::common::client_runtime()?.block_on(async {
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
                        crate::common::format_rlc(p.min_worker_stake),
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
    crate::common::client_runtime()?.block_on(async {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_are_sha256_and_64_hex_digits() {
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(
            parse_checksum(&format!("sha256:{hex}")).unwrap().to_string(),
            format!("0x{hex}")
        );
        let upper = parse_checksum(&format!("sha256:{}", hex.to_uppercase())).unwrap();
        assert_eq!(upper.to_string(), format!("0x{hex}"));
        for bad in [
            hex.clone(),
            format!("sha512:{hex}"),
            format!("sha256:{}", &hex[1..]),
            format!("sha256:{hex}0"),
            format!("sha256:0x{}", &hex[2..]),
            format!("sha256:{}g", &hex[1..]),
        ] {
            let error = parse_checksum(&bad).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("--checksum {bad}: expected sha256:<64 hex digits>")),
                "{error}"
            );
        }
    }
}
