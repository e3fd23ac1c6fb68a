//! The `tag` bitfield: what a task requires and what a workerpool offers.

use std::fmt;
use std::str::FromStr;

use alloy_primitives::B256;
use serde::{Deserialize, Serialize};

/// A bytes32 requirement/offer bitfield (bit 0 = least significant bit of the last byte).
///
/// JSON: written as the 0x bytes32; read from that, from names (`"tee,scone"`) or from an
/// array of names (`["tee", "scone"]`, the iExec SDK's form).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Tag(pub B256);

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Forms;
        impl<'de> serde::de::Visitor<'de> for Forms {
            type Value = Tag;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 0x bytes32, tag names (\"tee,scone\") or an array of names")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Tag, E> {
                text.parse().map_err(E::custom)
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Tag, A::Error> {
                let mut tag = Tag::NONE;
                // At most as many names as there are bits: a longer list is not a tag.
                for _ in 0..=256 {
                    let Some(name) = seq.next_element::<String>()? else { return Ok(tag) };
                    let named: Tag = name.parse().map_err(serde::de::Error::custom)?;
                    tag = tag.union(named);
                }
                Err(serde::de::Error::custom("a tag lists at most 256 names"))
            }
        }
        deserializer.deserialize_any(Forms)
    }
}

/// Named bits, 0-based as in iExec SDK v8+ (`tee:0, scone:1, gramine:2, tdx:3, gpu:8`).
pub const TAG_NAMES: [(&str, u8); 5] =
    [("tee", 0), ("scone", 1), ("gramine", 2), ("tdx", 3), ("gpu", 8)];

/// A tag string could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// A name outside [`TAG_NAMES`].
    #[error("unknown tag `{name}`; known tags: tee, scone, gramine, tdx, gpu, or a 0x bytes32")]
    UnknownName {
        /// The name given.
        name: String,
    },
    /// Not a 32-byte hex string.
    #[error("tag `{text}` is not a 0x-prefixed 32-byte hex value")]
    BadHex {
        /// The text given.
        text: String,
    },
}

impl Tag {
    /// No requirement.
    pub const NONE: Self = Self(B256::ZERO);

    /// The tag with only `bit` set.
    pub fn bit(bit: u8) -> Self {
        let mut bytes = [0u8; 32];
        bytes[31 - usize::from(bit / 8)] = 1 << (bit % 8);
        Self(B256::from(bytes))
    }

    /// Is `bit` set?
    pub fn has_bit(self, bit: u8) -> bool {
        self.0[31 - usize::from(bit / 8)] & (1 << (bit % 8)) != 0
    }

    /// Bitwise or.
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Is every bit of `self` also set in `offer`?
    pub fn is_subset_of(self, offer: Self) -> bool {
        (self.0 & !offer.0) == B256::ZERO
    }

    /// Bit 0: trusted execution required (or offered).
    pub fn is_tee(self) -> bool {
        self.has_bit(0)
    }

    /// Bit 8: a GPU required (or offered).
    pub fn is_gpu(self) -> bool {
        self.has_bit(8)
    }

    /// The set bits by name, `0x…` for unnamed bits.
    pub fn names(self) -> Vec<String> {
        let mut out = Vec::new();
        for bit in 0..=255u8 {
            if self.has_bit(bit) {
                match TAG_NAMES.iter().find(|(_, b)| *b == bit) {
                    Some((name, _)) => out.push((*name).to_owned()),
                    None => out.push(format!("bit{bit}")),
                }
            }
        }
        out
    }
}

impl alloy_rlp::Encodable for Tag {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        self.0.encode(out);
    }
    fn length(&self) -> usize {
        self.0.length()
    }
}

impl alloy_rlp::Decodable for Tag {
    fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        B256::decode(buf).map(Self)
    }
}

impl FromStr for Tag {
    type Err = TagError;

    /// Parses `0x` + 64 hex digits, or comma-separated names (`tee,scone,gpu`); empty = none.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.starts_with("0x") || text.starts_with("0X") {
            return B256::from_str(text)
                .map(Self)
                .map_err(|_| TagError::BadHex { text: text.to_owned() });
        }
        let mut tag = Self::NONE;
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let lower = name.to_ascii_lowercase();
            let bit = TAG_NAMES
                .iter()
                .find(|(n, _)| *n == lower)
                .map(|(_, b)| *b)
                .ok_or_else(|| TagError::UnknownName { name: name.to_owned() })?;
            tag = tag.union(Self::bit(bit));
        }
        Ok(tag)
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_reads_hex_names_and_the_iexec_array_and_writes_hex() {
        let tee_scone: Tag = "tee,scone".parse().unwrap();
        let hex = serde_json::to_string(&tee_scone).unwrap();
        assert_eq!(hex, format!("\"{}\"", tee_scone.0));
        for text in [hex.as_str(), "\"tee,scone\"", "[\"tee\", \"scone\"]", "[\"scone\", \"tee\"]"]
        {
            assert_eq!(serde_json::from_str::<Tag>(text).unwrap(), tee_scone, "{text}");
        }
        assert_eq!(serde_json::from_str::<Tag>("[]").unwrap(), Tag::NONE);
        let error = serde_json::from_str::<Tag>("[\"tee\", \"teee\"]").unwrap_err();
        assert!(error.to_string().contains("unknown tag `teee`"), "{error}");
        assert!(serde_json::from_str::<Tag>("7").is_err());
    }

    #[test]
    fn names_map_to_the_reference_bits() {
        let tag: Tag = "tee,scone".parse().unwrap();
        assert_eq!(tag.0[31], 0x03);
        let gpu: Tag = "gpu".parse().unwrap();
        assert_eq!(gpu.0[30], 0x01);
        assert!(gpu.is_gpu() && !gpu.is_tee());
        assert_eq!(tag.names(), vec!["tee", "scone"]);
        assert!("foo".parse::<Tag>().is_err());
    }

    #[test]
    fn subset_means_every_required_bit_is_offered() {
        let tee: Tag = "tee".parse().unwrap();
        let tee_gpu: Tag = "tee,gpu".parse().unwrap();
        assert!(tee.is_subset_of(tee_gpu));
        assert!(!tee_gpu.is_subset_of(tee));
        assert!(Tag::NONE.is_subset_of(Tag::NONE));
    }
}
