//! PoCo v5's read API through `eth_call` at the hub's address (the EIP-712 domain's verifying
//! contract): the accessors iExec's SDK, explorers and scripts call — the ERC-20 face of staked
//! RLC (`name`, `symbol`, `decimals`, `balanceOf`, `frozenOf`), `viewAccount`, `viewScore`,
//! `viewConsumed`, `viewPresigned`, `viewDeal`, `viewTask`, `viewContribution`,
//! `viewCategory`, `countCategory`, `domain`, `eip712domain_separator` and the protocol's
//! constants — ABI-encoded as the contracts return them (an unknown id gives the zero struct,
//! as the contracts' storage does). See ADR 0006.

use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_sol_types::{SolCall, sol};
use xiebao_protocol::{ContributionStatus, State, TaskStatus};
use xiebao_types::order::Domain;

sol! {
    /// `IexecLibCore_v5.Resource`.
    #[derive(Default)]
    struct Resource { address pointer; address owner; uint256 price; }
    /// `IexecLibCore_v5.Deal`.
    #[derive(Default)]
    struct Deal {
        Resource app; Resource dataset; Resource workerpool;
        uint256 trust; uint256 category; bytes32 tag;
        address requester; address beneficiary; address callback; string params;
        uint256 startTime; uint256 botFirst; uint256 botSize;
        uint256 workerStake; uint256 schedulerRewardRatio;
    }
    /// `IexecLibCore_v5.Task`.
    #[derive(Default)]
    struct Task {
        uint8 status; bytes32 dealid; uint256 idx; uint256 timeref;
        uint256 contributionDeadline; uint256 revealDeadline; uint256 finalDeadline;
        bytes32 consensusValue; uint256 revealCounter; uint256 winnerCounter;
        address[] contributors; bytes32 resultDigest; bytes results;
        uint256 resultsTimestamp; bytes resultsCallback;
    }
    /// `IexecLibCore_v5.Contribution`.
    #[derive(Default)]
    struct Contribution {
        uint8 status; bytes32 resultHash; bytes32 resultSeal; address enclaveChallenge;
        uint256 weight;
    }
    /// `IexecLibCore_v5.Category`.
    #[derive(Default)]
    struct Category { string name; string description; uint256 workClockTimeRef; }
    /// `IexecLibCore_v5.Account`.
    struct Account { uint256 stake; uint256 locked; }
    /// `IexecLibOrders_v5.EIP712Domain`.
    struct EIP712Domain { string name; string version; uint256 chainId; address verifyingContract; }

    /// The accessors answered.
    interface IexecAccessors {
        function name() external view returns (string);
        function symbol() external view returns (string);
        function decimals() external view returns (uint8);
        function balanceOf(address account) external view returns (uint256);
        function frozenOf(address account) external view returns (uint256);
        function viewAccount(address account) external view returns (Account);
        function viewScore(address worker) external view returns (uint256);
        function viewConsumed(bytes32 id) external view returns (uint256);
        function viewPresigned(bytes32 id) external view returns (address);
        function viewDeal(bytes32 id) external view returns (Deal);
        function viewTask(bytes32 id) external view returns (Task);
        function viewContribution(bytes32 task, address worker) external view returns (Contribution);
        function viewCategory(uint256 index) external view returns (Category);
        function countCategory() external view returns (uint256);
        function domain() external view returns (EIP712Domain);
        function eip712domain_separator() external view returns (bytes32);
        function contribution_deadline_ratio() external view returns (uint256);
        function reveal_deadline_ratio() external view returns (uint256);
        function final_deadline_ratio() external view returns (uint256);
        function workerpool_stake_ratio() external view returns (uint256);
        function kitty_ratio() external view returns (uint256);
        function kitty_min() external view returns (uint256);
        function kitty_address() external view returns (address);
    }
}

/// Why a call was not answered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CallError {
    /// No accessor with this selector (or too short an input for one).
    UnknownSelector(String),
    /// The arguments do not decode for the accessor.
    BadArguments {
        /// The accessor's signature.
        function: &'static str,
        /// What the decoder said.
        reason: String,
    },
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::UnknownSelector(selector) => write!(
                f,
                "the hub has no view with selector {selector}: it answers PoCo v5's accessors (viewDeal, viewTask, viewAccount, balanceOf, domain, …; ADR 0006)"
            ),
            CallError::BadArguments { function, reason } => {
                write!(f, "{function}: the arguments do not decode: {reason}")
            }
        }
    }
}

