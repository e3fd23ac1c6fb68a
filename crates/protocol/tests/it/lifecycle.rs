//! Task lifecycles with exact nRLC figures, computed by hand from the reference formulas.

use alloy_primitives::B256;
use xiebao_protocol::testkit::{DealSpec, World};
use xiebao_protocol::{ContributionStatus, ProtocolError, TaskStatus};
use xiebao_types::Nrlc;
use xiebao_types::tx::PoolPolicy;

use crate::{check_invariants, rejected};

const BALANCE: Nrlc = Nrlc(1_000_000_000_000); // 1000 RLC

fn world(workers: usize) -> World {
    World::new(workers, BALANCE, PoolPolicy::default(), Nrlc::rlc(10))
}

fn good() -> B256 {
    B256::repeat_byte(0x60)
}

fn bad() -> B256 {
    B256::repeat_byte(0xba)
}

#[test]
fn trust_1_single_call_pays_app_worker_and_scheduler_exactly() {
    let mut w = world(1);
    let deal = w.deal(&DealSpec::default()).unwrap();
    let requester = w.actors.requester.address();
    let pool_owner = w.actors.pool_owner.address();
    // Locked at match: requester 5 RLC, pool owner 30 % of 4 RLC.
    assert_eq!(w.frozen(requester), Nrlc::rlc(5));
    assert_eq!(w.frozen(pool_owner), Nrlc(1_200_000_000));
    let task = w.initialize(&deal, [0]).unwrap()[0];
    let worker = w.actors.workers[0].clone();
    let call = w.contribute_and_finalize_call(0, &task, &good());
    w.send(&worker, vec![call]).unwrap();
    check_invariants(&w);
    let t = &w.state.tasks()[&task];
    assert_eq!(t.status, TaskStatus::Completed);
    assert_eq!(t.result_digest, good());
    assert_eq!(w.free(requester), Nrlc(BALANCE.0 - 5_000_000_000));
    assert_eq!(w.frozen(requester), Nrlc::ZERO);
    assert_eq!(w.free(w.actors.app_owner.address()), Nrlc(BALANCE.0 + 1_000_000_000));
    // Worker: floor(4 RLC × 99 / 100) = 3.96 RLC; its bond is untouched.
    assert_eq!(w.free(worker.address()), Nrlc(BALANCE.0 - 10_000_000_000 + 3_960_000_000));
    assert_eq!(w.frozen(worker.address()), Nrlc::rlc(10));
    // Scheduler: its stake back plus 0.04 RLC.
    assert_eq!(w.free(pool_owner), Nrlc(BALANCE.0 + 40_000_000));
    assert_eq!(w.frozen(pool_owner), Nrlc::ZERO);
    // No score change on the single-call path.
    assert_eq!(w.state.score(&worker.address()), 0);
    assert_eq!(w.state.deals()[&deal].completed, 1);
}

#[test]
fn trust_1_classic_flow_returns_the_stake_and_changes_no_score() {
    let mut w = world(1);
    let deal = w.deal(&DealSpec::default()).unwrap();
    let task = w.initialize(&deal, [0]).unwrap()[0];
    let worker = w.actors.workers[0].address();
    let events = w.contribute(0, &task, &good()).unwrap();
    assert!(events.iter().any(|e| matches!(e, xiebao_protocol::Event::TaskConsensus { .. })));
    // 1.2 RLC of the 10 RLC bond is now locked in the contribution.
    assert_eq!(w.state.memberships()[&worker].bonded, Nrlc(8_800_000_000));
    w.reveal(0, &task, &good()).unwrap();
    w.finalize(&task).unwrap();
    check_invariants(&w);
    assert_eq!(w.state.memberships()[&worker].bonded, Nrlc::rlc(10));
    assert_eq!(w.free(worker), Nrlc(BALANCE.0 - 10_000_000_000 + 3_960_000_000));
    assert_eq!(w.state.score(&worker), 0);
}

