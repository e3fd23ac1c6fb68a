//! The user's side of the bridge: deposit on the mainchain, withdraw from the chain, and where
//! each transfer stands.

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider};
use xiebao_rpc::{WithdrawalView, XiebaoApiClient};
use xiebao_sdk::client::Node;

use crate::BridgeError;
use crate::contracts::{Bridge, Rlc, explain};

fn mainchain(e: impl std::fmt::Display) -> BridgeError {
    BridgeError::Mainchain(explain(&e))
}

/// Waits for a sent mainchain transaction's receipt; a revert is an error naming `what`.
async fn mined(
    sent: Result<
        alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
        alloy::contract::Error,
    >,
    what: &str,
) -> Result<alloy::rpc::types::TransactionReceipt, BridgeError> {
    let receipt = sent.map_err(mainchain)?.get_receipt().await.map_err(mainchain)?;
    if !receipt.status() {
        return Err(BridgeError::Mainchain(format!(
            "{what} {} reverted",
            receipt.transaction_hash
        )));
    }
    Ok(receipt)
}

fn node(e: impl std::fmt::Display) -> BridgeError {
    BridgeError::Node(e.to_string())
}

/// The bridge contract's settings and today's usage.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// The RLC token.
    pub token: Address,
    /// The validators allowed to sign releases.
    pub validators: Vec<Address>,
    /// Signatures a release needs.
    pub threshold: U256,
    /// Largest transfer, nRLC.
    pub max_per_transfer: U256,
    /// Most deposited, and separately released, per UTC day, nRLC.
    pub daily_limit: U256,
    /// The current UTC day (mainchain time / 86 400).
    pub day: U256,
    /// Deposited today, nRLC.
    pub deposited_today: U256,
    /// Released today, nRLC.
    pub released_today: U256,
    /// RLC the contract holds for the chain, nRLC.
    pub locked: U256,
    /// Whether the owner paused it.
    pub paused: bool,
}

/// Reads the bridge contract's limits and state.
///
/// # Errors
/// [`BridgeError::Mainchain`] when the contract cannot be read.
pub async fn limits(provider: &DynProvider, bridge: Address) -> Result<Limits, BridgeError> {
    let contract = Bridge::new(bridge, provider);
    let block = provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .map_err(mainchain)?
        .ok_or_else(|| BridgeError::Mainchain("no latest block".into()))?;
    let day = U256::from(block.header.timestamp / 86_400);
    Ok(Limits {
        token: contract.token().call().await.map_err(mainchain)?,
        validators: contract.validators().call().await.map_err(mainchain)?,
        threshold: contract.threshold().call().await.map_err(mainchain)?,
        max_per_transfer: contract.maxPerTransfer().call().await.map_err(mainchain)?,
        daily_limit: contract.dailyLimit().call().await.map_err(mainchain)?,
        day,
        deposited_today: contract.depositedOn(day).call().await.map_err(mainchain)?,
        released_today: contract.releasedOn(day).call().await.map_err(mainchain)?,
        locked: contract.locked().call().await.map_err(mainchain)?,
        paused: contract.paused().call().await.map_err(mainchain)?,
    })
}

/// A deposit made on the mainchain.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Deposited {
    /// The contract's deposit id (the chain mints under it).
    pub id: u64,
    /// The mainchain transaction.
    pub tx: B256,
    /// Its block.
    pub block: u64,
}

/// Locks `amount` nRLC of the sender's mainchain RLC in the bridge for `recipient` on the
/// chain: approves the bridge if needed, then deposits. Checks the balance and the limits
/// first, so a refused deposit costs nothing.
///
/// # Errors
/// [`BridgeError::Refused`] naming what is missing or over a limit, or
/// [`BridgeError::Mainchain`] with the contract's reason.
pub async fn deposit(
    provider: &DynProvider,
    bridge: Address,
    from: Address,
    amount: U256,
    recipient: Address,
) -> Result<Deposited, BridgeError> {
    let limits = limits(provider, bridge).await?;
    let token = Rlc::new(limits.token, provider);
    let balance = token.balanceOf(from).call().await.map_err(mainchain)?;
    if balance < amount {
        return Err(BridgeError::Refused(format!(
            "{from} holds {balance} nRLC of RLC on the mainchain; the deposit needs {amount} nRLC (missing {} nRLC)",
            amount - balance
        )));
    }
    if limits.paused {
        return Err(BridgeError::Refused("the bridge is paused by its owner".into()));
    }
    if amount > limits.max_per_transfer {
        return Err(BridgeError::Refused(format!(
            "{amount} nRLC is over the bridge's per-transfer limit of {} nRLC",
            limits.max_per_transfer
        )));
    }
    if limits.deposited_today + amount > limits.daily_limit {
        return Err(BridgeError::Refused(format!(
            "{} nRLC of the daily limit of {} nRLC is used today; {amount} nRLC more does not fit (try again after 00:00 UTC)",
            limits.deposited_today, limits.daily_limit
        )));
    }
    let allowance = token.allowance(from, bridge).call().await.map_err(mainchain)?;
    if allowance < amount {
        mined(token.approve(bridge, amount).send().await, "approve").await?;
    }
    let receipt =
        mined(Bridge::new(bridge, provider).deposit(amount, recipient).send().await, "deposit")
            .await?;
    let id = receipt
        .inner
        .logs()
        .iter()
        .find_map(|log| log.log_decode::<Bridge::Deposited>().ok())
        .map(|log| log.inner.data.id)
        .ok_or_else(|| BridgeError::Mainchain("the deposit emitted no Deposited event".into()))?;
    Ok(Deposited {
        id: u64::try_from(id)
            .map_err(|_| BridgeError::Mainchain(format!("deposit id {id} too large")))?,
        tx: receipt.transaction_hash,
        block: receipt.block_number.unwrap_or_default(),
    })
}

