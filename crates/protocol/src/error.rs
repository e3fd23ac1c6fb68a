//! Every way a transaction can be rejected, each naming the rule and the values involved.

use alloy_primitives::{Address, B256, U256};
use xiebao_types::{AmountError, Nrlc, SignatureError, Tag, Timestamp, order::OrderKind};

use crate::model::TaskStatus;

/// What kind of registry entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// An app.
    App,
    /// A dataset.
    Dataset,
    /// A workerpool.
    Workerpool,
    /// A restriction group.
    Group,
}

impl std::fmt::Display for EntryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::App => "app",
            Self::Dataset => "dataset",
            Self::Workerpool => "workerpool",
            Self::Group => "group",
        })
    }
}

/// A transaction was rejected; the state is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The transaction is for another chain.
    #[error("transaction is for chain {got}, this chain is {expected}")]
    WrongChain {
        /// This chain's id.
        expected: u64,
        /// The id in the transaction.
        got: u64,
    },
    /// The nonce is not the sender's next one.
    #[error("nonce {got} of {sender} is not its next nonce {expected}")]
    BadNonce {
        /// The sender.
        sender: Address,
        /// The next nonce.
        expected: u64,
        /// The nonce given.
        got: u64,
    },
    /// The transaction's own signature is unusable.
    #[error("transaction signature: {0}")]
    TxSignature(SignatureError),
    /// One call of a batch failed; the whole transaction is rejected.
    #[error("call #{index} ({call}) failed: {source}")]
    Call {
        /// Position in the batch.
        index: usize,
        /// The call's name.
        call: &'static str,
        /// Why.
        source: Box<ProtocolError>,
    },
    /// Not enough free balance.
    #[error(
        "{account} has {available} nRLC free, {needed} nRLC needed ({purpose}); missing {missing} nRLC"
    )]
    InsufficientBalance {
        /// The account.
        account: Address,
        /// What it has.
        available: Nrlc,
        /// What is needed.
        needed: Nrlc,
        /// The shortfall.
        missing: Nrlc,
        /// What the money was for.
        purpose: &'static str,
    },
    /// Arithmetic would overflow.
    #[error("amount arithmetic: {0}")]
    Amount(#[from] AmountError),
    /// A governance call by someone other than the authority.
    #[error("only the authority {authority} may {action}; sender is {sender}")]
    NotAuthority {
        /// The authority.
        authority: Address,
        /// The sender.
        sender: Address,
        /// What was attempted.
        action: &'static str,
    },
    /// An owner-only call by someone else.
    #[error("only the owner {owner} of {kind} {entry} may {action}; sender is {sender}")]
    NotOwner {
        /// Kind of entry.
        kind: EntryKind,
        /// The entry.
        entry: Address,
        /// Its owner.
        owner: Address,
        /// The sender.
        sender: Address,
        /// What was attempted.
        action: &'static str,
    },
    /// No such registry entry.
    #[error("{kind} {address} is not registered")]
    UnknownEntry {
        /// Kind of entry.
        kind: EntryKind,
        /// The address.
        address: Address,
    },
    /// No registry entry of any kind at that address.
    #[error("no app, dataset, workerpool or group is registered at {address}")]
    UnknownAsset {
        /// The address.
        address: Address,
    },
    /// The entry already exists (same arguments and owner).
    #[error("{kind} {address} is already registered (same owner and arguments)")]
    AlreadyRegistered {
        /// Kind of entry.
        kind: EntryKind,
        /// The address.
        address: Address,
    },
    /// A bridge call before the authority set the bridge.
    #[error("the bridge is not set on this chain (the authority sets it with SetBridge)")]
    BridgeNotSet,
    /// A validator-only call by another account.
    #[error("only validators may {action}; {sender} is not one")]
    NotValidator {
        /// The sender.
        sender: Address,
        /// What was attempted.
        action: &'static str,
    },
    /// A bridge transfer above the per-transfer limit.
    #[error("{amount} nRLC is over the bridge's per-transfer limit of {max} nRLC")]
    OverTransferLimit {
        /// Amount asked.
        amount: Nrlc,
        /// The limit.
        max: Nrlc,
    },
    /// A validator attested a deposit twice.
    #[error("validator {validator} already attested deposit {id}")]
    AlreadyAttested {
        /// The deposit id.
        id: u64,
        /// The validator.
        validator: Address,
    },
    /// A deposit attested with another recipient or amount than the one minted.
    #[error(
        "deposit {id} was minted as {minted_amount} nRLC to {minted_recipient}; the attestation says {amount} nRLC to {recipient}"
    )]
    ConflictingDeposit {
        /// The deposit id.
        id: u64,
        /// Recipient minted.
        minted_recipient: Address,
        /// Amount minted.
        minted_amount: Nrlc,
        /// Recipient attested.
        recipient: Address,
        /// Amount attested.
        amount: Nrlc,
    },
    /// No such withdrawal.
    #[error("withdrawal {id} does not exist ({count} withdrawals so far)")]
    UnknownWithdrawal {
        /// The id.
        id: u64,
        /// How many exist.
        count: u64,
    },
    /// A release signature that is not the sender's signature of the withdrawal's digest.
    #[error(
        "the signature of withdrawal {id}'s release digest {digest} is not {validator}'s: {reason}"
    )]
    BadReleaseSignature {
        /// The withdrawal id.
        id: u64,
        /// The digest that must be signed.
        digest: B256,
        /// The validator that sent it.
        validator: Address,
        /// What recovery found.
        reason: String,
    },
    /// A validator signed a withdrawal twice.
    #[error("validator {validator} already signed withdrawal {id}")]
    AlreadySigned {
        /// The id.
        id: u64,
        /// The validator.
        validator: Address,
    },
    /// A value outside its allowed range.
    #[error("{rule}: got {value}")]
    InvalidValue {
        /// The rule broken, e.g. "worker stake ratio must be ≤ 100".
        rule: &'static str,
        /// The value given.
        value: String,
    },
    /// No such category.
    #[error("category {category} does not exist ({count} categories)")]
    UnknownCategory {
        /// The id.
        category: U256,
        /// How many exist.
        count: u64,
    },

    /// matchOrders 0x00.
    #[error(
        "matchOrders 0x00: request category {request} ≠ workerpool order category {workerpool}"
    )]
    CategoryMismatch {
        /// Request order category.
        request: U256,
        /// Workerpool order category.
        workerpool: U256,
    },
    /// matchOrders 0x01.
    #[error("matchOrders 0x01: category {category} does not exist ({count} categories)")]
    CategoryUnknown {
        /// The category.
        category: U256,
        /// How many exist.
        count: u64,
    },
    /// matchOrders 0x02.
    #[error("matchOrders 0x02: request trust {request} > workerpool order trust {workerpool}")]
    TrustTooHigh {
        /// Request trust.
        request: U256,
        /// Workerpool's maximum.
        workerpool: U256,
    },
    /// matchOrders 0x03 / 0x04 / 0x05.
    #[error("matchOrders {code}: {kind} price {price} nRLC > request's maximum {max} nRLC")]
    PriceAboveMax {
        /// 0x03, 0x04 or 0x05.
        code: &'static str,
        /// Which order's price.
        kind: OrderKind,
        /// The ask.
        price: U256,
        /// The bid's maximum.
        max: U256,
    },
    /// matchOrders 0x06.
    #[error(
        "matchOrders 0x06: workerpool order tag {offered} lacks required bits of {required} (app | dataset | request tags)"
    )]
    TagNotOffered {
        /// app tag | dataset tag | request tag.
        required: Tag,
        /// The pool's tag.
        offered: Tag,
    },
    /// matchOrders 0x07.
    #[error(
        "matchOrders 0x07: TEE is required (tag {required}) but the app order tag {app} has no TEE bit"
    )]
    TeeIncoherent {
        /// The combined requirement.
        required: Tag,
        /// The app order's tag.
        app: Tag,
    },
    /// matchOrders 0x10 / 0x11.
    #[error(
        "matchOrders {code}: request asks for {kind} {requested}, the {kind} order is for {offered}"
    )]
    ResourceMismatch {
        /// 0x10 or 0x11.
        code: &'static str,
        /// App or dataset.
        kind: OrderKind,
        /// In the request.
        requested: Address,
        /// In the other order.
        offered: Address,
    },
    /// matchOrders 0x12–0x1b.
    #[error(
        "matchOrders {code}: {order} order's {field} is {restriction}, which does not allow {candidate}"
    )]
    Restricted {
        /// 0x12…0x1b.
        code: &'static str,
        /// Whose restriction.
        order: OrderKind,
        /// Which field.
        field: &'static str,
        /// The restriction (an address or a group).
        restriction: Address,
        /// Who was refused.
        candidate: Address,
    },
    /// matchOrders 0x20 / 0x30 / 0x40.
    #[error("matchOrders {code}: {kind} {address} is not registered")]
    NotRegistered {
        /// 0x20, 0x30 or 0x40.
        code: &'static str,
        /// What kind.
        kind: EntryKind,
        /// The address.
        address: Address,
    },
    /// matchOrders 0x21 / 0x31 / 0x41 / 0x50.
    #[error(
        "matchOrders {code}: {kind} order {hash} is neither presigned nor signed by {owner}: {reason}"
    )]
    OrderNotSigned {
        /// 0x21, 0x31, 0x41 or 0x50.
        code: &'static str,
        /// Which order.
        kind: OrderKind,
        /// Its hash.
        hash: B256,
        /// Who must sign.
        owner: Address,
        /// What the signature gave.
        reason: String,
    },
    /// matchOrders 0x60.
    #[error(
        "matchOrders 0x60: deal volume is 0 (remaining: app {app}, dataset {dataset}, workerpool {workerpool}, request {request})"
    )]
    ZeroVolume {
        /// App order remaining.
        app: U256,
        /// Dataset order remaining (`-` when none).
        dataset: String,
        /// Workerpool order remaining.
        workerpool: U256,
        /// Request order remaining.
        request: U256,
    },
    /// Order management signature.
    #[error("{kind} order operation must be sent or signed by {owner}: {reason}")]
    OperationNotAuthorized {
        /// Which order.
        kind: OrderKind,
        /// Who must authorize.
        owner: Address,
        /// What the signature gave.
        reason: String,
    },

    /// No such deal.
    #[error("deal {deal} does not exist")]
    UnknownDeal {
        /// The id.
        deal: B256,
    },
    /// No such task.
    #[error("task {task} is not initialized")]
    UnknownTask {
        /// The id.
        task: B256,
    },
    /// Task index outside the deal.
    #[error("task index {idx} is outside deal {deal}'s range [{first}, {first}+{size})")]
    TaskIndexOutOfRange {
        /// The deal.
        deal: B256,
        /// The index given.
        idx: U256,
        /// botFirst.
        first: U256,
        /// botSize.
        size: u64,
    },
    /// Task initialized twice.
    #[error("task {task} is already initialized")]
    TaskAlreadyInitialized {
        /// The task.
        task: B256,
    },
    /// The deal's final deadline passed.
    #[error(
        "deal {deal} expired at block time {deadline} (now {now}); its tasks were failed and refunded"
    )]
    DealExpired {
        /// The deal.
        deal: B256,
        /// Its final deadline.
        deadline: Timestamp,
        /// Block time.
        now: Timestamp,
    },
    /// The task is not in a status the call accepts.
    #[error("cannot {action} task {task}: it is {status}, must be {expected}")]
    WrongTaskStatus {
        /// The task.
        task: B256,
        /// Its status.
        status: TaskStatus,
        /// What the call needs.
        expected: &'static str,
        /// The call.
        action: &'static str,
    },
    /// A deadline passed (`now ≥ deadline`).
    #[error("task {task}: {action} at block time {now} is past the {which} deadline {deadline}")]
    DeadlinePassed {
        /// The task.
        task: B256,
        /// Which deadline.
        which: &'static str,
        /// The call.
        action: &'static str,
        /// The deadline.
        deadline: Timestamp,
        /// Block time.
        now: Timestamp,
    },
    /// A deadline not yet reached (`now < deadline`).
    #[error("task {task}: cannot {action} before the {which} deadline {deadline} (now {now})")]
    DeadlineNotReached {
        /// The task.
        task: B256,
        /// Which deadline.
        which: &'static str,
        /// The call.
        action: &'static str,
        /// The deadline.
        deadline: Timestamp,
        /// Block time.
        now: Timestamp,
    },
    /// A second contribution from the same worker.
    #[error("worker {worker} already contributed to task {task}")]
    AlreadyContributed {
        /// The task.
        task: B256,
        /// The worker.
        worker: Address,
    },
    /// Too many contributions on one task.
    #[error("task {task} already has {count} contributions, the maximum")]
    TooManyContributions {
        /// The task.
        task: B256,
        /// The limit.
        count: usize,
    },
    /// A TEE task without enclave challenge.
    #[error(
        "task {task} requires TEE (deal tag {tag}): the contribution needs a non-zero enclave challenge"
    )]
    EnclaveChallengeRequired {
        /// The task.
        task: B256,
        /// The deal's tag.
        tag: Tag,
    },
    /// The authorization is not the pool owner's (or TEE broker's).
    #[error(
        "task {task}: authorization for worker {worker} is signed by {signer}, expected the workerpool owner {expected}"
    )]
    BadAuthorization {
        /// The task.
        task: B256,
        /// The worker.
        worker: Address,
        /// Who signed (or why no one).
        signer: String,
        /// Who must sign.
        expected: Address,
    },
    /// The enclave signature is not the challenge's.
    #[error(
        "task {task}: enclave signature is by {signer}, expected the enclave challenge {expected}"
    )]
    BadEnclaveSignature {
        /// The task.
        task: B256,
        /// Who signed (or why no one).
        signer: String,
        /// The challenge.
        expected: Address,
    },
    /// The worker is not an active member of the deal's pool.
    #[error(
        "worker {worker} is not an active member of workerpool {workerpool} ({detail}); join it with a stake first"
    )]
    NotMember {
        /// The worker.
        worker: Address,
        /// The pool.
        workerpool: Address,
        /// Why.
        detail: String,
    },
    /// The member's bonded stake cannot cover the contribution or the pool's minimum.
    #[error("worker {worker}: bonded stake {bonded} nRLC is below {needed} nRLC ({rule})")]
    StakeTooLow {
        /// The worker.
        worker: Address,
        /// Available bonded stake.
        bonded: Nrlc,
        /// Required.
        needed: Nrlc,
        /// Which rule.
        rule: &'static str,
    },
    /// The worker has no contribution to reveal.
    #[error("worker {worker} has no contribution on task {task}")]
    NoContribution {
        /// The task.
        task: B256,
        /// The worker.
        worker: Address,
    },
    /// The contribution is not a winning, unrevealed one.
    #[error("worker {worker} cannot reveal on task {task}: {reason}")]
    CannotReveal {
        /// The task.
        task: B256,
        /// The worker.
        worker: Address,
        /// Why.
        reason: String,
    },
    /// The revealed digest does not match the commitment.
    #[error("task {task}: digest {digest} does not match worker {worker}'s committed {what}")]
    RevealMismatch {
        /// The task.
        task: B256,
        /// The worker.
        worker: Address,
        /// The digest given.
        digest: B256,
        /// resultHash or resultSeal.
        what: &'static str,
    },
    /// Pool-owner-only call.
    #[error("only the workerpool owner {owner} may {action} task {task}; sender is {sender}")]
    NotPoolOwner {
        /// The task.
        task: B256,
        /// The pool owner of the deal.
        owner: Address,
        /// The sender.
        sender: Address,
        /// The call.
        action: &'static str,
    },
    /// Finalize before every winner revealed and before the reveal deadline.
    #[error(
        "task {task}: {reveals} of {winners} winners revealed; finalize needs all, or at least one after the reveal deadline {deadline} (now {now})"
    )]
    RevealsIncomplete {
        /// The task.
        task: B256,
        /// Reveals.
        reveals: u32,
        /// Winners.
        winners: u32,
        /// The reveal deadline.
        deadline: Timestamp,
        /// Block time.
        now: Timestamp,
    },
    /// Callback data does not hash to the digest.
    #[error(
        "task {task}: keccak256(results_callback) = {got} but the agreed digest is {digest} (deal callback {callback})"
    )]
    CallbackMismatch {
        /// The task.
        task: B256,
        /// The agreed digest.
        digest: B256,
        /// keccak of the data given.
        got: B256,
        /// The deal's callback address.
        callback: Address,
    },
    /// Reopen with reveals present.
    #[error("task {task} has {reveals} reveals; only a task with none can be reopened")]
    ReopenWithReveals {
        /// The task.
        task: B256,
        /// Reveals.
        reveals: u32,
    },
    /// contributeAndFinalize on a replicated deal or a contributed task.
    #[error("contributeAndFinalize on task {task}: {reason}")]
    SingleTxNotAllowed {
        /// The task.
        task: B256,
        /// Why.
        reason: String,
    },
    /// The consensus weight product no longer fits 256 bits.
    #[error("task {task}: consensus weight overflows 256 bits")]
    WeightOverflow {
        /// The task.
        task: B256,
    },
    /// The worker is in another pool.
    #[error(
        "worker {worker} is a member of workerpool {current}; leave it (and wait for the unbonding) before joining {requested}"
    )]
    MemberElsewhere {
        /// The worker.
        worker: Address,
        /// Its pool.
        current: Address,
        /// The pool asked.
        requested: Address,
    },
}

impl ProtocolError {
    /// The innermost error (unwrapping batch-call context).
    pub fn root(&self) -> &Self {
        match self {
            Self::Call { source, .. } => source.root(),
            other => other,
        }
    }
}