/// Reference §14: trust 3, four fresh workers, one wrong: consensus needs all four
/// contributions; losers' stakes mostly go to the winners.
#[test]
fn trust_3_slashes_the_wrong_worker_and_pays_winners_by_log2_weight() {
    let mut w = world(4);
    let deal = w.deal(&DealSpec { trust: 3, ..DealSpec::default() }).unwrap();
    let task = w.initialize(&deal, [0]).unwrap()[0];
    w.contribute(0, &task, &bad()).unwrap();
    w.contribute(1, &task, &good()).unwrap();
    w.contribute(2, &task, &good()).unwrap();
    assert_eq!(w.state.tasks()[&task].status, TaskStatus::Active, "no consensus at 2 of 3");
    w.contribute(3, &task, &good()).unwrap();
    assert_eq!(w.state.tasks()[&task].status, TaskStatus::Revealing);
    assert_eq!(w.state.tasks()[&task].winner_counter, 3);
    // The wrong worker cannot reveal.
    let error = rejected(&mut w, |w| w.reveal(0, &task, &bad()));
    assert!(matches!(error, ProtocolError::CannotReveal { .. }), "{error}");
    // Finalizing before all winners revealed (and before the deadline) is refused.
    w.reveal(1, &task, &good()).unwrap();
    let error = rejected(&mut w, |w| w.finalize(&task));
    assert!(matches!(error, ProtocolError::RevealsIncomplete { reveals: 1, winners: 3, .. }));
    w.reveal(2, &task, &good()).unwrap();
    w.reveal(3, &task, &good()).unwrap();
    let pool_owner = w.actors.pool_owner.address();
    let scheduler_before = w.free(pool_owner);
    w.finalize(&task).unwrap();
    check_invariants(&w);
    // totalReward = 4 + 1.2 = 5.2 RLC; workersReward = floor(5.2 × 99 / 100) = 5.148 RLC;
    // three winners of log2 weight 1 get 1.716 RLC each; the scheduler keeps 0.052 RLC.
    for i in 1..4 {
        let worker = w.actors.workers[i].address();
        assert_eq!(w.free(worker), Nrlc(BALANCE.0 - 10_000_000_000 + 1_716_000_000));
        assert_eq!(w.state.memberships()[&worker].bonded, Nrlc::rlc(10));
        assert_eq!(w.state.score(&worker), 1, "replicated winners gain a point");
    }
    let loser = w.actors.workers[0].address();
    assert_eq!(w.state.memberships()[&loser].bonded, Nrlc(8_800_000_000), "1.2 RLC slashed");
    assert_eq!(w.frozen(loser), Nrlc(8_800_000_000));
    assert_eq!(w.state.score(&loser), 0);
    // Scheduler: its 1.2 RLC stake back + 0.052 RLC.
    assert_eq!(w.free(pool_owner), Nrlc(scheduler_before.0 + 1_200_000_000 + 52_000_000));
}

