//! The board's scenarios: each drives a board through the entry points the service calls
//! (connect, chain events, reports, ticks) and checks the actions it asks for and the views
//! it shows.

use super::*;
use xiebao_protocol::{Deal, Resource as DealResource};
use xiebao_types::{Nrlc, Tag, ids};

use crate::api::{Finish, Progress, TaskState};

fn worker(i: u8) -> Address {
    Address::repeat_byte(i)
}

fn caps(slots: u32) -> Capabilities {
    Capabilities { slots, runtimes: vec!["WASM".into()], ..Capabilities::default() }
}

fn deal_info(trust: u64, bot_size: u64, tag: Tag) -> DealInfo {
    let resource = |b: u8| DealResource {
        pointer: Address::repeat_byte(b),
        owner: Address::repeat_byte(b + 1),
        price: Nrlc(10),
    };
    DealInfo {
        id: B256::repeat_byte(0xde),
        deal: Deal {
            app: resource(0xa0),
            dataset: DealResource::default(),
            workerpool: resource(0xb0),
            trust,
            category: 0,
            tag,
            requester: Address::repeat_byte(0xc0),
            beneficiary: Address::repeat_byte(0xc0),
            callback: Address::ZERO,
            params: "1 2 3".into(),
            start_time: 1_000,
            bot_first: U256::ZERO,
            bot_size,
            worker_stake: Nrlc(3),
            scheduler_reward_ratio: 1,
            request_hash: B256::ZERO,
            time_ref_s: 300,
            initialized: 0,
            completed: 0,
            failed: 0,
            expired: false,
        },
        app: Resource {
            address: Address::repeat_byte(0xa0),
            multiaddr: "http://app".into(),
            checksum: B256::ZERO,
        },
        app_type: AppType::Wasm,
        dataset: None,
    }
}

/// A board with one deal whose tasks are all initialized.
fn board(trust: u64, bot_size: u64, tag: Tag) -> (Board, Vec<B256>) {
    let mut board = Board::new(SecretKey::from_label("pool owner"), Address::repeat_byte(0xb0));
    let info = deal_info(trust, bot_size, tag);
    let actions = board.add_deal(info.clone(), &[]);
    assert_eq!(actions.len() as u64, bot_size, "one initialize per task");
    let tasks: Vec<B256> = (0..bot_size).map(|i| ids::task_id(&info.id, U256::from(i))).collect();
    for task in &tasks {
        board.initialized(task, 0);
    }
    (board, tasks)
}

fn runs(actions: &[Action]) -> Vec<(Address, B256)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Push { worker, work: Work::Run(assignment) } => {
                Some((*worker, assignment.task))
            }
            _ => None,
        })
        .collect()
}

/// `worker` reports `link` as uploaded: the board asks for it to be checked (and
/// finalizes nothing yet); the check passes. Returns what the board does then.
fn upload_checked(
    board: &mut Board,
    worker: Address,
    task: &B256,
    link: &str,
    now_ms: u64,
    chain_time: Timestamp,
) -> Vec<Action> {
    let reported = board.report(worker, task, Progress::Uploaded { link: link.into() }, now_ms);
    assert!(
        reported.iter().any(|a| matches!(
            a,
            Action::CheckResult { task: t, worker: w, link: l, .. }
                if t == task && *w == worker && l == link
        )),
        "the link is checked first: {reported:?}"
    );
    assert!(!reported.iter().any(|a| matches!(a, Action::Finalize { .. })), "{reported:?}");
    board.result_checked(task, worker, link, Ok(()), now_ms, chain_time)
}

/// A trust-3 task in reveal: workers 1–3 contributed the agreed result `0x11` (and
/// revealed), worker 4 a lie, worker 5 (a pool member) never worked on it. Returns the
/// task and the designated uploader.
fn trust_3_in_reveal(board: &mut Board, task: B256) -> Address {
    for i in 1..=5 {
        board.connect(worker(i), B256::repeat_byte(i), caps(1), 0, 0);
    }
    let honest = B256::repeat_byte(0x11);
    for i in 1..=3 {
        board.contributed(&task, worker(i), honest, 10);
    }
    board.contributed(&task, worker(4), B256::repeat_byte(0x66), 10);
    let actions = board.consensus(&task, honest, 2_000, 20);
    let uploader = actions
        .iter()
        .find_map(|a| match a {
            Action::Push { worker, work: Work::Upload { .. } } => Some(*worker),
            _ => None,
        })
        .expect("one winner is asked to upload");
    for i in 1..=3 {
        board.revealed(&task, worker(i), 1_000);
    }
    uploader
}

