//! RFC 6962 Merkle trees: leaf and node hashes, the compact range a writer
//! keeps, and inclusion and consistency proofs (built as in RFC 6962 §2.1,
//! verified with the RFC 9162 §2.1.3.2 / §2.1.4.2 algorithms, O(log n)).
//!
//! Stored tree hashes: with each leaf `i` the store keeps the hashes of the
//! complete subtrees whose last leaf is `i` — level 0 (the leaf hash) up to
//! level `trailing_ones(i)` — two hashes per leaf on average. Every aligned
//! subtree `(level, k)` covering leaves `[k·2^level, (k+1)·2^level)` is then
//! one stored hash (at leaf `(k+1)·2^level − 1`), so a proof for a tree of
//! `n` leaves reads O(log n) stored hashes and hashes nothing but its own
//! path, and the writer's head (the compact range) is rebuilt from
//! `popcount(n)` of them at start-up.

use sha2::{Digest as _, Sha256};

pub type Hash = [u8; 32];

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two smaller than `n` (`n >= 2`).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The hashes of a tree's complete right-edge subtrees (one per set bit of
/// its size, largest first): all a writer needs to append and to compute
/// the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    hashes: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Rebuilds the frontier of a tree of `size` leaves from its aligned
    /// subtree hashes, given in [`Frontier::subtrees`] order.
    pub fn from_subtrees(size: u64, hashes: Vec<Hash>) -> Option<Frontier> {
        (hashes.len() == size.count_ones() as usize).then_some(Frontier { size, hashes })
    }

    /// The aligned subtrees `(level, k)` the frontier of `size` consists of.
    pub fn subtrees(size: u64) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            if size & (1 << level) != 0 {
                out.push((level, start >> level));
                start += 1 << level;
            }
        }
        out
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf; returns the stored hashes of the new leaf (level 0
    /// first, then each subtree it completes).
    pub fn push(&mut self, leaf: Hash) -> Vec<Hash> {
        let mut nodes = Vec::with_capacity(2);
        nodes.push(leaf);
        let mut hash = leaf;
        let mut size = self.size;
        while size & 1 == 1 {
            let Some(left) = self.hashes.pop() else { break };
            hash = node_hash(&left, &hash);
            nodes.push(hash);
            size >>= 1;
        }
        self.hashes.push(hash);
        self.size += 1;
        nodes
    }

    pub fn root(&self) -> Hash {
        let mut it = self.hashes.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |right, left| node_hash(left, &right))
    }
}

/// The leaf whose stored hashes hold the aligned subtree `(level, k)`, and
/// the position of that hash among them.
pub fn stored_at(level: u32, k: u64) -> (u64, usize) {
    (((k + 1) << level) - 1, level as usize)
}

/// The aligned subtrees whose hashes make up `MTH(D[a:b])`, largest first
/// (`a` must be aligned to the largest power of two below `b - a`, which
/// holds for every range the proofs use).
fn range_subtrees(a: u64, b: u64, out: &mut Vec<(u32, u64)>) {
    let n = b - a;
    if n.is_power_of_two() {
        let level = n.trailing_zeros();
        out.push((level, a >> level));
    } else {
        let k = split(n);
        range_subtrees(a, a + k, out);
        range_subtrees(a + k, b, out);
    }
}

/// `MTH(D[a:b])` from the stored hashes of its aligned subtrees.
fn range_hash(a: u64, b: u64, get: &impl Fn(u32, u64) -> Option<Hash>) -> Option<Hash> {
    let mut parts = Vec::new();
    range_subtrees(a, b, &mut parts);
    let mut it = parts.into_iter().rev();
    let (l, k) = it.next()?;
    let mut hash = get(l, k)?;
    for (l, k) in it {
        hash = node_hash(&get(l, k)?, &hash);
    }
    Some(hash)
}

/// The ranges whose hashes form the inclusion proof of leaf `m` in a tree
/// of `n` leaves, leaf to root (RFC 6962 §2.1.1 `PATH`).
fn inclusion_ranges(m: u64, a: u64, b: u64, out: &mut Vec<(u64, u64)>) {
    if b - a <= 1 {
        return;
    }
    let k = split(b - a);
    if m < a + k {
        inclusion_ranges(m, a, a + k, out);
        out.push((a + k, b));
    } else {
        inclusion_ranges(m, a + k, b, out);
        out.push((a, a + k));
    }
}

