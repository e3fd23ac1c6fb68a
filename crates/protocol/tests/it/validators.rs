//! Validator-set governance: changes by the authority take effect at the next epoch, fixed
//! by the last block of the current one; bad changes are refused with the rule.

use alloy_primitives::{Address, B256};
use xiebao_protocol::testkit::World;
use xiebao_protocol::{Event, Genesis, ProtocolError};
use xiebao_types::tx::{AddValidator, PoolPolicy, RemoveValidator};
use xiebao_types::{Nrlc, SecretKey};

use crate::rejected;

fn members(world: &World, epoch: u64) -> Option<Vec<Address>> {
    let set = world.state.epoch_validators(epoch)?;
    Some(set.members.iter().map(|m| m.address).collect())
}

fn add(address: Address, key: u8, p2p: &str) -> AddValidator {
    AddValidator { address, consensus_key: B256::repeat_byte(key), p2p: p2p.to_owned() }
}

#[test]
fn changes_take_effect_at_the_next_epoch() {
    let mut world = World::new(1, Nrlc::rlc(10), PoolPolicy::default(), Nrlc::ZERO);
    let authority = world.actors.authority.clone();
    let genesis_set = vec![authority.address()];
    assert_eq!(members(&world, 0), Some(genesis_set.clone()), "genesis fixes epoch 0");
    assert_eq!(world.state.globals().epoch_length, Genesis::DEFAULT_EPOCH_LENGTH);

    let newcomer = SecretKey::from_label("newcomer").address();
    world.send(&authority, vec![add(newcomer, 7, "10.0.0.5:26656").into()]).expect("added");
    // The state holds the change at once; the epoch's set does not change.
    assert_eq!(world.state.validators().len(), 2);
    assert_eq!(members(&world, 0), Some(genesis_set.clone()));
    assert_eq!(members(&world, 1), None, "epoch 1 is not fixed before epoch 0 ends");

    // Blocks up to the epoch's last one: epoch 1 is fixed by the end of block 999 only.
    let last = Genesis::DEFAULT_EPOCH_LENGTH - 1;
    while world.block.height < last {
        assert!(world.advance(1).iter().all(|e| !matches!(e, Event::EpochValidatorsFixed { .. })));
    }
    assert_eq!(members(&world, 1), None);
    let events = world.advance(1);
    let mut expected = vec![authority.address(), newcomer];
    expected.sort();
    assert!(
        events.contains(&Event::EpochValidatorsFixed { epoch: 1, validators: expected.clone() }),
        "{events:?}"
    );
    assert_eq!(members(&world, 1), Some(expected));
    let set = world.state.epoch_validators(1).expect("fixed");
    let entry = set.members.iter().find(|m| m.address == newcomer).expect("member");
    assert_eq!((entry.consensus_key, entry.p2p.as_str()), (B256::repeat_byte(7), "10.0.0.5:26656"));
    assert_eq!(world.state.epoch_of(world.block.height), 1);

    // Removing takes effect one epoch later again; the old epochs keep their sets.
    world.send(&authority, vec![RemoveValidator { address: authority.address() }.into()]).unwrap();
    while world.block.height < 2 * Genesis::DEFAULT_EPOCH_LENGTH {
        world.advance(1);
    }
    assert_eq!(members(&world, 2), Some(vec![newcomer]));
    assert_eq!(members(&world, 0), Some(genesis_set));
}

#[test]
fn bad_changes_are_refused_with_the_rule() {
    let mut world = World::new(1, Nrlc::rlc(10), PoolPolicy::default(), Nrlc::ZERO);
    let authority = world.actors.authority.clone();
    let stranger = world.actors.requester.clone();
    let newcomer = SecretKey::from_label("newcomer").address();

    let error = rejected(&mut world, |w| w.send(&stranger, vec![add(newcomer, 7, "").into()]));
    assert!(matches!(error, ProtocolError::NotAuthority { action: "add validators", .. }));
    let error = rejected(&mut world, |w| {
        w.send(&authority, vec![add(newcomer, 7, "not an address").into()])
    });
    assert!(error.to_string().contains("p2p address must be IP:PORT"), "{error}");
    // The genesis validator's consensus key (0x01…) cannot be reused.
    let error = rejected(&mut world, |w| w.send(&authority, vec![add(newcomer, 1, "").into()]));
    assert!(error.to_string().contains("consensus key already belongs"), "{error}");
    let error =
        rejected(&mut world, |w| w.send(&authority, vec![add(authority.address(), 9, "").into()]));
    assert!(error.to_string().contains("already in the set"), "{error}");
    let error = rejected(&mut world, |w| {
        w.send(&authority, vec![RemoveValidator { address: authority.address() }.into()])
    });
    assert!(error.to_string().contains("last validator"), "{error}");
}
