//! Order management (presign, cancel) and matchOrders with every check of PoCo v5.

use alloy_primitives::{Address, B256, U256};
use xiebao_types::ids;
use xiebao_types::order::{OrderKind, OrderOperation};
use xiebao_types::tx::{
    ManageAppOrder, ManageDatasetOrder, ManageRequestOrder, ManageWorkerpoolOrder, MatchOrders,
};
use xiebao_types::{Nrlc, Tag};

use crate::ctx::Ctx;
use crate::error::{EntryKind, ProtocolError};
use crate::event::Event;
use crate::model::{Deal, Resource, Timer};
use crate::registry::restriction_allows;
use crate::verify::{CallSigners, Recovered};
use crate::{DEAL_VOLUME_MAX, FINAL_DEADLINE_RATIO};

fn manage(
    ctx: &mut Ctx<'_>,
    kind: OrderKind,
    owner: Address,
    volume: U256,
    operation: OrderOperation,
    signers: &CallSigners,
) -> Result<(), ProtocolError> {
    let CallSigners::Manage { order_hash, operation_signer } = signers else {
        unreachable!("manage calls carry manage signers")
    };
    if ctx.sender != owner {
        let reason = match operation_signer {
            None => format!("sender is {} and the call carries no signature", ctx.sender),
            Some(Ok(signer)) if *signer == owner => String::new(),
            Some(Ok(signer)) => format!("operation signed by {signer}"),
            Some(Err(error)) => error.to_string(),
        };
        if !reason.is_empty() {
            return Err(ProtocolError::OperationNotAuthorized { kind, owner, reason });
        }
    }
    match operation {
        OrderOperation::Sign => {
            ctx.state.put_presigned(*order_hash, owner);
            ctx.emit(Event::SignedOrder { hash: *order_hash });
        }
        OrderOperation::Close => {
            ctx.state.put_consumed(*order_hash, volume);
            ctx.emit(Event::ClosedOrder { hash: *order_hash });
        }
    }
    Ok(())
}

fn entry_owner(ctx: &Ctx<'_>, kind: EntryKind, address: Address) -> Result<Address, ProtocolError> {
    let owner = match kind {
        EntryKind::App => ctx.state.apps().get(&address).map(|e| e.owner),
        EntryKind::Dataset => ctx.state.datasets().get(&address).map(|e| e.owner),
        EntryKind::Workerpool => ctx.state.workerpools().get(&address).map(|e| e.owner),
        EntryKind::Group => ctx.state.groups().get(&address).map(|e| e.owner),
    };
    owner.ok_or(ProtocolError::UnknownEntry { kind, address })
}

pub(crate) fn manage_app_order(
    ctx: &mut Ctx<'_>,
    call: &ManageAppOrder,
    signers: &CallSigners,
) -> Result<(), ProtocolError> {
    let owner = entry_owner(ctx, EntryKind::App, call.order.app)?;
    manage(ctx, OrderKind::App, owner, call.order.volume, call.operation, signers)
}

pub(crate) fn manage_dataset_order(
    ctx: &mut Ctx<'_>,
    call: &ManageDatasetOrder,
    signers: &CallSigners,
) -> Result<(), ProtocolError> {
    let owner = entry_owner(ctx, EntryKind::Dataset, call.order.dataset)?;
    manage(ctx, OrderKind::Dataset, owner, call.order.volume, call.operation, signers)
}

pub(crate) fn manage_workerpool_order(
    ctx: &mut Ctx<'_>,
    call: &ManageWorkerpoolOrder,
    signers: &CallSigners,
) -> Result<(), ProtocolError> {
    let owner = entry_owner(ctx, EntryKind::Workerpool, call.order.workerpool)?;
    manage(ctx, OrderKind::Workerpool, owner, call.order.volume, call.operation, signers)
}

pub(crate) fn manage_request_order(
    ctx: &mut Ctx<'_>,
    call: &ManageRequestOrder,
    signers: &CallSigners,
) -> Result<(), ProtocolError> {
    let owner = call.order.requester;
    manage(ctx, OrderKind::Request, owner, call.order.volume, call.operation, signers)
}

/// Presigned by `owner`, or signed by `owner`.
fn check_signature(
    ctx: &Ctx<'_>,
    code: &'static str,
    kind: OrderKind,
    owner: Address,
    hash: B256,
    signer: &Recovered,
) -> Result<(), ProtocolError> {
    if !owner.is_zero() && ctx.state.presigned().get(&hash) == Some(&owner) {
        return Ok(());
    }
    match signer {
        Ok(signer) if *signer == owner => Ok(()),
        Ok(signer) => Err(ProtocolError::OrderNotSigned {
            code,
            kind,
            hash,
            owner,
            reason: format!("signature recovers to {signer}"),
        }),
        Err(error) => Err(ProtocolError::OrderNotSigned {
            code,
            kind,
            hash,
            owner,
            reason: format!("not presigned, and {error}"),
        }),
    }
}

