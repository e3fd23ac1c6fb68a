//! What applying a transaction did, in PoCo's event vocabulary plus Xiebao's additions.

use alloy_primitives::{Address, B256, Bytes, U256};
use xiebao_types::{Nrlc, Timestamp};

/// Why a reward or seizure happened.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EscrowRef {
    /// A task's settlement.
    Task(B256),
    /// A deal (its never-initialized tasks at expiry).
    Deal(B256),
    /// The kitty share paid to a scheduler.
    Kitty(B256),
}

/// One thing a transaction or the end of a block did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Event {
    /// Free balance moved between accounts.
    Transfer {
        /// From.
        from: Address,
        /// To.
        to: Address,
        /// Amount.
        amount: Nrlc,
    },
    /// Free → frozen.
    Lock {
        /// Account.
        owner: Address,
        /// Amount.
        amount: Nrlc,
    },
    /// Frozen → free.
    Unlock {
        /// Account.
        owner: Address,
        /// Amount.
        amount: Nrlc,
    },
    /// Frozen value taken.
    Seize {
        /// Account.
        owner: Address,
        /// Amount.
        amount: Nrlc,
        /// Why.
        reference: EscrowRef,
    },
    /// Value given.
    Reward {
        /// Account.
        owner: Address,
        /// Amount.
        amount: Nrlc,
        /// Why.
        reference: EscrowRef,
    },
    /// An app, dataset, workerpool or group was created.
    Registered {
        /// The new entry.
        entry: Address,
        /// Its owner.
        owner: Address,
        /// App, dataset, workerpool or group.
        kind: crate::EntryKind,
    },
    /// An entry changed owner.
    OwnershipTransferred {
        /// The entry.
        entry: Address,
        /// Previous owner.
        from: Address,
        /// New owner.
        to: Address,
    },
    /// A workerpool's policies changed.
    PolicyUpdate {
        /// The pool.
        workerpool: Address,
    },
    /// A category was created.
    CreateCategory {
        /// Its id.
        category: u64,
        /// Its T.
        work_clock_time_ref_s: u64,
    },
    /// The TEE broker changed.
    TeeBrokerSet {
        /// The broker.
        broker: Address,
    },
    /// A validator was added or removed (effective from the next epoch).
    ValidatorSetChanged {
        /// The validator.
        validator: Address,
        /// Added (true) or removed.
        added: bool,
    },
    /// The last block of an epoch fixed the next epoch's validators.
    EpochValidatorsFixed {
        /// The epoch that starts with the next block.
        epoch: u64,
        /// Its validators, by address.
        validators: Vec<Address>,
    },
    /// A group member was added or removed.
    GroupMemberSet {
        /// The group.
        group: Address,
        /// The account.
        account: Address,
        /// Member afterwards?
        member: bool,
    },
    /// An order was presigned.
    SignedOrder {
        /// The order hash.
        hash: B256,
    },
    /// An order was cancelled.
    ClosedOrder {
        /// The order hash.
        hash: B256,
    },
    /// A deal for `workerpool`.
    SchedulerNotice {
        /// The pool.
        workerpool: Address,
        /// The deal.
        deal: B256,
    },
    /// Four orders matched.
    OrdersMatched {
        /// The deal.
        deal: B256,
        /// App order hash.
        app_hash: B256,
        /// Dataset order hash (zero when none).
        dataset_hash: B256,
        /// Workerpool order hash.
        workerpool_hash: B256,
        /// Request order hash.
        request_hash: B256,
        /// Number of tasks.
        volume: u64,
    },
    /// A task was initialized.
    TaskInitialize {
        /// The task.
        task: B256,
        /// The pool.
        workerpool: Address,
    },
    /// A contribution.
    TaskContribute {
        /// The task.
        task: B256,
        /// The worker.
        worker: Address,
        /// Its result hash.
        result_hash: B256,
    },
    /// Consensus reached.
    TaskConsensus {
        /// The task.
        task: B256,
        /// The winning result hash.
        consensus: B256,
        /// Reveals accepted until.
        reveal_deadline: Timestamp,
    },
    /// A reveal.
    TaskReveal {
        /// The task.
        task: B256,
        /// The worker.
        worker: Address,
        /// The digest.
        digest: B256,
    },
    /// A reopen.
    TaskReopen {
        /// The task.
        task: B256,
    },
    /// A task was finalized.
    TaskFinalize {
        /// The task.
        task: B256,
        /// The result link.
        results: Bytes,
    },
    /// A task failed and was refunded (claimed, or expired at the end of a block).
    TaskClaimed {
        /// The task.
        task: B256,
    },
    /// Never-initialized tasks of a deal were refunded at its final deadline.
    DealExpired {
        /// The deal.
        deal: B256,
        /// Number of never-initialized tasks refunded.
        uninitialized: u64,
    },
    /// A winner's score rose.
    AccurateContribution {
        /// The worker.
        worker: Address,
        /// The task.
        task: B256,
    },
    /// A loser's stake was slashed and score cut.
    FaultyContribution {
        /// The worker.
        worker: Address,
        /// The task.
        task: B256,
    },
    /// A worker bonded stake in a pool.
    PoolJoined {
        /// The worker.
        worker: Address,
        /// The pool.
        workerpool: Address,
        /// Amount added.
        stake: Nrlc,
    },
    /// A worker started leaving its pool.
    PoolLeaving {
        /// The worker.
        worker: Address,
        /// The pool.
        workerpool: Address,
        /// When its stake is released.
        release_at: Timestamp,
    },
    /// A leaving worker's stake was released.
    StakeReleased {
        /// The worker.
        worker: Address,
        /// The pool.
        workerpool: Address,
        /// Amount unlocked.
        amount: Nrlc,
    },
    /// Consumed volume of an order changed.
    OrderConsumed {
        /// The order hash.
        hash: B256,
        /// New consumed total.
        consumed: U256,
    },
    /// The authority set the bridge.
    BridgeSet {
        /// The mainchain's chain id.
        mainchain_id: u64,
        /// The bridge contract.
        contract: Address,
        /// Attestations needed to mint.
        threshold: u64,
        /// Largest transfer, nRLC.
        max_per_transfer: Nrlc,
    },
    /// A validator attested a mainchain deposit.
    DepositAttested {
        /// The contract's deposit id.
        id: u64,
        /// The validator.
        validator: Address,
        /// Recipient attested.
        recipient: Address,
        /// Amount attested.
        amount: Nrlc,
        /// Validators that attested this recipient and amount so far.
        attestations: u64,
    },
    /// A deposit reached the threshold and its RLC was minted.
    DepositMinted {
        /// The contract's deposit id.
        id: u64,
        /// Recipient.
        recipient: Address,
        /// Amount minted.
        amount: Nrlc,
    },
    /// RLC was burned to be released on the mainchain.
    WithdrawalRequested {
        /// The withdrawal id.
        id: u64,
        /// The account that burned it.
        account: Address,
        /// The mainchain recipient.
        recipient: Address,
        /// Amount burned.
        amount: Nrlc,
    },
    /// A validator signed a withdrawal's release.
    WithdrawalSigned {
        /// The withdrawal id.
        id: u64,
        /// The validator.
        validator: Address,
        /// Signatures collected so far.
        signatures: u64,
    },
}