/// PoCo's `distributeRewards` emits, for each contribution in contribution order, a winner's
/// `Reward` then `AccurateContribution`, a loser's `Seize` then `FaultyContribution`, and the
/// scheduler's `Reward` last; indexers built for iExec read them in that order.
#[test]
fn finalize_emits_rewards_and_seizes_in_contribution_order_as_poco_does() {
    use xiebao_protocol::{EscrowRef, Event};
    let mut w = world(4);
    let deal = w.deal(&DealSpec { trust: 3, ..DealSpec::default() }).unwrap();
    let task = w.initialize(&deal, [0]).unwrap()[0];
    // The loser contributes second: between the winners.
    w.contribute(1, &task, &good()).unwrap();
    w.contribute(0, &task, &bad()).unwrap();
    w.contribute(2, &task, &good()).unwrap();
    w.contribute(3, &task, &good()).unwrap();
    for i in 1..4 {
        w.reveal(i, &task, &good()).unwrap();
    }
    let events = w.finalize(&task).unwrap();
    let address = |i: usize| w.actors.workers[i].address();
    let order: Vec<(&str, xiebao_types::Address)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Reward { owner, reference: EscrowRef::Task(_), .. } => Some(("reward", *owner)),
            Event::Seize { owner, reference: EscrowRef::Task(_), .. }
                if *owner != deal_requester(&w, &task) =>
            {
                Some(("seize", *owner))
            }
            Event::AccurateContribution { worker, .. } => Some(("accurate", *worker)),
            Event::FaultyContribution { worker, .. } => Some(("faulty", *worker)),
            _ => None,
        })
        .filter(|(_, who)| *who != w.actors.app_owner.address())
        .collect();
    let pool_owner = w.actors.pool_owner.address();
    assert_eq!(
        order,
        vec![
            ("reward", address(1)),
            ("accurate", address(1)),
            ("seize", address(0)),
            ("faulty", address(0)),
            ("reward", address(2)),
            ("accurate", address(2)),
            ("reward", address(3)),
            ("accurate", address(3)),
            ("reward", pool_owner),
        ]
    );
    check_invariants(&w);
}

fn deal_requester(w: &World, task: &B256) -> xiebao_types::Address {
    let deal = &w.state.tasks()[task].deal_id;
    w.state.deals()[deal].requester
}

/// Reference §4.5's worked example: ρ = 5 %, S = 7, P_pool = 20, P_data = 1, three
/// workers, one loser: winners of log2 weights 5 and 6 split 25.65 RLC.
#[test]
fn doc_example_split_is_exact_to_the_nrlc() {
    let policy =
        PoolPolicy { worker_stake_ratio: 35, scheduler_reward_ratio: 5, ..PoolPolicy::default() };
    // Scores 100 → weight 32 (log2 5), 200 → weight 65 (log2 6), 0 → weight 2.
    let mut w = World::with_scores(3, BALANCE, policy, Nrlc::rlc(10), &[100, 200, 0]);
    let spec = DealSpec {
        trust: 100,
        dataset_price: Some(Nrlc::rlc(1)),
        pool_price: Nrlc::rlc(20),
        ..DealSpec::default()
    };
    let deal = w.deal(&spec).unwrap();
    assert_eq!(w.state.deals()[&deal].worker_stake, Nrlc::rlc(7));
    let task = w.initialize(&deal, [0]).unwrap()[0];
    w.contribute(2, &task, &bad()).unwrap();
    w.contribute(0, &task, &good()).unwrap();
    assert_eq!(w.state.tasks()[&task].status, TaskStatus::Active);
    w.contribute(1, &task, &good()).unwrap();
    assert_eq!(w.state.tasks()[&task].status, TaskStatus::Revealing);
    w.reveal(0, &task, &good()).unwrap();
    w.reveal(1, &task, &good()).unwrap();
    let pool_owner = w.actors.pool_owner.address();
    let dataset_owner = w.actors.dataset_owner.address();
    let scheduler_before = w.free(pool_owner);
    w.finalize(&task).unwrap();
    check_invariants(&w);
    let a = w.actors.workers[0].address();
    let b = w.actors.workers[1].address();
    assert_eq!(w.free(a), Nrlc(BALANCE.0 - 10_000_000_000 + 11_659_090_909));
    assert_eq!(w.free(b), Nrlc(BALANCE.0 - 10_000_000_000 + 13_990_909_090));
    // Scheduler: 6 RLC pool stake back + 1.350000001 RLC.
    assert_eq!(w.free(pool_owner), Nrlc(scheduler_before.0 + 6_000_000_000 + 1_350_000_001));
    assert_eq!(w.free(dataset_owner), Nrlc(BALANCE.0 + 1_000_000_000));
    assert_eq!(w.state.score(&a), 101);
    assert_eq!(w.state.score(&b), 201);
    assert_eq!(w.state.score(&w.actors.workers[2].address()), 0);
}

