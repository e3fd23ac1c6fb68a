//! Mempool admission, ordering and eviction.

use proptest::prelude::*;
use xiebao_node::{Mempool, MempoolError, MempoolLimits, SenderState};
use xiebao_protocol::VerifiedTx;
use xiebao_protocol::testkit::World;
use xiebao_types::tx::{PoolPolicy, Transfer};
use xiebao_types::{Address, Nrlc, SecretKey, Transaction};

fn tx(world: &World, key: &SecretKey, nonce: u64) -> VerifiedTx {
    let call = Transfer { to: Address::repeat_byte(9), amount: Nrlc(nonce as u128) };
    let signed = Transaction {
        chain_id: xiebao_protocol::testkit::CHAIN_ID,
        nonce,
        calls: vec![call.into()],
    }
    .sign(key);
    VerifiedTx::new(signed, &world.domain).unwrap()
}

fn world() -> World {
    World::new(0, Nrlc::rlc(1), PoolPolicy::default(), Nrlc::ZERO)
}

#[test]
fn admission_rules_name_the_limit() {
    let w = world();
    let alice = SecretKey::from_label("alice");
    let limits =
        MempoolLimits { txs_per_sender_max: 2, nonce_gap_max: 5, ..MempoolLimits::default() };
    let mut pool = Mempool::new(limits);
    pool.insert(tx(&w, &alice, 3), 100, SenderState::funded(3), 0).unwrap();
    let again = tx(&w, &alice, 3);
    assert_eq!(
        pool.insert(again.clone(), 100, SenderState::funded(3), 0),
        Err(MempoolError::AlreadyKnown { hash: again.hash })
    );
    assert!(matches!(
        pool.insert(tx(&w, &alice, 2), 100, SenderState::funded(3), 0),
        Err(MempoolError::NonceTooLow { next: 3, got: 2, .. })
    ));
    assert!(matches!(
        pool.insert(tx(&w, &alice, 9), 100, SenderState::funded(3), 0),
        Err(MempoolError::NonceTooFar { gap: 5, .. })
    ));
    assert!(matches!(
        pool.insert(tx(&w, &alice, 4), 10 << 20, SenderState::funded(3), 0),
        Err(MempoolError::TooLarge { .. })
    ));
    pool.insert(tx(&w, &alice, 4), 100, SenderState::funded(3), 0).unwrap();
    assert!(matches!(
        pool.insert(tx(&w, &alice, 5), 100, SenderState::funded(3), 0),
        Err(MempoolError::SenderQuota { count: 2, .. })
    ));
    assert_eq!(pool.len(), 2);
}

#[test]
fn ready_keeps_arrival_order_across_senders_and_stops_at_gaps() {
    let w = world();
    let (alice, bob) = (SecretKey::from_label("alice"), SecretKey::from_label("bob"));
    let mut pool = Mempool::new(MempoolLimits::default());
    // Arrival: alice 1 (before her 0), bob 0, alice 0, alice 2, bob 1, alice 4 (gap at 3).
    for (key, n) in [(&alice, 1), (&bob, 0), (&alice, 0), (&alice, 2), (&bob, 1), (&alice, 4)] {
        pool.insert(tx(&w, key, n), 100, SenderState::funded(0), 0).unwrap();
    }
    let order = |ready: Vec<xiebao_protocol::VerifiedTx>| -> Vec<(Address, u64)> {
        ready.iter().map(|t| (t.sender, t.tx.nonce)).collect()
    };
    let (a, b) = (alice.address(), bob.address());
    // Alice's 1 waits for her 0 and runs right after it; her 4 waits for 3.
    assert_eq!(order(pool.ready(|_| 0, 100)), vec![(b, 0), (a, 0), (a, 1), (a, 2), (b, 1)]);
    assert_eq!(order(pool.ready(|_| 0, 2)), vec![(b, 0), (a, 0)]);
    // After a block used alice's 0..=2, they are pruned; the rest keeps its order.
    pool.prune(|s| if *s == a { 3 } else { 0 }, &[]);
    assert_eq!(pool.len(), 3);
    assert_eq!(order(pool.ready(|s| if *s == a { 3 } else { 0 }, 100)), vec![(b, 0), (b, 1)]);
}

