//! `xiebao order hash|sign|verify`: offline EIP-712 order tools, compatible with iExec's SDK.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use xiebao_types::order::{AnyOrder, Domain, OrderKind};
use xiebao_types::{Address, crypto};

/// `xiebao order …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum OrderCommand {
    /// Print an order's EIP-712 typed-data hash.
    Hash(HashArgs),
    /// Print the order with `sign` filled in.
    Sign(SignArgs),
    /// Check that a signed order was signed by --signer (exit 0) or say why not (exit 1).
    Verify(VerifyArgs),
    /// Print a new unsigned order (iExec SDK fields, a random salt) to edit, sign and publish.
    Init {
        /// app, dataset, workerpool or request.
        #[arg(long, value_parser = parse_kind)]
        kind: OrderKind,
        /// The app, dataset or workerpool the order sells (a request's app).
        #[arg(long)]
        target: Option<Address>,
        /// Price per task, RLC (a request's max price for the app).
        #[arg(long, default_value = "0")]
        price: String,
        /// Tasks the order covers.
        #[arg(long, default_value_t = 1)]
        volume: u64,
        /// A request's requester and beneficiary.
        #[arg(long)]
        requester: Option<Address>,
        /// Print the order on one line (compact JSON) instead of indented.
        #[arg(long)]
        json: bool,
    },
    /// Publish a signed order in a node's market (checked against the chain first).
    Publish {
        /// The signed order JSON; `-` reads standard input.
        order: PathBuf,
        /// Where requesters reach the workerpool's scheduler (workerpool orders).
        #[arg(long)]
        scheduler: Option<String>,
        #[command(flatten)]
        endpoint: crate::common::Endpoint,
    },
    /// Cancel one of your orders on chain: its remaining volume becomes 0, for good.
    Cancel {
        /// The order JSON (`-` reads standard input), or the hash of an order in the market.
        order: String,
        #[command(flatten)]
        key: crate::common::KeyArgs,
        #[command(flatten)]
        endpoint: crate::common::Endpoint,
    },
    /// Presign one of your orders on chain: it becomes valid without a signature in it.
    Presign {
        /// The order JSON; `-` reads standard input.
        order: PathBuf,
        #[command(flatten)]
        key: crate::common::KeyArgs,
        #[command(flatten)]
        endpoint: crate::common::Endpoint,
    },
    /// Remove one of your orders from the market (signs its close operation; the order stays
    /// valid on chain until cancelled there).
    Unpublish {
        /// The order hash.
        hash: xiebao_types::B256,
        /// The order signer's key.
        #[arg(long, env = "XIEBAO_KEY_FILE")]
        key_file: PathBuf,
        /// File holding the keystore's password (else XIEBAO_PASSWORD or a prompt).
        #[arg(long)]
        password_file: Option<PathBuf>,
        #[command(flatten)]
        endpoint: crate::common::Endpoint,
    },
    /// List the market's orders, cheapest first.
    List {
        /// app, dataset, workerpool or request.
        #[arg(long, value_parser = parse_kind)]
        kind: Option<OrderKind>,
        /// Only orders for this app.
        #[arg(long)]
        app: Option<Address>,
        /// Only orders for this dataset.
        #[arg(long)]
        dataset: Option<Address>,
        /// Only orders for this workerpool.
        #[arg(long)]
        workerpool: Option<Address>,
        /// Only orders signed by this account.
        #[arg(long)]
        signer: Option<Address>,
        #[command(flatten)]
        endpoint: crate::common::Endpoint,
    },
    /// One order of the market by hash, with what is left of it on chain.
    Show {
        /// The order hash.
        hash: xiebao_types::B256,
        #[command(flatten)]
        endpoint: crate::common::Endpoint,
    },
}