#[test]
fn a_result_link_from_anyone_but_the_designated_uploader_is_ignored() {
    let (mut board, tasks) = board(3, 1, Tag::NONE);
    let task = tasks[0];
    let uploader = trust_3_in_reveal(&mut board, task);
    let other_winner = (1..=3).map(worker).find(|w| *w != uploader).unwrap();
    // A pool member that never worked on the task, the loser, and a winner that was not
    // asked: none of their links is checked, let alone finalized.
    for w in [worker(5), worker(4), other_winner] {
        let link = format!("http://evil/{w}");
        let actions = board.report(w, &task, Progress::Uploaded { link }, 30);
        assert!(
            actions
                .iter()
                .all(|a| !matches!(a, Action::Finalize { .. } | Action::CheckResult { .. })),
            "{w}'s link was taken: {actions:?}"
        );
        assert!(
            actions.iter().any(|a| matches!(a, Action::Ignored { worker, .. } if *worker == w)),
            "{actions:?}"
        );
    }
    assert_eq!(board.status().ignored_links, 3);
    assert_eq!(board.task_view(&task).unwrap().state, TaskState::Uploading);
    // The designated uploader's link is checked, then finalized.
    let done = upload_checked(&mut board, uploader, &task, "http://r/good", 40, 1_000);
    assert_eq!(done, vec![Action::Finalize { task, link: "http://r/good".into() }]);
}

#[test]
fn a_link_that_fails_its_check_is_refused_and_another_winner_uploads() {
    let (mut board, tasks) = board(3, 1, Tag::NONE);
    let task = tasks[0];
    let first = trust_3_in_reveal(&mut board, task);
    let bad = Progress::Uploaded { link: "http://r/bad".into() };
    let checking = board.report(first, &task, bad, 30);
    assert!(checking.iter().any(|a| matches!(a, Action::CheckResult { .. })), "{checking:?}");
    // The same uploader reporting again while its link is checked starts no second check.
    let again = board.report(first, &task, Progress::Uploaded { link: "x".into() }, 31);
    assert!(!again.iter().any(|a| matches!(a, Action::CheckResult { .. })), "{again:?}");
    // Nor does the tick replace it meanwhile, however long the check takes.
    assert!(!board.tick(60_000, 1_000).iter().any(|a| matches!(
        a,
        Action::Push { work: Work::Upload { .. }, .. } | Action::Finalize { .. }
    )));
    // A stale answer (another link) changes nothing.
    assert!(board.result_checked(&task, first, "x", Ok(()), 60_001, 1_000).is_empty());
    let why = Err("the result's digest gives 0x22, not the consensus 0x11".to_owned());
    let next = board.result_checked(&task, first, "http://r/bad", why, 60_002, 1_000);
    let second = match next.as_slice() {
        [Action::Push { worker, work: Work::Upload { task: t } }] if *t == task => *worker,
        other => panic!("another winner should upload: {other:?}"),
    };
    assert_ne!(second, first);
    assert!([worker(1), worker(2), worker(3)].contains(&second), "a winner: {second}");
    assert!(board.task_view(&task).unwrap().last_event.contains("refused"));
    // The refused uploader is no longer the one asked: its link is ignored now.
    let late = board.report(first, &task, Progress::Uploaded { link: "y".into() }, 60_003);
    assert!(late.iter().any(|a| matches!(a, Action::Ignored { .. })), "{late:?}");
    let done = upload_checked(&mut board, second, &task, "http://r/good", 60_004, 1_000);
    assert_eq!(done, vec![Action::Finalize { task, link: "http://r/good".into() }]);
}

