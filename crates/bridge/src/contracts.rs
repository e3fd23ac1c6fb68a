//! Bindings of the mainchain contracts (`contracts/src`), their compiled artifacts, and the
//! explanation of their reverts.

use std::path::{Path, PathBuf};

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolConstructor, SolInterface};

use crate::BridgeError;

alloy::sol! {
    /// The development RLC token (an ERC-20 with 9 decimals).
    #[sol(rpc)]
    contract Rlc {
        constructor(uint256 initialSupply);
        event Transfer(address indexed from, address indexed to, uint256 value);
        event Approval(address indexed owner, address indexed spender, uint256 value);
        error InsufficientBalance(address account, uint256 balance, uint256 needed);
        error InsufficientAllowance(address owner, address spender, uint256 allowance, uint256 needed);
        error ZeroAddressRecipient();
        function totalSupply() external view returns (uint256);
        function decimals() external view returns (uint8);
        function balanceOf(address account) external view returns (uint256);
        function allowance(address owner, address spender) external view returns (uint256);
        function transfer(address to, uint256 amount) external returns (bool);
        function approve(address spender, uint256 amount) external returns (bool);
        function transferFrom(address from, address to, uint256 amount) external returns (bool);
    }

    /// The lock/release bridge: M of N validators' signatures release what deposits locked.
    #[sol(rpc)]
    contract Bridge {
        constructor(address token, uint64 xiebaoChainId, address[] validators, uint256 threshold, uint256 maxPerTransfer, uint256 dailyLimit);
        event Deposited(uint256 indexed id, address indexed from, address indexed recipient, uint256 amount);
        event Released(uint256 indexed id, address indexed recipient, uint256 amount);
        event ValidatorsChanged(uint256 indexed nonce, address[] validators, uint256 threshold);
        event LimitsChanged(uint256 maxPerTransfer, uint256 dailyLimit);
        event PausedChanged(bool paused);
        error NotOwner(address caller);
        error IsPaused();
        error ZeroAmount();
        error ZeroRecipient();
        error OverTransferLimit(uint256 amount, uint256 maxPerTransfer);
        error OverDailyLimit(uint256 day, uint256 used, uint256 amount, uint256 dailyLimit);
        error AlreadyReleased(uint256 id);
        error BadSignature(uint256 index);
        error NotValidator(uint256 index, address signer);
        error SignersNotIncreasing(uint256 index, address signer);
        error NotEnoughSignatures(uint256 given, uint256 threshold);
        error BadValidatorSet(string reason);
        error TokenTransferFailed();
        function deposit(uint256 amount, address recipient) external returns (uint256 id);
        function release(uint256 id, address recipient, uint256 amount, bytes[] signatures) external;
        function setValidators(address[] validators, uint256 threshold, bytes[] signatures) external;
        function setLimits(uint256 maxPerTransfer, uint256 dailyLimit) external;
        function pause() external;
        function unpause() external;
        function token() external view returns (address);
        function xiebaoChainId() external view returns (uint64);
        function owner() external view returns (address);
        function validators() external view returns (address[]);
        function threshold() external view returns (uint256);
        function validatorNonce() external view returns (uint256);
        function depositCount() external view returns (uint256);
        function locked() external view returns (uint256);
        function released(uint256 id) external view returns (bool);
        function paused() external view returns (bool);
        function maxPerTransfer() external view returns (uint256);
        function dailyLimit() external view returns (uint256);
        function depositedOn(uint256 day) external view returns (uint256);
        function releasedOn(uint256 day) external view returns (uint256);
        function releaseDigest(uint256 id, address recipient, uint256 amount) external view returns (bytes32);
        function validatorsDigest(address[] validators, uint256 threshold) external view returns (bytes32);
    }
}

/// The compiled contracts' creation code, as `scripts/build-contracts.sh` writes it.
#[derive(Clone, Debug)]
pub struct Artifacts {
    /// `Rlc`'s creation code.
    pub rlc: Bytes,
    /// `Bridge`'s creation code.
    pub bridge: Bytes,
}