/// Reference §14: with trust 5 and four fresh workers of which one is wrong, consensus is
/// never reached; at the final deadline the chain itself fails the task and refunds.
#[test]
fn trust_5_without_consensus_expires_refunds_and_fills_the_kitty() {
    let mut w = world(4);
    let deal = w.deal(&DealSpec { trust: 5, volume: 3, ..DealSpec::default() }).unwrap();
    let task = w.initialize(&deal, [0]).unwrap()[0];
    w.contribute(0, &task, &bad()).unwrap();
    for i in 1..4 {
        w.contribute(i, &task, &good()).unwrap();
    }
    assert_eq!(w.state.tasks()[&task].status, TaskStatus::Active);
    let requester = w.actors.requester.address();
    // Claim is refused before the final deadline (XS: 10 × 300 s).
    w.advance(2_999);
    let error = rejected(&mut w, |w| {
        let requester = w.actors.requester.clone();
        w.send(&requester, vec![xiebao_types::tx::Claim { task_id: task }.into()])
    });
    assert!(matches!(error, ProtocolError::DeadlineNotReached { .. }), "{error}");
    w.advance(1);
    let events = w.advance(1);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, xiebao_protocol::Event::DealExpired { uninitialized: 2, .. }))
    );
    check_invariants(&w);
    assert_eq!(w.state.tasks()[&task].status, TaskStatus::Failed);
    assert!(w.state.deals()[&deal].expired);
    assert_eq!(w.free(requester), BALANCE, "all three tasks refunded");
    assert_eq!(w.frozen(requester), Nrlc::ZERO);
    for i in 0..4 {
        let worker = w.actors.workers[i].address();
        assert_eq!(w.state.memberships()[&worker].bonded, Nrlc::rlc(10), "no one is slashed");
        assert_eq!(w.state.score(&worker), 0);
    }
    let kitty = xiebao_types::ids::kitty_address();
    assert_eq!(w.frozen(kitty), Nrlc(3 * 1_200_000_000));
    // Initializing a task of an expired deal is refused.
    let error = rejected(&mut w, |w| w.initialize(&deal, [1]).map(|_| Vec::new()));
    assert!(matches!(error, ProtocolError::DealExpired { .. }), "{error}");
    // The next successful task pays the scheduler min(max(10 % of 3.6, 1), 3.6) = 1 RLC.
    let deal = w.deal(&DealSpec::default()).unwrap();
    let task = w.initialize(&deal, [0]).unwrap()[0];
    let pool_owner = w.actors.pool_owner.address();
    let before = w.free(pool_owner);
    let worker = w.actors.workers[1].clone();
    let call = w.contribute_and_finalize_call(1, &task, &good());
    w.send(&worker, vec![call]).unwrap();
    assert_eq!(w.frozen(kitty), Nrlc(2_600_000_000));
    assert_eq!(w.free(pool_owner), Nrlc(before.0 + 1_200_000_000 + 40_000_000 + 1_000_000_000));
    check_invariants(&w);
}

#[test]
fn trust_5_with_three_fresh_workers_closes_contributions_at_consensus() {
    let mut w = world(4);
    let deal = w.deal(&DealSpec { trust: 5, ..DealSpec::default() }).unwrap();
    let task = w.initialize(&deal, [0]).unwrap()[0];
    for i in 0..3 {
        w.contribute(i, &task, &good()).unwrap();
    }
    assert_eq!(w.state.tasks()[&task].status, TaskStatus::Revealing);
    let error = rejected(&mut w, |w| w.contribute(3, &task, &good()));
    assert!(matches!(error, ProtocolError::WrongTaskStatus { status: TaskStatus::Revealing, .. }));
}

