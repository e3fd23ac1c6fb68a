//! Registries (apps, datasets, workerpools, groups), categories and governance.

use alloy_primitives::{Address, B256, keccak256};
use alloy_rlp::Encodable;
use xiebao_types::tx::{
    AddValidator, ChangePoolPolicy, CreateApp, CreateCategory, CreateDataset, CreateGroup,
    CreateWorkerpool, PoolPolicy, RemoveValidator, SetGroupMember, SetTeeBroker, TransferAsset,
};

use crate::ctx::Ctx;
use crate::error::{EntryKind, ProtocolError};
use crate::event::Event;
use crate::model::{App, Category, Dataset, Globals, Group, Validator, Workerpool};

/// The address of a new entry: the last 20 bytes of
/// `keccak256(domain ‖ owner ‖ keccak256(rlp(arguments)))`, so the same arguments and owner
/// always give the same address (and cannot be registered twice).
fn entry_address(domain: &[u8], owner: &Address, arguments: &impl Encodable) -> Address {
    let mut args = Vec::new();
    arguments.encode(&mut args);
    let mut buf = Vec::with_capacity(domain.len() + 52);
    buf.extend_from_slice(domain);
    buf.extend_from_slice(owner.as_slice());
    buf.extend_from_slice(keccak256(&args).as_slice());
    Address::from_slice(&keccak256(&buf)[12..])
}

/// The address `CreateApp` gives.
pub fn app_address(call: &CreateApp) -> Address {
    entry_address(b"_XIEBAO_PROTOCOL_APP", &call.owner, call)
}

/// The address `CreateDataset` gives.
pub fn dataset_address(call: &CreateDataset) -> Address {
    entry_address(b"_XIEBAO_PROTOCOL_DATASET", &call.owner, call)
}

/// The address `CreateWorkerpool` gives.
pub fn workerpool_address(call: &CreateWorkerpool) -> Address {
    entry_address(b"_XIEBAO_PROTOCOL_WORKERPOOL", &call.owner, call)
}

/// The address `CreateGroup` gives when sent by `owner`.
pub fn group_address(owner: &Address, salt: &B256) -> Address {
    entry_address(b"_XIEBAO_PROTOCOL_GROUP", owner, salt)
}

