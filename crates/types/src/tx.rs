//! Transactions: `{chain_id, nonce, calls[], signature}` in one canonical binary encoding (RLP).
//!
//! RLP decoding is canonical (no leading zeros, shortest length prefixes), and
//! [`SignedTransaction::decode`] also rejects trailing bytes and oversized input, so every
//! transaction has exactly one encoding and one hash.

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_rlp::{Decodable, Encodable, Header, RlpDecodable, RlpEncodable};

use crate::amount::Nrlc;
use crate::crypto::{self, SecretKey, SignatureError};
use crate::order::{AppOrder, DatasetOrder, OrderOperation, RequestOrder, WorkerpoolOrder};

/// Largest encoded transaction accepted, in bytes.
pub const TX_SIZE_MAX_BYTES: usize = 1 << 20;
/// Most calls one transaction may carry.
pub const TX_CALLS_MAX: usize = 4096;

/// Domain prefix of the transaction signing hash; renaming it is a breaking change.
const TX_SIGNING_DOMAIN: &[u8] = b"_XIEBAO_TYPES_TRANSACTION";

/// An unsigned transaction: a batch of calls applied atomically.
#[derive(Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Transaction {
    /// The chain this transaction is for (replay protection across networks).
    pub chain_id: u64,
    /// The sender's nonce: its count of previously applied transactions.
    pub nonce: u64,
    /// The calls, applied in order; if one fails, none is applied.
    pub calls: Vec<Call>,
}

impl Transaction {
    /// The hash the sender signs: `keccak256("_XIEBAO_TYPES_TRANSACTION" ‖ rlp(tx))`.
    pub fn signing_hash(&self) -> B256 {
        let mut buf = Vec::with_capacity(TX_SIGNING_DOMAIN.len() + self.length());
        buf.extend_from_slice(TX_SIGNING_DOMAIN);
        self.encode(&mut buf);
        keccak256(buf)
    }

    /// Signs the transaction.
    pub fn sign(self, key: &SecretKey) -> SignedTransaction {
        let signature = key.sign_hash(&self.signing_hash());
        SignedTransaction { tx: self, signature }
    }
}

/// A transaction with its sender's 65-byte secp256k1 signature.
#[derive(Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct SignedTransaction {
    /// The transaction.
    pub tx: Transaction,
    /// `r ‖ s ‖ v` over [`Transaction::signing_hash`].
    pub signature: Bytes,
}

/// A transaction's bytes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Larger than [`TX_SIZE_MAX_BYTES`].
    #[error("transaction is {size} bytes, above the limit of {max} bytes")]
    TooLarge {
        /// Bytes given.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not canonical RLP of a signed transaction.
    #[error("transaction is not a canonical encoding: {0}")]
    Rlp(String),
    /// Bytes left after the transaction.
    #[error("{count} trailing bytes after the transaction")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// More calls than [`TX_CALLS_MAX`].
    #[error("transaction carries {count} calls, above the limit of {max}")]
    TooManyCalls {
        /// Calls given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// No call at all.
    #[error("transaction carries no call")]
    NoCalls,
}

impl SignedTransaction {
    /// The canonical encoding.
    pub fn encode_to_vec(&self) -> Vec<u8> {
        alloy_rlp::encode(self)
    }

    /// Decodes the canonical encoding, enforcing the size and call limits.
    ///
    /// # Errors
    /// [`DecodeError`].
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > TX_SIZE_MAX_BYTES {
            return Err(DecodeError::TooLarge { size: bytes.len(), max: TX_SIZE_MAX_BYTES });
        }
        let mut buf = bytes;
        let tx =
            <Self as Decodable>::decode(&mut buf).map_err(|e| DecodeError::Rlp(e.to_string()))?;
        if !buf.is_empty() {
            return Err(DecodeError::TrailingBytes { count: buf.len() });
        }
        if tx.tx.calls.is_empty() {
            return Err(DecodeError::NoCalls);
        }
        if tx.tx.calls.len() > TX_CALLS_MAX {
            return Err(DecodeError::TooManyCalls { count: tx.tx.calls.len(), max: TX_CALLS_MAX });
        }
        // Decoding is canonical only if re-encoding gives the same bytes.
        if tx.encode_to_vec() != bytes {
            return Err(DecodeError::Rlp("non-canonical encoding".into()));
        }
        Ok(tx)
    }

    /// The transaction id: `keccak256` of its canonical encoding, signature included (so two
    /// senders' identical calls have different ids; signatures have one accepted form).
    pub fn hash(&self) -> B256 {
        keccak256(self.encode_to_vec())
    }

    /// Recovers the sender from its canonical signature.
    ///
    /// # Errors
    /// When the signature is not canonical, is malformed or does not recover.
    pub fn recover_sender(&self) -> Result<Address, SignatureError> {
        crypto::recover_canonical(&self.tx.signing_hash(), &self.signature)
    }
}