#[test]
fn reopen_after_silent_winners_rejects_them_and_lets_others_reach_consensus() {
    let mut w = world(3);
    let deal = w.deal(&DealSpec { trust: 3, ..DealSpec::default() }).unwrap();
    let task = w.initialize(&deal, [0]).unwrap()[0];
    w.contribute(0, &task, &good()).unwrap();
    w.contribute(1, &task, &good()).unwrap();
    assert_eq!(w.state.tasks()[&task].status, TaskStatus::Revealing);
    let owner = w.actors.pool_owner.clone();
    let reopen = || vec![xiebao_types::tx::Reopen { task_id: task }.into()];
    let error = rejected(&mut w, |w| w.send(&owner, reopen()));
    assert!(matches!(error, ProtocolError::DeadlineNotReached { which: "reveal", .. }), "{error}");
    w.advance(600); // 2 × T
    w.send(&owner, reopen()).unwrap();
    let t = &w.state.tasks()[&task];
    assert_eq!(t.status, TaskStatus::Active);
    assert!(t.contributions.iter().all(|c| c.status == ContributionStatus::Rejected));
    // A third worker alone cannot reach trust 3; rejected workers stay out.
    w.contribute(2, &task, &B256::repeat_byte(0x77)).unwrap();
    assert_eq!(w.state.tasks()[&task].status, TaskStatus::Active);
    let error = rejected(&mut w, |w| w.contribute(0, &task, &good()));
    assert!(matches!(error, ProtocolError::AlreadyContributed { .. }));
}

#[test]
fn contribution_at_the_deadline_is_rejected_one_second_before_is_accepted() {
    let mut w = world(2);
    let deal = w.deal(&DealSpec { trust: 3, ..DealSpec::default() }).unwrap();
    let task = w.initialize(&deal, [0]).unwrap()[0];
    let deadline = w.state.tasks()[&task].contribution_deadline;
    w.advance(deadline - w.block.timestamp - 1);
    w.contribute(0, &task, &good()).unwrap();
    w.advance(1);
    let error = rejected(&mut w, |w| w.contribute(1, &task, &good()));
    assert_eq!(
        error,
        ProtocolError::DeadlinePassed {
            task,
            which: "contribution",
            action: "contribution",
            deadline,
            now: deadline
        }
    );
}

#[test]
fn batch_of_calls_is_atomic() {
    let mut w = world(1);
    let deal = w.deal(&DealSpec { volume: 4, ..DealSpec::default() }).unwrap();
    // Four initializations in one transaction.
    let tasks = w.initialize(&deal, 0..4).unwrap();
    assert_eq!(w.state.deals()[&deal].initialized, 4);
    // One worker settles all four in one transaction.
    let worker = w.actors.workers[0].clone();
    let mut calls: Vec<_> =
        tasks.iter().map(|t| w.contribute_and_finalize_call(0, t, &good())).collect();
    // ...but a bad last call rejects the whole batch.
    calls.push(w.contribute_and_finalize_call(0, &tasks[0], &good()));
    let error = w.send(&worker, calls.clone()).unwrap_err();
    assert!(matches!(error, ProtocolError::Call { index: 4, .. }), "{error}");
    assert_eq!(w.state.deals()[&deal].completed, 0);
    calls.pop();
    w.send(&worker, calls).unwrap();
    assert_eq!(w.state.deals()[&deal].completed, 4);
    check_invariants(&w);
}

