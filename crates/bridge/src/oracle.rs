//! The oracle every validator runs: it attests confirmed mainchain deposits and signs the
//! release of withdrawals burned on the chain.
//!
//! It acts only on mainchain blocks with at least `confirmations` confirmations, so a reorg
//! shallower than that never reaches the chain. It keeps no state of its own: on every start it
//! rescans the contract's deposits from `from_block` and the chain's withdrawals from 0, and
//! skips what the chain already holds from it (the chain refuses a second attestation or
//! signature anyway, and mints each deposit id at most once).

use std::time::Duration;

use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use xiebao_rpc::{Bridge as BridgeSettings, XiebaoApiClient};
use xiebao_sdk::client::{Node, Sender, SenderOptions};
use xiebao_types::bridge::{BridgeDomain, release_digest};
use xiebao_types::tx::{AttestDeposit, Call, SignWithdrawal};
use xiebao_types::{Nrlc, SecretKey};

use crate::BridgeError;
use crate::contracts::{self, Bridge};

/// Most blocks asked for in one `eth_getLogs`.
const LOG_RANGE: u64 = 5_000;

/// Where the oracle watches the mainchain.
#[derive(Clone, Debug)]
pub struct OracleConfig {
    /// The mainchain's JSON-RPC URL.
    pub ethereum_rpc: String,
    /// Confirmations a deposit's block needs (the block itself counts as one).
    pub confirmations: u64,
    /// The first mainchain block to scan (the contract's deployment block, or earlier).
    pub from_block: u64,
    /// How often the mainchain and the chain are polled.
    pub poll: Duration,
}

/// Runs the oracle of the validator holding `key` against its own node at `node_url`, until the
/// process ends. Failures to reach either chain are logged and retried.
pub async fn run(config: OracleConfig, node_url: String, key: SecretKey) {
    let me = key.address();
    let node = loop {
        match Node::connect(&node_url).await {
            Ok(node) => break node,
            Err(e) => {
                tracing::debug!("bridge oracle waiting for its node: {e}");
                tokio::time::sleep(config.poll).await;
            }
        }
    };
    let sender = Sender::spawn(node.clone(), key.clone(), SenderOptions::default());
    let mainchain = match contracts::provider(&config.ethereum_rpc) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("bridge oracle stopped: {e}");
            return;
        }
    };
    let mut oracle = Oracle {
        me,
        key,
        node,
        sender,
        mainchain,
        confirmations: config.confirmations.max(1),
        next_block: config.from_block,
        next_withdrawal: 0,
        checked_chain: None,
    };
    tracing::info!(validator = %me, mainchain = %config.ethereum_rpc, "bridge oracle started");
    loop {
        if let Err(e) = oracle.step().await {
            tracing::warn!("bridge oracle: {e}");
        }
        tokio::time::sleep(config.poll).await;
    }
}

struct Oracle {
    me: Address,
    key: SecretKey,
    node: Node,
    sender: Sender,
    mainchain: DynProvider,
    confirmations: u64,
    /// The first mainchain block not yet scanned.
    next_block: u64,
    /// The first withdrawal not yet known to be signed by this validator.
    next_withdrawal: u64,
    /// The bridge settings whose mainchain id was checked against the mainchain.
    checked_chain: Option<(u64, Address)>,
}

impl Oracle {
    async fn step(&mut self) -> Result<(), BridgeError> {
        let node_error =
            |e: xiebao_rpc::jsonrpsee::core::client::Error| BridgeError::Node(e.to_string());
        let Some(settings) = self.node.rpc.bridge().await.map_err(node_error)? else {
            return Ok(()); // the authority has not set the bridge yet
        };
        if self.checked_chain != Some((settings.mainchain_id, settings.contract)) {
            let id = self
                .mainchain
                .get_chain_id()
                .await
                .map_err(|e| BridgeError::Mainchain(e.to_string()))?;
            if id != settings.mainchain_id {
                return Err(BridgeError::Mainchain(format!(
                    "the chain's bridge is on mainchain {}, but the oracle's Ethereum node is chain {id}",
                    settings.mainchain_id
                )));
            }
            self.checked_chain = Some((settings.mainchain_id, settings.contract));
        }
        self.attest_deposits(&settings).await?;
        self.sign_withdrawals(&settings).await
    }

