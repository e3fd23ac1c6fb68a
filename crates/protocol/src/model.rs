//! The records the protocol keeps: accounts, registry entries, deals, tasks, memberships.

use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_rlp::{RlpDecodable, RlpEncodable};
use xiebao_types::tx::{AppType, PoolPolicy};
use xiebao_types::{Nrlc, Tag, Timestamp, rlp_u8_enum};

/// An account's balances and transaction count.
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    RlpEncodable,
    RlpDecodable,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Account {
    /// Number of transactions applied from this account.
    pub nonce: u64,
    /// Free balance: spendable, transferable.
    pub free: Nrlc,
    /// Frozen balance: escrowed for deals, staked in a pool or locked in contributions.
    pub frozen: Nrlc,
}

/// A registered app.
#[derive(
    Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable, serde::Serialize, serde::Deserialize,
)]
pub struct App {
    /// Current owner (receives the app price).
    pub owner: Address,
    /// Display name.
    pub name: String,
    /// How workers run it.
    pub app_type: AppType,
    /// Where the code is.
    pub multiaddr: Bytes,
    /// sha256 of the code.
    pub checksum: B256,
    /// TEE enclave configuration, empty for standard apps.
    pub mrenclave: Bytes,
}

/// A registered dataset.
#[derive(
    Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable, serde::Serialize, serde::Deserialize,
)]
pub struct Dataset {
    /// Current owner (receives the dataset price).
    pub owner: Address,
    /// Display name.
    pub name: String,
    /// Where the file is.
    pub multiaddr: Bytes,
    /// sha256 of the file.
    pub checksum: B256,
}

/// A registered workerpool.
#[derive(
    Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable, serde::Serialize, serde::Deserialize,
)]
pub struct Workerpool {
    /// Current owner: the scheduler's key.
    pub owner: Address,
    /// Display description.
    pub description: String,
    /// Current policies.
    pub policy: PoolPolicy,
}

/// A restriction group: an address standing for a set of members (PoCo's ERC-734 groups).
#[derive(
    Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable, serde::Serialize, serde::Deserialize,
)]
pub struct Group {
    /// Who may add and remove members.
    pub owner: Address,
    /// Number of members.
    pub member_count: u64,
}

/// A category: the work clock T from which deadlines follow.
#[derive(
    Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable, serde::Serialize, serde::Deserialize,
)]
pub struct Category {
    /// Name, e.g. `XS`.
    pub name: String,
    /// Description.
    pub description: String,
    /// T, seconds.
    pub work_clock_time_ref_s: u64,
}

/// A resource as frozen into a deal at match time.
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    RlpEncodable,
    RlpDecodable,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Resource {
    /// The registry entry (zero for "no dataset").
    pub pointer: Address,
    /// Its owner at match time (who gets paid).
    pub owner: Address,
    /// Price per task.
    pub price: Nrlc,
}

/// A deal: one match, `bot_size` tasks.
#[derive(
    Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable, serde::Serialize, serde::Deserialize,
)]
pub struct Deal {
    /// The app, its owner and price.
    pub app: Resource,
    /// The dataset (pointer zero when none; price then 0).
    pub dataset: Resource,
    /// The workerpool, its owner and price.
    pub workerpool: Resource,
    /// max(request trust, 1).
    pub trust: u64,
    /// Category id.
    pub category: u64,
    /// app tag | dataset tag | request tag.
    pub tag: Tag,
    /// Who pays.
    pub requester: Address,
    /// Who reads the results.
    pub beneficiary: Address,
    /// Callback target, or zero.
    pub callback: Address,
    /// Request parameters, verbatim.
    pub params: String,
    /// Block time of the match: every task deadline counts from here.
    pub start_time: Timestamp,
    /// Index of the first task (the request's consumption before this match).
    pub bot_first: U256,
    /// Number of tasks.
    pub bot_size: u64,
    /// Stake locked per contribution.
    pub worker_stake: Nrlc,
    /// The scheduler's share of worker rewards, percent.
    pub scheduler_reward_ratio: u8,
    /// Hash of the request order.
    pub request_hash: B256,
    /// The category's T at match time.
    pub time_ref_s: u64,
    /// Tasks initialized so far.
    pub initialized: u64,
    /// Tasks completed.
    pub completed: u64,
    /// Tasks failed.
    pub failed: u64,
    /// Whether the final deadline passed and every unfinished task was failed and refunded.
    pub expired: bool,
}

impl Deal {
    /// Total price of one task.
    ///
    /// # Errors
    /// On overflow (impossible for deals that passed matching, which computed it already).
    pub fn task_price(&self) -> Result<Nrlc, xiebao_types::AmountError> {
        self.app.price.checked_add(self.dataset.price)?.checked_add(self.workerpool.price)
    }

