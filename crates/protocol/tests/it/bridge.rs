//! The bridge's chain side: deposits minted on a validator quorum, withdrawals burned and
//! their release signatures checked and collected.

use alloy_primitives::{Address, B256, Bytes, U256};
use proptest::prelude::*;
use xiebao_protocol::testkit::{CHAIN_ID, World};
use xiebao_protocol::{Event, ProtocolError};
use xiebao_types::bridge::{BridgeDomain, release_digest};
use xiebao_types::tx::{
    AddValidator, AttestDeposit, PoolPolicy, SetBridge, SignWithdrawal, Withdraw,
};
use xiebao_types::{Nrlc, SecretKey};

use crate::{check_invariants, rejected};

const CONTRACT: Address = Address::repeat_byte(0xb1);
const MAINCHAIN: u64 = 31_337;

/// A world with 5 validators (the authority and four more) and the bridge set to 3 of 5.
fn bridged() -> (World, Vec<SecretKey>) {
    let mut world = World::new(1, Nrlc::rlc(10), PoolPolicy::default(), Nrlc::ZERO);
    let authority = world.actors.authority.clone();
    let mut validators = vec![authority.clone()];
    for i in 1..5u8 {
        let key = SecretKey::from_label(&format!("validator {i}"));
        world
            .send(
                &authority,
                vec![
                    AddValidator {
                        address: key.address(),
                        consensus_key: B256::repeat_byte(0x10 + i),
                        p2p: String::new(),
                    }
                    .into(),
                ],
            )
            .expect("validator added");
        validators.push(key);
    }
    world
        .send(
            &authority,
            vec![
                SetBridge {
                    mainchain_id: MAINCHAIN,
                    contract: CONTRACT,
                    threshold: 3,
                    max_per_transfer: Nrlc::rlc(1_000),
                }
                .into(),
            ],
        )
        .expect("bridge set");
    (world, validators)
}

fn attest(id: u64, recipient: Address, amount: Nrlc) -> AttestDeposit {
    AttestDeposit { id, recipient, amount, mainchain_tx: B256::repeat_byte(0x7a) }
}

fn domain() -> BridgeDomain {
    BridgeDomain { mainchain_id: MAINCHAIN, contract: CONTRACT, xiebao_chain_id: CHAIN_ID }
}

#[test]
fn only_the_authority_sets_the_bridge_and_nothing_moves_before() {
    let mut world = World::new(1, Nrlc::rlc(10), PoolPolicy::default(), Nrlc::ZERO);
    let requester = world.actors.requester.clone();
    let error = rejected(&mut world, |w| {
        w.send(&requester, vec![Withdraw { recipient: CONTRACT, amount: Nrlc(1) }.into()])
    });
    assert_eq!(error, ProtocolError::BridgeNotSet);
    let set = SetBridge {
        mainchain_id: 1,
        contract: CONTRACT,
        threshold: 1,
        max_per_transfer: Nrlc::rlc(1),
    };
    let error = rejected(&mut world, |w| w.send(&requester, vec![set.clone().into()]));
    assert!(matches!(error, ProtocolError::NotAuthority { action: "set the bridge", .. }));
    let authority = world.actors.authority.clone();
    let error = rejected(&mut world, |w| {
        w.send(&authority, vec![SetBridge { threshold: 2, ..set.clone() }.into()])
    });
    assert_eq!(
        error.to_string(),
        "the bridge threshold must be between 1 and the number of validators: got 2 of 1"
    );
    world.send(&authority, vec![set.into()]).expect("set");
    assert_eq!(world.state.bridge_settings().unwrap().threshold, 1);
}