fn restricted(
    ctx: &Ctx<'_>,
    code: &'static str,
    order: OrderKind,
    field: &'static str,
    restriction: Address,
    candidate: Address,
) -> Result<(), ProtocolError> {
    if restriction_allows(ctx, restriction, candidate) {
        Ok(())
    } else {
        Err(ProtocolError::Restricted { code, order, field, restriction, candidate })
    }
}

fn price(value: U256) -> Result<Nrlc, ProtocolError> {
    Ok(Nrlc::from_u256(value)?)
}

/// Matches four orders into a deal; returns the deal id.
pub(crate) fn match_orders(
    ctx: &mut Ctx<'_>,
    call: &MatchOrders,
    signers: &CallSigners,
) -> Result<B256, ProtocolError> {
    let CallSigners::Match { hashes, signers } = signers else {
        unreachable!("matchOrders carries match signers")
    };
    let [app_hash, dataset_hash, workerpool_hash, request_hash] = *hashes;
    let (app, dataset, pool, request) = (&call.app, &call.dataset, &call.workerpool, &call.request);
    let has_dataset = !dataset.dataset.is_zero();
    let category_count = ctx.state.globals().category_count;

    // 0x00 – 0x07: categories, trust, prices, tags.
    if request.category != pool.category {
        return Err(ProtocolError::CategoryMismatch {
            request: request.category,
            workerpool: pool.category,
        });
    }
    if request.category >= U256::from(category_count) {
        return Err(ProtocolError::CategoryUnknown {
            category: request.category,
            count: category_count,
        });
    }
    if request.trust > pool.trust {
        return Err(ProtocolError::TrustTooHigh { request: request.trust, workerpool: pool.trust });
    }
    if request.appmaxprice < app.appprice {
        return Err(ProtocolError::PriceAboveMax {
            code: "0x03",
            kind: OrderKind::App,
            price: app.appprice,
            max: request.appmaxprice,
        });
    }
    if request.datasetmaxprice < dataset.datasetprice {
        return Err(ProtocolError::PriceAboveMax {
            code: "0x04",
            kind: OrderKind::Dataset,
            price: dataset.datasetprice,
            max: request.datasetmaxprice,
        });
    }
    if request.workerpoolmaxprice < pool.workerpoolprice {
        return Err(ProtocolError::PriceAboveMax {
            code: "0x05",
            kind: OrderKind::Workerpool,
            price: pool.workerpoolprice,
            max: request.workerpoolmaxprice,
        });
    }
    let required: Tag = app.tag.union(dataset.tag).union(request.tag);
    if !required.is_subset_of(pool.tag) {
        return Err(ProtocolError::TagNotOffered { required, offered: pool.tag });
    }
    if required.is_tee() != app.tag.is_tee() {
        return Err(ProtocolError::TeeIncoherent { required, app: app.tag });
    }

    // 0x10 – 0x1b: resources and restrictions.
    if request.app != app.app {
        return Err(ProtocolError::ResourceMismatch {
            code: "0x10",
            kind: OrderKind::App,
            requested: request.app,
            offered: app.app,
        });
    }
    if request.dataset != dataset.dataset {
        return Err(ProtocolError::ResourceMismatch {
            code: "0x11",
            kind: OrderKind::Dataset,
            requested: request.dataset,
            offered: dataset.dataset,
        });
    }
    use OrderKind::{App, Dataset, Request, Workerpool};
    restricted(ctx, "0x12", Request, "workerpool", request.workerpool, pool.workerpool)?;
    restricted(ctx, "0x13", App, "datasetrestrict", app.datasetrestrict, dataset.dataset)?;
    restricted(ctx, "0x14", App, "workerpoolrestrict", app.workerpoolrestrict, pool.workerpool)?;
    restricted(ctx, "0x15", App, "requesterrestrict", app.requesterrestrict, request.requester)?;
    restricted(ctx, "0x16", Dataset, "apprestrict", dataset.apprestrict, app.app)?;
    restricted(
        ctx,
        "0x17",
        Dataset,
        "workerpoolrestrict",
        dataset.workerpoolrestrict,
        pool.workerpool,
    )?;
    restricted(
        ctx,
        "0x18",
        Dataset,
        "requesterrestrict",
        dataset.requesterrestrict,
        request.requester,
    )?;
    restricted(ctx, "0x19", Workerpool, "apprestrict", pool.apprestrict, app.app)?;
    restricted(ctx, "0x1a", Workerpool, "datasetrestrict", pool.datasetrestrict, dataset.dataset)?;
    restricted(
        ctx,
        "0x1b",
        Workerpool,
        "requesterrestrict",
        pool.requesterrestrict,
        request.requester,
    )?;

    // 0x20 – 0x50: registration and signatures.
    let app_entry =
        ctx.state.apps().get(&app.app).cloned().ok_or(ProtocolError::NotRegistered {
            code: "0x20",
            kind: EntryKind::App,
            address: app.app,
        })?;
    check_signature(ctx, "0x21", App, app_entry.owner, app_hash, &signers[0])?;
    let dataset_owner = if has_dataset {
        let entry = ctx.state.datasets().get(&dataset.dataset).cloned().ok_or(
            ProtocolError::NotRegistered {
                code: "0x30",
                kind: EntryKind::Dataset,
                address: dataset.dataset,
            },
        )?;
        check_signature(ctx, "0x31", Dataset, entry.owner, dataset_hash, &signers[1])?;
        entry.owner
    } else {
        Address::ZERO
    };
    let pool_entry = ctx.state.workerpools().get(&pool.workerpool).cloned().ok_or(
        ProtocolError::NotRegistered {
            code: "0x40",
            kind: EntryKind::Workerpool,
            address: pool.workerpool,
        },
    )?;
    check_signature(ctx, "0x41", Workerpool, pool_entry.owner, workerpool_hash, &signers[2])?;
    check_signature(ctx, "0x50", Request, request.requester, request_hash, &signers[3])?;

    // 0x60: volume.
    let remaining =
        |order_volume: U256, hash: &B256| order_volume.saturating_sub(ctx.state.consumed_of(hash));
    let app_remaining = remaining(app.volume, &app_hash);
    let dataset_remaining = has_dataset.then(|| remaining(dataset.volume, &dataset_hash));
    let pool_remaining = remaining(pool.volume, &workerpool_hash);
    let request_consumed = ctx.state.consumed_of(&request_hash);
    let request_remaining = request.volume.saturating_sub(request_consumed);
    let volume = app_remaining
        .min(dataset_remaining.unwrap_or(U256::MAX))
        .min(pool_remaining)
        .min(request_remaining)
        .min(U256::from(DEAL_VOLUME_MAX));
    if volume.is_zero() {
        return Err(ProtocolError::ZeroVolume {
            app: app_remaining,
            dataset: dataset_remaining.map_or_else(|| "-".to_owned(), |v| v.to_string()),
            workerpool: pool_remaining,
            request: request_remaining,
        });
    }
    let volume_u64 = u64::try_from(volume).expect("volume ≤ DEAL_VOLUME_MAX");

    // Prices are the asks; the deal freezes them.
    let app_price = price(app.appprice)?;
    let dataset_price = if has_dataset { price(dataset.datasetprice)? } else { Nrlc::ZERO };
    let pool_price = price(pool.workerpoolprice)?;
    let task_price = app_price.checked_add(dataset_price)?.checked_add(pool_price)?;
    let pool_stake = pool_price.mul_div(crate::WORKERPOOL_STAKE_RATIO, 100);
    let category = u64::try_from(request.category).expect("category < category_count");
    let time_ref_s = ctx.state.categories()[&category].work_clock_time_ref_s;

    let deal_id = ids::deal_id(&request_hash, request_consumed);
    let now = ctx.now();
    let deal = Deal {
        app: Resource { pointer: app.app, owner: app_entry.owner, price: app_price },
        dataset: Resource { pointer: dataset.dataset, owner: dataset_owner, price: dataset_price },
        workerpool: Resource {
            pointer: pool.workerpool,
            owner: pool_entry.owner,
            price: pool_price,
        },
        trust: u64::try_from(request.trust.max(U256::from(1))).unwrap_or(u64::MAX),
        category,
        tag: required,
        requester: request.requester,
        beneficiary: request.beneficiary,
        callback: request.callback,
        params: request.params.clone(),
        start_time: now,
        bot_first: request_consumed,
        bot_size: volume_u64,
        worker_stake: pool_price.mul_div(u128::from(pool_entry.policy.worker_stake_ratio), 100),
        scheduler_reward_ratio: pool_entry.policy.scheduler_reward_ratio,
        request_hash,
        time_ref_s,
        initialized: 0,
        completed: 0,
        failed: 0,
        expired: false,
    };

    // Consume volume, lock the requester's payment and the pool's stake.
    let consume = |ctx: &mut Ctx<'_>, hash: B256| {
        let consumed = ctx.state.consumed_of(&hash) + volume;
        ctx.state.put_consumed(hash, consumed);
        ctx.emit(Event::OrderConsumed { hash, consumed });
    };
    consume(ctx, app_hash);
    if has_dataset {
        consume(ctx, dataset_hash);
    }
    consume(ctx, workerpool_hash);
    consume(ctx, request_hash);
    ctx.lock(
        request.requester,
        task_price.checked_mul(u128::from(volume_u64))?,
        "the requester's payment for the deal (price per task × volume)",
    )?;
    ctx.lock(
        pool_entry.owner,
        pool_stake.checked_mul(u128::from(volume_u64))?,
        "the workerpool owner's stake for the deal (30% of the pool price × volume)",
    )?;

    let final_deadline = now + FINAL_DEADLINE_RATIO * time_ref_s;
    ctx.state.put_timer((final_deadline, Timer::DealExpiry(deal_id)), ());
    ctx.state.put_deal(deal_id, deal);
    ctx.emit(Event::SchedulerNotice { workerpool: pool.workerpool, deal: deal_id });
    ctx.emit(Event::OrdersMatched {
        deal: deal_id,
        app_hash,
        dataset_hash: if has_dataset { dataset_hash } else { B256::ZERO },
        workerpool_hash,
        request_hash,
        volume: volume_u64,
    });
    Ok(deal_id)
}