/// The kind of an app: how workers run it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum AppType {
    /// A WebAssembly (WASI) module: the default, deterministic runtime.
    Wasm,
    /// An OCI container image (podman), PoCo's "DOCKER".
    Oci,
}

impl AppType {
    /// The name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wasm => "WASM",
            Self::Oci => "OCI",
        }
    }
}

impl std::str::FromStr for AppType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "WASM" => Ok(Self::Wasm),
            "OCI" | "DOCKER" => Ok(Self::Oci),
            _ => Err(format!("unknown app type `{s}`: expected WASM or OCI (DOCKER)")),
        }
    }
}

/// Implements the canonical (RLP) encoding of a field-less enum as one byte per variant.
#[macro_export]
macro_rules! rlp_u8_enum {
    ($ty:ident { $($variant:ident = $code:literal),* $(,)? }) => {
        impl $crate::__private::alloy_rlp::Encodable for $ty {
            fn encode(&self, out: &mut dyn $crate::__private::alloy_rlp::BufMut) {
                let code: u8 = match self { $(Self::$variant => $code),* };
                code.encode(out);
            }
            fn length(&self) -> usize {
                let code: u8 = match self { $(Self::$variant => $code),* };
                code.length()
            }
        }
        impl $crate::__private::alloy_rlp::Decodable for $ty {
            fn decode(buf: &mut &[u8]) -> $crate::__private::alloy_rlp::Result<Self> {
                match <u8 as $crate::__private::alloy_rlp::Decodable>::decode(buf)? {
                    $($code => Ok(Self::$variant),)*
                    _ => Err($crate::__private::alloy_rlp::Error::Custom(
                        concat!("unknown ", stringify!($ty)),
                    )),
                }
            }
        }
    };
}

rlp_u8_enum!(AppType { Wasm = 1, Oci = 2 });
rlp_u8_enum!(OrderOperation { Sign = 0, Close = 1 });

/// A workerpool's policies, set by its owner and frozen into each deal at match time.
#[derive(
    Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable, serde::Serialize, serde::Deserialize,
)]
pub struct PoolPolicy {
    /// Each contribution's stake, percent of the workerpool price (PoCo default 30).
    pub worker_stake_ratio: u8,
    /// The scheduler's share of the worker reward, percent (PoCo default 1).
    pub scheduler_reward_ratio: u8,
    /// Least membership stake a worker must keep bonded to contribute.
    pub min_worker_stake: Nrlc,
    /// Seconds between a worker's leave request and the release of its stake.
    pub unbonding_delay_s: u64,
}

impl Default for PoolPolicy {
    fn default() -> Self {
        Self {
            worker_stake_ratio: 30,
            scheduler_reward_ratio: 1,
            min_worker_stake: Nrlc::ZERO,
            unbonding_delay_s: 0,
        }
    }
}

