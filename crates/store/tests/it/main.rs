//! The store: restart from the last committed block, including after `kill -9`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use xiebao_store::{Store, StoreError};

/// Runs the writer until it reports at least `min_height` committed blocks, then kills it
/// with SIGKILL; returns the last height it reported.
fn run_and_kill(path: &std::path::Path, min_height: u64) -> u64 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xiebao-store-crash-writer"))
        .arg(path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start writer");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last = 0;
    while last < min_height {
        let line = lines.next().expect("writer exited early").unwrap();
        last = line.trim().parse().unwrap();
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    last
}

#[test]
fn restart_after_kill_9_resumes_from_the_last_committed_block() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let first = run_and_kill(&path, 20);
    let (state, head) = {
        let store = Store::open(&path).unwrap();
        store.load().unwrap().expect("a chain")
    };
    // Every block reported durable is there; the state matches the head (checked by load).
    assert!(head.height >= first, "head {} < reported {first}", head.height);
    assert_eq!(state.digest(), head.state_root);
    // The writer resumes on top of it, and survives a second kill.
    let second = run_and_kill(&path, head.height + 10);
    let store = Store::open(&path).unwrap();
    let (state, head2) = store.load().unwrap().unwrap();
    assert!(head2.height >= second);
    assert_eq!(state.digest(), head2.state_root);
    // Blocks are stored and chained.
    let block = store.block(head2.height).unwrap().expect("head block stored");
    assert_eq!(block.header, head2);
    let parent = store.block(head2.height - 1).unwrap().expect("parent stored");
    assert_eq!(block.header.parent, parent.header.hash());
}

#[test]
fn blocks_must_follow_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    run_and_kill(&path, 3);
    let store = Store::open(&path).unwrap();
    let (mut state, head) = store.load().unwrap().unwrap();
    let block = store.block(2).unwrap().unwrap();
    assert_eq!(
        store.commit(&block, state.take_changes()),
        Err(StoreError::NotNext { head: head.height, got: 2 })
    );
    assert!(matches!(store.init(&mut state, &head), Err(StoreError::AlreadyInitialized { .. })));
}

#[test]
fn an_empty_store_has_no_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("empty.redb")).unwrap();
    assert_eq!(store.head().unwrap(), None);
    assert!(store.load().unwrap().is_none());
    assert_eq!(store.block(1).unwrap(), None);
}

#[test]
fn pruning_drops_old_blocks_and_keeps_the_head_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let head = run_and_kill(&path, 6);
    let store = Store::open(&path).unwrap();
    let (_, loaded) = store.load().unwrap().unwrap();
    // Epoch boundaries (here: block 2) are kept.
    assert_eq!(store.prune_blocks(4, |h| h == 2).unwrap(), 2, "blocks 1 and 3 go");
    assert!(store.block(2).unwrap().is_some(), "a kept block stays");
    assert_eq!(store.prune_blocks(4, |_| false).unwrap(), 1, "block 2 goes when not kept");
    for height in 1..4 {
        assert_eq!(store.block(height).unwrap(), None, "block {height}");
    }
    assert!(store.block(4).unwrap().is_some());
    // The head block is never pruned, even when asked to.
    store.prune_blocks(u64::MAX, |_| false).unwrap();
    assert!(store.block(loaded.height).unwrap().is_some());
    assert_eq!(store.load().unwrap().unwrap().1, loaded, "the state and head survive pruning");
    assert!(head >= 6);
}