#[test]
fn only_members_with_enough_stake_contribute_and_leaving_releases_the_bond() {
    let policy = PoolPolicy {
        min_worker_stake: Nrlc::rlc(5),
        unbonding_delay_s: 100,
        ..PoolPolicy::default()
    };
    let mut w = World::new(2, BALANCE, policy, Nrlc::rlc(5));
    let deal = w.deal(&DealSpec { trust: 3, volume: 2, ..DealSpec::default() }).unwrap();
    let tasks = w.initialize(&deal, [0, 1]).unwrap();
    let worker = w.actors.workers[1].clone();
    let pool = w.pool;
    w.send(&worker, vec![xiebao_types::tx::LeavePool { workerpool: pool }.into()]).unwrap();
    let error = rejected(&mut w, |w| w.contribute(1, &tasks[0], &good()));
    assert!(matches!(error, ProtocolError::NotMember { .. }), "{error}");
    w.advance(99);
    w.advance(1);
    assert_eq!(w.frozen(worker.address()), Nrlc::rlc(5), "still bonded during the delay");
    let events = w.advance(1);
    assert!(events.iter().any(|e| matches!(e, xiebao_protocol::Event::StakeReleased { .. })));
    assert_eq!(w.frozen(worker.address()), Nrlc::ZERO);
    assert_eq!(w.free(worker.address()), BALANCE);
    assert!(w.state.memberships().get(&worker.address()).is_none());
    // A stake below the pool minimum is refused.
    let error = rejected(&mut w, |w| {
        w.send(
            &worker,
            vec![xiebao_types::tx::JoinPool { workerpool: pool, stake: Nrlc::rlc(4) }.into()],
        )
    });
    assert!(matches!(error, ProtocolError::StakeTooLow { .. }), "{error}");
    check_invariants(&w);
}

#[test]
fn only_the_pool_owner_authorizes_and_finalizes() {
    let mut w = world(2);
    let deal = w.deal(&DealSpec::default()).unwrap();
    let task = w.initialize(&deal, [0]).unwrap()[0];
    let worker = w.actors.workers[0].clone();
    // An authorization signed by another worker is refused.
    let forged = w.actors.workers[1].eth_sign(&xiebao_types::ids::authorization_hash(
        &worker.address(),
        &task,
        &alloy_primitives::Address::ZERO,
    ));
    let mut call = w.contribute_call(0, &task, &good());
    if let xiebao_types::Call::Contribute(c) = &mut call {
        c.authorization_sign = forged;
    }
    let error = rejected(&mut w, |w| w.send(&worker, vec![call]));
    assert!(matches!(error, ProtocolError::BadAuthorization { .. }), "{error}");
    w.contribute(0, &task, &good()).unwrap();
    w.reveal(0, &task, &good()).unwrap();
    let error = rejected(&mut w, |w| {
        let call = xiebao_types::tx::Finalize {
            task_id: task,
            results: Default::default(),
            results_callback: Default::default(),
        };
        w.send(&worker, vec![call.into()])
    });
    assert!(matches!(error, ProtocolError::NotPoolOwner { .. }), "{error}");
}

#[test]
fn assets_change_owner_only_by_their_owner() {
    use xiebao_types::tx::TransferAsset;
    let mut w = world(1);
    let (app, pool) = (w.app, w.pool);
    let new_owner = alloy_primitives::Address::repeat_byte(0x0e);
    let stranger = w.actors.requester.clone();
    let e = rejected(&mut w, |w| {
        w.send(&stranger, vec![TransferAsset { asset: app, to: new_owner }.into()])
    });
    assert!(matches!(e, ProtocolError::NotOwner { .. }), "{e}");
    let nowhere = alloy_primitives::Address::repeat_byte(0x99);
    let e = rejected(&mut w, |w| {
        w.send(&stranger, vec![TransferAsset { asset: nowhere, to: new_owner }.into()])
    });
    assert_eq!(e, ProtocolError::UnknownAsset { address: nowhere });
    let owner = w.actors.app_owner.clone();
    w.send(&owner, vec![TransferAsset { asset: app, to: new_owner }.into()]).unwrap();
    assert_eq!(w.state.apps()[&app].owner, new_owner);
    // Orders signed by the previous owner no longer match (0x21).
    let e = rejected(&mut w, |w| w.deal(&DealSpec::default()).map(|_| Vec::new()));
    assert!(matches!(e, ProtocolError::OrderNotSigned { code: "0x21", .. }), "{e}");
    assert_eq!(w.state.workerpools()[&pool].owner, w.actors.pool_owner.address());
}