impl Artifacts {
    /// The default folder: `contracts/out` of the source tree.
    pub fn default_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts/out")
    }

    /// Reads `Rlc.bin` and `Bridge.bin` (hex) from `dir`.
    ///
    /// # Errors
    /// [`BridgeError::Artifacts`] naming the file and how to build it.
    pub fn load(dir: &Path) -> Result<Self, BridgeError> {
        let read = |name: &str| -> Result<Bytes, BridgeError> {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path).map_err(|e| BridgeError::Artifacts {
                path: path.clone(),
                reason: format!("{e}; build the contracts with scripts/build-contracts.sh"),
            })?;
            alloy::primitives::hex::decode(text.trim())
                .map(Bytes::from)
                .map_err(|e| BridgeError::Artifacts { path, reason: format!("not hex: {e}") })
        };
        Ok(Self { rlc: read("Rlc.bin")?, bridge: read("Bridge.bin")? })
    }
}

/// A provider that signs with `key` (for sending mainchain transactions).
///
/// # Errors
/// [`BridgeError::Mainchain`] if the URL is unusable.
pub fn signing_provider(
    url: &str,
    key: &xiebao_types::SecretKey,
) -> Result<DynProvider, BridgeError> {
    let signer = PrivateKeySigner::from_bytes(&key.to_bytes())
        .map_err(|e| BridgeError::Mainchain(format!("key unusable: {e}")))?;
    let url = url.parse().map_err(|e| BridgeError::Mainchain(format!("{url}: {e}")))?;
    Ok(ProviderBuilder::new().wallet(EthereumWallet::from(signer)).connect_http(url).erased())
}

/// A read-only provider.
///
/// # Errors
/// [`BridgeError::Mainchain`] if the URL is unusable.
pub fn provider(url: &str) -> Result<DynProvider, BridgeError> {
    let url = url.parse().map_err(|e| BridgeError::Mainchain(format!("{url}: {e}")))?;
    Ok(ProviderBuilder::new().connect_http(url).erased())
}

/// The mainchain's chain id.
///
/// # Errors
/// [`BridgeError::Mainchain`] when the node does not answer.
pub async fn chain_id(provider: &DynProvider) -> Result<u64, BridgeError> {
    provider.get_chain_id().await.map_err(|e| BridgeError::Mainchain(e.to_string()))
}

/// Deploys `code ‖ constructor` and returns the new contract's address.
async fn deploy(
    provider: &DynProvider,
    code: &Bytes,
    constructor: Vec<u8>,
) -> Result<Address, BridgeError> {
    let mut input = code.to_vec();
    input.extend_from_slice(&constructor);
    let request = TransactionRequest::default().with_deploy_code(input);
    let receipt = provider
        .send_transaction(request)
        .await
        .map_err(|e| BridgeError::Mainchain(explain(&e)))?
        .get_receipt()
        .await
        .map_err(|e| BridgeError::Mainchain(e.to_string()))?;
    if !receipt.status() {
        return Err(BridgeError::Mainchain(format!(
            "deployment transaction {} reverted",
            receipt.transaction_hash
        )));
    }
    receipt
        .contract_address
        .ok_or_else(|| BridgeError::Mainchain("deployment receipt names no contract".into()))
}

/// Deploys a development RLC token holding `supply` (nRLC) for the sender.
///
/// # Errors
/// [`BridgeError::Mainchain`] when the deployment fails.
pub async fn deploy_rlc(
    provider: &DynProvider,
    artifacts: &Artifacts,
    supply: U256,
) -> Result<Address, BridgeError> {
    deploy(provider, &artifacts.rlc, Rlc::constructorCall { initialSupply: supply }.abi_encode())
        .await
}

/// What a new bridge contract starts with.
#[derive(Clone, Debug)]
pub struct BridgeParams {
    /// The RLC token.
    pub token: Address,
    /// The Xiebao chain's id.
    pub xiebao_chain_id: u64,
    /// The validators' Ethereum addresses.
    pub validators: Vec<Address>,
    /// Signatures needed to release.
    pub threshold: u64,
    /// Largest transfer, nRLC.
    pub max_per_transfer: U256,
    /// Most RLC deposited (and, separately, released) per UTC day, nRLC.
    pub daily_limit: U256,
}

