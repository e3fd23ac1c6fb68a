//! The chain's half of the mainchain bridge: minting attested deposits on a validator quorum,
//! burning withdrawals and collecting the validators' release signatures.

use alloy_primitives::{B256, keccak256};
use xiebao_types::Nrlc;
use xiebao_types::bridge::{BridgeDomain, release_digest};
use xiebao_types::crypto;
use xiebao_types::tx::{AttestDeposit, SetBridge, SignWithdrawal, Withdraw};

use crate::ctx::Ctx;
use crate::error::ProtocolError;
use crate::event::Event;
use crate::model::{Bridge, DepositClaim, ReleaseSignature, Withdrawal};
use crate::registry::check_authority;
use crate::state::State;

/// The key of the bridge's single entry.
const BRIDGE_KEY: u64 = 0;

impl State {
    /// The bridge settings and totals, once the authority set them.
    pub fn bridge_settings(&self) -> Option<&Bridge> {
        self.bridge().get(&BRIDGE_KEY)
    }

    /// Every claim made for deposit `id` (normally one), by content hash.
    pub fn deposit(&self, id: u64) -> impl Iterator<Item = &DepositClaim> {
        self.deposit_claims()
            .range((id, B256::ZERO)..=(id, B256::repeat_byte(0xff)))
            .map(|(_, c)| c)
    }

    /// What validators sign to release withdrawal `id`, if it exists.
    pub fn release_digest(&self, id: u64) -> Option<B256> {
        let bridge = self.bridge_settings()?;
        let withdrawal = self.withdrawals().get(&id)?;
        Some(release_digest(
            &self.bridge_domain(bridge),
            id,
            withdrawal.recipient,
            withdrawal.amount,
        ))
    }

    fn bridge_domain(&self, bridge: &Bridge) -> BridgeDomain {
        BridgeDomain {
            mainchain_id: bridge.mainchain_id,
            contract: bridge.contract,
            xiebao_chain_id: self.globals().chain_id,
        }
    }
}

fn settings(ctx: &Ctx<'_>) -> Result<Bridge, ProtocolError> {
    ctx.state.bridge_settings().cloned().ok_or(ProtocolError::BridgeNotSet)
}

fn check_validator(ctx: &Ctx<'_>, action: &'static str) -> Result<(), ProtocolError> {
    if ctx.state.validators().contains_key(&ctx.sender) {
        Ok(())
    } else {
        Err(ProtocolError::NotValidator { sender: ctx.sender, action })
    }
}

fn check_amount(amount: Nrlc, bridge: &Bridge) -> Result<(), ProtocolError> {
    if amount.is_zero() {
        return Err(ProtocolError::InvalidValue {
            rule: "a bridge transfer must move more than 0 nRLC",
            value: amount.to_string(),
        });
    }
    if amount > bridge.max_per_transfer {
        return Err(ProtocolError::OverTransferLimit { amount, max: bridge.max_per_transfer });
    }
    Ok(())
}

pub(crate) fn set_bridge(ctx: &mut Ctx<'_>, call: &SetBridge) -> Result<(), ProtocolError> {
    check_authority(ctx, "set the bridge")?;
    let validators = ctx.state.validators().len() as u64;
    if call.threshold == 0 || call.threshold > validators {
        return Err(ProtocolError::InvalidValue {
            rule: "the bridge threshold must be between 1 and the number of validators",
            value: format!("{} of {validators}", call.threshold),
        });
    }
    if call.contract.is_zero() {
        return Err(ProtocolError::InvalidValue {
            rule: "the bridge contract must not be the zero address",
            value: call.contract.to_string(),
        });
    }
    let previous = ctx.state.bridge_settings().cloned().unwrap_or_default();
    let moved = previous.minted.0 != 0 || previous.burned.0 != 0;
    if moved && (previous.contract != call.contract || previous.mainchain_id != call.mainchain_id) {
        // Deposit ids are the contract's; another contract would reuse them.
        return Err(ProtocolError::InvalidValue {
            rule: "the bridge contract cannot change once RLC moved through it",
            value: format!("{} on chain {}", call.contract, call.mainchain_id),
        });
    }
    ctx.state.put_bridge(
        BRIDGE_KEY,
        Bridge {
            mainchain_id: call.mainchain_id,
            contract: call.contract,
            threshold: call.threshold,
            max_per_transfer: call.max_per_transfer,
            ..previous
        },
    );
    ctx.emit(Event::BridgeSet {
        mainchain_id: call.mainchain_id,
        contract: call.contract,
        threshold: call.threshold,
        max_per_transfer: call.max_per_transfer,
    });
    Ok(())
}

