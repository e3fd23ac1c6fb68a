//! Mempool admission, ordering and eviction.

use proptest::prelude::*;
use xiebao_node::{Mempool, MempoolError, MempoolLimits};
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
    pool.insert(tx(&w, &alice, 3), 100, 3).unwrap();
    let again = tx(&w, &alice, 3);
    assert_eq!(
        pool.insert(again.clone(), 100, 3),
        Err(MempoolError::AlreadyKnown { hash: again.hash })
    );
    assert!(matches!(
        pool.insert(tx(&w, &alice, 2), 100, 3),
        Err(MempoolError::NonceTooLow { next: 3, got: 2, .. })
    ));
    assert!(matches!(
        pool.insert(tx(&w, &alice, 9), 100, 3),
        Err(MempoolError::NonceTooFar { gap: 5, .. })
    ));
    assert!(matches!(
        pool.insert(tx(&w, &alice, 4), 10 << 20, 3),
        Err(MempoolError::TooLarge { .. })
    ));
    pool.insert(tx(&w, &alice, 4), 100, 3).unwrap();
    assert!(matches!(
        pool.insert(tx(&w, &alice, 5), 100, 3),
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
        pool.insert(tx(&w, key, n), 100, 0).unwrap();
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
        pool.insert(tx(&w, &alice, n), 100, 0).unwrap();
    }
    let newest = tx(&w, &alice, 2).hash;
    assert_eq!(pool.insert(tx(&w, &bob, 0), 100, 0), Ok(vec![newest]));
    assert!(!pool.contains(&newest));
    // Alice cannot push Bob out, and cannot grow beyond a fair share.
    assert_eq!(pool.insert(tx(&w, &alice, 2), 100, 0), Err(MempoolError::Full { count: 3 }));
}

proptest! {
    #[test]
    fn indexes_stay_consistent(ops in prop::collection::vec((0..3usize, 0..6u64, any::<bool>()), 1..60)) {
        let w = world();
        let keys: Vec<SecretKey> = (0..3).map(|i| SecretKey::from_label(&format!("k{i}"))).collect();
        let mut pool = Mempool::new(MempoolLimits { txs_max: 8, txs_per_sender_max: 4, nonce_gap_max: 4, ..MempoolLimits::default() });
        let mut next = [0u64; 3];
        for (who, nonce, prune) in ops {
            let _ = pool.insert(tx(&w, &keys[who], next[who] + nonce), 100, next[who]);
            if prune {
                next[who] += 1;
                let addrs: Vec<Address> = keys.iter().map(SecretKey::address).collect();
                pool.prune(|s| addrs.iter().position(|a| a == s).map_or(0, |i| next[i]), &[]);
            }
            prop_assert!(pool.len() <= 8);
            let ready = pool.ready(|s| keys.iter().position(|k| k.address() == *s).map_or(0, |i| next[i]), 100);
            prop_assert!(ready.len() <= pool.len());
            for t in &ready {
                prop_assert!(pool.contains(&t.hash));
            }
        }
    }
}
