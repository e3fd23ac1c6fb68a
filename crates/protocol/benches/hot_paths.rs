//! Criterion micro-benchmarks of the protocol's hot paths: a batch of trust-1 task
//! lifecycles through `apply`, recovering a batch's signers, an order's EIP-712 hash, the
//! whole-state digest. `cargo bench -p xiebao-protocol`; whole-system figures come from
//! `xiebao bench`.

use alloy_primitives::{B256, U256};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use xiebao_protocol::testkit::{DealSpec, World};
use xiebao_protocol::{VerifiedTx, apply};
use xiebao_types::Nrlc;
use xiebao_types::order::SignedOrder as _;
use xiebao_types::tx::{Call, Initialize, PoolPolicy};

const BATCH: u64 = 500;

/// A world with a deal of `BATCH` tasks and the two transactions (initialize, then
/// contributeAndFinalize) that settle them all.
fn batch() -> (World, VerifiedTx, VerifiedTx) {
    let mut world =
        World::new(1, Nrlc::rlc(1_000_000_000), PoolPolicy::default(), Nrlc::rlc(1_000));
    let deal = world.deal(&DealSpec { volume: BATCH, ..DealSpec::default() }).expect("deal");
    let first = world.state.deals()[&deal].bot_first;
    let owner = world.actors.pool_owner.clone();
    let worker = world.actors.workers[0].clone();
    let calls: Vec<Call> = (0..BATCH)
        .map(|i| Initialize { deal_id: deal, idx: first + U256::from(i) }.into())
        .collect();
    let init = world.sign(&owner, calls);
    let mut shadow = world.clone();
    apply(&mut shadow.state, &init, &shadow.block).expect("initialize");
    let calls: Vec<Call> = (0..BATCH)
        .map(|i| {
            let task = world.task_id(&deal, i);
            shadow.contribute_and_finalize_call(0, &task, &B256::repeat_byte(0x60))
        })
        .collect();
    let settle = shadow.sign(&worker, calls);
    (world, init, settle)
}

fn lifecycles(c: &mut Criterion) {
    let (world, init, settle) = batch();
    let mut group = c.benchmark_group("protocol");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("trust1_lifecycles_500", |b| {
        b.iter_batched(
            || world.clone(),
            |mut w| {
                apply(&mut w.state, &init, &w.block).expect("initialize");
                apply(&mut w.state, &settle, &w.block).expect("settle");
                w.state.take_changes()
            },
            BatchSize::LargeInput,
        )
    });
    // As a node runs them: the initialization and the settlement in two blocks, each block's
    // change set (and so its state root) taken at its end.
    group.bench_function("trust1_lifecycles_500_two_blocks", |b| {
        b.iter_batched(
            || world.clone(),
            |mut w| {
                apply(&mut w.state, &init, &w.block).expect("initialize");
                let first = w.state.take_changes();
                apply(&mut w.state, &settle, &w.block).expect("settle");
                (first, w.state.take_changes())
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("recover_500_authorizations", |b| {
        let signed = settle.signed();
        b.iter(|| VerifiedTx::new(signed.clone(), &world.domain).expect("valid"))
    });
    group.finish();
}

fn hashing(c: &mut Criterion) {
    let mut world =
        World::new(1, Nrlc::rlc(1_000_000_000), PoolPolicy::default(), Nrlc::rlc(1_000));
    let orders = world.orders(&DealSpec::default());
    let domain = world.domain;
    c.bench_function("order_eip712_hash", |b| b.iter(|| orders.request.hash(&domain)));
    let (mut grown, init, settle) = batch();
    apply(&mut grown.state, &init, &grown.block).expect("initialize");
    apply(&mut grown.state, &settle, &grown.block).expect("settle");
    c.bench_function("state_digest_500_tasks", |b| b.iter(|| grown.state.digest()));
}

criterion_group!(benches, lifecycles, hashing);
criterion_main!(benches);