#[test]
fn a_link_reported_before_consensus_is_ignored() {
    let (mut board, tasks) = board(3, 1, Tag::NONE);
    let task = tasks[0];
    board.connect(worker(1), B256::repeat_byte(1), caps(1), 0, 0);
    let actions = board.report(worker(1), &task, Progress::Uploaded { link: "http://e".into() }, 5);
    assert!(actions.iter().any(|a| matches!(a, Action::Ignored { .. })), "{actions:?}");
    board.connect(worker(2), B256::repeat_byte(2), caps(1), 0, 0);
    let honest = B256::repeat_byte(0x11);
    board.contributed(&task, worker(1), honest, 10);
    board.contributed(&task, worker(2), honest, 10);
    board.consensus(&task, honest, 2_000, 20);
    board.revealed(&task, worker(1), 1_000);
    let finalized = board.revealed(&task, worker(2), 1_000);
    assert!(finalized.is_empty(), "the early link is not the task's: {finalized:?}");
}

#[test]
fn stake_pays_for_slots() {
    assert_eq!(stake_slots(Nrlc(25), Nrlc(10)), 2);
    assert_eq!(stake_slots(Nrlc(10), Nrlc(10)), 1);
    assert_eq!(stake_slots(Nrlc(9), Nrlc(10)), 0, "below the minimum: nothing");
    assert_eq!(stake_slots(Nrlc(u128::MAX), Nrlc(1)), SLOTS_MAX_PER_WORKER);
    assert_eq!(stake_slots(Nrlc(0), Nrlc(0)), SLOTS_MAX_PER_WORKER, "no minimum, no bound");
}

#[test]
fn a_worker_gets_no_more_slots_than_its_stake_pays_for() {
    let (mut board, _) = board(1, 30, Tag::NONE);
    // It claims 25 slots but staked twice the pool's minimum.
    board.set_slot_limit(worker(1), stake_slots(Nrlc(20), Nrlc(10)), 0);
    let held = runs(&board.connect(worker(1), B256::repeat_byte(1), caps(25), 0, 0));
    assert_eq!(held.len(), 2, "{held:?}");
    assert_eq!(board.status().workers[0].capabilities.slots, 2);
    // The limit outlives the session, and an honest worker gets the rest.
    board.disconnect(worker(1), B256::repeat_byte(1), 1);
    assert_eq!(runs(&board.connect(worker(1), B256::repeat_byte(9), caps(25), 0, 2)).len(), 2);
    assert_eq!(runs(&board.connect(worker(2), B256::repeat_byte(2), caps(3), 0, 3)).len(), 3);
    // Staking more raises it.
    assert_eq!(runs(&board.set_slot_limit(worker(1), 4, 4)).len(), 2);
}

#[test]
fn a_replicate_setting_up_past_the_setup_timeout_goes_to_another_worker() {
    let (board, tasks) = board(1, 2, Tag::NONE);
    let mut board = board.with_setup_timeout_ms(10_000);
    let held = runs(&board.connect(worker(1), B256::repeat_byte(1), caps(1), 0, 0));
    assert_eq!(held, vec![(worker(1), tasks[0])]);
    let setting_up = Progress::SettingUp { detail: "fetching app".into() };
    board.report(worker(1), &tasks[0], setting_up.clone(), 100);
    // A busy worker 2 finishes the other task and is free at 5 s.
    assert_eq!(runs(&board.connect(worker(2), B256::repeat_byte(2), caps(1), 0, 0)).len(), 1);
    board.finalized(&tasks[1], "l".into(), 5_000);
    // Setting up again and again does not restart the clock.
    board.report(worker(1), &tasks[0], setting_up, 9_000);
    assert!(runs(&board.tick(10_000, 0)).is_empty(), "within the setup timeout");
    let actions = board.tick(10_001, 0);
    assert_eq!(runs(&actions), vec![(worker(2), tasks[0])]);
    assert!(actions.contains(&Action::Push {
        worker: worker(1),
        work: Work::Abort { task: tasks[0], reason: "has not started the app in time".into() },
    }));
    assert_eq!(board.task_view(&tasks[0]).unwrap().workers, vec![worker(1), worker(2)]);
    let w1 = board.status().workers.into_iter().find(|w| w.worker == worker(1)).unwrap();
    assert_eq!(w1.busy, 0, "its slot is free again");
}

