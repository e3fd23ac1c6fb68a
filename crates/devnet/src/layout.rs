//! The devnet's layout: its options and what they settle (profile, block timing, calls per
//! transaction), the accounts and keys it creates, the demo apps and the workerpool it
//! deploys, and the files it keeps (`devnet.json`, `pids.json`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alloy_primitives::{Address, B256, Bytes, U256};
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use xiebao_sdk::client::{Node, Sender, SenderOptions};
use xiebao_types::order::SignedOrder as _;
use xiebao_types::tx::{AppType, CreateApp, CreateWorkerpool, PoolPolicy};
use xiebao_types::{AppOrder, Nrlc, SecretKey, Tag};

use crate::network::{GenesisBase, NodeOptions, free_ports, localnet_configs};
use crate::supervisor::Children;
use crate::{Observer, Options, Profile};

/// App price of the demo apps, nRLC per task.
pub(crate) const APP_PRICE: Nrlc = Nrlc(10_000_000);
/// The pool's price, nRLC per task.
pub(crate) const POOL_PRICE: Nrlc = Nrlc(20_000_000);
/// What each devnet account holds at genesis, RLC.
const ACCOUNT_RLC: u64 = 1_000;
/// What each worker bonds when it joins the pool, RLC.
pub(crate) const WORKER_STAKE_RLC: u64 = 10;

/// How the pool's components send their calls and how the validators make blocks, from the
/// profile and the options that override it.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) max_calls_per_tx: usize,
    pub(crate) contribute_and_finalize: bool,
    /// The validators' timing when the network is created.
    pub(crate) timing: xiebao_chain::config::Timing,
    /// Whether the timing was asked for (a profile or an option), so a resumed network made
    /// with another timing is refused rather than silently run as it was.
    pub(crate) timing_asked: bool,
}

/// What `options` settle: its profile, and the options that override it.
pub(crate) fn settings(options: &Options) -> Settings {
    {
        let this = options;
        let iexec = this.profile == Profile::Iexec;
        let default = xiebao_chain::config::Timing::default();
        let interval_ms = this.block_interval_ms.unwrap_or(if iexec {
            crate::network::IEXEC_BLOCK_INTERVAL_MS
        } else {
            0
        });
        let txs_max = this.block_txs_max.unwrap_or(if iexec {
            crate::network::IEXEC_BLOCK_TXS_MAX
        } else {
            default.block_txs_max
        });
        Settings {
            max_calls_per_tx: this.max_calls_per_tx.unwrap_or(if iexec {
                1
            } else {
                SenderOptions::DEFAULT_MAX_CALLS
            }),
            contribute_and_finalize: !(iexec || this.no_contribute_and_finalize),
            timing: crate::network::block_timing(interval_ms, txs_max),
            timing_asked: iexec || this.block_interval_ms.is_some() || this.block_txs_max.is_some(),
        }
    }
}

/// `timing`'s blocks in words.
pub(crate) fn describe_blocks(timing: &xiebao_chain::config::Timing) -> String {
    let pace = match timing.block_interval_ms {
        0 => "blocks as fast as consensus allows".to_owned(),
        ms => format!("a block every {ms} ms"),
    };
    format!("{pace}, at most {} transactions each", timing.block_txs_max)
}

/// The timing a validator config file holds.
pub(crate) fn configured_timing(config: &Path) -> anyhow::Result<xiebao_chain::config::Timing> {
    let bytes = std::fs::read(config).with_context(|| format!("reading {}", config.display()))?;
    let config: xiebao_chain::config::NodeConfig = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is damaged", config.display()))?;
    Ok(config.timing)
}

/// A deployed demo app.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct DeployedApp {
    pub(crate) address: Address,
    pub(crate) order: AppOrder,
}

/// What `devnet.json` keeps.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Layout {
    pub(crate) rpc: Vec<String>,
    pub(crate) results_listen: String,
    pub(crate) scheduler_listen: String,
    pub(crate) workerpool: Address,
    pub(crate) apps: BTreeMap<String, DeployedApp>,
    pub(crate) keys: Keys,
    pub(crate) workers: Vec<WorkerLayout>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct WorkerLayout {
    pub(crate) address: Address,
    pub(crate) key_file: PathBuf,
    pub(crate) lying: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Keys {
    pub(crate) requester: PathBuf,
    pub(crate) app_owner: PathBuf,
    pub(crate) pool_owner: PathBuf,
    pub(crate) faucet: PathBuf,
}

/// The pids of the running components (`pids.json`), for operators and fault tests.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Pids {
    /// The `xiebao devnet` process supervising the others.
    pub(crate) supervisor: u32,
    pub(crate) validators: Vec<u32>,
    pub(crate) results: u32,
    pub(crate) scheduler: u32,
    pub(crate) workers: Vec<u32>,
    pub(crate) scheduler_url: String,
    pub(crate) results_url: String,
    pub(crate) rpc: Vec<String>,
}

