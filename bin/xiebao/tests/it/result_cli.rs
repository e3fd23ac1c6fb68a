//! `xiebao result digest` on real directories, against an independent Python implementation.

use std::path::Path;
use std::process::Command;

fn python_digest(dir: &Path) -> String {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python3");
    // The venv exists once any eth-account test ran; make sure of it.
    let _ = crate::order_cli::vectors_py(
        &[
            "mnemonic",
            "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
            "0",
        ],
        None,
    );
    let output = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/digest.py"))
        .arg(dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn xiebao_digest(args: &[&str]) -> (bool, String, String) {
    let run = crate::xiebao(&[&["result", "digest"][..], args].concat());
    (run.ok, run.stdout, run.stderr)
}

#[test]
fn output_directory_digests_match_the_independent_implementation() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    std::fs::create_dir_all(out.join("frames/empty")).unwrap();
    std::fs::create_dir_all(out.join("logs")).unwrap();
    std::fs::write(out.join("result.txt"), "42\n").unwrap();
    std::fs::write(out.join("frames/0001.png"), [0u8, 1, 2, 255]).unwrap();
    std::fs::write(out.join("frames/0002.png"), b"").unwrap();
    std::fs::write(out.join("logs/ünïcode.log"), "ok").unwrap();
    let (ok, ours, stderr) = xiebao_digest(&[out.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert_eq!(ours, python_digest(&out));
    // Any change of a name or a byte changes the digest.
    std::fs::write(out.join("frames/0002.png"), b"x").unwrap();
    let (_, changed, _) = xiebao_digest(&[out.to_str().unwrap()]);
    assert_ne!(changed, ours);
    assert_eq!(changed, python_digest(&out));
}

#[test]
fn callback_digest_is_keccak_of_the_data_and_links_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("callback.bin");
    std::fs::write(&data, b"").unwrap();
    let (ok, digest, _) = xiebao_digest(&["--callback-file", data.to_str().unwrap()]);
    assert!(ok);
    assert_eq!(digest, "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
    let out = root.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", out.join("leak")).unwrap();
    let (ok, _, stderr) = xiebao_digest(&[out.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("links and special files are not allowed"), "{stderr}");
}
