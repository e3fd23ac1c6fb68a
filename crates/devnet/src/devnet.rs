//! Starting a devnet (or resuming one), running its demo job and supervising it.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use xiebao_rpc::XiebaoApiClient as _;
use xiebao_rpc::pool::PoolApiClient as _;
use xiebao_sdk::client::Node;

use crate::demo::RunFacts;
use crate::layout::{
    Layout, POOL_PRICE, Urls, WORKER_STAKE_RLC, configured_timing, create, deploy, describe_blocks,
    settings, write_pids,
};
use crate::supervisor::{Children, Launch, wait_until, xiebao};
use crate::{Observer, Options, Summary};

/// A running devnet. Dropping it stops every component (SIGTERM, then waited for).
pub struct Devnet<'o> {
    options: Options,
    observer: &'o dyn Observer,
    layout: Layout,
    children: Children,
    urls: Urls,
    node: Node,
    pool: xiebao_rpc::jsonrpsee::http_client::HttpClient,
    facts: RunFacts,
    /// Held while the devnet runs (dropped last, after every component stopped).
    _lock: Lock,
}

/// `devnet.lock`: the pid of the `xiebao devnet` process running the devnet in a directory.
/// Created exclusively; a lock whose process is gone is taken over; removed when dropped.
struct Lock(std::path::PathBuf);