#[test]
fn a_deposit_is_minted_once_when_the_threshold_attests_the_same_content() {
    let (mut world, v) = bridged();
    let alice = Address::repeat_byte(0xa1);
    let amount = Nrlc::rlc(5);
    let supply = world.state.globals().minted;

    world.send(&v[1], vec![attest(0, alice, amount).into()]).unwrap();
    let error = rejected(&mut world, |w| w.send(&v[1], vec![attest(0, alice, amount).into()]));
    assert_eq!(error, ProtocolError::AlreadyAttested { id: 0, validator: v[1].address() });
    let outsider = world.actors.requester.clone();
    let error = rejected(&mut world, |w| w.send(&outsider, vec![attest(0, alice, amount).into()]));
    assert!(matches!(error, ProtocolError::NotValidator { action: "attest deposits", .. }));
    // A faulty validator's other version is a separate claim and mints nothing.
    world.send(&v[2], vec![attest(0, alice, Nrlc::rlc(500)).into()]).unwrap();
    world.send(&v[3], vec![attest(0, alice, amount).into()]).unwrap();
    assert_eq!(world.free(alice), Nrlc::ZERO);
    let events = world.send(&v[0], vec![attest(0, alice, amount).into()]).unwrap();
    assert!(events.contains(&Event::DepositMinted { id: 0, recipient: alice, amount }));
    assert_eq!(world.free(alice), amount);
    assert_eq!(world.state.globals().minted, supply.checked_add(amount).unwrap());
    check_invariants(&world);

    // A late honest attestation is recorded and mints nothing more.
    let events = world.send(&v[4], vec![attest(0, alice, amount).into()]).unwrap();
    assert!(!events.iter().any(|e| matches!(e, Event::DepositMinted { .. })));
    assert_eq!(world.free(alice), amount);
    let bridge = world.state.bridge_settings().unwrap();
    assert_eq!((bridge.deposits_minted, bridge.minted), (1, amount));
    let claims: Vec<_> = world.state.deposit(0).collect();
    assert_eq!(claims.len(), 2);
    let minted = claims.iter().find(|c| c.minted).unwrap();
    assert_eq!(minted.attesters.len(), 4);

    // Over the per-transfer limit, or to nobody: refused.
    let error =
        rejected(&mut world, |w| w.send(&v[1], vec![attest(1, alice, Nrlc::rlc(1_001)).into()]));
    assert_eq!(
        error,
        ProtocolError::OverTransferLimit { amount: Nrlc::rlc(1_001), max: Nrlc::rlc(1_000) }
    );
    let error =
        rejected(&mut world, |w| w.send(&v[1], vec![attest(1, Address::ZERO, amount).into()]));
    assert!(error.to_string().contains("recipient must not be the zero address"), "{error}");
}

#[test]
fn a_conflicting_attestation_of_a_minted_deposit_is_refused() {
    let (mut world, v) = bridged();
    let alice = Address::repeat_byte(0xa1);
    for key in &v[..3] {
        world.send(key, vec![attest(7, alice, Nrlc(9)).into()]).unwrap();
    }
    let error = rejected(&mut world, |w| {
        w.send(&v[3], vec![attest(7, Address::repeat_byte(0xee), Nrlc(9)).into()])
    });
    assert_eq!(
        error.to_string(),
        format!(
            "deposit 7 was minted as 9 nRLC to {alice}; the attestation says 9 nRLC to {}",
            Address::repeat_byte(0xee)
        )
    );
}