/// The order file and its EIP-712 domain.
#[derive(Debug, clap::Args)]
pub(crate) struct OrderInput {
    /// The order JSON (iExec SDK field names); `-` reads standard input.
    order: PathBuf,
    /// Chain id of the domain (with --verifying-contract: no node is asked).
    #[arg(long)]
    chain_id: Option<u64>,
    /// The domain's verifyingContract (with --chain-id: no node is asked).
    #[arg(long)]
    verifying_contract: Option<Address>,
    /// A node to read the domain from when --chain-id or --verifying-contract is not given
    /// (also from XIEBAO_RPC, --chain, or the devnet running here).
    #[arg(long, env = "XIEBAO_RPC")]
    rpc: Option<String>,
    /// The order kind, when it cannot be told from the fields.
    #[arg(long, value_parser = parse_kind)]
    kind: Option<OrderKind>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

/// `xiebao order hash`.
#[derive(Debug, clap::Args)]
pub(crate) struct HashArgs {
    #[command(flatten)]
    input: OrderInput,
}

/// `xiebao order sign`.
#[derive(Debug, clap::Args)]
pub(crate) struct SignArgs {
    #[command(flatten)]
    input: OrderInput,
    /// An Ethereum V3 keystore, or a file holding a hex private key.
    #[arg(long, env = "XIEBAO_KEY_FILE")]
    key_file: PathBuf,
    /// File holding the keystore's password (else the XIEBAO_PASSWORD environment variable).
    #[arg(long)]
    password_file: Option<PathBuf>,
}

/// `xiebao order verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    input: OrderInput,
    /// Who must have signed.
    #[arg(long)]
    signer: Address,
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("reading the order from stdin")?;
        Ok(text)
    } else {
        std::fs::read_to_string(path)
            .with_context(|| format!("reading order file {}", path.display()))
    }
}

/// Prints book entries: JSON as the node gave them, or a line each with the registered name of
/// the app, dataset or workerpool (asked once per address) and the tag by name.
#[allow(clippy::print_stdout, reason = "the command's result is its output")]
async fn print_entries(
    client: &xiebao_rpc::jsonrpsee::http_client::HttpClient,
    entries: &[xiebao_rpc::BookEntry],
    json: bool,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(entries)?);
        return Ok(());
    }
    if entries.is_empty() {
        println!("no orders");
    }
    let mut names: std::collections::BTreeMap<(&str, alloy_primitives::Address), String> =
        std::collections::BTreeMap::new();
    for e in entries {
        let price = e
            .price
            .parse::<u128>()
            .map_or(e.price.clone(), |p| crate::common::format_rlc(xiebao_types::Nrlc(p)));
        let mut target = String::new();
        for kind in ["app", "dataset", "workerpool", "requester"] {
            let Some(text) = e.order.get(kind).and_then(|v| v.as_str()) else { continue };
            target = format!("{kind} {text}");
            if let Ok(address) = text.parse::<alloy_primitives::Address>() {
                let name = match names.get(&(kind, address)) {
                    Some(name) => name.clone(),
                    None => {
                        let name = match kind {
                            "app" => xiebao_rpc::XiebaoApiClient::app(client, address)
                                .await
                                .ok()
                                .flatten()
                                .map(|a| a.name),
                            "dataset" => xiebao_rpc::XiebaoApiClient::dataset(client, address)
                                .await
                                .ok()
                                .flatten()
                                .map(|d| d.name),
                            "workerpool" => {
                                xiebao_rpc::XiebaoApiClient::workerpool(client, address)
                                    .await
                                    .ok()
                                    .flatten()
                                    .map(|w| w.description)
                            }
                            _ => None,
                        }
                        .unwrap_or_default();
                        names.insert((kind, address), name.clone());
                        name
                    }
                };
                if !name.is_empty() {
                    target.push_str(&format!(" ({name})"));
                }
            }
            break;
        }
        let tag = e
            .order
            .get("tag")
            .and_then(|t| t.as_str())
            .and_then(|t| t.parse::<xiebao_types::Tag>().ok())
            .filter(|t| *t != xiebao_types::Tag::NONE)
            .map(|t| format!(" tag {}", t.names().join(",")))
            .unwrap_or_default();
        println!(
            "{} {:<10} {target} price {price} left {}{tag} signer {}{}",
            e.hash,
            e.kind,
            e.remaining,
            e.signer,
            e.scheduler.as_ref().map(|s| format!(" scheduler {s}")).unwrap_or_default()
        );
    }
    Ok(())
}