fn ensure_new(ctx: &Ctx<'_>, kind: EntryKind, address: Address) -> Result<(), ProtocolError> {
    let state = &ctx.state;
    let exists = state.apps().contains_key(&address)
        || state.datasets().contains_key(&address)
        || state.workerpools().contains_key(&address)
        || state.groups().contains_key(&address);
    if exists {
        return Err(ProtocolError::AlreadyRegistered { kind, address });
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), ProtocolError> {
    if name.len() > 256 {
        return Err(ProtocolError::InvalidValue {
            rule: "names and descriptions must be at most 256 bytes",
            value: format!("{} bytes", name.len()),
        });
    }
    Ok(())
}

pub(crate) fn create_app(ctx: &mut Ctx<'_>, call: &CreateApp) -> Result<(), ProtocolError> {
    check_name(&call.name)?;
    let address = app_address(call);
    ensure_new(ctx, EntryKind::App, address)?;
    ctx.state.put_app(
        address,
        App {
            owner: call.owner,
            name: call.name.clone(),
            app_type: call.app_type,
            multiaddr: call.multiaddr.clone(),
            checksum: call.checksum,
            mrenclave: call.mrenclave.clone(),
        },
    );
    ctx.emit(Event::Registered { entry: address, owner: call.owner, kind: EntryKind::App });
    Ok(())
}

pub(crate) fn create_dataset(ctx: &mut Ctx<'_>, call: &CreateDataset) -> Result<(), ProtocolError> {
    check_name(&call.name)?;
    let address = dataset_address(call);
    ensure_new(ctx, EntryKind::Dataset, address)?;
    ctx.state.put_dataset(
        address,
        Dataset {
            owner: call.owner,
            name: call.name.clone(),
            multiaddr: call.multiaddr.clone(),
            checksum: call.checksum,
        },
    );
    ctx.emit(Event::Registered { entry: address, owner: call.owner, kind: EntryKind::Dataset });
    Ok(())
}

fn check_policy(policy: &PoolPolicy) -> Result<(), ProtocolError> {
    if policy.worker_stake_ratio > 100 {
        return Err(ProtocolError::InvalidValue {
            rule: "worker stake ratio must be ≤ 100 (percent)",
            value: policy.worker_stake_ratio.to_string(),
        });
    }
    if policy.scheduler_reward_ratio > 100 {
        return Err(ProtocolError::InvalidValue {
            rule: "scheduler reward ratio must be ≤ 100 (percent)",
            value: policy.scheduler_reward_ratio.to_string(),
        });
    }
    const UNBONDING_DELAY_MAX_S: u64 = 365 * 24 * 3600;
    if policy.unbonding_delay_s > UNBONDING_DELAY_MAX_S {
        return Err(ProtocolError::InvalidValue {
            rule: "unbonding delay must be at most one year (31536000 s)",
            value: policy.unbonding_delay_s.to_string(),
        });
    }
    Ok(())
}

pub(crate) fn create_workerpool(
    ctx: &mut Ctx<'_>,
    call: &CreateWorkerpool,
) -> Result<(), ProtocolError> {
    check_name(&call.description)?;
    check_policy(&call.policy)?;
    let address = workerpool_address(call);
    ensure_new(ctx, EntryKind::Workerpool, address)?;
    ctx.state.put_workerpool(
        address,
        Workerpool {
            owner: call.owner,
            description: call.description.clone(),
            policy: call.policy.clone(),
        },
    );
    ctx.emit(Event::Registered { entry: address, owner: call.owner, kind: EntryKind::Workerpool });
    Ok(())
}

fn check_owner(
    ctx: &Ctx<'_>,
    kind: EntryKind,
    entry: Address,
    owner: Address,
    action: &'static str,
) -> Result<(), ProtocolError> {
    if owner != ctx.sender {
        return Err(ProtocolError::NotOwner { kind, entry, owner, sender: ctx.sender, action });
    }
    Ok(())
}

pub(crate) fn transfer_asset(ctx: &mut Ctx<'_>, call: &TransferAsset) -> Result<(), ProtocolError> {
    let asset = call.asset;
    if call.to.is_zero() {
        return Err(ProtocolError::InvalidValue {
            rule: "an entry cannot be transferred to the zero address",
            value: call.to.to_string(),
        });
    }
    let from;
    if let Some(mut app) = ctx.state.apps().get(&asset).cloned() {
        check_owner(ctx, EntryKind::App, asset, app.owner, "transfer")?;
        from = app.owner;
        app.owner = call.to;
        ctx.state.put_app(asset, app);
    } else if let Some(mut dataset) = ctx.state.datasets().get(&asset).cloned() {
        check_owner(ctx, EntryKind::Dataset, asset, dataset.owner, "transfer")?;
        from = dataset.owner;
        dataset.owner = call.to;
        ctx.state.put_dataset(asset, dataset);
    } else if let Some(mut pool) = ctx.state.workerpools().get(&asset).cloned() {
        check_owner(ctx, EntryKind::Workerpool, asset, pool.owner, "transfer")?;
        from = pool.owner;
        pool.owner = call.to;
        ctx.state.put_workerpool(asset, pool);
    } else if let Some(mut group) = ctx.state.groups().get(&asset).cloned() {
        check_owner(ctx, EntryKind::Group, asset, group.owner, "transfer")?;
        from = group.owner;
        group.owner = call.to;
        ctx.state.put_group(asset, group);
    } else {
        return Err(ProtocolError::UnknownAsset { address: asset });
    }
    ctx.emit(Event::OwnershipTransferred { entry: asset, from, to: call.to });
    Ok(())
}

pub(crate) fn change_pool_policy(
    ctx: &mut Ctx<'_>,
    call: &ChangePoolPolicy,
) -> Result<(), ProtocolError> {
    let mut pool = ctx.state.workerpools().get(&call.workerpool).cloned().ok_or(
        ProtocolError::UnknownEntry { kind: EntryKind::Workerpool, address: call.workerpool },
    )?;
    check_owner(ctx, EntryKind::Workerpool, call.workerpool, pool.owner, "change the policy of")?;
    check_policy(&call.policy)?;
    pool.policy = call.policy.clone();
    ctx.state.put_workerpool(call.workerpool, pool);
    ctx.emit(Event::PolicyUpdate { workerpool: call.workerpool });
    Ok(())
}

pub(crate) fn check_authority(
    ctx: &Ctx<'_>,
    action: &'static str,
) -> Result<Globals, ProtocolError> {
    let globals = ctx.state.globals().clone();
    if ctx.sender != globals.authority {
        return Err(ProtocolError::NotAuthority {
            authority: globals.authority,
            sender: ctx.sender,
            action,
        });
    }
    Ok(globals)
}

pub(crate) fn create_category(
    ctx: &mut Ctx<'_>,
    call: &CreateCategory,
) -> Result<(), ProtocolError> {
    let mut globals = check_authority(ctx, "create categories")?;
    check_name(&call.name)?;
    check_name(&call.description)?;
    // Deadlines reach start + 10·T: keep them far from overflowing a u64 timestamp.
    if call.work_clock_time_ref_s == 0 || call.work_clock_time_ref_s > 1 << 32 {
        return Err(ProtocolError::InvalidValue {
            rule: "a category's work clock T must be between 1 and 2^32 seconds",
            value: call.work_clock_time_ref_s.to_string(),
        });
    }
    let id = globals.category_count;
    ctx.state.put_category(
        id,
        Category {
            name: call.name.clone(),
            description: call.description.clone(),
            work_clock_time_ref_s: call.work_clock_time_ref_s,
        },
    );
    globals.category_count += 1;
    ctx.state.set_globals(globals);
    ctx.emit(Event::CreateCategory {
        category: id,
        work_clock_time_ref_s: call.work_clock_time_ref_s,
    });
    Ok(())
}

pub(crate) fn set_tee_broker(ctx: &mut Ctx<'_>, call: &SetTeeBroker) -> Result<(), ProtocolError> {
    let mut globals = check_authority(ctx, "set the TEE broker")?;
    globals.tee_broker = call.broker;
    ctx.state.set_globals(globals);
    ctx.emit(Event::TeeBrokerSet { broker: call.broker });
    Ok(())
}

pub(crate) fn add_validator(ctx: &mut Ctx<'_>, call: &AddValidator) -> Result<(), ProtocolError> {
    check_authority(ctx, "add validators")?;
    if ctx.state.validators().contains_key(&call.address) {
        return Err(ProtocolError::InvalidValue {
            rule: "validator is already in the set",
            value: call.address.to_string(),
        });
    }
    if ctx.state.validators().values().any(|v| v.consensus_key == call.consensus_key) {
        return Err(ProtocolError::InvalidValue {
            rule: "consensus key already belongs to a validator",
            value: call.consensus_key.to_string(),
        });
    }
    if !call.p2p.is_empty() && call.p2p.parse::<std::net::SocketAddr>().is_err() {
        return Err(ProtocolError::InvalidValue {
            rule: "p2p address must be IP:PORT",
            value: call.p2p.clone(),
        });
    }
    let validator = Validator { consensus_key: call.consensus_key, p2p: call.p2p.clone() };
    ctx.state.put_validator(call.address, validator);
    ctx.emit(Event::ValidatorSetChanged { validator: call.address, added: true });
    Ok(())
}

pub(crate) fn remove_validator(
    ctx: &mut Ctx<'_>,
    call: &RemoveValidator,
) -> Result<(), ProtocolError> {
    check_authority(ctx, "remove validators")?;
    if !ctx.state.validators().contains_key(&call.address) {
        return Err(ProtocolError::InvalidValue {
            rule: "validator is not in the set",
            value: call.address.to_string(),
        });
    }
    if ctx.state.validators().len() == 1 {
        return Err(ProtocolError::InvalidValue {
            rule: "the last validator cannot be removed",
            value: call.address.to_string(),
        });
    }
    ctx.state.remove_validator(&call.address);
    ctx.emit(Event::ValidatorSetChanged { validator: call.address, added: false });
    Ok(())
}

pub(crate) fn create_group(ctx: &mut Ctx<'_>, call: &CreateGroup) -> Result<(), ProtocolError> {
    let address = group_address(&ctx.sender, &call.salt);
    ensure_new(ctx, EntryKind::Group, address)?;
    ctx.state.put_group(address, Group { owner: ctx.sender, member_count: 0 });
    ctx.emit(Event::Registered { entry: address, owner: ctx.sender, kind: EntryKind::Group });
    Ok(())
}

pub(crate) fn set_group_member(
    ctx: &mut Ctx<'_>,
    call: &SetGroupMember,
) -> Result<(), ProtocolError> {
    let mut group = ctx
        .state
        .groups()
        .get(&call.group)
        .cloned()
        .ok_or(ProtocolError::UnknownEntry { kind: EntryKind::Group, address: call.group })?;
    check_owner(ctx, EntryKind::Group, call.group, group.owner, "change the members of")?;
    let key = (call.group, call.account);
    let is_member = ctx.state.group_members().contains_key(&key);
    match (is_member, call.member) {
        (false, true) => {
            ctx.state.put_group_member(key, ());
            group.member_count += 1;
        }
        (true, false) => {
            ctx.state.remove_group_member(&key);
            group.member_count -= 1;
        }
        _ => {
            return Err(ProtocolError::InvalidValue {
                rule: if call.member {
                    "account is already a member"
                } else {
                    "account is not a member"
                },
                value: call.account.to_string(),
            });
        }
    }
    ctx.state.put_group(call.group, group);
    ctx.emit(Event::GroupMemberSet {
        group: call.group,
        account: call.account,
        member: call.member,
    });
    Ok(())
}

/// PoCo's identity check: a restriction allows `candidate` if it is zero, equal to it, or a
/// group it is a member of.
pub(crate) fn restriction_allows(ctx: &Ctx<'_>, restriction: Address, candidate: Address) -> bool {
    restriction.is_zero()
        || restriction == candidate
        || ctx.state.group_members().contains_key(&(restriction, candidate))
}
