//! Receipt inclusion proofs: the RFC 9162 Merkle root a receipt's proof gives
//! for a statement (Python's `_compute_root`).

use ciborium::Value as Cbor;
use coset::{CoseSign1, Label};
use sha2::{Digest, Sha256};

/// Unprotected-header label of the receipt's verifiable data structure proofs.
const HEADER_VDP: i64 = 396;
/// Key of the inclusion proofs in the proofs map.
const VDP_INCLUSION: i64 = -1;

/// Walk an RFC 9162 inclusion proof; the recomputed Merkle root (Python's
/// `_compute_root`).
pub fn compute_root(
    leaf_hash: &[u8],
    leaf_index: u64,
    tree_size: u64,
    siblings: &[Vec<u8>],
) -> Result<Vec<u8>, String> {
    let mut current = leaf_hash.to_vec();
    let mut index = leaf_index;
    let mut size = tree_size;
    let mut proof = siblings.iter();
    while size > 1 {
        if index == size - 1 && !size.is_multiple_of(2) {
            index /= 2;
            size = size.div_ceil(2);
            continue;
        }
        let sibling = proof.next().ok_or("the inclusion proof has too few hashes")?;
        let mut hasher = Sha256::new();
        hasher.update([0x01]);
        if index.is_multiple_of(2) {
            hasher.update(&current);
            hasher.update(sibling);
        } else {
            hasher.update(sibling);
            hasher.update(&current);
        }
        current = hasher.finalize().to_vec();
        index /= 2;
        size = size.div_ceil(2);
    }
    Ok(current)
}

/// The Merkle root a receipt's first inclusion proof gives for the statement.
pub(crate) fn inclusion_root(message: &CoseSign1, statement_hash: &[u8]) -> Result<Vec<u8>, String> {
    let missing = || "missing inclusion proof (uhdr label 396/-1)".to_string();
    let proofs = message
        .unprotected
        .rest
        .iter()
        .find(|(label, _)| *label == Label::Int(HEADER_VDP))
        .and_then(|(_, value)| value.as_map())
        .and_then(|map| map.iter().find(|(k, _)| k.as_integer() == Some(VDP_INCLUSION.into())))
        .and_then(|(_, value)| value.as_array())
        .filter(|proofs| !proofs.is_empty())
        .ok_or_else(missing)?;
    let proof_bytes = proofs[0].as_bytes().ok_or("the inclusion proof is not a byte string")?;
    let proof: Cbor = ciborium::from_reader(proof_bytes.as_slice()).map_err(|e| format!("bad inclusion proof: {e}"))?;
    let shape = || "the inclusion proof is not [tree_size, leaf_index, [hashes]]".to_string();
    let items = proof.as_array().filter(|items| items.len() == 3).ok_or_else(shape)?;
    let number = |value: &Cbor| value.as_integer().and_then(|n| u64::try_from(n).ok()).ok_or_else(shape);
    let tree_size = number(&items[0])?;
    let leaf_index = number(&items[1])?;
    let siblings = items[2]
        .as_array()
        .ok_or_else(shape)?
        .iter()
        .map(|s| s.as_bytes().cloned().ok_or_else(shape))
        .collect::<Result<Vec<_>, _>>()?;
    let mut leaf = Sha256::new();
    leaf.update([0x00]);
    leaf.update(statement_hash);
    compute_root(&leaf.finalize(), leaf_index, tree_size, &siblings)
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    #[test]
    fn merkle_roots_match_rfc_9162_for_every_position() {
        for size in 1..=9usize {
            let leaves: Vec<Vec<u8>> = (0..size).map(|i| sha(&[0x00, i as u8])).collect();
            let root = mth(&leaves);
            for index in 0..size {
                let computed = compute_root(&leaves[index], index as u64, size as u64, &path(index, &leaves)).unwrap();
                assert_eq!(computed, root, "size {size} index {index}");
            }
        }
        let leaves: Vec<Vec<u8>> = (0..4).map(|i| sha(&[i])).collect();
        assert!(compute_root(&leaves[0], 0, 4, &path(0, &leaves)[..1]).unwrap_err().contains("too few"));
        assert_eq!(compute_root(&leaves[0], 0, 1, &[]).unwrap(), leaves[0]);
    }
}
