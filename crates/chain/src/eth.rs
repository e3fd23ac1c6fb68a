//! The Ethereum face's read methods on a node (see `xiebao_rpc::eth`).

use std::sync::Arc;

use alloy_primitives::{Address, B64, B256, Bytes, U64, U256};
use jsonrpsee::types::ErrorObjectOwned;
use xiebao_rpc::eth::{
    BlockId, BlockTag, CallRequest, EthApiServer, EthBlock, FeeHistory, WEI_PER_NRLC,
};
use xiebao_rpc::{codes, error};

use crate::app::Chain;

/// Gas limit shown on every block: nothing is metered, so any large constant will do.
const GAS_LIMIT: u64 = 1 << 50;
/// Most blocks one `eth_feeHistory` covers (as Ethereum nodes cap it).
const FEE_HISTORY_BLOCKS_MAX: u64 = 1_024;

/// The `eth_` face of one node.
pub(crate) struct Eth {
    pub(crate) chain: Arc<Chain>,
}

impl Eth {
    /// The height `block` names, or an error naming what this node cannot answer.
    fn height(&self, block: Option<BlockId>) -> Result<u64, ErrorObjectOwned> {
        let head = self.chain.head().height;
        match block {
            None
            | Some(BlockId::Tag(
                BlockTag::Latest | BlockTag::Safe | BlockTag::Finalized | BlockTag::Pending,
            )) => Ok(head),
            Some(BlockId::Tag(BlockTag::Earliest)) => Ok(0),
            Some(BlockId::Number(n)) => Ok(n.to()),
        }
    }

    /// State is kept at the head only: other heights are refused with the rule.
    fn at_head(&self, block: Option<BlockId>) -> Result<(), ErrorObjectOwned> {
        let head = self.chain.head().height;
        let height = self.height(block)?;
        if height != head {
            return Err(error(
                codes::BAD_REQUEST,
                format!(
                    "state at block {height} is not kept: this node answers for its head, block {head} (use \"latest\")"
                ),
            ));
        }
        Ok(())
    }
}

#[jsonrpsee::core::async_trait]
impl EthApiServer for Eth {
    async fn call(
        &self,
        request: CallRequest,
        block: Option<BlockId>,
    ) -> Result<Bytes, ErrorObjectOwned> {
        self.at_head(block)?;
        let domain = self.chain.domain();
        if request.to != Some(domain.verifying_contract) {
            // An account without code: the call returns nothing, as on Ethereum.
            return Ok(Bytes::new());
        }
        let input =
            request.input.as_ref().or(request.data.as_ref()).map_or(&[][..], |i| i.as_ref());
        // A task is fetched first: reading the store must not happen under the state's lock.
        let task = match crate::poco::task_read(input) {
            Some(id) => {
                self.chain.committed_task(&id).map_err(|e| error(codes::INTERNAL, e.to_string()))?
            }
            None => None,
        };
        let committed = self.chain.committed();
        let views =
            crate::poco::Views { state: &committed.state, domain: &domain, task: task.as_ref() };
        views.call(input).map_err(|e| error(codes::BAD_REQUEST, format!("eth_call: {e}")))
    }

    async fn chain_id(&self) -> Result<U64, ErrorObjectOwned> {
        Ok(U64::from(self.chain.domain().chain_id))
    }

    async fn net_version(&self) -> Result<String, ErrorObjectOwned> {
        Ok(self.chain.domain().chain_id.to_string())
    }

    async fn client_version(&self) -> Result<String, ErrorObjectOwned> {
        Ok(format!("xiebao/{}", env!("CARGO_PKG_VERSION")))
    }

    async fn block_number(&self) -> Result<U64, ErrorObjectOwned> {
        Ok(U64::from(self.chain.head().height))
    }

    async fn syncing(&self) -> Result<bool, ErrorObjectOwned> {
        Ok(false)
    }

    async fn balance(
        &self,
        address: Address,
        block: Option<BlockId>,
    ) -> Result<U256, ErrorObjectOwned> {
        self.at_head(block)?;
        let free = self.chain.account(&address).free;
        Ok(U256::from(free.0) * U256::from(WEI_PER_NRLC))
    }

    async fn transaction_count(
        &self,
        address: Address,
        block: Option<BlockId>,
    ) -> Result<U64, ErrorObjectOwned> {
        self.at_head(block)?;
        Ok(U64::from(self.chain.account(&address).nonce))
    }

    async fn gas_price(&self) -> Result<U64, ErrorObjectOwned> {
        Ok(U64::ZERO)
    }

    async fn max_priority_fee_per_gas(&self) -> Result<U64, ErrorObjectOwned> {
        Ok(U64::ZERO)
    }

    async fn fee_history(
        &self,
        count: U64,
        newest: BlockId,
        percentiles: Option<Vec<f64>>,
    ) -> Result<FeeHistory, ErrorObjectOwned> {
        let newest = self.height(Some(newest))?.min(self.chain.head().height);
        let count = count.to::<u64>().clamp(1, FEE_HISTORY_BLOCKS_MAX).min(newest + 1);
        let blocks = count as usize;
        let percentiles = percentiles.unwrap_or_default();
        Ok(FeeHistory {
            oldest_block: U64::from(newest + 1 - count),
            base_fee_per_gas: vec![U64::ZERO; blocks + 1],
            gas_used_ratio: vec![0.0; blocks],
            reward: (!percentiles.is_empty())
                .then(|| vec![vec![U64::ZERO; percentiles.len()]; blocks]),
        })
    }

    async fn code(
        &self,
        _address: Address,
        block: Option<BlockId>,
    ) -> Result<Bytes, ErrorObjectOwned> {
        self.at_head(block)?;
        Ok(Bytes::new())
    }

    async fn accounts(&self) -> Result<Vec<Address>, ErrorObjectOwned> {
        Ok(Vec::new())
    }

    async fn block_by_number(
        &self,
        block: BlockId,
        _full: bool,
    ) -> Result<Option<EthBlock>, ErrorObjectOwned> {
        let height = self.height(Some(block))?;
        let Some(block) = self.chain.block(height) else { return Ok(None) };
        let header = &block.header;
        Ok(Some(EthBlock {
            number: U64::from(header.height),
            hash: header.hash(),
            parent_hash: header.parent,
            timestamp: U64::from(header.timestamp),
            miner: header.proposer,
            state_root: header.state_root,
            transactions_root: header.tx_root,
            receipts_root: B256::ZERO,
            logs_bloom: Bytes::from(vec![0u8; 256]),
            difficulty: U256::ZERO,
            total_difficulty: U256::ZERO,
            nonce: B64::ZERO,
            mix_hash: B256::ZERO,
            sha3_uncles: B256::ZERO,
            extra_data: Bytes::new(),
            gas_limit: U64::from(GAS_LIMIT),
            gas_used: U64::ZERO,
            base_fee_per_gas: U64::ZERO,
            size: U64::ZERO,
            transactions: block.txs.iter().map(xiebao_types::SignedTransaction::hash).collect(),
            uncles: Vec::new(),
        }))
    }
}