impl Lock {
    fn take(dir: &std::path::Path) -> anyhow::Result<Self> {
        let path = dir.join("devnet.lock");
        for _ in 0..2 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    use std::io::Write as _;
                    write!(file, "{}", std::process::id())
                        .with_context(|| format!("writing {}", path.display()))?;
                    return Ok(Self(path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let holder = holder.trim();
                    if holder.parse().is_ok_and(xiebao_sdk::config::process_alive) {
                        bail!(
                            "a devnet already runs in {} (xiebao devnet, pid {holder}): use it (commands started in its parent directory do, or --chain devnet), stop it (Ctrl-C where it runs, or kill {holder}), or give another --data-dir",
                            dir.display()
                        );
                    }
                    // Its process is gone: the lock is stale.
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        bail!("{} keeps reappearing: another devnet is starting there", path.display())
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl<'o> Devnet<'o> {
    /// Creates the network under `options.data_dir` (or resumes the one there), starts every
    /// component and returns once the workers have joined the pool.
    ///
    /// # Errors
    /// When the options contradict the network on disk, or a component does not come up
    /// (see the logs under the data directory).
    pub async fn start(options: &Options, observer: &'o dyn Observer) -> anyhow::Result<Self> {
        let args = options;
        let dir = args.data_dir.clone();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let lock = Lock::take(&dir)?;
        let (mut layout, fresh) = create(args)?;
        std::fs::create_dir_all(dir.join("logs"))?;
        let mut children = Children::new(&dir, &args.program);
        let started = Instant::now();
        observer.say(&format!(
            "devnet in {}: {} {} validators",
            dir.display(),
            if fresh { "starting" } else { "resuming, starting its" },
            layout.rpc.len()
        ));
        let chain_dir = dir.join("chain");
        let localnet: crate::network::LocalnetFile =
            serde_json::from_slice(&std::fs::read(chain_dir.join("localnet.json"))?)?;
        let settings = settings(args);
        let first_config = localnet.configs.first().context("the devnet has no validator")?;
        let timing = configured_timing(first_config)?;
        let asked = &settings.timing;
        if settings.timing_asked
            && (timing.block_interval_ms, timing.block_txs_max)
                != (asked.block_interval_ms, asked.block_txs_max)
        {
            bail!(
                "{} was created with {}, not {}: a devnet's block timing is fixed when it is created (use another --data-dir)",
                dir.display(),
                describe_blocks(&timing),
                describe_blocks(asked),
            );
        }
        for (i, config) in localnet.configs.iter().enumerate() {
            children.start(format!("validator {i}"), Launch::Node(config.clone()))?;
        }
        let rpc = layout.rpc[0].clone();
        let (node, first) =
            wait_until("the chain", Duration::from_secs(120), &mut children, observer, || async {
                let node = Node::connect(&rpc).await.ok()?;
                let status = node.rpc.chain_status().await.ok()?;
                Some((node, status.height))
            })
            .await?;
        // Live once it finalizes new blocks (restarted validators first agree on a view).
        wait_until(
            "the chain's first blocks",
            Duration::from_secs(120),
            &mut children,
            observer,
            || async {
                let status = node.rpc.chain_status().await.ok()?;
                (status.height >= first + 2).then_some(())
            },
        )
        .await?;
        if fresh {
            observer.say("deploying the demo apps and the workerpool");
            deploy(&mut layout, &dir, &node, observer).await?;
            std::fs::write(dir.join("devnet.json"), serde_json::to_vec_pretty(&layout)?)?;
        }
        let results_url = format!("http://{}", layout.results_listen);
        let scheduler_url = format!("ws://{}", layout.scheduler_listen);
        children.start(
            "result store",
            xiebao(
                "results.log",
                vec![
                    "results".into(),
                    "serve".into(),
                    "--dir".into(),
                    dir.join("results").display().to_string(),
                    "--listen".into(),
                    layout.results_listen.clone(),
                    "--rpc".into(),
                    rpc.clone(),
                ],
            ),
        )?;
        children.start(
            "scheduler",
            xiebao(
                "scheduler.log",
                vec![
                    "scheduler".into(),
                    "--rpc".into(),
                    rpc.clone(),
                    "--key-file".into(),
                    layout.keys.pool_owner.display().to_string(),
                    "--workerpool".into(),
                    layout.workerpool.to_string(),
                    "--listen".into(),
                    layout.scheduler_listen.clone(),
                    "--data-dir".into(),
                    dir.join("scheduler").display().to_string(),
                    "--price".into(),
                    POOL_PRICE.to_rlc_string(),
                    "--max-calls-per-tx".into(),
                    settings.max_calls_per_tx.to_string(),
                ]
                .into_iter()
                .chain(
                    (!settings.contribute_and_finalize)
                        .then(|| "--no-contribute-and-finalize".into()),
                )
                .collect(),
            ),
        )?;
        for (i, worker) in layout.workers.iter().enumerate() {
            let mut worker_args = vec![
                "worker".into(),
                "--rpc".into(),
                layout.rpc[i % layout.rpc.len()].clone(),
                "--scheduler".into(),
                scheduler_url.clone(),
                "--results".into(),
                results_url.clone(),
                "--key-file".into(),
                worker.key_file.display().to_string(),
                "--work-dir".into(),
                dir.join(format!("worker-{i}")).display().to_string(),
                "--slots".into(),
                args.slots.to_string(),
                "--join".into(),
                layout.workerpool.to_string(),
                "--stake".into(),
                WORKER_STAKE_RLC.to_string(),
                "--max-calls-per-tx".into(),
                settings.max_calls_per_tx.to_string(),
            ];
            if worker.lying {
                worker_args.push("--corrupt-output".into());
            }
            children
                .start(format!("worker {i}"), xiebao(&format!("worker-{i}.log"), worker_args))?;
        }
        let urls = (scheduler_url.clone(), results_url.clone(), layout.rpc.clone());
        write_pids(&dir, &children, &urls)?;
        let pool_http = format!("http://{}", layout.scheduler_listen);
        let pool = xiebao_rpc::http_client(&pool_http)?;
        let want = layout.workers.len();
        wait_until("the workers", Duration::from_secs(120), &mut children, observer, || async {
            let status = pool.pool_status().await.ok()?;
            (status.workers.len() >= want).then_some(())
        })
        .await?;
        write_pids(&dir, &children, &urls)?;
        observer.say(
        &format!(
            "devnet ready in {:.1} s: rpc {rpc}, scheduler {scheduler_url}, results {results_url}, {want} workers",
            started.elapsed().as_secs_f64()
        ),
    );
        let here = std::env::current_dir().ok();
        let default_dir = here.as_ref().map(|d| d.join(xiebao_sdk::config::DEVNET_DIR));
        if default_dir.as_deref().and_then(|d| std::fs::canonicalize(d).ok())
            == std::fs::canonicalize(&dir).ok()
        {
            observer.say(
            "commands started in this directory use it (no --rpc needed); from elsewhere: --chain devnet from here, or the URLs above",
        );
        } else {
            observer.say(&format!(
            "commands use it with: export XIEBAO_RPC={rpc} XIEBAO_SCHEDULER={scheduler_url} XIEBAO_RESULTS={results_url}"
        ));
        }
        observer.say(
            "demo apps: mandelbrot (arguments WIDTH HEIGHT TILES_X TILES_Y [MAX_ITER], task i renders tile i: xiebao run mandelbrot --args \"64 64 2 2 50\" --volume 4), wordcount (counts words in its input files: xiebao run wordcount --input-file URL …, one per task)",
        );
        observer.say(&format!(
            "fund an account: xiebao account transfer --to ADDRESS --amount 100 --key-file {}",
            layout.keys.faucet.display()
        ));
        if children.supervise(observer)? {
            write_pids(&dir, &children, &urls)?;
        }
        let facts = RunFacts {
            max_calls_per_tx: settings.max_calls_per_tx,
            contribute_and_finalize: settings.contribute_and_finalize,
            block_interval_ms: timing.block_interval_ms,
            block_txs_max: timing.block_txs_max,
            metrics: localnet.metrics.first().cloned(),
        };
        Ok(Self {
            options: options.clone(),
            observer,
            layout,
            children,
            urls,
            node,
            pool,
            facts,
            _lock: lock,
        })
    }

    /// Runs the demo job (see [`Options::app`]) through the devnet, writes its output under
    /// `data_dir/demo` and returns what happened.
    ///
    /// # Errors
    /// When the demo cannot be set up, a task fails, or it does not finish in time (the error
    /// then says which tasks are unfinished and where each node is).
    pub async fn demo(&mut self) -> anyhow::Result<Summary> {
        crate::demo::demo(
            &self.options,
            &self.facts,
            &self.layout,
            &self.node,
            &self.pool,
            &mut self.children,
            &self.urls,
            self.observer,
        )
        .await
    }

    /// Keeps the devnet running, restarting components that die, until one dies too often.
    ///
    /// # Errors
    /// When a component exited more than its restarts allow.
    pub async fn supervise(&mut self) -> anyhow::Result<()> {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if self.children.supervise(self.observer)? {
                write_pids(&self.options.data_dir, &self.children, &self.urls)?;
            }
        }
    }
}