pub(crate) fn attest_deposit(ctx: &mut Ctx<'_>, call: &AttestDeposit) -> Result<(), ProtocolError> {
    let mut bridge = settings(ctx)?;
    check_validator(ctx, "attest deposits")?;
    let validator = ctx.sender;
    let mut content = [0u8; 36];
    content[..20].copy_from_slice(call.recipient.as_slice());
    content[20..].copy_from_slice(&call.amount.0.to_be_bytes());
    let content = keccak256(content);
    let mut minted = None;
    for claim in ctx.state.deposit(call.id) {
        if claim.attesters.contains(&validator) {
            return Err(ProtocolError::AlreadyAttested { id: call.id, validator });
        }
        if claim.minted {
            minted = Some((claim.recipient, claim.amount));
        }
    }
    if let Some((recipient, amount)) = minted
        && (recipient, amount) != (call.recipient, call.amount)
    {
        return Err(ProtocolError::ConflictingDeposit {
            id: call.id,
            minted_recipient: recipient,
            minted_amount: amount,
            recipient: call.recipient,
            amount: call.amount,
        });
    }
    if minted.is_none() {
        check_amount(call.amount, &bridge)?;
        if call.recipient.is_zero() {
            return Err(ProtocolError::InvalidValue {
                rule: "a deposit's recipient must not be the zero address",
                value: call.recipient.to_string(),
            });
        }
    }
    let key = (call.id, content);
    let mut claim = ctx.state.deposit_claims().get(&key).cloned().unwrap_or(DepositClaim {
        recipient: call.recipient,
        amount: call.amount,
        mainchain_tx: call.mainchain_tx,
        attesters: Vec::new(),
        minted: false,
    });
    claim.attesters.push(validator);
    let attestations = claim.attesters.len() as u64;
    ctx.emit(Event::DepositAttested {
        id: call.id,
        validator,
        recipient: call.recipient,
        amount: call.amount,
        attestations,
    });
    // Late attestations of a minted deposit are recorded and change nothing else.
    if minted.is_none() && attestations >= bridge.threshold {
        claim.minted = true;
        let mut account = ctx.state.account(&call.recipient);
        account.free = account.free.checked_add(call.amount)?;
        ctx.state.put_account(call.recipient, account);
        let mut globals = ctx.state.globals().clone();
        globals.minted = globals.minted.checked_add(call.amount)?;
        ctx.state.set_globals(globals);
        bridge.minted = bridge.minted.checked_add(call.amount)?;
        bridge.deposits_minted += 1;
        ctx.state.put_bridge(BRIDGE_KEY, bridge);
        ctx.emit(Event::DepositMinted {
            id: call.id,
            recipient: call.recipient,
            amount: call.amount,
        });
    }
    ctx.state.put_deposit_claim(key, claim);
    Ok(())
}

pub(crate) fn withdraw(ctx: &mut Ctx<'_>, call: &Withdraw) -> Result<(), ProtocolError> {
    let mut bridge = settings(ctx)?;
    check_amount(call.amount, &bridge)?;
    if call.recipient.is_zero() {
        return Err(ProtocolError::InvalidValue {
            rule: "a withdrawal's recipient must not be the zero address",
            value: call.recipient.to_string(),
        });
    }
    let account = ctx.sender;
    let mut balance = ctx.state.account(&account);
    balance.free = crate::ctx::debit(account, balance.free, call.amount, "withdrawal")?;
    ctx.state.put_account(account, balance);
    let mut globals = ctx.state.globals().clone();
    globals.burned = globals.burned.checked_add(call.amount)?;
    ctx.state.set_globals(globals);
    let id = bridge.next_withdrawal;
    bridge.next_withdrawal += 1;
    bridge.burned = bridge.burned.checked_add(call.amount)?;
    ctx.state.put_bridge(BRIDGE_KEY, bridge);
    ctx.state.put_withdrawal(
        id,
        Withdrawal {
            account,
            recipient: call.recipient,
            amount: call.amount,
            burned_at: ctx.now(),
            signatures: Vec::new(),
        },
    );
    ctx.emit(Event::WithdrawalRequested {
        id,
        account,
        recipient: call.recipient,
        amount: call.amount,
    });
    Ok(())
}

pub(crate) fn sign_withdrawal(
    ctx: &mut Ctx<'_>,
    call: &SignWithdrawal,
) -> Result<(), ProtocolError> {
    let bridge = settings(ctx)?;
    check_validator(ctx, "sign withdrawals")?;
    let validator = ctx.sender;
    let Some(mut withdrawal) = ctx.state.withdrawals().get(&call.id).cloned() else {
        return Err(ProtocolError::UnknownWithdrawal {
            id: call.id,
            count: bridge.next_withdrawal,
        });
    };
    if withdrawal.signatures.iter().any(|s| s.validator == validator) {
        return Err(ProtocolError::AlreadySigned { id: call.id, validator });
    }
    let digest = release_digest(
        &ctx.state.bridge_domain(&bridge),
        call.id,
        withdrawal.recipient,
        withdrawal.amount,
    );
    // The contract accepts only canonical signatures (v 27/28, low s): refuse others here.
    match crypto::recover_canonical(&digest, &call.signature) {
        Ok(signer) if signer == validator => {}
        Ok(signer) => {
            return Err(ProtocolError::BadReleaseSignature {
                id: call.id,
                digest,
                validator,
                reason: format!("it recovers to {signer}"),
            });
        }
        Err(e) => {
            return Err(ProtocolError::BadReleaseSignature {
                id: call.id,
                digest,
                validator,
                reason: e.to_string(),
            });
        }
    }
    withdrawal.signatures.push(ReleaseSignature { validator, signature: call.signature.clone() });
    let signatures = withdrawal.signatures.len() as u64;
    ctx.state.put_withdrawal(call.id, withdrawal);
    ctx.emit(Event::WithdrawalSigned { id: call.id, validator, signatures });
    Ok(())
}
