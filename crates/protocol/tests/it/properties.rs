//! Property tests over random sequences of valid and invalid transactions.

use alloy_primitives::B256;
use proptest::prelude::*;
use xiebao_protocol::testkit::{DealSpec, World};
use xiebao_protocol::{FinishedTasks, TaskStatus, apply};
use xiebao_types::tx::{
    Call, Claim, Initialize, JoinPool, LeavePool, PoolPolicy, Reopen, Transfer,
};
use xiebao_types::{Nrlc, U256};

#[derive(Clone, Debug)]
enum Op {
    Deal { volume: u64, trust: u64, pool_price: u64, dataset: bool },
    Initialize { deal: usize, idx: u64 },
    Contribute { worker: usize, task: usize, honest: bool },
    Reveal { worker: usize, task: usize, honest: bool },
    Finalize { task: usize },
    SingleTx { worker: usize, task: usize },
    Claim { task: usize },
    Reopen { task: usize },
    Transfer { worker: usize, amount: u64 },
    Leave { worker: usize },
    Join { worker: usize, amount: u64 },
    Advance { seconds: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (
            1..6u64,
            prop_oneof![Just(0u64), Just(1), Just(3), Just(5)],
            0..5_000_000_000u64,
            any::<bool>()
        )
            .prop_map(|(volume, trust, pool_price, dataset)| Op::Deal {
                volume,
                trust,
                pool_price,
                dataset
            }),
        (0..4usize, 0..7u64).prop_map(|(deal, idx)| Op::Initialize { deal, idx }),
        (0..4usize, 0..8usize, prop::bool::weighted(0.8))
            .prop_map(|(worker, task, honest)| Op::Contribute { worker, task, honest }),
        (0..4usize, 0..8usize, prop::bool::weighted(0.9))
            .prop_map(|(worker, task, honest)| Op::Reveal { worker, task, honest }),
        (0..8usize).prop_map(|task| Op::Finalize { task }),
        (0..4usize, 0..8usize).prop_map(|(worker, task)| Op::SingleTx { worker, task }),
        (0..8usize).prop_map(|task| Op::Claim { task }),
        (0..8usize).prop_map(|task| Op::Reopen { task }),
        (0..4usize, 0..2_000_000_000_000u64)
            .prop_map(|(worker, amount)| Op::Transfer { worker, amount }),
        (0..4usize).prop_map(|worker| Op::Leave { worker }),
        (0..4usize, 0..20_000_000_000u64).prop_map(|(worker, amount)| Op::Join { worker, amount }),
        prop_oneof![Just(1u64), Just(300), Just(700), Just(3000)]
            .prop_map(|seconds| Op::Advance { seconds }),
    ]
}

fn digest_of(task: &B256, honest: bool) -> B256 {
    if honest { B256::repeat_byte(0x60) } else { alloy_primitives::keccak256(task) }
}