macro_rules! calls {
    ($(
        $(#[$doc:meta])*
        $name:ident = $code:literal { $( $(#[$fdoc:meta])* $field:ident : $fty:ty ),* $(,)? }
    )*) => {
        $(
            $(#[$doc])*
            #[derive(Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable)]
            pub struct $name { $( $(#[$fdoc])* pub $field: $fty ),* }

            impl From<$name> for Call {
                fn from(call: $name) -> Self {
                    Call::$name(Box::new(call))
                }
            }
        )*

        /// One operation of a transaction. Each payload is boxed: the payloads' sizes differ by
        /// 30× (a transfer's 36 bytes, a match's four orders), and a node holds hundreds of
        /// thousands of calls at once (mempool, blocks in flight), each as large as the largest
        /// variant if inline (1,216 bytes).
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Call {
            $( $(#[$doc])* $name(Box<$name>), )*
        }

        impl Call {
            /// The call's name, as shown in errors and receipts.
            pub fn name(&self) -> &'static str {
                match self { $( Self::$name(_) => stringify!($name), )* }
            }

            fn code(&self) -> u8 {
                match self { $( Self::$name(_) => $code, )* }
            }

            fn payload_length(&self) -> usize {
                match self { $( Self::$name(p) => p.length(), )* }
            }
        }

        impl Encodable for Call {
            fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
                let code = self.code();
                Header { list: true, payload_length: code.length() + self.payload_length() }
                    .encode(out);
                code.encode(out);
                match self { $( Self::$name(p) => p.encode(out), )* }
            }
            fn length(&self) -> usize {
                let payload_length = self.code().length() + self.payload_length();
                alloy_rlp::length_of_length(payload_length) + payload_length
            }
        }

        impl Decodable for Call {
            fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
                let header = Header::decode(buf)?;
                if !header.list {
                    return Err(alloy_rlp::Error::UnexpectedString);
                }
                let (mut body, rest) = buf.split_at_checked(header.payload_length)
                    .ok_or(alloy_rlp::Error::InputTooShort)?;
                let call = match u8::decode(&mut body)? {
                    $( $code => Self::$name(Box::new($name::decode(&mut body)?)), )*
                    _ => return Err(alloy_rlp::Error::Custom("unknown call code")),
                };
                if !body.is_empty() {
                    return Err(alloy_rlp::Error::ListLengthMismatch {
                        expected: header.payload_length,
                        got: header.payload_length - body.len(),
                    });
                }
                *buf = rest;
                Ok(call)
            }
        }
    };
}

calls! {
    /// Move free balance to another account.
    Transfer = 1 {
        /// Recipient.
        to: Address,
        /// Amount moved.
        amount: Nrlc,
    }
    /// Register an app owned by `owner`.
    CreateApp = 2 {
        /// Owner of the new entry.
        owner: Address,
        /// Display name.
        name: String,
        /// How workers run it.
        app_type: AppType,
        /// Where the code is (a URL, a content id or an image reference).
        multiaddr: Bytes,
        /// sha256 of the code, verified by workers before running it.
        checksum: B256,
        /// TEE enclave configuration (JSON), empty for standard apps.
        mrenclave: Bytes,
    }
    /// Register a dataset owned by `owner`.
    CreateDataset = 3 {
        /// Owner of the new entry.
        owner: Address,
        /// Display name.
        name: String,
        /// Where the (possibly encrypted) file is.
        multiaddr: Bytes,
        /// sha256 of the file.
        checksum: B256,
    }
    /// Register a workerpool owned by `owner`.
    CreateWorkerpool = 4 {
        /// Owner of the new entry (the scheduler's key).
        owner: Address,
        /// Display description.
        description: String,
        /// Initial policies.
        policy: PoolPolicy,
    }
    /// Give an app, dataset or workerpool to another owner (owner only).
    TransferAsset = 5 {
        /// The entry.
        asset: Address,
        /// New owner.
        to: Address,
    }
    /// Change a workerpool's policies (owner only); deals keep the policies they were made with.
    ChangePoolPolicy = 6 {
        /// The workerpool.
        workerpool: Address,
        /// New policies.
        policy: PoolPolicy,
    }
    /// Create a category (authority only).
    CreateCategory = 7 {
        /// Name, e.g. `XS`.
        name: String,
        /// Description (JSON in PoCo).
        description: String,
        /// The work clock T in seconds.
        work_clock_time_ref_s: u64,
    }
    /// Set the TEE broker that may authorize enclave contributions (authority only).
    SetTeeBroker = 8 {
        /// The broker, or zero for none.
        broker: Address,
    }
    /// Add a validator from the next epoch (authority only).
    AddValidator = 9 {
        /// The validator's Ethereum address (bridge signatures).
        address: Address,
        /// Its ed25519 consensus public key.
        consensus_key: B256,
        /// Where peers reach it (`IP:PORT`), or empty.
        p2p: String,
    }
    /// Remove a validator from the next epoch (authority only).
    RemoveValidator = 10 {
        /// The validator's Ethereum address.
        address: Address,
    }
    /// Create a restriction group owned by the sender; its address is derived from sender and salt.
    CreateGroup = 11 {
        /// Any value making the group address unique.
        salt: B256,
    }
    /// Add (`member = true`) or remove an address from a group (group owner only).
    SetGroupMember = 12 {
        /// The group.
        group: Address,
        /// The account added or removed.
        account: Address,
        /// Whether it is a member afterwards.
        member: bool,
    }
    /// Presign or cancel an app order (owner, or relayed with the owner's signature).
    ManageAppOrder = 13 {
        /// The order.
        order: AppOrder,
        /// Presign or cancel.
        operation: OrderOperation,
        /// The owner's signature of the operation when relayed by someone else, else empty.
        sign: Bytes,
    }
    /// Presign or cancel a dataset order.
    ManageDatasetOrder = 14 {
        /// The order.
        order: DatasetOrder,
        /// Presign or cancel.
        operation: OrderOperation,
        /// The owner's signature of the operation when relayed by someone else, else empty.
        sign: Bytes,
    }
    /// Presign or cancel a workerpool order.
    ManageWorkerpoolOrder = 15 {
        /// The order.
        order: WorkerpoolOrder,
        /// Presign or cancel.
        operation: OrderOperation,
        /// The owner's signature of the operation when relayed by someone else, else empty.
        sign: Bytes,
    }
    /// Presign or cancel a request order.
    ManageRequestOrder = 16 {
        /// The order.
        order: RequestOrder,
        /// Presign or cancel.
        operation: OrderOperation,
        /// The owner's signature of the operation when relayed by someone else, else empty.
        sign: Bytes,
    }
    /// Match four orders into a deal (anyone). A dataset order with a zero `dataset` means none.
    MatchOrders = 17 {
        /// The app order.
        app: AppOrder,
        /// The dataset order, or [`DatasetOrder::none`].
        dataset: DatasetOrder,
        /// The workerpool order.
        workerpool: WorkerpoolOrder,
        /// The request order.
        request: RequestOrder,
    }
    /// Initialize task `idx` of a deal (anyone).
    Initialize = 18 {
        /// The deal.
        deal_id: B256,
        /// Absolute task index within the request order.
        idx: U256,
    }
    /// Commit a result (a worker authorized by the pool).
    Contribute = 19 {
        /// The task.
        task_id: B256,
        /// `keccak256(taskid ‖ digest)`.
        result_hash: B256,
        /// `keccak256(worker ‖ taskid ‖ digest)`.
        result_seal: B256,
        /// The enclave's challenge address, zero for standard tasks.
        enclave_challenge: Address,
        /// The enclave's signature of `(resultHash, resultSeal)`, empty for standard tasks.
        enclave_sign: Bytes,
        /// The pool owner's (or TEE broker's) authorization signature.
        authorization_sign: Bytes,
    }
    /// Reveal the digest behind a winning contribution.
    Reveal = 20 {
        /// The task.
        task_id: B256,
        /// The digest committed to.
        result_digest: B256,
    }
    /// Complete a task and settle it (pool owner).
    Finalize = 21 {
        /// The task.
        task_id: B256,
        /// Off-chain result link.
        results: Bytes,
        /// Callback data (its keccak must equal the digest when the deal has a callback).
        results_callback: Bytes,
    }
    /// Reopen a task whose winners never revealed (pool owner).
    Reopen = 22 {
        /// The task.
        task_id: B256,
    }
    /// Fail a task past its final deadline and refund (anyone).
    Claim = 23 {
        /// The task.
        task_id: B256,
    }
    /// Contribute and finalize in one call (trust ≤ 1, first contributor).
    ContributeAndFinalize = 24 {
        /// The task.
        task_id: B256,
        /// The result digest.
        result_digest: B256,
        /// Off-chain result link.
        results: Bytes,
        /// Callback data (its keccak must equal the digest when the deal has a callback).
        results_callback: Bytes,
        /// The enclave's challenge address, zero for standard tasks.
        enclave_challenge: Address,
        /// The enclave's signature, empty for standard tasks.
        enclave_sign: Bytes,
        /// The pool owner's (or TEE broker's) authorization signature.
        authorization_sign: Bytes,
    }
    /// Join a workerpool (or add to one's stake in it) by bonding `stake` from free balance.
    JoinPool = 25 {
        /// The workerpool.
        workerpool: Address,
        /// Amount bonded now (added to any stake already bonded there).
        stake: Nrlc,
    }
    /// Leave one's workerpool: the bonded stake is released after the pool's unbonding delay.
    LeavePool = 26 {
        /// The workerpool left.
        workerpool: Address,
    }
    /// Set the bridge to the mainchain (authority only): where its contract is, how many
    /// validators must agree, and the largest transfer.
    SetBridge = 27 {
        /// The mainchain's chain id (1 for Ethereum).
        mainchain_id: u64,
        /// The bridge contract on the mainchain.
        contract: Address,
        /// Validators that must attest a deposit before it is minted (M of N).
        threshold: u64,
        /// Largest deposit or withdrawal, nRLC (the contract's per-transfer limit).
        max_per_transfer: Nrlc,
    }
    /// A validator attests a confirmed mainchain deposit; the RLC is minted to the recipient
    /// when `threshold` validators attested the same recipient and amount.
    AttestDeposit = 28 {
        /// The contract's deposit id.
        id: u64,
        /// Who receives the RLC on this chain.
        recipient: Address,
        /// Amount, nRLC.
        amount: Nrlc,
        /// The mainchain transaction that made the deposit (for display).
        mainchain_tx: B256,
    }
    /// Burn free RLC to withdraw it to the mainchain; validators then sign its release.
    Withdraw = 29 {
        /// Who receives the RLC on the mainchain.
        recipient: Address,
        /// Amount, nRLC.
        amount: Nrlc,
    }
    /// A validator's signature of a withdrawal's release message (see
    /// [`crate::bridge::release_digest`]), collected on chain for anyone to submit.
    SignWithdrawal = 30 {
        /// The withdrawal id.
        id: u64,
        /// The raw 65-byte signature of the release digest.
        signature: Bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SignedTransaction {
        let key = SecretKey::from_label("sender");
        Transaction {
            chain_id: 7,
            nonce: 3,
            calls: vec![
                Transfer { to: Address::repeat_byte(1), amount: Nrlc(5) }.into(),
                Initialize { deal_id: B256::repeat_byte(2), idx: U256::from(9) }.into(),
                LeavePool { workerpool: Address::repeat_byte(3) }.into(),
            ],
        }
        .sign(&key)
    }

    #[test]
    fn encoding_round_trips_and_recovers_the_sender() {
        let tx = sample();
        let bytes = tx.encode_to_vec();
        let back = SignedTransaction::decode(&bytes).unwrap();
        assert_eq!(back, tx);
        assert_eq!(back.recover_sender(), Ok(SecretKey::from_label("sender").address()));
    }

    #[test]
    fn trailing_and_truncated_bytes_are_rejected() {
        let mut bytes = sample().encode_to_vec();
        bytes.push(0);
        assert_eq!(SignedTransaction::decode(&bytes), Err(DecodeError::TrailingBytes { count: 1 }));
        bytes.truncate(bytes.len() - 3);
        assert!(matches!(SignedTransaction::decode(&bytes), Err(DecodeError::Rlp(_))));
    }

    /// A call in memory is a tag and a pointer, whatever its kind (a node holds many).
    #[test]
    fn a_call_is_two_words() {
        assert_eq!(std::mem::size_of::<Call>(), 16);
    }

    #[test]
    fn golden_signing_hash_is_stable() {
        // A change here is a breaking change of the transaction format: make it deliberately.
        let tx = Transaction {
            chain_id: 1,
            nonce: 0,
            calls: vec![Transfer { to: Address::ZERO, amount: Nrlc(1) }.into()],
        };
        assert_eq!(
            hex_of(&alloy_rlp::encode(&tx)),
            "dc0180d9d801d694000000000000000000000000000000000000000001"
        );
    }

    fn hex_of(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
