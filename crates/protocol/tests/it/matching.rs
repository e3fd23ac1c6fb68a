//! One test per matchOrders check (reference §2.1), each triggering exactly that error.

use alloy_primitives::{Address, B256, Bytes, U256};
use xiebao_protocol::testkit::{DealSpec, World};
use xiebao_protocol::{Event, ProtocolError};
use xiebao_types::order::{OrderOperation, SignedOrder};
use xiebao_types::tx::{CreateGroup, ManageRequestOrder, MatchOrders, PoolPolicy, SetGroupMember};
use xiebao_types::{Nrlc, SecretKey, Tag};

use crate::{check_invariants, rejected};

fn world() -> World {
    World::new(1, Nrlc::rlc(1000), PoolPolicy::default(), Nrlc::rlc(10))
}

fn resign(w: &World, orders: &mut MatchOrders) {
    w.resign(orders);
}

/// Builds orders from `spec`, lets `edit` break them, re-signs, matches, and returns the
/// innermost error (asserting the state did not change).
fn check(spec: DealSpec, edit: impl FnOnce(&World, &mut MatchOrders)) -> ProtocolError {
    let mut w = world();
    let mut orders = w.orders(&spec);
    edit(&w, &mut orders);
    resign(&w, &mut orders);
    let requester = w.actors.requester.clone();
    rejected(&mut w, |w| w.send(&requester, vec![orders.into()]))
}

fn with_dataset() -> DealSpec {
    DealSpec { dataset_price: Some(Nrlc::rlc(1)), ..DealSpec::default() }
}

const STRANGER: Address = Address::repeat_byte(0x5e);

#[test]
fn x00_category_mismatch() {
    let e = check(DealSpec::default(), |_, o| o.request.category = U256::from(1));
    assert_eq!(
        e,
        ProtocolError::CategoryMismatch { request: U256::from(1), workerpool: U256::ZERO }
    );
    assert!(e.to_string().starts_with("matchOrders 0x00"));
}

#[test]
fn x01_unknown_category() {
    let e = check(DealSpec::default(), |_, o| {
        o.request.category = U256::from(7);
        o.workerpool.category = U256::from(7);
    });
    assert_eq!(e, ProtocolError::CategoryUnknown { category: U256::from(7), count: 5 });
}

#[test]
fn x02_trust_above_pool_maximum() {
    let e = check(DealSpec::default(), |_, o| o.request.trust = U256::from(101));
    assert_eq!(
        e,
        ProtocolError::TrustTooHigh { request: U256::from(101), workerpool: U256::from(100) }
    );
}

#[test]
fn x03_x04_x05_prices_above_maximum() {
    let e = check(DealSpec::default(), |_, o| o.request.appmaxprice = U256::from(1));
    assert!(matches!(e, ProtocolError::PriceAboveMax { code: "0x03", .. }), "{e}");
    let e = check(with_dataset(), |_, o| o.request.datasetmaxprice = U256::from(1));
    assert!(matches!(e, ProtocolError::PriceAboveMax { code: "0x04", .. }), "{e}");
    let e = check(DealSpec::default(), |_, o| o.request.workerpoolmaxprice = U256::from(1));
    assert!(matches!(e, ProtocolError::PriceAboveMax { code: "0x05", .. }), "{e}");
}

#[test]
fn x06_required_tag_not_offered() {
    let gpu: Tag = "gpu".parse().unwrap();
    let e = check(DealSpec::default(), |_, o| o.request.tag = gpu);
    assert_eq!(e, ProtocolError::TagNotOffered { required: gpu, offered: Tag::NONE });
}

#[test]
fn x07_tee_required_but_app_not_tee() {
    let tee: Tag = "tee,scone".parse().unwrap();
    let e = check(DealSpec::default(), |_, o| {
        o.request.tag = tee;
        o.workerpool.tag = tee;
    });
    assert_eq!(e, ProtocolError::TeeIncoherent { required: tee, app: Tag::NONE });
}

#[test]
fn x10_x11_resource_mismatch() {
    let e = check(DealSpec::default(), |_, o| o.request.app = STRANGER);
    assert!(matches!(e, ProtocolError::ResourceMismatch { code: "0x10", .. }), "{e}");
    let e = check(with_dataset(), |_, o| o.request.dataset = STRANGER);
    assert!(matches!(e, ProtocolError::ResourceMismatch { code: "0x11", .. }), "{e}");
}