    /// The pool owner's stake per task: floor(30 % of the workerpool price).
    pub fn pool_stake(&self) -> Nrlc {
        self.workerpool.price.mul_div(crate::WORKERPOOL_STAKE_RATIO, 100)
    }

    /// Contribution deadline: start + 7·T.
    pub fn contribution_deadline(&self) -> Timestamp {
        self.start_time + crate::CONTRIBUTION_DEADLINE_RATIO * self.time_ref_s
    }

    /// Final deadline: start + 10·T.
    pub fn final_deadline(&self) -> Timestamp {
        self.start_time + crate::FINAL_DEADLINE_RATIO * self.time_ref_s
    }
}

/// A task's status (PoCo's enum values).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum TaskStatus {
    /// 1: initialized, taking contributions.
    Active,
    /// 2: consensus reached, taking reveals.
    Revealing,
    /// 3: finalized and settled.
    Completed,
    /// 4: failed and refunded.
    Failed,
}
rlp_u8_enum!(TaskStatus { Active = 1, Revealing = 2, Completed = 3, Failed = 4 });

impl TaskStatus {
    /// Not final yet: the task may still be contributed to, revealed, finalized or claimed.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Active | Self::Revealing)
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Active => "ACTIVE",
            Self::Revealing => "REVEALING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
        })
    }
}

/// A contribution's status.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum ContributionStatus {
    /// Committed, not revealed.
    Contributed,
    /// Revealed and matching the consensus.
    Proved,
    /// Discarded by a reopen.
    Rejected,
}
rlp_u8_enum!(ContributionStatus { Contributed = 1, Proved = 2, Rejected = 3 });

/// One worker's contribution to a task.
#[derive(
    Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable, serde::Serialize, serde::Deserialize,
)]
pub struct Contribution {
    /// The worker.
    pub worker: Address,
    /// Status.
    pub status: ContributionStatus,
    /// keccak(taskid ‖ digest).
    pub result_hash: B256,
    /// keccak(worker ‖ taskid ‖ digest).
    pub result_seal: B256,
    /// Enclave challenge address (zero for standard tasks).
    pub enclave_challenge: Address,
    /// floor(log2(worker weight)) at contribution time: the payout weight.
    pub weight: u32,
    /// Stake locked for this contribution.
    pub stake: Nrlc,
}

/// The running product of weights of one result hash.
#[derive(
    Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable, serde::Serialize, serde::Deserialize,
)]
pub struct ResultGroup {
    /// The result hash.
    pub result_hash: B256,
    /// Product of its contributors' weights.
    pub weight: U256,
}

/// A task of a deal.
#[derive(
    Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable, serde::Serialize, serde::Deserialize,
)]
pub struct Task {
    /// Status.
    pub status: TaskStatus,
    /// The deal.
    pub deal_id: B256,
    /// Absolute index within the request order.
    pub idx: U256,
    /// The category's T.
    pub time_ref_s: u64,
    /// Contributions are accepted strictly before this time.
    pub contribution_deadline: Timestamp,
    /// Reveals are accepted strictly before this time (zero until consensus).
    pub reveal_deadline: Timestamp,
    /// Finalize strictly before, expiry at or after this time.
    pub final_deadline: Timestamp,
    /// The result hash that reached consensus (zero before).
    pub consensus_value: B256,
    /// Reveals so far.
    pub reveal_counter: u32,
    /// Contributions agreeing with the consensus.
    pub winner_counter: u32,
    /// The agreed result digest (after the first reveal).
    pub result_digest: B256,
    /// Off-chain result link, set at finalize.
    pub results: Bytes,
    /// Callback data, set at finalize.
    pub results_callback: Bytes,
    /// Contributions in arrival order.
    pub contributions: Vec<Contribution>,
    /// Running weight products per result hash.
    pub groups: Vec<ResultGroup>,
    /// 1 + Σ group weights.
    pub total_weight: U256,
}

impl Task {
    /// The contribution of `worker`, if any.
    pub fn contribution(&self, worker: &Address) -> Option<&Contribution> {
        self.contributions.iter().find(|c| c.worker == *worker)
    }

    /// The weight product of `result_hash` (0 if none).
    pub fn group_weight(&self, result_hash: &B256) -> U256 {
        self.groups.iter().find(|g| g.result_hash == *result_hash).map_or(U256::ZERO, |g| g.weight)
    }
}

/// A worker's membership status in its pool.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum MembershipStatus {
    /// May contribute.
    Active,
    /// Leaving: the bonded stake is released at `release_at`.
    Unbonding,
    /// Left: only stakes still locked in contributions remain.
    Left,
}
rlp_u8_enum!(MembershipStatus { Active = 1, Unbonding = 2, Left = 3 });

