//! Builds each demo app under `apps/` for wasm32-wasip1, so the crate embeds modules built from
//! the source in this repository rather than checked-in binaries.
#![allow(clippy::print_stdout, reason = "a build script talks to cargo on stdout")]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The apps, by directory under `apps/`; each directory's package has the same name.
const APPS: [&str; 2] = ["mandelbrot", "wordcount"];
const TARGET: &str = "wasm32-wasip1";

/// Variables the outer build sets or inherits that must not steer the apps' build: flags for
/// the host target, the outer target directory and profile, wrappers such as clippy's driver,
/// the jobserver of the outer cargo, and the package facts cargo gives build scripts.
const LEAKING: [&str; 22] = [
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_LINKER",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "CARGO_INCREMENTAL",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_CRATE_NAME",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "CARGO_RUSTC_CURRENT_DIR",
    "OUT_DIR",
    "TARGET",
    "HOST",
    "NUM_JOBS",
    "OPT_LEVEL",
    "DEBUG",
    "PROFILE",
];
/// Prefixes of such variables (`CARGO_TARGET_` covers `CARGO_TARGET_DIR` and per-target
/// linkers and flags, `CARGO_ENCODED_` the encoded flags).
const LEAKING_PREFIXES: [&str; 9] = [
    "CARGO_PKG_",
    "CARGO_PROFILE_",
    "CARGO_BUILD_",
    "CARGO_TARGET_",
    "CARGO_ENCODED_",
    "CARGO_CFG_",
    "CARGO_FEATURE_",
    "DEP_",
    "__CARGO",
];

fn main() {
    let manifest_dir = PathBuf::from(var("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(var("OUT_DIR"));
    let cargo = var("CARGO");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    // crates/apps -> the repository root.
    let Some(root) = manifest_dir.ancestors().nth(2) else {
        fail(&format!("{} is not inside the repository", manifest_dir.display()))
    };
    let apps_dir = root.join("apps");
    for app in APPS {
        let dir = apps_dir.join(app);
        for watched in ["Cargo.toml", "Cargo.lock", "src"] {
            println!("cargo:rerun-if-changed={}", dir.join(watched).display());
        }
    }
    check_target(&rustc);
    let target_dir = out_dir.join("apps-target");
    for app in APPS {
        let manifest = apps_dir.join(app).join("Cargo.toml");
        let mut command = Command::new(&cargo);
        command
            .args(["build", "--release", "--locked", "--target", TARGET, "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target_dir)
            .current_dir(apps_dir.join(app));
        for (name, _) in std::env::vars_os() {
            if leaks(&name) {
                command.env_remove(&name);
            }
        }
        let output = command.output().unwrap_or_else(|e| {
            fail(&format!("cannot run {} to build the {app} app: {e}", cargo.to_string_lossy()))
        });
        if !output.status.success() {
            fail(&format!(
                "building the {app} app ({}) for {TARGET} failed:\n{}",
                manifest.display(),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let built = target_dir.join(TARGET).join("release").join(format!("{app}.wasm"));
        let embedded = out_dir.join(format!("{app}.wasm"));
        if let Err(e) = std::fs::copy(&built, &embedded) {
            fail(&format!("cannot copy {} to {}: {e}", built.display(), embedded.display()));
        }
    }
}

fn leaks(name: &OsString) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    LEAKING.contains(&name) || LEAKING_PREFIXES.iter().any(|prefix| name.starts_with(prefix))
}

/// Fails early, naming the fix, when the toolchain has no standard library for the target.
fn check_target(rustc: &OsString) {
    let output = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run {}: {e}", rustc.to_string_lossy())));
    let libdir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if !output.status.success() || !has_std(&libdir) {
        fail(&format!(
            "the {TARGET} target is not installed for this toolchain, and the demo apps are \
             built for it; install it with `rustup target add {TARGET}`"
        ));
    }
}

fn has_std(libdir: &Path) -> bool {
    std::fs::read_dir(libdir).is_ok_and(|entries| {
        entries.flatten().any(|entry| entry.file_name().to_string_lossy().starts_with("libstd-"))
    })
}

fn var(name: &str) -> OsString {
    std::env::var_os(name).unwrap_or_else(|| fail(&format!("cargo did not set {name}")))
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}