#[test]
fn withdrawals_burn_and_collect_only_the_validators_own_release_signatures() {
    let (mut world, v) = bridged();
    let requester = world.actors.requester.clone();
    let to = Address::repeat_byte(0xe7);
    let before = world.free(requester.address());
    let burned_before = world.state.globals().burned;

    let error = rejected(&mut world, |w| {
        w.send(&requester, vec![Withdraw { recipient: to, amount: Nrlc::rlc(11) }.into()])
    });
    assert!(matches!(error, ProtocolError::InsufficientBalance { purpose: "withdrawal", .. }));
    let error = rejected(&mut world, |w| {
        w.send(&requester, vec![Withdraw { recipient: to, amount: Nrlc::ZERO }.into()])
    });
    assert!(error.to_string().contains("more than 0 nRLC"), "{error}");
    let events = world
        .send(&requester, vec![Withdraw { recipient: to, amount: Nrlc::rlc(2) }.into()])
        .unwrap();
    assert!(events.contains(&Event::WithdrawalRequested {
        id: 0,
        account: requester.address(),
        recipient: to,
        amount: Nrlc::rlc(2),
    }));
    assert_eq!(world.free(requester.address()), before.checked_sub(Nrlc::rlc(2)).unwrap());
    assert_eq!(world.state.globals().burned, burned_before.checked_add(Nrlc::rlc(2)).unwrap());
    check_invariants(&world);

    let digest = release_digest(&domain(), 0, to, Nrlc::rlc(2));
    assert_eq!(world.state.release_digest(0), Some(digest));
    let sign = |id: u64, signature: Bytes| SignWithdrawal { id, signature };
    world.send(&v[1], vec![sign(0, v[1].sign_hash(&digest)).into()]).unwrap();
    // Someone else's signature, one over another message, a twice-signed or unknown
    // withdrawal, a non-canonical signature: all refused.
    let error =
        rejected(&mut world, |w| w.send(&v[2], vec![sign(0, v[3].sign_hash(&digest)).into()]));
    assert!(error.to_string().contains(&format!("it recovers to {}", v[3].address())), "{error}");
    let other = release_digest(&domain(), 0, to, Nrlc::rlc(3));
    let error =
        rejected(&mut world, |w| w.send(&v[2], vec![sign(0, v[2].sign_hash(&other)).into()]));
    assert!(matches!(error, ProtocolError::BadReleaseSignature { id: 0, .. }), "{error}");
    let error =
        rejected(&mut world, |w| w.send(&v[1], vec![sign(0, v[1].sign_hash(&digest)).into()]));
    assert_eq!(error, ProtocolError::AlreadySigned { id: 0, validator: v[1].address() });
    let error =
        rejected(&mut world, |w| w.send(&v[2], vec![sign(5, v[2].sign_hash(&digest)).into()]));
    assert_eq!(error, ProtocolError::UnknownWithdrawal { id: 5, count: 1 });
    let mut high_s = v[2].sign_hash(&digest).to_vec();
    let n = U256::from_str_radix(
        "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
        16,
    )
    .unwrap();
    let s = U256::from_be_slice(&high_s[32..64]);
    high_s[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
    high_s[64] ^= 1; // 27 ↔ 28
    let error = rejected(&mut world, |w| w.send(&v[2], vec![sign(0, high_s.into()).into()]));
    assert!(matches!(error, ProtocolError::BadReleaseSignature { .. }), "{error}");
    let outsider = world.actors.pool_owner.clone();
    let error = rejected(&mut world, |w| {
        w.send(&outsider, vec![sign(0, outsider.sign_hash(&digest)).into()])
    });
    assert!(matches!(error, ProtocolError::NotValidator { .. }));

    world.send(&v[2], vec![sign(0, v[2].sign_hash(&digest)).into()]).unwrap();
    let withdrawal = &world.state.withdrawals()[&0];
    let signers: Vec<Address> = withdrawal.signatures.iter().map(|s| s.validator).collect();
    assert_eq!(signers, [v[1].address(), v[2].address()]);
    for s in &withdrawal.signatures {
        assert_eq!(xiebao_types::crypto::recover_canonical(&digest, &s.signature), Ok(s.validator));
    }
}

#[derive(Clone, Debug)]
enum Op {
    Attest { validator: usize, id: u64, recipient: u8, amount: u64 },
    Withdraw { who: u8, amount: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..5usize, 0..4u64, 1..3u8, 1..3u64).prop_map(|(validator, id, recipient, amount)| {
            Op::Attest { validator, id, recipient, amount }
        }),
        (1..3u8, 0..4u64).prop_map(|(who, amount)| Op::Withdraw { who, amount }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever validators attest and holders withdraw, each deposit id mints at most once,
    /// and the supply is always genesis + bridge minted − bridge burned.
    #[test]
    fn deposits_mint_at_most_once_and_money_is_conserved(ops in prop::collection::vec(op(), 1..60)) {
        let (mut world, v) = bridged();
        let genesis_supply = world.state.globals().minted;
        let holders: Vec<SecretKey> =
            (0..3u8).map(|i| SecretKey::from_label(&format!("holder {i}"))).collect();
        for op in ops {
            let _ = match op {
                Op::Attest { validator, id, recipient, amount } => world.send(
                    &v[validator],
                    vec![attest(id, holders[usize::from(recipient)].address(), Nrlc::rlc(amount)).into()],
                ),
                Op::Withdraw { who, amount } => world.send(
                    &holders[usize::from(who)],
                    vec![Withdraw { recipient: CONTRACT, amount: Nrlc::rlc(amount) }.into()],
                ),
            };
            check_invariants(&world);
            let bridge = world.state.bridge_settings().unwrap().clone();
            let globals = world.state.globals();
            prop_assert_eq!(
                globals.minted.checked_sub(globals.burned).unwrap(),
                genesis_supply.checked_add(bridge.minted).unwrap().checked_sub(bridge.burned).unwrap()
            );
            for id in 0..4 {
                prop_assert!(world.state.deposit(id).filter(|c| c.minted).count() <= 1);
            }
        }
    }
}