#[test]
fn a_full_pool_evicts_from_the_largest_sender_only() {
    let w = world();
    let (alice, bob) = (SecretKey::from_label("alice"), SecretKey::from_label("bob"));
    let mut pool = Mempool::new(MempoolLimits { txs_max: 3, ..MempoolLimits::default() });
    for n in 0..3 {
        pool.insert(tx(&w, &alice, n), 100, SenderState::funded(0), 0).unwrap();
    }
    let newest = tx(&w, &alice, 2).hash;
    assert_eq!(pool.insert(tx(&w, &bob, 0), 100, SenderState::funded(0), 0), Ok(vec![newest]));
    assert!(!pool.contains(&newest));
    // Alice cannot push Bob out, and cannot grow beyond a fair share.
    assert_eq!(
        pool.insert(tx(&w, &alice, 2), 100, SenderState::funded(0), 0),
        Err(MempoolError::Full { count: 3, bytes: 300 })
    );
}

#[test]
fn quotas_grow_with_holdings_and_an_empty_account_keeps_little_pending() {
    let w = world();
    let limits = MempoolLimits::default();
    let empty = SenderState { next_nonce: 0, holdings: Nrlc::ZERO };
    let mut pool = Mempool::new(limits);
    let mallory = SecretKey::from_label("mallory");
    // An account holding nothing: a few small transactions, and no 1 MB one at all.
    for n in 0..limits.txs_per_empty_sender_max as u64 {
        pool.insert(tx(&w, &mallory, n), 100, empty, 0).unwrap();
    }
    let n = limits.txs_per_empty_sender_max as u64;
    assert_eq!(
        pool.insert(tx(&w, &mallory, n), 100, empty, 0),
        Err(MempoolError::SenderQuota {
            sender: mallory.address(),
            count: limits.txs_per_empty_sender_max,
            holdings: Nrlc::ZERO,
        })
    );
    let eve = SecretKey::from_label("eve");
    let big = tx(&w, &eve, 0);
    assert!(matches!(
        pool.check(&big.hash, eve.address(), 0, 1 << 20, empty),
        Err(MempoolError::SenderBytes { max, .. }) if max == limits.bytes_per_empty_sender_max
    ));
    // Half the funded threshold: quotas halfway between the empty and the funded ones.
    let half = limits.quota(Nrlc(limits.funded_holdings.0 / 2));
    assert_eq!(half.txs, (limits.txs_per_empty_sender_max + limits.txs_per_sender_max) / 2);
    assert_eq!(half.bytes, (limits.bytes_per_empty_sender_max + limits.bytes_per_sender_max) / 2);
    let full = limits.quota(Nrlc(u128::MAX));
    assert_eq!((full.txs, full.bytes), (limits.txs_per_sender_max, limits.bytes_per_sender_max));
}

#[test]
fn signature_recoveries_are_budgeted_per_sender_and_block() {
    let limits = MempoolLimits::default();
    let mut pool = Mempool::new(limits);
    let mallory = Address::repeat_byte(7);
    let max = limits.recoveries_per_block_empty_max;
    pool.charge_recoveries(mallory, max - 1, Nrlc::ZERO).unwrap();
    assert_eq!(
        pool.charge_recoveries(mallory, 2, Nrlc::ZERO),
        Err(MempoolError::RecoveryBudget {
            sender: mallory,
            recoveries: 2,
            used: max - 1,
            max,
            holdings: Nrlc::ZERO,
        })
    );
    // Another sender has its own budget; a new block opens a new window.
    pool.charge_recoveries(Address::repeat_byte(8), max, Nrlc::ZERO).unwrap();
    pool.new_block();
    pool.charge_recoveries(mallory, max, Nrlc::ZERO).unwrap();
    // A funded sender may recover a full batch of contributions.
    pool.charge_recoveries(Address::repeat_byte(9), 4_096, Nrlc::rlc(1)).unwrap();
}

