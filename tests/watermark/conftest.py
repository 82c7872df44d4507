from __future__ import annotations

from collections.abc import Iterable

import pytest

from watermark import IssuedCopy, Plan, codeword, key_fingerprint
from watermark.hashing import codeword_hex

SECRET = b"test-secret-0123456789abcdef0123"


@pytest.fixture
def secret() -> bytes:
    return SECRET


def registered(secret: bytes, plan: Plan, recipients: Iterable[str], dataset: str = "ds") -> list[IssuedCopy]:
    """The registry rows an embedding would have stored for these recipients."""
    fp = key_fingerprint(secret)
    return [IssuedCopy(r, dataset, plan, codeword_hex(codeword(secret, r, plan.code_bits)), fp)
            for r in recipients]
