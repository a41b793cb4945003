//! How alike two token-kind sequences are: the Dice coefficient of their longest common
//! subsequence, `2·LCS / (|a| + |b|)`, computed bit-parallel (Hyyrö's formulation of
//! Allison and Dix: one pass over `b`, 64 positions of `a` per machine word).

use rustc_hash::FxHashMap as HashMap;
use std::hash::Hash;

/// The similarity of `a` and `b` if it is at least `threshold`. Cheap upper bounds (the
/// lengths, then the kind counts) reject most pairs before the subsequence is computed.
pub(super) fn dice_at_least<T: Copy + Eq + Hash>(a: &[T], b: &[T], threshold: f64) -> Option<f64> {
    let total = (a.len() + b.len()) as f64;
    if total == 0.0 {
        return None;
    }
    let bound = |common: usize| 2.0 * common as f64 / total;
    if bound(a.len().min(b.len())) < threshold {
        return None;
    }
    if bound(common_kinds(a, b)) < threshold {
        return None;
    }
    let similarity = bound(lcs_length(a, b));
    (similarity >= threshold).then_some(similarity)
}

/// How many tokens the two sequences could share at most: the per-kind minimum counts.
fn common_kinds<T: Copy + Eq + Hash>(a: &[T], b: &[T]) -> usize {
    let mut counts: HashMap<T, (u32, u32)> = HashMap::default();
    for &kind in a {
        counts.entry(kind).or_default().0 += 1;
    }
    for &kind in b {
        counts.entry(kind).or_default().1 += 1;
    }
    counts
        .values()
        .map(|&(in_a, in_b)| in_a.min(in_b) as usize)
        .sum()
}

/// The length of the longest common subsequence of `a` and `b`.
pub(super) fn lcs_length<T: Copy + Eq + Hash>(a: &[T], b: &[T]) -> usize {
    if a.is_empty() || b.is_empty() {
        return 0;
    }
    let words = a.len().div_ceil(64);
    let mut matches: HashMap<T, Vec<u64>> = HashMap::default();
    for (position, &kind) in a.iter().enumerate() {
        matches.entry(kind).or_insert_with(|| vec![0; words])[position / 64] |=
            1 << (position % 64);
    }
    // A zero bit in `row` marks a position of `a` that ends a longer common subsequence.
    let mut row = vec![u64::MAX; words];
    for kind in b {
        let Some(mask) = matches.get(kind) else {
            continue;
        };
        let mut carry = 0u64;
        for (word, &bits) in row.iter_mut().zip(mask) {
            let matched = *word & bits;
            let (sum, overflow_a) = word.overflowing_add(matched);
            let (sum, overflow_b) = sum.overflowing_add(carry);
            carry = u64::from(overflow_a || overflow_b);
            *word = sum | (*word & !bits);
        }
    }
    let zeros: usize = row.iter().map(|word| word.count_zeros() as usize).sum();
    // Bits past the end of `a` stay set, so every zero is a real position.
    zeros
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook quadratic recurrence, to check the bit-parallel one against.
    fn lcs_reference(a: &[u16], b: &[u16]) -> usize {
        let mut previous = vec![0usize; b.len() + 1];
        for &x in a {
            let mut current = vec![0usize; b.len() + 1];
            for (j, &y) in b.iter().enumerate() {
                current[j + 1] = if x == y {
                    previous[j] + 1
                } else {
                    current[j].max(previous[j + 1])
                };
            }
            previous = current;
        }
        previous[b.len()]
    }

    #[test]
    fn bit_parallel_lcs_matches_the_recurrence() {
        // A small deterministic generator; sequences long enough to span several words.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |modulus: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % modulus) as u16
        };
        for round in 0..200u64 {
            let alphabet = 2 + round % 6;
            let (len_a, len_b) = (next(200) as usize, next(200) as usize);
            let a: Vec<u16> = (0..len_a).map(|_| next(alphabet)).collect();
            let b: Vec<u16> = (0..len_b).map(|_| next(alphabet)).collect();
            assert_eq!(lcs_length(&a, &b), lcs_reference(&a, &b), "{a:?} {b:?}");
        }
        assert_eq!(lcs_length(&[1, 2, 3], &[]), 0);
        assert_eq!(lcs_length(&[1, 2, 3, 4], &[1, 3, 4, 2]), 3);
    }

    #[test]
    fn dice_reports_only_what_reaches_the_threshold() {
        let a: Vec<u16> = (0..100).collect();
        let mut b = a.clone();
        b.splice(50..50, [500, 501, 502, 503, 504, 505, 506, 507, 508, 509]);
        let similarity = dice_at_least(&a, &b, 0.9).expect("one inserted line");
        assert!((similarity - 200.0 / 210.0).abs() < 1e-9, "{similarity}");
        assert_eq!(dice_at_least(&a, &b, 0.96), None);
        assert_eq!(
            dice_at_least(&a, &a[..10], 0.5),
            None,
            "lengths alone rule it out"
        );
    }
}