#[test]
fn x12_to_x1b_restrictions() {
    type Edit = fn(&mut MatchOrders);
    let cases: [(&str, Edit); 10] = [
        ("0x12", |o| o.request.workerpool = STRANGER),
        ("0x13", |o| o.app.datasetrestrict = STRANGER),
        ("0x14", |o| o.app.workerpoolrestrict = STRANGER),
        ("0x15", |o| o.app.requesterrestrict = STRANGER),
        ("0x16", |o| o.dataset.apprestrict = STRANGER),
        ("0x17", |o| o.dataset.workerpoolrestrict = STRANGER),
        ("0x18", |o| o.dataset.requesterrestrict = STRANGER),
        ("0x19", |o| o.workerpool.apprestrict = STRANGER),
        ("0x1a", |o| o.workerpool.datasetrestrict = STRANGER),
        ("0x1b", |o| o.workerpool.requesterrestrict = STRANGER),
    ];
    for (code, edit) in cases {
        let e = check(with_dataset(), |_, o| edit(o));
        match e {
            ProtocolError::Restricted { code: got, restriction, .. } => {
                assert_eq!((got, restriction), (code, STRANGER));
            }
            other => panic!("{code}: expected a restriction error, got {other}"),
        }
    }
}

#[test]
fn restriction_by_exact_address_or_group_allows_the_match() {
    let mut w = world();
    let requester = w.actors.requester.address();
    let owner = w.actors.app_owner.clone();
    let salt = B256::repeat_byte(9);
    let group = xiebao_protocol::group_address(&owner.address(), &salt);
    w.send(
        &owner,
        vec![
            CreateGroup { salt }.into(),
            SetGroupMember { group, account: requester, member: true }.into(),
        ],
    )
    .unwrap();
    let mut orders = w.orders(&DealSpec::default());
    orders.app.requesterrestrict = group;
    orders.workerpool.requesterrestrict = requester;
    resign(&w, &mut orders);
    let key = w.actors.requester.clone();
    w.send(&key, vec![orders.into()]).unwrap();
    check_invariants(&w);
}

#[test]
fn x20_x30_x40_unregistered_entries() {
    let e = check(DealSpec::default(), |_, o| {
        o.app.app = STRANGER;
        o.request.app = STRANGER;
    });
    assert!(matches!(e, ProtocolError::NotRegistered { code: "0x20", .. }), "{e}");
    let e = check(with_dataset(), |_, o| {
        o.dataset.dataset = STRANGER;
        o.request.dataset = STRANGER;
    });
    assert!(matches!(e, ProtocolError::NotRegistered { code: "0x30", .. }), "{e}");
    let e = check(DealSpec::default(), |_, o| o.workerpool.workerpool = STRANGER);
    assert!(matches!(e, ProtocolError::NotRegistered { code: "0x40", .. }), "{e}");
}

fn forged(w: &World, mut order: impl SignedOrder) -> Bytes {
    order.sign_with(&w.domain, &SecretKey::from_label("mallory"));
    order.sign().clone()
}

#[test]
fn x21_x31_x41_x50_orders_signed_by_someone_else() {
    let mut w = world();
    let requester = w.actors.requester.clone();
    let base = w.orders(&with_dataset());
    type Forge = fn(&World, &mut MatchOrders);
    let cases: [(&str, Forge); 4] = [
        ("0x21", |w, o| o.app.sign = forged(w, o.app.clone())),
        ("0x31", |w, o| o.dataset.sign = forged(w, o.dataset.clone())),
        ("0x41", |w, o| o.workerpool.sign = forged(w, o.workerpool.clone())),
        ("0x50", |w, o| o.request.sign = forged(w, o.request.clone())),
    ];
    for (code, forge) in cases {
        let mut orders = base.clone();
        forge(&w, &mut orders);
        let e = rejected(&mut w, |w| w.send(&requester, vec![orders.into()]));
        assert!(
            matches!(e, ProtocolError::OrderNotSigned { code: c, .. } if c == code),
            "{code}: {e}"
        );
    }
    // A missing signature names the rule too.
    let mut orders = base;
    orders.request.sign = Bytes::new();
    let e = rejected(&mut w, |w| w.send(&requester, vec![orders.into()]));
    assert!(matches!(e, ProtocolError::OrderNotSigned { code: "0x50", .. }), "{e}");
    assert!(e.to_string().contains("not presigned"), "{e}");
}

#[test]
fn presigned_request_matches_without_a_signature() {
    let mut w = world();
    let mut orders = w.orders(&DealSpec::default());
    orders.request.sign = Bytes::new();
    let requester = w.actors.requester.clone();
    let presign = ManageRequestOrder {
        order: orders.request.clone(),
        operation: OrderOperation::Sign,
        sign: Bytes::new(),
    };
    w.send(&requester, vec![presign.into(), orders.into()]).unwrap();
    check_invariants(&w);
}