/// Runs `ops`, checking after each that invariants hold and that rejected transactions
/// changed nothing; returns the final state digest and each operation's outcome.
fn run(ops: &[Op], finished_tasks: FinishedTasks) -> (B256, Vec<String>) {
    let policy = PoolPolicy { unbonding_delay_s: 500, ..PoolPolicy::default() };
    let mut w = World::new(4, Nrlc::rlc(1_000), policy, Nrlc::rlc(20));
    w.state.set_finished_tasks(finished_tasks);
    let keep = finished_tasks == FinishedTasks::Keep;
    let mut outcomes = Vec::new();
    let mut deals: Vec<B256> = Vec::new();
    let mut tasks: Vec<B256> = Vec::new();
    // Time of the last block whose end was processed (timers fire at the end of a block).
    let mut ended_at = 0;
    // A store fed only with the change sets, as a node persists them.
    let mut store: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = std::collections::BTreeMap::new();
    for op in ops {
        let before = w.state.digest();
        let pick = |list: &Vec<B256>, i: usize| list.get(i % list.len().max(1)).copied();
        let result = match op.clone() {
            Op::Deal { volume, trust, pool_price, dataset } => {
                let spec = DealSpec {
                    volume,
                    trust,
                    pool_price: Nrlc(u128::from(pool_price)),
                    dataset_price: dataset.then_some(Nrlc(7)),
                    ..DealSpec::default()
                };
                w.deal(&spec).map(|deal| {
                    deals.push(deal);
                    Vec::new()
                })
            }
            Op::Initialize { deal, idx } => match pick(&deals, deal) {
                None => continue,
                Some(deal) => {
                    let first = w.state.deals()[&deal].bot_first;
                    let owner = w.actors.pool_owner.clone();
                    let call = Initialize { deal_id: deal, idx: first + U256::from(idx) };
                    let result = w.send(&owner, vec![call.into()]);
                    if result.is_ok() {
                        tasks.push(w.task_id(&deal, idx));
                    }
                    result
                }
            },
            Op::Contribute { worker, task, honest } => match pick(&tasks, task) {
                None => continue,
                Some(task) => w.contribute(worker, &task, &digest_of(&task, honest)),
            },
            Op::Reveal { worker, task, honest } => match pick(&tasks, task) {
                None => continue,
                Some(task) => w.reveal(worker, &task, &digest_of(&task, honest)),
            },
            Op::Finalize { task } => match pick(&tasks, task) {
                None => continue,
                Some(task) => w.finalize(&task),
            },
            Op::SingleTx { worker, task } => match pick(&tasks, task) {
                None => continue,
                Some(task) => {
                    let call =
                        w.contribute_and_finalize_call(worker, &task, &digest_of(&task, true));
                    let key = w.actors.workers[worker].clone();
                    w.send(&key, vec![call])
                }
            },
            Op::Claim { task } => match pick(&tasks, task) {
                None => continue,
                Some(task) => {
                    let key = w.actors.requester.clone();
                    w.send(&key, vec![Claim { task_id: task }.into()])
                }
            },
            Op::Reopen { task } => match pick(&tasks, task) {
                None => continue,
                Some(task) => {
                    let key = w.actors.pool_owner.clone();
                    w.send(&key, vec![Reopen { task_id: task }.into()])
                }
            },
            Op::Transfer { worker, amount } => {
                let key = w.actors.workers[worker].clone();
                let to = w.actors.requester.address();
                w.send(&key, vec![Transfer { to, amount: Nrlc(u128::from(amount)) }.into()])
            }
            Op::Leave { worker } => {
                let key = w.actors.workers[worker].clone();
                let pool = w.pool;
                w.send(&key, vec![LeavePool { workerpool: pool }.into()])
            }
            Op::Join { worker, amount } => {
                let key = w.actors.workers[worker].clone();
                let pool = w.pool;
                let calls: Vec<Call> =
                    vec![JoinPool { workerpool: pool, stake: Nrlc(u128::from(amount)) }.into()];
                w.send(&key, calls)
            }
            Op::Advance { seconds } => {
                ended_at = w.block.timestamp;
                w.advance(seconds);
                Ok(Vec::new())
            }
        };
        if result.is_err() {
            assert_eq!(w.state.digest(), before, "rejected {op:?} changed the state: {result:?}");
        }
        outcomes.push(match &result {
            Ok(events) => format!("ok: {events:?}"),
            Err(error) => format!("error: {error}"),
        });
        // The incremental root always equals the root recomputed from every entry (in
        // memory, so when no finished task left it).
        if keep {
            assert_eq!(w.state.digest(), w.state.full_digest(), "after {op:?}");
        }
        // The derived open-task index follows the tasks, rollbacks included.
        assert_eq!(w.state.open_tasks(), &open_tasks_of(&w.state), "after {op:?}");
        persist(&mut store, &mut w);
        if let Err(broken) = w.state.check_invariants() {
            panic!("after {op:?}: {broken}");
        }
        // Frozen balances always cover what the deals still owe.
        for deal in w.state.deals().values() {
            let open = deal.bot_size - deal.completed - deal.failed;
            if open > 0 {
                let owed = deal.task_price().unwrap().checked_mul(u128::from(open)).unwrap();
                assert!(
                    w.frozen(deal.requester) >= owed,
                    "requester escrow below what open tasks owe"
                );
            }
        }
        for task in w.state.tasks().values() {
            if matches!(task.status, TaskStatus::Active | TaskStatus::Revealing) {
                assert!(ended_at < task.final_deadline, "an expired task is still open");
            }
        }
    }
    // Bring every deal to its end: everything escrowed is released.
    for _ in 0..40 {
        w.advance(1_000);
    }
    assert!(w.state.deals().values().all(|d| d.expired || d.completed + d.failed == d.bot_size));
    let requester = w.actors.requester.address();
    assert_eq!(w.frozen(requester), Nrlc::ZERO, "requester funds stuck after every deadline");
    assert!(w.state.check_invariants().is_ok());
    persist(&mut store, &mut w);
    let reloaded = xiebao_protocol::State::load(store.clone(), FinishedTasks::Keep)
        .expect("the store decodes");
    assert_eq!(reloaded.digest(), w.state.digest(), "state rebuilt from its change sets differs");
    assert_eq!(reloaded.full_digest(), reloaded.digest(), "the stored lattice matches the entries");
    assert_eq!(reloaded.open_tasks(), w.state.open_tasks(), "the open-task index is rebuilt");
    // Loaded with finished tasks evicted: the same root, statuses and open tasks, and only
    // open tasks' records in memory.
    let evicted = xiebao_protocol::State::load(store, FinishedTasks::Evict).expect("decodes");
    assert_eq!(evicted.digest(), w.state.digest());
    assert_eq!(evicted.open_tasks(), w.state.open_tasks());
    assert_eq!(evicted.task_count(), reloaded.tasks().len());
    for (id, task) in reloaded.tasks() {
        assert_eq!(evicted.task_status(id), Some(task.status));
        assert_eq!(evicted.is_evicted(id), !task.status.is_open());
    }
    if !keep {
        assert!(
            w.state.tasks().values().all(|task| task.status.is_open()),
            "a finished task stayed"
        );
    }
    (w.state.digest(), outcomes)
}

