//! The devnet's processes: each component a child process of the `xiebao` program, logging
//! under the data directory, restarted when it dies (a few times), stopped with SIGTERM when
//! the devnet is dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::Observer;

/// How a component process is started (again).
#[derive(Clone, Debug)]
pub(crate) enum Launch {
    /// `xiebao node --config` (logs beside its config).
    Node(PathBuf),
    /// `xiebao ARGS…`, logging to `logs/LOG`.
    Xiebao { args: Vec<String>, log: String },
}

/// A component and its process.
struct Component {
    name: String,
    launch: Launch,
    child: Child,
    restarts: u32,
}

/// Most restarts of one component before the devnet gives up on it.
const RESTARTS_MAX: u32 = 5;

/// The devnet's processes: restarted when they die, stopped (SIGTERM, then waited for) when
/// dropped.
pub(crate) struct Children {
    pub(crate) dir: PathBuf,
    program: PathBuf,
    all: Vec<Component>,
}

impl Children {
    pub(crate) fn new(dir: &Path, program: &Path) -> Self {
        Self { dir: dir.to_owned(), program: program.to_owned(), all: Vec::new() }
    }

    pub(crate) fn start(&mut self, name: impl Into<String>, launch: Launch) -> anyhow::Result<u32> {
        let child = self.launch(&launch)?;
        let pid = child.id();
        self.all.push(Component { name: name.into(), launch, child, restarts: 0 });
        Ok(pid)
    }

    fn launch(&self, launch: &Launch) -> anyhow::Result<Child> {
        match launch {
            Launch::Node(config) => crate::process::spawn_node(&self.program, config),
            Launch::Xiebao { args, log } => spawn(&self.program, &self.dir, log, args),
        }
    }

    pub(crate) fn pids(&self, prefix: &str) -> Vec<u32> {
        self.all.iter().filter(|c| c.name.starts_with(prefix)).map(|c| c.child.id()).collect()
    }

    /// Restarts every component that exited; returns whether any was.
    pub(crate) fn supervise(&mut self, observer: &dyn Observer) -> anyhow::Result<bool> {
        let mut restarted = false;
        for index in 0..self.all.len() {
            let Ok(Some(status)) = self.all[index].child.try_wait() else { continue };
            let component = &self.all[index];
            let log = component.launch.log_path(&self.dir);
            if component.restarts >= RESTARTS_MAX {
                bail!(
                    "{} exited ({status}) after {} restarts; its log {} ends with:\n{}",
                    component.name,
                    component.restarts,
                    log.display(),
                    log_tail(&log, 8)
                );
            }
            let last = log_tail(&log, 1);
            observer.warn(&format!("{} exited ({status}): restarting it ({last})", component.name));
            let child = self.launch(&component.launch)?;
            let component = &mut self.all[index];
            component.child = child;
            component.restarts += 1;
            restarted = true;
        }
        Ok(restarted)
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for component in self.all.iter().rev() {
            let pid = component.child.id().to_string();
            // Quietly: a component that already exited has no process to signal.
            let _ = Command::new("kill").arg(&pid).stderr(Stdio::null()).status();
            // A stopped (SIGSTOP) process acts on SIGTERM only once continued: without this,
            // waiting for a hung component would never end.
            let _ = Command::new("kill").args(["-CONT", &pid]).stderr(Stdio::null()).status();
        }
        for component in &mut self.all {
            let _ = component.child.wait();
        }
    }
}

fn spawn(program: &Path, data_dir: &Path, log: &str, args: &[String]) -> anyhow::Result<Child> {
    let log_path = data_dir.join("logs").join(log);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting `xiebao {}`", args.first().map_or("", String::as_str)))
}

/// Waits until `probe` gives a value, restarting components that die meanwhile.
pub(crate) async fn wait_until<T, F, Fut>(
    what: &str,
    timeout: Duration,
    children: &mut Children,
    observer: &dyn Observer,
    mut probe: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return Ok(value);
        }
        children.supervise(observer)?;
        if start.elapsed() > timeout {
            bail!(
                "{what}: still not ready after {} s (see the logs under {} and the validators' node.log under {})",
                timeout.as_secs(),
                children.dir.join("logs").display(),
                children.dir.join("chain").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Launch {
    /// Where the component logs: `node.log` beside a validator's config, else `logs/LOG`.
    fn log_path(&self, dir: &Path) -> PathBuf {
        match self {
            Launch::Node(config) => config.parent().unwrap_or(Path::new(".")).join("node.log"),
            Launch::Xiebao { log, .. } => dir.join("logs").join(log),
        }
    }
}

/// The last `lines` non-empty lines of a log (its last 64 KiB read), or why it cannot be read.
fn log_tail(path: &Path, lines: usize) -> String {
    use std::io::{Read as _, Seek as _};
    let read = || -> std::io::Result<String> {
        let mut file = std::fs::File::open(path)?;
        let length = file.metadata()?.len();
        file.seek(std::io::SeekFrom::Start(length.saturating_sub(64 * 1024)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let last: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            last[last.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("{} unreadable: {e}", path.display()),
    }
}

pub(crate) fn xiebao(log: &str, args: Vec<String>) -> Launch {
    Launch::Xiebao { args, log: log.to_owned() }
}