fn write_key(path: &Path) -> anyhow::Result<SecretKey> {
    if path.exists() {
        return Ok(xiebao_sdk::wallet::load_key(path, None)?);
    }
    let key = xiebao_sdk::wallet::generate_key();
    std::fs::write(path, format!("0x{}\n", alloy_primitives::hex::encode(key.to_bytes())))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(key)
}

/// Creates the network's files: validator configs, keys, genesis with every account funded.
pub(crate) fn create(args: &Options) -> anyhow::Result<(Layout, bool)> {
    let dir = &args.data_dir;
    let layout_path = dir.join("devnet.json");
    if layout_path.exists() {
        let layout: Layout = serde_json::from_slice(&std::fs::read(&layout_path)?)
            .with_context(|| format!("{} is damaged", layout_path.display()))?;
        return Ok((layout, false));
    }
    if args.workers == 0 {
        bail!("a devnet needs at least 1 worker (got --workers 0)");
    }
    if args.lying_workers >= args.workers {
        bail!(
            "--lying-workers {} must leave an honest worker among --workers {}",
            args.lying_workers,
            args.workers
        );
    }
    let keys_dir = dir.join("keys");
    std::fs::create_dir_all(&keys_dir)?;
    std::fs::create_dir_all(dir.join("logs"))?;
    let keys = Keys {
        requester: keys_dir.join("requester.key"),
        app_owner: keys_dir.join("app-owner.key"),
        pool_owner: keys_dir.join("pool-owner.key"),
        faucet: dir.join("chain").join("faucet.key"),
    };
    let mut funds = Vec::new();
    for path in [&keys.requester, &keys.app_owner, &keys.pool_owner] {
        funds.push((write_key(path)?.address(), Nrlc::rlc(ACCOUNT_RLC)));
    }
    let mut workers = Vec::new();
    let mut scores = Vec::new();
    for i in 0..args.workers {
        let key_file = keys_dir.join(format!("worker-{i}.key"));
        let address = write_key(&key_file)?.address();
        funds.push((address, Nrlc::rlc(ACCOUNT_RLC)));
        if args.initial_score > 0 {
            scores.push((address, args.initial_score));
        }
        workers.push(WorkerLayout { address, key_file, lying: i < args.lying_workers });
    }
    let chain = localnet_configs(
        &dir.join("chain"),
        args.validators,
        GenesisBase::Fresh {
            chain_id: 65_535,
            funds,
            scores,
            epoch_length: xiebao_protocol::Genesis::DEFAULT_EPOCH_LENGTH,
        },
        &NodeOptions { timing: settings(args).timing, bridge: None },
    )?;
    let pool_owner = xiebao_sdk::wallet::load_key(&keys.pool_owner, None)?;
    let pool = pool_call(&pool_owner);
    let ports = free_ports(2)?;
    let layout = Layout {
        rpc: chain.rpc,
        results_listen: ports[0].to_string(),
        scheduler_listen: ports[1].to_string(),
        workerpool: xiebao_protocol::workerpool_address(&pool),
        apps: BTreeMap::new(),
        keys,
        workers,
    };
    Ok((layout, true))
}

fn pool_call(owner: &SecretKey) -> CreateWorkerpool {
    CreateWorkerpool {
        owner: owner.address(),
        description: "devnet pool".into(),
        policy: PoolPolicy {
            worker_stake_ratio: 30,
            scheduler_reward_ratio: 1,
            min_worker_stake: Nrlc::rlc(1),
            unbonding_delay_s: 60,
        },
    }
}

