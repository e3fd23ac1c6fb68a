//! `xiebao result digest|download|seal|open`: the digest workers agree on for a task's output,
//! and a task's result fetched and verified.

use std::path::PathBuf;

use alloy_primitives::{Address, B256};
use anyhow::{Context, bail};
use xiebao_rpc::XiebaoApiClient as _;

/// `xiebao result …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ResultCommand {
    /// Print the result digest (rule v1) of an output directory or of callback data.
    Digest {
        /// The output directory.
        #[arg(required_unless_present = "callback_file")]
        dir: Option<PathBuf>,
        /// A file holding the callback data (for tasks with a callback).
        #[arg(long, conflicts_with = "dir")]
        callback_file: Option<PathBuf>,
        /// Print JSON: `{"digest", "rule", "source"}`.
        #[arg(long)]
        json: bool,
    },
    /// Encrypt a result for its beneficiary (ECIES over secp256k1 to their public key).
    Seal {
        /// The beneficiary's secp256k1 public key, hex (33 or 65 SEC1 bytes).
        #[arg(long = "for")]
        public_key: String,
        /// The result file.
        #[arg(long = "in")]
        input: PathBuf,
        /// Where to write the sealed result.
        #[arg(long = "out")]
        output: PathBuf,
        /// Print JSON: `{"output", "bytes"}` (otherwise the command prints nothing).
        #[arg(long)]
        json: bool,
    },
    /// Fetch a finalized task's result from its link, check its content id and its digest
    /// against the chain, and unpack it.
    Download(DownloadArgs),
    /// Decrypt a sealed result with the beneficiary's key.
    Open {
        /// The beneficiary's key: a V3 keystore or a hex key file.
        #[arg(long, env = "XIEBAO_KEY_FILE")]
        key_file: PathBuf,
        /// File holding the keystore's password (else XIEBAO_PASSWORD or a prompt).
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// The sealed result.
        #[arg(long = "in")]
        input: PathBuf,
        /// Where to write the plaintext.
        #[arg(long = "out")]
        output: PathBuf,
        /// Print JSON: `{"output", "bytes"}` (otherwise the command prints nothing).
        #[arg(long)]
        json: bool,
    },
}

#[allow(clippy::print_stdout, reason = "the command's result is its output")]
pub(crate) fn run(command: &ResultCommand) -> anyhow::Result<()> {
    match command {
        ResultCommand::Download(args) => download(args)?,
        ResultCommand::Digest { dir, callback_file, json } => {
            let (digest, rule, source) = match (dir, callback_file) {
                (_, Some(file)) => {
                    let data = std::fs::read(file)
                        .with_context(|| format!("reading callback data {}", file.display()))?;
                    (xiebao_types::digest::callback_digest(&data), "callback", file)
                }
                (Some(dir), None) => (xiebao_sdk::digest::digest_dir(dir)?, "v1", dir),
                (None, None) => unreachable!("clap requires one"),
            };
            if *json {
                println!(
                    "{}",
                    serde_json::json!({ "digest": digest, "rule": rule, "source": source })
                );
            } else {
                println!("{digest}");
            }
        }
        ResultCommand::Seal { public_key, input, output, json } => {
            let key = alloy_primitives::hex::decode(public_key.trim())
                .with_context(|| format!("--for {public_key}: not hex"))?;
            let plain =
                std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
            let sealed = xiebao_results::sealed::seal(&key, &plain)?;
            std::fs::write(output, &sealed)
                .with_context(|| format!("writing {}", output.display()))?;
            if *json {
                println!("{}", serde_json::json!({ "output": output, "bytes": sealed.len() }));
            }
        }
        ResultCommand::Open { key_file, password_file, input, output, json } => {
            let key = crate::common::signing_key(key_file, password_file.as_deref())?;
            let sealed =
                std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
            let plain = xiebao_results::sealed::open(&key, &sealed)?;
            std::fs::write(output, &plain)
                .with_context(|| format!("writing {}", output.display()))?;
            if *json {
                println!("{}", serde_json::json!({ "output": output, "bytes": plain.len() }));
            }
        }
    }
    Ok(())
}

/// `xiebao results …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ResultsCommand {
    /// Serve a result store over HTTP: signed uploads by the task's workers, verified downloads.
    Serve {
        /// Where the results are kept.
        #[arg(long)]
        dir: PathBuf,
        /// Listen address (port 0 picks a free one; the address is printed).
        #[arg(long, default_value = "127.0.0.1:8600")]
        listen: std::net::SocketAddr,
        /// A node's RPC URL: an upload is accepted only from a worker that contributed to the
        /// task on chain.
        #[arg(long, required_unless_present = "open")]
        rpc: Option<String>,
        /// Accept any correctly signed upload (development only).
        #[arg(long, conflicts_with = "rpc")]
        open: bool,
        /// Once listening, print one JSON object `{"url", "listen", "dir"}` on stdout instead
        /// of the sentence.
        #[arg(long)]
        json: bool,
    },
}