/// RFC 6962 §2.1.2 `SUBPROOF`.
fn consistency_ranges(m: u64, a: u64, b: u64, start: bool, out: &mut Vec<(u64, u64)>) {
    let n = b - a;
    if m == n {
        if !start {
            out.push((a, b));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        consistency_ranges(m, a, a + k, start, out);
        out.push((a + k, b));
    } else {
        consistency_ranges(m - k, a + k, b, false, out);
        out.push((a, a + k));
    }
}

/// The aligned subtrees a proof over `ranges` needs (to fetch them at once).
fn needed(ranges: &[(u64, u64)]) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    for (a, b) in ranges {
        range_subtrees(*a, *b, &mut out);
    }
    out
}

/// What the inclusion proof of leaf `index` in a tree of `size` reads.
pub fn inclusion_subtrees(index: u64, size: u64) -> Vec<(u32, u64)> {
    let mut ranges = Vec::new();
    if index < size {
        inclusion_ranges(index, 0, size, &mut ranges);
    }
    needed(&ranges)
}

/// The inclusion proof of leaf `index` in a tree of `size`, from stored
/// subtree hashes; `None` if one is missing.
pub fn inclusion_proof(
    index: u64,
    size: u64,
    get: impl Fn(u32, u64) -> Option<Hash>,
) -> Option<Vec<Hash>> {
    if index >= size {
        return None;
    }
    let mut ranges = Vec::new();
    inclusion_ranges(index, 0, size, &mut ranges);
    ranges
        .iter()
        .map(|(a, b)| range_hash(*a, *b, &get))
        .collect()
}

/// What the consistency proof from `old` to `new` reads.
pub fn consistency_subtrees(old: u64, new: u64) -> Vec<(u32, u64)> {
    let mut ranges = Vec::new();
    if 0 < old && old < new {
        consistency_ranges(old, 0, new, true, &mut ranges);
    }
    needed(&ranges)
}

/// The consistency proof between the trees of `old` and `new` leaves.
pub fn consistency_proof(
    old: u64,
    new: u64,
    get: impl Fn(u32, u64) -> Option<Hash>,
) -> Option<Vec<Hash>> {
    if old > new {
        return None;
    }
    if old == 0 || old == new {
        return Some(Vec::new());
    }
    let mut ranges = Vec::new();
    consistency_ranges(old, 0, new, true, &mut ranges);
    ranges
        .iter()
        .map(|(a, b)| range_hash(*a, *b, &get))
        .collect()
}

/// The root of the first `size` leaves, from stored subtree hashes.
pub fn root_at(size: u64, get: impl Fn(u32, u64) -> Option<Hash>) -> Option<Hash> {
    if size == 0 {
        return Some(empty_root());
    }
    range_hash(0, size, &get)
}

/// What [`root_at`] reads.
pub fn root_subtrees(size: u64) -> Vec<(u32, u64)> {
    Frontier::subtrees(size)
}

/// RFC 9162 §2.1.3.2.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    root_from_inclusion(index, size, leaf, proof).is_some_and(|r| r == *root)
}

/// The root an inclusion proof of `leaf` at `index` in a tree of `size`
/// leads to (RFC 9162 §2.1.3.2 without the final comparison); `None` when
/// the proof has the wrong length for that position.
pub fn root_from_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash]) -> Option<Hash> {
    if index >= size {
        return None;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return None;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    (s == 0).then_some(r)
}

/// RFC 9162 §2.1.4.2, plus the trivial cases (equal sizes, empty old tree).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if old == 0 {
        return proof.is_empty() && *old_root == empty_root();
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *old_root && sr == *new_root && s == 0
}