#[test]
fn a_replicate_never_reporting_past_the_setup_timeout_goes_to_another_worker() {
    let (board, tasks) = board(3, 1, Tag::NONE);
    let mut board = board.with_setup_timeout_ms(10_000);
    let mut held = Vec::new();
    for i in 1..=3 {
        held.extend(runs(&board.connect(worker(i), B256::repeat_byte(i), caps(1), 0, 0)));
    }
    assert_eq!(held.len(), 2, "two fresh workers are enough at trust 3: {held:?}");
    let idle = (1..=3).map(worker).find(|w| !held.iter().any(|(h, _)| h == w)).unwrap();
    board.report(held[0].0, &tasks[0], Progress::Running, 50);
    let actions = board.tick(10_001, 0);
    assert_eq!(runs(&actions), vec![(idle, tasks[0])], "the silent one is replaced");
}

#[test]
fn a_replicate_running_past_the_work_clock_goes_to_another_worker() {
    let (mut board, tasks) = board(1, 1, Tag::NONE);
    board.connect(worker(1), B256::repeat_byte(1), caps(1), 0, 0);
    board.connect(worker(2), B256::repeat_byte(2), caps(1), 0, 0);
    board.report(worker(1), &tasks[0], Progress::Running, 1_000);
    // T is 300 s; the sandbox stops the app then: 60 s of grace for the reports.
    assert!(runs(&board.tick(361_000, 0)).is_empty());
    assert_eq!(runs(&board.tick(361_001, 0)), vec![(worker(2), tasks[0])]);
}

#[test]
fn a_worker_whose_membership_ends_loses_its_session_and_its_tasks() {
    let (mut board, tasks) = board(1, 3, Tag::NONE);
    let held = runs(&board.connect(worker(1), B256::repeat_byte(1), caps(2), 0, 0));
    assert_eq!(held.len(), 2);
    assert_eq!(runs(&board.connect(worker(2), B256::repeat_byte(2), caps(3), 0, 0)).len(), 1);
    let again = runs(&board.membership_ended(worker(1), "is leaving the pool", 10));
    let moved: BTreeSet<B256> = again.iter().map(|(_, t)| *t).collect();
    assert!(again.iter().all(|(w, _)| *w == worker(2)), "{again:?}");
    assert_eq!(moved, held.iter().map(|(_, t)| *t).collect(), "its tasks go to worker 2");
    assert_eq!(board.session(&worker(1)), None, "the session is closed");
    assert_eq!(board.workers(), vec![worker(2)]);
    assert!(board.task_view(&held[0].1).unwrap().last_event.contains("handed to"));
    assert_eq!(tasks.len(), 3);
}

#[test]
fn weights_follow_poco() {
    assert_eq!(weight(0), U256::from(2));
    assert_eq!(weight(11), U256::from(2));
    assert_eq!(weight(12), U256::from(3));
    assert_eq!(weight(30), U256::from(9));
}

#[test]
fn prediction_needs_two_fresh_workers_at_trust_3() {
    let two = U256::from(2);
    // One pending fresh worker: 2·3 > (1+2)·2 is false.
    assert!(!consensus_possible(3, U256::ZERO, two, U256::ZERO));
    // Two pending: 4·3 > (1+4)·2.
    assert!(consensus_possible(3, U256::ZERO, two * two, U256::ZERO));
    // One contributed, one pending: same.
    assert!(consensus_possible(3, two, two, U256::ZERO));
    // One contributed against one liar, one pending: 4·3 > (1+4+2)·2 = 14 is false.
    assert!(!consensus_possible(3, two, two, two));
    // Trust 1: anything pending or contributed.
    assert!(consensus_possible(1, U256::ZERO, two, U256::ZERO));
    assert!(!consensus_possible(1, U256::ZERO, U256::ZERO, U256::ZERO));
}

#[test]
fn trust_1_hands_each_task_to_one_worker_and_fills_every_slot() {
    let (mut board, tasks) = board(1, 5, Tag::NONE);
    let first = board.connect(worker(1), B256::repeat_byte(1), caps(2), 0, 0);
    // The authorization is the pool owner's signature for that worker and task.
    let Some(Action::Push { work: Work::Run(assignment), .. }) = first.first() else {
        panic!("{first:?}")
    };
    let hash = ids::authorization_hash(&worker(1), &assignment.task, &Address::ZERO);
    assert_eq!(
        xiebao_types::crypto::recover_eth_signed(&hash, &assignment.authorization),
        Ok(SecretKey::from_label("pool owner").address())
    );
    assert_eq!(assignment.finish, Finish::ContributeAndFinalize);
    let mut pushed = runs(&first);
    pushed.extend(runs(&board.connect(worker(2), B256::repeat_byte(2), caps(1), 0, 0)));
    assert_eq!(pushed.len(), 3, "three slots, three replicates: {pushed:?}");
    let distinct: BTreeSet<B256> = pushed.iter().map(|(_, t)| *t).collect();
    assert_eq!(distinct.len(), 3, "never two replicates of a trust-1 task");
    assert_eq!(pushed.iter().filter(|(w, _)| *w == worker(1)).count(), 2);
    let actions = board.tick(0, 0);
    assert!(runs(&actions).is_empty(), "no free slot, nothing more handed out");
    let view = board.task_view(&tasks[4]).unwrap();
    assert_eq!(
        view.state,
        TaskState::WaitingForWorker { why: "every worker is busy (3/3 slots)".into() }
    );
}