/// The open-task index recomputed from the tasks.
fn open_tasks_of(state: &xiebao_protocol::State) -> std::collections::BTreeSet<(B256, B256)> {
    state
        .tasks()
        .iter()
        .filter(|(_, task)| task.status.is_open())
        .map(|(id, task)| (task.deal_id, *id))
        .collect()
}

fn persist(store: &mut std::collections::BTreeMap<Vec<u8>, Vec<u8>>, w: &mut World) {
    for change in w.state.take_changes() {
        match change.value {
            Some(value) => store.insert(change.key, value),
            None => store.remove(&change.key),
        };
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn money_is_conserved_and_replays_are_deterministic(ops in prop::collection::vec(op(), 1..60)) {
        let first = run(&ops, FinishedTasks::Keep);
        let second = run(&ops, FinishedTasks::Keep);
        prop_assert_eq!(&first, &second);
        // A node that evicts finished tasks reaches the same states, accepting and refusing
        // the same calls with the same errors.
        let evicting = run(&ops, FinishedTasks::Evict);
        prop_assert_eq!(&first, &evicting);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = xiebao_types::SignedTransaction::decode(&bytes);
    }
}

#[test]
fn verified_transactions_replay_to_the_same_state_on_another_node() {
    // Two "nodes" apply the same verified transactions and end the same blocks.
    let mut a = World::new(2, Nrlc::rlc(100), PoolPolicy::default(), Nrlc::rlc(5));
    let mut b = a.clone();
    let mut orders_world = a.clone();
    let orders = orders_world.orders(&DealSpec { volume: 3, ..DealSpec::default() });
    let tx = a.sign(&a.actors.requester.clone(), vec![orders.into()]);
    let block = a.block;
    apply(&mut a.state, &tx, &block).unwrap();
    apply(&mut b.state, &tx, &block).unwrap();
    a.advance(5);
    b.advance(5);
    assert_eq!(a.state.digest(), b.state.digest());
}

/// Valid encoded transactions of several kinds, and the world they apply to.
fn corpus() -> (World, Vec<Vec<u8>>) {
    let mut w = World::new(2, Nrlc::rlc(1_000), PoolPolicy::default(), Nrlc::rlc(20));
    let deal = w.deal(&DealSpec { volume: 3, trust: 3, ..DealSpec::default() }).unwrap();
    let task = w.initialize(&deal, [0]).unwrap()[0];
    let mut txs = Vec::new();
    let orders =
        w.orders(&DealSpec { volume: 2, dataset_price: Some(Nrlc(5)), ..DealSpec::default() });
    let requester = w.actors.requester.clone();
    let owner = w.actors.pool_owner.clone();
    let worker = w.actors.workers[0].clone();
    let first = w.state.deals()[&deal].bot_first;
    let txs_calls: Vec<(xiebao_types::SecretKey, Vec<Call>)> = vec![
        (requester.clone(), vec![orders.into()]),
        (owner.clone(), vec![Initialize { deal_id: deal, idx: first + U256::from(1) }.into()]),
        (worker.clone(), vec![w.contribute_call(0, &task, &B256::repeat_byte(0x60))]),
        (worker, vec![w.contribute_and_finalize_call(0, &task, &B256::repeat_byte(0x60))]),
        (requester, vec![Transfer { to: owner.address(), amount: Nrlc(17) }.into()]),
    ];
    for (key, calls) in txs_calls {
        let nonce = w.state.account(&key.address()).nonce;
        let signed = xiebao_types::Transaction {
            chain_id: xiebao_protocol::testkit::CHAIN_ID,
            nonce,
            calls,
        }
        .sign(&key);
        txs.push(signed.encode_to_vec());
    }
    (w, txs)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Corrupted transactions are rejected by the decoder, the signature check or `apply`,
    /// never by a panic, and a rejection changes nothing.
    #[test]
    fn corrupted_transactions_never_panic_and_change_nothing(
        which in 0..5usize,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let (mut w, txs) = corpus();
        let mut bytes = txs[which].clone();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let Ok(signed) = xiebao_types::SignedTransaction::decode(&bytes) else { return Ok(()) };
        let Ok(tx) = xiebao_protocol::VerifiedTx::new(signed, &w.domain) else { return Ok(()) };
        let before = w.state.digest();
        let block = w.block;
        if apply(&mut w.state, &tx, &block).is_err() {
            prop_assert_eq!(w.state.digest(), before);
        }
        prop_assert!(w.state.check_invariants().is_ok());
    }
}

/// A block executed and rolled back (a proposal not kept) leaves the root, folded lattice
/// included, exactly as it was; a committed one moves it to what a full recomputation gives.
#[test]
fn a_rolled_back_block_leaves_the_root_as_it_was() {
    let mut w = World::new(2, Nrlc::rlc(100), PoolPolicy::default(), Nrlc::rlc(1));
    let before = w.state.digest();
    let key = w.actors.workers[0].clone();
    let to = w.actors.requester.address();
    for keep in [false, true] {
        w.state.begin_block();
        w.send(&key, vec![Transfer { to, amount: Nrlc(7) }.into()]).expect("transfer");
        let during = w.state.fold_digest();
        assert_ne!(during, before);
        assert_eq!(during, w.state.full_digest());
        if keep {
            w.state.commit_block();
            assert_eq!(w.state.digest(), during);
        } else {
            w.state.rollback_block();
            assert_eq!(w.state.digest(), before);
            assert_eq!(w.state.full_digest(), before);
        }
    }
}

/// A block writing thousands of entries folds to the root recomputed from every entry, and so
/// does a second one updating and removing them; both change sets rebuild the same state.
#[test]
fn a_large_block_folds_to_the_recomputed_root() {
    let mut w = World::new(1, Nrlc::rlc(1_000_000), PoolPolicy::default(), Nrlc::rlc(1_000));
    let volume = 1_200;
    let deal = w.deal(&DealSpec { volume, ..DealSpec::default() }).expect("deal");
    let first = w.state.deals()[&deal].bot_first;
    let owner = w.actors.pool_owner.clone();
    let calls = (0..volume)
        .map(|i| xiebao_types::tx::Initialize { deal_id: deal, idx: first + U256::from(i) }.into())
        .collect();
    w.send(&owner, calls).expect("initialize");
    assert_eq!(w.state.digest(), w.state.full_digest(), "after the initialization");
    assert_eq!(w.state.fold_digest(), w.state.full_digest());
    let calls = (0..volume)
        .map(|i| {
            let task = w.task_id(&deal, i);
            w.contribute_and_finalize_call(0, &task, &B256::repeat_byte(0x60))
        })
        .collect();
    let worker = w.actors.workers[0].clone();
    let mut store = std::collections::BTreeMap::new();
    persist(&mut store, &mut w);
    w.send(&worker, calls).expect("settle");
    assert_eq!(w.state.digest(), w.state.full_digest(), "after the settlement");
    assert_eq!(w.state.fold_digest(), w.state.full_digest());
    persist(&mut store, &mut w);
    let reloaded =
        xiebao_protocol::State::load(store, FinishedTasks::Keep).expect("the store decodes");
    assert_eq!(reloaded.full_digest(), w.state.digest(), "the change sets rebuild the state");
}

/// A store from another version (here: an entry of the open-task index, table 11, which
/// is derived now) is refused with the table named and what to do, in both modes.
#[test]
fn a_store_from_another_version_is_refused_naming_the_table() {
    let mut w = World::new(1, Nrlc::rlc(100), PoolPolicy::default(), Nrlc::rlc(1));
    let mut store: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = std::collections::BTreeMap::new();
    persist(&mut store, &mut w);
    let mut old = vec![11u8];
    old.extend_from_slice(&[0x22; 64]);
    store.insert(old, Vec::new());
    for mode in [FinishedTasks::Keep, FinishedTasks::Evict] {
        let error = xiebao_protocol::State::load(store.clone(), mode).expect_err("refused");
        assert!(error.contains("table 11") && error.contains("another version"), "{error}");
    }
}