/// The task a call reads (`viewTask`, `viewContribution`), so that the caller fetches it —
/// from the store when it left memory — before taking the state's lock.
pub(crate) fn task_read(input: &[u8]) -> Option<B256> {
    use IexecAccessors as I;
    let selector: [u8; 4] = input.get(..4)?.try_into().ok()?;
    match selector {
        I::viewTaskCall::SELECTOR => I::viewTaskCall::abi_decode(input).ok().map(|c| c.id),
        I::viewContributionCall::SELECTOR => {
            I::viewContributionCall::abi_decode(input).ok().map(|c| c.task)
        }
        _ => None,
    }
}

/// What the chain answers for one view, read from `state`.
pub(crate) struct Views<'a> {
    /// The committed state.
    pub(crate) state: &'a State,
    /// The order domain (hub address, chain id).
    pub(crate) domain: &'a Domain,
    /// The task [`task_read`] named, fetched beforehand (`None`: no such task).
    pub(crate) task: Option<&'a xiebao_protocol::Task>,
}

/// `u128` nRLC as a `uint256`.
fn amount(nrlc: xiebao_types::Nrlc) -> U256 {
    U256::from(nrlc.0)
}

fn task_status(status: TaskStatus) -> u8 {
    match status {
        TaskStatus::Active => 1,
        TaskStatus::Revealing => 2,
        TaskStatus::Completed => 3,
        TaskStatus::Failed => 4,
    }
}

fn contribution_status(status: ContributionStatus) -> u8 {
    match status {
        ContributionStatus::Contributed => 1,
        ContributionStatus::Proved => 2,
        ContributionStatus::Rejected => 3,
    }
}

macro_rules! answer {
    ($input:expr, $call:ty, |$args:ident| $body:expr) => {{
        let $args = <$call>::abi_decode($input).map_err(|e| CallError::BadArguments {
            function: <$call>::SIGNATURE,
            reason: e.to_string(),
        })?;
        Ok(Bytes::from(<$call>::abi_encode_returns(&$body)))
    }};
}