#[test]
fn a_large_bag_is_handed_out_once_per_task_and_finished_tasks_leave_the_queue() {
    let (mut board, tasks) = board(1, 2_000, Tag::NONE);
    let mut pushed = runs(&board.connect(worker(1), B256::repeat_byte(1), caps(4), 0, 0));
    let mut handed = BTreeSet::new();
    let mut done: usize = 0;
    while let Some((w, task)) = pushed.pop() {
        assert!(handed.insert(task), "task {task} handed out twice");
        assert_eq!(w, worker(1));
        done += 1;
        pushed.extend(runs(&board.finalized(&task, format!("/results/{done}"), done as u64)));
        assert!(
            board.unfinished.len() <= tasks.len() - done + 1,
            "finished tasks are dropped from the hand-out queue: {} queued after {done}",
            board.unfinished.len()
        );
    }
    assert_eq!(handed.len(), tasks.len(), "every task handed out");
    assert!(board.unfinished.len() <= 1, "{} left queued", board.unfinished.len());
}

#[test]
fn a_trust_1_result_that_fails_to_upload_goes_to_another_worker() {
    let (mut board, tasks) = board(1, 1, Tag::NONE);
    let first = runs(&board.connect(worker(1), B256::repeat_byte(1), caps(1), 0, 0));
    assert_eq!(first, vec![(worker(1), tasks[0])]);
    board.connect(worker(2), B256::repeat_byte(2), caps(1), 0, 0);
    board.report(worker(1), &tasks[0], Progress::Computed, 5);
    let failed = Progress::Failed { stage: "uploading".into(), reason: "HTTP 500".into() };
    let again = runs(&board.report(worker(1), &tasks[0], failed, 6));
    assert_eq!(again, vec![(worker(2), tasks[0])], "handed to the other worker");
}

#[test]
fn trust_1_without_contribute_and_finalize_goes_through_contribute_reveal_and_finalize() {
    let (board, tasks) = board(1, 1, Tag::NONE);
    let mut board = board.with_contribute_and_finalize(false);
    let task = tasks[0];
    let pushed = board.connect(worker(1), B256::repeat_byte(1), caps(1), 0, 0);
    let Some(Action::Push { work: Work::Run(assignment), .. }) = pushed.first() else {
        panic!("{pushed:?}")
    };
    assert_eq!(assignment.finish, Finish::Contribute, "the worker only contributes");
    board.connect(worker(2), B256::repeat_byte(2), caps(1), 0, 0);
    let result = B256::repeat_byte(0x11);
    assert!(runs(&board.contributed(&task, worker(1), result, 10)).is_empty());
    // At trust 1 one contribution is consensus: the contributor reveals and uploads.
    let actions = board.consensus(&task, result, 2_000, 10);
    assert_eq!(
        actions,
        vec![
            Action::Push { worker: worker(1), work: Work::Reveal { task } },
            Action::Push { worker: worker(1), work: Work::Upload { task } },
        ]
    );
    assert_eq!(
        board.task_view(&task).unwrap().state,
        TaskState::Revealing { revealed: 0, winners: 1 }
    );
    assert!(board.revealed(&task, worker(1), 1_500).is_empty(), "no link yet");
    let done = upload_checked(&mut board, worker(1), &task, "http://r/1", 20, 1_500);
    assert_eq!(done, vec![Action::Finalize { task, link: "http://r/1".into() }]);
    board.finalized(&task, "http://r/1".into(), 30);
    let view = board.task_view(&task).unwrap();
    assert_eq!(view.state, TaskState::Completed { link: "http://r/1".into() });
    assert_eq!(view.workers, vec![worker(1)], "never handed to the second worker");
}

