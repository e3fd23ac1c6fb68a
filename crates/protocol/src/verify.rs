//! The stateless half of applying a transaction: recover every signer it carries.
//!
//! Signature recovery is the costliest step and needs no state, so it runs before `apply`,
//! possibly in parallel and when a transaction enters the mempool; `apply` then only compares
//! the recovered addresses with the owners the rules name.

use alloy_primitives::{Address, B256};
use xiebao_types::crypto::{self, SignatureError};
use xiebao_types::ids;
use xiebao_types::order::{Domain, SignedOrder};
use xiebao_types::tx::Call;
use xiebao_types::{SignedTransaction, Transaction};

/// The result of recovering one signature.
pub type Recovered = Result<Address, SignatureError>;

/// Signers recovered for one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CallSigners {
    /// The call carries no signature.
    None,
    /// An order-management call: the order hash and, if relayed, the operation's signer.
    Manage { order_hash: B256, operation_signer: Option<Recovered> },
    /// matchOrders: the four order hashes and signers (app, dataset, workerpool, request).
    Match { hashes: [B256; 4], signers: [Recovered; 4] },
    /// A contribution: the authorization's signer and, for TEE, the enclave's.
    Contribution { authorization: Recovered, enclave: Option<Recovered> },
}

/// A transaction whose signatures were all recovered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedTx {
    /// The transaction.
    pub tx: Transaction,
    /// Its id.
    pub hash: B256,
    /// Its sender.
    pub sender: Address,
    /// The sender's signature.
    pub signature: alloy_primitives::Bytes,
    /// The domain separator the order signatures were checked under.
    pub(crate) domain_separator: B256,
    pub(crate) signers: Vec<CallSigners>,
}

impl VerifiedTx {
    /// Recovers the sender and every signature inside the calls.
    ///
    /// # Errors
    /// Only when the transaction's own signature is unusable; a bad signature inside a call is
    /// kept and reported by `apply` with the rule it breaks.
    pub fn new(signed: SignedTransaction, domain: &Domain) -> Result<Self, SignatureError> {
        let hash = signed.hash();
        let sender = signed.recover_sender()?;
        Ok(Self::with_sender(signed, hash, sender, domain))
    }

    /// Recovers every signature inside the calls of a transaction whose id and sender are
    /// already known (`hash` = `signed.hash()`, `sender` = `signed.recover_sender()`): a node
    /// recovers the sender first, checks what admission needs, and only then pays for these.
    pub fn with_sender(
        signed: SignedTransaction,
        hash: B256,
        sender: Address,
        domain: &Domain,
    ) -> Self {
        debug_assert_eq!(hash, signed.hash());
        let signers =
            signed.tx.calls.iter().map(|call| call_signers(call, sender, domain)).collect();
        Self {
            tx: signed.tx,
            hash,
            sender,
            signature: signed.signature,
            domain_separator: domain.separator(),
            signers,
        }
    }

    /// The signed transaction back.
    pub fn signed(&self) -> SignedTransaction {
        SignedTransaction { tx: self.tx.clone(), signature: self.signature.clone() }
    }
}

/// How many signatures [`VerifiedTx::with_sender`] recovers for `tx`'s calls (the sender's own
/// not counted): what admission charges a sender before paying for them.
pub fn call_recoveries(tx: &Transaction) -> usize {
    tx.calls
        .iter()
        .map(|call| match call {
            Call::ManageAppOrder(m) => usize::from(!m.sign.is_empty()),
            Call::ManageDatasetOrder(m) => usize::from(!m.sign.is_empty()),
            Call::ManageWorkerpoolOrder(m) => usize::from(!m.sign.is_empty()),
            Call::ManageRequestOrder(m) => usize::from(!m.sign.is_empty()),
            Call::MatchOrders(_) => 4,
            Call::Contribute(c) => 1 + usize::from(!c.enclave_challenge.is_zero()),
            Call::ContributeAndFinalize(c) => 1 + usize::from(!c.enclave_challenge.is_zero()),
            _ => 0,
        })
        .sum()
}

fn recover_order(order: &impl SignedOrder, hash: &B256) -> Recovered {
    crypto::recover(hash, order.sign())
}

fn call_signers(call: &Call, sender: Address, domain: &Domain) -> CallSigners {
    macro_rules! manage {
        ($m:expr) => {{
            let order_hash = $m.order.hash(domain);
            let operation_signer = (!$m.sign.is_empty())
                .then(|| crypto::recover(&$m.order.operation_hash(domain, $m.operation), &$m.sign));
            CallSigners::Manage { order_hash, operation_signer }
        }};
    }
    match call {
        Call::ManageAppOrder(m) => manage!(m),
        Call::ManageDatasetOrder(m) => manage!(m),
        Call::ManageWorkerpoolOrder(m) => manage!(m),
        Call::ManageRequestOrder(m) => manage!(m),
        Call::MatchOrders(m) => {
            let hashes = [
                m.app.hash(domain),
                m.dataset.hash(domain),
                m.workerpool.hash(domain),
                m.request.hash(domain),
            ];
            let signers = [
                recover_order(&m.app, &hashes[0]),
                recover_order(&m.dataset, &hashes[1]),
                recover_order(&m.workerpool, &hashes[2]),
                recover_order(&m.request, &hashes[3]),
            ];
            CallSigners::Match { hashes, signers }
        }
        Call::Contribute(c) => contribution_signers(
            sender,
            &c.task_id,
            &c.result_hash,
            &c.result_seal,
            &c.enclave_challenge,
            &c.enclave_sign,
            &c.authorization_sign,
        ),
        Call::ContributeAndFinalize(c) => {
            let result_hash = ids::result_hash(&c.task_id, &c.result_digest);
            let result_seal = ids::result_seal(&sender, &c.task_id, &c.result_digest);
            contribution_signers(
                sender,
                &c.task_id,
                &result_hash,
                &result_seal,
                &c.enclave_challenge,
                &c.enclave_sign,
                &c.authorization_sign,
            )
        }
        _ => CallSigners::None,
    }
}

fn contribution_signers(
    worker: Address,
    task_id: &B256,
    result_hash: &B256,
    result_seal: &B256,
    enclave_challenge: &Address,
    enclave_sign: &[u8],
    authorization_sign: &[u8],
) -> CallSigners {
    let authorization = crypto::recover_eth_signed(
        &ids::authorization_hash(&worker, task_id, enclave_challenge),
        authorization_sign,
    );
    let enclave = (!enclave_challenge.is_zero()).then(|| {
        crypto::recover_eth_signed(
            &ids::enclave_message_hash(result_hash, result_seal),
            enclave_sign,
        )
    });
    CallSigners::Contribution { authorization, enclave }
}
