"""The Merkle log: RFC 9162 roots and proofs, and that no tampering passes a consistency check."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rustchain.domain.events.merkle_log import (
    EMPTY_ROOT,
    LogFrontier,
    MerkleTree,
    ProofError,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)


def _reference_root(leaves: list[bytes]) -> bytes:
    """MTH as RFC 6962 section 2.1 writes it, recursively over leaf data."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(_reference_root(leaves[:k]), _reference_root(leaves[k:]))


def _tree(leaves: list[bytes]) -> MerkleTree:
    tree = MerkleTree()
    for data in leaves:
        tree.append(data)
    return tree


def _leaves(count: int) -> list[bytes]:
    return [f"event-{i}".encode() for i in range(count)]


def test_roots_match_the_rfc_definition_for_every_size_up_to_70() -> None:
    leaves = _leaves(70)
    tree = _tree(leaves)
    assert tree.root(0) == EMPTY_ROOT
    for size in range(71):
        assert tree.root(size) == _reference_root(leaves[:size])


def test_known_rfc6962_vector_for_the_empty_and_one_leaf_tree() -> None:
    assert EMPTY_ROOT.hex() == ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert _tree([b""]).root().hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )


def test_inclusion_and_consistency_proofs_verify_for_every_pair_of_sizes_up_to_33() -> None:
    tree = _tree(_leaves(33))
    for size in range(1, 34):
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            verify_inclusion(tree.leaf(index), index, size, proof, tree.root(size))
        for old in range(size + 1):
            proof = tree.consistency_proof(old, size)
            verify_consistency(old, tree.root(old), size, tree.root(size), proof)


def test_proofs_stay_logarithmic_in_a_large_log() -> None:
    tree = MerkleTree(hashlib.sha256(str(i).encode()).digest() for i in range(5000))
    assert len(tree.inclusion_proof(1234)) <= 13
    assert len(tree.consistency_proof(3001)) <= 2 * 13


def test_an_inclusion_proof_at_another_position_is_refused() -> None:
    tree = _tree(_leaves(10))
    proof = tree.inclusion_proof(3)
    with pytest.raises(ProofError):
        verify_inclusion(tree.leaf(3), 4, 10, proof, tree.root())


TAMPERINGS = ["delete", "truncate1", "truncate3", "swap", "alter", "insert"]


def _tamper(leaves: list[bytes], kind: str, at: int) -> list[bytes]:
    changed = list(leaves)
    if kind == "delete":
        del changed[at]
    elif kind == "truncate1":
        changed = changed[:-1]
    elif kind == "truncate3":
        changed = changed[:-3]
    elif kind == "swap":
        other = at + 1 if at + 1 < len(changed) else at - 1
        changed[at], changed[other] = changed[other], changed[at]
    elif kind == "alter":
        changed[at] = changed[at] + b"!"
    else:
        changed.insert(at, b"forged")
    return changed


@settings(max_examples=300, deadline=None)
@given(
    old_size=st.integers(min_value=3, max_value=80),
    grown=st.integers(min_value=0, max_value=40),
    kind=st.sampled_from(TAMPERINGS),
    data=st.data(),
)
def test_no_tampering_of_a_checkpointed_prefix_passes_a_consistency_check(
    old_size: int, grown: int, kind: str, data: st.DataObject
) -> None:
    leaves = [
        data.draw(st.binary(min_size=1, max_size=8)) + i.to_bytes(4, "big")
        for i in range(old_size + grown)
    ]
    old = _tree(leaves[:old_size])
    at = data.draw(st.integers(min_value=0, max_value=old_size - 1))
    tampered = _tree(_tamper(leaves, kind, at))
    # Whatever the attacker offers as proof, from the honest or the tampered tree, is refused.
    candidates = [old.consistency_proof(old_size)]
    if tampered.size >= old_size:
        candidates.append(tampered.consistency_proof(old_size))
    if kind in ("truncate1", "truncate3") and grown >= int(kind[-1]):
        return  # the checkpointed prefix is untouched: the log only lost later leaves
    for proof in candidates:
        with pytest.raises(ProofError):
            verify_consistency(old_size, old.root(), tampered.size, tampered.root(), proof)


def test_the_frontier_gives_the_same_root_as_the_whole_tree_at_every_size() -> None:
    leaves = _leaves(100)
    tree, frontier = _tree(leaves), LogFrontier()
    for size, data in enumerate(leaves, start=1):
        frontier.append_hash(leaf_hash(data))
        assert frontier.size == size
        assert frontier.root() == tree.root(size)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), max_size=6))
def test_extending_in_batches_builds_the_tree_appending_one_by_one_does(
    batches: list[int],
) -> None:
    leaves = [leaf_hash(data) for data in _leaves(sum(batches))]
    one_by_one, batched = MerkleTree(), MerkleTree()
    for leaf in leaves:
        one_by_one.append_hash(leaf)
    taken = 0
    for count in batches:
        batched.extend_hashes(leaves[taken : taken + count])
        taken += count
        assert batched.root() == one_by_one.root(taken)

    assert batched._levels == one_by_one._levels
    for size in range(len(leaves) + 1):
        assert batched.root(size) == one_by_one.root(size)
