//! The chain's blocks as the consensus engine sees them: [`xiebao_node::Block`] with a
//! commonware codec (a length-prefixed canonical RLP encoding) and a digest (the header hash).

use std::sync::Arc;

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, ReadExt, Write, varint::UInt};
use commonware_consensus::types::Height;
use commonware_consensus::{BoundedBlock, Heightable};
use commonware_cryptography::{Digestible, sha256::Digest};
use xiebao_node::Block;

/// Largest encoded block accepted from the network, bytes.
pub const BLOCK_SIZE_MAX_BYTES: usize = 8 << 20;

/// A block shared between consensus, the executor and the RPC without copies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainBlock(pub Arc<Block>);

impl ChainBlock {
    /// Wraps a block.
    pub fn new(block: Block) -> Self {
        Self(Arc::new(block))
    }
}

/// The consensus digest of a header hash.
pub fn digest_of(hash: alloy_primitives::B256) -> Digest {
    Digest(hash.0)
}

impl Write for ChainBlock {
    fn write(&self, buf: &mut impl BufMut) {
        let bytes = alloy_rlp::encode(&*self.0);
        UInt(bytes.len() as u32).write(buf);
        buf.put_slice(&bytes);
    }
}

impl EncodeSize for ChainBlock {
    fn encode_size(&self) -> usize {
        let len = alloy_rlp::Encodable::length(&*self.0);
        UInt(len as u32).encode_size() + len
    }
}

impl Read for ChainBlock {
    type Cfg = usize;

    fn read_cfg(buf: &mut impl Buf, max: &usize) -> Result<Self, CodecError> {
        let len: u32 = UInt::read(buf)?.into();
        let len = len as usize;
        if len > *max {
            return Err(CodecError::InvalidLength(len));
        }
        if buf.remaining() < len {
            return Err(CodecError::EndOfBuffer);
        }
        let mut bytes = vec![0; len];
        buf.copy_to_slice(&mut bytes);
        let mut slice = bytes.as_slice();
        let block = <Block as alloy_rlp::Decodable>::decode(&mut slice)
            .map_err(|_| CodecError::Invalid("ChainBlock", "not a canonical RLP block"))?;
        if !slice.is_empty() {
            return Err(CodecError::ExtraData(slice.len()));
        }
        if alloy_rlp::Encodable::length(&block) != len {
            return Err(CodecError::Invalid("ChainBlock", "non-canonical encoding"));
        }
        Ok(Self::new(block))
    }
}

impl Digestible for ChainBlock {
    type Digest = Digest;

    fn digest(&self) -> Digest {
        digest_of(self.0.header.hash())
    }
}

impl Heightable for ChainBlock {
    fn height(&self) -> Height {
        Height::new(self.0.header.height)
    }
}

impl commonware_consensus::Block for ChainBlock {
    fn parent(&self) -> Digest {
        digest_of(self.0.header.parent)
    }
}

impl BoundedBlock for ChainBlock {
    fn max_encode_size(max: &usize) -> usize {
        UInt(*max as u32).encode_size() + max
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{Decode as _, Encode as _};
    use xiebao_node::Header;

    fn block() -> ChainBlock {
        let header = Header {
            chain_id: 7,
            height: 3,
            parent: alloy_primitives::B256::repeat_byte(1),
            timestamp: 1_700_000_000,
            proposer: alloy_primitives::Address::repeat_byte(2),
            tx_root: alloy_primitives::B256::repeat_byte(3),
            state_root: alloy_primitives::B256::repeat_byte(4),
        };
        ChainBlock::new(Block { header, txs: Vec::new() })
    }

    #[test]
    fn codec_round_trips_and_refuses_damage() {
        let block = block();
        let bytes = block.encode();
        assert_eq!(bytes.len(), block.encode_size());
        let decoded = ChainBlock::decode_cfg(bytes.clone(), &BLOCK_SIZE_MAX_BYTES).unwrap();
        assert_eq!(decoded, block);
        assert_eq!(decoded.digest(), digest_of(block.0.header.hash()));
        // Too large for the limit.
        assert!(ChainBlock::decode_cfg(bytes.clone(), &8).is_err());
        // Truncated.
        assert!(
            ChainBlock::decode_cfg(bytes.slice(..bytes.len() - 1), &BLOCK_SIZE_MAX_BYTES).is_err()
        );
        // Trailing bytes.
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(ChainBlock::decode_cfg(longer, &BLOCK_SIZE_MAX_BYTES).is_err());
    }
}
