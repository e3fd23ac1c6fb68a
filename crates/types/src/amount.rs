//! nRLC amounts with checked arithmetic.

use std::fmt;

use alloy_primitives::U256;
use serde::{Deserialize, Serialize};

/// Number of nRLC in one RLC (RLC has 9 decimals).
pub const NRLC_PER_RLC: u128 = 1_000_000_000;

/// An amount of RLC in nRLC (10⁻⁹ RLC).
///
/// All arithmetic is checked: an overflow or underflow is an [`AmountError`], never a wrap.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Nrlc(pub u128);

/// An arithmetic rule on amounts was broken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// `a + b` does not fit.
    #[error("amount overflow: {a} + {b} nRLC does not fit in 128 bits")]
    AddOverflow {
        /// Left operand.
        a: Nrlc,
        /// Right operand.
        b: Nrlc,
    },
    /// `a - b` would be negative.
    #[error("amount underflow: {a} - {b} nRLC is negative")]
    SubUnderflow {
        /// Left operand.
        a: Nrlc,
        /// Right operand.
        b: Nrlc,
    },
    /// `a × k` does not fit.
    #[error("amount overflow: {a} nRLC × {k} does not fit in 128 bits")]
    MulOverflow {
        /// The amount.
        a: Nrlc,
        /// The factor.
        k: u128,
    },
    /// A uint256 value is larger than any amount the chain can hold.
    #[error("amount {value} nRLC is larger than the maximum {max} nRLC")]
    TooLarge {
        /// The value given.
        value: U256,
        /// The largest representable amount.
        max: u128,
    },
}

impl Nrlc {
    /// Zero nRLC.
    pub const ZERO: Self = Self(0);
    /// One RLC.
    pub const ONE_RLC: Self = Self(NRLC_PER_RLC);

    /// `whole` RLC.
    pub const fn rlc(whole: u64) -> Self {
        Self(whole as u128 * NRLC_PER_RLC)
    }

    /// Converts a uint256 order field, rejecting values above `u128::MAX`.
    ///
    /// # Errors
    /// [`AmountError::TooLarge`] when the value does not fit.
    pub fn from_u256(value: U256) -> Result<Self, AmountError> {
        u128::try_from(value).map(Self).map_err(|_| AmountError::TooLarge { value, max: u128::MAX })
    }

    /// The amount as a uint256.
    pub fn to_u256(self) -> U256 {
        U256::from(self.0)
    }

    /// Checked `self + rhs`.
    ///
    /// # Errors
    /// [`AmountError::AddOverflow`].
    pub fn checked_add(self, rhs: Self) -> Result<Self, AmountError> {
        self.0.checked_add(rhs.0).map(Self).ok_or(AmountError::AddOverflow { a: self, b: rhs })
    }

    /// Checked `self - rhs`.
    ///
    /// # Errors
    /// [`AmountError::SubUnderflow`].
    pub fn checked_sub(self, rhs: Self) -> Result<Self, AmountError> {
        self.0.checked_sub(rhs.0).map(Self).ok_or(AmountError::SubUnderflow { a: self, b: rhs })
    }

    /// Checked `self × k`.
    ///
    /// # Errors
    /// [`AmountError::MulOverflow`].
    pub fn checked_mul(self, k: u128) -> Result<Self, AmountError> {
        self.0.checked_mul(k).map(Self).ok_or(AmountError::MulOverflow { a: self, k })
    }

    /// `floor(self × numerator / denominator)`, exact for every `u128` input (uses 256-bit
    /// intermediates). `denominator` must be non-zero.
    ///
    /// # Panics
    /// If `denominator` is zero (a programming error: every ratio in the protocol is a constant
    /// or a validated policy).
    pub fn mul_div(self, numerator: u128, denominator: u128) -> Self {
        assert!(denominator != 0, "mul_div by zero");
        let wide = U256::from(self.0) * U256::from(numerator) / U256::from(denominator);
        // The quotient is at most self × (numerator / denominator); callers pass ratios ≤ 1
        // or check the result with `from_u256`.
        Self(u128::try_from(wide).expect("mul_div result exceeds u128"))
    }

    /// Is this zero?
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The amount written in RLC with 9 decimals, e.g. `4.5` or `0.000000001`.
    pub fn to_rlc_string(self) -> String {
        let whole = self.0 / NRLC_PER_RLC;
        let frac = self.0 % NRLC_PER_RLC;
        if frac == 0 {
            return whole.to_string();
        }
        let frac = format!("{frac:09}");
        format!("{whole}.{}", frac.trim_end_matches('0'))
    }
}

impl fmt::Display for Nrlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl alloy_rlp::Encodable for Nrlc {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        self.0.encode(out);
    }
    fn length(&self) -> usize {
        self.0.length()
    }
}

impl alloy_rlp::Decodable for Nrlc {
    fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        u128::decode(buf).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_arithmetic_reports_the_operands() {
        assert_eq!(
            Nrlc(1).checked_sub(Nrlc(2)),
            Err(AmountError::SubUnderflow { a: Nrlc(1), b: Nrlc(2) })
        );
        assert_eq!(
            Nrlc(u128::MAX).checked_add(Nrlc(1)),
            Err(AmountError::AddOverflow { a: Nrlc(u128::MAX), b: Nrlc(1) })
        );
        assert!(Nrlc(u128::MAX).checked_mul(2).is_err());
        assert_eq!(
            Nrlc(u128::MAX).mul_div(30, 100),
            Nrlc(102_084_710_076_281_539_039_012_382_229_530_463_436)
        );
    }

    #[test]
    fn rlc_strings_drop_trailing_zeros() {
        assert_eq!(Nrlc(4_500_000_000).to_rlc_string(), "4.5");
        assert_eq!(Nrlc(1).to_rlc_string(), "0.000000001");
        assert_eq!(Nrlc::rlc(3).to_rlc_string(), "3");
    }
}