impl Views<'_> {
    /// Answers the ABI-encoded call `input`.
    ///
    /// # Errors
    /// [`CallError`] naming the selector or the arguments.
    pub(crate) fn call(&self, input: &[u8]) -> Result<Bytes, CallError> {
        use IexecAccessors as I;
        let Some(selector) = input.get(..4) else {
            return Err(CallError::UnknownSelector(alloy_primitives::hex::encode_prefixed(input)));
        };
        let selector: [u8; 4] = selector.try_into().expect("four bytes");
        let state = self.state;
        match selector {
            I::nameCall::SELECTOR => answer!(input, I::nameCall, |_a| "Staked RLC".to_owned()),
            I::symbolCall::SELECTOR => answer!(input, I::symbolCall, |_a| "SRLC".to_owned()),
            I::decimalsCall::SELECTOR => answer!(input, I::decimalsCall, |_a| 9u8),
            I::balanceOfCall::SELECTOR => {
                answer!(input, I::balanceOfCall, |a| amount(state.account(&a.account).free))
            }
            I::frozenOfCall::SELECTOR => {
                answer!(input, I::frozenOfCall, |a| amount(state.account(&a.account).frozen))
            }
            I::viewAccountCall::SELECTOR => answer!(input, I::viewAccountCall, |a| {
                let account = state.account(&a.account);
                Account { stake: amount(account.free), locked: amount(account.frozen) }
            }),
            I::viewScoreCall::SELECTOR => {
                answer!(input, I::viewScoreCall, |a| U256::from(state.score(&a.worker)))
            }
            I::viewConsumedCall::SELECTOR => {
                answer!(input, I::viewConsumedCall, |a| state.consumed_of(&a.id))
            }
            I::viewPresignedCall::SELECTOR => answer!(input, I::viewPresignedCall, |a| {
                state.presigned().get(&a.id).copied().unwrap_or(Address::ZERO)
            }),
            I::viewDealCall::SELECTOR => answer!(input, I::viewDealCall, |a| {
                state.deals().get(&a.id).map(deal).unwrap_or_default()
            }),
            I::viewTaskCall::SELECTOR => {
                answer!(input, I::viewTaskCall, |_a| self.task.map(task).unwrap_or_default())
            }
            I::viewContributionCall::SELECTOR => answer!(input, I::viewContributionCall, |a| {
                self.task
                    .and_then(|t| t.contribution(&a.worker).cloned())
                    .map(|c| Contribution {
                        status: contribution_status(c.status),
                        resultHash: c.result_hash,
                        resultSeal: c.result_seal,
                        enclaveChallenge: c.enclave_challenge,
                        weight: U256::from(c.weight),
                    })
                    .unwrap_or_default()
            }),
            I::viewCategoryCall::SELECTOR => answer!(input, I::viewCategoryCall, |a| {
                u64::try_from(a.index)
                    .ok()
                    .and_then(|id| state.categories().get(&id))
                    .map(|c| Category {
                        name: c.name.clone(),
                        description: c.description.clone(),
                        workClockTimeRef: U256::from(c.work_clock_time_ref_s),
                    })
                    .unwrap_or_default()
            }),
            I::countCategoryCall::SELECTOR => {
                answer!(input, I::countCategoryCall, |_a| U256::from(state.categories().len()))
            }
            I::domainCall::SELECTOR => answer!(input, I::domainCall, |_a| EIP712Domain {
                name: Domain::NAME.to_owned(),
                version: Domain::VERSION.to_owned(),
                chainId: U256::from(self.domain.chain_id),
                verifyingContract: self.domain.verifying_contract,
            }),
            I::eip712domain_separatorCall::SELECTOR => {
                answer!(input, I::eip712domain_separatorCall, |_a| self.domain.separator())
            }
            I::contribution_deadline_ratioCall::SELECTOR => {
                answer!(input, I::contribution_deadline_ratioCall, |_a| U256::from(
                    xiebao_protocol::CONTRIBUTION_DEADLINE_RATIO
                ))
            }
            I::reveal_deadline_ratioCall::SELECTOR => {
                answer!(input, I::reveal_deadline_ratioCall, |_a| U256::from(
                    xiebao_protocol::REVEAL_DEADLINE_RATIO
                ))
            }
            I::final_deadline_ratioCall::SELECTOR => {
                answer!(input, I::final_deadline_ratioCall, |_a| U256::from(
                    xiebao_protocol::FINAL_DEADLINE_RATIO
                ))
            }
            I::workerpool_stake_ratioCall::SELECTOR => {
                answer!(input, I::workerpool_stake_ratioCall, |_a| U256::from(
                    xiebao_protocol::WORKERPOOL_STAKE_RATIO
                ))
            }
            I::kitty_ratioCall::SELECTOR => {
                answer!(input, I::kitty_ratioCall, |_a| U256::from(xiebao_protocol::KITTY_RATIO))
            }
            I::kitty_minCall::SELECTOR => {
                answer!(input, I::kitty_minCall, |_a| U256::from(xiebao_protocol::KITTY_MIN_NRLC))
            }
            I::kitty_addressCall::SELECTOR => {
                answer!(input, I::kitty_addressCall, |_a| xiebao_types::ids::kitty_address())
            }
            other => Err(CallError::UnknownSelector(alloy_primitives::hex::encode_prefixed(other))),
        }
    }
}

fn resource(r: &xiebao_protocol::Resource) -> Resource {
    Resource { pointer: r.pointer, owner: r.owner, price: amount(r.price) }
}

fn deal(d: &xiebao_protocol::Deal) -> Deal {
    Deal {
        app: resource(&d.app),
        dataset: resource(&d.dataset),
        workerpool: resource(&d.workerpool),
        trust: U256::from(d.trust),
        category: U256::from(d.category),
        tag: d.tag.0,
        requester: d.requester,
        beneficiary: d.beneficiary,
        callback: d.callback,
        params: d.params.clone(),
        startTime: U256::from(d.start_time),
        botFirst: d.bot_first,
        botSize: U256::from(d.bot_size),
        workerStake: amount(d.worker_stake),
        schedulerRewardRatio: U256::from(d.scheduler_reward_ratio),
    }
}

fn task(t: &xiebao_protocol::Task) -> Task {
    Task {
        status: task_status(t.status),
        dealid: t.deal_id,
        idx: t.idx,
        timeref: U256::from(t.time_ref_s),
        contributionDeadline: U256::from(t.contribution_deadline),
        revealDeadline: U256::from(t.reveal_deadline),
        finalDeadline: U256::from(t.final_deadline),
        consensusValue: t.consensus_value,
        revealCounter: U256::from(t.reveal_counter),
        winnerCounter: U256::from(t.winner_counter),
        contributors: t.contributions.iter().map(|c| c.worker).collect(),
        resultDigest: t.result_digest,
        results: t.results.clone(),
        resultsTimestamp: U256::ZERO,
        resultsCallback: t.results_callback.clone(),
    }
}