    async fn attest_deposits(&mut self, settings: &BridgeSettings) -> Result<(), BridgeError> {
        let head = self
            .mainchain
            .get_block_number()
            .await
            .map_err(|e| BridgeError::Mainchain(e.to_string()))?;
        // A block at height b has head − b + 1 confirmations.
        let Some(tip) = (head + 1).checked_sub(self.confirmations) else { return Ok(()) };
        while self.next_block <= tip {
            let to = tip.min(self.next_block + LOG_RANGE - 1);
            let filter = Filter::new()
                .address(settings.contract)
                .event_signature(Bridge::Deposited::SIGNATURE_HASH)
                .from_block(self.next_block)
                .to_block(to);
            let logs = self
                .mainchain
                .get_logs(&filter)
                .await
                .map_err(|e| BridgeError::Mainchain(e.to_string()))?;
            let mut calls = Vec::new();
            for log in logs {
                let Ok(decoded) = log.log_decode::<Bridge::Deposited>() else { continue };
                let event = decoded.inner.data;
                let (Ok(id), Ok(amount)) = (u64::try_from(event.id), u128::try_from(event.amount))
                else {
                    tracing::warn!(
                        "deposit {} of {} does not fit the chain's types; skipped",
                        event.id,
                        event.amount
                    );
                    continue;
                };
                let claims = self
                    .node
                    .rpc
                    .deposit(id)
                    .await
                    .map_err(|e| BridgeError::Node(e.to_string()))?;
                if claims.iter().any(|c| c.minted || c.attesters.contains(&self.me)) {
                    continue;
                }
                calls.push(Call::from(AttestDeposit {
                    id,
                    recipient: event.recipient,
                    amount: Nrlc(amount),
                    mainchain_tx: log.transaction_hash.unwrap_or_default(),
                }));
            }
            self.send(calls).await;
            self.next_block = to + 1;
        }
        Ok(())
    }

    async fn sign_withdrawals(&mut self, settings: &BridgeSettings) -> Result<(), BridgeError> {
        let domain = BridgeDomain {
            mainchain_id: settings.mainchain_id,
            contract: settings.contract,
            xiebao_chain_id: self.node.chain_id,
        };
        let mut calls = Vec::new();
        while self.next_withdrawal < settings.next_withdrawal {
            let id = self.next_withdrawal;
            let view =
                self.node.rpc.withdrawal(id).await.map_err(|e| BridgeError::Node(e.to_string()))?;
            if let Some(view) = view
                && !view.withdrawal.signatures.iter().any(|s| s.validator == self.me)
            {
                // Computed here, not taken from the node's answer.
                let digest =
                    release_digest(&domain, id, view.withdrawal.recipient, view.withdrawal.amount);
                calls.push(Call::from(SignWithdrawal {
                    id,
                    signature: self.key.sign_hash(&digest),
                }));
            }
            self.next_withdrawal += 1;
        }
        self.send(calls).await;
        Ok(())
    }

    /// Sends the calls (one batch) and logs each refusal; a refused call is retried on the
    /// next scan only when it was not this validator's own duplicate.
    async fn send(&mut self, calls: Vec<Call>) {
        if calls.is_empty() {
            return;
        }
        for result in self.sender.send_all(calls).await {
            match result {
                Ok(applied) => {
                    tracing::debug!(tx = %applied.tx, height = applied.height, "bridge call final")
                }
                Err(e) => tracing::warn!("bridge call refused: {e}"),
            }
        }
    }
}