/// Builds the OCI demo app's image archive (needs podman and a static busybox).
fn oci_image(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let build = dir.join("oci-build");
    let oci = xiebao_runtime::oci::OciRuntime::new(&build.join("state"))?;
    let context = xiebao_apps::oci_wordcount::write_context(
        &build.join("context"),
        Path::new(xiebao_apps::oci_wordcount::BUSYBOX),
    )
    .context("a static busybox is needed (apt-get install busybox-static)")?;
    let archive = build.join("oci-wordcount.tar");
    oci.build_archive(&context, "localhost/xiebao-oci-wordcount:1", &archive)?;
    let bytes = std::fs::read(&archive)?;
    let _ = std::fs::remove_dir_all(&build);
    Ok(bytes)
}

fn app_call(
    owner: &SecretKey,
    name: &str,
    app_type: AppType,
    bytes: &[u8],
    results_url: &str,
) -> CreateApp {
    let checksum = B256::from(<[u8; 32]>::from(Sha256::digest(bytes)));
    let cid = xiebao_results::cid_of(bytes);
    CreateApp {
        owner: owner.address(),
        name: name.into(),
        app_type,
        multiaddr: Bytes::from(format!("{results_url}/v1/results/{cid}").into_bytes()),
        checksum,
        mrenclave: Bytes::new(),
    }
}

/// Registers the pool and the demo apps, signs the app orders.
pub(crate) async fn deploy(
    layout: &mut Layout,
    dir: &Path,
    node: &Node,
    observer: &dyn Observer,
) -> anyhow::Result<()> {
    let results_url = format!("http://{}", layout.results_listen);
    let store = xiebao_results::ResultStore::open(&dir.join("results"))?;
    let app_owner = xiebao_sdk::wallet::load_key(&layout.keys.app_owner, None)?;
    let pool_owner = xiebao_sdk::wallet::load_key(&layout.keys.pool_owner, None)?;
    let mut apps: Vec<(&str, AppType, Vec<u8>)> = vec![
        ("mandelbrot", AppType::Wasm, xiebao_apps::MANDELBROT_WASM.to_vec()),
        ("wordcount", AppType::Wasm, xiebao_apps::WORDCOUNT_WASM.to_vec()),
    ];
    match oci_image(dir) {
        Ok(archive) => apps.push(("oci-wordcount", AppType::Oci, archive)),
        Err(e) => observer.warn(&format!("the OCI demo app is not deployed: {e:#}")),
    }
    let mut calls = Vec::new();
    for (name, app_type, bytes) in apps {
        store.put(&bytes)?;
        let call = app_call(&app_owner, name, app_type, &bytes, &results_url);
        let address = xiebao_protocol::app_address(&call);
        let mut order = AppOrder {
            app: address,
            appprice: APP_PRICE.to_u256(),
            volume: U256::from(1_000_000_000u64),
            tag: Tag::NONE,
            datasetrestrict: Address::ZERO,
            workerpoolrestrict: Address::ZERO,
            requesterrestrict: Address::ZERO,
            salt: B256::from(rand::random::<[u8; 32]>()),
            sign: Bytes::new(),
        };
        order.sign_with(&node.domain, &app_owner);
        layout.apps.insert(name.to_owned(), DeployedApp { address, order });
        calls.push(call.into());
    }
    let sender = Sender::spawn(node.clone(), app_owner, SenderOptions::default());
    for result in sender.send_all(calls).await {
        result.context("registering the demo apps")?;
    }
    let pool_sender = Sender::spawn(node.clone(), pool_owner.clone(), SenderOptions::default());
    pool_sender.send(pool_call(&pool_owner).into()).await.context("registering the workerpool")?;
    // In the market, so `xiebao run` finds them.
    for app in layout.apps.values() {
        let json = serde_json::to_value(&app.order)?;
        xiebao_rpc::MarketApiClient::publish(&node.rpc, json, None)
            .await
            .context("publishing a demo app order in the market")?;
    }
    Ok(())
}

/// Scheduler, result store and node URLs.
pub(crate) type Urls = (String, String, Vec<String>);

pub(crate) fn write_pids(dir: &Path, children: &Children, urls: &Urls) -> anyhow::Result<()> {
    let pids = Pids {
        supervisor: std::process::id(),
        validators: children.pids("validator"),
        results: children.pids("result store").first().copied().unwrap_or(0),
        scheduler: children.pids("scheduler").first().copied().unwrap_or(0),
        workers: children.pids("worker"),
        scheduler_url: urls.0.clone(),
        results_url: urls.1.clone(),
        rpc: urls.2.clone(),
    };
    let path = dir.join("pids.json");
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&pids)?)?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}