/// A worker's bonded stake in a workerpool.
#[derive(
    Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable, serde::Serialize, serde::Deserialize,
)]
pub struct Membership {
    /// The pool.
    pub workerpool: Address,
    /// Status.
    pub status: MembershipStatus,
    /// Bonded stake available for contributions (frozen in the account).
    pub bonded: Nrlc,
    /// Stake currently locked in contributions (frozen in the account).
    pub in_contributions: Nrlc,
    /// When an unbonding membership's stake is released.
    pub release_at: Timestamp,
}

/// A validator of the chain.
#[derive(
    Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable, serde::Serialize, serde::Deserialize,
)]
pub struct Validator {
    /// ed25519 consensus public key.
    pub consensus_key: B256,
    /// Where peers reach it (`host:port`); empty when the nodes' configurations say
    /// (validators listed in genesis).
    pub p2p: String,
}

/// The validators of one consensus epoch: the set as it stood at the end of the previous
/// epoch's last block (epoch 0: genesis), ordered by address.
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    RlpEncodable,
    RlpDecodable,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct EpochValidators {
    /// The members: Ethereum address, consensus key and p2p address each.
    pub members: Vec<EpochMember>,
}

/// One validator of an epoch.
#[derive(
    Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable, serde::Serialize, serde::Deserialize,
)]
pub struct EpochMember {
    /// Its Ethereum address (the proposer field of its blocks, bridge signatures).
    pub address: Address,
    /// Its ed25519 consensus public key.
    pub consensus_key: B256,
    /// Where peers reach it (`host:port`), or empty.
    pub p2p: String,
}

/// Something that happens at a block time, processed at the end of the first block at or past it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Timer {
    /// A deal's final deadline: fail and refund every unfinished task.
    DealExpiry(B256),
    /// A leaving worker's stake release.
    Unbond(Address),
}

/// Chain-wide settings and totals.
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    RlpEncodable,
    RlpDecodable,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Globals {
    /// The chain id transactions must carry.
    pub chain_id: u64,
    /// The EIP-712 `verifyingContract` of orders on this chain.
    pub verifying_contract: Address,
    /// The governance account.
    pub authority: Address,
    /// The TEE broker, or zero.
    pub tee_broker: Address,
    /// All RLC ever minted (genesis and bridge), nRLC.
    pub minted: Nrlc,
    /// All RLC ever burned, nRLC.
    pub burned: Nrlc,
    /// Number of categories.
    pub category_count: u64,
    /// Blocks per consensus epoch: validator-set changes take effect at the next epoch.
    pub epoch_length: u64,
}

/// The bridge to the mainchain, as the authority set it, and its running totals.
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    RlpEncodable,
    RlpDecodable,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Bridge {
    /// The mainchain's chain id.
    pub mainchain_id: u64,
    /// The bridge contract on the mainchain.
    pub contract: Address,
    /// Validators that must attest a deposit before it is minted.
    pub threshold: u64,
    /// Largest deposit or withdrawal, nRLC.
    pub max_per_transfer: Nrlc,
    /// The id the next withdrawal gets.
    pub next_withdrawal: u64,
    /// Number of deposits minted.
    pub deposits_minted: u64,
    /// All RLC minted by the bridge, nRLC.
    pub minted: Nrlc,
    /// All RLC burned by withdrawals, nRLC.
    pub burned: Nrlc,
}

/// One version of a mainchain deposit, with the validators that attested it.
///
/// Validators normally agree; a faulty one attesting another recipient or amount for the same
/// id makes a second claim, which never reaches the threshold alone.
#[derive(
    Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable, serde::Serialize, serde::Deserialize,
)]
pub struct DepositClaim {
    /// Who receives the RLC on this chain.
    pub recipient: Address,
    /// Amount, nRLC.
    pub amount: Nrlc,
    /// The mainchain transaction named by the first attestation.
    pub mainchain_tx: B256,
    /// Validators that attested this version, in attestation order.
    pub attesters: Vec<Address>,
    /// Whether this version was minted.
    pub minted: bool,
}

/// A validator's signature of a withdrawal's release message.
#[derive(
    Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable, serde::Serialize, serde::Deserialize,
)]
pub struct ReleaseSignature {
    /// The validator.
    pub validator: Address,
    /// Its raw 65-byte signature of the release digest.
    pub signature: Bytes,
}

/// RLC burned on this chain, to be released on the mainchain.
#[derive(
    Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable, serde::Serialize, serde::Deserialize,
)]
pub struct Withdrawal {
    /// The account that burned it.
    pub account: Address,
    /// Who receives it on the mainchain.
    pub recipient: Address,
    /// Amount, nRLC.
    pub amount: Nrlc,
    /// The block time it was burned.
    pub burned_at: Timestamp,
    /// Validators' signatures of its release, in arrival order.
    pub signatures: Vec<ReleaseSignature>,
}