/// Deploys a bridge contract.
///
/// # Errors
/// [`BridgeError::Mainchain`] when the deployment fails (the revert explained).
pub async fn deploy_bridge(
    provider: &DynProvider,
    artifacts: &Artifacts,
    params: &BridgeParams,
) -> Result<Address, BridgeError> {
    let constructor = Bridge::constructorCall {
        token: params.token,
        xiebaoChainId: params.xiebao_chain_id,
        validators: params.validators.clone(),
        threshold: U256::from(params.threshold),
        maxPerTransfer: params.max_per_transfer,
        dailyLimit: params.daily_limit,
    };
    deploy(provider, &artifacts.bridge, constructor.abi_encode()).await
}

/// A contract call's failure in words: the bridge's or token's custom error decoded with its
/// values, or the node's message.
pub fn explain(error: &dyn std::fmt::Display) -> String {
    let text = error.to_string();
    // Revert data appears as a 0x-prefixed hex string in the error's data.
    for word in text.split(|c: char| !c.is_ascii_hexdigit() && c != 'x') {
        let Some(hex) = word.strip_prefix("0x") else { continue };
        let Ok(data) = alloy::primitives::hex::decode(hex) else { continue };
        if data.len() < 4 {
            continue;
        }
        if let Ok(e) = Bridge::BridgeErrors::abi_decode(&data) {
            return describe_bridge_error(&e);
        }
        if let Ok(e) = Rlc::RlcErrors::abi_decode(&data) {
            return match e {
                Rlc::RlcErrors::InsufficientBalance(e) => format!(
                    "the token balance of {} is {} nRLC, {} nRLC needed",
                    e.account, e.balance, e.needed
                ),
                Rlc::RlcErrors::InsufficientAllowance(e) => format!(
                    "{} allowed {} to take {} nRLC, {} nRLC needed",
                    e.owner, e.spender, e.allowance, e.needed
                ),
                Rlc::RlcErrors::ZeroAddressRecipient(_) => {
                    "the token refuses transfers to the zero address".into()
                }
            };
        }
    }
    text
}

fn describe_bridge_error(error: &Bridge::BridgeErrors) -> String {
    use Bridge::BridgeErrors as E;
    match error {
        E::NotOwner(e) => {
            format!("only the bridge's owner may do this; the caller is {}", e.caller)
        }
        E::IsPaused(_) => "the bridge is paused by its owner".into(),
        E::ZeroAmount(_) => "the amount must be more than 0".into(),
        E::ZeroRecipient(_) => "the recipient must not be the zero address".into(),
        E::OverTransferLimit(e) => format!(
            "{} nRLC is over the bridge's per-transfer limit of {} nRLC",
            e.amount, e.maxPerTransfer
        ),
        E::OverDailyLimit(e) => format!(
            "the daily limit is {} nRLC and {} nRLC already moved on day {}; {} nRLC more does not fit (try again tomorrow, UTC)",
            e.dailyLimit, e.used, e.day, e.amount
        ),
        E::AlreadyReleased(e) => format!("withdrawal {} was already released", e.id),
        E::BadSignature(e) => format!("signature #{} is malformed or not canonical", e.index),
        E::NotValidator(e) => {
            format!("signature #{} is by {}, which is not a bridge validator", e.index, e.signer)
        }
        E::SignersNotIncreasing(e) => format!(
            "signature #{} (by {}) is out of order: signers must be sorted by address, each once",
            e.index, e.signer
        ),
        E::NotEnoughSignatures(e) => {
            format!("{} signatures given, the bridge needs {}", e.given, e.threshold)
        }
        E::BadValidatorSet(e) => format!("bad validator set: {}", e.reason),
        E::TokenTransferFailed(_) => "the token transfer failed".into(),
    }
}
