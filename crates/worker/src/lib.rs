//! Run a workerpool's replicates.
//!
//! A worker holds a key (its account, an active member of the pool), opens a long-lived
//! session with the pool's scheduler (challenge → signed hello → pushed [`Work`]), and for
//! each replicate: fetches the app (and dataset) and checks their sha256 against the registry,
//! or has the OCI runtime pull an app's image and check its manifest digest (setting up,
//! reported separately and never counted as execution time; a mismatch fails as `verifying`),
//! runs the app in its sandbox with the task's arguments and inputs, computes the result digest
//! (rule v1) of the output directory, then, as the scheduler's assignment says, either uploads
//! the result and sends one `contributeAndFinalize` (trust ≤ 1) or contributes and waits to be
//! asked to reveal and upload. Its transactions go through one [`Sender`], so the calls of several tasks share
//! transactions. A failed task is reported and the worker goes on; a dropped connection is
//! retried, and the scheduler resends what the worker still owes.
//!
//! A replicate's sources are bounded (`fetch.rs`): streamed to files under its task directory
//! (apps and datasets to the cache, hashed on the way), refused early on a declared length above
//! the limit, stopped past it or past their time limit, and a task names at most so many input
//! files. The task directory is removed when the replicate ends, whatever the outcome
//! (`TaskDir`); leftovers of a killed worker are removed at start.
//!
//! **Invariant:** a worker never holds a downloaded source whole in memory, and keeps nothing on
//! disk for a replicate once it has ended but the cache of verified apps and datasets.

mod computed;
mod fetch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy_primitives::{B256, Bytes};
use jsonrpsee::core::client::Subscription;
use jsonrpsee::ws_client::WsClient;
use tokio::sync::Semaphore;
use xiebao_runtime::oci::{AppLocation, OciRuntime};
use xiebao_runtime::{AppCode, Job, RunError, Sandbox, WasmRuntime};
use xiebao_scheduler::api::{
    Assignment, Capabilities, Finish, Hello, PoolApiClient, Progress, Report, Resource, Work,
    hello_hash,
};
use xiebao_sdk::client::{Node, Sender, SenderOptions};
use xiebao_types::tx::{AppType, Contribute, ContributeAndFinalize, Reveal};
use xiebao_types::{Address, SecretKey, ids};

/// A deliberate misbehaviour, for fault tests only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Adds a file to every output: the worker's result disagrees with honest workers'.
    CorruptOutput,
}

/// How to run a worker.
#[derive(Clone, Debug)]
pub struct Config {
    /// The node's HTTP RPC URL.
    pub rpc: String,
    /// The scheduler's WebSocket URL.
    pub scheduler: String,
    /// The result store's base URL (`http://host:port`).
    pub results: String,
    /// The worker's key.
    pub key: SecretKey,
    /// Where apps, inputs and outputs are kept.
    pub work_dir: PathBuf,
    /// What it announces.
    pub capabilities: Capabilities,
    /// A deliberate misbehaviour (tests).
    pub fault: Option<Fault>,
    /// Offer the OCI runtime when podman works on this host.
    pub oci: bool,
    /// Join this workerpool at start, bonding this stake, unless already a member.
    pub join: Option<(Address, xiebao_types::Nrlc)>,
    /// Most calls in one of its transactions (at least 1; 1: one call per transaction, the
    /// baseline benchmarks compare batching with).
    pub max_calls_per_tx: usize,
}

