//! PoCo's integer consensus arithmetic (reference §4.2, §4.3, §4.7).

use alloy_primitives::U256;
use xiebao_types::Nrlc;

/// A worker's weight from its score: `max(floor(score / 3), 3) − 1` (2 for a new worker).
pub fn worker_weight(score: u64) -> u64 {
    (score / 3).max(3) - 1
}

/// floor(log2(weight)) for `weight ≥ 1`: the contribution's payout weight.
pub fn log2_floor(weight: u64) -> u32 {
    debug_assert!(weight >= 1);
    63 - weight.leading_zeros()
}

/// Is `group · trust > total · (trust − 1)` (strictly)? With `trust ≥ 1`.
pub fn is_consensus(group: U256, total: U256, trust: u64) -> bool {
    let trust_wide = U256::from(trust);
    let lhs = group.checked_mul(trust_wide);
    let rhs = total.checked_mul(trust_wide - U256::from(1));
    match (lhs, rhs) {
        (Some(lhs), Some(rhs)) => lhs > rhs,
        // Compare with 512-bit intermediates when a product overflows.
        _ => {
            let lhs = alloy_primitives::U512::from(group) * alloy_primitives::U512::from(trust);
            let rhs = alloy_primitives::U512::from(total) * alloy_primitives::U512::from(trust - 1);
            lhs > rhs
        }
    }
}

/// The new score of a worker whose contribution was wrong: `floor(2 · score / 3)`.
pub fn slashed_score(score: u64) -> u64 {
    // 2·score/3 without overflow: score − ceil(score/3).
    score - score.div_ceil(3)
}

/// The scheduler's kitty share at a successful finalize:
/// `min(max(floor(kitty · 10 / 100), 1 RLC), kitty)`.
pub fn kitty_share(kitty: Nrlc) -> Nrlc {
    kitty.mul_div(crate::KITTY_RATIO, 100).max(Nrlc(crate::KITTY_MIN_NRLC)).min(kitty)
}

/// How many agreeing contributions of equal weight `weight` reach consensus at `trust` with no
/// dissent (reference §4.3's table), or `None` above `limit`.
pub fn contributions_needed(weight: u64, trust: u64, limit: u32) -> Option<u32> {
    let trust = trust.max(1);
    let mut group = U256::ZERO;
    let mut total = U256::from(1);
    for n in 1..=limit {
        let delta = group.max(U256::from(1)) * U256::from(weight) - group;
        group += delta;
        total += delta;
        if is_consensus(group, total, trust) {
            return Some(n);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_follow_the_reference() {
        assert_eq!(worker_weight(0), 2);
        assert_eq!(worker_weight(11), 2);
        assert_eq!(worker_weight(12), 3);
        assert_eq!(worker_weight(100), 32);
        assert_eq!(worker_weight(300), 99);
        assert_eq!(worker_weight(303), 100);
        assert_eq!(log2_floor(2), 1);
        assert_eq!(log2_floor(3), 1);
        assert_eq!(log2_floor(32), 5);
        assert_eq!(log2_floor(99), 6);
        assert_eq!(slashed_score(10), 6);
        assert_eq!(slashed_score(u64::MAX), u64::MAX / 3 * 2);
    }

    /// Reference §4.3, "agreeing contributions needed", row by row.
    #[test]
    fn contributions_needed_table_matches_reference() {
        let weights = [2u64, 3, 10, 32, 99, 100, 1000];
        let table: [(u64, [u32; 7]); 8] = [
            (1, [1, 1, 1, 1, 1, 1, 1]),
            (2, [1, 1, 1, 1, 1, 1, 1]),
            (3, [2, 1, 1, 1, 1, 1, 1]),
            (5, [3, 2, 1, 1, 1, 1, 1]),
            (10, [4, 3, 1, 1, 1, 1, 1]),
            (100, [7, 5, 2, 2, 2, 1, 1]),
            (10_000, [14, 9, 4, 3, 3, 2, 2]),
            (1_000_000, [20, 13, 6, 4, 4, 3, 2]),
        ];
        for (trust, row) in table {
            for (weight, expected) in weights.iter().zip(row) {
                assert_eq!(
                    contributions_needed(*weight, trust, 64),
                    Some(expected),
                    "trust {trust}, weight {weight}"
                );
            }
        }
    }

    /// Reference §4.3's worked example: scores 12/100/300, votes 17, 42, 42 at trust 100.
    #[test]
    fn doc_example_reaches_consensus_on_the_third_vote() {
        let (w1, w2, w3) = (worker_weight(12), worker_weight(100), worker_weight(300));
        assert_eq!((w1, w2, w3), (3, 32, 99));
        // vote 17 by w1, then 42 by w2 and w3
        let total = U256::from(1 + 3);
        let group42 = U256::from(32);
        assert!(!is_consensus(group42, total + group42, 100));
        let group42 = U256::from(32 * 99);
        let total = U256::from(1 + 3 + 32 * 99);
        assert_eq!(total, U256::from(3172));
        assert!(is_consensus(group42, total, 100));
    }

    #[test]
    fn kitty_share_is_ten_percent_with_a_one_rlc_floor() {
        assert_eq!(kitty_share(Nrlc(0)), Nrlc(0));
        assert_eq!(kitty_share(Nrlc(500_000_000)), Nrlc(500_000_000));
        assert_eq!(kitty_share(Nrlc::rlc(5)), Nrlc::rlc(1));
        assert_eq!(kitty_share(Nrlc::rlc(50)), Nrlc::rlc(5));
    }
}