#[test]
fn x60_exhausted_or_cancelled_orders_give_zero_volume() {
    let mut w = world();
    let orders = w.orders(&DealSpec { volume: 2, ..DealSpec::default() });
    let requester = w.actors.requester.clone();
    w.send(&requester, vec![orders.clone().into()]).unwrap();
    let e = rejected(&mut w, |w| w.send(&requester, vec![orders.clone().into()]));
    assert!(matches!(e, ProtocolError::ZeroVolume { request, .. } if request.is_zero()), "{e}");
    // Cancelling the app order (by the owner, relayed with its signature) exhausts it.
    let mut w = world();
    let orders = w.orders(&DealSpec::default());
    let mut cancel = ManageAppOrderBuilder::cancel(&w, &orders);
    cancel.sign =
        w.actors.app_owner.sign_hash(&orders.app.operation_hash(&w.domain, OrderOperation::Close));
    w.send(&requester, vec![cancel.into()]).unwrap();
    let e = rejected(&mut w, |w| w.send(&requester, vec![orders.into()]));
    assert!(matches!(e, ProtocolError::ZeroVolume { app, .. } if app.is_zero()), "{e}");
}

struct ManageAppOrderBuilder;
impl ManageAppOrderBuilder {
    fn cancel(_w: &World, orders: &MatchOrders) -> xiebao_types::tx::ManageAppOrder {
        xiebao_types::tx::ManageAppOrder {
            order: orders.app.clone(),
            operation: OrderOperation::Close,
            sign: Bytes::new(),
        }
    }
}

#[test]
fn cancel_by_a_stranger_is_refused() {
    let mut w = world();
    let orders = w.orders(&DealSpec::default());
    let mallory = SecretKey::from_label("mallory");
    let cancel = ManageAppOrderBuilder::cancel(&w, &orders);
    let e = rejected(&mut w, |w| w.send(&mallory, vec![cancel.into()]));
    assert!(matches!(e, ProtocolError::OperationNotAuthorized { .. }), "{e}");
}

#[test]
fn requester_without_funds_gets_the_missing_amount() {
    let mut w = World::new(1, Nrlc::rlc(3), PoolPolicy::default(), Nrlc::rlc(1));
    let orders = w.orders(&DealSpec::default());
    let requester = w.actors.requester.clone();
    let e = rejected(&mut w, |w| w.send(&requester, vec![orders.into()]));
    assert_eq!(
        e,
        ProtocolError::InsufficientBalance {
            account: requester.address(),
            available: Nrlc::rlc(3),
            needed: Nrlc::rlc(5),
            missing: Nrlc::rlc(2),
            purpose: "the requester's payment for the deal (price per task × volume)",
        }
    );
}

#[test]
fn partial_fills_give_consecutive_bot_ranges() {
    let mut w = world();
    let mut orders = w.orders(&DealSpec { volume: 100, ..DealSpec::default() });
    orders.workerpool.volume = U256::from(40);
    resign(&w, &mut orders);
    let requester = w.actors.requester.clone();
    let events = w.send(&requester, vec![orders.clone().into()]).unwrap();
    let deal1 = events.iter().find_map(|e| match e {
        Event::OrdersMatched { deal, volume, .. } => Some((*deal, *volume)),
        _ => None,
    });
    let (deal1, volume1) = deal1.unwrap();
    assert_eq!(volume1, 40);
    // A second pool order serves the rest: botFirst = 40.
    let mut second = orders.clone();
    second.workerpool.salt = B256::repeat_byte(0x42);
    second.workerpool.volume = U256::from(1000);
    resign(&w, &mut second);
    w.send(&requester, vec![second.into()]).unwrap();
    let deals: Vec<_> = w.state.deals().values().map(|d| (d.bot_first, d.bot_size)).collect();
    assert!(
        deals.contains(&(U256::ZERO, 40)) && deals.contains(&(U256::from(40), 60)),
        "{deals:?}"
    );
    assert_eq!(w.state.deals()[&deal1].bot_size, 40);
    // Index 40 belongs to the second deal, not the first.
    let e = rejected(&mut w, |w| w.initialize(&deal1, [40]).map(|_| Vec::new()));
    assert!(matches!(e, ProtocolError::TaskIndexOutOfRange { .. }), "{e}");
    check_invariants(&w);
}
