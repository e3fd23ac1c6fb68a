//! iExec's `computed.json`: an app may name, in `/iexec_out/computed.json`, the part of its
//! output that is deterministic (`"deterministic-output-path"`, a file or a folder under
//! `/iexec_out`). Replicates then agree on that part only: the result a worker digests,
//! archives and uploads is that file or folder (under its own name) and `computed.json`,
//! nothing else — what every honest worker computes alike, and what the requester can check
//! against the digest agreed on chain. Without `computed.json` the whole output is the result.

use std::path::{Component, Path, PathBuf};

/// The file an app writes to name its deterministic output.
pub(crate) const COMPUTED_FILE: &str = "computed.json";
/// Largest `computed.json` read, bytes.
const COMPUTED_MAX_BYTES: u64 = 64 << 10;
/// Where the app sees its output folder.
const GUEST_OUT: &str = "/iexec_out";

/// Narrows `out` (the app's output folder) to what `computed.json` names, in place; returns
/// whether it did. Without `computed.json`, or when it names the whole folder, `out` is left
/// as it is.
///
/// # Errors
/// A message naming the rule: `computed.json` too large, not JSON, without a string
/// `deterministic-output-path`, naming a path outside the output folder or absent from it.
pub(crate) fn narrow_to_deterministic(out: &Path) -> Result<bool, String> {
    let file = out.join(COMPUTED_FILE);
    let meta = match std::fs::symlink_metadata(&file) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("{COMPUTED_FILE}: {e}")),
    };
    if !meta.is_file() {
        return Err(format!("{COMPUTED_FILE} must be a regular file"));
    }
    if meta.len() > COMPUTED_MAX_BYTES {
        return Err(format!(
            "{COMPUTED_FILE} is {} bytes, over the {COMPUTED_MAX_BYTES} bytes it may hold",
            meta.len()
        ));
    }
    let text = std::fs::read(&file).map_err(|e| format!("{COMPUTED_FILE}: {e}"))?;
    let json: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| format!("{COMPUTED_FILE} is not JSON: {e}"))?;
    let Some(path) = json.get("deterministic-output-path") else {
        return Ok(false);
    };
    let path = path.as_str().ok_or_else(|| {
        format!("{COMPUTED_FILE}: deterministic-output-path must be a string, got {path}")
    })?;
    let relative = inside_out(path).ok_or_else(|| {
        format!(
            "{COMPUTED_FILE}: deterministic-output-path {path:?} is not inside {GUEST_OUT} (nor /out)"
        )
    })?;
    if relative.as_os_str().is_empty() {
        return Ok(false);
    }
    let chosen = out.join(&relative);
    let kind = std::fs::symlink_metadata(&chosen).map_err(|_| {
        format!("{COMPUTED_FILE}: deterministic-output-path {path:?} does not exist in the output")
    })?;
    if kind.file_type().is_symlink() {
        return Err(format!(
            "{COMPUTED_FILE}: deterministic-output-path {path:?} is a symbolic link"
        ));
    }
    // Keep `computed.json` and the chosen entry (with its folders); remove everything else.
    let keep: Vec<PathBuf> = vec![PathBuf::from(COMPUTED_FILE), relative];
    prune(out, Path::new(""), &keep).map_err(|e| format!("narrowing the output: {e}"))?;
    Ok(true)
}

/// The path relative to the output folder that `path` names (`/iexec_out/a/b`, `/out/a/b`,
/// `a/b` or `./a/b`), or `None` when it leaves the folder (`..`, another root).
fn inside_out(path: &str) -> Option<PathBuf> {
    let rest = ["/iexec_out", "/out"]
        .iter()
        .find_map(|root| {
            path.strip_prefix(root).filter(|rest| rest.is_empty() || rest.starts_with('/'))
        })
        .map(|rest| rest.trim_start_matches('/'))
        .or_else(|| (!path.starts_with('/')).then_some(path))?;
    let mut relative = PathBuf::new();
    for component in Path::new(rest).components() {
        match component {
            Component::Normal(name) => relative.push(name),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(relative)
}

/// Removes from `root/at` every entry that is neither one of `keep` nor a folder on the way
/// to one.
fn prune(root: &Path, at: &Path, keep: &[PathBuf]) -> std::io::Result<()> {
    for entry in std::fs::read_dir(root.join(at))? {
        let entry = entry?;
        let relative = at.join(entry.file_name());
        if keep.contains(&relative) {
            continue;
        }
        let on_the_way = keep.iter().any(|k| k.starts_with(&relative));
        let kind = entry.file_type()?;
        if on_the_way && kind.is_dir() {
            prune(root, &relative, keep)?;
        } else if kind.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut all = Vec::new();
        for entry in walk(dir) {
            all.push(entry.strip_prefix(dir).unwrap().display().to_string());
        }
        all.sort();
        all
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(walk(&path));
            }
            out.push(path);
        }
        out
    }

    #[test]
    fn the_deterministic_file_and_computed_json_are_all_that_stays() {
        let out = output(&[
            ("computed.json", r#"{"deterministic-output-path":"/iexec_out/result/answer.txt"}"#),
            ("result/answer.txt", "42"),
            ("result/trace.txt", "took 3 ms"),
            ("log.txt", "started at 12:00"),
        ]);
        assert!(narrow_to_deterministic(out.path()).unwrap());
        assert_eq!(listing(out.path()), ["computed.json", "result", "result/answer.txt"]);
    }

    #[test]
    fn a_deterministic_folder_stays_whole_and_the_whole_output_means_no_change() {
        let out = output(&[
            ("computed.json", r#"{"deterministic-output-path":"/iexec_out/tiles"}"#),
            ("tiles/a.png", "a"),
            ("tiles/b.png", "b"),
            ("stats.txt", "x"),
        ]);
        assert!(narrow_to_deterministic(out.path()).unwrap());
        assert_eq!(listing(out.path()), ["computed.json", "tiles", "tiles/a.png", "tiles/b.png"]);
        let whole = output(&[
            ("computed.json", r#"{"deterministic-output-path":"/iexec_out"}"#),
            ("x.txt", "x"),
        ]);
        assert!(!narrow_to_deterministic(whole.path()).unwrap());
        assert_eq!(listing(whole.path()), ["computed.json", "x.txt"]);
        let none = output(&[("x.txt", "x")]);
        assert!(!narrow_to_deterministic(none.path()).unwrap());
    }

    #[test]
    fn a_path_outside_the_output_or_absent_or_malformed_is_refused_with_the_rule() {
        for (computed, expected) in [
            (r#"{"deterministic-output-path":"/etc/passwd"}"#, "is not inside /iexec_out"),
            (r#"{"deterministic-output-path":"/iexec_out/../etc"}"#, "is not inside /iexec_out"),
            (r#"{"deterministic-output-path":"/iexec_outside/x"}"#, "is not inside /iexec_out"),
            (r#"{"deterministic-output-path":"/iexec_out/missing"}"#, "does not exist"),
            (r#"{"deterministic-output-path":7}"#, "must be a string"),
            ("not json", "is not JSON"),
        ] {
            let out = output(&[("computed.json", computed), ("x.txt", "x")]);
            let error = narrow_to_deterministic(out.path()).unwrap_err();
            assert!(error.contains(expected), "{computed}: {error}");
            assert_eq!(listing(out.path()), ["computed.json", "x.txt"], "nothing removed");
        }
    }
}
