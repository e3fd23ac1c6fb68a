//! The demo apps run in the real sandbox, and the host side that assembles their output.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use xiebao_runtime::{Job, Limits, Outcome, WasmRuntime};

mod mandelbrot;
mod wordcount;

/// One runtime for the whole binary, so each module is compiled once.
fn runtime() -> &'static WasmRuntime {
    static RUNTIME: OnceLock<WasmRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| WasmRuntime::new().expect("runtime"))
}

/// A finished run and the output directory it wrote.
struct Run {
    outcome: Outcome,
    _root: tempfile::TempDir,
    output: PathBuf,
}

impl Run {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.outcome.stderr).into_owned()
    }

    fn file(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.output.join(name)).ok()
    }
}

/// Runs `module` with `args`, `env` and `/in` mounted from `input` (if any).
fn run(module: &[u8], args: &[&str], env: &[(&str, &str)], input: Option<&Path>) -> Run {
    let root = tempfile::tempdir().expect("temp dir");
    let output = root.path().join("out");
    std::fs::create_dir(&output).expect("out dir");
    let job = Job {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        env: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        input_dir: input.map(Path::to_path_buf),
        output_dir: output.clone(),
        clock_s: 1_700_000_000,
        seed: [3; 32],
    };
    let outcome = runtime().run(module, &job, &Limits::default()).expect("the app ran");
    Run { outcome, _root: root, output }
}
