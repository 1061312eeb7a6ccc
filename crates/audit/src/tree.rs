//! The right edge of the Merkle tree, which is all a writer needs to append.
//!
//! Hashing is RFC 6962's (leaf `SHA-256(0x00 ‖ data)`, node `SHA-256(0x01 ‖ l ‖ r)`,
//! via [`tlog_tiles`]). The edge is the list of perfect subtrees the first `size`
//! leaves split into, largest first, like the bits of `size`. Appending a leaf is
//! binary addition: equal-height subtrees at the end merge. The hashes a record
//! completes (its leaf, then each merge) are stored with the record, in the order
//! of `tlog`'s stored-hash index, so proofs can be read back with
//! [`tlog_tiles::prove_record`] in `log n` lookups.

use tlog_tiles::{Hash, node_hash, record_hash};

/// The tree's size and right edge.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Edge {
    size: u64,
    /// `(height, hash)` of each perfect subtree, leftmost (tallest) first.
    subtrees: Vec<(u8, Hash)>,
}

impl Edge {
    /// Number of leaves.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Appends a record; writes into `stored` (cleared first) the hashes it
    /// completes: its leaf hash, then one node hash per subtree it closes.
    pub(crate) fn append(&mut self, data: &[u8], stored: &mut Vec<u8>) {
        stored.clear();
        let mut h = record_hash(data);
        stored.extend_from_slice(&h.0);
        let mut height = 0u8;
        while let Some(&(top, left)) = self.subtrees.last() {
            if top != height {
                break;
            }
            self.subtrees.pop();
            h = node_hash(left, h);
            stored.extend_from_slice(&h.0);
            height += 1;
        }
        self.subtrees.push((height, h));
        self.size += 1;
    }

    /// The tree's root (RFC 6962 MTH); the empty tree's is SHA-256 of nothing.
    pub(crate) fn root(&self) -> Hash {
        let mut it = self.subtrees.iter().rev();
        let Some(&(_, mut h)) = it.next() else {
            return tlog_tiles::EMPTY_HASH;
        };
        for &(_, left) in it {
            h = node_hash(left, h);
        }
        h
    }

    /// The edge as stored: the subtree hashes, leftmost first.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        self.subtrees.iter().flat_map(|(_, h)| h.0).collect()
    }

    /// The edge of a tree of `size` leaves from its stored bytes.
    pub(crate) fn from_bytes(size: u64, bytes: &[u8]) -> Option<Edge> {
        let heights: Vec<u8> = (0..64u8).rev().filter(|b| size >> b & 1 == 1).collect();
        if bytes.len() != heights.len() * 32 {
            return None;
        }
        let subtrees = heights
            .into_iter()
            .zip(bytes.chunks_exact(32))
            .map(|(height, c)| {
                let mut h = [0u8; 32];
                h.copy_from_slice(c);
                (height, Hash(h))
            })
            .collect();
        Some(Edge { size, subtrees })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tlog_tiles::{HashReader, stored_hash_index, stored_hashes, tree_hash};

    struct Mem(Vec<Hash>);
    impl HashReader for Mem {
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
            Ok(indexes.iter().map(|&i| self.0[i as usize]).collect())
        }
    }

    #[test]
    fn edge_matches_tlog_stored_hashes_and_roots() {
        let mut edge = Edge::default();
        let mut all = Mem(Vec::new());
        assert_eq!(edge.root(), tlog_tiles::EMPTY_HASH);
        for n in 0..300u64 {
            let data = format!("record {n}");
            let want = stored_hashes(n, data.as_bytes(), &all).unwrap();
            assert_eq!(all.0.len() as u64, stored_hash_index(0, n));
            let mut got = Vec::new();
            edge.append(data.as_bytes(), &mut got);
            let want_bytes: Vec<u8> = want.iter().flat_map(|h| h.0).collect();
            assert_eq!(got, want_bytes, "record {n}");
            all.0.extend(want);
            assert_eq!(
                edge.root(),
                tree_hash(n + 1, &all).unwrap(),
                "size {}",
                n + 1
            );
            let back = Edge::from_bytes(edge.size(), &edge.to_bytes()).unwrap();
            assert_eq!(back, edge);
        }
        assert!(Edge::from_bytes(5, &[0u8; 32]).is_none());
    }
}