#[test]
fn the_byte_budget_holds_and_evicts_the_heaviest_sender_first() {
    let w = world();
    let (alice, bob) = (SecretKey::from_label("alice"), SecretKey::from_label("bob"));
    let limits = MempoolLimits { bytes_max: 1_000, ..MempoolLimits::default() };
    let mut pool = Mempool::new(limits);
    for n in 0..4 {
        pool.insert(tx(&w, &alice, n), 250, SenderState::funded(0), 0).unwrap();
    }
    assert_eq!(pool.bytes(), 1_000);
    // Bob's 300 bytes push out Alice's two newest (she holds the most).
    let evicted = pool.insert(tx(&w, &bob, 0), 300, SenderState::funded(0), 0).unwrap();
    assert_eq!(evicted, vec![tx(&w, &alice, 3).hash, tx(&w, &alice, 2).hash]);
    assert_eq!(pool.bytes(), 800);
    assert!(pool.bytes() <= limits.bytes_max);
    // Alice cannot push Bob out to grow past him.
    assert_eq!(
        pool.insert(tx(&w, &alice, 2), 400, SenderState::funded(0), 0),
        Err(MempoolError::Full { count: 3, bytes: 800 })
    );
    // Nothing larger than the whole budget gets in.
    let carol = SecretKey::from_label("carol");
    assert!(matches!(
        pool.insert(tx(&w, &carol, 0), 1_001, SenderState::funded(0), 0),
        Err(MempoolError::Full { .. })
    ));
}

#[test]
fn gapped_transactions_expire_and_ready_ones_stay() {
    let w = world();
    let alice = SecretKey::from_label("alice");
    let limits = MempoolLimits { gapped_ttl_secs: 60, ..MempoolLimits::default() };
    let mut pool = Mempool::new(limits);
    // Nonce 0 is ready; 5 and 6 wait behind a gap that is never filled.
    for n in [0, 5, 6] {
        pool.insert(tx(&w, &alice, n), 100, SenderState::funded(0), 1_000).unwrap();
    }
    assert!(pool.expire(|_| 0, 1_059).is_empty());
    let expired = pool.expire(|_| 0, 1_060);
    assert_eq!(expired, vec![tx(&w, &alice, 5).hash, tx(&w, &alice, 6).hash]);
    assert_eq!(pool.len(), 1);
    assert_eq!(pool.bytes(), 100);
    assert!(pool.contains(&tx(&w, &alice, 0).hash));
}

proptest! {
    #[test]
    fn indexes_stay_consistent(ops in prop::collection::vec((0..3usize, 0..6u64, any::<bool>()), 1..60)) {
        let w = world();
        let keys: Vec<SecretKey> = (0..3).map(|i| SecretKey::from_label(&format!("k{i}"))).collect();
        let mut pool = Mempool::new(MempoolLimits { txs_max: 8, txs_per_sender_max: 4, nonce_gap_max: 4, ..MempoolLimits::default() });
        let mut next = [0u64; 3];
        for (who, nonce, prune) in ops {
            let _ = pool.insert(tx(&w, &keys[who], next[who] + nonce), 100, SenderState::funded(next[who]), 0);
            if prune {
                next[who] += 1;
                let addrs: Vec<Address> = keys.iter().map(SecretKey::address).collect();
                pool.prune(|s| addrs.iter().position(|a| a == s).map_or(0, |i| next[i]), &[]);
            }
            prop_assert!(pool.len() <= 8);
            prop_assert_eq!(pool.bytes(), pool.len() * 100);
            let ready = pool.ready(|s| keys.iter().position(|k| k.address() == *s).map_or(0, |i| next[i]), 100);
            prop_assert!(ready.len() <= pool.len());
            for t in &ready {
                prop_assert!(pool.contains(&t.hash));
            }
        }
    }
}