fn parse_kind(text: &str) -> Result<OrderKind, String> {
    text.parse()
}

impl OrderInput {
    fn read(&self) -> anyhow::Result<(AnyOrder, Domain)> {
        let text = read_text(&self.order)?;
        let order = AnyOrder::from_json(&text, self.kind)
            .with_context(|| format!("order {}", self.order.display()))?;
        Ok((order, self.domain()?))
    }

    /// The order domain: from the flags when both are given, else read from the node (and
    /// checked against a flag given).
    fn domain(&self) -> anyhow::Result<Domain> {
        if let (Some(chain_id), Some(contract)) = (self.chain_id, self.verifying_contract) {
            return Ok(Domain::new(chain_id, contract));
        }
        let Some(rpc) = &self.rpc else {
            bail!(
                "the order domain needs --chain-id and --verifying-contract, or a node to read it from: --rpc URL (or XIEBAO_RPC, --chain NAME, a devnet running here)"
            );
        };
        let node = crate::common::client_runtime()?
            .block_on(xiebao_sdk::client::Node::connect(rpc))
            .with_context(|| format!("reading the order domain from {rpc}"))?;
        let domain = node.domain;
        if let Some(chain_id) = self.chain_id.filter(|id| *id != domain.chain_id) {
            bail!("--chain-id {chain_id}, but the node at {rpc} is chain {}", domain.chain_id);
        }
        if let Some(contract) = self.verifying_contract.filter(|c| *c != domain.verifying_contract)
        {
            bail!(
                "--verifying-contract {contract}, but the node at {rpc} verifies orders with {}",
                domain.verifying_contract
            );
        }
        Ok(domain)
    }
}

/// Sends the on-chain presign or cancel of `order` (a file, `-`, or a market hash).
#[allow(clippy::print_stdout, reason = "the command's result is its output")]
fn manage(
    order: &str,
    operation: xiebao_types::OrderOperation,
    key: &crate::common::KeyArgs,
    endpoint: &crate::common::Endpoint,
) -> anyhow::Result<()> {
    use xiebao_rpc::MarketApiClient as _;
    use xiebao_types::Bytes;
    use xiebao_types::tx::{
        ManageAppOrder, ManageDatasetOrder, ManageRequestOrder, ManageWorkerpoolOrder,
    };
    let key = crate::common::signing_key(&key.key_file, key.password_file.as_deref())?;
    crate::common::client_runtime()?.block_on(async {
        let node = xiebao_sdk::client::Node::connect(&endpoint.rpc).await?;
        let order = match order.parse::<xiebao_types::B256>() {
            Ok(hash) if !Path::new(order).exists() => {
                let entry = node.rpc.order(hash).await?.with_context(|| {
                    format!("order {hash} is not in the market at {}", endpoint.rpc)
                })?;
                AnyOrder::from_json(&entry.order.to_string(), None)?
            }
            _ => {
                let text = read_text(Path::new(order))?;
                AnyOrder::from_json(&text, None).with_context(|| format!("order {order}"))?
            }
        };
        let hash = order.hash(&node.domain);
        let sign = Bytes::new();
        let call = match order {
            AnyOrder::App(order) => ManageAppOrder { order, operation, sign }.into(),
            AnyOrder::Dataset(order) => ManageDatasetOrder { order, operation, sign }.into(),
            AnyOrder::Workerpool(order) => ManageWorkerpoolOrder { order, operation, sign }.into(),
            AnyOrder::Request(order) => ManageRequestOrder { order, operation, sign }.into(),
        };
        let applied = crate::common::send_call(&node, key, call, "it").await?;
        let done = match operation {
            xiebao_types::OrderOperation::Sign => "presigned",
            xiebao_types::OrderOperation::Close => "cancelled",
        };
        if endpoint.json {
            println!(
                "{}",
                serde_json::json!({ "hash": hash, "operation": done, "block": applied.height })
            );
        } else {
            println!("{hash} {done} (block {})", applied.height);
        }
        anyhow::Ok(())
    })
}

