//! The OCI demo app (`apps/oci-wordcount`): its build context, embedded so the binary can
//! build the image on any host with podman and a static busybox.

use std::path::{Path, PathBuf};

/// The image's Containerfile.
pub const CONTAINERFILE: &str = include_str!("../../../apps/oci-wordcount/Containerfile");
/// The counting script the image runs.
pub const SCRIPT: &str = include_str!("../../../apps/oci-wordcount/count.sh");
/// Where the app writes its counts.
pub const COUNTS_FILE: &str = "counts.json";
/// Where a static busybox is on Debian (`busybox-static`).
pub const BUSYBOX: &str = "/bin/busybox";

/// Writes the build context (Containerfile, script, a copy of `busybox`) into `dir`.
///
/// # Errors
/// When a file cannot be written or `busybox` cannot be copied.
pub fn write_context(dir: &Path, busybox: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("Containerfile"), CONTAINERFILE)?;
    std::fs::write(dir.join("count.sh"), SCRIPT)?;
    std::fs::copy(busybox, dir.join("busybox"))?;
    Ok(dir.to_owned())
}
