//! JSON field encodings shared with iExec's SDK: a uint256 accepts a JSON number or a decimal
//! (or `0x` hex) string and is written as a decimal string.

use alloy_primitives::U256;
use serde::{Deserialize, Deserializer, Serializer, de};

/// `#[serde(with = "json::u256_dec")]` for uint256 order fields.
pub mod u256_dec {
    use super::*;

    /// Writes the value as a decimal string (lossless for any uint256).
    pub fn serialize<S: Serializer>(value: &U256, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_string())
    }

    /// Reads a non-negative JSON integer, or a decimal or `0x` hex string.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<U256, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum NumOrString {
            Num(u64),
            Text(String),
            Float(f64),
        }
        match NumOrString::deserialize(deserializer)? {
            NumOrString::Num(n) => Ok(U256::from(n)),
            NumOrString::Text(text) => parse_u256(&text).map_err(de::Error::custom),
            NumOrString::Float(f) => Err(de::Error::custom(format!(
                "{f} is not a non-negative integer that fits a JSON number; write large values as decimal strings"
            ))),
        }
    }
}

/// Parses a uint256 from decimal or `0x` hex text.
///
/// # Errors
/// A message naming the text when it is neither.
pub fn parse_u256(text: &str) -> Result<U256, String> {
    let trimmed = text.trim();
    let parsed =
        if let Some(hex) = trimmed.strip_prefix("0x").or_else(|| trimmed.strip_prefix("0X")) {
            U256::from_str_radix(hex, 16)
        } else {
            U256::from_str_radix(trimmed, 10)
        };
    parsed.map_err(|_| format!("`{text}` is not a uint256 (decimal or 0x-hex)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, serde::Serialize)]
    struct Wrap {
        #[serde(with = "u256_dec")]
        v: U256,
    }

    #[test]
    fn numbers_and_strings_both_parse() {
        let a: Wrap = serde_json::from_str(r#"{"v": 42}"#).unwrap();
        let b: Wrap = serde_json::from_str(r#"{"v": "42"}"#).unwrap();
        let c: Wrap = serde_json::from_str(r#"{"v": "0x2a"}"#).unwrap();
        assert_eq!((a.v, b.v, c.v), (U256::from(42), U256::from(42), U256::from(42)));
        assert_eq!(serde_json::to_string(&a).unwrap(), r#"{"v":"42"}"#);
        let big = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        let d: Wrap = serde_json::from_str(&format!(r#"{{"v": "{big}"}}"#)).unwrap();
        assert_eq!(d.v, U256::MAX);
        assert!(serde_json::from_str::<Wrap>(r#"{"v": -1}"#).is_err());
        assert!(serde_json::from_str::<Wrap>(r#"{"v": "abc"}"#).is_err());
    }
}
