"""The hash chain over ``seq``.

``hash[s] = H(0x02 || hash[s-1] || leaf_hash[s])`` with ``hash[0] = GENESIS``
(32 zero bytes); H is the trail's suite hash (SHA-256, or SM3 under the gm suite). The 0x02 prefix keeps chain hashes apart from RFC 6962 leaf (0x00)
and node (0x01) hashes. The chain makes a deletion, insertion or reordering show at
the first affected seq even between checkpoints; the Merkle checkpoints make the
trail verifiable by an outside party without the whole chain.
"""

from __future__ import annotations

from monitor.merkle import Digest, sha256

GENESIS = bytes(32)


def chain_hash(prev: bytes, leaf: bytes, h: Digest = sha256) -> bytes:
    return h(b"\x02" + prev + leaf)