/// The worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The node is unreachable.
    #[error(transparent)]
    Node(#[from] xiebao_sdk::client::NodeError),
    /// The sandbox could not be built.
    #[error(transparent)]
    Runtime(#[from] xiebao_runtime::RunError),
    /// Joining the pool failed.
    #[error("joining workerpool {workerpool}: {reason}")]
    Join {
        /// The pool.
        workerpool: Address,
        /// Why.
        reason: String,
    },
    /// The work directory is unusable.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// What the worker keeps about a replicate until it is complete.
struct Held {
    digest: B256,
    archive: Vec<u8>,
    authorization: Bytes,
}

struct Worker {
    config: Config,
    node: Node,
    http: reqwest::Client,
    /// The runtimes, by app type.
    sandboxes: BTreeMap<&'static str, Arc<dyn Sandbox>>,
    sender: Sender,
    slots: Arc<Semaphore>,
    held: Mutex<BTreeMap<B256, Held>>,
    link: Mutex<Option<(Arc<WsClient>, B256)>>,
    app_lock: tokio::sync::Mutex<()>,
    /// What it accepts from a task's download sources.
    limits: fetch::FetchLimits,
}

/// A replicate step failed: where and why.
struct Failure {
    stage: &'static str,
    reason: String,
}

/// The stage of a failure to verify a fetched app, image or dataset against its registry entry.
const VERIFYING: &str = "verifying";

fn fail(stage: &'static str) -> impl FnOnce(String) -> Failure {
    move |reason| Failure { stage, reason }
}

impl Worker {
    fn lock_held(&self) -> std::sync::MutexGuard<'_, BTreeMap<B256, Held>> {
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn report(&self, task: B256, progress: Progress) {
        let link = self.link.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if let Some((client, session)) = link
            && let Err(e) = client.report(Report { session, task, progress }).await
        {
            tracing::debug!(%task, "report not delivered: {e}");
        }
    }

    /// Fetches `resource` (cached by checksum), streaming it to a `.part` file in the cache
    /// and hashing it on the way: a download that fails or exceeds its bounds is a
    /// `setting-up` failure (maybe passing), bytes that do not hash to the registry's checksum
    /// a `verifying` one (the same on every worker, so the scheduler need not retry); either
    /// way nothing is kept.
    async fn fetch(
        &self,
        resource: &Resource,
        kind: &str,
        bytes_max: u64,
    ) -> Result<PathBuf, Failure> {
        let dir = self.config.work_dir.join("cache");
        let path = dir.join(format!("{:x}", resource.checksum));
        let _guard = self.app_lock.lock().await;
        if path.exists() {
            return Ok(path);
        }
        let io = |e: std::io::Error, p: &Path| fail("setting-up")(format!("{}: {e}", p.display()));
        std::fs::create_dir_all(&dir).map_err(|e| io(e, &dir))?;
        let part = path.with_extension("part");
        let got =
            fetch::download(&self.http, &resource.multiaddr, &part, bytes_max, self.limits.timeout)
                .await
                .map_err(|e| {
                    fail("setting-up")(format!("fetching {kind} {}: {e}", resource.address))
                })?;
        let sum = B256::from(got.sha256);
        if sum != resource.checksum {
            let _ = std::fs::remove_file(&part);
            return Err(fail(VERIFYING)(format!(
                "checksum mismatch: {kind} {} from {} has sha256 {sum}, but its registry entry says {}: refusing to use it",
                resource.address, resource.multiaddr, resource.checksum
            )));
        }
        std::fs::rename(&part, &path).map_err(|e| io(e, &path))?;
        Ok(path)
    }

    async fn run_replicate(self: &Arc<Self>, a: Assignment) {
        let task = a.task;
        let start = std::time::Instant::now();
        let result = self.compute(&a).await;
        let computed = start.elapsed();
        if result.is_ok() {
            self.report(task, Progress::Computed).await;
        }
        let outcome = match result {
            Ok(held) => self.finish(&a, held).await,
            Err(failure) => Err(failure),
        };
        if outcome.is_ok() {
            tracing::info!(
                %task,
                index = a.index,
                compute_ms = computed.as_millis() as u64,
                total_ms = start.elapsed().as_millis() as u64,
                "replicate done"
            );
        }
        if let Err(Failure { stage, reason }) = outcome {
            tracing::warn!(%task, "replicate failed while {stage}: {reason}");
            self.report(task, Progress::Failed { stage: stage.into(), reason }).await;
        }
    }

    async fn compute(self: &Arc<Self>, a: &Assignment) -> Result<Held, Failure> {
        let _slot = self.slots.acquire().await.map_err(|e| fail("waiting")(e.to_string()))?;
        if !self.sandboxes.contains_key(a.app_type.as_str()) {
            return Err(fail("setting-up")(format!(
                "app {} is {} and this worker has no such runtime (it runs {})",
                a.app.address,
                a.app_type.as_str(),
                self.sandboxes.keys().copied().collect::<Vec<_>>().join(", ")
            )));
        }
        let params =
            xiebao_sdk::params::TaskParams::parse(&a.params).map_err(fail("setting-up"))?;
        if let Some(key) = &params.result_key {
            let owner = xiebao_types::crypto::public_key_address(key)
                .map_err(|e| fail("setting-up")(format!("params.result_public_key: {e}")))?;
            if owner != a.beneficiary {
                return Err(fail("setting-up")(format!(
                    "params.result_public_key belongs to {owner}, not to the deal's beneficiary {}",
                    a.beneficiary
                )));
            }
        }
        let result_key = params.result_key.clone();
        // Bounded before anything is fetched.
        if params.input_files.len() > self.limits.input_files {
            return Err(fail("setting-up")(format!(
                "the task names {} input files, above this worker's limit of {}",
                params.input_files.len(),
                self.limits.input_files
            )));
        }
        // An OCI app's location may be an image reference: the runtime pulls it and checks
        // its manifest digest; anything else is a URL whose bytes are fetched and checked here.
        let location = match a.app_type {
            AppType::Oci => AppLocation::parse(&a.app.multiaddr)
                .map_err(|e| fail("setting-up")(format!("app {}: {e}", a.app.address)))?,
            _ => AppLocation::Url(a.app.multiaddr.clone()),
        };
        let app = match location {
            AppLocation::Url(_) => {
                self.report(a.task, Progress::SettingUp { detail: "fetching app".into() }).await;
                AppCode::File(self.fetch(&a.app, "app", self.limits.app_bytes).await?)
            }
            AppLocation::Image(reference) => AppCode::Image(reference),
        };
        // Removed with its downloads and outputs when this function returns, however it does.
        let dir = TaskDir::create(&self.config.work_dir.join(TASKS_DIR), &a.task)
            .map_err(fail("setting-up"))?;
        let (input, output) = (dir.input(), dir.output());
        let mut env = vec![
            ("IEXEC_TASK_ID".to_owned(), a.task.to_string()),
            ("IEXEC_DEAL_ID".to_owned(), a.deal.to_string()),
            ("IEXEC_BOT_TASK_INDEX".to_owned(), a.index.to_string()),
            ("IEXEC_BOT_SIZE".to_owned(), a.bot_size.to_string()),
            // iExec's conventions; `/in` and `/out` are the same folders.
            ("IEXEC_IN".to_owned(), xiebao_runtime::INPUT_PATHS[1].to_owned()),
            ("IEXEC_OUT".to_owned(), xiebao_runtime::OUTPUT_PATHS[1].to_owned()),
        ];
        if let Some(dataset) = &a.dataset {
            self.report(a.task, Progress::SettingUp { detail: "fetching dataset".into() }).await;
            let file = self.fetch(dataset, "dataset", self.limits.dataset_bytes).await?;
            // A link to the verified cache entry (read-only to the app), a copy across devices.
            let target = input.join("dataset");
            std::fs::hard_link(&file, &target)
                .or_else(|_| std::fs::copy(&file, &target).map(drop))
                .map_err(|e| fail("setting-up")(format!("copying the dataset: {e}")))?;
            env.push(("IEXEC_DATASET_FILENAME".to_owned(), "dataset".to_owned()));
        }
        if !params.input_files.is_empty() {
            env.push(("IEXEC_INPUT_FILES_NUMBER".to_owned(), params.input_files.len().to_string()));
        }
        // One budget for all input files: each may take what the previous ones left.
        let mut input_bytes_left = self.limits.input_bytes;
        for (i, url) in params.input_files.iter().enumerate() {
            let detail = format!("fetching input file {}/{}", i + 1, params.input_files.len());
            self.report(a.task, Progress::SettingUp { detail }).await;
            let name = xiebao_sdk::params::input_name(url, i);
            let got = fetch::download(
                &self.http,
                url,
                &input.join(&name),
                input_bytes_left,
                self.limits.timeout,
            )
            .await
            .map_err(|e| fail("setting-up")(format!("input file {}: {e}", i + 1)))?;
            input_bytes_left -= got.bytes;
            env.push((format!("IEXEC_INPUT_FILE_NAME_{}", i + 1), name));
        }
        let job = Job {
            args: params.args,
            env,
            input_dir: Some(input),
            output_dir: output.clone(),
            clock_s: a.start_time,
            seed: a.task.0,
        };
        let wall_time = Duration::from_secs(a.time_ref_s.clamp(1, 3_600));
        let sandbox = self
            .sandboxes
            .get(a.app_type.as_str())
            .cloned()
            .ok_or_else(|| fail("setting-up")(format!("no {} runtime", a.app_type.as_str())))?;
        let checksum = a.app.checksum.0;
        if a.app_type == AppType::Oci {
            // Loading or pulling an image is setting up; it is cached, so the run finds it.
            let detail = match &app {
                AppCode::Image(reference) => format!("pulling the image {reference}"),
                AppCode::File(_) => "loading the image".to_owned(),
            };
            self.report(a.task, Progress::SettingUp { detail }).await;
            let (prepare, code) = (sandbox.clone(), app.clone());
            tokio::task::spawn_blocking(move || prepare.prepare(&code, checksum))
                .await
                .map_err(|e| fail("setting-up")(e.to_string()))?
                .map_err(|e| match e {
                    RunError::DigestMismatch { .. } => fail(VERIFYING)(e.to_string()),
                    _ => fail("setting-up")(e.to_string()),
                })?;
        }
        self.report(a.task, Progress::Running).await;
        let outcome =
            tokio::task::spawn_blocking(move || sandbox.run_app(&app, checksum, &job, wall_time))
                .await
                .map_err(|e| fail("running")(e.to_string()))?
                .map_err(|e| fail("running")(e.to_string()))?;
        if outcome.exit_code != 0 {
            let stderr = String::from_utf8_lossy(&outcome.stderr);
            let tail: String =
                stderr.chars().rev().take(400).collect::<Vec<_>>().into_iter().rev().collect();
            return Err(fail("running")(format!(
                "the app exited with code {}: {}",
                outcome.exit_code,
                tail.trim()
            )));
        }
        if self.config.fault == Some(Fault::CorruptOutput) {
            std::fs::write(output.join("corrupted.txt"), b"this worker lies")
                .map_err(|e| fail("running")(e.to_string()))?;
        }
        let out = output.clone();
        let (digest, archive) = tokio::task::spawn_blocking(move || {
            // What `computed.json` names as deterministic is the result (see `computed`).
            computed::narrow_to_deterministic(&out)?;
            let digest = xiebao_sdk::digest::digest_dir(&out).map_err(|e| e.to_string())?;
            let mut archive = archive(&out)?;
            if let Some(key) = result_key {
                // The digest is the plaintext's; only the stored bytes are sealed.
                archive =
                    xiebao_results::sealed::seal(&key, &archive).map_err(|e| e.to_string())?;
            }
            Ok::<_, String>((digest, archive))
        })
        .await
        .map_err(|e| fail("computing the digest")(e.to_string()))?
        .map_err(fail("computing the digest"))?;
        drop(dir);
        Ok(Held { digest, archive, authorization: a.authorization.clone() })
    }

    async fn finish(self: &Arc<Self>, a: &Assignment, held: Held) -> Result<(), Failure> {
        let task = a.task;
        let worker = self.config.key.address();
        match a.finish {
            Finish::ContributeAndFinalize => {
                let link = self
                    .upload(task, &held.archive, Some(&held.authorization))
                    .await
                    .map_err(fail("uploading"))?;
                let call = ContributeAndFinalize {
                    task_id: task,
                    result_digest: held.digest,
                    results: Bytes::from(link.into_bytes()),
                    results_callback: Bytes::new(),
                    enclave_challenge: Address::ZERO,
                    enclave_sign: Bytes::new(),
                    authorization_sign: held.authorization,
                };
                self.sender
                    .send(call.into())
                    .await
                    .map_err(|e| fail("contributing")(e.to_string()))?;
                self.report(task, Progress::Finalized).await;
            }
            Finish::Contribute => {
                let result_hash = ids::result_hash(&task, &held.digest);
                let call = Contribute {
                    task_id: task,
                    result_hash,
                    result_seal: ids::result_seal(&worker, &task, &held.digest),
                    enclave_challenge: Address::ZERO,
                    enclave_sign: Bytes::new(),
                    authorization_sign: held.authorization.clone(),
                };
                self.lock_held().insert(task, held);
                if let Err(e) = self.sender.send(call.into()).await {
                    self.lock_held().remove(&task);
                    return Err(fail("contributing")(e.to_string()));
                }
                self.report(task, Progress::Contributed { result_hash }).await;
            }
        }
        Ok(())
    }

    async fn upload(
        &self,
        task: B256,
        archive: &[u8],
        authorization: Option<&Bytes>,
    ) -> Result<String, String> {
        let cid = xiebao_results::cid_of(archive);
        let hash = xiebao_results::gateway::upload_hash(&task, &cid);
        let signature = self.config.key.eth_sign(&hash);
        let url = format!("{}/v1/results/{task}", self.config.results.trim_end_matches('/'));
        let mut request = self
            .http
            .put(&url)
            .header(
                xiebao_results::gateway::SIGNATURE_HEADER,
                alloy_primitives::hex::encode(&signature),
            )
            .header(xiebao_results::gateway::CID_HEADER, &cid)
            .body(archive.to_vec());
        if let Some(authorization) = authorization {
            request = request.header(
                xiebao_results::gateway::AUTHORIZATION_HEADER,
                alloy_primitives::hex::encode(authorization),
            );
        }
        let response = request.send().await.map_err(|e| format!("PUT {url}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(format!("PUT {url}: HTTP {status}: {body}"));
        }
        Ok(format!("{}/v1/results/{cid}", self.config.results.trim_end_matches('/')))
    }

    async fn reveal(self: &Arc<Self>, task: B256) {
        let digest = self.lock_held().get(&task).map(|h| h.digest);
        let Some(digest) = digest else {
            self.report(
                task,
                Progress::Failed {
                    stage: "revealing".into(),
                    reason: "this worker no longer holds the result (restarted?)".into(),
                },
            )
            .await;
            return;
        };
        match self.sender.send(Reveal { task_id: task, result_digest: digest }.into()).await {
            Ok(_) => self.report(task, Progress::Revealed).await,
            Err(e) => {
                self.report(
                    task,
                    Progress::Failed { stage: "revealing".into(), reason: e.to_string() },
                )
                .await;
            }
        }
    }

    async fn upload_held(self: &Arc<Self>, task: B256) {
        let archive = self.lock_held().get(&task).map(|h| h.archive.clone());
        let result = match archive {
            Some(archive) => self.upload(task, &archive, None).await,
            None => Err("this worker no longer holds the result (restarted?)".into()),
        };
        match result {
            Ok(link) => self.report(task, Progress::Uploaded { link }).await,
            Err(reason) => {
                self.report(task, Progress::Failed { stage: "uploading".into(), reason }).await;
            }
        }
    }

    fn handle(self: &Arc<Self>, work: Work) {
        let worker = self.clone();
        match work {
            Work::Welcome { .. } => {}
            Work::Run(assignment) => {
                tokio::spawn(async move { worker.run_replicate(*assignment).await });
            }
            Work::Reveal { task } => {
                tokio::spawn(async move { worker.reveal(task).await });
            }
            Work::Upload { task } => {
                tokio::spawn(async move { worker.upload_held(task).await });
            }
            Work::Abort { task, .. } | Work::Complete { task } => {
                self.lock_held().remove(&task);
            }
        }
    }

    /// One session: returns when the connection drops.
    async fn session(self: &Arc<Self>) -> Result<(), String> {
        let client = jsonrpsee::ws_client::WsClientBuilder::default()
            .enable_ws_ping(
                jsonrpsee::ws_client::PingConfig::new()
                    .ping_interval(Duration::from_secs(2))
                    .inactive_limit(Duration::from_secs(10)),
            )
            .build(&self.config.scheduler)
            .await
            .map_err(|e| format!("connecting to {}: {e}", self.config.scheduler))?;
        let client = Arc::new(client);
        let challenge = client.challenge().await.map_err(|e| e.to_string())?;
        let status = self.membership_pool().await?;
        let worker = self.config.key.address();
        let signature = self.config.key.eth_sign(&hello_hash(&status, &worker, &challenge));
        let hello =
            Hello { worker, challenge, signature, capabilities: self.config.capabilities.clone() };
        let mut work: Subscription<Work> =
            client.subscribe_work(hello).await.map_err(|e| e.to_string())?;
        while let Some(item) = work.next().await {
            let item = item.map_err(|e| e.to_string())?;
            if let Work::Welcome { session, workerpool } = &item {
                tracing::info!(%workerpool, "session open");
                *self.link.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some((client.clone(), *session));
            }
            self.handle(item);
        }
        Ok(())
    }

    /// The pool this worker is a member of (read from the chain).
    async fn membership_pool(&self) -> Result<Address, String> {
        use xiebao_rpc::XiebaoApiClient as _;
        let worker = self.config.key.address();
        match self.node.rpc.membership(worker).await.map_err(|e| e.to_string())? {
            Some(m) => Ok(m.workerpool),
            None => Err(format!(
                "worker {worker} is not a member of any workerpool: join one by staking first"
            )),
        }
    }
}

/// Longest a setting-up download or image pull may take (never counted as execution time).
const FETCH_TIMEOUT: Duration = Duration::from_secs(300);

/// Where replicates' directories are, under the work directory.
const TASKS_DIR: &str = "tasks";

/// A replicate's directory (`in/`, `out/`, its downloads), removed with everything in it when
/// dropped: when the replicate's computation ends, whether it succeeded or failed.
struct TaskDir {
    path: PathBuf,
}

impl TaskDir {
    /// Creates a fresh directory for `task` under `root` (unique even when the same task is
    /// run twice at once), with empty `in/` and `out/`.
    fn create(root: &Path, task: &B256) -> Result<Self, String> {
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let dir = Self { path: root.join(format!("{task:x}-{run}")) };
        let _ = std::fs::remove_dir_all(&dir.path);
        for d in [dir.input(), dir.output()] {
            std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        Ok(dir)
    }

    fn input(&self) -> PathBuf {
        self.path.join("in")
    }

    fn output(&self) -> PathBuf {
        self.path.join("out")
    }
}

impl Drop for TaskDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("removing {}: {e}", self.path.display());
        }
    }
}

/// Removes what a previous worker process left in `work_dir`: replicates' directories and
/// partial downloads in the cache (it was killed mid-task).
fn remove_leftovers(work_dir: &Path) {
    let _ = std::fs::remove_dir_all(work_dir.join(TASKS_DIR));
    if let Ok(entries) = std::fs::read_dir(work_dir.join("cache")) {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "part") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// A deterministic tar of `dir`: every file and directory (so an empty directory, which the
/// result digest counts, survives the trip to the requester), sorted by path, with times and
/// owners zeroed and modes normalized. Anything else (a symbolic link, a device) is refused.
fn archive(dir: &Path) -> Result<Vec<u8>, String> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    let mut entries = Vec::new();
    collect(dir, dir, &mut entries).map_err(|e| e.to_string())?;
    entries.sort();
    for (name, path, is_dir) in entries {
        if is_dir {
            builder.append_dir(&name, &path).map_err(|e| e.to_string())?;
        } else {
            builder.append_path_with_name(&path, &name).map_err(|e| e.to_string())?;
        }
    }
    builder.into_inner().map_err(|e| e.to_string())
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf, bool)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        let name = path.strip_prefix(root).map_err(std::io::Error::other)?;
        let name = name.to_str().ok_or_else(|| {
            std::io::Error::other(format!("{}: the name is not UTF-8", path.display()))
        })?;
        if kind.is_dir() {
            out.push((name.to_owned(), path.clone(), true));
            collect(root, &path, out)?;
        } else if kind.is_file() {
            out.push((name.to_owned(), path, false));
        } else {
            return Err(std::io::Error::other(format!(
                "{name}: not a regular file or a directory; refusing to archive it"
            )));
        }
    }
    Ok(())
}