/// A tree held in memory whole: every aligned subtree hash, level by
/// level. For small trees built at once (a receipt batch).
#[derive(Debug, Clone)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    pub fn new(leaves: Vec<Hash>) -> MemoryTree {
        let mut levels = vec![leaves];
        while let Some(last) = levels.last()
            && last.len() >= 2
        {
            let next = last
                .chunks_exact(2)
                .map(|p| node_hash(&p[0], &p[1]))
                .collect();
            levels.push(next);
        }
        MemoryTree { levels }
    }

    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    fn get(&self, level: u32, k: u64) -> Option<Hash> {
        self.levels
            .get(level as usize)?
            .get(usize::try_from(k).ok()?)
            .copied()
    }

    pub fn root(&self) -> Hash {
        root_at(self.size(), |l, k| self.get(l, k)).unwrap_or_else(empty_root)
    }

    /// The inclusion proof of leaf `index`.
    pub fn inclusion_proof(&self, index: u64) -> Option<Vec<Hash>> {
        inclusion_proof(index, self.size(), |l, k| self.get(l, k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// RFC 6962 MTH, recursively, as the reference.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    /// Appends every leaf through a frontier, keeping what a store keeps.
    fn stored(leaves: &[Hash]) -> (Frontier, HashMap<u64, Vec<Hash>>) {
        let mut f = Frontier::new();
        let mut store = HashMap::new();
        for (i, l) in leaves.iter().enumerate() {
            store.insert(i as u64, f.push(*l));
        }
        (f, store)
    }

    fn getter(store: &HashMap<u64, Vec<Hash>>) -> impl Fn(u32, u64) -> Option<Hash> + '_ {
        |level, k| {
            let (leaf, pos) = stored_at(level, k);
            store.get(&leaf)?.get(pos).copied()
        }
    }

    #[test]
    fn frontier_roots_match_the_reference() {
        let all = leaves(70);
        let mut f = Frontier::new();
        assert_eq!(f.root(), empty_root());
        for n in 1..=all.len() {
            let nodes = f.push(all[n - 1]);
            assert_eq!(nodes.len(), (n as u64 - 1).trailing_ones() as usize + 1);
            assert_eq!(f.root(), mth(&all[..n]), "size {n}");
        }
    }

    #[test]
    fn frontier_rebuilds_from_stored_hashes() {
        let all = leaves(45);
        let (f, store) = stored(&all);
        let get = getter(&store);
        let hashes = Frontier::subtrees(45)
            .into_iter()
            .map(|(l, k)| get(l, k).expect("stored"))
            .collect();
        assert_eq!(Frontier::from_subtrees(45, hashes), Some(f));
        for n in 0..=45u64 {
            assert_eq!(root_at(n, &get), Some(mth(&all[..n as usize])), "size {n}");
        }
    }

    #[test]
    fn inclusion_proofs_verify_and_reject_wrong_inputs() {
        let all = leaves(33);
        let (_, store) = stored(&all);
        let get = getter(&store);
        for n in 1..=33u64 {
            let root = mth(&all[..n as usize]);
            for m in 0..n {
                let proof = inclusion_proof(m, n, &get).expect("proof");
                assert!(proof.len() <= 64 - (n.leading_zeros() as usize) + 1);
                let leaf = all[m as usize];
                assert!(verify_inclusion(m, n, &leaf, &proof, &root), "{m} in {n}");
                assert!(!verify_inclusion(m, n, &all[0].map(|b| !b), &proof, &root));
                if n > 1 {
                    assert!(!verify_inclusion((m + 1) % n, n, &leaf, &proof, &root));
                }
            }
        }
        assert!(inclusion_proof(3, 3, &get).is_none());
    }

    #[test]
    fn consistency_proofs_verify_and_reject_rewrites() {
        let all = leaves(40);
        let (_, store) = stored(&all);
        let get = getter(&store);
        for n in 1..=40u64 {
            let new_root = mth(&all[..n as usize]);
            for m in 0..=n {
                let old_root = mth(&all[..m as usize]);
                let proof = consistency_proof(m, n, &get).expect("proof");
                assert!(
                    verify_consistency(m, n, &old_root, &new_root, &proof),
                    "{m} -> {n}"
                );
                if 0 < m && m < n {
                    let other = leaf_hash(b"rewritten");
                    assert!(!verify_consistency(m, n, &other, &new_root, &proof));
                    assert!(!verify_consistency(m, n, &old_root, &other, &proof));
                    if !proof.is_empty() {
                        let mut bad = proof.clone();
                        bad[0][0] ^= 1;
                        assert!(!verify_consistency(m, n, &old_root, &new_root, &bad));
                    }
                }
            }
        }
        // A rewritten history is not consistent with the old root.
        let mut forked = all.clone();
        forked[3] = leaf_hash(b"forged");
        let (_, forked_store) = stored(&forked);
        let proof = consistency_proof(10, 20, getter(&forked_store)).expect("proof");
        assert!(!verify_consistency(
            10,
            20,
            &mth(&all[..10]),
            &mth(&forked[..20]),
            &proof
        ));
    }

    #[test]
    fn proofs_read_logarithmically_many_stored_hashes() {
        let n = 1_000_003u64;
        assert!(inclusion_subtrees(123_456, n).len() <= 2 * 20);
        assert!(consistency_subtrees(777_777, n).len() <= 2 * 20);
    }

    #[test]
    fn memory_trees_agree_with_the_frontier_and_prove_every_leaf() {
        for n in 1..40u64 {
            let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect();
            let mut frontier = Frontier::new();
            for l in &leaves {
                frontier.push(*l);
            }
            let tree = MemoryTree::new(leaves.clone());
            assert_eq!(tree.root(), frontier.root(), "size {n}");
            for (i, leaf) in leaves.iter().enumerate() {
                let proof = tree.inclusion_proof(i as u64).expect("proof");
                assert_eq!(
                    root_from_inclusion(i as u64, n, leaf, &proof),
                    Some(tree.root())
                );
                assert!(!verify_inclusion(
                    i as u64,
                    n,
                    &[9; 32],
                    &proof,
                    &tree.root()
                ));
            }
        }
    }
}
