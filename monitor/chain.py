"""The hash chain over ``seq``.

``hash[s] = SHA-256(0x02 || hash[s-1] || leaf_hash[s])`` with ``hash[0] = GENESIS``
(32 zero bytes). The 0x02 prefix keeps chain hashes apart from RFC 6962 leaf (0x00)
and node (0x01) hashes. The chain makes a deletion, insertion or reordering show at
the first affected seq even between checkpoints; the Merkle checkpoints make the
trail verifiable by an outside party without the whole chain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

GENESIS = bytes(32)


def chain_hash(prev: bytes, leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x02" + prev + leaf).digest()


def chain_over(leaves: Iterable[bytes], prev: bytes = GENESIS) -> Iterator[tuple[bytes, bytes]]:
    """Yield ``(prev_hash, hash)`` for each leaf in order."""
    for leaf in leaves:
        h = chain_hash(prev, leaf)
        yield prev, h
        prev = h