#[test]
fn trust_1_consensus_asks_nothing_when_contribute_and_finalize_settles_the_task() {
    let (mut board, tasks) = board(1, 1, Tag::NONE);
    board.connect(worker(1), B256::repeat_byte(1), caps(1), 0, 0);
    let result = B256::repeat_byte(0x11);
    board.contributed(&tasks[0], worker(1), result, 10);
    assert!(board.consensus(&tasks[0], result, 2_000, 10).is_empty());
    assert!(board.tick(20, 1_500).is_empty(), "no reveal, upload or finalize to ask for");
}

#[test]
fn trust_3_asks_for_replicates_until_consensus_is_possible() {
    let (mut board, tasks) = board(3, 1, Tag::NONE);
    let task = tasks[0];
    let mut pushed = Vec::new();
    for i in 1..=4 {
        pushed.extend(runs(&board.connect(worker(i), B256::repeat_byte(i), caps(1), 0, 0)));
    }
    // Fresh workers weigh 2: two agreeing ones are enough (4·3 > 5·2).
    assert_eq!(pushed.len(), 2, "{pushed:?}");
    let honest = B256::repeat_byte(0x11);
    let lie = B256::repeat_byte(0x66);
    let (first, second) = (pushed[0].0, pushed[1].0);
    board.contributed(&task, first, honest, 10);
    // One contributed, one still pending: still possible, nothing new.
    assert!(runs(&board.tick(10, 0)).is_empty());
    let more = runs(&board.contributed(&task, second, lie, 20));
    assert_eq!(more.len(), 1, "a disagreement needs another replicate: {more:?}");
    let view = board.task_view(&task).unwrap();
    assert_eq!(view.state, TaskState::WaitingForConsensus { contributions: 2, pending: 1 });
    let last = runs(&board.contributed(&task, more[0].0, honest, 30));
    assert_eq!(last.len(), 1, "2 honest vs 1 liar at trust 3 needs a fourth: {last:?}");
    // Consensus: winners reveal, one uploads, then finalize once all revealed and uploaded.
    board.contributed(&task, last[0].0, honest, 40);
    let actions = board.consensus(&task, honest, 2_000, 40);
    let reveals = actions
        .iter()
        .filter(|a| matches!(a, Action::Push { work: Work::Reveal { .. }, .. }))
        .count();
    assert_eq!(reveals, 3, "the three winners reveal, the liar does not");
    let uploader = actions
        .iter()
        .find_map(|a| match a {
            Action::Push { worker, work: Work::Upload { .. } } => Some(*worker),
            _ => None,
        })
        .expect("one winner uploads");
    assert_ne!(uploader, second);
    for w in [first, more[0].0, last[0].0] {
        assert!(board.revealed(&task, w, 1_500).is_empty(), "no link yet");
    }
    let done = upload_checked(&mut board, uploader, &task, "http://r/1", 50, 1_500);
    assert!(done.contains(&Action::Finalize { task, link: "http://r/1".into() }), "{done:?}");
}

#[test]
fn contributions_without_consensus_on_chain_always_get_another_replicate() {
    let (mut board, tasks) = board(3, 1, Tag::NONE);
    let task = tasks[0];
    // A high score predicts that one replicate is enough (weight 19: 57 > 40) …
    let first = runs(&board.connect(worker(1), B256::repeat_byte(1), caps(1), 60, 0));
    assert_eq!(first.len(), 1);
    assert!(runs(&board.connect(worker(2), B256::repeat_byte(2), caps(1), 0, 0)).is_empty());
    // … but the chain weighed the contribution with the score it had then and reached no
    // consensus: the scheduler must not wait for one that will not come.
    let more = runs(&board.contributed(&task, worker(1), B256::repeat_byte(0x11), 10));
    assert_eq!(more, vec![(worker(2), task)]);
}