/// Where a deposit stands.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "stage", rename_all = "kebab-case")]
pub enum DepositStage {
    /// In a mainchain block, waiting for confirmations and the validators.
    Seen {
        /// Confirmations so far.
        confirmations: u64,
    },
    /// Attested by some validators.
    Attested {
        /// Attestations of the version with the most.
        attestations: u64,
        /// Attestations needed.
        threshold: u64,
    },
    /// Minted on the chain.
    Minted {
        /// The recipient.
        recipient: Address,
        /// Amount, nRLC.
        amount: u128,
    },
}

/// Where deposit `id` (made in mainchain block `block`) stands.
///
/// # Errors
/// When either chain cannot be read.
pub async fn deposit_stage(
    provider: &DynProvider,
    node_client: &Node,
    id: u64,
    block: u64,
) -> Result<DepositStage, BridgeError> {
    let claims = node_client.rpc.deposit(id).await.map_err(node)?;
    if let Some(minted) = claims.iter().find(|c| c.minted) {
        return Ok(DepositStage::Minted { recipient: minted.recipient, amount: minted.amount.0 });
    }
    let best = claims.iter().map(|c| c.attesters.len() as u64).max().unwrap_or(0);
    if best > 0 {
        let threshold = node_client.rpc.bridge().await.map_err(node)?.map_or(0, |b| b.threshold);
        return Ok(DepositStage::Attested { attestations: best, threshold });
    }
    let head = provider.get_block_number().await.map_err(mainchain)?;
    Ok(DepositStage::Seen { confirmations: (head + 1).saturating_sub(block) })
}

/// Where a withdrawal stands.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "stage", rename_all = "kebab-case")]
pub enum WithdrawalStage {
    /// Burned on the chain; validators are signing.
    Burned {
        /// Signatures so far.
        signatures: u64,
        /// Signatures needed.
        threshold: u64,
    },
    /// Enough signatures: anyone may submit the release.
    Signed {
        /// Signatures collected.
        signatures: u64,
    },
    /// Paid out on the mainchain.
    Released,
}

/// Where withdrawal `id` stands.
///
/// # Errors
/// [`BridgeError::Refused`] if it does not exist; otherwise when a chain cannot be read.
pub async fn withdrawal_stage(
    provider: &DynProvider,
    bridge: Address,
    node_client: &Node,
    id: u64,
) -> Result<(WithdrawalView, WithdrawalStage), BridgeError> {
    let view = node_client.rpc.withdrawal(id).await.map_err(node)?.ok_or_else(|| {
        BridgeError::Refused(format!("withdrawal {id} does not exist on the chain"))
    })?;
    let released =
        Bridge::new(bridge, provider).released(U256::from(id)).call().await.map_err(mainchain)?;
    let signatures = view.withdrawal.signatures.len() as u64;
    let stage = if released {
        WithdrawalStage::Released
    } else if signatures >= view.threshold {
        WithdrawalStage::Signed { signatures }
    } else {
        WithdrawalStage::Burned { signatures, threshold: view.threshold }
    };
    Ok((view, stage))
}

/// The signatures to submit for `view`: those of the contract's current validators, sorted by
/// signer (as the contract requires), as many as its threshold.
///
/// # Errors
/// [`BridgeError::Refused`] when too few of the collected signatures are by the contract's
/// validators.
pub fn release_signatures(
    view: &WithdrawalView,
    limits: &Limits,
) -> Result<Vec<Bytes>, BridgeError> {
    let mut usable: Vec<(Address, Bytes)> = view
        .withdrawal
        .signatures
        .iter()
        .filter(|s| limits.validators.contains(&s.validator))
        .map(|s| (s.validator, s.signature.clone()))
        .collect();
    usable.sort_by_key(|(validator, _)| *validator);
    let needed = usize::try_from(limits.threshold).unwrap_or(usize::MAX);
    if usable.len() < needed {
        return Err(BridgeError::Refused(format!(
            "withdrawal {} has {} signatures by the contract's validators; the contract needs {needed}",
            view.id,
            usable.len()
        )));
    }
    Ok(usable.into_iter().take(needed).map(|(_, s)| s).collect())
}

/// Submits the release of `view` to the mainchain (anyone may; the RLC goes to the
/// withdrawal's recipient). Returns the mainchain transaction.
///
/// # Errors
/// [`BridgeError::Refused`] when it is already released or lacks signatures, or
/// [`BridgeError::Mainchain`] with the contract's reason.
pub async fn release(
    provider: &DynProvider,
    bridge: Address,
    view: &WithdrawalView,
) -> Result<B256, BridgeError> {
    let contract = Bridge::new(bridge, provider);
    if contract.released(U256::from(view.id)).call().await.map_err(mainchain)? {
        return Err(BridgeError::Refused(format!("withdrawal {} was already released", view.id)));
    }
    let limits = limits(provider, bridge).await?;
    let signatures = release_signatures(view, &limits)?;
    let release = contract.release(
        U256::from(view.id),
        view.withdrawal.recipient,
        U256::from(view.withdrawal.amount.0),
        signatures,
    );
    let receipt = mined(release.send().await, "release").await?;
    Ok(receipt.transaction_hash)
}