#[allow(clippy::print_stdout, reason = "the command's result is its output")]
pub(crate) fn run(command: &OrderCommand) -> anyhow::Result<()> {
    use xiebao_rpc::MarketApiClient as _;
    match command {
        OrderCommand::Cancel { order, key, endpoint } => {
            manage(order, xiebao_types::OrderOperation::Close, key, endpoint)?;
        }
        OrderCommand::Presign { order, key, endpoint } => {
            let order = order.to_str().context("the order path is not UTF-8")?;
            manage(order, xiebao_types::OrderOperation::Sign, key, endpoint)?;
        }
        OrderCommand::Init { kind, target, price, volume, requester, json } => {
            let price = crate::common::parse_rlc(price)?.to_u256();
            let target = target.unwrap_or(Address::ZERO);
            let salt = xiebao_types::B256::from(rand::random::<[u8; 32]>());
            let volume = xiebao_types::U256::from(*volume);
            let none = Address::ZERO;
            let tag = xiebao_types::Tag::NONE;
            let sign = xiebao_types::Bytes::new();
            let order = match kind {
                OrderKind::App => AnyOrder::App(xiebao_types::AppOrder {
                    app: target,
                    appprice: price,
                    volume,
                    tag,
                    datasetrestrict: none,
                    workerpoolrestrict: none,
                    requesterrestrict: none,
                    salt,
                    sign,
                }),
                OrderKind::Dataset => AnyOrder::Dataset(xiebao_types::DatasetOrder {
                    dataset: target,
                    datasetprice: price,
                    volume,
                    tag,
                    apprestrict: none,
                    workerpoolrestrict: none,
                    requesterrestrict: none,
                    salt,
                    sign,
                }),
                OrderKind::Workerpool => AnyOrder::Workerpool(xiebao_types::WorkerpoolOrder {
                    workerpool: target,
                    workerpoolprice: price,
                    volume,
                    tag,
                    category: xiebao_types::U256::ZERO,
                    trust: xiebao_types::U256::from(1),
                    apprestrict: none,
                    datasetrestrict: none,
                    requesterrestrict: none,
                    salt,
                    sign,
                }),
                OrderKind::Request => {
                    let requester = requester.context("a request order needs --requester")?;
                    AnyOrder::Request(xiebao_types::RequestOrder {
                        app: target,
                        appmaxprice: price,
                        dataset: none,
                        datasetmaxprice: xiebao_types::U256::ZERO,
                        workerpool: none,
                        workerpoolmaxprice: xiebao_types::U256::ZERO,
                        requester,
                        volume,
                        tag,
                        category: xiebao_types::U256::ZERO,
                        trust: xiebao_types::U256::from(1),
                        beneficiary: requester,
                        callback: none,
                        params: String::new(),
                        salt,
                        sign,
                    })
                }
            };
            if *json {
                println!("{}", order.to_json());
            } else {
                println!("{}", serde_json::to_string_pretty(&order.to_json())?);
            }
        }
        OrderCommand::Publish { order, scheduler, endpoint } => {
            let text = read_text(order)?;
            let parsed = AnyOrder::from_json(&text, None)
                .with_context(|| format!("order {}", order.display()))?;
            crate::common::client_runtime()?.block_on(async {
                let client = xiebao_rpc::http_client(&endpoint.rpc)?;
                let hash = client
                    .publish(parsed.to_json(), scheduler.clone())
                    .await
                    .context("the market refused the order")?;
                if endpoint.json {
                    println!("{}", serde_json::json!({ "hash": hash }));
                } else {
                    println!("{hash} published");
                }
                anyhow::Ok(())
            })?;
        }
        OrderCommand::Unpublish { hash, key_file, password_file, endpoint } => {
            let key = crate::common::signing_key(key_file, password_file.as_deref())?;
            crate::common::client_runtime()?.block_on(async {
                let node = xiebao_sdk::client::Node::connect(&endpoint.rpc).await?;
                let entry = node.rpc.order(*hash).await?.with_context(|| {
                    format!("order {hash} is not in the market at {}", endpoint.rpc)
                })?;
                let order = AnyOrder::from_json(&entry.order.to_string(), None)?;
                let operation =
                    order.operation_hash(&node.domain, xiebao_types::OrderOperation::Close);
                let removed = node.rpc.unpublish(*hash, key.sign_hash(&operation)).await?;
                if endpoint.json {
                    println!("{}", serde_json::json!({ "hash": hash, "removed": removed }));
                } else {
                    println!("{hash} unpublished");
                }
                anyhow::Ok(())
            })?;
        }
        OrderCommand::List { kind, app, dataset, workerpool, signer, endpoint } => {
            crate::common::client_runtime()?.block_on(async {
                let client = xiebao_rpc::http_client(&endpoint.rpc)?;
                let query = xiebao_rpc::OrderQuery {
                    kind: *kind,
                    app: *app,
                    dataset: *dataset,
                    workerpool: *workerpool,
                    signer: *signer,
                    ..Default::default()
                };
                let entries = client
                    .orders(query)
                    .await
                    .with_context(|| format!("asking the market at {}", endpoint.rpc))?;
                print_entries(&client, &entries, endpoint.json).await
            })?;
        }
        OrderCommand::Show { hash, endpoint } => {
            crate::common::client_runtime()?.block_on(async {
                let client = xiebao_rpc::http_client(&endpoint.rpc)?;
                let entry = client
                    .order(*hash)
                    .await
                    .with_context(|| format!("asking the market at {}", endpoint.rpc))?
                    .with_context(|| {
                        format!("order {hash} is not in the market at {}", endpoint.rpc)
                    })?;
                if endpoint.json {
                    println!("{}", serde_json::to_string(&entry)?);
                } else {
                    print_entries(&client, std::slice::from_ref(&entry), false).await?;
                    println!("{}", serde_json::to_string_pretty(&entry.order)?);
                }
                anyhow::Ok(())
            })?;
        }
        OrderCommand::Hash(args) => {
            let (order, domain) = args.input.read()?;
            let hash = order.hash(&domain);
            if args.input.json {
                println!("{}", serde_json::json!({ "kind": order.kind(), "hash": hash }));
            } else {
                println!("{hash}");
            }
        }
        OrderCommand::Sign(args) => {
            let (mut order, domain) = args.input.read()?;
            let key = crate::common::signing_key(&args.key_file, args.password_file.as_deref())?;
            order.sign_with(&domain, &key);
            let json = order.to_json();
            if args.input.json {
                println!("{json}");
            } else {
                println!("{}", serde_json::to_string_pretty(&json)?);
            }
        }
        OrderCommand::Verify(args) => {
            let (order, domain) = args.input.read()?;
            let hash = order.hash(&domain);
            let outcome = if order.sign().is_empty() {
                Err("the order has no `sign` field (unsigned; presigned orders are checked on chain)".to_owned())
            } else {
                match crypto::recover(&hash, order.sign()) {
                    Ok(signer) if signer == args.signer => Ok(signer),
                    Ok(signer) => Err(format!("signed by {signer}, not by {}", args.signer)),
                    Err(error) => Err(format!("malformed signature: {error}")),
                }
            };
            if args.input.json {
                let (valid, signer, reason) = match &outcome {
                    Ok(signer) => (true, Some(signer.to_string()), None),
                    Err(reason) => (false, None, Some(reason.clone())),
                };
                println!(
                    "{}",
                    serde_json::json!({ "valid": valid, "hash": hash, "signer": signer, "reason": reason })
                );
            }
            match outcome {
                Ok(signer) if !args.input.json => println!("valid: signed by {signer}"),
                Ok(_) => {}
                Err(reason) => bail!("invalid {} order {hash}: {reason}", order.kind()),
            }
        }
    }
    Ok(())
}