#[test]
fn a_lost_worker_s_replicate_goes_to_another() {
    let (mut board, tasks) = board(1, 1, Tag::NONE);
    let first = runs(&board.connect(worker(1), B256::repeat_byte(1), caps(1), 0, 0));
    assert_eq!(first, vec![(worker(1), tasks[0])]);
    assert!(runs(&board.connect(worker(2), B256::repeat_byte(2), caps(1), 0, 0)).is_empty());
    // A stale session's disconnect is ignored.
    assert!(board.disconnect(worker(1), B256::repeat_byte(9), 5).is_empty());
    let again = runs(&board.disconnect(worker(1), B256::repeat_byte(1), 5));
    assert_eq!(again, vec![(worker(2), tasks[0])]);
    assert_eq!(board.task_view(&tasks[0]).unwrap().workers, vec![worker(1), worker(2)]);
}

#[test]
fn a_slow_replicate_gets_a_twin_on_another_worker() {
    let (mut board, tasks) = board(1, 5, Tag::NONE);
    let a = runs(&board.connect(worker(1), B256::repeat_byte(1), caps(1), 0, 0));
    let b = runs(&board.connect(worker(2), B256::repeat_byte(2), caps(1), 0, 0));
    assert_eq!((a.len(), b.len()), (1, 1));
    // worker 2 finishes three tasks in 100 ms each while worker 1 hangs on its first.
    let mut next = b[0].1;
    for step in 1..=3u64 {
        let pushed = runs(&board.contributed(&next, worker(2), B256::repeat_byte(7), step * 100));
        board.finalized(&next, "l".into(), step * 100);
        next = pushed.first().map_or(next, |p| p.1);
    }
    // 2.1 s later (median 100 ms + 2 s margin) worker 1's task is slow: worker 2 gets it.
    board.contributed(&next, worker(2), B256::repeat_byte(7), 400);
    let twin = runs(&board.tick(2_500, 0));
    assert!(twin.contains(&(worker(2), a[0].1)), "{twin:?}");
    assert!(board.task_view(&a[0].1).unwrap().last_event.contains("slow"));
    assert_eq!(tasks.len(), 5);
}

#[test]
fn setting_up_never_counts_against_the_slow_replicate_timer() {
    let (mut board, _) = board(1, 5, Tag::NONE);
    let a = runs(&board.connect(worker(1), B256::repeat_byte(1), caps(1), 0, 0));
    let b = runs(&board.connect(worker(2), B256::repeat_byte(2), caps(1), 0, 0));
    let slow_task = a[0].1;
    let setting_up = Progress::SettingUp { detail: "fetching dataset".into() };
    board.report(worker(1), &slow_task, setting_up, 0);
    // worker 2 runs the other four tasks in 100 ms each: threshold 100 ms + 2 s margin.
    let mut next = b[0].1;
    for step in 1..=4u64 {
        let pushed = runs(&board.contributed(&next, worker(2), B256::repeat_byte(7), step * 100));
        board.finalized(&next, "l".into(), step * 100);
        next = pushed.first().map_or(next, |p| p.1);
    }
    // Worker 1 sets up for 60 s: far past the threshold, yet not slow.
    for now in [2_500, 10_000, 60_000] {
        assert!(runs(&board.tick(now, 0)).is_empty(), "twinned while setting up at {now}");
    }
    assert!(matches!(board.task_view(&slow_task).unwrap().state, TaskState::SettingUp { .. }));
    // It starts the app at 60 s: the timer starts there.
    board.report(worker(1), &slow_task, Progress::Running, 60_000);
    assert!(runs(&board.tick(62_000, 0)).is_empty(), "2 s of running is within 2.1 s");
    let twin = runs(&board.tick(62_200, 0));
    assert_eq!(twin, vec![(worker(2), slow_task)], "2.2 s of running is slow");
    assert!(board.task_view(&slow_task).unwrap().last_event.contains("too: "), "twinned");
}

#[test]
fn gpu_tasks_wait_for_a_gpu_worker_and_say_so() {
    let (mut board, tasks) = board(1, 1, Tag::bit(8));
    assert!(runs(&board.connect(worker(1), B256::repeat_byte(1), caps(4), 0, 0)).is_empty());
    assert_eq!(
        board.task_view(&tasks[0]).unwrap().state,
        TaskState::WaitingForWorker {
            why: "no connected worker has runtime WASM and a GPU".into()
        }
    );
    let gpu = Capabilities { gpu: true, ..caps(1) };
    let pushed = runs(&board.connect(worker(2), B256::repeat_byte(2), gpu, 0, 0));
    assert_eq!(pushed, vec![(worker(2), tasks[0])]);
}

