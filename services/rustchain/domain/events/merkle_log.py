"""An append-only Merkle log as RFC 6962/9162 define it: roots, inclusion and consistency proofs.

Leaves hash as SHA-256(0x00 || data), interior nodes as SHA-256(0x01 || left || right), so a leaf
can never pass for a node. `MerkleTree` keeps every perfect subtree's hash, so that roots of any
prefix and every proof cost O(log n) hashes once the tree is built.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof that does not prove what it claims; the message says which check failed."""


def leaf_hash(data: bytes) -> bytes:
    """The hash of one leaf's data."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node over its two children."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two strictly below `size` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


class MerkleTree:
    """The leaf hashes of a log and the hash of every perfect subtree above them."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        self.extend_hashes(leaf_hashes)

    @property
    def size(self) -> int:
        """How many leaves the log holds."""
        return len(self._levels[0])

    def leaf(self, index: int) -> bytes:
        """The hash of the leaf at a 0-based index."""
        return self._levels[0][index]

    def append_hash(self, leaf: bytes) -> None:
        """Append one leaf hash; completes whichever perfect subtrees it closes."""
        levels = self._levels
        levels[0].append(leaf)
        level, node = 0, leaf
        while not len(levels[level]) & 1:
            node = hashlib.sha256(NODE_PREFIX + levels[level][-2] + node).digest()
            level += 1
            if level == len(levels):
                levels.append([])
            levels[level].append(node)

    def append(self, data: bytes) -> None:
        """Append one leaf's data."""
        self.append_hash(leaf_hash(data))

    def extend_hashes(self, leaves: Iterable[bytes]) -> None:
        """Append many leaf hashes; the same tree as appending them one by one, built a level at
        a time (an auditor's million leaves cost one pass per level, not a loop per leaf)."""
        levels = self._levels
        levels[0].extend(leaves)
        sha256, prefix = hashlib.sha256, NODE_PREFIX
        height = 0
        while len(levels[height]) >= 2:
            if height + 1 == len(levels):
                levels.append([])
            below, above = levels[height], levels[height + 1]
            # Pairs below that no node above covers yet, from the first uncovered even index; an
            # odd last node waits for its sibling (zip stops at the shorter list).
            start = 2 * len(above)
            pairs = zip(below[start::2], below[start + 1 :: 2], strict=False)
            above.extend([sha256(prefix + left + right).digest() for left, right in pairs])
            height += 1

    def _subtree(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a range the RFC's recursion asks for (start aligned to it)."""
        size = end - start
        height = size.bit_length() - 1
        if size == 1 << height and start % size == 0:
            return self._levels[height][start >> height]
        k = _split(size)
        return node_hash(self._subtree(start, start + k), self._subtree(start + k, end))

    def root(self, size: int | None = None) -> bytes:
        """The root hash of the first `size` leaves (all of them by default)."""
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ValueError(f"size must be between 0 and {self.size}, not {size}")
        return EMPTY_ROOT if size == 0 else self._subtree(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The audit path of leaf `index` in the tree of the first `size` leaves (RFC 9162)."""
        size = self.size if size is None else size
        if not 0 <= index < size <= self.size:
            raise ValueError(f"need 0 <= index < size <= {self.size}, got {index} and {size}")
        proof: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            k = _split(end - start)
            if index < start + k:
                proof.append(self._subtree(start + k, end))
                end = start + k
            else:
                proof.append(self._subtree(start, start + k))
                start += k
        proof.reverse()
        return proof

    def consistency_proof(self, old_size: int, size: int | None = None) -> list[bytes]:
        """The proof that the first `size` leaves extend the first `old_size` (RFC 9162)."""
        size = self.size if size is None else size
        if not 0 <= old_size <= size <= self.size:
            raise ValueError(f"need 0 <= old_size <= size <= {self.size}")
        if old_size in (0, size):
            return []
        proof: list[bytes] = []
        start, end, whole = 0, size, True
        m = old_size
        while m != end - start:
            k = _split(end - start)
            if m <= k:
                proof.append(self._subtree(start + k, end))
                end = start + k
            else:
                proof.append(self._subtree(start, start + k))
                m -= k
                start += k
                whole = False
        if not whole:
            proof.append(self._subtree(start, end))
        proof.reverse()
        return proof


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Return when `proof` shows leaf hash `leaf` at `index` of the tree `root`; else ProofError."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is outside a tree of {size} leaves")
    fn, sn, node = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            raise ProofError("the proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            node = node_hash(sibling, node)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            node = node_hash(node, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is shorter than the tree is deep")
    if node != root:
        raise ProofError("the proof leads to another root: the leaf is not at that position")


def verify_consistency(
    old_size: int, old_root: bytes, size: int, root: bytes, proof: Sequence[bytes]
) -> None:
    """Return when `proof` shows tree (size, root) extends (old_size, old_root); else ProofError."""
    if not 0 <= old_size <= size:
        raise ProofError(f"a log of {size} leaves cannot extend one of {old_size}")
    if old_size == size:
        if proof or old_root != root:
            raise ProofError(f"two different roots for the same size {size}")
        return
    if old_size == 0:
        if proof:
            raise ProofError("a proof from the empty log must be empty")
        return
    path = list(proof)
    if not path:
        raise ProofError("an empty proof between two different sizes")
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for node in path[1:]:
        if sn == 0:
            raise ProofError("the proof is longer than the trees are deep")
        if fn & 1 or fn == sn:
            fr = node_hash(node, fr)
            sr = node_hash(node, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, node)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is shorter than the trees are deep")
    if fr != old_root:
        raise ProofError(f"the log's first {old_size} leaves are not those of the old root")
    if sr != root:
        raise ProofError("the proof does not lead to the new root")


class LogFrontier:
    """The root of a growing log in O(log n) memory: the hashes of its right-edge subtrees."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[bytes] = []

    def append_hash(self, leaf: bytes) -> None:
        """Append one leaf hash."""
        node, size = leaf, self.size
        while size & 1:
            node = node_hash(self._stack.pop(), node)
            size >>= 1
        self._stack.append(node)
        self.size += 1

    def root(self) -> bytes:
        """The root hash of every leaf appended so far."""
        if not self._stack:
            return EMPTY_ROOT
        node = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            node = node_hash(left, node)
        return node
