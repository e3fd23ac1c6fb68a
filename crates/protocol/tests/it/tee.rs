//! TEE contributions (enclave challenge, TEE broker) and the callback rule.

use alloy_primitives::{Address, B256, Bytes, keccak256};
use xiebao_protocol::testkit::{DealSpec, World};
use xiebao_protocol::{ProtocolError, TaskStatus};
use xiebao_types::tx::{ContributeAndFinalize, Finalize, PoolPolicy, SetTeeBroker};
use xiebao_types::{Nrlc, SecretKey, Tag, ids};

use crate::{check_invariants, rejected};

struct Tee {
    world: World,
    task: B256,
    broker: SecretKey,
    enclave: SecretKey,
}

fn tee_task() -> Tee {
    let mut world = World::new(1, Nrlc::rlc(100), PoolPolicy::default(), Nrlc::rlc(5));
    let broker = SecretKey::from_label("tee broker");
    let authority = world.actors.authority.clone();
    world.send(&authority, vec![SetTeeBroker { broker: broker.address() }.into()]).unwrap();
    let tee: Tag = "tee,scone".parse().unwrap();
    let mut orders = world.orders(&DealSpec::default());
    orders.app.tag = tee;
    orders.workerpool.tag = tee;
    world.resign(&mut orders);
    let deal = world.match_orders(orders).unwrap();
    assert_eq!(world.state.deals()[&deal].tag, tee);
    let task = world.initialize(&deal, [0]).unwrap()[0];
    Tee { world, task, broker, enclave: SecretKey::from_label("enclave challenge") }
}

fn call(
    t: &Tee,
    challenge: Address,
    enclave_key: &SecretKey,
    authorizer: &SecretKey,
) -> ContributeAndFinalize {
    let worker = t.world.actors.workers[0].address();
    let digest = B256::repeat_byte(0x60);
    let hash = ids::result_hash(&t.task, &digest);
    let seal = ids::result_seal(&worker, &t.task, &digest);
    ContributeAndFinalize {
        task_id: t.task,
        result_digest: digest,
        results: Bytes::from_static(b"/ipfs/encrypted"),
        results_callback: Bytes::new(),
        enclave_challenge: challenge,
        enclave_sign: enclave_key.eth_sign(&ids::enclave_message_hash(&hash, &seal)),
        authorization_sign: authorizer
            .eth_sign(&ids::authorization_hash(&worker, &t.task, &challenge)),
    }
}

#[test]
fn tee_task_needs_an_enclave_challenge() {
    let mut t = tee_task();
    let worker = t.world.actors.workers[0].clone();
    let c = call(&t, Address::ZERO, &t.enclave, &t.world.actors.pool_owner);
    let e = rejected(&mut t.world, |w| w.send(&worker, vec![c.into()]));
    assert!(matches!(e, ProtocolError::EnclaveChallengeRequired { .. }), "{e}");
}

#[test]
fn enclave_signature_must_come_from_the_challenge_key() {
    let mut t = tee_task();
    let worker = t.world.actors.workers[0].clone();
    let impostor = SecretKey::from_label("not the enclave");
    let c = call(&t, t.enclave.address(), &impostor, &t.broker);
    let e = rejected(&mut t.world, |w| w.send(&worker, vec![c.into()]));
    assert!(
        matches!(e, ProtocolError::BadEnclaveSignature { expected, .. } if expected == t.enclave.address()),
        "{e}"
    );
}

#[test]
fn broker_authorized_enclave_contribution_completes_the_task() {
    let mut t = tee_task();
    let worker = t.world.actors.workers[0].clone();
    let c = call(&t, t.enclave.address(), &t.enclave, &t.broker);
    t.world.send(&worker, vec![c.into()]).unwrap();
    assert_eq!(t.world.state.tasks()[&t.task].status, TaskStatus::Completed);
    check_invariants(&t.world);
}

#[test]
fn broker_cannot_authorize_a_standard_contribution() {
    let mut w = World::new(1, Nrlc::rlc(100), PoolPolicy::default(), Nrlc::rlc(5));
    let broker = SecretKey::from_label("tee broker");
    let authority = w.actors.authority.clone();
    w.send(&authority, vec![SetTeeBroker { broker: broker.address() }.into()]).unwrap();
    let deal = w.deal(&DealSpec::default()).unwrap();
    let task = w.initialize(&deal, [0]).unwrap()[0];
    let t = Tee { world: w, task, broker, enclave: SecretKey::from_label("unused") };
    let mut c = call(&t, Address::ZERO, &t.enclave, &t.broker);
    c.enclave_sign = Bytes::new();
    let mut w = t.world;
    let worker = w.actors.workers[0].clone();
    let e = rejected(&mut w, |w| w.send(&worker, vec![c.into()]));
    assert!(matches!(e, ProtocolError::BadAuthorization { .. }), "{e}");
}

#[test]
fn callback_data_must_hash_to_the_agreed_digest() {
    let mut w = World::new(1, Nrlc::rlc(100), PoolPolicy::default(), Nrlc::rlc(5));
    let callback = Address::repeat_byte(0xcb);
    let deal = w.deal(&DealSpec { callback, ..DealSpec::default() }).unwrap();
    let task = w.initialize(&deal, [0]).unwrap()[0];
    let data = Bytes::from_static(b"price=42");
    let digest = keccak256(&data);
    w.contribute(0, &task, &digest).unwrap();
    w.reveal(0, &task, &digest).unwrap();
    let owner = w.actors.pool_owner.clone();
    let finalize = |data: Bytes| {
        vec![Finalize { task_id: task, results: Bytes::new(), results_callback: data }.into()]
    };
    let e = rejected(&mut w, |w| w.send(&owner, finalize(Bytes::from_static(b"price=43"))));
    assert!(
        matches!(e, ProtocolError::CallbackMismatch { callback: c, .. } if c == callback),
        "{e}"
    );
    let e = rejected(&mut w, |w| w.send(&owner, finalize(Bytes::new())));
    assert!(matches!(e, ProtocolError::CallbackMismatch { .. }), "{e}");
    w.send(&owner, finalize(data.clone())).unwrap();
    assert_eq!(w.state.tasks()[&task].results_callback, data);
    check_invariants(&w);
}