/// Runs the worker until the process stops: connects, works, reconnects after a drop.
///
/// # Errors
/// [`WorkerError`] when the node, the sandbox or the work directory is unusable at start.
///
/// # Panics
/// If `config.max_calls_per_tx` is 0.
pub async fn run(config: Config) -> Result<(), WorkerError> {
    std::fs::create_dir_all(&config.work_dir)
        .map_err(|source| WorkerError::Io { path: config.work_dir.clone(), source })?;
    remove_leftovers(&config.work_dir);
    let node = Node::connect(&config.rpc).await?;
    let options = SenderOptions { max_calls: config.max_calls_per_tx, ..SenderOptions::default() };
    let sender = Sender::spawn(node.clone(), config.key.clone(), options);
    if let Some((workerpool, stake)) = config.join {
        use xiebao_rpc::XiebaoApiClient as _;
        let membership = node
            .rpc
            .membership(config.key.address())
            .await
            .map_err(|e| WorkerError::Join { workerpool, reason: e.to_string() })?;
        let active = membership.is_some_and(|m| {
            m.workerpool == workerpool && m.status == xiebao_protocol::MembershipStatus::Active
        });
        if !active {
            sender
                .send(xiebao_types::tx::JoinPool { workerpool, stake }.into())
                .await
                .map_err(|e| WorkerError::Join { workerpool, reason: e.to_string() })?;
            tracing::info!(%workerpool, "joined the pool");
        }
    }
    let slots = Arc::new(Semaphore::new(config.capabilities.slots.max(1) as usize));
    let mut config = config;
    let mut sandboxes: BTreeMap<&'static str, Arc<dyn Sandbox>> = BTreeMap::new();
    let wasm: Arc<dyn Sandbox> = Arc::new(WasmRuntime::new()?);
    sandboxes.insert(wasm.kind(), wasm);
    if config.oci {
        match OciRuntime::new(&config.work_dir.join("oci")) {
            Ok(oci) => {
                let oci = oci.with_pull_timeout(FETCH_TIMEOUT);
                let oci: Arc<dyn Sandbox> = Arc::new(oci);
                sandboxes.insert(oci.kind(), oci);
            }
            Err(e) => tracing::warn!("no OCI runtime, WASM apps only: {e}"),
        }
    }
    config.capabilities.runtimes = sandboxes.keys().map(|k| (*k).to_owned()).collect();
    let worker = Arc::new(Worker {
        http: reqwest::Client::builder().timeout(FETCH_TIMEOUT).build().map_err(|e| {
            WorkerError::Io { path: PathBuf::from("http client"), source: std::io::Error::other(e) }
        })?,
        sandboxes,
        node,
        sender,
        slots,
        held: Mutex::new(BTreeMap::new()),
        link: Mutex::new(None),
        app_lock: tokio::sync::Mutex::new(()),
        limits: fetch::FetchLimits::default(),
        config,
    });
    let mut backoff = Duration::from_millis(200);
    loop {
        match worker.session().await {
            Ok(()) => {
                tracing::warn!("the scheduler closed the session; reconnecting");
                backoff = Duration::from_millis(200);
            }
            Err(e) => tracing::warn!("scheduler session: {e}; retrying in {backoff:?}"),
        }
        *worker.link.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests;