/// The chain's upload rule: the worker contributed to the task, or it presents the
/// contribution authorization the task's workerpool owner signed for it.
fn chain_authorize(url: &str) -> anyhow::Result<xiebao_results::gateway::Authorize> {
    use xiebao_rpc::XiebaoApiClient as _;
    let client = xiebao_rpc::http_client(url)?;
    Ok(std::sync::Arc::new(move |task, worker, authorization| {
        let client = client.clone();
        Box::pin(async move {
            let text = |e: xiebao_rpc::jsonrpsee::core::client::Error| e.to_string();
            if client.contribution(task, worker).await.map_err(text)?.is_some() {
                return Ok(true);
            }
            let Some(authorization) = authorization else { return Ok(false) };
            let Some(record) = client.task(task).await.map_err(text)? else { return Ok(false) };
            let Some(deal) = client.deal(record.deal_id).await.map_err(text)? else {
                return Ok(false);
            };
            let hash = xiebao_types::ids::authorization_hash(&worker, &task, &Address::ZERO);
            Ok(xiebao_types::crypto::recover_eth_signed(&hash, &authorization)
                .is_ok_and(|signer| signer == deal.workerpool.owner))
        })
    }))
}

#[allow(clippy::print_stdout, reason = "the command prints where it serves")]
pub(crate) fn serve(command: &ResultsCommand) -> anyhow::Result<()> {
    let ResultsCommand::Serve { dir, listen, rpc, open: _, json } = command;
    let store = std::sync::Arc::new(xiebao_results::ResultStore::open(dir)?);
    let authorize: xiebao_results::gateway::Authorize = match rpc {
        Some(url) => chain_authorize(url)?,
        None => std::sync::Arc::new(|_, _, _| Box::pin(async { Ok(true) })),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let address = listener.local_addr()?;
        if *json {
            println!(
                "{}",
                serde_json::json!({ "url": format!("http://{address}"), "listen": address, "dir": dir })
            );
        } else {
            println!("serving results on http://{address}");
        }
        use std::io::Write as _;
        std::io::stdout().flush()?;
        xiebao_results::gateway::serve(listener, store, authorize).await?;
        anyhow::Ok(())
    })
}

/// `xiebao result download`.
#[derive(Debug, clap::Args)]
pub(crate) struct DownloadArgs {
    /// The task whose result to fetch.
    task: B256,
    /// Directory the result's files are written to (created).
    #[arg(long)]
    out: PathBuf,
    /// The beneficiary's key (V3 keystore or hex key file), for results encrypted for them.
    #[arg(long, env = "XIEBAO_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// File holding the keystore's password (else XIEBAO_PASSWORD or a prompt).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Largest result accepted, bytes: the download and what it unpacks to (default 1 GiB).
    #[arg(long, default_value_t = crate::common::RESULT_DOWNLOAD_MAX_BYTES)]
    max_bytes: u64,
    #[command(flatten)]
    endpoint: crate::common::Endpoint,
}

#[allow(clippy::print_stdout, reason = "the command's output")]
pub(crate) fn download(args: &DownloadArgs) -> anyhow::Result<()> {
    crate::common::client_runtime()?.block_on(async {
        let node = xiebao_rpc::http_client(&args.endpoint.rpc)?;
        let Some(record) = node
            .task(args.task)
            .await
            .with_context(|| format!("asking {} for task {}", args.endpoint.rpc, args.task))?
        else {
            bail!("task {} is not on chain yet: it has no result", args.task);
        };
        if record.results.is_empty() {
            bail!(
                "task {} is {} and has no result yet; see `xiebao task show {}`",
                args.task,
                record.status,
                args.task
            );
        }
        if args.out.exists()
            && !std::fs::read_dir(&args.out).is_ok_and(|mut d| d.next().is_none())
        {
            bail!("{} is not empty: give a new or empty directory", args.out.display());
        }
        let deal = node
            .deal(record.deal_id)
            .await
            .with_context(|| format!("asking {} for deal {}", args.endpoint.rpc, record.deal_id))?
            .context("the task's deal is not on chain")?;
        let key = match &args.key_file {
            Some(key_file) => Some(crate::common::signing_key(key_file, args.password_file.as_deref())?),
            None => None,
        };
        let (cid, digest) =
            xiebao_sdk::download::save(&reqwest::Client::new(), &record, &deal, key.as_ref(), &args.out, args.max_bytes)
                .await?;
        if args.endpoint.json {
            println!("{}", serde_json::json!({ "task": args.task, "cid": cid, "digest": digest, "out": args.out }));
        } else {
            println!("{} (digest {digest}, verified)", args.out.display());
        }
        Ok(())
    })
}
