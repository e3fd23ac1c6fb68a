//! The Ethereum face's read methods (`eth_`, `net_`, `web3_` namespaces): what wallets,
//! ethers, viem and cast ask a node first — chain id, head, balances, nonces, fees, blocks,
//! code.
//!
//! **The native coin is RLC.** Ethereum tools assume 18 decimals, RLC has 9: balances are
//! shown in "wei" = nRLC × 10⁹, so a wallet showing "1.0" means 1 RLC. Only the free balance
//! is shown; frozen RLC (escrowed, staked) is in `xiebao_getAccount`. Fees are zero.

use alloy_primitives::{Address, B256, Bytes, U64, U256};
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::types::ErrorObjectOwned;
use serde::{Deserialize, Serialize};

/// Wei per nRLC: Ethereum tools count 18 decimals, RLC has 9.
pub const WEI_PER_NRLC: u64 = 1_000_000_000;

/// A block selector as Ethereum clients send it: a number, or a tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BlockId {
    /// A height.
    Number(U64),
    /// `latest`, `safe`, `finalized`, `pending` (all the finalized head: blocks are final
    /// when committed) or `earliest` (genesis).
    Tag(BlockTag),
}

/// Named blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockTag {
    /// The head.
    Latest,
    /// The head (BFT finality: every committed block is final).
    Safe,
    /// The head.
    Finalized,
    /// The head (pending transactions are not executed ahead).
    Pending,
    /// Genesis.
    Earliest,
}

/// A block in Ethereum's shape (fields without a meaning here are zero or empty).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EthBlock {
    /// Height.
    pub number: U64,
    /// Header hash.
    pub hash: B256,
    /// Parent's hash.
    pub parent_hash: B256,
    /// Proposer's time, seconds.
    pub timestamp: U64,
    /// Proposer.
    pub miner: Address,
    /// State root after the block.
    pub state_root: B256,
    /// Commitment to the transactions.
    pub transactions_root: B256,
    /// Zero: receipts are not committed in the header.
    pub receipts_root: B256,
    /// Zero: no bloom filter.
    pub logs_bloom: Bytes,
    /// Zero.
    pub difficulty: U256,
    /// Zero.
    pub total_difficulty: U256,
    /// Zero.
    pub nonce: alloy_primitives::B64,
    /// Zero.
    pub mix_hash: B256,
    /// Zero.
    pub sha3_uncles: B256,
    /// Empty.
    pub extra_data: Bytes,
    /// A large constant: nothing is metered in gas.
    pub gas_limit: U64,
    /// Zero.
    pub gas_used: U64,
    /// Zero: no fees.
    pub base_fee_per_gas: U64,
    /// Encoded size is not tracked: zero.
    pub size: U64,
    /// Transaction ids.
    pub transactions: Vec<B256>,
    /// Empty.
    pub uncles: Vec<B256>,
}

/// `eth_feeHistory`'s answer: zero fees.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeeHistory {
    /// The first block of the range.
    pub oldest_block: U64,
    /// One per block of the range, and one more: zero.
    pub base_fee_per_gas: Vec<U64>,
    /// One per block: zero.
    pub gas_used_ratio: Vec<f64>,
    /// One row per block, one zero per requested percentile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward: Option<Vec<Vec<U64>>>,
}

/// An `eth_call` request: only `to` and the input (`input`, else `data`) matter; nothing is
/// metered and no state changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRequest {
    /// The account called (the hub answers PoCo's views; any other account has no code).
    #[serde(default)]
    pub to: Option<Address>,
    /// Who calls (ignored: views do not depend on it).
    #[serde(default)]
    pub from: Option<Address>,
    /// The ABI-encoded call.
    #[serde(default)]
    pub input: Option<Bytes>,
    /// The same, as older clients name it (clients such as cast send both).
    #[serde(default)]
    pub data: Option<Bytes>,
}

/// The Ethereum face's read methods.
#[rpc(server, client)]
pub trait EthApi {
    /// Calls a view without a transaction: at the hub's address (the order domain's verifying
    /// contract), PoCo v5's accessors (`viewDeal`, `viewTask`, `viewAccount`, `balanceOf`,
    /// `domain`, …) ABI-encoded as the contracts return them; any other address has no code and
    /// answers empty bytes. At the head only.
    #[method(name = "eth_call")]
    async fn call(
        &self,
        request: CallRequest,
        block: Option<BlockId>,
    ) -> Result<Bytes, ErrorObjectOwned>;

    /// The chain id (EIP-155), as a quantity.
    #[method(name = "eth_chainId")]
    async fn chain_id(&self) -> Result<U64, ErrorObjectOwned>;

    /// The chain id in decimal.
    #[method(name = "net_version")]
    async fn net_version(&self) -> Result<String, ErrorObjectOwned>;

    /// `xiebao/<version>`.
    #[method(name = "web3_clientVersion")]
    async fn client_version(&self) -> Result<String, ErrorObjectOwned>;

    /// The finalized head's height.
    #[method(name = "eth_blockNumber")]
    async fn block_number(&self) -> Result<U64, ErrorObjectOwned>;

    /// Always false: a node answers from its committed head.
    #[method(name = "eth_syncing")]
    async fn syncing(&self) -> Result<bool, ErrorObjectOwned>;

    /// An account's free RLC in wei (nRLC × 10⁹) at the head (older blocks are not kept).
    #[method(name = "eth_getBalance")]
    async fn balance(
        &self,
        address: Address,
        block: Option<BlockId>,
    ) -> Result<U256, ErrorObjectOwned>;

    /// An account's next nonce.
    #[method(name = "eth_getTransactionCount")]
    async fn transaction_count(
        &self,
        address: Address,
        block: Option<BlockId>,
    ) -> Result<U64, ErrorObjectOwned>;

    /// Zero.
    #[method(name = "eth_gasPrice")]
    async fn gas_price(&self) -> Result<U64, ErrorObjectOwned>;

    /// Zero.
    #[method(name = "eth_maxPriorityFeePerGas")]
    async fn max_priority_fee_per_gas(&self) -> Result<U64, ErrorObjectOwned>;

    /// Zero fees for the `count` blocks up to `newest`.
    #[method(name = "eth_feeHistory")]
    async fn fee_history(
        &self,
        count: U64,
        newest: BlockId,
        percentiles: Option<Vec<f64>>,
    ) -> Result<FeeHistory, ErrorObjectOwned>;

    /// No account holds code (the protocol is native, not a contract): `0x`.
    #[method(name = "eth_getCode")]
    async fn code(
        &self,
        address: Address,
        block: Option<BlockId>,
    ) -> Result<Bytes, ErrorObjectOwned>;

    /// None: the node holds no keys.
    #[method(name = "eth_accounts")]
    async fn accounts(&self) -> Result<Vec<Address>, ErrorObjectOwned>;

    /// A finalized block by height or tag (`full` transactions are not supported: ids only).
    #[method(name = "eth_getBlockByNumber")]
    async fn block_by_number(
        &self,
        block: BlockId,
        full: bool,
    ) -> Result<Option<EthBlock>, ErrorObjectOwned>;
}