#[test]
fn no_reveal_by_the_deadline_reopens_and_hands_the_task_out_again() {
    let (mut board, tasks) = board(2, 1, Tag::NONE);
    let task = tasks[0];
    let mut pushed = Vec::new();
    for i in 1..=3 {
        pushed.extend(runs(&board.connect(worker(i), B256::repeat_byte(i), caps(1), 0, 0)));
    }
    let hash = B256::repeat_byte(0x11);
    for (w, _) in &pushed {
        board.contributed(&task, *w, hash, 10);
    }
    board.consensus(&task, hash, 2_000, 10);
    assert!(board.tick(20, 1_999).iter().all(|a| !matches!(a, Action::Reopen { .. })));
    assert_eq!(board.tick(30, 2_000), vec![Action::Reopen { task }]);
    assert_eq!(board.task_view(&task).unwrap().state, TaskState::RevealTimeout);
    board.reopened(&task, 40);
    let view = board.task_view(&task).unwrap();
    assert!(
        matches!(view.state, TaskState::Running { .. } | TaskState::WaitingForWorker { .. }),
        "{view:?}"
    );
}

#[test]
fn repeated_failures_give_the_task_up_with_the_reason() {
    let (mut board, tasks) = board(1, 1, Tag::NONE);
    let task = tasks[0];
    for i in 1..=3u8 {
        board.connect(worker(i), B256::repeat_byte(i), caps(1), 0, 0);
    }
    for i in 1..=3u8 {
        board.report(
            worker(i),
            &task,
            Progress::Failed { stage: "running".into(), reason: "exit code 2".into() },
            10,
        );
    }
    match board.task_view(&task).unwrap().state {
        TaskState::Failed { why } => assert!(why.contains("exit code 2"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_app_failing_on_every_connected_worker_fails_the_task_at_once() {
    let (mut board, tasks) = board(1, 1, Tag::NONE);
    let task = tasks[0];
    board.connect(worker(1), B256::repeat_byte(1), caps(1), 0, 0);
    // A set-up failure may be passing: the task waits for another try.
    board.report(
        worker(1),
        &task,
        Progress::Failed { stage: "setting up".into(), reason: "timeout".into() },
        10,
    );
    assert!(!matches!(board.task_view(&task).unwrap().state, TaskState::Failed { .. }));
    board.connect(worker(2), B256::repeat_byte(2), caps(1), 20, 0);
    board.report(
        worker(2),
        &task,
        Progress::Failed { stage: "running".into(), reason: "exit code 2".into() },
        30,
    );
    // Both connected workers tried it and the last failure is the app's own.
    match board.task_view(&task).unwrap().state {
        TaskState::Failed { why } => {
            assert!(
                why.contains("no other capable worker") && why.contains("exit code 2"),
                "{why}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_checksum_mismatch_on_the_only_worker_fails_the_task_at_once() {
    let (mut board, tasks) = board(1, 1, Tag::NONE);
    let task = tasks[0];
    board.connect(worker(1), B256::repeat_byte(1), caps(1), 0, 0);
    let reason = "checksum mismatch: dataset 0x… has sha256 0x01, but its registry entry says 0x02";
    board.report(
        worker(1),
        &task,
        Progress::Failed { stage: "verifying".into(), reason: reason.into() },
        10,
    );
    match board.task_view(&task).unwrap().state {
        TaskState::Failed { why } => {
            assert!(why.contains("while verifying: checksum mismatch"), "{why}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_app_failure_is_retried_while_an_untried_worker_is_connected() {
    let (mut board, tasks) = board(1, 1, Tag::NONE);
    let task = tasks[0];
    board.connect(worker(1), B256::repeat_byte(1), caps(1), 0, 0);
    board.connect(worker(2), B256::repeat_byte(2), caps(1), 0, 0);
    let first = board.task_view(&task).unwrap().workers[0];
    let actions = board.report(
        first,
        &task,
        Progress::Failed { stage: "running".into(), reason: "exit code 2".into() },
        10,
    );
    assert!(!matches!(board.task_view(&task).unwrap().state, TaskState::Failed { .. }));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Push { worker, work: Work::Run(_) } if *worker != first)),
        "handed to the other worker: {actions:?}"
    );
}
