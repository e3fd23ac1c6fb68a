//! The store: restart from the last committed block, including after `kill -9`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use alloy_primitives::{Address, B256, U256};
use xiebao_node::{Header, execute_block, propose_block};
use xiebao_protocol::testkit::{CHAIN_ID, DealSpec, World};
use xiebao_protocol::{FinishedTasks, State, TaskStatus, VerifiedTx};
use xiebao_store::{Store, StoreError};
use xiebao_types::tx::{Call, Initialize, PoolPolicy};
use xiebao_types::{Nrlc, SecretKey, Transaction};

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
        store.load(FinishedTasks::Keep).unwrap().expect("a chain")
    };
    // Every block reported durable is there; the state matches the head (checked by load).
    assert!(head.height >= first, "head {} < reported {first}", head.height);
    assert_eq!(state.digest(), head.state_root);
    // The writer resumes on top of it, and survives a second kill.
    let second = run_and_kill(&path, head.height + 10);
    let store = Store::open(&path).unwrap();
    let (state, head2) = store.load(FinishedTasks::Keep).unwrap().unwrap();
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
    let (mut state, head) = store.load(FinishedTasks::Keep).unwrap().unwrap();
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
    assert!(store.load(FinishedTasks::Keep).unwrap().is_none());
    assert_eq!(store.block(1).unwrap(), None);
}

#[test]
fn pruning_drops_old_blocks_and_keeps_the_head_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let head = run_and_kill(&path, 6);
    let store = Store::open(&path).unwrap();
    let (_, loaded) = store.load(FinishedTasks::Keep).unwrap().unwrap();
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
    assert_eq!(
        store.load(FinishedTasks::Keep).unwrap().unwrap().1,
        loaded,
        "the state and head survive pruning"
    );
    assert!(head >= 6);
}

/// A transaction from `key` at its next nonce in `state`.
fn sign(state: &State, key: &SecretKey, calls: Vec<Call>) -> VerifiedTx {
    let nonce = state.account(&key.address()).nonce;
    let signed = Transaction { chain_id: CHAIN_ID, nonce, calls }.sign(key);
    VerifiedTx::new(signed, &state.domain()).expect("valid signatures")
}

/// Proposes, executes and commits a block of `txs`; every one must apply.
fn commit(store: &Store, state: &mut State, head: &mut Header, txs: Vec<VerifiedTx>) {
    let proposal = propose_block(state, head, head.timestamp + 1, Address::ZERO, txs);
    assert!(proposal.rejected.is_empty(), "{:?}", proposal.rejected);
    execute_block(state, head, &proposal.block).expect("execute");
    store.commit(&proposal.block, state.take_changes()).expect("commit");
    *head = proposal.block.header;
}

#[test]
fn finished_tasks_leave_memory_and_are_read_back_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("chain.redb")).unwrap();
    let mut w = World::new(1, Nrlc::rlc(1_000_000), PoolPolicy::default(), Nrlc::rlc(1_000));
    let deal = w.deal(&DealSpec { volume: 6, ..DealSpec::default() }).unwrap();
    let mut state = w.state.clone();
    state.set_finished_tasks(FinishedTasks::Evict);
    let mut head = Header {
        chain_id: CHAIN_ID,
        height: 0,
        parent: B256::ZERO,
        timestamp: w.block.timestamp,
        proposer: Address::ZERO,
        tx_root: B256::ZERO,
        state_root: state.digest(),
    };
    store.init(&mut state, &head).unwrap();
    let (owner, worker) = (w.actors.pool_owner.clone(), w.actors.workers[0].clone());
    let first = state.deals()[&deal].bot_first;
    let tasks: Vec<B256> = (0..6).map(|i| w.task_id(&deal, i)).collect();
    let init = (0..6).map(|i| Initialize { deal_id: deal, idx: first + U256::from(i) }.into());
    let tx = sign(&state, &owner, init.collect());
    commit(&store, &mut state, &mut head, vec![tx]);
    let digest = B256::repeat_byte(0x60);
    let settle = tasks[..4].iter().map(|t| w.contribute_and_finalize_call(0, t, &digest));
    let tx = sign(&state, &worker, settle.collect());
    commit(&store, &mut state, &mut head, vec![tx]);

    // Only the two open tasks' records stay in memory; the four finished ones are in the
    // store, with their statuses in memory.
    assert_eq!((state.tasks().len(), state.task_count()), (2, 6));
    for task in &tasks[..4] {
        assert!(state.is_evicted(task));
        assert_eq!(state.task_status(task), Some(TaskStatus::Completed));
        let stored = store.task(task).unwrap().expect("stored");
        assert_eq!((stored.status, stored.result_digest), (TaskStatus::Completed, digest));
    }
    // A call on an evicted task is refused on its status, as on one in memory.
    let again = sign(&state, &worker, vec![w.contribute_and_finalize_call(0, &tasks[0], &digest)]);
    let refused = propose_block(&mut state, &head, head.timestamp + 1, Address::ZERO, vec![again]);
    let error = refused.rejected.first().expect("refused").1.to_string();
    assert!(error.contains("COMPLETED"), "{error}");

    // Reloaded either way: the same root; evicting keeps only the open tasks in memory.
    let (evicted, _) = store.load(FinishedTasks::Evict).unwrap().unwrap();
    let (kept, _) = store.load(FinishedTasks::Keep).unwrap().unwrap();
    assert_eq!(evicted.digest(), head.state_root);
    assert_eq!(kept.full_digest(), head.state_root);
    assert_eq!((evicted.tasks().len(), kept.tasks().len()), (2, 6));
    for task in &tasks {
        assert_eq!(evicted.task_status(task), Some(kept.tasks()[task].status));
        assert_eq!(store.task(task).unwrap().as_ref(), Some(&kept.tasks()[task]));
    }
}
